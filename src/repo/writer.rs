//! Writing records: prepare each write (validate, encode, choose a key) without touching the
//! database, then, holding the repository's write lock, build the next signed commit and store
//! the blocks, the record index, the new root and the `#commit` event in one transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cid::Cid;
use poem::http::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::Value;

use aurora_atproto::data;
use aurora_atproto::lexicon::Def;
use aurora_atproto::repo::{RecordWrite, Repo, RepoError};
use aurora_atproto::syntax::{Nsid, RecordKey, Tid, TidClock};
use aurora_xrpc::XrpcError;

use super::SqlBlockStore;
use crate::api::internal;
use crate::blobs::refs::{self, BlobReference};
use crate::blobs::BlobStore;
use crate::context::AppContext;
use crate::db::entities::{blob, record, record_blob};
use crate::sequencer;

/// One lock per repository: writes to one repository are serialised, so two never build on
/// the same commit; writes to different repositories proceed in parallel.
#[derive(Default)]
pub struct WriteLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl WriteLocks {
    pub(crate) fn lock_for(&self, did: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(did.to_owned()).or_default().clone()
    }
}

/// A requested change to one record.
pub enum Write {
    Create {
        collection: Nsid,
        rkey: Option<RecordKey>,
        record: Value,
    },
    /// Creates or replaces (`putRecord`).
    Put {
        collection: Nsid,
        rkey: RecordKey,
        record: Value,
        swap_record: Option<Option<Cid>>,
    },
    /// Replaces an existing record (`applyWrites#update`).
    Update {
        collection: Nsid,
        rkey: RecordKey,
        record: Value,
    },
    /// `must_exist`: whether deleting an absent record is an error (in a batch) or nothing to
    /// do (`deleteRecord`).
    Delete {
        collection: Nsid,
        rkey: RecordKey,
        swap_record: Option<Cid>,
        must_exist: bool,
    },
}

/// What happened to one write.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    pub uri: String,
    pub cid: Option<Cid>,
    /// `valid` or `unknown`; `None` for deletions and unvalidated writes.
    pub validation_status: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct Committed {
    pub cid: Cid,
    pub rev: String,
    pub outcomes: Vec<WriteOutcome>,
}

fn invalid_record(message: impl Into<String>) -> XrpcError {
    XrpcError::new(StatusCode::BAD_REQUEST, "InvalidRecord", Some(message.into()))
}

fn invalid_swap(message: impl Into<String>) -> XrpcError {
    XrpcError::declared("InvalidSwap", Some(message.into()))
}

struct Prepared {
    /// Blobs the record references.
    blobs: Vec<BlobReference>,
    collection: Nsid,
    rkey: RecordKey,
    /// The encoded record, for creates and puts.
    block: Option<(Cid, Bytes)>,
    validation_status: Option<&'static str>,
    swap: Option<Option<Cid>>,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Put,
    Update,
    Delete { must_exist: bool },
}

/// Validates a record per the `validate` flag and encodes it: `Some(true)` requires a known,
/// valid lexicon; `None` validates when the lexicon is known; `Some(false)` skips lexicon
/// validation. The data model's own rules (no floats, well-formed `$bytes`, `$link`, blobs)
/// always apply.
fn encode_record(
    collection: &Nsid,
    value: &Value,
    validate: Option<bool>,
) -> Result<((Cid, Bytes), Option<&'static str>), XrpcError> {
    let Value::Object(map) = value else {
        return Err(invalid_record("Record must be an object"));
    };
    match map.get("$type") {
        Some(Value::String(t)) if t == collection.as_str() => {}
        Some(Value::String(t)) => return Err(invalid_record(format!("Invalid $type: expected {collection}, got {t}"))),
        _ => return Err(invalid_record("Record/$type must be a string")),
    }
    let status = match (validate, aurora_generated::catalog::validate_record(collection.as_str(), value)) {
        (Some(false), _) => None,
        (_, Some(Ok(()))) => Some("valid"),
        (_, Some(Err(e))) => return Err(invalid_record(format!("Invalid {collection} record: {e}"))),
        (Some(true), None) => {
            return Err(invalid_record(format!("Lexicon not found: {collection} (validation was required)")))
        }
        (None, None) => Some("unknown"),
    };
    let ipld = data::json_to_ipld(value).map_err(|e| invalid_record(format!("Invalid record data: {e}")))?;
    let bytes = data::to_dag_cbor(&ipld).map_err(|e| invalid_record(format!("Invalid record data: {e}")))?;
    let cid = aurora_atproto::cids::for_dag_cbor(&bytes);
    Ok(((cid, Bytes::from(bytes)), status))
}

/// Checks a record key against the key type the collection's lexicon declares.
fn check_rkey(collection: &Nsid, rkey: &RecordKey) -> Result<(), XrpcError> {
    let Some(Def::Record(def)) = aurora_generated::catalog::catalog().main(collection.as_str()) else {
        return Ok(());
    };
    let ok = match def.key.as_deref() {
        Some("tid") => rkey.as_str().parse::<Tid>().is_ok(),
        Some("nsid") => rkey.as_str().parse::<Nsid>().is_ok(),
        Some(literal) if literal.starts_with("literal:") => literal["literal:".len()..] == *rkey.as_str(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid_record(format!(
            "Invalid record key {rkey} for {collection}: the lexicon requires {}",
            def.key.as_deref().unwrap_or("any")
        )))
    }
}

