//! Removing blobs nobody needs: uploads no record claimed within the grace period, and blobs
//! whose last referencing record was changed or deleted.

use aurora_atproto::syntax::Did;
use cid::Cid;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::BlobStore;
use crate::context::AppContext;
use crate::db::entities::{blob, record_blob};

/// How long an upload may wait for a record to reference it.
pub const TEMP_GRACE_SECS: i64 = 60 * 60;

/// Deletes `did`'s permanent blobs among `cids` that no record references any more.
pub async fn release_unreferenced(ctx: &AppContext, did: &Did, cids: &[Cid]) -> Result<usize, sea_orm::DbErr> {
    let mut released = 0;
    for cid in cids {
        let referenced = record_blob::Entity::find()
            .filter(record_blob::Column::Did.eq(did))
            .filter(record_blob::Column::BlobCid.eq(cid.to_string()))
            .one(&ctx.db)
            .await?
            .is_some();
        if referenced {
            continue;
        }
        blob::Entity::delete_many()
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::Cid.eq(cid.to_string()))
            .filter(blob::Column::TempKey.is_null())
            .exec(&ctx.db)
            .await?;
        if let Err(e) = ctx.blobs.delete(did, cid).await {
            tracing::warn!(%did, %cid, error = %e, "could not delete a released blob");
        }
        released += 1;
    }
    Ok(released)
}

/// Deletes uploads older than the grace period that no record claimed. Returns how many.
pub async fn collect_garbage(ctx: &AppContext) -> Result<usize, sea_orm::DbErr> {
    let cutoff =
        aurora_atproto::syntax::Datetime::from_unix_micros((crate::auth::now_secs() - TEMP_GRACE_SECS) * 1_000_000);
    let stale = blob::Entity::find()
        .filter(blob::Column::TempKey.is_not_null())
        .filter(blob::Column::CreatedAt.lt(cutoff.as_str()))
        .all(&ctx.db)
        .await?;
    for row in &stale {
        if let Some(key) = &row.temp_key {
            let _ = ctx.blobs.delete_temp(key).await;
        }
        blob::Entity::delete_many()
            .filter(blob::Column::Did.eq(row.did.clone()))
            .filter(blob::Column::Cid.eq(row.cid.clone()))
            .filter(blob::Column::TempKey.is_not_null())
            .exec(&ctx.db)
            .await?;
    }
    Ok(stale.len())
}
