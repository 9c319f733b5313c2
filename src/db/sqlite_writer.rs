//! SQLite's commit path. Repository commits are stored on one connection the server keeps for
//! them, on a thread of its own. Through the pool, each statement is a round trip to sqlx's
//! worker thread; a commit takes about seven, and on a small machine those hand-offs cost more
//! than SQLite's own work. Here a whole transaction is one hand-off, and the caller goes on
//! with other work (building the next commits) while it runs. SQLite takes one writer at a
//! time in any case, and a connection that is the usual writer keeps its page cache warm
//! between commits.
//!
//! The writer commits without waiting for the disk: a commit counts as done once
//! [`SqliteWriter::synced`] says so, after the thread that syncs the log has synced it past
//! that commit (see [`WalSync`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::wal_sync::WalSync;

/// How often the checkpointer copies committed pages from the log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// The log size (in pages) from which the checkpointer also lets the log start over.
const REWIND_PAGES: i64 = 1_024;
/// The log size (in pages, some 25 MB) at which a commit checkpoints by itself, should the
/// checkpointer fall behind. At full speed on a small machine the log reaches about two thirds
/// of this between two of the checkpointer's passes, so a commit only does it when the
/// checkpointer is starved of CPU, and the log stays bounded even then.
const CHECKPOINT_INLINE_PAGES: i64 = 6_144;

/// Starts the thread that checkpoints the database at `path` until the sender is dropped.
///
/// Its PASSIVE checkpoints copy committed pages into the database beside the commits, holding
/// nobody up. But the log only starts over after a checkpoint that copied all of it, and under
/// a steady stream of commits a checkpoint running beside them never quite does. So once the
/// log is long, the checkpointer raises `rewind`, and the writer's next transaction first
/// copies the few pages left itself: that commit waits for a short copy instead of one
/// stopping to copy the lot. (Waiting for the writer's lock instead left it to chance: the
/// writer takes the lock again the moment it lets go.)
fn checkpointer(path: &str, rewind: Arc<AtomicBool>, stats: Arc<WriterStats>) -> rusqlite::Result<mpsc::Sender<()>> {
    let conn = connect(path)?;
    let (stop, stopped) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
            let outcome = checkpoint(&conn);
            stats.checkpoints.inc();
            match outcome {
                Ok(left) if left >= REWIND_PAGES => rewind.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the SQLite checkpointer; commits checkpoint by themselves");
    }
    Ok(stop)
}

/// A PASSIVE checkpoint on `conn`; how many pages the log holds.
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    // (busy, pages in the log, pages copied)
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

/// A connection to the existing database file at `path`, waiting for the write lock as the
/// pool's connections do.
fn connect(path: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(super::SQLITE_BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Why the writer could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start the thread that syncs the log: {0}")]
    SyncThread(std::io::Error),
    #[error("cannot start the writer's thread: {0}")]
    WriterThread(std::io::Error),
}

/// A transaction for the writer's thread to run.
type Job = Box<dyn FnOnce(&mut Connected) + Send>;

/// The writer connection: commits durable as the pool's are, once synced.
pub struct SqliteWriter {
    /// Hands transactions to the writer's thread; dropped to stop it.
    jobs: Option<mpsc::Sender<Job>>,
    /// The writer's thread, which owns the connection.
    thread: Option<JoinHandle<()>>,
    sync: Arc<WalSync>,
    /// Dropping it stops the checkpointer.
    _checkpoints: mpsc::Sender<()>,
    stats: Arc<WriterStats>,
    /// The log file, whose size the metrics report.
    wal_path: std::path::PathBuf,
}

/// What the writer has done since it opened, for the metrics.
pub struct WriterStats {
    /// Checkpoints the checkpointer ran.
    pub checkpoints: prometheus::IntCounter,
    /// Times a transaction finished the checkpointer's checkpoint itself.
    pub rewinds: prometheus::IntCounter,
    /// How long each transaction held the write lock (to its commit, before the log sync).
    pub transactions: prometheus::Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        let counter = |name: &str, help: &str| prometheus::IntCounter::new(name, help).expect("a valid metric");
        let buckets = vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];
        let opts = prometheus::HistogramOpts::new(
            "aurora_sqlite_transaction_seconds",
            "How long each transaction on the SQLite writer held the write lock.",
        );
        WriterStats {
            checkpoints: counter("aurora_sqlite_checkpoints_total", "Checkpoints of the SQLite log."),
            rewinds: counter(
                "aurora_sqlite_checkpoint_takeovers_total",
                "Checkpoints a commit finished itself so the SQLite log could start over.",
            ),
            transactions: prometheus::Histogram::with_opts(opts.buckets(buckets)).expect("a valid metric"),
        }
    }
}

