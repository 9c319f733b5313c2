//! Point reads on SQLite without a thread hop. sqlx runs each SQLite connection on a thread of
//! its own and hands every statement, and every row back, across a channel; for a lookup of a
//! few cached pages those hand-offs (a thread woken each way) cost more than the read itself.
//! The hottest lookups (a record by its key, a page of records) run here instead: on a
//! read-only connection borrowed from a small stack, on the calling task's own thread, like the
//! writer's statements on its. Only bounded reads belong on a runtime thread; an unbounded one
//! (a repository export) uses a connection from here on a blocking thread, where it cannot hold
//! up the runtime.
//!
//! The connections see what the writer has committed, as the pool's do: a commit is readable a
//! moment before it is synced (see [`super::WalSync`]), and acknowledged only after.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};

/// Connections kept between reads; more are opened under load and closed after.
const MAX_IDLE: usize = 8;

/// Prepared statements each connection keeps.
const READER_STATEMENTS: usize = 32;

/// Read-only connections to the server's SQLite database.
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    /// Readers of the database at `url`; `None` unless it is a SQLite file.
    pub fn open(url: &str) -> Option<SqliteReader> {
        let path = super::sqlite_path(url)?;
        Some(SqliteReader { path: PathBuf::from(path), idle: Mutex::new(Vec::new()) })
    }

    /// Runs `read` on one of the connections, here and now.
    pub fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let result = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
        result
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        // Opened for writing, as the log's shared memory needs, but refusing to write.
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(super::SQLITE_BUSY_TIMEOUT)?;
        connection.pragma_update(None, "query_only", true)?;
        connection.pragma_update(None, "cache_size", super::READER_CACHE_SIZE)?;
        // Room for every statement the reads here prepare (some twenty), so that none is parsed
        // again under a mixed load.
        connection.set_prepared_statement_cache_capacity(READER_STATEMENTS);
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_is_committed_and_refuses_to_write() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db.sqlite");
        let writer = Connection::open(&path).expect("open");
        writer.pragma_update(None, "journal_mode", "WAL").expect("wal");
        writer
            .execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('a', 1);")
            .expect("t");
        let reader = SqliteReader::open(&format!("sqlite://{}?mode=rwc", path.display())).expect("a file");
        let read =
            |k: &str| reader.read(|c| c.query_row("SELECT v FROM t WHERE k = ?1", [k], |row| row.get::<_, i64>(0)));
        assert_eq!(read("a").expect("read"), 1);
        writer.execute("UPDATE t SET v = 2 WHERE k = 'a'", []).expect("update");
        assert_eq!(read("a").expect("read again"), 2, "a later read sees the later commit");
        assert!(reader.read(|c| c.execute("DELETE FROM t", [])).is_err(), "a reader does not write");
        let cache = reader.read(|c| c.pragma_query_value(None, "cache_size", |row| row.get::<_, i64>(0)));
        assert_eq!(cache.expect("cache size"), super::super::READER_CACHE_SIZE, "a small page cache each");
        assert!(SqliteReader::open("sqlite::memory:").is_none());
        assert!(SqliteReader::open("postgres://localhost/x").is_none());
    }
}
