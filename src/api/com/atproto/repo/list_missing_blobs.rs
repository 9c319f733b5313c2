//! `com.atproto.repo.listMissingBlobs`: blobs the caller's records reference but that were
//! never uploaded here (after an import), one entry per blob, in CID order.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_generated::com::atproto::repo::list_missing_blobs::{Output, Params, RecordBlob};
use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{blob, record_blob};

pub async fn handle(ctx: &AppContext, auth: Access, params: Params) -> XrpcResult<Output> {
    let did = &auth.did;
    let limit = params.limit.clamp(1, 1000) as usize;
    let mut query = record_blob::Entity::find().filter(record_blob::Column::Did.eq(did));
    // An empty cursor is no cursor, as the reference reads it.
    if let Some(cursor) = params.cursor.as_ref().filter(|c| !c.is_empty()) {
        query = query.filter(record_blob::Column::BlobCid.gt(cursor.as_str()));
    }
    let mut blobs = Vec::new();
    let mut last = None;
    // Scan references in CID order, skipping those whose blob is present, until a page is full.
    let mut offset = 0;
    'scan: loop {
        let rows = query
            .clone()
            .order_by_asc(record_blob::Column::BlobCid)
            .offset(offset)
            .limit(500)
            .all(&ctx.db)
            .await
            .map_err(internal)?;
        if rows.is_empty() {
            break;
        }
        offset += rows.len() as u64;
        for row in rows {
            if last.as_ref() == Some(&row.blob_cid) {
                continue;
            }
            let present = blob::Entity::find()
                .filter(blob::Column::Did.eq(did))
                .filter(blob::Column::Cid.eq(&row.blob_cid))
                .one(&ctx.db)
                .await
                .map_err(internal)?
                .is_some();
            last = Some(row.blob_cid.clone());
            if !present {
                blobs.push(RecordBlob {
                    cid: row.blob_cid.clone(),
                    record_uri: row.record_uri.clone(),
                    extra: Default::default(),
                });
                if blobs.len() == limit {
                    break 'scan;
                }
            }
        }
    }
    // As the reference pages: any non-empty page carries its last CID.
    let cursor = blobs.last().map(|b| b.cid.as_str().to_owned());
    Ok(Output { blobs, cursor, extra: Default::default() })
}
