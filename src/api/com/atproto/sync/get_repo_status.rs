//! `com.atproto.sync.getRepoStatus`: whether a repository is served, and if not, why.

use aurora_generated::com::atproto::sync::get_repo_status::{Error, Output, Params};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::repo::hosting::hosting;
use crate::sequencer::AccountStatus;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let did = &params.did;
    let Some(found) = hosting(&ctx.db, ctx.reader.as_deref(), did).await.map_err(internal)? else {
        return Err(Error::RepoNotFound(Some(format!("Could not find repo for DID: {did}"))).into());
    };
    // A deleted account awaiting purge is reported as such until it is gone.
    let status = if found.deleted { AccountStatus::Deleted } else { found.status };
    let rev = match (status, found.root) {
        (AccountStatus::Active, Some(root)) => Some(root.rev),
        _ => None,
    };
    Ok(Output {
        did: params.did,
        active: status == AccountStatus::Active,
        status: status.as_str().map(Into::into),
        rev,
        extra: Default::default(),
    })
}
