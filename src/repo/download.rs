//! The way a repository export reaches its client: through memory while the client keeps up,
//! through a temporary file once it falls behind.
//!
//! An export reads one snapshot, so it holds a read transaction and a pooled connection until
//! its last block; tied to the client's pace, a client that reads slowly, or not at all, would
//! hold them as long as it liked. Copying every export to a file first frees them at the
//! database's pace, but the client then waits for the whole copy before its first byte, and the
//! copy is written and read back for nothing when the client is fast. So the export runs into a
//! [`Sink`] that hands chunks to the download through a small queue; when the client has left the
//! export waiting longer than [`PATIENCE`] in all, the queue and the rest of the export go to an
//! unnamed file, and the export runs on at the database's pace while the client reads the file.
//! Downloads together hold at most [`QUEUED_IN_ALL`] in memory; past it an export goes to a file
//! at once.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

/// Bytes gathered before a chunk is handed on.
const CHUNK: usize = 64 * 1024;

/// Bytes of chunks held in memory for the client, per download.
const QUEUED: usize = 1024 * 1024;

/// Bytes of chunks held in memory for all downloads together: past it, an export goes to a file
/// at once. Without it, many clients that each asked for a small repository and read nothing
/// would each hold their whole export in memory.
const QUEUED_IN_ALL: usize = 8 * 1024 * 1024;

static QUEUED_NOW: AtomicUsize = AtomicUsize::new(0);

/// Takes room for `bytes` from [`QUEUED_IN_ALL`]; `false` when there is not enough.
fn take_room(bytes: usize) -> bool {
    QUEUED_NOW
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| (now + bytes <= QUEUED_IN_ALL).then_some(now + bytes))
        .is_ok()
}

fn give_room(bytes: usize) {
    QUEUED_NOW.fetch_sub(bytes, Ordering::AcqRel);
}

/// How long, in all, an export may wait for its client before it goes to a file instead.
const PATIENCE: Duration = Duration::from_millis(100);

/// Bytes read from the file at a time to send.
const FILE_READ: usize = 256 * 1024;

/// The exports that read the database at once, a few at a time, and how many wait for their
/// turn: while one waits, an export whose client falls behind goes to a file at once rather
/// than spend its patience, so slow clients cannot slow other downloads down.
pub struct Exports {
    turns: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
}

/// One export's turn at the database, given back when dropped.
pub type Turn = tokio::sync::OwnedSemaphorePermit;

impl Exports {
    pub fn new(at_once: usize) -> Arc<Exports> {
        Arc::new(Exports { turns: Arc::new(tokio::sync::Semaphore::new(at_once)), waiting: AtomicUsize::new(0) })
    }

    /// Waits for a turn.
    pub async fn turn(&self) -> Result<Turn, tokio::sync::AcquireError> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        self.turns.clone().acquire_owned().await
    }

    fn others_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }
}

struct State {
    queue: VecDeque<Bytes>,
    queued: usize,
    /// Once the export has gone to the file: the file, and the bytes of it written so far.
    file: Option<(Arc<std::fs::File>, u64)>,
    /// The export ended: `Ok` when whole, `Err` when it failed part way.
    ended: Option<Result<(), String>>,
    /// The client is gone: the export stops.
    abandoned: bool,
    /// How many times the export waited for room.
    #[cfg(test)]
    waits: usize,
}

struct Shared {
    state: Mutex<State>,
    /// A blocking sink waits on it for room in the queue.
    room: Condvar,
    /// An async sink waits on it for room in the queue.
    room_async: tokio::sync::Notify,
    /// The download waits on it for a chunk or the end.
    ready: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding it leaves nothing half-updated that matters more than the panic.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the export if it waits for room (or to learn the client is gone).
    fn made_room(&self) {
        self.room.notify_one();
        self.room_async.notify_one();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        give_room(self.lock().queued);
    }
}

/// A pipe from an export to a download. `dir` is where a file is made if one is needed.
pub fn pipe(dir: PathBuf, exports: Arc<Exports>) -> (Sink, Download) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            queued: 0,
            file: None,
            ended: None,
            abandoned: false,
            #[cfg(test)]
            waits: 0,
        }),
        room: Condvar::new(),
        room_async: tokio::sync::Notify::new(),
        ready: tokio::sync::Notify::new(),
    });
    let sink =
        Sink { shared: shared.clone(), dir, exports, buffer: BytesMut::new(), waited: Duration::ZERO, finished: false };
    (sink, Download { shared, read: 0 })
}