/// The key a new record gets when the client names none: `self` for literal:self records,
/// otherwise a fresh TID.
fn default_rkey(collection: &Nsid) -> RecordKey {
    if let Some(Def::Record(def)) = aurora_generated::catalog::catalog().main(collection.as_str()) {
        if let Some(literal) = def.key.as_deref().and_then(|k| k.strip_prefix("literal:")) {
            if let Ok(rkey) = literal.parse() {
                return rkey;
            }
        }
    }
    TidClock::global().next().as_str().parse().unwrap_or_else(|_| unreachable!("a TID is a valid record key"))
}

/// A create, put or update: key checked, record validated and encoded, blobs found.
fn prepare_record(
    collection: Nsid,
    rkey: RecordKey,
    record: &Value,
    validate: Option<bool>,
    swap: Option<Option<Cid>>,
    kind: Kind,
) -> Result<Prepared, XrpcError> {
    check_rkey(&collection, &rkey)?;
    let (block, validation_status) = encode_record(&collection, record, validate)?;
    Ok(Prepared { blobs: refs::find(record), collection, rkey, block: Some(block), validation_status, swap, kind })
}

fn prepare(write: Write, validate: Option<bool>) -> Result<Prepared, XrpcError> {
    match write {
        Write::Create { collection, rkey, record } => {
            let rkey = rkey.unwrap_or_else(|| default_rkey(&collection));
            prepare_record(collection, rkey, &record, validate, None, Kind::Create)
        }
        Write::Put { collection, rkey, record, swap_record } => {
            prepare_record(collection, rkey, &record, validate, swap_record, Kind::Put)
        }
        Write::Update { collection, rkey, record } => {
            prepare_record(collection, rkey, &record, validate, None, Kind::Update)
        }
        Write::Delete { collection, rkey, swap_record, must_exist } => Ok(Prepared {
            blobs: Vec::new(),
            collection,
            rkey,
            block: None,
            validation_status: None,
            swap: swap_record.map(Some),
            kind: Kind::Delete { must_exist },
        }),
    }
}

