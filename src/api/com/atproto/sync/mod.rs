//! `com.atproto.sync`: what relays and other services read. One file per method.

mod get_blob;
mod get_blocks;
mod get_checkout;
mod get_head;
mod get_latest_commit;
mod get_record;
mod get_repo;
mod get_repo_status;
mod list_blobs;
mod list_repos;
mod subscribe_repos;

use aurora_atproto::syntax::Did;
use aurora_generated::com::atproto::sync::{self as lex, Service};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{FrameStream, RawBody, RequestContext, XrpcResult};

use crate::api::{internal, Api};
use crate::context::AppContext;
use crate::repo::hosting::{hosting, Hosting, Root};
use crate::sequencer::AccountStatus;

const CAR: &str = "application/vnd.ipld.car";

impl Service for Api {
    async fn get_blob(
        &self,
        ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::get_blob::Params,
    ) -> XrpcResult<RawBody> {
        get_blob::handle(&self.ctx, auth.as_ref(), params, ctx.header("range")).await
    }

    async fn get_blocks(
        &self,
        _ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::get_blocks::Params,
    ) -> XrpcResult<RawBody> {
        get_blocks::handle(&self.ctx, auth.as_ref(), params).await
    }

    async fn get_checkout(
        &self,
        _ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::get_checkout::Params,
    ) -> XrpcResult<RawBody> {
        get_checkout::handle(&self.ctx, auth.as_ref(), params).await
    }

    async fn get_head(
        &self,
        _ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::get_head::Params,
    ) -> XrpcResult<lex::get_head::Output> {
        get_head::handle(&self.ctx, auth.as_ref(), params).await
    }

    async fn get_latest_commit(
        &self,
        _ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::get_latest_commit::Params,
    ) -> XrpcResult<lex::get_latest_commit::Output> {
        get_latest_commit::handle(&self.ctx, auth.as_ref(), params).await
    }

    async fn get_record(
        &self,
        _ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::get_record::Params,
    ) -> XrpcResult<RawBody> {
        get_record::handle(&self.ctx, auth.as_ref(), params).await
    }

    async fn get_repo(
        &self,
        _ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::get_repo::Params,
    ) -> XrpcResult<RawBody> {
        get_repo::handle(&self.ctx, auth.as_ref(), params).await
    }

    async fn get_repo_status(
        &self,
        _ctx: RequestContext,
        params: lex::get_repo_status::Params,
    ) -> XrpcResult<lex::get_repo_status::Output> {
        get_repo_status::handle(&self.ctx, params).await
    }

    async fn list_blobs(
        &self,
        _ctx: RequestContext,
        auth: Option<Viewer>,
        params: lex::list_blobs::Params,
    ) -> XrpcResult<lex::list_blobs::Output> {
        list_blobs::handle(&self.ctx, auth.as_ref(), params).await
    }

    async fn list_repos(
        &self,
        _ctx: RequestContext,
        params: lex::list_repos::Params,
    ) -> XrpcResult<lex::list_repos::Output> {
        list_repos::handle(&self.ctx, params).await
    }

    async fn subscribe_repos(
        &self,
        ctx: RequestContext,
        params: lex::subscribe_repos::Params,
    ) -> XrpcResult<FrameStream> {
        subscribe_repos::handle(&self.ctx, &ctx, params).await
    }
}

/// Why a repository is not served, with the message the client sees.
enum Unavailable {
    NotFound(String),
    Takendown(String),
    Suspended(String),
    Deactivated(String),
}

/// Each method that reads a repository declares the same four reasons it may not be served.
macro_rules! unavailable_is_declared_by {
    ($($method:ident),*) => {$(
        impl From<Unavailable> for lex::$method::Error {
            fn from(reason: Unavailable) -> Self {
                match reason {
                    Unavailable::NotFound(message) => Self::RepoNotFound(Some(message)),
                    Unavailable::Takendown(message) => Self::RepoTakendown(Some(message)),
                    Unavailable::Suspended(message) => Self::RepoSuspended(Some(message)),
                    Unavailable::Deactivated(message) => Self::RepoDeactivated(Some(message)),
                }
            }
        }
    )*};
}

unavailable_is_declared_by!(get_blob, get_blocks, get_latest_commit, get_record, get_repo, list_blobs);

/// The account's hosting state and root, unless its repository is not served to `viewer`: the
/// account itself and the administrator see it whatever its status.
async fn available(ctx: &AppContext, did: &Did, viewer: Option<&Viewer>) -> XrpcResult<Result<Hosting, Unavailable>> {
    let found = hosting(&ctx.db, ctx.reader.as_deref(), did).await.map_err(internal)?;
    Ok(match found {
        // A deleted account waiting out its grace period is gone to readers.
        None | Some(Hosting { deleted: true, .. }) => {
            Err(Unavailable::NotFound(format!("Could not find repo for DID: {did}")))
        }
        Some(h) if viewer.is_some_and(|v| v.is_self_or_admin(did)) => Ok(h),
        Some(h) => match h.status {
            AccountStatus::Active => Ok(h),
            AccountStatus::Takendown => Err(Unavailable::Takendown(format!("Repo has been takendown: {did}"))),
            AccountStatus::Suspended => Err(Unavailable::Suspended(format!("Repo has been suspended: {did}"))),
            _ => Err(Unavailable::Deactivated(format!("Repo has been deactivated: {did}"))),
        },
    })
}

/// The repository's current root.
fn root(hosting: Hosting, did: &Did) -> Result<Root, Unavailable> {
    hosting.root.ok_or_else(|| Unavailable::NotFound(format!("Could not find root for DID: {did}")))
}
