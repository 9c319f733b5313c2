//! SQLite's commit path. Repository commits are stored on one connection the server keeps for
//! them, run statement after statement on the calling thread. Through the pool, each statement
//! is a round trip to sqlx's worker thread; a commit takes about seven, and on a small machine
//! those hand-offs cost more than SQLite's own work. SQLite takes one writer at a time in any
//! case, and a connection that is the usual writer keeps its page cache warm between commits.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::runtime::{Handle, RuntimeFlavor};

/// How often the checkpointer copies committed pages from the log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// The log size (in pages) at which a commit checkpoints by itself.
const CHECKPOINT_INLINE_PAGES: i64 = 4_096;

/// Starts the thread that checkpoints the database at `path` until the sender is dropped.
///
/// Its PASSIVE checkpoints copy committed pages into the database beside the commits, holding
/// nobody up. Under a steady stream of commits they never quite catch up, and only a complete
/// checkpoint lets the log start over; so once the log reaches [`CHECKPOINT_INLINE_PAGES`] a
/// commit checkpoints by itself (the few pages left) and the next one rewinds the log.
fn checkpointer(path: &str) -> rusqlite::Result<std::sync::mpsc::Sender<()>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "SQLite checkpoint failed");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the SQLite checkpointer; commits checkpoint by themselves");
    }
    Ok(stop)
}

/// The writer connection, with the same durability settings as the pool's.
pub struct SqliteWriter {
    conn: Mutex<Connection>,
    /// Dropping it stops the checkpointer.
    _checkpoints: std::sync::mpsc::Sender<()>,
}

impl SqliteWriter {
    /// Opens the database file `url` names (`sqlite://path?…`); `None` for other databases.
    pub fn open(url: &str) -> rusqlite::Result<Option<SqliteWriter>> {
        let Some(path) = super::sqlite_path(url) else { return Ok(None) };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before it is acknowledged, as through the pool.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.set_prepared_statement_cache_capacity(32);
        // Checkpoints mostly run beside the commits rather than inside one now and then.
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_INLINE_PAGES)?;
        // After a burst, the rewound log is cut back to this size (bytes).
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let checkpoints = checkpointer(path)?;
        Ok(Some(SqliteWriter { conn: Mutex::new(conn), _checkpoints: checkpoints }))
    }

    /// Runs `work` in one transaction, committed when it returns `Ok` and rolled back
    /// otherwise. The transaction takes SQLite's write lock at its start, so it never has to
    /// give up halfway for another writer.
    ///
    /// It blocks the calling thread for the length of the transaction (its sync to disk
    /// included); on a multi-threaded runtime the thread's other tasks move elsewhere meanwhile.
    pub fn transaction<T, E: From<rusqlite::Error>>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let run = || {
            let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = work(&txn)?;
            txn.commit()?;
            Ok(out)
        };
        match Handle::try_current().map(|handle| handle.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }
}
