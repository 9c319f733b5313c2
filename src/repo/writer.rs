//! Writing records, with group commit. Each request prepares its writes on its own task, then
//! joins its repository's queue. Whoever next holds the repository's lock takes the whole
//! queue: it builds one signed commit per request, in arrival order and each on the one
//! before, and stores them all in one transaction — one sync to disk for the lot, where each
//! request alone would pay its own. Between batches the lock keeps the repository's decoded
//! tree and signing key, so a commit reads nothing but the current root from the database.
//! The lock holder then leads whatever queued meanwhile as the next batch; on SQLite that one
//! is built and stored while the batch before it is synced to disk, whose answers wait for it.
//!
//! Each request still gets its own commit, rev and `#commit` event, exactly as if it had been
//! alone; a request that fails (a swap mismatch, an existing record) fails alone and the
//! others build on the commit before it.

use aurora_atproto::syntax::{AtUri, Did, Nsid, RecordKey, Tid};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use cid::Cid;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::{oneshot, OwnedMutexGuard};

use aurora_atproto::crypto::Keypair;
use aurora_atproto::repo::{CommitData, RecordWrite, Repo, RepoError, RepoHead};

use super::batch::{StoreError, Stored};
pub use super::error::WriteError;
use super::prepare::{self, invalid_record, Kind, Prepared};
pub use super::prepare::{ValidationStatus, Write};
use super::SqlBlockStore;
use crate::blobs::refs::BlobReference;
use crate::blobs::BlobStore;
use crate::context::AppContext;
use crate::db::entities::blob;
use crate::sequencer::NewEvent;

/// What happened to one write.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    pub uri: AtUri,
    pub cid: Option<Cid>,
    /// `valid` or `unknown`; `None` for deletions and unvalidated writes.
    pub validation_status: Option<ValidationStatus>,
}

#[derive(Clone, Debug)]
pub struct Committed {
    pub cid: Cid,
    pub rev: Tid,
    pub outcomes: Vec<WriteOutcome>,
}

fn invalid_swap(message: impl Into<String>) -> WriteError {
    WriteError::Swap(message.into())
}

fn internal(cause: impl std::fmt::Display) -> WriteError {
    WriteError::internal(cause)
}

/// Whether the account may change its repository now (only an active one may).
async fn writable(ctx: &AppContext, did: &Did) -> Result<(), WriteError> {
    Ok(crate::account::status::check_writable(&ctx.db, did, false).await.map_err(internal)??)
}

/// A cached state is dropped after this many commits, once it has decoded this many nodes, or
/// once its commits have written this many blocks (the nodes built since loading stay in
/// memory: a repository filled by large batches kept its whole tree, some 0.7 KiB a record),
/// and reloaded from the root on next use. A single write adds five or six blocks, so a
/// stream of them still reloads only every couple of hundred commits.
const MAX_CACHED_COMMITS: usize = 256;
const MAX_CACHED_NODES: usize = 512;
const MAX_CACHED_BLOCKS: usize = 1_024;
/// Idle repositories beyond this many lose their cached state.
const MAX_IDLE_REPOS: usize = 64;

/// The writers of every repository: one queue and one lock each, so writes to one repository
/// are serialised (two never build on the same commit) while different repositories proceed
/// in parallel.
#[derive(Default)]
pub struct Writers(Mutex<HashMap<Did, Arc<RepoWriter>>>);

#[derive(Default)]
pub struct RepoWriter {
    queue: Mutex<Vec<Job>>,
    /// Held while a batch is built and stored; keeps the state it left behind.
    state: Arc<tokio::sync::Mutex<Option<Cached>>>,
}

struct Cached {
    head: RepoHead,
    key: Keypair,
    commits: usize,
    /// Blocks the commits built on this state wrote: a bound on the nodes built in memory.
    blocks: usize,
}

type Reply = Result<Option<Committed>, WriteError>;

