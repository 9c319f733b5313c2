//! `com.atproto.repo.listRecords`: a page of one collection's records, newest first unless
//! reversed (record keys are TIDs, which sort by time).

use sea_orm::sea_query::{Expr, Order};

use aurora_generated::com::atproto::repo::list_records::{Output, Params, Record};
use aurora_xrpc::XrpcResult;

use super::hosted;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::record;
use crate::repo::records;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let actor = hosted(ctx, &params.repo).await?;
    let reverse = params.reverse.unwrap_or(false);
    let limit = params.limit.clamp(1, 100) as u64;
    let rkey = || Expr::col((record::Entity, record::Column::Rkey));
    let rows = records::stored(&ctx.db, ctx.sqlite_reader.as_deref(), &actor.did, |q| {
        q.and_where(Expr::col((record::Entity, record::Column::Collection)).eq(params.collection.as_str()));
        // An empty cursor is no cursor, as the reference reads it.
        if let Some(cursor) = params.cursor.as_ref().filter(|c| !c.is_empty()) {
            q.and_where(if reverse { rkey().gt(cursor.as_str()) } else { rkey().lt(cursor.as_str()) });
        }
        q.order_by((record::Entity, record::Column::Rkey), if reverse { Order::Asc } else { Order::Desc }).limit(limit);
    })
    .await
    .map_err(internal)?;
    let cursor = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.rkey().to_owned())).flatten();
    let records = rows
        .iter()
        .map(|row| {
            Ok(Record {
                value: row.value().map_err(internal)?,
                uri: row.uri.clone(),
                cid: row.cid.clone(),
                extra: Default::default(),
            })
        })
        .collect::<XrpcResult<_>>()?;
    Ok(Output { records, cursor, extra: Default::default() })
}
