//! Group commit at the sync to disk. The writer connection commits without waiting for the
//! disk; whoever then waits for a commit syncs the log, once for every commit made meanwhile,
//! and only then are those commits acknowledged. The writer goes on to the next commit during
//! the sync instead of idling through it, and one sync covers however many commits piled up
//! behind the last. A waiter that finds a sync under way waits for it, then syncs again only
//! if that sync began before its commit.
//!
//! A commit is visible to readers from the moment it is written, shortly before it is on disk.
//! Nothing that leaves the server claims it before then: its writer answers after the sync,
//! and the event log is read no further than the last synced event (see [`WalSync::limit`]).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

/// Where the writer connection's commits are: written to the log, and synced to disk.
pub struct WalSync {
    log: PathBuf,
    /// The newest event a commit under way may have written (set before the commit).
    announced: AtomicI64,
    /// The newest event of a finished commit (set after it).
    written: AtomicI64,
    /// The newest event known to be on disk.
    synced: AtomicI64,
    /// How many commits have finished.
    commits: AtomicU64,
    /// Someone is syncing.
    syncing: AtomicBool,
    /// The open log file, for whoever syncs.
    file: Mutex<Option<File>>,
    /// How many commits are known to be on disk.
    done: watch::Sender<u64>,
}

impl WalSync {
    /// Tracks the log of the database at `path`, whose newest event is `head`.
    pub(super) fn new(path: &str, head: i64) -> WalSync {
        WalSync {
            log: PathBuf::from(format!("{path}-wal")),
            announced: AtomicI64::new(head),
            written: AtomicI64::new(head),
            synced: AtomicI64::new(head),
            commits: AtomicU64::new(0),
            syncing: AtomicBool::new(false),
            file: Mutex::new(None),
            done: watch::Sender::new(0),
        }
    }

    /// Before committing a transaction whose newest event is `seq`.
    pub(super) fn announce(&self, seq: i64) {
        self.announced.fetch_max(seq, Ordering::SeqCst);
    }

    /// After a commit of a transaction whose newest event is `seq` returned, whether it
    /// succeeded or not (numbers of a transaction rolled back are never used, so counting them
    /// as synced hides nothing).
    pub(super) fn finished(&self, seq: i64) {
        self.written.fetch_max(seq, Ordering::SeqCst);
        self.commits.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until every commit finished before the call is on disk.
    pub async fn wait(&self) {
        let target = self.commits.load(Ordering::SeqCst);
        let mut done = self.done.subscribe();
        loop {
            if *done.borrow_and_update() >= target {
                return;
            }
            if !self.syncing.swap(true, Ordering::SeqCst) {
                self.sync_now();
                continue;
            }
            // The syncer lets go of the flag before it publishes, so this wakes up.
            let _ = done.changed().await;
        }
    }

    /// Syncs the log on this thread (moving the runtime's other tasks off it meanwhile).
    fn sync_now(&self) {
        // Read before the sync: whatever these count had finished writing.
        let commits = self.commits.load(Ordering::SeqCst);
        let written = self.written.load(Ordering::SeqCst);
        let synced = super::sqlite_writer::blocking_here(|| {
            sync(&mut self.file.lock().unwrap_or_else(PoisonError::into_inner), &self.log)
        });
        if let Err(e) = synced {
            // After a failed sync the kernel may have dropped the pages it could not write,
            // so a retry proves nothing: stop, and let SQLite recover from what is on disk at
            // restart, rather than acknowledge a write that may be lost.
            tracing::error!(error = %e, log = %self.log.display(), "cannot sync the SQLite log to disk; stopping");
            std::process::exit(70);
        }
        self.synced.fetch_max(written, Ordering::SeqCst);
        self.syncing.store(false, Ordering::SeqCst);
        self.done.send_modify(|done| *done = (*done).max(commits));
    }

    /// The newest event that may leave the server, when a later one might not be on disk yet;
    /// `None` when every event committed so far may. Read it after reading the log: an event
    /// the read saw was announced before it could be seen.
    pub fn limit(&self) -> Option<i64> {
        let synced = self.synced.load(Ordering::SeqCst);
        (synced < self.announced.load(Ordering::SeqCst)).then_some(synced)
    }
}

/// Syncs the log file's data, reopening it should SQLite have replaced it.
fn sync(log: &mut Option<File>, path: &std::path::Path) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?;
    let same = match log {
        Some(file) => file.metadata().is_ok_and(|open| open.ino() == current.ino() && open.dev() == current.dev()),
        None => false,
    };
    if !same {
        *log = Some(File::open(path)?);
    }
    match log {
        Some(file) => file.sync_data(),
        None => Ok(()),
    }
}
