//! `com.atproto.repo`: records. Methods not implemented here answer `MethodNotImplemented`.

mod blobs;
mod read;
mod write;

pub(crate) use write::{refusal, require_active};

use aurora_generated::com::atproto::repo::{
    apply_writes as aw, create_record as cr, delete_record as dr, describe_repo as dsr, get_record as gr,
    list_missing_blobs as lmb, list_records as lr, put_record as pr, upload_blob as ub, Service,
};
use aurora_xrpc::{RawBody, RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn create_record(&self, ctx: RequestContext, input: cr::Input) -> XrpcResult<cr::Output> {
        write::create_record(&self.ctx, &ctx, input).await
    }

    async fn put_record(&self, ctx: RequestContext, input: pr::Input) -> XrpcResult<pr::Output> {
        write::put_record(&self.ctx, &ctx, input).await
    }

    async fn delete_record(&self, ctx: RequestContext, input: dr::Input) -> XrpcResult<dr::Output> {
        write::delete_record(&self.ctx, &ctx, input).await
    }

    async fn apply_writes(&self, ctx: RequestContext, input: aw::Input) -> XrpcResult<aw::Output> {
        write::apply_writes(&self.ctx, &ctx, input).await
    }

    async fn get_record(&self, _ctx: RequestContext, params: gr::Params) -> XrpcResult<gr::Output> {
        read::get_record(&self.ctx, params).await
    }

    async fn list_records(&self, _ctx: RequestContext, params: lr::Params) -> XrpcResult<lr::Output> {
        read::list_records(&self.ctx, params).await
    }

    async fn describe_repo(&self, _ctx: RequestContext, params: dsr::Params) -> XrpcResult<dsr::Output> {
        read::describe_repo(&self.ctx, params).await
    }

    async fn upload_blob(&self, ctx: RequestContext, input: RawBody) -> XrpcResult<ub::Output> {
        blobs::upload_blob(&self.ctx, &ctx, input).await
    }

    async fn import_repo(&self, ctx: RequestContext, input: RawBody) -> XrpcResult<()> {
        blobs::import_repo(&self.ctx, &ctx, input).await
    }

    async fn list_missing_blobs(&self, ctx: RequestContext, params: lmb::Params) -> XrpcResult<lmb::Output> {
        blobs::list_missing(&self.ctx, &ctx, params).await
    }
}
