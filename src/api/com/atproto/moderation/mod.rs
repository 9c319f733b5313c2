//! `com.atproto.moderation`: reports go to the report service (PDS_REPORT_SERVICE_*, or the
//! service an `atproto-proxy` header names), as the caller.

mod create_report;

use aurora_generated::com::atproto::moderation::{create_report as cr, Service};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn create_report(&self, ctx: RequestContext, auth: Access, input: cr::Input) -> XrpcResult<cr::Output> {
        create_report::handle(&self.ctx, &ctx, auth, input).await
    }
}
