//! Notices between replicas on PostgreSQL (`LISTEN`/`NOTIFY`). A notice only says when to look:
//! the database stays the source of truth. Each replica keeps one listening connection for
//! all channels; should it drop, notices sent meanwhile are lost, so after reconnecting every
//! listener is told it may have missed some.
//!
//! Channels: the firehose's (the sequencer notifies, in the transaction that appends events,
//! with the last number: see [`crate::sequencer`]) and the session gate's (a change to an
//! account's sign-in state, with its DID: see [`crate::auth::gate`]).

use std::sync::Weak;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool};

/// The channel of new firehose events; the payload is the last event's number.
pub const FIREHOSE: &str = "aurora_firehose";
/// The channel of changed accounts; the payload is the account's DID.
pub const ACCOUNT: &str = "aurora_account";

/// What a replica does on a notice.
pub trait Listener: Send + Sync {
    /// The channel it listens on.
    fn channel(&self) -> &'static str;
    /// A notice arrived, with its payload.
    fn heard(&self, payload: &str);
    /// The listening connection was (re)made: notices may have been missed.
    fn missed(&self);
}

/// Listens for the listeners' channels until every listener is dropped.
pub async fn listen(listeners: Vec<Weak<dyn Listener>>, pool: PgPool) {
    let mut failures = 0u32;
    loop {
        if listeners.iter().all(|l| l.strong_count() == 0) {
            return;
        }
        match listen_once(&listeners, &pool).await {
            Ok(()) => return,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %e, "lost the PostgreSQL listener; reconnecting");
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25)))).await;
            }
        }
    }
}

/// One listening connection (re-established by the listener itself when it drops): returns
/// when the listeners or the pool are gone, fails when reconnecting does.
async fn listen_once(listeners: &[Weak<dyn Listener>], pool: &PgPool) -> Result<(), sea_orm::sqlx::Error> {
    let mut connection = PgListener::connect_with(pool).await?;
    let channels: Vec<&str> = listeners.iter().filter_map(Weak::upgrade).map(|l| l.channel()).collect();
    connection.listen_all(channels).await?;
    loop {
        // Right after (re)connecting, whatever was sent while nobody listened is looked up.
        let mut alive = false;
        for listener in listeners.iter().filter_map(Weak::upgrade) {
            listener.missed();
            alive = true;
        }
        if !alive {
            return Ok(());
        }
        loop {
            let notice = match connection.try_recv().await {
                Ok(Some(notice)) => notice,
                // The connection dropped and was made again: notices in between are lost.
                Ok(None) => break,
                Err(sea_orm::sqlx::Error::PoolClosed) => return Ok(()),
                Err(e) => return Err(e),
            };
            let mut alive = false;
            for listener in listeners.iter().filter_map(Weak::upgrade) {
                alive = true;
                if listener.channel() == notice.channel() {
                    listener.heard(notice.payload());
                }
            }
            if !alive {
                return Ok(());
            }
        }
    }
}
