//! `com.atproto.sync.getRecord`: a record with the commit and the MST nodes that prove it is
//! (or is not) in the repository, as a CAR.

use cid::Cid;

use aurora_atproto::car::car_bytes;
use aurora_atproto::repo::Repo;
use aurora_generated::com::atproto::sync::get_record::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcResult};

use super::{available, root, CAR};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::record;
use crate::repo::SqlBlockStore;

/// A record with the commit and the MST nodes that prove it is (or is not) in the repository.
pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    let did = &params.did;
    let hosting = available(ctx, did, viewer).await?.map_err(Error::from)?;
    // A taken-down record is withheld from everyone but its account and the operators.
    if !viewer.is_some_and(|v| v.is_self_or_admin(did)) && record_taken_down(ctx, did, &params).await? {
        return Err(Error::RecordNotFound(Some("Could not find record".into())).into());
    }
    let root = root(hosting, did).map_err(Error::from)?;
    let commit: Cid = root.cid.to_cid().map_err(internal)?;
    let repo = Repo::load(SqlBlockStore::new(&ctx.db, did), commit).await.map_err(internal)?;
    let mut blocks = repo.record_proof(&params.collection, &params.rkey).await.map_err(internal)?;
    let (commit_cid, commit_bytes) = repo.commit().to_block();
    blocks.insert(commit_cid, commit_bytes);
    let bytes = car_bytes(commit, blocks).await.map_err(internal)?;
    Ok(RawBody::new(CAR, bytes))
}

async fn record_taken_down(ctx: &AppContext, did: &aurora_atproto::syntax::Did, params: &Params) -> XrpcResult<bool> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let found = record::Entity::find()
        .filter(record::Column::Did.eq(did))
        .filter(record::Column::Collection.eq(&params.collection))
        .filter(record::Column::Rkey.eq(&params.rkey))
        .filter(record::Column::TakedownRef.is_not_null())
        .one(&ctx.db)
        .await
        .map_err(internal)?;
    Ok(found.is_some())
}
