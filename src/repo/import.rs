//! `importRepo`: replaces an account's repository with one exported elsewhere (an account
//! moving here). The CAR is put aside on disk as it arrives ([`StagedCar`]), then verified in
//! full — every block hash, the MST, and the commit's signature by the DID's key (or this
//! account's own key, for a re-import) — and then stored, re-signed by this server under a
//! newer rev, with its record index in one transaction. Both passes walk the tree block by
//! block, so memory stays small whatever the repository's size.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::ConnectionTrait;
use tokio::sync::mpsc;

use aurora_atproto::car::{walk_tree, CarError, CarLimits, Visit};
use aurora_atproto::commit::{next_rev, Commit, UnsignedCommit};
use aurora_atproto::crypto::PublicKey;
use aurora_atproto::mst::MstKey;
use aurora_atproto::repo::CommitData;
use aurora_atproto::syntax::{AtUri, Did, Nsid, RecordKey, Tid};

use super::staging::{StageError, StagedCar};
use super::store::{self, Backend};
use crate::blobs::refs;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::sequencer::{self, AccountStatus, NewEvent};

/// What one store statement round takes at most: items, and bytes of blocks.
const CHUNK_ITEMS: usize = 500;
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Why an import did not happen; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The upload is not a CAR file within the limits.
    #[error("Invalid repository CAR: {0}")]
    InvalidCar(CarError),
    /// The CAR does not hold a repository of this account, signed and well-formed.
    #[error("Repository does not verify: {0}")]
    DoesNotVerify(String),
    /// The account may not import (taken down, or gone).
    #[error("the account may not import")]
    Refused(crate::account::status::Refusal),
    #[error("the import failed: {0}")]
    Internal(String),
}

fn internal(cause: impl std::fmt::Display) -> ImportError {
    ImportError::Internal(cause.to_string())
}

fn sqlite(cause: rusqlite::Error) -> ImportError {
    internal(cause)
}

fn does_not_verify(cause: impl std::fmt::Display) -> ImportError {
    ImportError::DoesNotVerify(cause.to_string())
}

/// Replaces `did`'s repository with the one `reader` uploads; how many records it holds.
pub async fn import<R>(ctx: &AppContext, did: &Did, reader: R) -> Result<usize, ImportError>
where
    R: tokio::io::AsyncRead + Unpin + Send,
{
    let limits = CarLimits { max_total_size: ctx.config.max_repo_import_size, ..CarLimits::default() };
    let dir = ctx.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
    let staged = StagedCar::read(reader, limits, &dir).await.map_err(|e| match e {
        StageError::Car(e) => ImportError::InvalidCar(e),
        StageError::Disk(e) => internal(e),
    })?;
    let staged = Arc::new(staged);
    let own_key = crate::keys::signing_key(ctx, did).await.map_err(internal)?;
    let mut keys = Vec::new();
    if let Ok(doc) = ctx.resolver.did_doc(did, true).await {
        keys.extend(crate::identity::atproto_key(did.as_str(), &doc));
    }
    keys.push(own_key.public_key());
    let (commit, records) = {
        let (staged, did) = (staged.clone(), did.clone());
        tokio::task::spawn_blocking(move || verify(&staged, &did, &keys)).await.map_err(internal)??
    };

    // The imported state, signed by this server's key for this account.
    let _guard = ctx.writers.exclusive(did).await;
    let current = super::root(&ctx.db, did).await.map_err(internal)?;
    let floor = match &current {
        Some(root) if root.rev > commit.rev => Some(root.rev.clone()),
        _ => Some(commit.rev.clone()),
    };
    let signed = UnsignedCommit::new(did.clone(), commit.data, next_rev(floor.as_ref())).sign(&own_key);
    let (commit_cid, commit_bytes) = signed.to_block();
    let data = CommitData {
        cid: commit_cid,
        commit: signed.clone(),
        since: None,
        prev_data: None,
        ops: Vec::new(),
        new_blocks: [(commit_cid, commit_bytes)].into_iter().collect(),
        removed_blocks: Vec::new(),
        firehose_blocks: Default::default(),
    };
    let rev = signed.rev.clone();
    let replacement = Replacement { did: did.clone(), rev, root: commit.data, data, staged };
    let event = sequencer::sync_event(did, &signed).await.map_err(internal)?;
    match &ctx.sqlite_writer {
        Some(writer) => {
            replacement.store_sqlite(writer, event).await?;
            writer.synced().await;
        }
        None => replacement.store_pooled(ctx, event).await?,
    }
    ctx.firehose.poke();
    Ok(records)
}