impl WriterStats {
    /// Its metrics, to register for the exposition.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.checkpoints.clone()), Box::new(self.rewinds.clone()), Box::new(self.transactions.clone())]
    }
}

/// What the writer's thread keeps between transactions.
struct Connected {
    conn: Connection,
    /// The checkpointer asks the next transaction to finish its checkpoint.
    rewind: Arc<AtomicBool>,
    sync: Arc<WalSync>,
    stats: Arc<WriterStats>,
}

impl Connected {
    /// Runs the transactions handed over until the writer is dropped.
    fn serve(mut self, jobs: mpsc::Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            // A transaction that panics is rolled back as it unwinds; its caller gets an error
            // and the writer goes on serving the others.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut self))).is_err() {
                tracing::error!("a transaction on the SQLite writer panicked");
            }
        }
        // Before the connection closes (when this returns).
        self.sync.close();
    }

    fn transaction<T, E: From<rusqlite::Error>>(
        &mut self,
        work: impl FnOnce(&Transaction<'_>) -> Result<(T, i64), E>,
    ) -> Result<T, E> {
        if self.rewind.swap(false, Ordering::Relaxed) {
            if let Err(e) = checkpoint(&self.conn) {
                tracing::warn!(error = %e, "SQLite checkpoint failed");
            }
            self.stats.rewinds.inc();
        }
        let started = std::time::Instant::now();
        let txn = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (out, seq) = work(&txn)?;
        // Announced before anyone can read the events, so readers of the log hold back.
        self.sync.announce(seq);
        let committed = txn.commit();
        self.sync.finished(seq);
        self.stats.transactions.observe(started.elapsed().as_secs_f64());
        committed?;
        Ok(out)
    }
}

impl SqliteWriter {
    /// Opens the database file `url` names (`sqlite://path?…`); `None` for other databases.
    pub fn open(url: &str) -> Result<Option<SqliteWriter>, OpenError> {
        let Some(path) = super::sqlite_path(url) else { return Ok(None) };
        let conn = connect(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL: commits do not sync the log themselves; the syncing thread does, and a
        // commit is acknowledged only after that (see `synced`). Checkpoints still sync.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.set_prepared_statement_cache_capacity(32);
        // Checkpoints run beside the commits rather than inside one now and then.
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_INLINE_PAGES)?;
        // After a burst, the log is cut back to this size (bytes) when it starts over.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let newest = {
            use sea_orm::sea_query::{Expr, Func, Query, SqliteQueryBuilder};
            let seq = Expr::col(super::entities::repo_seq::Column::Seq).max();
            Query::select()
                .expr(Func::coalesce([seq, Expr::val(0).into()]))
                .from(super::entities::repo_seq::Entity)
                .to_string(SqliteQueryBuilder)
        };
        let head: i64 = conn.query_row(&newest, [], |row| row.get(0))?;
        let sync = WalSync::start(path, head).map_err(OpenError::SyncThread)?;
        let rewind = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriterStats::default());
        let checkpoints = checkpointer(path, rewind.clone(), stats.clone())?;
        let connected = Connected { conn, rewind, sync: sync.clone(), stats: stats.clone() };
        let (jobs, incoming) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || connected.serve(incoming))
            .map_err(|e| {
                sync.close();
                OpenError::WriterThread(e)
            })?;
        Ok(Some(SqliteWriter {
            jobs: Some(jobs),
            thread: Some(thread),
            sync,
            _checkpoints: checkpoints,
            stats,
            wal_path: std::path::PathBuf::from(format!("{path}-wal")),
        }))
    }

    /// Waits until every transaction this writer committed before the call is on disk.
    pub async fn synced(&self) {
        self.sync.wait().await;
    }

    /// What the writer has done since it opened.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The size of the log file now, in bytes.
    pub fn wal_bytes(&self) -> u64 {
        std::fs::metadata(&self.wal_path).map_or(0, |m| m.len())
    }

    /// How far the event log may be read by what leaves the server.
    pub fn log_sync(&self) -> Arc<WalSync> {
        self.sync.clone()
    }

    /// Runs `work` in one transaction on the writer's thread, committed when it returns `Ok`
    /// and rolled back otherwise; `work` also returns the newest event sequence number the
    /// transaction wrote (0 for none). The transaction takes SQLite's write lock at its start,
    /// so it never has to give up halfway for another writer. The commit is written but not
    /// yet on disk when the returned future resolves: await [`SqliteWriter::synced`] before
    /// acknowledging it.
    ///
    /// The transaction starts as soon as the writer's thread is free, whether or not the
    /// returned future is polled: the caller can do other work meanwhile.
    pub fn transaction<T, E, W>(&self, work: W) -> impl Future<Output = Result<T, E>> + Send + 'static
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
        W: FnOnce(&Transaction<'_>) -> Result<(T, i64), E> + Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        let job: Job = Box::new(move |connected: &mut Connected| {
            let _ = done.send(connected.transaction(work));
        });
        let handed = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        async move {
            if !handed {
                return Err(writer_gone());
            }
            outcome.await.unwrap_or_else(|_| Err(writer_gone()))
        }
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        // The thread finishes what it was handed, then stops syncing and closes the connection.
        drop(self.jobs.take());
        if self.thread.take().is_some_and(|thread| thread.join().is_err()) {
            tracing::error!("the SQLite writer's thread panicked");
        }
    }
}