struct Job {
    prepared: Vec<Prepared>,
    swap_commit: Option<Cid>,
    reply: oneshot::Sender<Reply>,
}

impl Writers {
    fn get(&self, did: &Did) -> Arc<RepoWriter> {
        let mut writers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(writer) = writers.get(did) {
            return writer.clone();
        }
        if writers.len() >= MAX_IDLE_REPOS {
            // Nobody else holds these: dropping them loses only their cached state.
            writers.retain(|_, writer| Arc::strong_count(writer) > 1);
        }
        writers.entry(did.clone()).or_default().clone()
    }

    /// Exclusive use of `did`'s repository for a change made outside this writer (an import):
    /// no commit is built while the guard lives, and the cached state is forgotten.
    pub async fn exclusive(&self, did: &Did) -> OwnedMutexGuard<impl Sized> {
        let writer = self.get(did);
        let mut guard = writer.state.clone().lock_owned().await;
        *guard = None;
        guard
    }
}

/// Applies `writes` to `did`'s repository as one commit. `swap_commit` makes the commit
/// conditional on the repository's current commit. Deletes of absent records are dropped; a
/// batch left with nothing to do makes no commit and returns `None`.
pub async fn apply(
    ctx: &Arc<AppContext>,
    did: &Did,
    writes: Vec<Write>,
    validate: Option<bool>,
    swap_commit: Option<Cid>,
) -> Result<Option<Committed>, WriteError> {
    let prepared = writes.into_iter().map(|w| prepare::prepare(w, validate)).collect::<Result<Vec<_>, _>>()?;
    let writer = ctx.writers.get(did);
    let (reply, mut answer) = oneshot::channel();
    writer.queue.lock().unwrap_or_else(PoisonError::into_inner).push(Job { prepared, swap_commit, reply });

    // Either a batch another request leads takes this write along, or this request gets the
    // lock and leads batches itself, taking along what was queued meanwhile (up to a bound per
    // batch, so one transaction stays reasonable; the rest go in the next).
    let guard = tokio::select! {
        answered = &mut answer => return answered.unwrap_or_else(|_| Err(abandoned())),
        guard = writer.state.clone().lock_owned() => guard,
    };
    let jobs = next_batch(&mut writer.queue.lock().unwrap_or_else(PoisonError::into_inner));
    if jobs.is_empty() {
        // Only a leader takes jobs from the queue: one took this write and will answer.
        drop(guard);
    } else {
        // On its own task: a caller that goes away mid-batch must not cancel the others' writes.
        // Boxed, because the task moves its future through several copies and this one is
        // large: the copies were a twentieth of a createRecord's instructions.
        tokio::spawn(Box::pin(lead(ctx.clone(), did.clone(), writer, guard, jobs)));
    }
    answer.await.unwrap_or_else(|_| Err(abandoned()))
}

/// The most record writes one batch takes on (a single larger request still goes alone).
const MAX_BATCH_WRITES: usize = 1_000;

/// The oldest queued jobs, up to [`MAX_BATCH_WRITES`] writes and at least one job.
fn next_batch(queue: &mut Vec<Job>) -> Vec<Job> {
    let count = batch_len(queue.iter().map(|job| job.prepared.len()));
    queue.drain(..count).collect()
}

/// How many of the queued jobs, of these sizes, the next batch takes.
fn batch_len(sizes: impl IntoIterator<Item = usize>) -> usize {
    let mut writes = 0;
    let mut count = 0;
    for size in sizes {
        writes += size.max(1);
        if count > 0 && writes > MAX_BATCH_WRITES {
            break;
        }
        count += 1;
    }
    count
}

fn abandoned() -> WriteError {
    WriteError::internal("the write was abandoned")
}

