//! What `getBlob` needs of a blob's row (its type and size), read in one point read: on
//! SQLite's reader connections, on the request's own thread, rather than through sqlx's
//! connection thread.

use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{DatabaseConnection, DbBackend, DbErr};

use aurora_atproto::syntax::{CidString, Did};

use crate::db::entities::blob;
use crate::db::{point_read, BuiltSql, Reader};

/// A blob of an account's that may be served: stored for good (not an upload waiting for a
/// record) and not taken down.
pub struct Served {
    pub mime_type: String,
    pub size: u64,
}

fn served_query(did: &str, cid: &str) -> SelectStatement {
    let column = |column| Expr::col((blob::Entity, column));
    let mut query = Query::select();
    query
        .column((blob::Entity, blob::Column::MimeType))
        .column((blob::Entity, blob::Column::Size))
        .from(blob::Entity)
        .and_where(column(blob::Column::Did).eq(did))
        .and_where(column(blob::Column::Cid).eq(cid))
        .and_where(column(blob::Column::TempKey).is_null())
        .and_where(column(blob::Column::TakedownRef).is_null());
    query
}

/// [`served_query`]'s SQL for each backend, built once.
fn served_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltSql = BuiltSql::new();
    SQL.get(backend, || served_query("", ""))
}

/// `did`'s blob `cid`, if it may be served.
pub async fn served(
    db: &DatabaseConnection,
    reader: Option<&Reader>,
    did: &Did,
    cid: &CidString,
) -> Result<Option<Served>, DbErr> {
    let on_reader = |row: &rusqlite::Row<'_>| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?));
    let on_pool = |row: &sea_orm::QueryResult| Ok((row.try_get("", "mime_type")?, row.try_get("", "size")?));
    let found = point_read(db, reader, served_sql, &[did.as_str(), cid.as_str()], on_reader, on_pool).await?;
    Ok(found.map(|(mime_type, size)| Served { mime_type, size: u64::try_from(size).unwrap_or(0) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_statement_binds_its_values_where_the_built_one_does() {
        crate::db::assert_built_once(served_query("did:plc:abc", "bafkrei"), served_sql, &["did:plc:abc", "bafkrei"]);
    }
}
