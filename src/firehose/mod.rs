//! `com.atproto.sync.subscribeRepos`: the event log as a websocket stream of DAG-CBOR frames.
//!
//! One tailer task per server reads each newly committed event from the log once, encodes its
//! frame once, and broadcasts it to every live consumer through a shared ring of the last
//! `AURORA_FIREHOSE_BUFFER` frames. A consumer that falls further behind than the ring holds is
//! cut off with `ConsumerTooSlow`; writers never wait for consumers, and consumers never wait
//! for each other.
//!
//! A consumer with a cursor first reads the log itself (backfill), then joins the broadcast:
//! it subscribes, reads the log once more to cover what was committed meanwhile, and from then
//! on takes frames from the ring, skipping any it already sent. Because every broadcast frame
//! was read from the log after its transaction committed, and sequence numbers are assigned in
//! commit order, a consumer sees every sequence number once and in order.
//!
//! While nobody listens live, the tailer reads nothing: it only moves its position to the
//! newest event it knows was committed. It learns that number before it checks for listeners,
//! and a listener joins the broadcast before it reads the head of the log, so whatever a new
//! listener needs lies after the tailer's position.
//!
//! On SQLite, commits are readable a moment before they are synced to disk; the log is read
//! no further than the last synced event (see [`crate::db::WalSync`]), so no event goes out
//! that a crash could still take back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use aurora_atproto::data::{self, Ipld};
use aurora_generated::com::atproto::sync::subscribe_repos as lex;
use aurora_xrpc::XrpcError;

use crate::db::entities::repo_seq;
use crate::db::WalSync;

mod subscribers;
pub use subscribers::{Limits, Refused};

/// Events the tailer reads from the log per query.
const PAGE: u64 = 500;
/// Events a backfilling consumer reads per query: each consumer holds one page of frames, so
/// a thousand of them hold a thousand pages.
const BACKFILL_PAGE: u64 = 50;

/// How often the tailer looks at the log even without a wake-up, in case one was missed.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// One encoded frame of the log, shared by every consumer it is sent to.
#[derive(Debug)]
struct LiveFrame {
    seq: i64,
    bytes: Vec<u8>,
}

struct Shared {
    db: DatabaseConnection,
    /// On SQLite: how far the log is on disk.
    log: Option<Arc<WalSync>>,
    wake: Notify,
    live: broadcast::Sender<Arc<LiveFrame>>,
    /// The highest sequence number a poke reported committed.
    committed: AtomicI64,
    /// A poke did not say which numbers it committed.
    unreported: AtomicBool,
}

/// Other replicas' commits wake the tailer as this one's do.
impl crate::db::notices::Listener for Shared {
    fn channel(&self) -> &'static str {
        crate::db::notices::FIREHOSE
    }

    fn heard(&self, payload: &str) {
        match payload.parse::<i64>() {
            Ok(seq) => self.poke_at(seq),
            Err(_) => self.poke(),
        }
    }

    fn missed(&self) {
        self.poke();
    }
}

impl Shared {
    fn poke(&self) {
        self.unreported.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn poke_at(&self, seq: i64) {
        self.committed.fetch_max(seq, Ordering::AcqRel);
        self.wake.notify_one();
    }
}

/// The server's firehose: wakes the tailer after commits and hands out consumer streams.
pub struct Firehose {
    shared: Arc<Shared>,
    subscribers: subscribers::Subscribers,
    observed: Observed,
}

/// The metrics consumers report into.
#[derive(Clone)]
struct Observed {
    cut_offs: prometheus::IntCounter,
    lag: prometheus::Histogram,
}

/// Why a subscription was not opened.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl Firehose {
    /// Starts the tailer at the log's current head. `buffer` is how many live frames a
    /// consumer may fall behind by; `log` tells how far the log is on disk, where commits can
    /// be read before they are.
    pub async fn start(
        db: DatabaseConnection,
        buffer: usize,
        log: Option<Arc<WalSync>>,
        limits: Limits,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Firehose, DbErr> {
        let head = head(&db, log.as_deref()).await?;
        let shared = Arc::new(Shared {
            db,
            log,
            wake: Notify::new(),
            live: broadcast::channel(buffer.max(1)).0,
            committed: AtomicI64::new(head),
            unreported: AtomicBool::new(false),
        });
        tokio::spawn(tail(Arc::downgrade(&shared), head));
        let observed = Observed { cut_offs: metrics.firehose_cut_offs.clone(), lag: metrics.firehose_lag.clone() };
        Ok(Firehose { shared, subscribers: subscribers::Subscribers::new(limits), observed })
    }

    /// What wakes the tailer on other replicas' commits, on a database several servers share.
    pub fn listener(&self) -> std::sync::Weak<dyn crate::db::notices::Listener> {
        let shared: Arc<dyn crate::db::notices::Listener> = self.shared.clone();
        Arc::downgrade(&shared)
    }

    /// Call after committing a transaction that sequenced events.
    pub fn poke(&self) {
        self.shared.poke();
    }

    /// Call after committing a transaction whose events end at `seq`.
    pub fn poke_at(&self, seq: i64) {
        self.shared.poke_at(seq);
    }

    /// Subscribers connected now.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.count()
    }

