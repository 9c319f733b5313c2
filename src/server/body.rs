//! Request bodies as handlers see them: a body that stops arriving for the gap deadline ends
//! with an error, so a client trickling one cannot hold a handler (and what it holds) forever;
//! and a body the handler did not read (a refused upload, say) is read to its end afterwards,
//! up to a bound, so the client's connection stays usable for its next request — HTTP/1
//! cannot carry another request until this one's body is off the wire.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use poem::{Endpoint, IntoResponse, Request, Response};
use tokio::sync::Mutex;

type Chunks = BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// Bodies drained at once: each holds the connection's read buffer (up to ~400 KiB in hyper)
/// while it runs, so a flood of refused uploads is closed rather than read.
static DRAINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);

/// What is left of the body, shared between the handler's view of it and the drain after.
type Rest = Arc<Mutex<Option<Chunks>>>;

pub async fn guard<E: Endpoint>(
    next: Arc<E>,
    mut request: Request,
    gap: Duration,
    drain_limit: u64,
) -> poem::Result<Response> {
    let headers = request.headers();
    let declared = headers
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = headers.contains_key(poem::http::header::TRANSFER_ENCODING);
    if !chunked && declared.unwrap_or(0) == 0 {
        // Boxed, here and below: inline, every layer's future inside this one was copied whole
        // each time the server moved it (four times, into its box): 2% of a getRecord.
        return Ok(Box::pin(next.call(request)).await?.into_response());
    }
    let rest: Rest = Arc::new(Mutex::new(Some(request.take_body().into_bytes_stream().boxed())));
    let timed = futures_util::stream::unfold(rest.clone(), move |rest| async move {
        let mut slot = rest.lock().await;
        let chunks = slot.as_mut()?;
        match tokio::time::timeout(gap, chunks.next()).await {
            Ok(Some(chunk)) => {
                drop(slot);
                Some((chunk, rest))
            }
            Ok(None) => {
                *slot = None;
                None
            }
            Err(_) => {
                *slot = None;
                drop(slot);
                Some((
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body stopped arriving")),
                    rest,
                ))
            }
        }
    });
    request.set_body(poem::Body::from_bytes_stream(timed));
    let response = Box::pin(next.call(request)).await?.into_response();
    // What the handler left unread, if not too much: past the bound the connection is closed
    // instead (hyper does so when a body is dropped unread).
    let left = rest.lock().await.take();
    if let (Some(mut chunks), Ok(_draining)) = (left, DRAINS.try_acquire()) {
        if declared.is_none_or(|length| length <= drain_limit) {
            let mut drained = 0u64;
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout(gap, chunks.next()).await {
                drained += chunk.len() as u64;
                if drained > drain_limit {
                    break;
                }
            }
        }
    }
    Ok(response)
}
