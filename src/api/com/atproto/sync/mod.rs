//! `com.atproto.sync`: what relays and other services read. Methods not implemented here
//! answer `MethodNotImplemented`.

mod repos;

use aurora_generated::com::atproto::sync::{
    get_blob as gb, get_blocks as gbl, get_checkout as gc, get_head as gh, get_latest_commit as glc, get_record as gr,
    get_repo as grp, get_repo_status as grs, list_blobs as lb, list_repos as lr, subscribe_repos as sr, Service,
};
use aurora_xrpc::{FrameStream, RawBody, RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn get_latest_commit(&self, _ctx: RequestContext, params: glc::Params) -> XrpcResult<glc::Output> {
        repos::latest_commit(&self.ctx, params).await
    }

    async fn get_repo_status(&self, _ctx: RequestContext, params: grs::Params) -> XrpcResult<grs::Output> {
        repos::repo_status(&self.ctx, params).await
    }

    async fn list_repos(&self, _ctx: RequestContext, params: lr::Params) -> XrpcResult<lr::Output> {
        repos::list_repos(&self.ctx, params).await
    }

    async fn get_repo(&self, _ctx: RequestContext, params: grp::Params) -> XrpcResult<RawBody> {
        repos::get_repo(&self.ctx, params).await
    }

    async fn get_record(&self, _ctx: RequestContext, params: gr::Params) -> XrpcResult<RawBody> {
        repos::get_record(&self.ctx, params).await
    }

    async fn get_blob(&self, ctx: RequestContext, params: gb::Params) -> XrpcResult<RawBody> {
        repos::get_blob(&self.ctx, params, ctx.header("range")).await
    }

    async fn get_blocks(&self, _ctx: RequestContext, params: gbl::Params) -> XrpcResult<RawBody> {
        repos::get_blocks(&self.ctx, params).await
    }

    async fn list_blobs(&self, _ctx: RequestContext, params: lb::Params) -> XrpcResult<lb::Output> {
        repos::list_blobs(&self.ctx, params).await
    }

    /// Deprecated in favour of getLatestCommit; still served, as the reference does.
    async fn get_head(&self, _ctx: RequestContext, params: gh::Params) -> XrpcResult<gh::Output> {
        let latest = repos::latest_commit(&self.ctx, glc::Params { did: params.did }).await?;
        Ok(gh::Output { root: latest.cid, extra: Default::default() })
    }

    /// Deprecated in favour of getRepo; still served, as the reference does.
    async fn get_checkout(&self, _ctx: RequestContext, params: gc::Params) -> XrpcResult<RawBody> {
        repos::get_repo(&self.ctx, grp::Params { did: params.did, since: None }).await
    }

    async fn subscribe_repos(&self, _ctx: RequestContext, params: sr::Params) -> XrpcResult<FrameStream> {
        let frames = self.ctx.firehose.subscribe(params.cursor).await.map_err(crate::api::internal)?;
        Ok(FrameStream(frames))
    }
}
