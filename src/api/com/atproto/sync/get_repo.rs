//! `com.atproto.sync.getRepo`: the whole repository (or the blocks since a rev) as a CAR,
//! read from one snapshot.
//!
//! A client that reads slowly, or not at all, must not hold a pooled connection and a read
//! transaction at its pace. On SQLite and PostgreSQL the export streams to the client while it
//! keeps up and goes to a temporary file once it falls behind ([`crate::repo::download`]); on a
//! database without kept readers (an in-memory SQLite one) the snapshot is copied to a temporary
//! file at the database's pace and the client is served from the file. At most a few exports
//! read the database at once ([`crate::context::AppContext::exports`]), so downloads can never
//! take every connection.

use std::io::SeekFrom;

use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use aurora_atproto::car::CarError;

use aurora_generated::com::atproto::sync::get_repo::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use super::{available, CAR};
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    let did = params.did;
    available(ctx, &did, viewer).await?.map_err(Error::from)?;
    let permit = tokio::time::timeout(EXPORT_WAIT, ctx.exports.turn()).await.map_err(|_| busy())?.map_err(internal)?;
    let since = params.since.map(|rev| rev.as_str().to_owned());
    let not_found = || Error::RepoNotFound(Some(format!("Could not find root for DID: {did}")));
    let spooled = |spool| tokio::io::BufWriter::with_capacity(SPOOL_BUFFER, tokio::fs::File::from_std(spool));
    let mut file = match ctx.reader.as_deref() {
        Some(crate::db::Reader::Sqlite(reader)) => {
            let (sink, download) = crate::repo::download::pipe(ctx.config.data_dir.clone(), ctx.exports.clone());
            let (reader, did) = (reader.clone(), did.clone());
            let export = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                match crate::repo::export::write_car_blocking(&reader, &did, since.as_deref(), sink)? {
                    Some(sink) => sink.finish().map(|()| true).map_err(CarError::Io),
                    None => Ok(false),
                }
            });
            return streamed(download, export).await?.ok_or_else(|| not_found().into());
        }
        Some(crate::db::Reader::Postgres(reader)) => {
            let (mut sink, download) = crate::repo::download::pipe(ctx.config.data_dir.clone(), ctx.exports.clone());
            let (reader, did) = (reader.clone(), did.clone());
            let export = tokio::spawn(async move {
                let _permit = permit;
                match crate::repo::export::write_car_postgres(&reader, &did, since.as_deref(), &mut sink).await? {
                    true => sink.finish_async().await.map(|()| true).map_err(CarError::Io),
                    false => Ok(false),
                }
            });
            return streamed(download, export).await?.ok_or_else(|| not_found().into());
        }
        None => {
            let snapshot =
                crate::repo::export::snapshot(&ctx.db, &did).await.map_err(internal)?.ok_or_else(not_found)?;
            let writer = spooled(spool_file(ctx).await?);
            let mut writer = snapshot.write_car(since.as_deref(), writer).await.map_err(internal)?;
            writer.flush().await.map_err(internal)?;
            writer.into_inner()
        }
    };
    drop(permit);
    file.seek(SeekFrom::Start(0)).await.map_err(internal)?;
    // Large reads: each read of a tokio file is a hand-off to a blocking thread.
    let chunks = tokio_util::io::ReaderStream::with_capacity(file, SPOOL_READ);
    Ok(RawBody::new(CAR, poem::Body::from_bytes_stream(chunks)))
}

/// The answer for an export running into `download`: `None` when it ended without a byte and
/// found no repository. A failure before the first byte is a 500; after it, the body is cut short.
async fn streamed(
    download: crate::repo::download::Download,
    export: tokio::task::JoinHandle<Result<bool, CarError>>,
) -> XrpcResult<Option<RawBody>> {
    if !download.started().await && !export.await.map_err(internal)?.map_err(internal)? {
        return Ok(None);
    }
    Ok(Some(RawBody::new(CAR, poem::Body::from_bytes_stream(download.into_stream()))))
}

/// How long a download waits for its turn to read the database before it is turned away.
const EXPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn busy() -> XrpcError {
    XrpcError::new(
        poem::http::StatusCode::SERVICE_UNAVAILABLE,
        "NotEnoughResources",
        Some("Too many repository downloads at once; try again shortly".to_owned()),
    )
    .with_header("retry-after", "5")
}

/// Bytes gathered before each write to the spool file.
const SPOOL_BUFFER: usize = 64 * 1024;

/// Bytes read from the spool file at a time to send.
const SPOOL_READ: usize = 256 * 1024;

/// An anonymous file under the data directory, gone when closed.
async fn spool_file(ctx: &AppContext) -> XrpcResult<std::fs::File> {
    let dir = ctx.config.data_dir.clone();
    tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir)).await.map_err(internal)?.map_err(internal)
}
