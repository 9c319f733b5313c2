//! Group commit at the sync to disk. The writer connection commits without waiting for the
//! disk; a thread of its own then syncs the log, once for every commit made meanwhile, and
//! only then are those commits acknowledged. The writer goes on to the next commit during the
//! sync instead of idling through it, and one sync covers however many commits piled up behind
//! the last. A waiter whose commit came after the sync under way began gets the next one.
//! The sync has a thread to itself so that no thread of the async runtime ever waits for the
//! disk: handing a runtime thread's work elsewhere for each sync cost more than the sync.
//!
//! A commit is visible to readers from the moment it is written, shortly before it is on disk.
//! Nothing that leaves the server claims it before then: its writer answers after the sync,
//! and the event log is read no further than the last synced event (see [`WalSync::limit`]).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

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
    /// What the syncing thread is asked for.
    wanted: Mutex<Wanted>,
    /// Wakes the syncing thread.
    wake: Condvar,
    /// How many commits are known to be on disk.
    done: watch::Sender<u64>,
    /// The syncing thread, until [`WalSync::close`] joins it.
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Wanted {
    /// How many commits the next sync must cover.
    commits: u64,
    /// The writer is gone: the thread stops.
    closed: bool,
    /// Tests hold syncs back to see what happens before one.
    #[cfg(test)]
    held: bool,
}

impl Wanted {
    fn due(&self, synced_commits: u64) -> bool {
        #[cfg(test)]
        if self.held && !self.closed {
            return false;
        }
        self.commits > synced_commits
    }
}

impl WalSync {
    /// Tracks the log of the database at `path`, whose newest event is `head`, and starts the
    /// thread that syncs it (until [`WalSync::close`]).
    pub(super) fn start(path: &str, head: i64) -> std::io::Result<Arc<WalSync>> {
        let sync = Arc::new(WalSync {
            log: PathBuf::from(format!("{path}-wal")),
            announced: AtomicI64::new(head),
            written: AtomicI64::new(head),
            synced: AtomicI64::new(head),
            commits: AtomicU64::new(0),
            wanted: Mutex::new(Wanted::default()),
            wake: Condvar::new(),
            done: watch::Sender::new(0),
            thread: Mutex::new(None),
        });
        let syncer = sync.clone();
        let thread = std::thread::Builder::new().name("sqlite-sync".into()).spawn(move || syncer.run())?;
        *sync.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
        Ok(sync)
    }

    /// Stops the syncing thread once it has served whoever waits now, and waits for it. Call
    /// it before the writer's connection closes: the last connection to close removes the
    /// log, and a sync that found no log would stop the process.
    pub(super) fn close(&self) {
        self.wanted.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        self.wake.notify_one();
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if thread.is_some_and(|thread| thread.join().is_err()) {
            tracing::error!("the thread syncing the SQLite log panicked");
        }
    }

    /// Holds syncs back (or lets them go again).
    #[cfg(test)]
    pub(super) fn hold(&self, held: bool) {
        self.wanted.lock().unwrap_or_else(PoisonError::into_inner).held = held;
        self.wake.notify_one();
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
        // The sync starts now rather than when someone first waits: it is due anyway.
        let commits = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        if wanted.commits < commits {
            wanted.commits = commits;
            self.wake.notify_one();
        }
    }

    /// Waits until every commit finished before the call is on disk.
    pub async fn wait(&self) {
        // Each commit asked for a sync as it finished.
        let target = self.commits.load(Ordering::SeqCst);
        let mut done = self.done.subscribe();
        while *done.borrow_and_update() < target {
            if done.changed().await.is_err() {
                return;
            }
        }
    }

    /// The syncing thread: whenever commits finished since its last sync, syncs the log.
    fn run(&self) {
        let mut file = None;
        let mut synced_commits = 0;
        loop {
            {
                let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
                while !wanted.due(synced_commits) && !wanted.closed {
                    wanted = self.wake.wait(wanted).unwrap_or_else(PoisonError::into_inner);
                }
                if !wanted.due(synced_commits) {
                    return;
                }
            }
            // Read before the sync: whatever these count had finished writing.
            let commits = self.commits.load(Ordering::SeqCst);
            let written = self.written.load(Ordering::SeqCst);
            if let Err(e) = sync(&mut file, &self.log) {
                // After a failed sync the kernel may have dropped the pages it could not
                // write, so a retry proves nothing: stop, and let SQLite recover from what is
                // on disk at restart, rather than acknowledge a write that may be lost.
                tracing::error!(error = %e, log = %self.log.display(), "cannot sync the SQLite log to disk; stopping");
                std::process::exit(70);
            }
            synced_commits = commits;
            self.synced.fetch_max(written, Ordering::SeqCst);
            self.done.send_modify(|done| *done = (*done).max(commits));
        }
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
