//! `com.atproto.sync.subscribeRepos`: the firehose — every commit, identity and account event,
//! from a cursor or live.

use aurora_generated::com::atproto::sync::subscribe_repos::Params;
use aurora_xrpc::{FrameStream, XrpcResult};

use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<FrameStream> {
    let frames = ctx.firehose.subscribe(params.cursor).await.map_err(internal)?;
    Ok(FrameStream(frames))
}
