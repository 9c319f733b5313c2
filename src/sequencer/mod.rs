//! The event log behind the firehose. Every change to a repository or account appends an
//! event in the same transaction as the change itself, so the log never disagrees with the
//! data. Events are stored as their DAG-CBOR body; the sequence number is the row's key.

use std::sync::LazyLock;

use cid::Cid;
use sea_orm::sea_query::{Query, Value};
use sea_orm::{ConnectionTrait, DbErr, Set};
use serde::Serialize;

use crate::repo::store::Insert;

use aurora_atproto::commit::Commit;
use aurora_atproto::data;
use aurora_atproto::mst::RecordOp;
use aurora_atproto::repo::CommitData;
use aurora_atproto::syntax::{Datetime, Did, Handle};
use aurora_generated::com::atproto::sync::subscribe_repos as lex;
use aurora_xrpc::codegen::{Bytes, CidLink};

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
    /// Taken down for good or for a while: neither signs in, writes nor is served.
    pub fn is_taken_down(self) -> bool {
        matches!(self, AccountStatus::Takendown | AccountStatus::Suspended)
    }

    /// The lexicon's name for a status other than active.
    pub fn as_str(self) -> Option<&'static str> {
        self.lexicon().map(|status| match status {
            lex::AccountStatus::Deactivated => "deactivated",
            lex::AccountStatus::Takendown => "takendown",
            lex::AccountStatus::Suspended => "suspended",
            _ => "deleted",
        })
    }

    /// The `#account` event's status; `None` while active.
    pub fn lexicon(self) -> Option<lex::AccountStatus> {
        match self {
            AccountStatus::Active => None,
            AccountStatus::Deactivated => Some(lex::AccountStatus::Deactivated),
            AccountStatus::Takendown => Some(lex::AccountStatus::Takendown),
            AccountStatus::Suspended => Some(lex::AccountStatus::Suspended),
            AccountStatus::Deleted => Some(lex::AccountStatus::Deleted),
        }
    }
}

/// Encodes an event body, one of the lexicon's `subscribeRepos` messages. Its `seq` is
/// written as 0: the number is the row's, set when the event is framed for a consumer.
fn encode(body: &impl Serialize) -> Result<Vec<u8>, DbErr> {
    data::encode(body).map_err(|e| DbErr::Custom(format!("cannot encode event: {e}")))
}

/// Sequencing on PostgreSQL takes turns from here until commit, so that numbers are handed
/// out in commit order and a rolled-back transaction leaves no gap (a sequence would give
/// neither): the tailer reads the log in number order, and must never find a lower number
/// committed after a higher one. The lock is its own statement: the statement after it reads
/// the log's head with a snapshot taken once the lock is held.
async fn lock_sequencer<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    use sea_orm::{DbBackend, Statement};
    conn.execute(Statement::from_string(DbBackend::Postgres, format!("SELECT pg_advisory_xact_lock({SEQ_LOCK})")))
        .await
        .map(drop)
}