/// The export's end: a blocking writer ([`Write`], where blocking is allowed), or one for the
/// async runtime ([`Sink::send`], [`Sink::finish_async`]).
pub struct Sink {
    shared: Arc<Shared>,
    dir: PathBuf,
    exports: Arc<Exports>,
    buffer: BytesMut,
    waited: Duration,
    finished: bool,
}

impl Sink {
    /// Hands on what is still buffered and marks the export whole.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.hand_on()?;
        self.whole();
        Ok(())
    }

    /// [`Write::write_all`] for an export that runs on the async runtime: it waits for its client
    /// without blocking a runtime thread, and writes to the file on a blocking one.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.hand_on_async().await?;
        }
        Ok(())
    }

    /// [`Sink::finish`] for an export that runs on the async runtime.
    pub async fn finish_async(mut self) -> std::io::Result<()> {
        self.hand_on_async().await?;
        self.whole();
        Ok(())
    }

    /// Marks the export whole, once all of it has been handed on.
    fn whole(&mut self) {
        self.finished = true;
        self.shared.lock().ended = Some(Ok(()));
        self.shared.ready.notify_one();
    }

    fn hand_on(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = self.buffer.split().freeze();
        let mut state = self.shared.lock();
        loop {
            match offer(&mut state, &chunk, self.waited, &self.exports)? {
                Offer::Queued => {
                    drop(state);
                    self.shared.ready.notify_one();
                    return Ok(());
                }
                Offer::Wait(patience) => {
                    let start = Instant::now();
                    state = self.shared.room.wait_timeout(state, patience).unwrap_or_else(|p| p.into_inner()).0;
                    self.waited += start.elapsed();
                }
                Offer::ToFile => return spill(&self.shared, &self.dir, state, &chunk),
            }
        }
    }

    async fn hand_on_async(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = self.buffer.split().freeze();
        loop {
            let offered = offer(&mut self.shared.lock(), &chunk, self.waited, &self.exports)?;
            match offered {
                Offer::Queued => {
                    self.shared.ready.notify_one();
                    return Ok(());
                }
                Offer::Wait(patience) => {
                    // A permit left by a chunk taken since the offer wakes this at once, so no
                    // room made in between is missed.
                    let start = Instant::now();
                    let _ = tokio::time::timeout(patience, self.shared.room_async.notified()).await;
                    self.waited += start.elapsed();
                }
                Offer::ToFile => {
                    let (shared, dir) = (self.shared.clone(), self.dir.clone());
                    let spilled = tokio::task::spawn_blocking(move || spill(&shared, &dir, shared.lock(), &chunk));
                    return spilled.await.map_err(std::io::Error::other)?;
                }
            }
        }
    }
}

/// Where an export's next chunk goes, decided under the lock.
enum Offer {
    /// Into the queue: done.
    Queued,
    /// Nowhere yet: wait at most this long for the client to make room, then offer it again.
    Wait(Duration),
    /// To the file, after what the client has not taken yet.
    ToFile,
}

/// Queues `chunk` if the client has room for it, or says where it goes instead. `waited` is how
/// long the export has already waited for its client.
fn offer(state: &mut State, chunk: &Bytes, waited: Duration, exports: &Exports) -> std::io::Result<Offer> {
    if state.abandoned {
        return Err(std::io::ErrorKind::BrokenPipe.into());
    }
    if state.file.is_some() {
        return Ok(Offer::ToFile);
    }
    if state.queued + chunk.len() <= QUEUED || state.queue.is_empty() {
        if !take_room(chunk.len()) {
            return Ok(Offer::ToFile);
        }
        state.queued += chunk.len();
        state.queue.push_back(chunk.clone());
        return Ok(Offer::Queued);
    }
    Ok(match PATIENCE.checked_sub(waited).filter(|_| !exports.others_waiting()) {
        Some(patience) => {
            #[cfg(test)]
            {
                state.waits += 1;
            }
            Offer::Wait(patience)
        }
        None => Offer::ToFile,
    })
}

/// Writes `chunk` to the download's file (made in `dir` the first time, and given first what the
/// client had not taken from the queue). Blocks.
fn spill(shared: &Shared, dir: &Path, mut state: MutexGuard<'_, State>, chunk: &Bytes) -> std::io::Result<()> {
    let (file, mut written, earlier) = match state.file.take() {
        Some((file, written)) => (file, written, Vec::new()),
        None => {
            let earlier: Vec<Bytes> = state.queue.drain(..).collect();
            give_room(std::mem::take(&mut state.queued));
            (Arc::new(tempfile::tempfile_in(dir)?), 0, earlier)
        }
    };
    // Only the export writes, so the file is written outside the lock, then published.
    state.file = Some((file.clone(), written));
    drop(state);
    for bytes in earlier.iter().chain(std::iter::once(chunk)) {
        file.write_all_at(bytes, written)?;
        written += bytes.len() as u64;
    }
    shared.lock().file = Some((file, written));
    shared.ready.notify_one();
    Ok(())
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.hand_on()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.shared.lock();
            state.ended.get_or_insert_with(|| Err("the export stopped part way".into()));
            drop(state);
            self.shared.ready.notify_one();
        }
    }
}

