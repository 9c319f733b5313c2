//! `com.atproto.admin.getInviteCodes`: every invite code, newest first (`recent`) or most used
//! first (`usage`), paged by a cursor of the sort key and the code.

use sea_orm::sea_query::{Alias, Expr, Order, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, FromQueryResult};

use aurora_generated::com::atproto::admin::get_invite_codes::{Output, Params, ParamsSort};
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::admin::accounts;
use crate::api::{internal, views};
use crate::context::AppContext;
use crate::db::entities::{invite_code, invite_code_use};

#[derive(FromQueryResult)]
struct Row {
    code: String,
    created_at: String,
    used: i64,
}

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let by_usage = match params.sort.as_ref().map(ParamsSort::as_str).unwrap_or("recent") {
        "recent" => false,
        "usage" => true,
        other => return Err(XrpcError::invalid_request(format!("unknown sort method: {other}"))),
    };
    let cursor = match params.cursor.as_deref() {
        None => None,
        Some(raw) => Some(raw.split_once("::").ok_or_else(|| XrpcError::invalid_request("Malformed cursor"))?),
    };
    let limit = params.limit.clamp(1, 500) as u64;
    let used = Alias::new("used");
    let uses = Query::select()
        .expr(Expr::col((invite_code_use::Entity, invite_code_use::Column::Code)).count())
        .from(invite_code_use::Entity)
        .and_where(
            Expr::col((invite_code_use::Entity, invite_code_use::Column::Code))
                .equals((invite_code::Entity, invite_code::Column::Code)),
        )
        .to_owned();
    let mut inner = Query::select();
    inner
        .column((invite_code::Entity, invite_code::Column::Code))
        .column((invite_code::Entity, invite_code::Column::CreatedAt))
        .expr_as(SimpleExpr::SubQuery(None, Box::new(uses.into_sub_query_statement())), used.clone())
        .from(invite_code::Entity);
    // The count is a column of a derived table, so both databases can filter and sort by it.
    let t = Alias::new("t");
    let (code, created_at) = (Alias::new("code"), Alias::new("created_at"));
    let key = if by_usage { used.clone() } else { created_at.clone() };
    let mut query = Query::select();
    query
        .columns([(t.clone(), code.clone()), (t.clone(), created_at), (t.clone(), used)])
        .from_subquery(inner, t.clone())
        .limit(limit);
    if let Some((after, after_code)) = cursor {
        let after: SimpleExpr = if by_usage {
            after.parse::<i64>().map_err(|_| XrpcError::invalid_request("Malformed cursor"))?.into()
        } else {
            after.into()
        };
        let key_col = Expr::col((t.clone(), key.clone()));
        query.and_where(
            key_col
                .clone()
                .lt(after.clone())
                .or(key_col.eq(after).and(Expr::col((t.clone(), code.clone())).lt(after_code))),
        );
    }
    query.order_by((t.clone(), key), Order::Desc).order_by((t, code), Order::Desc);
    let backend = ctx.db.get_database_backend();
    let rows = Row::find_by_statement(backend.build(&query)).all(&ctx.db).await.map_err(internal)?;
    // As the reference pages: any non-empty page carries its last key.
    let next = rows
        .last()
        .map(|r| format!("{}::{}", if by_usage { r.used.to_string() } else { r.created_at.clone() }, r.code));
    let mut codes = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(invite) = accounts::invite(&ctx.db, &row.code).await.map_err(internal)? {
            codes.push(views::invite_code(invite)?);
        }
    }
    Ok(Output { codes, cursor: next, extra: Default::default() })
}