/// One request's commit, built in memory and waiting for the batch's transaction.
pub(super) struct Built {
    /// The commit this one was built on.
    pub(super) base: Cid,
    pub(super) data: CommitData,
    pub(super) outcomes: Vec<WriteOutcome>,
    /// Per outcome: the blobs its record references, and whether the record was new (so it
    /// cannot have references stored already).
    pub(super) blobs: Vec<Vec<BlobReference>>,
    pub(super) created: Vec<bool>,
    pub(super) paths: Vec<(Nsid, RecordKey)>,
}

/// Leads batches while the lock is held: after building each batch, takes whatever queued
/// meanwhile as the next, so a busy repository goes from one batch to the next without
/// handing the lock around. Storing and building overlap: while one batch is stored, the next
/// is built on the state it leaves behind (and built again, should it not land). Each stored
/// batch is answered on its own task once it is on disk.
async fn lead(
    ctx: Arc<AppContext>,
    did: Did,
    writer: Arc<RepoWriter>,
    mut state: OwnedMutexGuard<Option<Cached>>,
    mut jobs: Vec<Job>,
) {
    let mut storing: Option<Storing> = None;
    loop {
        if state.is_none() {
            // The state is read afresh from the database, which must hold the batch before.
            if let Some(before) = storing.take() {
                before.land(&ctx, &did, &mut state).await;
            }
        }
        // Built on what the batch being stored will leave, if there is one; else on the
        // cached state once it is known to be current.
        let mut batch = build_batch(&ctx, &did, &mut state, jobs).await;
        if let Some(before) = storing.take() {
            if ctx.sqlite_writer.is_none() {
                // On PostgreSQL this batch's statement goes before the one ahead of it has
                // landed: it waits on the root's row lock, which that one holds until it
                // commits, and then finds the root it was built on. Should the one ahead not
                // land, this one is refused, and built again as it lands.
                let next = batch.take().map(|batch| Storing::start(&ctx, &did, batch, None));
                before.land(&ctx, &did, &mut state).await;
                storing = next;
            } else if !before.land(&ctx, &did, &mut state).await {
                // Built on commits that were not stored: build it again on what was.
                if let Some(stale) = batch {
                    batch = build_batch(&ctx, &did, &mut state, stale.jobs).await;
                }
            }
        }
        if let Some(batch) = batch {
            storing = Some(Storing::start(&ctx, &did, batch, None));
        }
        jobs = next_batch(&mut writer.queue.lock().unwrap_or_else(PoisonError::into_inner));
        if jobs.is_empty() {
            if let Some(last) = storing.take() {
                last.land(&ctx, &did, &mut state).await;
            }
            jobs = next_batch(&mut writer.queue.lock().unwrap_or_else(PoisonError::into_inner));
            if jobs.is_empty() {
                return;
            }
        }
    }
}

/// A batch whose commits are built.
struct BuiltBatch {
    jobs: Vec<Job>,
    /// Per job: whether it made a commit (the next of `commits`) or nothing, or why it failed.
    results: Vec<Result<bool, WriteError>>,
    commits: Vec<Built>,
    events: Vec<NewEvent>,
}

/// Builds each job's commit on the one before, starting from the cached state (read afresh
/// when there is none), and leaves in `state` the repository as it will be once the batch is
/// stored. A job that fails leaves the state as it was. `None` when the state
/// could not be read: the jobs are answered.
async fn build_batch(ctx: &AppContext, did: &Did, state: &mut Option<Cached>, jobs: Vec<Job>) -> Option<BuiltBatch> {
    let mut attempts = 0;
    loop {
        let outcome = match current_state(ctx, did, state.take()).await {
            Ok(cached) => build_jobs(ctx, did, cached, &jobs).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok((batch, cached)) => {
                *state = cached;
                let (results, commits, events) = batch;
                return Some(BuiltBatch { jobs, results, commits, events });
            }
            Err(WriteError::Moved(_)) if attempts < MAX_REBUILDS => {
                attempts += 1;
                pause(attempts).await;
            }
            Err(e) => {
                let answers = jobs.iter().map(|_| Err(e.clone())).collect();
                send(jobs, answers);
                return None;
            }
        }
    }
}

