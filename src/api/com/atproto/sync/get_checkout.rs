//! `com.atproto.sync.getCheckout` (deprecated in favour of getRepo; still served, as the
//! reference does): the whole repository as a CAR.

use aurora_generated::com::atproto::sync::{get_checkout::Params, get_repo};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcResult};

use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    super::get_repo::handle(ctx, viewer, get_repo::Params { did: params.did, since: None }).await
}
