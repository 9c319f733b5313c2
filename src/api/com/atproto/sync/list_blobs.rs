//! `com.atproto.sync.listBlobs`: the CIDs of a repository's stored blobs, in CID order;
//! with `since`, only those records written after that rev reference.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_atproto::syntax::AtUri;
use aurora_generated::com::atproto::sync::list_blobs::{Error, Output, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::XrpcResult;

use super::available;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::blob;

pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<Output> {
    let did = &params.did;
    available(ctx, did, viewer).await?.map_err(Error::from)?;
    let limit = params.limit.clamp(1, 1000) as u64;
    let mut query = blob::Entity::find()
        .filter(blob::Column::Did.eq(did))
        .filter(blob::Column::TempKey.is_null())
        .order_by_asc(blob::Column::Cid);
    // An empty cursor is no cursor, as the reference reads it.
    if let Some(cursor) = params.cursor.as_ref().filter(|c| !c.is_empty()) {
        query = query.filter(blob::Column::Cid.gt(cursor.as_str()));
    }
    // With `since`, only blobs that records written after that rev reference.
    if let Some(since) = &params.since {
        use crate::db::entities::record;
        let uris: Vec<AtUri> = record::Entity::find()
            .select_only()
            .column(record::Column::Uri)
            .filter(record::Column::Did.eq(did))
            .filter(record::Column::Rev.gt(since.as_str()))
            .into_tuple()
            .all(&ctx.db)
            .await
            .map_err(internal)?;
        let cids = crate::blobs::refs::stored_for(&ctx.db, &uris).await.map_err(internal)?;
        query = query.filter(blob::Column::Cid.is_in(cids));
    }
    let rows = query.limit(limit).all(&ctx.db).await.map_err(internal)?;
    let cursor = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.cid.as_str().to_owned())).flatten();
    let cids = rows.into_iter().map(|r| r.cid).collect();
    Ok(Output { cids, cursor, extra: Default::default() })
}