/// What replaces the account's repository: the verified tree under `root`, read from `staged`,
/// and the commit signed for it here.
struct Replacement {
    did: Did,
    rev: Tid,
    root: Cid,
    data: CommitData,
    staged: Arc<StagedCar>,
}

/// Why an import's transaction was rolled back.
#[derive(Debug, thiserror::Error)]
enum StoreFailure {
    #[error("the account may not import: {0:?}")]
    Refused(crate::account::status::Refusal),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl From<rusqlite::Error> for StoreFailure {
    fn from(error: rusqlite::Error) -> Self {
        StoreFailure::Store(error.into())
    }
}

impl From<StoreFailure> for ImportError {
    fn from(failure: StoreFailure) -> Self {
        match failure {
            StoreFailure::Refused(refused) => ImportError::Refused(refused),
            StoreFailure::Store(e) => internal(e),
        }
    }
}

impl Replacement {
    /// The replacement on SQLite, where one writer connection serves every account: the tree
    /// is staged in short transactions (new blocks beside the current ones, the record index
    /// and blob references in TEMP tables on the writer's connection), so other accounts'
    /// commits slip in between; one short transaction then swaps the staged repository in.
    /// Until the swap the account's repository is what it was; a failure before it removes
    /// what was staged (new blocks carry the import's rev, blocks already stored keep theirs).
    async fn store_sqlite(self, writer: &crate::db::SqliteWriter, event: NewEvent) -> Result<(), ImportError> {
        let did = self.did.clone();
        writer.transaction(move |txn| staging::sqlite::prepare(txn, &did).map(|()| ((), 0))).await.map_err(sqlite)?;
        let staged = self.stage_sqlite(writer).await;
        let outcome = match staged {
            Ok(()) => writer.transaction(move |txn| self.swap_sqlite(txn, event)).await.map_err(ImportError::from),
            Err(e) => {
                let (did, rev) = (self.did.clone(), self.rev.clone());
                let _ =
                    writer.transaction(move |txn| staging::sqlite::discard(txn, &did, &rev).map(|()| ((), 0))).await;
                Err(e)
            }
        };
        outcome.map(|_| ())
    }

    /// Walks the staged tree on a blocking thread, handing its rows over a chunk at a time.
    fn spawn_walker(&self) -> (tokio::task::JoinHandle<()>, mpsc::Receiver<Result<Vec<Item>, CarError>>) {
        let (chunks, incoming) = mpsc::channel::<Result<Vec<Item>, CarError>>(2);
        let (staged, root) = (self.staged.clone(), self.root);
        let walker = tokio::task::spawn_blocking(move || {
            let mut chunk = Chunk::default();
            let walked = walk_tree(
                root,
                |cid| staged.get(cid),
                |visit| {
                    if chunk.add(visit)? {
                        chunks
                            .blocking_send(Ok(std::mem::take(&mut chunk).items))
                            .map_err(|_| CarError::Io(std::io::Error::other("the import was abandoned")))?;
                    }
                    Ok(())
                },
            );
            let _ = chunks.blocking_send(walked.map(|()| chunk.items));
        });
        (walker, incoming)
    }

