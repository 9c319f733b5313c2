//! `com.atproto.sync.getRepo`: the whole repository (or the blocks since a rev) as a CAR,
//! read from one snapshot.
//!
//! The snapshot is copied to a temporary file at the database's pace and the client is then
//! served from the file at its own: a client that reads slowly, or not at all, holds a file
//! handle rather than a pooled connection and a read transaction. At most a few copies run at
//! once ([`crate::context::AppContext::exports`]), so downloads can never take every connection.

use std::io::SeekFrom;

use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use aurora_generated::com::atproto::sync::get_repo::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use super::{available, CAR};
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    let did = params.did;
    available(ctx, &did, viewer).await?.map_err(Error::from)?;
    let permit =
        tokio::time::timeout(EXPORT_WAIT, ctx.exports.acquire()).await.map_err(|_| busy())?.map_err(internal)?;
    let spool = spool_file(ctx).await?;
    let snapshot = crate::repo::export::snapshot(&ctx.db, &did)
        .await
        .map_err(internal)?
        .ok_or_else(|| Error::RepoNotFound(Some(format!("Could not find root for DID: {did}"))))?;
    let since = params.since.map(|rev| rev.as_str().to_owned());
    // Blocks are small; batching their writes keeps the file writes large.
    let writer = tokio::io::BufWriter::with_capacity(64 * 1024, spool);
    let mut writer = snapshot.write_car(since.as_deref(), writer).await.map_err(internal)?;
    writer.flush().await.map_err(internal)?;
    drop(permit);
    let mut file = writer.into_inner();
    file.seek(SeekFrom::Start(0)).await.map_err(internal)?;
    Ok(RawBody::new(CAR, poem::Body::from_async_read(file)))
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

/// An anonymous file under the data directory, gone when closed.
async fn spool_file(ctx: &AppContext) -> XrpcResult<tokio::fs::File> {
    let dir = ctx.config.data_dir.clone();
    let file =
        tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir)).await.map_err(internal)?.map_err(internal)?;
    Ok(tokio::fs::File::from_std(file))
}
