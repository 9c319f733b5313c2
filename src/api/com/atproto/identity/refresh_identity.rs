//! `com.atproto.identity.refreshIdentity`: as resolveIdentity, but read afresh rather than
//! from the cache.

use aurora_generated::com::atproto::identity::refresh_identity::{Input, Output};
use aurora_xrpc::XrpcResult;

use super::identity_info;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, input: Input) -> XrpcResult<Output> {
    identity_info(ctx, &input.identifier, true).await
}
