//! `com.atproto.sync.subscribeRepos`: the firehose — every commit, identity and account event,
//! from a cursor or live.

use poem::http::StatusCode;

use aurora_generated::com::atproto::sync::subscribe_repos::Params;
use aurora_xrpc::{FrameStream, RequestContext, XrpcError, XrpcResult};

use crate::api::internal;
use crate::context::AppContext;
use crate::firehose::{Refused, SubscribeError};

pub async fn handle(ctx: &AppContext, req: &RequestContext, params: Params) -> XrpcResult<FrameStream> {
    // Per-address caps are for clients; a trusted proxy's own address (a client with no
    // forwarding header) is not capped, as at the connection level.
    let ip = req.remote_addr.filter(|ip| !ctx.config.trusted_proxies.iter().any(|range| range.contains(ip)));
    match ctx.firehose.subscribe(params.cursor, ip).await {
        Ok(frames) => Ok(FrameStream(frames)),
        Err(SubscribeError::Refused(refused @ Refused::PerIp)) => {
            Err(XrpcError::rate_limited().with_message(refused.to_string()))
        }
        Err(SubscribeError::Refused(refused @ Refused::Full)) => {
            Err(XrpcError::new(StatusCode::SERVICE_UNAVAILABLE, "NotEnoughResources", Some(refused.to_string()))
                .with_header("retry-after", "30"))
        }
        Err(SubscribeError::Db(e)) => Err(internal(e)),
    }
}