/// Appends `events` on PostgreSQL, numbered on from the log's head, and notifies the other
/// replicas, in one statement; the first number. The events go as one array per column, so
/// the statement's text is the same for any number of them (prepared once per connection).
async fn append_numbered<C: ConnectionTrait>(conn: &C, events: Vec<NewEvent>) -> Result<i64, DbErr> {
    use sea_orm::sea_query::ArrayType;
    use sea_orm::{DbBackend, Statement};
    if events.is_empty() {
        return Err(DbErr::Custom("no events to append".into()));
    }
    lock_sequencer(conn).await?;
    let array = |kind, values: Vec<Value>| Value::Array(kind, Some(Box::new(values)));
    let (mut dids, mut kinds, mut bodies, mut times) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for event in events {
        dids.push(Value::from(event.did.as_str().to_owned()));
        kinds.push(Value::from(event.kind));
        bodies.push(Value::from(event.body));
        times.push(Value::from(event.time));
    }
    let sql = format!(
        "WITH head AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM repo_seq), \
         added AS (INSERT INTO repo_seq (seq, did, event_type, event, invalidated, sequenced_at) \
           SELECT head.seq + new.n, new.did, new.kind, new.body, FALSE, new.at \
           FROM head, UNNEST($1, $2, $3, $4) WITH ORDINALITY AS new (did, kind, body, at, n) RETURNING seq) \
         SELECT MIN(seq) AS first, pg_notify('{}', MAX(seq)::text) IS NULL AS notified FROM added",
        crate::db::notices::FIREHOSE,
    );
    let values = [
        array(ArrayType::String, dids),
        array(ArrayType::String, kinds),
        array(ArrayType::Bytes, bodies),
        array(ArrayType::String, times),
    ];
    let row = conn
        .query_one(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .await?
        .ok_or_else(|| DbErr::Custom("appending events returned no row".into()))?;
    row.try_get("", "first")
}

/// The advisory lock key that serialises sequencing on PostgreSQL ("aurseq" in ASCII).
const SEQ_LOCK: i64 = 0x6175_7273_6571;

async fn append<C: ConnectionTrait>(conn: &C, did: &Did, kind: &str, body: Vec<u8>, time: &str) -> Result<i64, DbErr> {
    append_all(conn, vec![NewEvent { did: did.clone(), kind: kind.to_owned(), body, time: time.to_owned() }]).await
}

/// An event encoded ahead of its transaction.
pub struct NewEvent {
    did: Did,
    kind: String,
    body: Vec<u8>,
    time: String,
}

/// Appends `events` in order with consecutive numbers; the first number. SQLite numbers the
/// rows itself: it has one writer at a time, so AUTOINCREMENT hands numbers out in commit
/// order and never reuses one, and no separate read of the highest number is needed.
pub async fn append_all<C: ConnectionTrait>(conn: &C, events: Vec<NewEvent>) -> Result<i64, DbErr> {
    use sea_orm::{ActiveValue::NotSet, DbBackend, EntityTrait};
    if conn.get_database_backend() == DbBackend::Postgres {
        return append_numbered(conn, events).await;
    }
    let count = events.len() as i64;
    let mut last = 0;
    let mut rows = events.into_iter().peekable();
    // Few enough parameters per statement, even for large batches.
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(100).map(|event| repo_seq::ActiveModel {
            seq: NotSet,
            did: Set(event.did),
            event_type: Set(event.kind),
            event: Set(event.body),
            invalidated: Set(false),
            sequenced_at: Set(event.time),
        });
        last = repo_seq::Entity::insert_many(chunk).exec(conn).await?.last_insert_id;
    }
    Ok(last - count + 1)
}

/// The statement that appends events without numbering them (SQLite's `AUTOINCREMENT` numbers
/// them); [`NewEvent::into_row`] gives each event's values, in its column order.
pub(crate) fn insert_statement() -> &'static Insert {
    static INSERT: LazyLock<Insert> = LazyLock::new(|| {
        Insert::new(
            Query::insert()
                .into_table(repo_seq::Entity)
                .columns([
                    repo_seq::Column::Did,
                    repo_seq::Column::EventType,
                    repo_seq::Column::Event,
                    repo_seq::Column::Invalidated,
                    repo_seq::Column::SequencedAt,
                ])
                .to_owned(),
        )
    });
    &INSERT
}

impl NewEvent {
    /// The event's values for [`insert_statement`].
    pub(crate) fn into_row(self) -> Vec<Value> {
        vec![self.did.into(), self.kind.into(), self.body.into(), false.into(), self.time.into()]
    }
}

