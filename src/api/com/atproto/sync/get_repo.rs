//! `com.atproto.sync.getRepo`: the whole repository (or the blocks since a rev) as a CAR,
//! streamed from one read snapshot.

use aurora_generated::com::atproto::sync::get_repo::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcResult};

use super::{available, CAR};
use crate::api::internal;
use crate::context::AppContext;

/// The whole repository as a CAR, streamed as it is read (memory stays bounded by the pipe);
/// with `since`, only the blocks written after that rev, plus the current commit.
pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    let did = params.did;
    available(ctx, &did, viewer).await?.map_err(Error::from)?;
    let snapshot = crate::repo::export::snapshot(&ctx.db, &did)
        .await
        .map_err(internal)?
        .ok_or_else(|| Error::RepoNotFound(Some(format!("Could not find root for DID: {did}"))))?;
    let since = params.since.map(|rev| rev.as_str().to_owned());
    let (writer, reader) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        // Blocks are small; batching their writes keeps the response in large chunks.
        let writer = tokio::io::BufWriter::with_capacity(32 * 1024, writer);
        if let Err(e) = snapshot.write_car(since.as_deref(), writer).await {
            tracing::warn!(%did, error = %e, "repository export ended early");
        }
    });
    Ok(RawBody::new(CAR, poem::Body::from_async_read(reader)))
}
