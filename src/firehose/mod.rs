//! `com.atproto.sync.subscribeRepos`: the event log as a websocket stream of DAG-CBOR frames.
//!
//! Each subscriber reads the persisted log itself, in sequence order: first from its cursor
//! (backfill), then, woken after every commit, whatever is new. Because the log is the only
//! source, a consumer sees every sequence number once and in order, and switching from
//! backfill to live has no seam. Writers only send a wake-up, so no consumer can slow them.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::broadcast;

use aurora_atproto::data::{self, Ipld};

use crate::db::entities::repo_seq;

/// Events read from the log per query.
const PAGE: u64 = 500;

/// Wakes subscribers when new events are committed.
pub struct Firehose {
    wake: broadcast::Sender<()>,
}

impl Default for Firehose {
    fn default() -> Self {
        Self { wake: broadcast::channel(16).0 }
    }
}

impl Firehose {
    /// Call after committing a transaction that sequenced events.
    pub fn poke(&self) {
        let _ = self.wake.send(());
    }
}

fn frame(header: Vec<(&str, Ipld)>, body: Ipld) -> Option<Vec<u8>> {
    let header: BTreeMap<String, Ipld> = header.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let mut out = data::to_dag_cbor(&Ipld::Map(header)).ok()?;
    out.extend(data::to_dag_cbor(&body).ok()?);
    Some(out)
}

/// An error frame (`op: -1`); the stream ends after it.
pub fn error_frame(error: &str, message: &str) -> Vec<u8> {
    let body = Ipld::Map(BTreeMap::from([
        ("error".to_owned(), Ipld::String(error.to_owned())),
        ("message".to_owned(), Ipld::String(message.to_owned())),
    ]));
    frame(vec![("op", Ipld::Integer(-1))], body).unwrap_or_default()
}

fn info_frame(name: &str, message: &str) -> Vec<u8> {
    let body = Ipld::Map(BTreeMap::from([
        ("name".to_owned(), Ipld::String(name.to_owned())),
        ("message".to_owned(), Ipld::String(message.to_owned())),
    ]));
    frame(vec![("op", Ipld::Integer(1)), ("t", Ipld::String("#info".to_owned()))], body).unwrap_or_default()
}

/// The frame of one stored event: its body with `seq` added, under a `#<type>` header.
fn event_frame(row: &repo_seq::Model) -> Option<Vec<u8>> {
    let Ipld::Map(mut body) = data::from_dag_cbor(&row.event).ok()? else { return None };
    body.insert("seq".to_owned(), Ipld::Integer(i128::from(row.seq)));
    frame(vec![("op", Ipld::Integer(1)), ("t", Ipld::String(format!("#{}", row.event_type)))], Ipld::Map(body))
}

async fn head(db: &DatabaseConnection) -> Result<i64, sea_orm::DbErr> {
    Ok(repo_seq::Entity::find().order_by_desc(repo_seq::Column::Seq).one(db).await?.map_or(0, |r| r.seq))
}

async fn oldest(db: &DatabaseConnection) -> Result<Option<i64>, sea_orm::DbErr> {
    Ok(repo_seq::Entity::find().order_by_asc(repo_seq::Column::Seq).one(db).await?.map(|r| r.seq))
}

struct Cursor {
    db: DatabaseConnection,
    last: i64,
    wake: broadcast::Receiver<()>,
    pending: VecDeque<Vec<u8>>,
    finished: bool,
}

/// The frames for a subscriber starting after `cursor` (or at the head, live only).
pub async fn subscribe(
    firehose: &Firehose,
    db: DatabaseConnection,
    cursor: Option<i64>,
) -> Result<BoxStream<'static, Vec<u8>>, sea_orm::DbErr> {
    let wake = firehose.wake.subscribe();
    let head = head(&db).await?;
    let mut pending = VecDeque::new();
    let last = match cursor {
        None => head,
        Some(cursor) if cursor > head => {
            let frame = error_frame("FutureCursor", "Cursor in the future.");
            return Ok(stream::iter([frame]).boxed());
        }
        Some(cursor) => match oldest(&db).await? {
            // Older events were trimmed: say so, then start from the oldest kept.
            Some(oldest) if cursor < oldest - 1 => {
                pending.push_back(info_frame(
                    "OutdatedCursor",
                    "Requested cursor exceeded limit. Possibly missing events",
                ));
                oldest - 1
            }
            _ => cursor,
        },
    };
    let state = Cursor { db, last, wake, pending, finished: false };
    Ok(stream::unfold(state, |mut state| async move {
        loop {
            if let Some(frame) = state.pending.pop_front() {
                return Some((frame, state));
            }
            if state.finished {
                return None;
            }
            let rows = repo_seq::Entity::find()
                .filter(repo_seq::Column::Seq.gt(state.last))
                .filter(repo_seq::Column::Invalidated.eq(false))
                .order_by_asc(repo_seq::Column::Seq)
                .limit(PAGE)
                .all(&state.db)
                .await;
            match rows {
                Ok(rows) if !rows.is_empty() => {
                    for row in &rows {
                        state.last = row.seq;
                        if let Some(frame) = event_frame(row) {
                            state.pending.push_back(frame);
                        }
                    }
                }
                Ok(_) => {
                    // Nothing new: wait for a commit, or look again shortly in case a wake-up
                    // was missed.
                    let _ = tokio::time::timeout(Duration::from_secs(1), state.wake.recv()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "firehose read failed");
                    state.pending.push_back(error_frame("InternalError", "the event log could not be read"));
                    state.finished = true;
                }
            }
        }
    })
    .boxed())
}