    /// Walks the tree on a blocking thread and stores it a chunk per writer transaction.
    async fn stage_sqlite(&self, writer: &crate::db::SqliteWriter) -> Result<(), ImportError> {
        let (walker, mut incoming) = self.spawn_walker();
        let now = crate::account::now();
        while let Some(chunk) = incoming.recv().await {
            let chunk = chunk.map_err(does_not_verify)?;
            let (did, rev, now) = (self.did.clone(), self.rev.clone(), now.clone());
            writer
                .transaction(move |txn| {
                    let mut backend = store::Sqlite { txn };
                    store::run_ready(staging::store(&mut backend, &did, &rev, &now, chunk)).map(|()| ((), 0))
                })
                .await
                .map_err(internal)?;
        }
        walker.await.map_err(internal)
    }

    /// Swaps the staged repository in: checks the account may import, drops its blocks the new
    /// tree does not hold, replaces its record index and blob references with the staged ones,
    /// and stores the commit signed here. The `#sync` event's number, or 0.
    fn swap_sqlite(self, txn: &rusqlite::Transaction<'_>, event: NewEvent) -> Result<((), i64), StoreFailure> {
        let mut backend = store::Sqlite { txn };
        let status = store::run_ready(may_import(&mut backend, &self.did))?;
        staging::sqlite::swap(txn, &self.did)?;
        let seq = store::run_ready(self.finish(&mut backend, status, event))?;
        Ok(((), seq))
    }

    /// The replacement as one transaction through the connection pool (PostgreSQL), the tree
    /// walked on a blocking thread and handed over a chunk at a time into the transaction's
    /// TEMP tables, then swapped in as on SQLite.
    async fn store_pooled(self, ctx: &AppContext, event: NewEvent) -> Result<(), ImportError> {
        // Other replicas' writers to this repository wait while it is replaced.
        let txn = super::batch::RepoLock::acquire(&ctx.db, &self.did).await.map_err(internal)?.into_transaction();
        let mut backend = store::Pooled::new(&txn);
        let status = may_import(&mut backend, &self.did).await?;
        let backend_kind = txn.get_database_backend();
        txn.execute_unprepared(&staging::tables(backend_kind)).await.map_err(internal)?;
        let (walker, mut incoming) = self.spawn_walker();
        let now = crate::account::now();
        while let Some(chunk) = incoming.recv().await {
            let chunk = chunk.map_err(does_not_verify)?;
            staging::store(&mut backend, &self.did, &self.rev, &now, chunk).await.map_err(internal)?;
        }
        walker.await.map_err(internal)?;
        // PostgreSQL empties the TEMP tables at commit; elsewhere their rows outlive it.
        let clear = if backend_kind == sea_orm::DbBackend::Postgres { &[][..] } else { &staging::CLEAR[..] };
        for &sql in staging::SWAP.iter().chain(clear) {
            let statement = sea_orm::Statement::from_sql_and_values(backend_kind, sql, [self.did.as_str().into()]);
            txn.execute(statement).await.map_err(internal)?;
        }
        self.finish(&mut backend, status, event).await?;
        txn.commit().await.map_err(internal)
    }

