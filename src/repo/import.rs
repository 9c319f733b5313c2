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
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set, TransactionTrait};
use tokio::sync::mpsc;

use aurora_atproto::car::{walk_tree, CarError, CarLimits, Visit};
use aurora_atproto::commit::{next_rev, Commit, UnsignedCommit};
use aurora_atproto::crypto::PublicKey;
use aurora_atproto::mst::MstKey;
use aurora_atproto::repo::CommitData;
use aurora_atproto::syntax::Did;
use aurora_xrpc::XrpcError;

use super::staging::{StageError, StagedCar};
use crate::api::internal;
use crate::blobs::refs;
use crate::context::AppContext;
use crate::db::entities::{record, record_blob, repo_block};
use crate::sequencer::{self, AccountStatus};

/// The page cache of SQLite's writer connection during an import (negative: KiB).
const IMPORT_CACHE_KIB: i64 = -512;

/// What one store statement round takes at most: items, and bytes of blocks.
const CHUNK_ITEMS: usize = 500;
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

pub async fn import<R>(ctx: &AppContext, did: &str, reader: R) -> Result<usize, XrpcError>
where
    R: tokio::io::AsyncRead + Unpin + Send,
{
    let limits = CarLimits { max_total_size: ctx.config.max_repo_import_size, ..CarLimits::default() };
    let dir = ctx.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
    let staged = StagedCar::read(reader, limits, &dir).await.map_err(|e| match e {
        StageError::Car(e) => XrpcError::invalid_request(format!("Invalid repository CAR: {e}")),
        StageError::Disk(e) => internal(e),
    })?;
    let staged = Arc::new(staged);
    let did_typed: Did = did.parse().map_err(internal)?;
    let own_key = crate::keys::signing_key(ctx, did).await?;
    let mut keys = Vec::new();
    if let Ok(doc) = ctx.resolver.did_doc(did, true).await {
        keys.extend(crate::identity::atproto_key(did, &doc));
    }
    keys.push(own_key.public_key());
    let (commit, records) = {
        let (staged, did) = (staged.clone(), did_typed.clone());
        tokio::task::spawn_blocking(move || verify(&staged, &did, &keys)).await.map_err(internal)??
    };

    // The imported state, signed by this server's key for this account.
    let _guard = ctx.writers.exclusive(did).await;
    let current = super::root(&ctx.db, did).await.map_err(internal)?;
    let floor = match &current {
        Some(root) if root.rev.as_str() > commit.rev.as_str() => root.rev.parse().ok(),
        _ => Some(commit.rev.clone()),
    };
    let signed = UnsignedCommit::new(did_typed, commit.data, next_rev(floor.as_ref())).sign(&own_key);
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
    let rev = signed.rev.as_str().to_owned();
    let replacement = Replacement { did: did.to_owned(), rev, root: commit.data, data, staged };
    match &ctx.sqlite_writer {
        Some(writer) => {
            // On the writer's own connection: other accounts' commits queue behind the import
            // instead of waiting for SQLite's write lock, which a large import holds for longer
            // than they would wait.
            let event = sequencer::sync_event(did, &signed).await.map_err(internal)?;
            writer
                .transaction(move |txn| replacement.store_sqlite(txn, event))
                .await
                .map_err(StoreFailure::into_xrpc)?;
            writer.synced().await;
        }
        None => replacement.store_pooled(ctx, &signed).await?,
    }
    ctx.firehose.poke();
    Ok(records)
}

/// What replaces the account's repository: the verified tree under `root`, read from `staged`,
/// and the commit signed for it here.
struct Replacement {
    did: String,
    rev: String,
    root: Cid,
    data: CommitData,
    staged: Arc<StagedCar>,
}

