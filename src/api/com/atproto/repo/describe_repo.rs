//! `com.atproto.repo.describeRepo`: an active account's identity and the collections its
//! repository holds.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_atproto::syntax::{Handle, Nsid};
use aurora_generated::com::atproto::repo::describe_repo::{Output, Params};
use aurora_xrpc::{XrpcError, XrpcResult};

use super::named;
use poem::http::StatusCode;

use crate::account;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::record;
use crate::sequencer::AccountStatus;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let repo = params.repo.as_str();
    let status = |name: &'static str, message: String| XrpcError::new(StatusCode::BAD_REQUEST, name, Some(message));
    let actor = match named(ctx, &params.repo).await? {
        None => return Err(status("RepoNotFound", format!("Could not find repo for DID: {repo}"))),
        Some(actor) => match account::actor_status(&actor) {
            AccountStatus::Active => actor,
            AccountStatus::Takendown | AccountStatus::Suspended => {
                return Err(status("RepoTakendown", format!("Repo has been takendown: {repo}")))
            }
            _ => return Err(status("RepoDeactivated", format!("Repo has been deactivated: {repo}"))),
        },
    };
    let collections: Vec<Nsid> = record::Entity::find()
        .select_only()
        .column(record::Column::Collection)
        .distinct()
        .filter(record::Column::Did.eq(&actor.did))
        .order_by_asc(record::Column::Collection)
        .into_tuple()
        .all(&ctx.db)
        .await
        .map_err(internal)?;
    let did_doc = ctx.resolver.did_doc(&actor.did, false).await.map_err(internal)?;
    let handle = actor.handle.unwrap_or_else(Handle::invalid);
    let handle_is_correct = crate::identity::atproto_handle(&did_doc).as_ref() == Some(&handle);
    Ok(Output { handle, did: actor.did, did_doc, collections, handle_is_correct, extra: Default::default() })
}
