//! `com.atproto.moderation`: reports go to the report service (PDS_REPORT_SERVICE_*, or the
//! service an `atproto-proxy` header names), as the caller.

use aurora_generated::com::atproto::moderation::{create_report as cr, Service};
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn create_report(&self, ctx: RequestContext, input: cr::Input) -> XrpcResult<cr::Output> {
        crate::proxy::call_json(&self.ctx, &ctx, cr::NSID, &input).await
    }
}