/// Why an import's transaction on SQLite's writer was rolled back.
#[derive(Debug, thiserror::Error)]
enum StoreFailure {
    #[error("the account may not import: {0:?}")]
    Refused(crate::account::status::Refusal),
    #[error(transparent)]
    Invalid(CarError),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreFailure {
    fn into_xrpc(self) -> XrpcError {
        match self {
            StoreFailure::Refused(refused) => refused.into(),
            StoreFailure::Invalid(e) => XrpcError::invalid_request(format!("Repository does not verify: {e}")),
            StoreFailure::Sqlite(e) => internal(e),
        }
    }
}

impl Replacement {
    /// The replacement as one transaction on SQLite's writer connection, appending `event` (the
    /// `#sync`) when the account is active; the event's number, or 0.
    fn store_sqlite(
        self,
        txn: &rusqlite::Transaction<'_>,
        event: sequencer::NewEvent,
    ) -> Result<((), i64), StoreFailure> {
        use rusqlite::OptionalExtension;
        let status = txn
            .query_row(
                "SELECT takedown_ref IS NOT NULL, deactivated_at IS NOT NULL FROM actor WHERE did = ?1 AND deleted_at IS NULL",
                [self.did.as_str()],
                |row| Ok(crate::account::status_of(row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Err(refused) = crate::account::status::writable(status, true) {
            return Err(StoreFailure::Refused(refused));
        }
        // A transaction this large would otherwise grow the connection's page cache past its
        // usual size; a small one spills to the log sooner. Restored afterwards.
        let cache: i64 = txn.query_row("PRAGMA cache_size", [], |row| row.get(0))?;
        txn.pragma_update(None, "cache_size", IMPORT_CACHE_KIB)?;
        let replaced = self.replace(txn, event, status);
        txn.pragma_update(None, "cache_size", cache)?;
        replaced
    }

    fn replace(
        self,
        txn: &rusqlite::Transaction<'_>,
        event: sequencer::NewEvent,
        status: Option<AccountStatus>,
    ) -> Result<((), i64), StoreFailure> {
        use rusqlite::params;
        let did = self.did.as_str();
        for table in ["repo_block", "record", "record_blob"] {
            txn.execute(&format!("DELETE FROM {table} WHERE did = ?1"), [did])?;
        }
        let mut block = txn.prepare_cached(
            "INSERT INTO repo_block (did, cid, rev, size, content) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?;
        let mut record = txn.prepare_cached(
            "INSERT INTO record (uri, cid, did, collection, rkey, rev, indexed_at, takedown_ref) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
        )?;
        let mut reference = txn.prepare_cached(
            "INSERT INTO record_blob (blob_cid, record_uri, did) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        let now = crate::account::now();
        // The database's own error, kept aside while the walk reports only that it stopped.
        let mut failed = None;
        let walked = walk_tree(
            self.root,
            |cid| self.staged.get(cid),
            |visit| {
                let stored = match visit {
                    Visit::Node { cid, bytes } => block
                        .execute(params![did, cid.to_string(), self.rev, bytes.len() as i64, bytes.as_ref()])
                        .map(|_| ()),
                    Visit::Record { key, cid, bytes } => {
                        let blobs = record_blobs(key, bytes)?;
                        let uri = format!("at://{did}/{}/{}", key.collection(), key.rkey());
                        let cid = cid.to_string();
                        block
                            .execute(params![did, cid, self.rev, bytes.len() as i64, bytes.as_ref()])
                            .and_then(|_| {
                                record.execute(params![uri, cid, did, key.collection(), key.rkey(), self.rev, now])
                            })
                            .and_then(|_| {
                                blobs.iter().try_for_each(|blob| reference.execute(params![blob, uri, did]).map(|_| ()))
                            })
                    }
                };
                stored.map_err(|e| {
                    failed = Some(e);
                    CarError::Io(std::io::Error::other("the database refused a row"))
                })
            },
        );
        if let Some(e) = failed {
            return Err(e.into());
        }
        walked.map_err(StoreFailure::Invalid)?;
        for (cid, bytes) in &self.data.new_blocks {
            block.execute(params![did, cid.to_string(), self.rev, bytes.len() as i64, bytes.as_ref()])?;
        }
        txn.execute(
            "INSERT INTO repo_root (did, cid, rev, indexed_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (did) DO UPDATE SET cid = excluded.cid, rev = excluded.rev, indexed_at = excluded.indexed_at",
            params![did, self.data.cid.to_string(), self.rev, aurora_atproto::syntax::Datetime::now().as_str()],
        )?;
        let seq = match status {
            Some(AccountStatus::Active) => sequencer::append_all_sqlite(txn, vec![event])?,
            _ => 0,
        };
        Ok(((), seq))
    }

    /// The replacement as one transaction through the connection pool (PostgreSQL), the tree
    /// handed over in chunks.
    async fn store_pooled(self, ctx: &AppContext, signed: &Commit) -> Result<(), XrpcError> {
        let did = self.did.as_str();
        let txn = ctx.db.begin().await.map_err(internal)?;
        repo_block::Entity::delete_many().filter(repo_block::Column::Did.eq(did)).exec(&txn).await.map_err(internal)?;
        record::Entity::delete_many().filter(record::Column::Did.eq(did)).exec(&txn).await.map_err(internal)?;
        record_blob::Entity::delete_many()
            .filter(record_blob::Column::Did.eq(did))
            .exec(&txn)
            .await
            .map_err(internal)?;
        store_tree(&txn, did, &self.rev, self.staged, self.root).await?;
        super::persist_commit(&txn, did, &self.data).await.map_err(internal)?;
        let status =
            crate::account::find(&txn, crate::account::Lookup::Did(did)).await.map_err(internal)?.map(|a| a.status());
        if let Err(refused) = crate::account::status::writable(status, true) {
            // Dropping the transaction rolls the import back.
            return Err(refused.into());
        }
        if status == Some(AccountStatus::Active) {
            sequencer::sync(&txn, did, signed).await.map_err(internal)?;
        }
        txn.commit().await.map_err(internal)
    }
}

/// Checks the staged repository: the commit is for `did` and signed by one of `keys`, the tree
/// is complete and well-formed, and every record is valid data. The commit, and how many
/// records there are.
fn verify(staged: &StagedCar, did: &Did, keys: &[PublicKey]) -> Result<(Commit, usize), XrpcError> {
    let invalid = |e: CarError| XrpcError::invalid_request(format!("Repository does not verify: {e}"));
    let root = staged.root();
    let bytes = staged.get(&root).map_err(invalid)?.ok_or(CarError::RootBlockMissing(root)).map_err(invalid)?;
    let commit = Commit::from_bytes(&bytes).map_err(|e| invalid(e.into()))?;
    commit.check_did(did).map_err(|e| invalid(e.into()))?;
    let mut refusal = None;
    if !keys.iter().any(|key| commit.verify(key).map_err(|e| refusal = Some(e)).is_ok()) {
        return Err(
            refusal.map_or_else(|| XrpcError::invalid_request("Repository does not verify"), |e| invalid(e.into()))
        );
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
fn record_blobs(key: &MstKey, bytes: &[u8]) -> Result<BTreeSet<String>, CarError> {
    let value = aurora_atproto::data::from_dag_cbor(bytes)
        .and_then(|ipld| aurora_atproto::data::ipld_to_json(&ipld))
        .map_err(|e| CarError::Malformed(format!("record {key} is not valid data: {e}")))?;
    Ok(refs::find(&value).into_iter().map(|r| r.cid.to_string()).collect())
}

/// What the store pass hands the transaction.
enum Item {
    Block(Cid, Bytes),
    Record { key: MstKey, cid: Cid, blobs: BTreeSet<String> },
}

/// Stores the verified tree under `root` — its nodes, its records and their index and blob
/// references — walking it once more on a blocking thread that hands the transaction a chunk at
/// a time.
async fn store_tree(
    txn: &DatabaseTransaction,
    did: &str,
    rev: &str,
    staged: Arc<StagedCar>,
    root: Cid,
) -> Result<(), XrpcError> {
    let (chunks, mut incoming) = mpsc::channel::<Result<Vec<Item>, CarError>>(2);
    let walker = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        let walked = walk_tree(
            root,
            |cid| staged.get(cid),
            |visit| {
                match visit {
                    Visit::Node { cid, bytes: block } => {
                        bytes += block.len();
                        chunk.push(Item::Block(*cid, block.clone()));
                    }
                    Visit::Record { key, cid, bytes: block } => {
                        bytes += block.len();
                        let blobs = record_blobs(key, block)?;
                        chunk.push(Item::Block(*cid, block.clone()));
                        chunk.push(Item::Record { key: key.clone(), cid: *cid, blobs });
                    }
                }
                if chunk.len() >= CHUNK_ITEMS || bytes >= CHUNK_BYTES {
                    bytes = 0;
                    chunks
                        .blocking_send(Ok(std::mem::take(&mut chunk)))
                        .map_err(|_| CarError::Io(std::io::Error::other("the import was abandoned")))?;
                }
                Ok(())
            },
        );
        let last = walked.map(|()| chunk);
        let _ = chunks.blocking_send(last);
    });
    let now = crate::account::now();
    while let Some(chunk) = incoming.recv().await {
        let chunk = chunk.map_err(|e| XrpcError::invalid_request(format!("Repository does not verify: {e}")))?;
        store_chunk(txn, did, rev, &now, chunk).await.map_err(internal)?;
    }
    walker.await.map_err(internal)
}

async fn store_chunk(
    txn: &DatabaseTransaction,
    did: &str,
    rev: &str,
    now: &str,
    chunk: Vec<Item>,
) -> Result<(), sea_orm::DbErr> {
    let blocks = chunk.iter().filter_map(|item| match item {
        Item::Block(cid, bytes) => Some((cid, bytes, rev)),
        Item::Record { .. } => None,
    });
    super::insert_blocks(txn, did, blocks).await?;
    let mut rows = Vec::new();
    let mut references = Vec::new();
    for item in chunk {
        let Item::Record { key, cid, blobs } = item else { continue };
        let uri = format!("at://{did}/{}/{}", key.collection(), key.rkey());
        references.extend(blobs.into_iter().map(|blob| record_blob::ActiveModel {
            blob_cid: Set(blob),
            record_uri: Set(uri.clone()),
            did: Set(did.to_owned()),
        }));
        rows.push(record::ActiveModel {
            uri: Set(uri),
            cid: Set(cid.to_string()),
            did: Set(did.to_owned()),
            collection: Set(key.collection().to_owned()),
            rkey: Set(key.rkey().to_owned()),
            rev: Set(rev.to_owned()),
            indexed_at: Set(now.to_owned()),
            takedown_ref: Set(None),
        });
    }
    // Few enough parameters per statement for either database.
    for part in rows.chunks(100) {
        record::Entity::insert_many(part.to_vec()).exec_without_returning(txn).await?;
    }
    for part in references.chunks(100) {
        record_blob::Entity::insert_many(part.to_vec())
            .on_conflict(
                OnConflict::columns([record_blob::Column::BlobCid, record_blob::Column::RecordUri])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
