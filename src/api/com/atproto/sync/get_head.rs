//! `com.atproto.sync.getHead` (deprecated in favour of getLatestCommit; still served, as the
//! reference does): the CID of a repository's current commit.

use aurora_generated::com::atproto::sync::{
    get_head::{Output, Params},
    get_latest_commit,
};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::XrpcResult;

use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<Output> {
    let latest = super::get_latest_commit::handle(ctx, viewer, get_latest_commit::Params { did: params.did }).await?;
    Ok(Output { root: latest.cid, extra: Default::default() })
}