/// The error a transaction gets when the writer's thread did not finish it.
fn writer_gone<E: From<rusqlite::Error>>() -> E {
    E::from(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
        Some("the SQLite writer did not finish the transaction".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::SqliteWriter;

    /// A writer over a fresh database made by `schema`; the directory holds `log.sqlite`.
    fn writer_over(schema: &str) -> (tempfile::TempDir, SqliteWriter) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("log.sqlite");
        rusqlite::Connection::open(&path).and_then(|c| c.execute_batch(schema)).expect("a schema");
        let writer = SqliteWriter::open(&format!("sqlite://{}", path.display())).expect("opens").expect("a file");
        (dir, writer)
    }

    #[tokio::test]
    async fn events_stay_unreadable_until_their_commit_is_synced() {
        let (_dir, writer) = writer_over(
            "CREATE TABLE repo_seq (seq INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT); \
             INSERT INTO repo_seq (v) VALUES ('before')",
        );
        let log = writer.log_sync();
        assert_eq!(log.limit(), None, "everything before the writer opened is on disk");
        log.hold(true);
        let seq = writer
            .transaction(|txn| {
                txn.execute("INSERT INTO repo_seq (v) VALUES ('new')", [])?;
                Ok::<_, rusqlite::Error>((txn.last_insert_rowid(), txn.last_insert_rowid()))
            })
            .await
            .expect("a commit");
        assert_eq!(seq, 2);
        assert_eq!(log.limit(), Some(1), "the new event waits for the sync");
        log.hold(false);
        writer.synced().await;
        assert_eq!(log.limit(), None);
        // A transaction that fails after announcing nothing leaves the log readable.
        let failed = writer
            .transaction(|txn| {
                txn.execute("INSERT INTO nowhere VALUES (1)", [])?;
                Ok::<_, rusqlite::Error>(((), 3))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(log.limit(), None);
        writer.synced().await;
    }

    #[tokio::test]
    async fn a_transaction_that_panics_is_rolled_back_and_the_writer_goes_on() {
        let (_dir, writer) =
            writer_over("CREATE TABLE t (v INTEGER); CREATE TABLE repo_seq (seq INTEGER PRIMARY KEY AUTOINCREMENT)");
        let panicked = writer
            .transaction(|txn| -> Result<((), i64), rusqlite::Error> {
                txn.execute("INSERT INTO t VALUES (1)", [])?;
                panic!("a transaction gives up halfway");
            })
            .await;
        assert!(panicked.is_err(), "its caller gets an error");
        let count: i64 = writer
            .transaction(|txn| {
                txn.execute("INSERT INTO t VALUES (2)", [])?;
                Ok::<_, rusqlite::Error>((txn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?, 0))
            })
            .await
            .expect("the next transaction runs");
        assert_eq!(count, 1, "the panicked transaction's row was rolled back");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_log_starts_over_under_a_steady_stream_of_commits() {
        let (dir, writer) = writer_over(
            "CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID; \
             CREATE TABLE repo_seq (seq INTEGER PRIMARY KEY AUTOINCREMENT)",
        );
        let path = dir.path().join("log.sqlite");
        // Each commit puts about 20 pages in the log: some 50,000 in all, far past the point
        // where a commit would checkpoint by itself.
        for _ in 0..2_500 {
            writer
                .transaction(|txn| {
                    for _ in 0..20 {
                        txn.execute("INSERT INTO t VALUES (randomblob(32), randomblob(400))", [])?;
                    }
                    Ok::<_, rusqlite::Error>(((), 0))
                })
                .await
                .expect("a commit");
            // A server's writer waits for the sync before it answers and gets the next write.
            writer.synced().await;
        }
        let log = std::fs::metadata(format!("{}-wal", path.display())).expect("the log").len();
        assert!(log < 32 << 20, "the log grew to {log} bytes");
        // Bounded by the writer finishing the checkpointer's checkpoints, not only by the
        // commits' own fallback checkpoint.
        assert!(writer.stats.rewinds.get() > 0, "no transaction finished a checkpoint");
        let rows: i64 = writer
            .transaction(|txn| {
                Ok::<_, rusqlite::Error>((txn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?, 0))
            })
            .await
            .expect("a count");
        assert_eq!(rows, 50_000);
    }
}
