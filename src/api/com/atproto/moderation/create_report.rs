//! `com.atproto.moderation.createReport`: forwarded to the report service as the caller (a
//! taken-down account may report too).

use aurora_generated::com::atproto::moderation::create_report::{Input, Output, NSID};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, req: &RequestContext, auth: Access, input: Input) -> XrpcResult<Output> {
    crate::proxy::call_json(ctx, req, &auth, NSID, &input).await
}