    /// Stores the commit signed here and makes it the root; appends the `#sync` event if the
    /// account is active. The event's number, or 0.
    async fn finish<B: Backend>(
        &self,
        backend: &mut B,
        status: Option<AccountStatus>,
        event: NewEvent,
    ) -> Result<i64, StoreFailure> {
        let did = &self.did;
        let blocks =
            self.data.new_blocks.iter().map(|(cid, bytes)| super::block_row(did, cid, bytes, &self.rev)).collect();
        backend.insert(super::block_insert(), blocks).await?;
        let root = super::root_row(did, &self.data.cid, &self.rev);
        backend.insert(super::root_upsert(), vec![root]).await?;
        Ok(match status {
            Some(AccountStatus::Active) => backend.append_events(vec![event]).await?,
            _ => 0,
        })
    }
}

/// Checks the staged repository: the commit is for `did` and signed by one of `keys`, the tree
/// is complete and well-formed, and every record is valid data. The commit, and how many
/// records there are.
fn verify(staged: &StagedCar, did: &Did, keys: &[PublicKey]) -> Result<(Commit, usize), ImportError> {
    let invalid = does_not_verify;
    let root = staged.root();
    let bytes = staged.get(&root).map_err(invalid)?.ok_or(CarError::RootBlockMissing(root)).map_err(invalid)?;
    let commit = Commit::from_bytes(&bytes).map_err(|e| invalid(e.into()))?;
    commit.check_did(did).map_err(|e| invalid(e.into()))?;
    let mut refusal = None;
    if !keys.iter().any(|key| commit.verify(key).map_err(|e| refusal = Some(e)).is_ok()) {
        return Err(refusal.map_or_else(|| does_not_verify("no key signed it"), |e| invalid(CarError::from(e))));
    }
    let mut records = 0;
    walk_tree(
        commit.data,
        |cid| staged.get(cid),
        |visit| {
            if let Visit::Record { key, bytes, .. } = visit {
                record_blobs(key, bytes)?;
                records += 1;
            }
            Ok(())
        },
    )
    .map_err(invalid)?;
    Ok((commit, records))
}

/// The blobs a record references, after checking that it is valid data.
fn record_blobs(key: &MstKey, bytes: &[u8]) -> Result<BTreeSet<Cid>, CarError> {
    let value = aurora_atproto::data::from_dag_cbor(bytes)
        .and_then(|ipld| aurora_atproto::data::ipld_to_json(&ipld))
        .map_err(|e| CarError::Malformed(format!("record {key} is not valid data: {e}")))?;
    Ok(refs::find(&value).into_iter().map(|r| r.cid).collect())
}

/// What the store pass hands the transaction.
enum Item {
    Block(Cid, Bytes),
    Record { collection: Nsid, rkey: RecordKey, cid: Cid, blobs: BTreeSet<Cid> },
}

/// Items gathered from the walk until there are enough for one round of statements.
#[derive(Default)]
struct Chunk {
    items: Vec<Item>,
    bytes: usize,
}

impl Chunk {
    /// Adds what the walk visited (checking that a record is valid data); whether the chunk is
    /// now full.
    fn add(&mut self, visit: Visit<'_>) -> Result<bool, CarError> {
        match visit {
            Visit::Node { cid, bytes } => {
                self.bytes += bytes.len();
                self.items.push(Item::Block(*cid, bytes.clone()));
            }
            Visit::Record { key, cid, bytes } => {
                self.bytes += bytes.len();
                // The index addresses records by AT-URI, which only a real NSID and record key
                // can form; a tree holding anything else cannot be served, so it is refused.
                let unaddressable = || CarError::Malformed(format!("record {key} has no valid AT-URI path"));
                let collection: Nsid = key.collection().parse().map_err(|_| unaddressable())?;
                let rkey: RecordKey = key.rkey().parse().map_err(|_| unaddressable())?;
                let blobs = record_blobs(key, bytes)?;
                self.items.push(Item::Block(*cid, bytes.clone()));
                self.items.push(Item::Record { collection, rkey, cid: *cid, blobs });
            }
        }
        Ok(self.items.len() >= CHUNK_ITEMS || self.bytes >= CHUNK_BYTES)
    }
}

/// Where an import waits before it is swapped in: its blocks go beside the account's current
/// ones (noted in `import_cid`), its record index and blob references into TEMP tables of the
/// transaction's connection. The same statements serve both databases: unqualified names find
/// a TEMP table first. On SQLite the tables live on the writer's connection for as long as it
/// does (a crash leaves nothing of them), holding rows per account; on PostgreSQL they live
/// as long as the pooled connection and are emptied at the end of each transaction.
mod staging {
    use sea_orm::sea_query::{Alias, Query};
    use sea_orm::DbBackend;

    use std::sync::LazyLock;

    use super::{store, AtUri, Did, Item, Tid};
    use crate::db::entities::record_blob;
    use store::{Backend, Insert, Step};

