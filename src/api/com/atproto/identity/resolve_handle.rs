//! `com.atproto.identity.resolveHandle`: the DID a handle names.

use aurora_generated::com::atproto::identity::resolve_handle::{Output, Params};
use aurora_xrpc::XrpcResult;

use super::{did_for_handle, handle_not_found};
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    match did_for_handle(ctx, &params.handle, false).await? {
        Some(did) => Ok(Output { did, extra: Default::default() }),
        None => Err(handle_not_found(ctx, &params.handle)),
    }
}