/// Applies `writes` to `did`'s repository as one commit. `swap_commit` makes the commit
/// conditional on the repository's current commit. Deletes of absent records are dropped; a
/// batch left with nothing to do makes no commit and returns `None`.
pub async fn apply(
    ctx: &AppContext,
    did: &str,
    writes: Vec<Write>,
    validate: Option<bool>,
    swap_commit: Option<Cid>,
) -> Result<Option<Committed>, XrpcError> {
    let prepared = writes.into_iter().map(|w| prepare(w, validate)).collect::<Result<Vec<_>, _>>()?;
    let key = crate::keys::signing_key(ctx, did).await?;

    let lock = ctx.write_locks.lock_for(did);
    let _guard = lock.lock().await;
    let (root, _) = super::current_commit(&ctx.db, did)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::internal(format!("{did} has no repository")))?;
    let root_cid: Cid = root.cid.parse().map_err(internal)?;
    if let Some(expected) = swap_commit {
        if expected != root_cid {
            return Err(invalid_swap(format!("Commit was at {root_cid}")));
        }
    }
    let mut repo = Repo::load(SqlBlockStore::new(&ctx.db, did), root_cid).await.map_err(internal)?;

    let mut record_writes = Vec::new();
    let mut outcomes = Vec::new();
    // (collection, rkey) of each outcome, for the record index, and the blobs it references.
    let mut paths = Vec::new();
    let mut outcome_blobs: Vec<&[BlobReference]> = Vec::new();
    for p in &prepared {
        let uri = format!("at://{did}/{}/{}", p.collection, p.rkey);
        let current = repo.record_cid(&p.collection, &p.rkey).await.map_err(internal)?;
        if let Some(expected) = p.swap {
            if current != expected {
                return Err(invalid_swap(format!(
                    "Record was at {}",
                    current.map_or("nothing".into(), |c| c.to_string())
                )));
            }
        }
        match (p.kind, current, &p.block) {
            (Kind::Create, Some(_), _) => {
                return Err(XrpcError::invalid_request(format!("Record already exists at {uri}")));
            }
            (Kind::Create, None, Some((cid, bytes))) | (Kind::Put, None, Some((cid, bytes))) => {
                record_writes.push(RecordWrite::Create {
                    collection: p.collection.clone(),
                    rkey: p.rkey.clone(),
                    record: bytes.clone(),
                });
                outcomes.push(WriteOutcome { uri, cid: Some(*cid), validation_status: p.validation_status });
                paths.push((p.collection.as_str(), p.rkey.as_str()));
                outcome_blobs.push(&p.blobs);
            }
            (Kind::Update, None, _) => {
                return Err(XrpcError::invalid_request(format!("Record not found: {uri}")));
            }
            (Kind::Put | Kind::Update, Some(existing), Some((cid, bytes))) => {
                if existing != *cid {
                    record_writes.push(RecordWrite::Update {
                        collection: p.collection.clone(),
                        rkey: p.rkey.clone(),
                        record: bytes.clone(),
                    });
                }
                outcomes.push(WriteOutcome { uri, cid: Some(*cid), validation_status: p.validation_status });
                paths.push((p.collection.as_str(), p.rkey.as_str()));
                outcome_blobs.push(&p.blobs);
            }
            (Kind::Delete { .. }, Some(_), _) => {
                record_writes.push(RecordWrite::Delete { collection: p.collection.clone(), rkey: p.rkey.clone() });
                outcomes.push(WriteOutcome { uri, cid: None, validation_status: None });
                paths.push((p.collection.as_str(), p.rkey.as_str()));
                outcome_blobs.push(&p.blobs);
            }
            (Kind::Delete { must_exist: true }, None, _) => {
                return Err(XrpcError::invalid_request(format!("Record not found: {uri}")));
            }
            (Kind::Delete { must_exist: false }, None, _) => {}
            (_, _, None) => return Err(XrpcError::internal("a create or put without a record")),
        }
    }
    if record_writes.is_empty() {
        return Ok(None);
    }
    claim_blobs(ctx, did, outcome_blobs.iter().flat_map(|b| b.iter())).await?;
    let commit = repo.apply_writes(record_writes, &key).await.map_err(|e| match e {
        RepoError::DuplicateWrite(key) => XrpcError::invalid_request(format!("More than one write to {key}")),
        RepoError::RecordExists(key) => XrpcError::invalid_request(format!("Record already exists at {key}")),
        RepoError::RecordNotFound(key) => XrpcError::invalid_request(format!("Record not found: {key}")),
        other => internal(other),
    })?;

    let rev = commit.commit.rev.as_str().to_owned();
    let now = crate::account::now();
    let txn = ctx.db.begin().await.map_err(internal)?;
    super::persist_commit(&txn, did, &commit).await.map_err(internal)?;
    // Blob references: a changed or deleted record drops its old ones, a written record adds
    // its new ones, and every referenced blob stops being temporary.
    let mut maybe_released = Vec::new();
    for (outcome, blobs) in outcomes.iter().zip(&outcome_blobs) {
        let old = record_blob::Entity::find()
            .filter(record_blob::Column::RecordUri.eq(outcome.uri.as_str()))
            .all(&txn)
            .await
            .map_err(internal)?;
        maybe_released.extend(old.into_iter().map(|r| r.blob_cid));
        record_blob::Entity::delete_many()
            .filter(record_blob::Column::RecordUri.eq(outcome.uri.as_str()))
            .exec(&txn)
            .await
            .map_err(internal)?;
        for reference in blobs.iter() {
            let cid = reference.cid.to_string();
            super::add_blob_reference(&txn, did, &outcome.uri, &cid).await.map_err(internal)?;
            blob::Entity::update_many()
                .col_expr(blob::Column::TempKey, Expr::value(Option::<String>::None))
                .filter(blob::Column::Did.eq(did))
                .filter(blob::Column::Cid.eq(cid))
                .exec(&txn)
                .await
                .map_err(internal)?;
        }
    }
    for ((collection, rkey), outcome) in paths.iter().zip(&outcomes) {
        match outcome.cid {
            Some(cid) => {
                let entry = super::IndexedRecord {
                    did,
                    uri: &outcome.uri,
                    collection,
                    rkey,
                    cid: &cid,
                    rev: &rev,
                    indexed_at: &now,
                };
                super::index_record(&txn, entry).await.map_err(internal)?;
            }
            None => {
                record::Entity::delete_many()
                    .filter(record::Column::Uri.eq(outcome.uri.as_str()))
                    .exec(&txn)
                    .await
                    .map_err(internal)?;
            }
        }
    }
    sequencer::commit(&txn, did, &commit).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    crate::crawl::notify(ctx);
    if !maybe_released.is_empty() {
        maybe_released.sort();
        maybe_released.dedup();
        crate::blobs::release_unreferenced(ctx, did, &maybe_released).await.map_err(internal)?;
    }
    Ok(Some(Committed { cid: commit.cid, rev, outcomes }))
}

/// Every referenced blob must have been uploaded by this account with the type the record
/// claims; temporary ones move to permanent storage now (before the commit, so a failed commit
/// leaves at worst an unreferenced permanent blob for the collector).
async fn claim_blobs<'a>(
    ctx: &AppContext,
    did: &str,
    references: impl Iterator<Item = &'a BlobReference>,
) -> Result<(), XrpcError> {
    for reference in references {
        let row = blob::Entity::find()
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::Cid.eq(reference.cid.to_string()))
            .one(&ctx.db)
            .await
            .map_err(internal)?
            .ok_or_else(|| XrpcError::invalid_request(format!("Could not find blob: {}", reference.cid)))?;
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
            ctx.blobs.make_permanent(key, did, &reference.cid).await.map_err(internal)?;
        }
    }
    Ok(())
}