/// `#identity`: the account's handle or DID document may have changed.
pub async fn identity<C: ConnectionTrait>(conn: &C, did: &Did, handle: Option<&Handle>) -> Result<i64, DbErr> {
    let time = Datetime::now();
    let event = lex::Identity {
        did: did.clone(),
        handle: handle.cloned(),
        seq: 0,
        time: time.clone(),
        extra: Default::default(),
    };
    append(conn, did, "identity", encode(&event)?, time.as_str()).await
}

/// `#account`: the account's hosting status changed.
pub async fn account<C: ConnectionTrait>(conn: &C, did: &Did, status: AccountStatus) -> Result<i64, DbErr> {
    let time = Datetime::now();
    let event = lex::Account {
        active: status == AccountStatus::Active,
        did: did.clone(),
        seq: 0,
        status: status.lexicon(),
        time: time.clone(),
        extra: Default::default(),
    };
    append(conn, did, "account", encode(&event)?, time.as_str()).await
}

/// The sync spec's hard limit on a `#commit` event's `blocks`.
pub const MAX_COMMIT_BLOCKS_BYTES: usize = 2_000_000;
/// The sync spec's limit on a `#commit` event's operations.
pub const MAX_COMMIT_OPS: usize = 200;

/// `#commit`: a new commit, with its operations and the blocks a consumer needs to verify it;
/// a commit over the spec's size limits is sequenced as `#sync` instead.
pub async fn commit<C: ConnectionTrait>(conn: &C, did: &Did, commit: &CommitData) -> Result<i64, DbErr> {
    append_all(conn, vec![commit_event(did, commit).await?]).await
}

/// The event [`commit`] appends, built without the database.
pub async fn commit_event(did: &Did, commit: &CommitData) -> Result<NewEvent, DbErr> {
    let time = Datetime::now();
    let blocks = commit.firehose_car().await.map_err(|e| DbErr::Custom(format!("cannot build event CAR: {e}")))?;
    if blocks.len() > MAX_COMMIT_BLOCKS_BYTES || commit.ops.len() > MAX_COMMIT_OPS {
        // Too big for one frame under the sync spec's limits (`tooBig` is deprecated): announce
        // the new commit as a sync point instead, and consumers fetch the repository.
        return sync_event(did, &commit.commit).await;
    }
    let event = lex::Commit {
        blobs: Vec::new(),
        blocks: Bytes(blocks),
        commit: CidLink(commit.cid),
        ops: commit.ops.iter().map(op).collect(),
        prev_data: commit.prev_data.map(CidLink),
        rebase: false,
        repo: did.clone(),
        rev: commit.commit.rev.clone(),
        seq: 0,
        since: commit.since.clone(),
        time: time.clone(),
        too_big: false,
        extra: Default::default(),
    };
    Ok(NewEvent { did: did.clone(), kind: "commit".into(), body: encode(&event)?, time: time.as_str().to_owned() })
}

fn op(op: &RecordOp) -> lex::RepoOp {
    let (action, key, cid, prev): (_, _, Option<Cid>, Option<Cid>) = match op {
        RecordOp::Create { key, cid } => (lex::RepoOpAction::Create, key, Some(*cid), None),
        RecordOp::Update { key, cid, prev } => (lex::RepoOpAction::Update, key, Some(*cid), Some(*prev)),
        RecordOp::Delete { key, prev } => (lex::RepoOpAction::Delete, key, None, Some(*prev)),
    };
    lex::RepoOp {
        action,
        cid: cid.map(CidLink),
        path: key.as_ref().to_owned(),
        prev: prev.map(CidLink),
        extra: Default::default(),
    }
}

/// `#sync`: the repository's current commit, for consumers to (re)synchronise from.
pub async fn sync<C: ConnectionTrait>(conn: &C, did: &Did, commit: &Commit) -> Result<i64, DbErr> {
    append_all(conn, vec![sync_event(did, commit).await?]).await
}

