//! `com.atproto.server.checkAccountStatus`: how far an account moving here has come — its
//! repository, its blobs, and whether its identity points here.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use aurora_atproto::mst::ListOptions;
use aurora_atproto::repo::Repo;
use aurora_atproto::syntax::{CidString, Did};
use aurora_generated::com::atproto::server::check_account_status::Output;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use super::{account_not_found, identity_problem};
use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{blob, record_blob};
use crate::repo::SqlBlockStore;
use crate::sequencer::AccountStatus;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let did = &auth.did;
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?.ok_or_else(account_not_found)?;
    let (root, _) = crate::repo::current_commit(&ctx.db, did)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::internal(format!("{did} has no repository")))?;
    let store = SqlBlockStore::new(&ctx.db, did);
    let repo = Repo::load(store, root.cid.to_cid().map_err(internal)?).await.map_err(internal)?;
    let records = repo.list(ListOptions::all()).await.map_err(internal)?.len();
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

/// How many distinct blobs the account's records reference, and how many of those are stored.
async fn blob_counts(ctx: &AppContext, did: &Did) -> XrpcResult<(i64, i64)> {
    let referenced: Vec<CidString> = record_blob::Entity::find()
        .select_only()
        .column(record_blob::Column::BlobCid)
        .distinct()
        .filter(record_blob::Column::Did.eq(did))
        .into_tuple()
        .all(&ctx.db)
        .await
        .map_err(internal)?;
    let mut stored = 0;
    for cid in &referenced {
        let present = blob::Entity::find()
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::Cid.eq(cid))
            .filter(blob::Column::TempKey.is_null())
            .one(&ctx.db)
            .await
            .map_err(internal)?
            .is_some();
        stored += i64::from(present);
    }
    Ok((referenced.len() as i64, stored))
}
