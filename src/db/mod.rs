//! The database: SQLite by default, PostgreSQL when the URL says so. The same SeaORM entities
//! and migrations serve both.

pub mod entities;
pub mod notices;
mod pg_reader;
mod reader;
mod sqlite_reader;
mod sqlite_writer;
mod wal_sync;

pub use pg_reader::{Checkout, PgReader};
#[cfg(test)]
pub use reader::assert_built_once;
pub use reader::{bounded_read, point_read, postgres_rows, BuiltSql, Reader};
pub use sqlite_reader::SqliteReader;
pub use sqlite_writer::SqliteWriter;
pub use wal_sync::WalSync;

use std::time::Duration;

use aurora_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement};

/// How long a SQLite connection waits for another's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Each reading SQLite connection's own page cache (pooled, and [`SqliteReader`]'s), in KiB
/// (SQLite's notation: negative). The default of 2 MB each took a fifth of the server's memory
/// once eight readers had warmed up, and bought no measurable speed: a page missing from a
/// connection's cache is still in the operating system's, one `pread` away. The writer
/// connection keeps the default.
const READER_CACHE_SIZE: i64 = -512;

/// A statement slower than this is logged (with its text, never its bound values).
const SLOW_STATEMENT: Duration = Duration::from_millis(500);

/// Connects and brings the schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        ensure_sqlite_dir(url);
    }
    let mut options = ConnectOptions::new(url.to_owned());
    // Statements are not logged, except those slower than SLOW_STATEMENT, as warnings.
    options
        .sqlx_logging(true)
        .sqlx_logging_level(log::LevelFilter::Off)
        .sqlx_slow_statements_logging_settings(log::LevelFilter::Warn, SLOW_STATEMENT)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if is_sqlite {
        // One writer at a time is all SQLite allows; readers run beside it under WAL. FULL
        // synchronous mode makes every acknowledged commit durable, as the reference PDS's is.
        // A connection to a local file cannot go stale: no need to ping it on every checkout.
        options.max_connections(8).min_connections(1).test_before_acquire(false).map_sqlx_sqlite_opts(|opts| {
            opts.pragma("cache_size", READER_CACHE_SIZE.to_string())
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .create_if_missing(true)
                // SQLite runs on a worker thread that hands rows over through a channel of
                // this many; the default of 50 makes a repository export switch threads every
                // 50 blocks.
                .row_buffer_size(1024)
        });
    } else {
        // A checkout is not pinged first: on loopback or a LAN the ping is a round trip as
        // long as a point read's, paid by every statement. A connection the server dropped
        // (a database restart) fails the one request that finds it, and leaves the pool.
        options.max_connections(16).min_connections(1).test_before_acquire(false);
    }
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// The SQLite journal mode in effect (for tests and the health report).
pub async fn sqlite_journal_mode(db: &DatabaseConnection) -> Result<Option<String>, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let row = db.query_one(Statement::from_string(DbBackend::Sqlite, "PRAGMA journal_mode")).await?;
    Ok(row.and_then(|r| r.try_get_by_index::<String>(0).ok()))
}

fn ensure_sqlite_dir(url: &str) {
    let Some(path) = sqlite_path(url) else { return };
    if let Some(parent) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// The file a `sqlite:` URL names; `None` for other URLs and in-memory databases.
fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite:")?;
    let path = path.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// A cheap round trip, for the health check.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn a_sqlite_url_names_its_file() {
        assert_eq!(sqlite_path("sqlite:///srv/pds/aurora.sqlite?mode=rwc"), Some("/srv/pds/aurora.sqlite"));
        assert_eq!(sqlite_path("sqlite://./data/aurora.sqlite"), Some("./data/aurora.sqlite"));
        assert_eq!(sqlite_path("sqlite:aurora.sqlite"), Some("aurora.sqlite"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://localhost/pds"), None);
    }
}