    /// The frames for a subscriber from `ip` starting after `cursor` (or at the head, live
    /// only); refused past the subscriber caps.
    pub async fn subscribe(
        &self,
        cursor: Option<i64>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<BoxStream<'static, Vec<u8>>, SubscribeError> {
        let slot = self.subscribers.admit(ip)?;
        let db = self.shared.db.clone();
        let log = self.shared.log.clone();
        // Joined before the head is read: see the module notes.
        let live = self.shared.live.subscribe();
        let head = head(&db, log.as_deref()).await?;
        let mut pending = VecDeque::new();
        let (last, phase) = match cursor {
            None => (head, Phase::Live(live)),
            Some(cursor) if cursor > head => {
                let frame = error_frame(lex::Error::FutureCursor(Some("Cursor in the future.".into())).into());
                return Ok(stream::iter([frame]).boxed());
            }
            Some(cursor) => match oldest(&db).await? {
                // Older events were trimmed: say so, then start from the oldest kept.
                Some(oldest) if cursor < oldest - 1 => {
                    pending.push_back(info_frame(lex::Info {
                        name: lex::InfoName::OutdatedCursor,
                        message: Some("Requested cursor exceeded limit. Possibly missing events".into()),
                        extra: Default::default(),
                    }));
                    (oldest - 1, Phase::Backfill)
                }
                _ => (cursor, Phase::Backfill),
            },
        };
        let consumer = Consumer {
            shared: Arc::downgrade(&self.shared),
            db,
            log,
            last,
            phase,
            pending,
            finished: false,
            observed: self.observed.clone(),
            _slot: slot,
        };
        Ok(stream::unfold(consumer, |mut consumer| async move {
            let frame = consumer.next().await?;
            Some((frame, consumer))
        })
        .boxed())
    }
}

/// Reads each committed event once and broadcasts its frame; ends when the server's
/// [`Firehose`] is dropped.
async fn tail(shared: Weak<Shared>, mut last: i64) {
    loop {
        let Some(firehose) = shared.upgrade() else { return };
        let _ = tokio::time::timeout(IDLE_POLL, firehose.wake.notified()).await;
        if firehose.live.receiver_count() == 0 {
            // The newest committed number first, then the check for listeners.
            let committed = if firehose.unreported.swap(false, Ordering::AcqRel) {
                match head(&firehose.db, firehose.log.as_deref()).await {
                    Ok(head) => head,
                    Err(e) => {
                        tracing::error!(error = %e, "firehose tailer cannot read the event log");
                        firehose.unreported.store(true, Ordering::Release);
                        continue;
                    }
                }
            } else {
                firehose.committed.load(Ordering::Acquire)
            };
            if firehose.live.receiver_count() == 0 {
                last = last.max(committed);
                continue;
            }
        }
        loop {
            match read_after(&firehose.db, firehose.log.as_deref(), last, PAGE).await {
                Ok(rows) => {
                    let full = rows.len() as u64 == PAGE;
                    for row in rows {
                        last = row.seq;
                        if let Some(bytes) = event_frame(&row) {
                            // No receivers is fine: nobody is listening live.
                            let _ = firehose.live.send(Arc::new(LiveFrame { seq: row.seq, bytes }));
                        }
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "firehose tailer cannot read the event log");
                    break;
                }
            }
        }
    }
}

enum Phase {
    /// Reading the log directly, page by page.
    Backfill,
    /// Caught up with the log: taking frames from the broadcast.
    Live(broadcast::Receiver<Arc<LiveFrame>>),
}

struct Consumer {
    shared: Weak<Shared>,
    db: DatabaseConnection,
    log: Option<Arc<WalSync>>,
    /// The last sequence number queued for this consumer.
    last: i64,
    phase: Phase,
    pending: VecDeque<Vec<u8>>,
    finished: bool,
    observed: Observed,
    /// The consumer's place among the subscribers, given back when its stream is dropped.
    _slot: subscribers::Slot,
}

