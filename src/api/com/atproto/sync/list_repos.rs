//! `com.atproto.sync.listRepos`: every hosted repository with its current commit and status,
//! in DID order.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_generated::com::atproto::sync::list_repos::{Output, Params, Repo};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{actor, repo_root};
use crate::sequencer::AccountStatus;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let limit = params.limit.clamp(1, 1000) as u64;
    let mut query = repo_root::Entity::find().order_by_asc(repo_root::Column::Did);
    // An empty cursor is no cursor, as the reference reads it.
    if let Some(cursor) = params.cursor.as_ref().filter(|c| !c.is_empty()) {
        // The cursor is the last DID of the previous page.
        let cursor: aurora_atproto::syntax::Did =
            cursor.parse().map_err(|_| aurora_xrpc::XrpcError::invalid_request("Malformed cursor"))?;
        query = query.filter(repo_root::Column::Did.gt(cursor));
    }
    let roots = query.limit(limit).all(&ctx.db).await.map_err(internal)?;
    let cursor = (roots.len() as u64 == limit).then(|| roots.last().map(|r| r.did.as_str().to_owned())).flatten();
    let mut repos = Vec::with_capacity(roots.len());
    for root in roots {
        let actor = actor::Entity::find_by_id(root.did.clone()).one(&ctx.db).await.map_err(internal)?;
        let status = match actor {
            Some(a) if a.deleted_at.is_some() => AccountStatus::Deleted,
            Some(a) => crate::account::actor_status(&a),
            None => AccountStatus::Active,
        };
        repos.push(Repo {
            did: root.did.clone(),
            head: root.cid.clone(),
            rev: root.rev.clone(),
            active: Some(status == AccountStatus::Active),
            status: status.as_str().map(Into::into),
            extra: Default::default(),
        });
    }
    Ok(Output { repos, cursor, extra: Default::default() })
}
