//! The accept loop: each connection the guard admits is served by hyper, HTTP/1.1 or HTTP/2,
//! with upgrades (the firehose's websockets).
//!
//! poem's own loop boxes every connection into a reader and a writer half that cannot write
//! vectored, so hyper copied each response body into one buffer per connection before writing
//! it; that buffer kept its largest size (800 KiB after a repository export) for as long as the
//! client kept the connection alive, and every byte of a CAR or a blob was copied once more.
//! Served here on the guarded socket itself, hyper queues the body's chunks and hands them to
//! the kernel in one vectored write.

use std::convert::Infallible;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::listener::Acceptor;
use poem::{Endpoint, Request};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// Serves every connection `acceptor` admits until `shutdown` completes; then stops accepting,
/// lets requests in flight finish for up to `grace`, and drops what is still open.
pub async fn serve(
    mut acceptor: impl Acceptor,
    endpoint: impl Endpoint + 'static,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let endpoint = std::sync::Arc::new(endpoint);
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = acceptor.accept() => {
                // The guard logs and drops what it refuses; an error here is one failed accept.
                let Ok((io, local, remote, scheme)) = accepted else { continue };
                let endpoint = endpoint.clone();
                let stopping = stopping.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let endpoint = endpoint.clone();
                        let request = Request::from((request, local.clone(), remote.clone(), scheme.clone()));
                        async move {
                            let response = endpoint.get_response(request).await;
                            Ok::<hyper::Response<Body>, Infallible>(response.into())
                        }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        _ = stopping.cancelled() => {}
                    }
                    // Finish the request in flight, answer no other.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                });
            }
        }
    }
    drop(acceptor);
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(grace, connections.wait()).await.is_err() {
        tracing::info!(open = connections.len(), "connections still open after the grace period are dropped");
    }
    Ok(())
}