impl Consumer {
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            match &mut self.phase {
                Phase::Backfill => {
                    let rows = match read_after(&self.db, self.log.as_deref(), self.last, BACKFILL_PAGE).await {
                        Ok(rows) => rows,
                        Err(e) => return Some(self.fail(e)),
                    };
                    if rows.len() as u64 == BACKFILL_PAGE {
                        self.queue(rows);
                        continue;
                    }
                    // Nearly caught up: join the broadcast first, then read whatever was
                    // committed before joining, so nothing falls between the two.
                    let shared = self.shared.upgrade()?;
                    let receiver = shared.live.subscribe();
                    self.queue(rows);
                    match read_after(&self.db, self.log.as_deref(), self.last, BACKFILL_PAGE).await {
                        Ok(rows) => self.queue(rows),
                        Err(e) => return Some(self.fail(e)),
                    }
                    self.phase = Phase::Live(receiver);
                }
                Phase::Live(receiver) => match receiver.recv().await {
                    Ok(frame) if frame.seq <= self.last => {}
                    Ok(frame) if frame.seq == self.last + 1 => {
                        self.last = frame.seq;
                        self.observed.lag.observe(receiver.len() as f64);
                        return Some(frame.bytes.clone());
                    }
                    // Events this consumer has not seen lie between: they are in the log.
                    Ok(_) => self.phase = Phase::Backfill,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.finished = true;
                        self.observed.cut_offs.inc();
                        let too_slow = lex::Error::ConsumerTooSlow(Some("Stream consumer too slow".into()));
                        return Some(error_frame(too_slow.into()));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    fn queue(&mut self, rows: Vec<repo_seq::Model>) {
        for row in rows {
            self.last = row.seq;
            if let Some(frame) = event_frame(&row) {
                self.pending.push_back(frame);
            }
        }
    }

    fn fail(&mut self, error: DbErr) -> Vec<u8> {
        tracing::error!(error = %error, "firehose read failed");
        self.finished = true;
        error_frame(XrpcError::new(
            poem::http::StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            Some("the event log could not be read".into()),
        ))
    }
}

/// The next page of events after `seq`, none of them past what is on disk.
async fn read_after(
    db: &DatabaseConnection,
    log: Option<&WalSync>,
    seq: i64,
    page: u64,
) -> Result<Vec<repo_seq::Model>, DbErr> {
    let mut rows = repo_seq::Entity::find()
        .filter(repo_seq::Column::Seq.gt(seq))
        .filter(repo_seq::Column::Invalidated.eq(false))
        .order_by_asc(repo_seq::Column::Seq)
        .limit(page)
        .all(db)
        .await?;
    // After the read: see `WalSync::limit`.
    if let Some(limit) = log.and_then(WalSync::limit) {
        rows.retain(|row| row.seq <= limit);
    }
    Ok(rows)
}

/// A frame's header: `op` 1 for a message of type `t`, -1 for an error (the event stream spec).
#[derive(Serialize)]
struct Header<'a> {
    op: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<&'a str>,
}

/// An error frame's body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

fn frame(header: &Header<'_>, body: &impl Serialize) -> Option<Vec<u8>> {
    let mut out = data::encode(header).ok()?;
    out.extend(data::encode(body).ok()?);
    Some(out)
}

/// An error frame (`op: -1`) for one of the method's errors; the stream ends after it.
pub fn error_frame(error: XrpcError) -> Vec<u8> {
    let body = ErrorBody { error: &error.error, message: error.message.as_deref() };
    frame(&Header { op: -1, t: None }, &body).unwrap_or_default()
}

fn info_frame(info: lex::Info) -> Vec<u8> {
    frame(&Header { op: 1, t: Some("#info") }, &info).unwrap_or_default()
}

/// The frame of one stored event: the message the sequencer encoded from its lexicon type,
/// with the row's number as its `seq`, under a `#<type>` header.
fn event_frame(row: &repo_seq::Model) -> Option<Vec<u8>> {
    // The sequencer encoded it: no need to check its canonical form again on every send.
    let Ipld::Map(mut body) = data::decode::<Ipld>(&row.event).ok()? else { return None };
    body.insert("seq".to_owned(), Ipld::Integer(i128::from(row.seq)));
    let kind = format!("#{}", row.event_type);
    frame(&Header { op: 1, t: Some(&kind) }, &Ipld::Map(body))
}

/// The newest event that is on disk.
async fn head(db: &DatabaseConnection, log: Option<&WalSync>) -> Result<i64, DbErr> {
    let head = repo_seq::Entity::find().order_by_desc(repo_seq::Column::Seq).one(db).await?.map_or(0, |r| r.seq);
    Ok(log.and_then(WalSync::limit).map_or(head, |limit| head.min(limit)))
}

async fn oldest(db: &DatabaseConnection) -> Result<Option<i64>, DbErr> {
    Ok(repo_seq::Entity::find().order_by_asc(repo_seq::Column::Seq).one(db).await?.map(|r| r.seq))
}