/// What the client reads.
pub struct Download {
    shared: Arc<Shared>,
    /// Bytes of the file already sent.
    read: u64,
}

/// What [`Download::next`] found.
enum Next {
    Chunk(Bytes),
    /// Bytes of the file to read, from where.
    File(Arc<std::fs::File>, u64, usize),
    End,
    Failed(String),
    Wait,
}

impl Download {
    /// Waits until the export has handed on its first bytes or ended; `false` when it ended
    /// without a byte (the repository was not found, or the export failed at once).
    pub async fn started(&self) -> bool {
        loop {
            let notified = self.shared.ready.notified();
            {
                let state = self.shared.lock();
                if !state.queue.is_empty() || state.file.is_some() {
                    return true;
                }
                if state.ended.is_some() {
                    return false;
                }
            }
            notified.await;
        }
    }

    fn next_step(&self) -> Next {
        let mut state = self.shared.lock();
        if let Some(chunk) = state.queue.pop_front() {
            state.queued -= chunk.len();
            give_room(chunk.len());
            drop(state);
            self.shared.made_room();
            return Next::Chunk(chunk);
        }
        if let Some((file, written)) = &state.file {
            if self.read < *written {
                let length = usize::try_from(*written - self.read).unwrap_or(FILE_READ).min(FILE_READ);
                return Next::File(file.clone(), self.read, length);
            }
        }
        match &state.ended {
            Some(Ok(())) => Next::End,
            Some(Err(reason)) => Next::Failed(reason.clone()),
            None => Next::Wait,
        }
    }

    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            let notified = self.shared.ready.notified();
            match self.next_step() {
                Next::Chunk(chunk) => return Some(Ok(chunk)),
                Next::File(file, from, length) => {
                    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
                        let mut bytes = vec![0; length];
                        file.read_exact_at(&mut bytes, from)?;
                        Ok(Bytes::from(bytes))
                    })
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r);
                    if let Ok(bytes) = &read {
                        self.read += bytes.len() as u64;
                    }
                    return Some(read);
                }
                Next::End => return None,
                Next::Failed(reason) => return Some(Err(std::io::Error::other(reason))),
                Next::Wait => notified.await,
            }
        }
    }

    /// The chunks, to send as a body. A failed export ends it with the error (the connection is
    /// closed and the client sees the body cut short).
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |download| async move {
            let mut download = download?;
            let next = download.next().await?;
            let rest = next.is_ok().then_some(download);
            Some((next, rest))
        })
    }
}

#[cfg(test)]
impl Download {
    fn went_to_file(&self) -> bool {
        self.shared.lock().file.is_some()
    }

