//! Storing a batch of consecutive commits to one repository in one transaction. The batch is
//! written as its net effect — each block, record row and blob reference as the last commit to
//! touch it left it — which is exactly what storing the commits one by one would leave behind.
//! Each commit still gets its own `#commit` event.
//!
//! On SQLite the transaction runs on the server's own writer connection, statement after
//! statement on its thread (see [`crate::db::SqliteWriter`]); on PostgreSQL it goes through
//! the pool in a handful of multi-row statements. Either way it runs beside its caller, which
//! builds the repository's next commits meanwhile.

use aurora_atproto::syntax::Did;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use foldhash::{HashMap, HashMapExt};
use futures_util::future::Either;
use sea_orm::sea_query::{Expr, IntoColumnRef, Query, Value};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, TransactionTrait};

use super::store::{self, Backend, Step};
use super::writer::Built;
use crate::context::AppContext;
use crate::db::entities::{blob, record, record_blob, repo_block, repo_root};
use crate::sequencer::NewEvent;
use aurora_atproto::syntax::{AtUri, Nsid, RecordKey, Tid};

/// Values per `IN (…)` list.
const IN_LIST: usize = 500;

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreError {
    /// The account may not write now, or the repository is no longer at the commit the batch
    /// was built on.
    #[error("the repository's root did not move")]
    Refused,
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Store(error.into())
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        StoreError::Store(error.into())
    }
}

/// One record row as the batch leaves it.
struct RecordRow<'a> {
    uri: &'a AtUri,
    collection: &'a Nsid,
    rkey: &'a RecordKey,
    cid: Cid,
    rev: &'a Tid,
}

/// What storing the batch changes, worked out before the transaction starts.
struct NetEffect<'a> {
    /// Blocks present after the batch, with the rev of the commit that wrote each.
    blocks: Vec<(&'a Cid, &'a Bytes, &'a Tid)>,
    /// Blocks the batch's tree no longer holds.
    gone: Vec<&'a Cid>,
    records: Vec<RecordRow<'a>>,
    deleted: Vec<&'a AtUri>,
    /// Records written by the batch that existed before it: their stored blob references are
    /// replaced.
    stored_before: Vec<&'a AtUri>,
    /// (record, blob) references of the records the batch leaves in place.
    references: Vec<(&'a AtUri, Cid)>,
    /// Blobs now referenced, which stop being temporary.
    claimed: Vec<Cid>,
    /// Blobs an earlier commit of this batch referenced and a later one dropped.
    released: BTreeSet<Cid>,
    /// The commit the batch was built on, and the one it leaves as the root.
    base: Cid,
    root: Cid,
    rev: &'a Tid,
    now: String,
    events: Vec<NewEvent>,
}

/// What storing a batch left to do.
#[derive(Default)]
pub(super) struct Stored {
    /// Blobs that lost a reference and may now be unreferenced.
    pub(super) released: Vec<Cid>,
    /// The sequence number of the batch's last event.
    pub(super) last_seq: i64,
}

/// Starts storing `commits` (consecutive, oldest first) with their `events`: on SQLite's writer
/// thread, or through the pool on a task of its own; the same statements either way. The store goes on whether or not the
/// returned future is polled, so the caller can build the next commits meanwhile; the future
/// resolves to what was stored, with the commits handed back.
pub(super) fn store(
    ctx: &Arc<AppContext>,
    did: &Did,
    commits: Vec<Built>,
    events: Vec<NewEvent>,
    locked: Option<RepoLock>,
) -> impl Future<Output = Result<(Stored, Vec<Built>), StoreError>> + Send + 'static {
    let did = did.to_owned();
    match &ctx.sqlite_writer {
        Some(writer) => Either::Left(writer.transaction(move |txn| {
            let stored = match NetEffect::of(&commits, events) {
                Some(mut effect) => {
                    let mut backend = store::Sqlite { txn };
                    let (released, last_seq) = store::run_ready(store_effect(&mut backend, &did, &mut effect))?;
                    effect.stored(released, last_seq)
                }
                None => Stored::default(),
            };
            let last_seq = stored.last_seq;
            Ok::<_, StoreError>(((stored, commits), last_seq))
        })),
        None => {
            let ctx = ctx.clone();
            let task = tokio::spawn(async move {
                let stored = match NetEffect::of(&commits, events) {
                    Some(mut effect) => {
                        // Alone first, unless the write is known to need more than one
                        // statement: one round trip, where a transaction takes three.
                        let alone = match locked {
                            None if effect.stored_before.is_empty() => {
                                match store_effect(
                                    &mut store::Pooled::alone(&ctx.db, ctx.reader.as_deref()),
                                    &did,
                                    &mut effect,
                                )
                                .await
                                {
                                    Err(StoreError::Store(store::StoreError::NeedsTransaction)) => None,
                                    done => Some(done?),
                                }
                            }
                            _ => None,
                        };
                        let (released, last_seq) = match alone {
                            Some(done) => done,
                            None => {
                                let txn = match locked {
                                    Some(lock) => lock.into_transaction(),
                                    None => RepoLock::acquire(&ctx.db, &did).await?.into_transaction(),
                                };
                                let done = store_effect(&mut store::Pooled::new(&txn), &did, &mut effect).await?;
                                txn.commit().await?;
                                done
                            }
                        };
                        effect.stored(released, last_seq)
                    }
                    None => Stored::default(),
                };
                Ok((stored, commits))
            });
            Either::Right(async move {
                task.await.unwrap_or_else(|e| Err(DbErr::Custom(format!("the store did not finish: {e}")).into()))
            })
        }
    }
}

