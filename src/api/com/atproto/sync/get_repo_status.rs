//! `com.atproto.sync.getRepoStatus`: whether a repository is served, and if not, why.

use aurora_atproto::syntax::Did;
use aurora_generated::com::atproto::sync::get_repo_status::{Error, Output, Params};
use aurora_xrpc::XrpcResult;

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::sequencer::AccountStatus;
use sea_orm::EntityTrait;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let did = &params.did;
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?;
    let status = match found {
        Some(found) => found.status(),
        // A deleted account awaiting purge is reported as such until it is gone.
        None if awaiting_purge(ctx, did).await? => AccountStatus::Deleted,
        None => return Err(Error::RepoNotFound(Some(format!("Could not find repo for DID: {did}"))).into()),
    };
    let rev = crate::repo::root(&ctx.db, did).await.map_err(internal)?.map(|r| r.rev);
    Ok(Output {
        did: params.did,
        active: status == AccountStatus::Active,
        status: status.as_str().map(Into::into),
        rev: match (status, rev) {
            (AccountStatus::Active, Some(rev)) => Some(rev),
            _ => None,
        },
        extra: Default::default(),
    })
}

async fn awaiting_purge(ctx: &AppContext, did: &Did) -> XrpcResult<bool> {
    let actor = actor::Entity::find_by_id(did.clone()).one(&ctx.db).await.map_err(internal)?;
    Ok(actor.is_some_and(|a| a.deleted_at.is_some()))
}