    fn export_waited(&self) -> bool {
        self.shared.lock().waits > 0
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.shared.lock().abandoned = true;
        self.shared.made_room();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// 3 MiB of numbered bytes, written in pieces of 1,000 as an export writes its blocks.
    fn export(sink: Sink) -> std::io::Result<Vec<u8>> {
        export_of(sink, 3 * 1024 * 1024)
    }

    /// `size` numbered bytes.
    fn numbered(size: u32) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8).collect()
    }

    fn export_of(mut sink: Sink, size: u32) -> std::io::Result<Vec<u8>> {
        let whole = numbered(size);
        for piece in whole.chunks(1000) {
            sink.write_all(piece)?;
        }
        sink.finish()?;
        Ok(whole)
    }

    async fn read_all(download: Download) -> std::io::Result<Vec<u8>> {
        let mut stream = std::pin::pin!(download.into_stream());
        let mut read = Vec::new();
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk?);
        }
        Ok(read)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_reading_as_the_export_runs_gets_it_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        let writer = tokio::task::spawn_blocking(move || export(sink));
        let read = read_all(download).await.expect("read");
        assert_eq!(read, writer.await.expect("join").expect("export"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_whose_client_reads_nothing_ends_at_its_own_pace_and_is_read_whole_later() {
        let dir = tempfile::tempdir().expect("dir");
        let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        let started = Instant::now();
        let whole = tokio::task::spawn_blocking(move || export(sink)).await.expect("join").expect("export");
        // It waited for the client no longer than its patience, then went on into a file.
        assert!(started.elapsed() < PATIENCE + Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(download.started().await);
        assert_eq!(read_all(download).await.expect("read"), whole);
    }

    /// [`export_of`] on the async runtime, as PostgreSQL's export runs.
    async fn export_async(mut sink: Sink, size: u32) -> std::io::Result<Vec<u8>> {
        let whole = numbered(size);
        for piece in whole.chunks(1000) {
            sink.send(piece).await?;
        }
        sink.finish_async().await?;
        Ok(whole)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_async_export_read_as_it_runs_arrives_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        let writer = tokio::spawn(export_async(sink, 3 * 1024 * 1024));
        let read = read_all(download).await.expect("read");
        assert_eq!(read, writer.await.expect("join").expect("export"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_async_export_whose_client_reads_nothing_goes_to_a_file_without_blocking_the_runtime() {
        let dir = tempfile::tempdir().expect("dir");
        let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        // One runtime thread: a sink that blocked it while waiting would never see its patience
        // end, nor the ticker below run.
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let started = Instant::now();
        let whole = export_async(sink, 3 * 1024 * 1024).await.expect("export");
        assert!(started.elapsed() < PATIENCE + Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(ticks.load(Ordering::Relaxed) >= 5, "the runtime ran other tasks while the export waited");
        ticker.abort();
        assert!(download.went_to_file());
        assert_eq!(read_all(download).await.expect("read"), whole);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_async_export_stops_when_its_client_is_gone() {
        let dir = tempfile::tempdir().expect("dir");
        let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        drop(download);
        let stopped = export_async(sink, 3 * 1024 * 1024).await;
        assert_eq!(stopped.expect_err("stopped").kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stalled_downloads_together_hold_a_bounded_amount_in_memory() {
        let dir = tempfile::tempdir().expect("dir");
        let started = Instant::now();
        let mut stalled = Vec::new();
        // Each fits its own queue; twelve of them do not fit the bound for all.
        for _ in 0..12 {
            let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
            let whole = tokio::task::spawn_blocking(move || export_of(sink, 1000 * 1024)).await.expect("join");
            stalled.push((download, whole.expect("export")));
        }
        assert!(started.elapsed() < PATIENCE * 3, "those past the bound went to a file without waiting");
        let to_file = stalled.iter().filter(|(download, _)| download.went_to_file()).count();
        assert!(to_file >= 4, "{to_file} of 12 went to a file");
        for (download, whole) in stalled {
            assert_eq!(read_all(download).await.expect("read"), whole);
        }
        assert!(QUEUED_NOW.load(Ordering::Acquire) <= QUEUED_IN_ALL);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn while_another_export_waits_for_its_turn_a_stalled_one_goes_to_a_file_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let exports = Exports::new(1);
        let turn = exports.turn().await.expect("turn");
        let (sink, download) = pipe(dir.path().to_owned(), exports.clone());
        let waiting = tokio::spawn({
            let exports = exports.clone();
            async move { drop(exports.turn().await.expect("turn")) }
        });
        while !exports.others_waiting() {
            tokio::task::yield_now().await;
        }
        let exported = tokio::task::spawn_blocking(move || export(sink)).await.expect("join").expect("export");
        // Counted, not timed: writing 3 MiB in a debug build on a loaded machine can take longer
        // than any bound short of the patience itself.
        assert!(!download.export_waited(), "it went to the file without waiting for its client");
        assert!(download.went_to_file());
        drop(turn);
        waiting.await.expect("the other export had its turn");
        assert!(!exports.others_waiting());
        assert_eq!(read_all(download).await.expect("read"), exported);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_gone_stops_the_export() {
        let dir = tempfile::tempdir().expect("dir");
        let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        drop(download);
        let stopped = tokio::task::spawn_blocking(move || export(sink)).await.expect("join");
        assert_eq!(stopped.expect_err("stopped").kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_that_fails_part_way_cuts_the_download_short() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        tokio::task::spawn_blocking(move || {
            sink.write_all(&[7; 200 * 1024]).expect("write");
            drop(sink);
        })
        .await
        .expect("join");
        assert!(download.started().await, "what was handed on is sent");
        let failed = read_all(download).await;
        assert!(failed.is_err(), "the body ends with an error, not as if whole");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_that_ends_without_a_byte_has_not_started() {
        let dir = tempfile::tempdir().expect("dir");
        let (sink, download) = pipe(dir.path().to_owned(), Exports::new(2));
        drop(sink);
        assert!(!download.started().await);
    }
}