/// A transaction holding the row of `did`'s repository root locked on PostgreSQL. Every
/// store of a commit locks that row (a commit moves it, and a commit of one statement moves
/// it before anything else): stores to one repository from any replica take turns in the
/// database. A store that takes this lock first (a batch built again after another replica
/// moved the repository, an import) holds it while it works out what to write, so it cannot
/// be refused for the same reason, and no commit lands in between.
pub(crate) struct RepoLock(DatabaseTransaction);

impl RepoLock {
    pub(crate) async fn acquire(db: &DatabaseConnection, did: &Did) -> Result<RepoLock, DbErr> {
        let txn = db.begin().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            let lock = Query::select()
                .expr(Expr::val(1))
                .from(repo_root::Entity)
                .and_where(Expr::col(repo_root::Column::Did).eq(did))
                .lock(sea_orm::sea_query::LockType::Update)
                .to_owned();
            txn.execute(DbBackend::Postgres.build(&lock)).await?;
        }
        Ok(RepoLock(txn))
    }

    pub(crate) fn into_transaction(self) -> DatabaseTransaction {
        self.0
    }
}

impl<'a> NetEffect<'a> {
    fn of(built: &'a [Built], events: Vec<NewEvent>) -> Option<NetEffect<'a>> {
        let (Some(first), Some(last)) = (built.first(), built.last()) else { return None };

        // Per block: present (with bytes) or gone, as the last commit touching it left it.
        let touched = built.iter().map(|c| c.data.removed_blocks.len() + c.data.new_blocks.len()).sum();
        let mut blocks: HashMap<&Cid, Option<(&Bytes, &Tid)>> = HashMap::with_capacity(touched);
        for commit in built {
            let rev = &commit.data.commit.rev;
            for cid in &commit.data.removed_blocks {
                blocks.insert(cid, None);
            }
            for (cid, bytes) in commit.data.new_blocks.iter() {
                blocks.insert(cid, Some((bytes, rev)));
            }
        }
        // Per record, and per record its blob references.
        let writes = built.iter().map(|c| c.outcomes.len()).sum();
        let mut records: HashMap<&AtUri, Option<(&Nsid, &RecordKey, Cid, &Tid)>> = HashMap::with_capacity(writes);
        let mut references: HashMap<&AtUri, Vec<Cid>> = HashMap::with_capacity(writes);
        let mut stored_before: BTreeSet<&AtUri> = BTreeSet::new();
        let mut released: BTreeSet<Cid> = BTreeSet::new();
        for commit in built {
            let rev = &commit.data.commit.rev;
            for (((outcome, (collection, rkey)), blobs), created) in
                commit.outcomes.iter().zip(&commit.paths).zip(&commit.blobs).zip(&commit.created)
            {
                let uri = &outcome.uri;
                if !created && !records.contains_key(uri) {
                    stored_before.insert(uri);
                }
                records.insert(uri, outcome.cid.map(|cid| (collection, rkey, cid, rev)));
                let now_referenced: Vec<Cid> = blobs.iter().map(|b| b.cid).collect();
                if let Some(earlier) = references.insert(uri, now_referenced) {
                    released.extend(earlier);
                }
            }
        }

        let references: Vec<(&AtUri, Cid)> = references
            .into_iter()
            .filter(|(uri, _)| records.get(uri).is_some_and(Option::is_some))
            .flat_map(|(uri, cids)| cids.into_iter().map(move |cid| (uri, cid)))
            .collect();
        let claimed: BTreeSet<Cid> = references.iter().map(|(_, cid)| *cid).collect();
        let (present, gone): (Vec<_>, Vec<_>) = blocks.into_iter().partition(|(_, entry)| entry.is_some());
        let (kept, deleted): (Vec<_>, Vec<_>) = records.into_iter().partition(|(_, entry)| entry.is_some());
        Some(NetEffect {
            blocks: present
                .into_iter()
                .filter_map(|(cid, entry)| entry.map(|(bytes, rev)| (cid, bytes, rev)))
                .collect(),
            gone: gone.into_iter().map(|(cid, _)| cid).collect(),
            records: kept
                .into_iter()
                .filter_map(|(uri, entry)| entry.map(|entry| (uri, entry)))
                .map(|(uri, (collection, rkey, cid, rev))| RecordRow { uri, collection, rkey, cid, rev })
                .collect(),
            deleted: deleted.into_iter().map(|(uri, _)| uri).collect(),
            stored_before: stored_before.into_iter().collect(),
            references,
            claimed: claimed.into_iter().collect(),
            released,
            base: first.base,
            root: last.data.cid,
            rev: &last.data.commit.rev,
            now: crate::account::now(),
            events,
        })
    }

    /// What is left to do once the batch is stored, given the blobs that may have lost their
    /// last reference and the last event's number.
    fn stored(self, released: BTreeSet<Cid>, last_seq: i64) -> Stored {
        // Only blobs no current record of this batch references may have become unreferenced.
        let released = released.into_iter().filter(|cid| !self.claimed.contains(cid)).collect();
        Stored { released, last_seq }
    }
}

/// Stores the batch's net effect through `backend`, on either database: the blocks, the record
/// index, the blob references, the new root and the events; the blobs that may have lost their
/// last reference, and the last event's number. Every statement is built from the entities.
async fn store_effect<B: Backend>(
    backend: &mut B,
    did: &Did,
    effect: &mut NetEffect<'_>,
) -> Result<(BTreeSet<Cid>, i64), StoreError> {
    // Blob references: records stored before this batch drop their old ones (first, as the
    // new ones may be the same); every record now written adds its current ones, and every
    // referenced blob stops being temporary.
    let mut released = effect.released.clone();
    for chunk in effect.stored_before.chunks(IN_LIST) {
        let referenced = Query::select()
            .column(record_blob::Column::BlobCid)
            .from(record_blob::Entity)
            .and_where(Expr::col(record_blob::Column::RecordUri).is_in(chunk.iter().map(|uri| Value::from(*uri))))
            .to_owned();
        released.extend(
            backend.select_text(&referenced).await?.iter().filter_map(|cid| aurora_atproto::cids::parse(cid).ok()),
        );
    }
    let before = effect.stored_before.iter().map(|uri| Value::from(*uri)).collect();
    let forget = Query::delete().from_table(record_blob::Entity).to_owned();
    backend.delete_each(&forget, record_blob::Column::RecordUri, before).await?;
    let references = effect.references.iter().map(|(uri, cid)| super::blob_reference_row(did, uri, cid)).collect();
    let claim = Query::update()
        .table(blob::Entity)
        .value(blob::Column::TempKey, Option::<String>::None)
        .and_where(Expr::col(blob::Column::Did).eq(did))
        .to_owned();
    let claimed = effect.claimed.iter().map(|cid| Value::from(cid.to_string())).collect();

    // The tree's blocks and the record index: a block is either present or gone after the
    // batch, and so is a record, so these steps touch disjoint rows.
    let block_rows = effect.blocks.iter().map(|(cid, bytes, rev)| super::block_row(did, cid, bytes, rev)).collect();
    let gone = effect.gone.iter().map(|cid| Value::from(cid.to_string())).collect();
    let record_rows = effect
        .records
        .iter()
        .map(|row| {
            let key = super::RecordKey { uri: row.uri, collection: row.collection, rkey: row.rkey };
            super::record_row(did, &key, &row.cid, row.rev, &effect.now)
        })
        .collect();
    let deleted = effect.deleted.iter().map(|uri| Value::from(*uri)).collect();
    let steps = vec![
        Step::Insert(super::blob_reference_insert(), references),
        Step::UpdateEach(Box::new(claim), blob::Column::Cid.into_column_ref(), claimed),
        Step::Insert(super::block_insert(), block_rows),
        Step::DeleteEach(Box::new(super::blocks_of(did)), repo_block::Column::Cid.into_column_ref(), gone),
        Step::Insert(super::record_upsert(), record_rows),
        Step::DeleteEach(
            Box::new(Query::delete().from_table(record::Entity).to_owned()),
            record::Column::Uri.into_column_ref(),
            deleted,
        ),
    ];

    let move_root = store::RootMove {
        did,
        root: effect.root.to_string(),
        rev: effect.rev.as_str(),
        indexed_at: aurora_atproto::syntax::Datetime::now().as_str().to_owned(),
        base: effect.base.to_string(),
    };
    match backend.commit(steps, &move_root, &mut effect.events).await? {
        Some(last_seq) => Ok((released, last_seq)),
        None => Err(StoreError::Refused),
    }
}
