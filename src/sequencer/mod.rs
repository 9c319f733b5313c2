//! The event log behind the firehose. Every change to a repository or account appends an
//! event in the same transaction as the change itself, so the log never disagrees with the
//! data. Events are stored as their DAG-CBOR body; the sequence number is the row's key.

use std::collections::BTreeMap;

use cid::Cid;
use sea_orm::{ConnectionTrait, DbErr, Set};

use aurora_atproto::commit::Commit;
use aurora_atproto::data::{self, Ipld};
use aurora_atproto::mst::RecordOp;
use aurora_atproto::repo::CommitData;
use aurora_atproto::syntax::Datetime;

use crate::db::entities::repo_seq;

/// An account's hosting status, as `#account` events and `getRepoStatus` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Deactivated,
    Takendown,
    Suspended,
    Deleted,
}

impl AccountStatus {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            AccountStatus::Active => None,
            AccountStatus::Deactivated => Some("deactivated"),
            AccountStatus::Takendown => Some("takendown"),
            AccountStatus::Suspended => Some("suspended"),
            AccountStatus::Deleted => Some("deleted"),
        }
    }
}

fn s(text: &str) -> Ipld {
    Ipld::String(text.to_owned())
}

fn event(fields: Vec<(&str, Ipld)>) -> Result<Vec<u8>, DbErr> {
    let map: BTreeMap<String, Ipld> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    data::to_dag_cbor(&Ipld::Map(map)).map_err(|e| DbErr::Custom(format!("cannot encode event: {e}")))
}

/// The next sequence number on PostgreSQL, taken so that numbers are handed out in commit
/// order and a rolled-back transaction leaves no gap (a sequence would give neither): a
/// transaction-scoped advisory lock makes sequencing transactions take turns from
/// here until they commit (the tailer reads the log in number order, and must never find a
/// lower number committed after a higher one).
async fn next_seq<C: ConnectionTrait>(conn: &C) -> Result<i64, DbErr> {
    use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QuerySelect, Statement};
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute(Statement::from_string(DbBackend::Postgres, format!("SELECT pg_advisory_xact_lock({SEQ_LOCK})")))
            .await?;
    }
    let max: Option<Option<i64>> = repo_seq::Entity::find()
        .select_only()
        .column_as(repo_seq::Column::Seq.max(), "max")
        .into_tuple()
        .one(conn)
        .await?;
    Ok(max.flatten().unwrap_or(0) + 1)
}

/// The advisory lock key that serialises sequencing on PostgreSQL ("aurseq" in ASCII).
const SEQ_LOCK: i64 = 0x6175_7273_6571;

async fn append<C: ConnectionTrait>(conn: &C, did: &str, kind: &str, body: Vec<u8>, time: &str) -> Result<i64, DbErr> {
    append_all(conn, vec![NewEvent { did: did.to_owned(), kind: kind.to_owned(), body, time: time.to_owned() }]).await
}

/// An event encoded ahead of its transaction.
pub struct NewEvent {
    did: String,
    kind: String,
    body: Vec<u8>,
    time: String,
}

/// Appends `events` in order with consecutive numbers; the first number. SQLite numbers the
/// rows itself: it has one writer at a time, so AUTOINCREMENT hands numbers out in commit
/// order and never reuses one, and no separate read of the highest number is needed.
pub async fn append_all<C: ConnectionTrait>(conn: &C, events: Vec<NewEvent>) -> Result<i64, DbErr> {
    use sea_orm::{ActiveValue::NotSet, DbBackend, EntityTrait};
    let assigned = conn.get_database_backend() == DbBackend::Sqlite;
    let first = if assigned { None } else { Some(next_seq(conn).await?) };
    let count = events.len() as i64;
    let mut rows = Vec::with_capacity(events.len());
    for (offset, event) in (0..).zip(events) {
        rows.push(repo_seq::ActiveModel {
            seq: first.map_or(NotSet, |first| Set(first + offset)),
            did: Set(event.did),
            event_type: Set(event.kind),
            event: Set(event.body),
            invalidated: Set(false),
            sequenced_at: Set(event.time),
        });
    }
    let mut last = 0;
    // Few enough parameters per statement for either database, even for large batches.
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(100).collect();
        if assigned {
            last = repo_seq::Entity::insert_many(chunk).exec(conn).await?.last_insert_id;
        } else {
            repo_seq::Entity::insert_many(chunk).exec_without_returning(conn).await?;
        }
    }
    Ok(first.unwrap_or(last - count + 1))
}

/// [`append_all`] inside a transaction of SQLite's writer connection (`AUTOINCREMENT` numbers
/// the rows, in commit order); the last number.
pub(crate) fn append_all_sqlite(txn: &rusqlite::Transaction<'_>, events: Vec<NewEvent>) -> rusqlite::Result<i64> {
    let mut insert = txn.prepare_cached(
        "INSERT INTO repo_seq (did, event_type, event, invalidated, sequenced_at) VALUES (?1, ?2, ?3, FALSE, ?4)",
    )?;
    for event in events {
        insert.execute(rusqlite::params![event.did, event.kind, event.body, event.time])?;
    }
    Ok(txn.last_insert_rowid())
}

/// `#identity`: the account's handle or DID document may have changed.
pub async fn identity<C: ConnectionTrait>(conn: &C, did: &str, handle: Option<&str>) -> Result<i64, DbErr> {
    let time = Datetime::now();
    let mut fields = vec![("did", s(did)), ("time", s(time.as_str()))];
    if let Some(handle) = handle {
        fields.push(("handle", s(handle)));
    }
    append(conn, did, "identity", event(fields)?, time.as_str()).await
}

