//! Wake-ups between replicas on PostgreSQL. Whichever replica sequences events also sends
//! `NOTIFY` with the last number in the same transaction, so the notice goes out exactly when
//! (and only if) the events commit, in commit order. Every replica listens, and wakes its tailer
//! as it would after a commit of its own: the database stays the source of truth, the notice
//! only says when to read it. Should the listening connection drop, notices sent meanwhile are
//! lost, so after reconnecting the tailer is told to read the log's head; the tailer's idle
//! poll covers the moments in between.

use std::sync::Weak;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use super::Shared;

/// The channel the sequencer notifies on.
pub const CHANNEL: &str = "aurora_firehose";

/// Tells listening replicas that events up to `last` commit with the current transaction.
pub async fn notify<C: ConnectionTrait>(conn: &C, last: i64) -> Result<(), DbErr> {
    conn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), last.to_string().into()],
    ))
    .await
    .map(drop)
}

/// Listens for other replicas' commits until the firehose is dropped.
pub(super) async fn listen(shared: Weak<Shared>, pool: PgPool) {
    let mut failures = 0u32;
    loop {
        if shared.strong_count() == 0 {
            return;
        }
        match listen_once(&shared, &pool).await {
            Ok(()) => return,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %e, "firehose: lost the PostgreSQL listener; reconnecting");
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25)))).await;
            }
        }
    }
}

/// One listening connection (re-established by the listener itself when it drops): returns
/// when the firehose or the pool is gone, fails when reconnecting does.
async fn listen_once(shared: &Weak<Shared>, pool: &PgPool) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // Right after (re)connecting, whatever committed while nobody listened is found by
        // reading the head.
        match shared.upgrade() {
            Some(firehose) => firehose.poke(),
            None => return Ok(()),
        }
        loop {
            let notice = match listener.try_recv().await {
                Ok(Some(notice)) => notice,
                // The connection dropped and was made again: notices in between are lost.
                Ok(None) => break,
                Err(sea_orm::sqlx::Error::PoolClosed) => return Ok(()),
                Err(e) => return Err(e),
            };
            let Some(firehose) = shared.upgrade() else { return Ok(()) };
            match notice.payload().parse::<i64>() {
                Ok(seq) => firehose.poke_at(seq),
                Err(_) => firehose.poke(),
            }
        }
    }
}
