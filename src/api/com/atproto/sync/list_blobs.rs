//! `com.atproto.sync.listBlobs`: the CIDs of a repository's stored blobs, in CID order;
//! with `since`, only those records written after that rev reference.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

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
    // With `since`, only blobs that records written after that rev reference: one subquery,
    // however many records that is.
    if let Some(since) = &params.since {
        use crate::db::entities::{record, record_blob};
        use sea_orm::sea_query::{Expr, Query};
        let referenced = Query::select()
            .column((record_blob::Entity, record_blob::Column::BlobCid))
            .from(record_blob::Entity)
            .inner_join(
                record::Entity,
                Expr::col((record::Entity, record::Column::Uri))
                    .equals((record_blob::Entity, record_blob::Column::RecordUri)),
            )
            .and_where(Expr::col((record_blob::Entity, record_blob::Column::Did)).eq(did.as_str()))
            .and_where(Expr::col((record::Entity, record::Column::Did)).eq(did.as_str()))
            .and_where(Expr::col((record::Entity, record::Column::Rev)).gt(since.as_str()))
            .to_owned();
        query = query.filter(blob::Column::Cid.in_subquery(referenced));
    }
    let rows = query.limit(limit).all(&ctx.db).await.map_err(internal)?;
    // As the reference pages: any non-empty page carries its last CID.
    let cursor = rows.last().map(|r| r.cid.as_str().to_owned());
    let cids = rows.into_iter().map(|r| r.cid).collect();
    Ok(Output { cids, cursor, extra: Default::default() })
}