    const TABLES: [&str; 3] = [
        "CREATE TEMP TABLE IF NOT EXISTS import_cid (did TEXT NOT NULL, cid TEXT NOT NULL, PRIMARY KEY (did, cid))",
        "CREATE TEMP TABLE IF NOT EXISTS import_record (uri TEXT PRIMARY KEY, cid TEXT NOT NULL, did TEXT NOT NULL, \
         collection TEXT NOT NULL, rkey TEXT NOT NULL, rev TEXT NOT NULL, indexed_at TEXT NOT NULL, takedown_ref TEXT)",
        "CREATE TEMP TABLE IF NOT EXISTS import_ref (blob_cid TEXT NOT NULL, record_uri TEXT NOT NULL, \
         did TEXT NOT NULL, PRIMARY KEY (blob_cid, record_uri))",
    ];

    /// The statements, run as one, that make sure the TEMP tables exist on `backend`.
    /// On PostgreSQL a connection keeps them once made: made and dropped by every import,
    /// each cost catalog rows for the table, its key and its TOAST table, and re-planned every
    /// statement that names them. The `IF NOT EXISTS` notice is kept out of the log.
    pub fn tables(backend: DbBackend) -> String {
        let (start, end) = match backend {
            DbBackend::Postgres => ("SET LOCAL client_min_messages = warning; ", " ON COMMIT DELETE ROWS"),
            _ => ("", ""),
        };
        let tables: Vec<String> = TABLES.iter().map(|table| format!("{table}{end}")).collect();
        format!("{start}{}", tables.join("; "))
    }

    /// Empties the TEMP tables of one account's rows (`$1`: its DID).
    pub const CLEAR: [&str; 3] = [
        "DELETE FROM import_cid WHERE did = $1",
        "DELETE FROM import_record WHERE did = $1",
        "DELETE FROM import_ref WHERE did = $1",
    ];

    /// Makes the staged repository the account's (`$1`: its DID): blocks outside the new tree
    /// go; records the import changed or dropped lose their row and blob references, and
    /// those it changed or added get theirs. A record the import holds unchanged keeps its
    /// row — its rev and indexing time, and any takedown — as it would had the import been
    /// applied as a diff of writes.
    pub const SWAP: [&str; 5] = [
        "DELETE FROM repo_block WHERE did = $1 \
         AND NOT EXISTS (SELECT 1 FROM import_cid i WHERE i.did = $1 AND i.cid = repo_block.cid)",
        "DELETE FROM record WHERE did = $1 \
         AND NOT EXISTS (SELECT 1 FROM import_record i WHERE i.uri = record.uri AND i.cid = record.cid)",
        "INSERT INTO record (uri, cid, did, collection, rkey, rev, indexed_at, takedown_ref) \
         SELECT i.uri, i.cid, i.did, i.collection, i.rkey, i.rev, i.indexed_at, i.takedown_ref FROM import_record i \
         WHERE i.did = $1 AND NOT EXISTS (SELECT 1 FROM record r WHERE r.uri = i.uri)",
        "DELETE FROM record_blob WHERE did = $1 AND NOT EXISTS (SELECT 1 FROM import_ref i \
         WHERE i.record_uri = record_blob.record_uri AND i.blob_cid = record_blob.blob_cid)",
        "INSERT INTO record_blob (blob_cid, record_uri, did) SELECT i.blob_cid, i.record_uri, i.did \
         FROM import_ref i WHERE i.did = $1 ON CONFLICT DO NOTHING",
    ];

