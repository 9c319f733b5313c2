//! `com.atproto.identity.resolveIdentity`: a DID or handle, with the other verified both ways.

use aurora_generated::com::atproto::identity::resolve_identity::{Output, Params};
use aurora_xrpc::XrpcResult;

use super::identity_info;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    identity_info(ctx, &params.identifier, false).await
}