/// What one build made: each job's result, the commits and their events.
type Made = (Vec<Result<bool, WriteError>>, Vec<Built>, Vec<NewEvent>);

/// Builds each job's commit on the one before, starting from `cached`. `Err(Moved)` when the
/// repository changed underneath (the whole batch is to be built again); otherwise what was
/// made, and the state to keep, if it is still small enough.
async fn build_jobs(
    ctx: &AppContext,
    did: &Did,
    cached: Cached,
    jobs: &[Job],
) -> Result<(Made, Option<Cached>), WriteError> {
    let mut head = cached.head;
    let mut results = Vec::with_capacity(jobs.len());
    let (mut commits, mut events) = (Vec::new(), Vec::new());
    for job in jobs {
        let mut repo = Repo::from_head(SqlBlockStore::new(&ctx.db, did), head.clone());
        let result = build(ctx, did, &mut repo, job, &cached.key).await;
        if let Err(moved @ WriteError::Moved(_)) = result {
            return Err(moved);
        }
        results.push(result.map(|built| match built {
            Some((built, event)) => {
                head = repo.into_head();
                commits.push(built);
                events.push(event);
                true
            }
            None => false,
        }));
    }
    let count = cached.commits + commits.len();
    let blocks = cached.blocks + commits.iter().map(|built| built.data.new_blocks.len()).sum::<usize>();
    let keep = worth_keeping(count, blocks, head.cached_nodes()).then_some(Cached {
        head,
        key: cached.key,
        commits: count,
        blocks,
    });
    Ok(((results, commits, events), keep))
}

/// Whether a state that `commits` commits writing `blocks` blocks were built on, holding
/// `decoded` nodes read from the store, is still small enough to keep.
fn worth_keeping(commits: usize, blocks: usize, decoded: usize) -> bool {
    commits < MAX_CACHED_COMMITS && blocks < MAX_CACHED_BLOCKS && decoded < MAX_CACHED_NODES
}

/// The state to build on: the cached one, else read afresh. On SQLite this process is the
/// only writer, so the cache is current by construction. On PostgreSQL another replica may
/// have moved the repository; a batch built on the stale cache is then refused as it is
/// stored (its root moves only from the commit it was built on, and nothing else is written)
/// and built again on the state read afresh, holding the repository's lock. Reading the root
/// before every build instead would cost every write a round trip to spare the rare one that
/// collides.
async fn current_state(ctx: &AppContext, did: &Did, cached: Option<Cached>) -> Result<Cached, WriteError> {
    match cached {
        Some(cached) => Ok(cached),
        None => load_state(ctx, did).await,
    }
}

