//! `com.atproto.sync.listRepos`: every hosted repository with its current commit and status,
//! in DID order.

use sea_orm::sea_query::{Expr, Order, Query, SelectStatement};
use sea_orm::DbBackend;

use aurora_generated::com::atproto::sync::list_repos::{Output, Params, Repo};
use aurora_xrpc::XrpcResult;

use crate::account::hosting_status;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{actor, repo_root};
use crate::db::{bounded_read, BuiltSql};
use crate::repo::records::malformed;
use crate::sequencer::AccountStatus;

/// A page of repositories with their accounts' states, joined: one statement, where each
/// repository's account used to be a statement of its own.
fn page_query(cursor: Option<&str>, limit: u64) -> SelectStatement {
    let root = |column| Expr::col((repo_root::Entity, column));
    let account = |column| Expr::col((actor::Entity, column));
    let mut query = Query::select();
    query
        .column((repo_root::Entity, repo_root::Column::Did))
        .column((repo_root::Entity, repo_root::Column::Cid))
        .column((repo_root::Entity, repo_root::Column::Rev))
        .expr(account(actor::Column::Did).is_not_null())
        .column((actor::Entity, actor::Column::DeletedAt))
        .column((actor::Entity, actor::Column::TakedownRef))
        .column((actor::Entity, actor::Column::TakedownUntil))
        .column((actor::Entity, actor::Column::DeactivatedAt))
        .from(repo_root::Entity)
        .left_join(actor::Entity, account(actor::Column::Did).equals((repo_root::Entity, repo_root::Column::Did)));
    if let Some(cursor) = cursor {
        query.and_where(root(repo_root::Column::Did).gt(cursor));
    }
    query.order_by((repo_root::Entity, repo_root::Column::Did), Order::Asc).limit(limit);
    query
}

/// [`page_query`]'s SQL for each backend, with a cursor or without, built once.
fn page_sql(backend: DbBackend, cursor: bool) -> &'static str {
    static FIRST: BuiltSql = BuiltSql::new();
    static AFTER: BuiltSql = BuiltSql::new();
    match cursor {
        false => FIRST.get(backend, || page_query(None, 0)),
        true => AFTER.get(backend, || page_query(Some(""), 0)),
    }
}

/// One repository of a page, by column.
struct Row {
    did: String,
    cid: String,
    rev: String,
    has_account: bool,
    deleted_at: Option<String>,
    takedown_ref: Option<String>,
    takedown_until: Option<String>,
    deactivated_at: Option<String>,
}

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let limit = params.limit.clamp(1, 1000) as u64;
    // An empty cursor is no cursor, as the reference reads it.
    let cursor = match params.cursor.as_ref().filter(|c| !c.is_empty()) {
        // The cursor is the last DID of the previous page.
        Some(cursor) => Some(
            cursor
                .parse::<aurora_atproto::syntax::Did>()
                .map_err(|_| aurora_xrpc::XrpcError::invalid_request("Malformed cursor"))?,
        ),
        None => None,
    };
    let mut values: Vec<sea_orm::Value> = cursor.iter().map(|did| did.as_str().into()).collect();
    values.push(sea_orm::Value::BigUnsigned(Some(limit)));
    let on_reader = |row: &rusqlite::Row<'_>| {
        // In [`page_query`]'s order.
        Ok(Row {
            did: row.get(0)?,
            cid: row.get(1)?,
            rev: row.get(2)?,
            has_account: row.get(3)?,
            deleted_at: row.get(4)?,
            takedown_ref: row.get(5)?,
            takedown_until: row.get(6)?,
            deactivated_at: row.get(7)?,
        })
    };
    let on_pool = |row: &sea_orm::QueryResult| {
        Ok(Row {
            did: row.try_get_by_index(0)?,
            cid: row.try_get_by_index(1)?,
            rev: row.try_get_by_index(2)?,
            has_account: row.try_get_by_index(3)?,
            deleted_at: row.try_get_by_index(4)?,
            takedown_ref: row.try_get_by_index(5)?,
            takedown_until: row.try_get_by_index(6)?,
            deactivated_at: row.try_get_by_index(7)?,
        })
    };
    let sql = |backend| page_sql(backend, cursor.is_some());
    let reader = ctx.reader.as_deref();
    let rows = bounded_read(&ctx.db, reader, sql, &values, on_reader, on_pool).await.map_err(internal)?;
    // Like the reference, every non-empty page carries a cursor, the short last one too: the
    // client learns the listing ended from the empty page after it.
    let next = rows.last().map(|row| row.did.clone());
    let repos = rows.into_iter().map(repo).collect::<Result<_, _>>().map_err(internal)?;
    Ok(Output { repos, cursor: next, extra: Default::default() })
}

fn repo(row: Row) -> Result<Repo, sea_orm::DbErr> {
    let status = match row.has_account {
        // A repository whose account row is gone is listed as active, as before.
        false => AccountStatus::Active,
        true if row.deleted_at.is_some() => AccountStatus::Deleted,
        true => hosting_status(row.takedown_ref.is_some(), row.takedown_until.is_some(), row.deactivated_at.is_some()),
    };
    Ok(Repo {
        did: row.did.parse().map_err(|_| malformed("DID", &row.did))?,
        head: row.cid.parse().map_err(|_| malformed("CID", &row.cid))?,
        rev: row.rev.parse().map_err(|_| malformed("rev", &row.rev))?,
        active: Some(status == AccountStatus::Active),
        status: status.as_str().map(Into::into),
        extra: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_pages_are_the_built_statements() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            assert_eq!(backend.build(&page_query(None, 7)).sql, page_sql(backend, false));
            let built = backend.build(&page_query(Some("did:plc:abc"), 7));
            assert_eq!(built.sql, page_sql(backend, true));
            let bound: Vec<sea_orm::Value> = built.values.expect("values").0.into_iter().collect();
            assert_eq!(bound, [sea_orm::Value::from("did:plc:abc"), sea_orm::Value::BigUnsigned(Some(7))]);
        }
    }
}
