//! Reads on each backend's own connections where the server has them ([`Reader`]): SQLite's
//! on the calling thread ([`SqliteReader`]), PostgreSQL's kept out of the pool
//! ([`PgReader`]); else through the pool.

use std::sync::{Arc, OnceLock};

use rusqlite::Connection;
use sea_orm::sea_query::{SelectStatement, Values};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement};
use sea_query_rusqlite::RusqliteValue;

use super::{PgReader, SqliteReader};

/// The server's own connections for its hottest reads, by backend.
// One per server, behind an `Arc`: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Reader {
    Sqlite(Arc<SqliteReader>),
    Postgres(Arc<PgReader>),
}

impl Reader {
    /// Readers of the database at `url`: SQLite's for a SQLite file, PostgreSQL's for a
    /// PostgreSQL URL; `None` otherwise (an in-memory SQLite database).
    pub fn open(url: &str) -> Option<Reader> {
        SqliteReader::open(url)
            .map(|reader| Reader::Sqlite(Arc::new(reader)))
            .or_else(|| PgReader::open(url).map(|reader| Reader::Postgres(Arc::new(reader))))
    }

    /// SQLite's readers, for reads written for them alone.
    pub fn sqlite(&self) -> Option<&SqliteReader> {
        match self {
            Reader::Sqlite(reader) => Some(reader),
            Reader::Postgres(_) => None,
        }
    }
}

/// A statement's SQL text for each backend, built on first use: building it with sea-query on
/// every request cost more than the point read it is for.
#[derive(Default)]
pub struct BuiltSql(OnceLock<[String; 2]>);

impl BuiltSql {
    pub const fn new() -> BuiltSql {
        BuiltSql(OnceLock::new())
    }

    /// The text for `backend` of the statement `query` builds (with any values: only its shape
    /// is kept; the values are bound when it runs).
    pub fn get(&'static self, backend: DbBackend, query: impl FnOnce() -> SelectStatement) -> &'static str {
        let table = self.0.get_or_init(|| {
            let query = query();
            [DbBackend::Sqlite, DbBackend::Postgres].map(|backend| backend.build(&query).sql)
        });
        &table[usize::from(backend == DbBackend::Postgres)]
    }
}

/// Checks that `sql` (built once, by [`BuiltSql`]) is the text `query` builds on each backend and
/// that `query` binds `values`, in order: what the reads bind when they run it.
#[cfg(test)]
pub fn assert_built_once(query: SelectStatement, sql: fn(DbBackend) -> &'static str, values: &[&str]) {
    for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
        let built = backend.build(&query);
        assert_eq!(built.sql, sql(backend), "{backend:?}");
        let bound: Vec<sea_orm::Value> = built.values.expect("values").0.into_iter().collect();
        let expected: Vec<sea_orm::Value> = values.iter().map(|value| sea_orm::Value::from(*value)).collect();
        assert_eq!(bound, expected, "{backend:?}");
    }
}

/// The one row (if any) of a statement built once per backend (`sql`) that binds only text,
/// on one of `reader`'s connections where there are some, here and now, else through the pool.
/// `on_reader` reads the row by column position (by name, rusqlite compares every column's
/// name), `on_pool` by name.
pub async fn point_read<T>(
    db: &DatabaseConnection,
    reader: Option<&Reader>,
    sql: impl Fn(DbBackend) -> &'static str,
    values: &[&str],
    on_reader: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    on_pool: impl FnOnce(&QueryResult) -> Result<T, DbErr>,
) -> Result<Option<T>, DbErr> {
    let bound = || Values(values.iter().map(|value| sea_orm::Value::from(*value)).collect());
    match reader {
        Some(Reader::Sqlite(reader)) => {
            use rusqlite::OptionalExtension;
            let read = |connection: &Connection| {
                connection
                    .prepare_cached(sql(DbBackend::Sqlite))?
                    .query_row(rusqlite::params_from_iter(values), on_reader)
                    .optional()
            };
            reader.read(read).map_err(|e| DbErr::Custom(format!("cannot read: {e}")))
        }
        Some(Reader::Postgres(reader)) => {
            let row = reader.fetch_optional(sql(DbBackend::Postgres), bound()).await?;
            row.map(|row| on_pool(&QueryResult::from(row))).transpose()
        }
        None => {
            let backend = db.get_database_backend();
            let statement = Statement::from_sql_and_values(backend, sql(backend), bound().0);
            db.query_one(statement).await?.as_ref().map(on_pool).transpose()
        }
    }
}

/// Every row of a bounded statement built once per backend (`sql`), binding `values`, as
/// [`point_read`] reads one: on `reader` where there is one (on SQLite here and now: through
/// sqlx each row would be a hand-off of its own), else through the pool.
pub async fn bounded_read<T>(
    db: &DatabaseConnection,
    reader: Option<&Reader>,
    sql: impl Fn(DbBackend) -> &'static str,
    values: &[sea_orm::Value],
    on_reader: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    mut on_pool: impl FnMut(&QueryResult) -> Result<T, DbErr>,
) -> Result<Vec<T>, DbErr> {
    match reader {
        Some(Reader::Sqlite(reader)) => {
            let read = |connection: &Connection| {
                let mut statement = connection.prepare_cached(sql(DbBackend::Sqlite))?;
                let values: Vec<RusqliteValue> = values.iter().cloned().map(RusqliteValue).collect();
                let rows = statement.query_map(rusqlite::params_from_iter(values.iter()), on_reader)?;
                rows.collect::<rusqlite::Result<Vec<T>>>()
            };
            reader.read(read).map_err(|e| DbErr::Custom(format!("cannot read: {e}")))
        }
        Some(Reader::Postgres(reader)) => {
            let rows = reader.fetch_all(sql(DbBackend::Postgres), Values(values.to_vec())).await?;
            rows.into_iter().map(QueryResult::from).map(|row| on_pool(&row)).collect()
        }
        None => {
            let backend = db.get_database_backend();
            let statement = Statement::from_sql_and_values(backend, sql(backend), values.iter().cloned());
            db.query_all(statement).await?.iter().map(on_pool).collect()
        }
    }
}

/// Every row of `sql`, a statement for PostgreSQL alone, binding `values`: on `reader`'s
/// connections where there are some, else through the pool.
pub async fn postgres_rows(
    db: &DatabaseConnection,
    reader: Option<&Reader>,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    match reader {
        Some(Reader::Postgres(reader)) => {
            Ok(reader.fetch_all(sql, Values(values)).await?.into_iter().map(QueryResult::from).collect())
        }
        _ => db.query_all(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await,
    }
}
