//! `com.atproto.repo.describeRepo`: an active account's identity and the collections its
//! repository holds.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_generated::com::atproto::repo::describe_repo::{Output, Params};
use aurora_xrpc::XrpcResult;

use super::hosted;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::record;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let actor = hosted(ctx, &params.repo).await?;
    let collections: Vec<String> = record::Entity::find()
        .select_only()
        .column(record::Column::Collection)
        .distinct()
        .filter(record::Column::Did.eq(actor.did.as_str()))
        .order_by_asc(record::Column::Collection)
        .into_tuple()
        .all(&ctx.db)
        .await
        .map_err(internal)?;
    let did_doc = ctx.resolver.did_doc(&actor.did, false).await.map_err(internal)?;
    let handle = actor.handle.as_deref().unwrap_or("handle.invalid");
    let handle_is_correct = crate::identity::atproto_handle(&did_doc).as_deref() == Some(handle);
    Ok(Output {
        handle: handle.parse().map_err(internal)?,
        did: actor.did.parse().map_err(internal)?,
        did_doc,
        collections: collections.iter().map(|c| c.parse().map_err(internal)).collect::<XrpcResult<_>>()?,
        handle_is_correct,
        extra: Default::default(),
    })
}