/// The `#sync` event for `commit`, encoded ahead of its transaction.
pub(crate) async fn sync_event(did: &Did, commit: &Commit) -> Result<NewEvent, DbErr> {
    let time = Datetime::now();
    let (cid, bytes) = commit.to_block();
    let blocks = aurora_atproto::car::car_bytes(cid, [(cid, bytes)])
        .await
        .map_err(|e| DbErr::Custom(format!("cannot build event CAR: {e}")))?;
    let event = lex::Sync {
        blocks: Bytes(blocks),
        did: did.clone(),
        rev: commit.rev.to_string(),
        seq: 0,
        time: time.clone(),
        extra: Default::default(),
    };
    Ok(NewEvent { did: did.clone(), kind: "sync".into(), body: encode(&event)?, time: time.as_str().to_owned() })
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

#[cfg(test)]
mod tests {
    use aurora_atproto::blockstore::MemoryBlockStore;
    use aurora_atproto::crypto::{KeyType, Keypair};
    use aurora_atproto::repo::{RecordWrite, Repo};

    use super::*;

    fn field<'a>(body: &'a data::Ipld, name: &str) -> &'a data::Ipld {
        match body {
            data::Ipld::Map(map) => map.get(name).unwrap_or_else(|| panic!("no {name} in {body:?}")),
            other => panic!("not a map: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_commit_event_is_the_lexicons_message_in_canonical_dag_cbor() {
        let key = Keypair::generate(KeyType::K256);
        let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().expect("did");
        let record = data::to_dag_cbor(
            &data::json_to_ipld(&serde_json::json!({ "$type": "com.example.x", "n": 1 })).expect("ipld"),
        )
        .expect("cbor");
        let write = RecordWrite::Create {
            collection: "com.example.x".parse().expect("nsid"),
            rkey: "3kaaaaaaaaaa2".parse().expect("rkey"),
            record: record.into(),
        };
        let (_, commit) = Repo::create(MemoryBlockStore::new(), did.clone(), &key, vec![write]).await.expect("repo");
        let event = commit_event(&did, &commit).await.expect("event");
        // `from_dag_cbor` refuses anything but the canonical encoding, key order included.
        let body = data::from_dag_cbor(&event.body).expect("canonical DAG-CBOR");
        assert_eq!(field(&body, "repo"), &data::Ipld::String(did.to_string()));
        assert_eq!(field(&body, "commit"), &data::Ipld::Link(commit.cid));
        assert_eq!(field(&body, "rev"), &data::Ipld::String(commit.commit.rev.to_string()));
        assert_eq!(field(&body, "since"), &data::Ipld::Null, "a first commit follows nothing");
        assert!(matches!(field(&body, "blocks"), data::Ipld::Bytes(b) if !b.is_empty()));
        let data::Ipld::List(ops) = field(&body, "ops") else { panic!("ops") };
        assert_eq!(field(&ops[0], "action"), &data::Ipld::String("create".into()));
        assert_eq!(field(&ops[0], "path"), &data::Ipld::String("com.example.x/3kaaaaaaaaaa2".into()));
        assert!(matches!(field(&ops[0], "cid"), data::Ipld::Link(_)));
        // Typed again, it is the generated message.
        let typed: lex::Commit = data::decode(&event.body).expect("typed");
        assert_eq!((typed.repo, typed.rebase, typed.too_big), (did, false, false));
    }

    #[tokio::test]
    async fn account_and_identity_events_name_their_status_and_handle() {
        let account = lex::Account {
            active: false,
            did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().expect("did"),
            seq: 0,
            status: AccountStatus::Takendown.lexicon(),
            time: Datetime::now(),
            extra: Default::default(),
        };
        let body = data::from_dag_cbor(&encode(&account).expect("encode")).expect("canonical");
        assert_eq!(field(&body, "status"), &data::Ipld::String("takendown".into()));
        assert_eq!(field(&body, "active"), &data::Ipld::Bool(false));
        assert_eq!(AccountStatus::Active.lexicon(), None);
    }
}
