//! What `uploadBlob` reads of the database: the uploading account, before the body; the blob's
//! row once its CID is known; whether a record references it, once the row is written. Point
//! reads on SQLite's reader connections on the request's own thread: through sqlx, each was a
//! hand-off to its connection thread and back, and their thread switches cost more than
//! hashing a 1 MiB upload.

use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement, SimpleExpr};
use sea_orm::{DatabaseConnection, DbBackend, DbErr};

use aurora_atproto::syntax::{CidString, Did};

use crate::account::status::AccountStatus;
use crate::db::entities::{actor, blob, record_blob};
use crate::db::{point_read, BuiltSql, Reader};

/// The account an upload is for.
pub struct Uploader {
    pub status: AccountStatus,
    /// The bytes of its uploads no record references yet.
    pub temporary_bytes: u64,
}

fn uploader_query(did: &str) -> SelectStatement {
    let temporary = Query::select()
        // PostgreSQL sums bigints as numeric.
        .expr(Expr::col((blob::Entity, blob::Column::Size)).sum().cast_as(Alias::new("BIGINT")))
        .from(blob::Entity)
        .and_where(Expr::col((blob::Entity, blob::Column::Did)).eq(did))
        .and_where(Expr::col((blob::Entity, blob::Column::TempKey)).is_not_null())
        .to_owned();
    let column = |column| Expr::col((actor::Entity, column));
    Query::select()
        .expr(column(actor::Column::TakedownRef).is_not_null())
        .expr(column(actor::Column::TakedownUntil).is_not_null())
        .expr(column(actor::Column::DeactivatedAt).is_not_null())
        .expr(SimpleExpr::SubQuery(None, Box::new(temporary.into_sub_query_statement())))
        .from(actor::Entity)
        .and_where(column(actor::Column::Did).eq(did))
        .and_where(column(actor::Column::DeletedAt).is_null())
        .to_owned()
}

fn uploader_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltSql = BuiltSql::new();
    SQL.get(backend, || uploader_query(""))
}

/// The hosted account `did` (a deleted one waiting out its grace period is not), with what
/// its uploads already hold.
pub async fn uploader(db: &DatabaseConnection, reader: Option<&Reader>, did: &Did) -> Result<Option<Uploader>, DbErr> {
    let uploader = |(taken_down, until, deactivated, bytes): (bool, bool, bool, Option<i64>)| Uploader {
        status: crate::account::hosting_status(taken_down, until, deactivated),
        temporary_bytes: u64::try_from(bytes.unwrap_or(0)).unwrap_or(0),
    };
    let on_reader = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?));
    let on_pool = |row: &sea_orm::QueryResult| {
        Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?, row.try_get_by_index(3)?))
    };
    let found = point_read(db, reader, uploader_sql, &[did.as_str(), did.as_str()], on_reader, on_pool).await?;
    Ok(found.map(uploader))
}

/// A blob row of an account's: `None` when there is none, `Some(None)` when the blob is stored
/// for good, `Some(Some(key))` when it is an upload still waiting for a record, under `key`.
pub type Row = Option<Option<String>>;

fn blob_row(did: &str, cid: &str) -> SelectStatement {
    Query::select()
        .from(blob::Entity)
        .and_where(Expr::col((blob::Entity, blob::Column::Did)).eq(did))
        .and_where(Expr::col((blob::Entity, blob::Column::Cid)).eq(cid))
        .to_owned()
}

fn row_query(did: &str, cid: &str) -> SelectStatement {
    let temp_key = blob_row(did, cid).column((blob::Entity, blob::Column::TempKey)).to_owned();
    Query::select()
        .expr(Expr::exists(blob_row(did, cid).expr(Expr::cust("1")).to_owned()))
        .expr(SimpleExpr::SubQuery(None, Box::new(temp_key.into_sub_query_statement())))
        .to_owned()
}

fn row_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltSql = BuiltSql::new();
    SQL.get(backend, || row_query("", ""))
}

/// What `did` already has of blob `cid`.
pub async fn row(db: &DatabaseConnection, reader: Option<&Reader>, did: &Did, cid: &CidString) -> Result<Row, DbErr> {
    let values = [did.as_str(), cid.as_str(), did.as_str(), cid.as_str()];
    let on_reader = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?));
    let on_pool = |row: &sea_orm::QueryResult| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
    let found: Option<(bool, Option<String>)> = point_read(db, reader, row_sql, &values, on_reader, on_pool).await?;
    // The statement reads no table of its own: it always answers one row.
    let (present, temp_key) = found.ok_or_else(|| DbErr::Custom("the blob's row read no row".into()))?;
    Ok(present.then_some(temp_key))
}

fn referenced_query(did: &str, cid: &str) -> SelectStatement {
    let reference = Query::select()
        .expr(Expr::cust("1"))
        .from(record_blob::Entity)
        .and_where(Expr::col((record_blob::Entity, record_blob::Column::Did)).eq(did))
        .and_where(Expr::col((record_blob::Entity, record_blob::Column::BlobCid)).eq(cid))
        .to_owned();
    Query::select().expr(Expr::exists(reference)).to_owned()
}

fn referenced_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltSql = BuiltSql::new();
    SQL.get(backend, || referenced_query("", ""))
}

/// Whether a record of `did`'s references blob `cid` (after an import, records may arrive
/// before their blobs).
pub async fn referenced(
    db: &DatabaseConnection,
    reader: Option<&Reader>,
    did: &Did,
    cid: &CidString,
) -> Result<bool, DbErr> {
    let on_reader = |row: &rusqlite::Row<'_>| row.get(0);
    let on_pool = |row: &sea_orm::QueryResult| row.try_get_by_index(0);
    let found = point_read(db, reader, referenced_sql, &[did.as_str(), cid.as_str()], on_reader, on_pool).await?;
    Ok(found.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_statements_bind_their_values_where_the_built_ones_do() {
        let (did, cid) = ("did:plc:abc", "bafkrei");
        crate::db::assert_built_once(uploader_query(did), uploader_sql, &[did, did]);
        crate::db::assert_built_once(row_query(did, cid), row_sql, &[did, cid, did, cid]);
        crate::db::assert_built_once(referenced_query(did, cid), referenced_sql, &[did, cid]);
    }
}