/// `#account`: the account's hosting status changed.
pub async fn account<C: ConnectionTrait>(conn: &C, did: &str, status: AccountStatus) -> Result<i64, DbErr> {
    let time = Datetime::now();
    let mut fields =
        vec![("did", s(did)), ("time", s(time.as_str())), ("active", Ipld::Bool(status == AccountStatus::Active))];
    if let Some(status) = status.as_str() {
        fields.push(("status", s(status)));
    }
    append(conn, did, "account", event(fields)?, time.as_str()).await
}

/// The sync spec's hard limit on a `#commit` event's `blocks`.
pub const MAX_COMMIT_BLOCKS_BYTES: usize = 2_000_000;
/// The sync spec's limit on a `#commit` event's operations.
pub const MAX_COMMIT_OPS: usize = 200;

/// `#commit`: a new commit, with its operations and the blocks a consumer needs to verify it;
/// a commit over the spec's size limits is sequenced as `#sync` instead.
pub async fn commit<C: ConnectionTrait>(conn: &C, did: &str, commit: &CommitData) -> Result<i64, DbErr> {
    append_all(conn, vec![commit_event(did, commit).await?]).await
}

/// The event [`commit`] appends, built without the database.
pub async fn commit_event(did: &str, commit: &CommitData) -> Result<NewEvent, DbErr> {
    let time = Datetime::now();
    let blocks = commit.firehose_car().await.map_err(|e| DbErr::Custom(format!("cannot build event CAR: {e}")))?;
    if blocks.len() > MAX_COMMIT_BLOCKS_BYTES || commit.ops.len() > MAX_COMMIT_OPS {
        // Too big for one frame under the sync spec's limits (`tooBig` is deprecated): announce
        // the new commit as a sync point instead, and consumers fetch the repository.
        return sync_event(did, &commit.commit).await;
    }
    let ops: Vec<Ipld> = commit.ops.iter().map(op).collect();
    let mut fields = vec![
        ("repo", s(did)),
        ("commit", Ipld::Link(commit.cid)),
        ("rev", s(commit.commit.rev.as_str())),
        ("since", commit.since.as_ref().map_or(Ipld::Null, |t| s(t.as_str()))),
        ("blocks", Ipld::Bytes(blocks)),
        ("ops", Ipld::List(ops)),
        ("blobs", Ipld::List(Vec::new())),
        ("rebase", Ipld::Bool(false)),
        ("tooBig", Ipld::Bool(false)),
        ("time", s(time.as_str())),
    ];
    if let Some(prev) = commit.prev_data {
        fields.push(("prevData", Ipld::Link(prev)));
    }
    Ok(NewEvent { did: did.to_owned(), kind: "commit".into(), body: event(fields)?, time: time.as_str().to_owned() })
}

fn op(op: &RecordOp) -> Ipld {
    let (action, key, cid, prev): (&str, _, Option<Cid>, Option<Cid>) = match op {
        RecordOp::Create { key, cid } => ("create", key, Some(*cid), None),
        RecordOp::Update { key, cid, prev } => ("update", key, Some(*cid), Some(*prev)),
        RecordOp::Delete { key, prev } => ("delete", key, None, Some(*prev)),
    };
    let mut map = BTreeMap::from([
        ("action".to_owned(), s(action)),
        ("path".to_owned(), s(key.as_ref())),
        ("cid".to_owned(), cid.map_or(Ipld::Null, Ipld::Link)),
    ]);
    if let Some(prev) = prev {
        map.insert("prev".to_owned(), Ipld::Link(prev));
    }
    Ipld::Map(map)
}

/// `#sync`: the repository's current commit, for consumers to (re)synchronise from.
pub async fn sync<C: ConnectionTrait>(conn: &C, did: &str, commit: &Commit) -> Result<i64, DbErr> {
    append_all(conn, vec![sync_event(did, commit).await?]).await
}

/// The `#sync` event for `commit`, encoded ahead of its transaction.
pub(crate) async fn sync_event(did: &str, commit: &Commit) -> Result<NewEvent, DbErr> {
    let time = Datetime::now();
    let (cid, bytes) = commit.to_block();
    let blocks = aurora_atproto::car::car_bytes(cid, [(cid, bytes)])
        .await
        .map_err(|e| DbErr::Custom(format!("cannot build event CAR: {e}")))?;
    let fields = vec![
        ("did", s(did)),
        ("rev", s(commit.rev.as_str())),
        ("blocks", Ipld::Bytes(blocks)),
        ("time", s(time.as_str())),
    ];
    Ok(NewEvent { did: did.to_owned(), kind: "sync".into(), body: event(fields)?, time: time.as_str().to_owned() })
}

/// Deletes events sequenced more than `max_age_ms` ago (PDS_REPO_BACKFILL_LIMIT_MS): consumers
/// with older cursors are told their cursor is outdated and resume from the oldest kept.
pub async fn trim<C: ConnectionTrait>(conn: &C, max_age_ms: u64) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let now_micros = Datetime::now().unix_micros();
    let cutoff = Datetime::from_unix_micros(now_micros.saturating_sub((max_age_ms as i64).saturating_mul(1000)));
    // The newest event always stays: the next sequence number follows it.
    let Some(newest) = repo_seq::Entity::find().order_by_desc(repo_seq::Column::Seq).one(conn).await? else {
        return Ok(0);
    };
    let result = repo_seq::Entity::delete_many()
        .filter(repo_seq::Column::SequencedAt.lt(cutoff.as_str()))
        .filter(repo_seq::Column::Seq.lt(newest.seq))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
