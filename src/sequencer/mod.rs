//! The event log behind the firehose. Every change to a repository or account appends an
//! event in the same transaction as the change itself, so the log never disagrees with the
//! data. Events are stored as their DAG-CBOR body; the sequence number is the row's key.

use std::sync::LazyLock;

use cid::Cid;
use sea_orm::sea_query::{
    Alias, ArrayType, CommonTableExpression, Expr, Func, OnConflict, Query, SimpleExpr, Value, WithClause,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Set};
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

/// The `WITH` queries that append `events` on PostgreSQL, numbered on from the log's head,
/// and the expressions that finish them in the statement's main query: the first number, and
/// the other replicas' `NOTIFY` (sent at commit). With `condition`, nothing is appended
/// unless it holds (a commit's events, appended only if its root moved).
///
/// The head is a row of its own (`repo_seq_head`), moved by the same statement: its row lock,
/// held until commit, makes sequencing take turns, so numbers are handed out in commit order
/// and a rolled-back transaction leaves no gap (a sequence would give neither): the tailer
/// reads the log in number order, and must never find a lower number committed after a
/// higher one. `ON CONFLICT DO UPDATE` reads the newest head once the lock is held, whatever
/// the statement's snapshot; the log's own highest number covers rows copied in around it
/// (`migrate-db`) and a head not yet written. The events go as one array per column, so the
/// statement's text is the same for any number of them (prepared once per connection).
pub(crate) fn postgres_append(
    events: Vec<NewEvent>,
    condition: Option<SimpleExpr>,
) -> (Vec<CommonTableExpression>, [(SimpleExpr, &'static str); 2]) {
    let array = |kind, values: Vec<Value>| Value::Array(kind, Some(Box::new(values)));
    let count = events.len() as i64;
    let (mut dids, mut kinds, mut bodies, mut times) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for event in events {
        dids.push(Value::from(event.did.as_str().to_owned()));
        kinds.push(Value::from(event.kind));
        bodies.push(Value::from(event.body));
        times.push(Value::from(event.time));
    }
    let (head_table, id, seq) = (Alias::new("repo_seq_head"), Alias::new("id"), Alias::new("seq"));
    let mut next = Query::select();
    next.expr(Expr::val(1))
        .expr(Expr::cust_with_values("(SELECT COALESCE(MAX(\"seq\"), 0) FROM \"repo_seq\") + $1", [count]));
    next.and_where_option(condition);
    let mut head = Query::insert();
    head.into_table(head_table)
        .columns([id.clone(), seq.clone()])
        .select_from(next)
        .expect("two values for two columns")
        .on_conflict(
            OnConflict::column(id)
                .value(
                    seq.clone(),
                    Expr::cust_with_values("GREATEST(\"repo_seq_head\".\"seq\" + $1, EXCLUDED.\"seq\")", [count]),
                )
                .to_owned(),
        )
        .returning_col(seq);

    let mut rows = Query::select();
    rows.expr(Expr::cust_with_values("(SELECT \"seq\" FROM \"head\") - $1 + generate_series(1, $1)", [count]))
        .expr(Func::cust(Alias::new("UNNEST")).arg(array(ArrayType::String, dids)))
        .expr(Func::cust(Alias::new("UNNEST")).arg(array(ArrayType::String, kinds)))
        .expr(Func::cust(Alias::new("UNNEST")).arg(array(ArrayType::Bytes, bodies)))
        .expr(Expr::val(false))
        .expr(Func::cust(Alias::new("UNNEST")).arg(array(ArrayType::String, times)))
        .and_where(Expr::cust("EXISTS (SELECT 1 FROM \"head\")"));
    let mut added = Query::insert();
    added
        .into_table(repo_seq::Entity)
        .columns([
            repo_seq::Column::Seq,
            repo_seq::Column::Did,
            repo_seq::Column::EventType,
            repo_seq::Column::Event,
            repo_seq::Column::Invalidated,
            repo_seq::Column::SequencedAt,
        ])
        .select_from(rows)
        .expect("six values for six columns")
        .returning_col(repo_seq::Column::Seq);

    let tables = vec![
        CommonTableExpression::new().query(head).table_name(Alias::new("head")).to_owned(),
        CommonTableExpression::new().query(added).table_name(Alias::new("added")).to_owned(),
    ];
    let first = Expr::cust("(SELECT MIN(\"seq\") FROM \"added\")");
    // No notice when nothing was appended; `IS NULL` gives the void function's call a value.
    let notified = Expr::cust_with_values(
        "(SELECT pg_notify($1, MAX(\"seq\")::text) FROM \"added\" HAVING COUNT(*) > 0) IS NULL",
        [crate::db::notices::FIREHOSE],
    );
    (tables, [(first, "first"), (notified, "notified")])
}

/// Appends `events` on PostgreSQL in one statement (see [`postgres_append`]); the first number.
async fn append_numbered<C: ConnectionTrait>(conn: &C, events: Vec<NewEvent>) -> Result<i64, DbErr> {
    if events.is_empty() {
        return Err(DbErr::Custom("no events to append".into()));
    }
    let (tables, finish) = postgres_append(events, None);
    let mut main = Query::select();
    for (expr, name) in finish {
        main.expr_as(expr, Alias::new(name));
    }
    let mut with = WithClause::new();
    for table in tables {
        with.cte(table);
    }
    let statement = DbBackend::Postgres.build(&with.query(main));
    let row =
        conn.query_one(statement).await?.ok_or_else(|| DbErr::Custom("appending events returned no row".into()))?;
    row.try_get::<Option<i64>>("", "first")?.ok_or_else(|| DbErr::Custom("no events were appended".into()))
}

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
    use sea_orm::{ActiveValue::NotSet, EntityTrait};
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
