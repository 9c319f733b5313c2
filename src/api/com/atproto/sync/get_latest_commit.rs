//! `com.atproto.sync.getLatestCommit`: the CID and rev of an active repository's current commit.

use aurora_generated::com::atproto::sync::get_latest_commit::{Error, Output, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::XrpcResult;

use super::{available, root};
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<Output> {
    let hosting = available(ctx, &params.did, viewer).await?.map_err(Error::from)?;
    let root = root(hosting, &params.did).map_err(Error::from)?;
    Ok(Output { cid: root.cid, rev: root.rev, extra: Default::default() })
}