/// A short, growing, random pause, so that two replicas writing one repository stop colliding.
async fn pause(attempts: u32) {
    let millis = rand::random_range(0..=2 * u64::from(attempts));
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

/// A repository error: a block gone from under the build means another replica committed.
fn repo_error(error: RepoError) -> WriteError {
    match error {
        RepoError::MissingCommit(_) | RepoError::Mst(aurora_atproto::mst::MstError::MissingBlock(_)) => {
            WriteError::Moved(error.to_string())
        }
        RepoError::DuplicateWrite(key) => WriteError::DuplicateWrite(key.to_string()),
        RepoError::RecordExists(key) => WriteError::AlreadyExists(key.to_string()),
        RepoError::RecordNotFound(key) => WriteError::NotFound(key.to_string()),
        other => internal(other),
    }
}

/// A batch on its way into the database.
struct Storing {
    jobs: Vec<Job>,
    results: Vec<Result<bool, WriteError>>,
    /// The store under way; `None` when the batch made no commit.
    stored: Option<StoreUnderWay>,
}

/// A store under way: what it stored, with the commits handed back.
type StoreUnderWay = Pin<Box<dyn Future<Output = Result<(Stored, Vec<Built>), StoreError>> + Send>>;

impl Storing {
    /// Starts storing `batch`'s commits, in the transaction `locked` holds if given.
    fn start(ctx: &Arc<AppContext>, did: &Did, batch: BuiltBatch, locked: Option<super::batch::RepoLock>) -> Storing {
        let BuiltBatch { jobs, results, commits, events } = batch;
        if !commits.is_empty() {
            ctx.metrics.batch(commits.len());
        }
        let stored =
            (!commits.is_empty()).then(|| Box::pin(super::batch::store(ctx, did, commits, events, locked)) as _);
        Storing { jobs, results, stored }
    }

    /// Waits for the store to end, and has the batch answered once it is on disk. Whether the
    /// repository is now what the batch's build left in `state`; if not, `state` holds what
    /// it is instead, or nothing (to be read afresh).
    async fn land(self, ctx: &Arc<AppContext>, did: &Did, state: &mut Option<Cached>) -> bool {
        let mut storing = self;
        let mut attempts = 0u32;
        loop {
            let Storing { jobs, results, stored } = storing;
            let outcome = match stored {
                Some(stored) => stored.await,
                None if results.iter().any(|r| matches!(r, Ok(false))) => {
                    // Nothing to store, so nothing checked the account: a no-op answers as a
                    // write would.
                    match writable(ctx, did).await {
                        Ok(()) => Ok((Stored::default(), Vec::new())),
                        Err(refusal) => {
                            let answers = jobs.iter().map(|_| Err(refusal.clone())).collect();
                            send(jobs, answers);
                            return true;
                        }
                    }
                }
                None => Ok((Stored::default(), Vec::new())),
            };
            let error = match outcome {
                Ok((stored, commits)) => {
                    let committed = !commits.is_empty();
                    let mut commits = commits.into_iter();
                    let answers = results
                        .into_iter()
                        .map(|result| result.map(|made| made.then(|| commits.next().map(Built::committed)).flatten()))
                        .collect();
                    let batch = StoredBatch { jobs, answers, committed, stored };
                    let (ctx, did) = (ctx.clone(), did.clone());
                    tokio::spawn(async move { batch.answer(&ctx, &did).await });
                    return attempts == 0;
                }
                Err(StoreError::Refused) => {
                    // The account may no longer write (deactivated, taken down, deleted), or
                    // the repository moved under a stale state (another replica wrote to it):
                    // then the batch is built again on the state read afresh, holding the
                    // repository's lock so that no other replica moves it meanwhile.
                    *state = None;
                    match writable(ctx, did).await {
                        Err(refusal) => refusal,
                        Ok(()) if attempts >= MAX_REBUILDS => {
                            WriteError::internal(format!("the repository {did} kept moving"))
                        }
                        Ok(()) => {
                            attempts += 1;
                            let lock = if ctx.sqlite_writer.is_none() {
                                match super::batch::RepoLock::acquire(&ctx.db, did).await {
                                    Ok(lock) => Some(lock),
                                    Err(e) => {
                                        let answers = jobs.iter().map(|_| Err(internal(&e))).collect();
                                        send(jobs, answers);
                                        return false;
                                    }
                                }
                            } else {
                                None
                            };
                            let Some(batch) = build_batch(ctx, did, state, jobs).await else { return false };
                            storing = Storing::start(ctx, did, batch, lock);
                            continue;
                        }
                    }
                }
                Err(e) => {
                    *state = None;
                    internal(e)
                }
            };
            let answers = jobs.iter().map(|_| Err(error.clone())).collect();
            send(jobs, answers);
            return false;
        }
    }
}

/// How many times a batch is built again after another replica moved the repository under it.
const MAX_REBUILDS: u32 = 16;

/// A batch written to the database, to be answered once it is on disk.
struct StoredBatch {
    jobs: Vec<Job>,
    answers: Vec<Reply>,
    /// Whether it made any commit (a batch of no-ops has nothing to sync or announce).
    committed: bool,
    stored: Stored,
}

impl StoredBatch {
    async fn answer(self, ctx: &AppContext, did: &Did) {
        let StoredBatch { jobs, answers, committed, stored } = self;
        if committed {
            if let Some(writer) = &ctx.sqlite_writer {
                let waiting = std::time::Instant::now();
                writer.synced().await;
                ctx.metrics.sync_waited(waiting.elapsed());
            }
            ctx.firehose.poke_at(stored.last_seq);
            crate::crawl::notify(ctx);
            // Before answering, so a client that deleted a blob's last reference finds it gone.
            if !stored.released.is_empty() {
                if let Err(e) = crate::blobs::release_unreferenced(ctx, did, &stored.released).await {
                    tracing::warn!(%did, error = %e, "could not release dereferenced blobs");
                }
            }
        }
        send(jobs, answers);
    }
}

fn send(jobs: Vec<Job>, answers: Vec<Reply>) {
    for (job, answer) in jobs.into_iter().zip(answers) {
        let _ = job.reply.send(answer);
    }
}

impl Built {
    fn committed(self) -> Committed {
        Committed { cid: self.data.cid, rev: self.data.commit.rev.clone(), outcomes: self.outcomes }
    }
}

/// The repository's current state, read from the database.
async fn load_state(ctx: &AppContext, did: &Did) -> Result<Cached, WriteError> {
    let Some(root) = super::root(&ctx.db, did).await.map_err(internal)? else {
        writable(ctx, did).await?;
        return Err(WriteError::internal(format!("{did} has no repository")));
    };
    let root_cid: Cid = root.cid.to_cid().map_err(internal)?;
    let key = crate::keys::signing_key(ctx, did).await.map_err(internal)?;
    let repo = Repo::load(SqlBlockStore::new(&ctx.db, did), root_cid).await.map_err(repo_error)?;
    Ok(Cached { head: repo.into_head(), key, commits: 0, blocks: 0 })
}

/// Builds one request's commit and its `#commit` event on `repo`, which it advances; `None`
/// when there is nothing to do. Claims the blobs the records reference.
async fn build(
    ctx: &AppContext,
    did: &Did,
    repo: &mut Repo<SqlBlockStore<'_, sea_orm::DatabaseConnection>>,
    job: &Job,
    key: &Keypair,
) -> Result<Option<(Built, NewEvent)>, WriteError> {
    if let Some(expected) = job.swap_commit {
        if expected != repo.commit_cid() {
            return Err(invalid_swap(format!("Commit was at {}", repo.commit_cid())));
        }
    }
    let mut record_writes = Vec::new();
    let mut outcomes = Vec::new();
    let mut paths = Vec::new();
    let mut blobs = Vec::new();
    let mut created = Vec::new();
    for p in &job.prepared {
        let uri = AtUri::record(did, &p.collection, &p.rkey);
        let current = repo.record_cid(&p.collection, &p.rkey).await.map_err(repo_error)?;
        // Deleting a record that is not there is nothing to do, whatever it was expected to be.
        let absent_delete = matches!(p.kind, Kind::Delete { must_exist: false }) && current.is_none();
        if let Some(expected) = p.swap.filter(|_| !absent_delete) {
            if current != expected {
                return Err(invalid_swap(format!(
                    "Record was at {}",
                    current.map_or("nothing".into(), |c| c.to_string())
                )));
            }
        }
        let (collection, rkey) = (p.collection.clone(), p.rkey.clone());
        let outcome = match (p.kind, current, &p.block) {
            (Kind::Create, Some(_), _) => {
                return Err(WriteError::AlreadyExists(uri.to_string()));
            }
            (Kind::Create | Kind::Put, None, Some((cid, bytes))) => {
                record_writes.push(RecordWrite::Create { collection, rkey, record: bytes.clone() });
                WriteOutcome { uri, cid: Some(*cid), validation_status: p.validation_status }
            }
            (Kind::Update, None, _) => {
                return Err(WriteError::NotFound(uri.to_string()));
            }
            (Kind::Put | Kind::Update, Some(existing), Some((cid, bytes))) => {
                if existing != *cid {
                    record_writes.push(RecordWrite::Update { collection, rkey, record: bytes.clone() });
                }
                WriteOutcome { uri, cid: Some(*cid), validation_status: p.validation_status }
            }
            (Kind::Delete { .. }, Some(_), _) => {
                record_writes.push(RecordWrite::Delete { collection, rkey });
                WriteOutcome { uri, cid: None, validation_status: None }
            }
            (Kind::Delete { must_exist: true }, None, _) => {
                return Err(WriteError::NotFound(uri.to_string()));
            }
            (Kind::Delete { must_exist: false }, None, _) => continue,
            (_, _, None) => return Err(WriteError::internal("a create or put without a record")),
        };
        outcomes.push(outcome);
        paths.push((p.collection.clone(), p.rkey.clone()));
        blobs.push(p.blobs.clone());
        created.push(current.is_none());
    }
    if record_writes.is_empty() {
        return Ok(None);
    }
    claim_blobs(ctx, did, blobs.iter().flatten()).await?;
    let base = repo.commit_cid();
    let data = repo.apply_writes(record_writes, key).await.map_err(repo_error)?;
    let event = crate::sequencer::commit_event(did, &data).await.map_err(internal)?;
    Ok(Some((Built { base, data, outcomes, blobs, created, paths }, event)))
}

/// Every referenced blob must have been uploaded by this account with the type the record
/// claims; temporary ones move to permanent storage now (before the commit, so a failed commit
/// leaves at worst an unreferenced permanent blob for the collector).
async fn claim_blobs<'a>(
    ctx: &AppContext,
    did: &Did,
    references: impl Iterator<Item = &'a BlobReference>,
) -> Result<(), WriteError> {
    for reference in references {
        let row = blob::Entity::find()
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::Cid.eq(reference.cid.to_string()))
            .one(&ctx.db)
            .await
            .map_err(internal)?
            .ok_or_else(|| WriteError::BlobNotFound(reference.cid.to_string()))?;
        if row.mime_type != reference.mime_type {
            return Err(invalid_record(format!(
                "Referenced Mimetype does not match stored blob. Expected: {}, Got: {}",
                row.mime_type, reference.mime_type
            )));
        }
        if reference.size.is_some_and(|size| size != row.size as u64) {
            return Err(invalid_record(format!(
                "Referenced blob size does not match stored blob ({} bytes)",
                row.size
            )));
        }
        if let Some(key) = &row.temp_key {
            match ctx.blobs.make_permanent(key, did, &reference.cid).await {
                Err(crate::blobs::BlobError::Damaged(cid)) => return Err(WriteError::BlobNotFound(cid)),
                moved => moved.map_err(internal)?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_the_oldest_jobs_up_to_the_write_bound_but_always_one() {
        assert_eq!(batch_len([]), 0);
        assert_eq!(batch_len([1; 8]), 8);
        assert_eq!(batch_len([200; 6]), 5);
        assert_eq!(batch_len([0, 999, 1]), 2, "an empty job still counts");
        assert_eq!(batch_len([5_000, 1]), 1, "a larger request goes alone");
    }

    #[test]
    fn a_state_is_kept_through_single_writes_but_not_past_large_batches() {
        // A createRecord writes its record, the commit and a few nodes.
        assert!(worth_keeping(100, 100 * 6, 40));
        assert!(!worth_keeping(MAX_CACHED_COMMITS, 6 * MAX_CACHED_COMMITS, 40), "too many commits");
        // Five batches of 200 records (each with its nodes) built the tree in memory.
        assert!(!worth_keeping(5, 5 * 260, 10), "too many blocks built");
        assert!(!worth_keeping(3, 18, MAX_CACHED_NODES), "too many nodes decoded");
    }
}
