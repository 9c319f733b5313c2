//! `com.atproto.identity`: resolving handles and DIDs, changing the handle, and the PLC
//! operations an account signs to move or change its identity.

mod plc_operations;
mod resolve;
mod update_handle;

use aurora_generated::com::atproto::identity::{
    get_recommended_did_credentials as grdc, refresh_identity as ri, resolve_did as rd, resolve_handle as rh,
    resolve_identity as rid, sign_plc_operation as spo, submit_plc_operation as sub, update_handle as uh, Service,
};
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn resolve_handle(&self, _ctx: RequestContext, params: rh::Params) -> XrpcResult<rh::Output> {
        resolve::resolve_handle(&self.ctx, params).await
    }

    async fn resolve_did(&self, _ctx: RequestContext, params: rd::Params) -> XrpcResult<rd::Output> {
        resolve::resolve_did(&self.ctx, params).await
    }

    async fn resolve_identity(&self, _ctx: RequestContext, params: rid::Params) -> XrpcResult<rid::Output> {
        resolve::identity(&self.ctx, params.identifier.as_str(), false).await
    }

    async fn refresh_identity(&self, _ctx: RequestContext, input: ri::Input) -> XrpcResult<ri::Output> {
        resolve::identity(&self.ctx, input.identifier.as_str(), true).await
    }

    async fn update_handle(&self, ctx: RequestContext, input: uh::Input) -> XrpcResult<()> {
        update_handle::update_handle(&self.ctx, &ctx, input).await
    }

    async fn get_recommended_did_credentials(
        &self,
        ctx: RequestContext,
        _params: grdc::Params,
    ) -> XrpcResult<grdc::Output> {
        plc_operations::recommended_credentials(&self.ctx, &ctx).await
    }

    async fn request_plc_operation_signature(&self, ctx: RequestContext) -> XrpcResult<()> {
        plc_operations::request_signature(&self.ctx, &ctx).await
    }

    async fn sign_plc_operation(&self, ctx: RequestContext, input: spo::Input) -> XrpcResult<spo::Output> {
        plc_operations::sign(&self.ctx, &ctx, input).await
    }

    async fn submit_plc_operation(&self, ctx: RequestContext, input: sub::Input) -> XrpcResult<()> {
        plc_operations::submit(&self.ctx, &ctx, input).await
    }
}