    /// Stores one chunk of the walk: its blocks beside the current ones (noting each), its
    /// records and blob references in the TEMP tables.
    pub async fn store<B: Backend>(
        backend: &mut B,
        did: &Did,
        rev: &Tid,
        now: &str,
        chunk: Vec<Item>,
    ) -> Result<(), store::StoreError> {
        let mut blocks = Vec::new();
        let mut cids = Vec::new();
        let mut records = Vec::new();
        let mut references = Vec::new();
        for item in chunk {
            match item {
                Item::Block(cid, bytes) => {
                    cids.push(vec![did.into(), cid.to_string().into()]);
                    blocks.push(crate::repo::block_row(did, &cid, &bytes, rev));
                }
                Item::Record { collection, rkey, cid, blobs } => {
                    let uri = AtUri::record(did, &collection, &rkey);
                    references.extend(blobs.iter().map(|blob| crate::repo::blob_reference_row(did, &uri, blob)));
                    let at = crate::repo::RecordKey { uri: &uri, collection: &collection, rkey: &rkey };
                    records.push(crate::repo::record_row(did, &at, &cid, rev, now));
                }
            }
        }
        static NOTED: LazyLock<Insert> = LazyLock::new(|| {
            let noted = Query::insert()
                .into_table(Alias::new("import_cid"))
                .columns([Alias::new("did"), Alias::new("cid")])
                .on_conflict(sea_orm::sea_query::OnConflict::new().do_nothing().to_owned())
                .to_owned();
            Insert::new(noted)
        });
        static RECORDS: LazyLock<Insert> = LazyLock::new(|| {
            let mut into_temp = crate::repo::record_insert();
            into_temp.into_table(Alias::new("import_record"));
            Insert::new(into_temp)
        });
        static REFERENCES: LazyLock<Insert> = LazyLock::new(|| {
            let into_temp = Query::insert()
                .into_table(Alias::new("import_ref"))
                .columns([record_blob::Column::BlobCid, record_blob::Column::RecordUri, record_blob::Column::Did])
                .on_conflict(sea_orm::sea_query::OnConflict::new().do_nothing().to_owned())
                .to_owned();
            Insert::new(into_temp)
        });
        // Disjoint tables: one statement on PostgreSQL.
        let steps = vec![
            Step::Insert(crate::repo::block_insert(), blocks),
            Step::Insert(&NOTED, cids),
            Step::Insert(&RECORDS, records),
            Step::Insert(&REFERENCES, references),
        ];
        backend.run_steps(steps).await
    }

    /// SQLite's writer connection: the statements above, run on its thread.
    pub mod sqlite {
        use rusqlite::{params, Transaction};

        use super::{Did, Tid};

        fn run(txn: &Transaction<'_>, statements: &[&str], did: &Did) -> rusqlite::Result<()> {
            for sql in statements {
                txn.prepare_cached(sql)?.execute(params![did.as_str()])?;
            }
            Ok(())
        }

        /// Makes the TEMP tables ready for `did`, emptied of an earlier attempt's rows.
        pub fn prepare(txn: &Transaction<'_>, did: &Did) -> rusqlite::Result<()> {
            txn.execute_batch(&super::tables(sea_orm::DbBackend::Sqlite))?;
            run(txn, &super::CLEAR, did)
        }

        /// Swaps the staged repository in, and empties the TEMP tables of its rows.
        pub fn swap(txn: &Transaction<'_>, did: &Did) -> rusqlite::Result<()> {
            run(txn, &super::SWAP, did)?;
            run(txn, &super::CLEAR, did)
        }

        /// Removes what a failed import staged: its blocks (those it stored carry its rev) and
        /// its TEMP rows.
        pub fn discard(txn: &Transaction<'_>, did: &Did, rev: &Tid) -> rusqlite::Result<()> {
            txn.execute(
                "DELETE FROM main.repo_block WHERE did = ?1 AND rev = ?2",
                params![did.as_str(), rev.as_str()],
            )?;
            run(txn, &super::CLEAR, did)
        }
    }
}

/// Checks the account may import (a deactivated one may: it is moving here); its status.
async fn may_import<B: Backend>(backend: &mut B, did: &Did) -> Result<Option<AccountStatus>, StoreFailure> {
    let rows = backend.select_texts(&status_query(did), 2).await?;
    let status = rows.first().map(|row| crate::account::status_of(row[0].is_some(), row[1].is_some()));
    crate::account::status::writable(status, true).map_err(StoreFailure::Refused)?;
    Ok(status)
}

/// The account's takedown and deactivation, which decide whether it may import.
fn status_query(did: &Did) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([actor::Column::TakedownRef, actor::Column::DeactivatedAt])
        .from(actor::Entity)
        .and_where(Expr::col(actor::Column::Did).eq(did))
        .and_where(Expr::col(actor::Column::DeletedAt).is_null())
        .to_owned()
}
