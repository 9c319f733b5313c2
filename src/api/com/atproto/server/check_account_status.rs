//! `com.atproto.server.checkAccountStatus`: how far an account moving here has come — its
//! repository, its blobs, and whether its identity points here.

use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use aurora_atproto::syntax::Did;
use aurora_generated::com::atproto::server::check_account_status::Output;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use super::{account_not_found, identity_problem};
use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{blob, record, record_blob};
use crate::sequencer::AccountStatus;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let did = &auth.did;
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?.ok_or_else(account_not_found)?;
    let (root, _) = crate::repo::current_commit(&ctx.db, did)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::internal(format!("{did} has no repository")))?;
    let records = record::Entity::find().filter(record::Column::Did.eq(did)).count(&ctx.db).await.map_err(internal)?;
    let blocks = crate::repo::block_count(&ctx.db, did).await.map_err(internal)?;
    let (expected_blobs, imported_blobs) = blob_counts(ctx, did).await?;
    Ok(Output {
        activated: found.status() == AccountStatus::Active,
        valid_did: identity_problem(ctx, did).await?.is_none(),
        repo_commit: root.cid.clone(),
        repo_rev: root.rev.into_string(),
        repo_blocks: blocks as i64,
        indexed_records: records as i64,
        private_state_values: 0,
        expected_blobs,
        imported_blobs,
        extra: Default::default(),
    })
}

/// How many distinct blobs the account's records reference, and how many of those are stored:
/// counted by the database, whatever the repository's size.
async fn blob_counts(ctx: &AppContext, did: &Did) -> XrpcResult<(i64, i64)> {
    let distinct = || Expr::col((record_blob::Entity, record_blob::Column::BlobCid)).count_distinct();
    let expected = Query::select()
        .expr(distinct())
        .from(record_blob::Entity)
        .and_where(Expr::col((record_blob::Entity, record_blob::Column::Did)).eq(did.as_str()))
        .to_owned();
    let imported = Query::select()
        .expr(distinct())
        .from(record_blob::Entity)
        .inner_join(
            blob::Entity,
            Expr::col((blob::Entity, blob::Column::Cid))
                .equals((record_blob::Entity, record_blob::Column::BlobCid))
                .and(
                    Expr::col((blob::Entity, blob::Column::Did))
                        .equals((record_blob::Entity, record_blob::Column::Did)),
                ),
        )
        .and_where(Expr::col((record_blob::Entity, record_blob::Column::Did)).eq(did.as_str()))
        .and_where(Expr::col((blob::Entity, blob::Column::TempKey)).is_null())
        .to_owned();
    Ok((count(ctx, &expected).await?, count(ctx, &imported).await?))
}

async fn count(ctx: &AppContext, query: &SelectStatement) -> XrpcResult<i64> {
    let statement = ctx.db.get_database_backend().build(query);
    let row = ctx.db.query_one(statement).await.map_err(internal)?;
    Ok(row.map(|r| r.try_get_by_index::<i64>(0)).transpose().map_err(internal)?.unwrap_or(0))
}
