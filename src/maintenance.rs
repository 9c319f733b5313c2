//! Periodic upkeep: purging deleted accounts, lifting suspensions that ran out, removing
//! uploads nobody claimed, sweeping caches and trimming old firehose events. Each job's last
//! run is remembered for the operators' overview.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::context::AppContext;

/// The most DID documents kept cached.
pub const MAX_CACHED_DID_DOCS: u64 = 50_000;

/// Sweeps the DID document cache and expired signing-key reservations; how many rows went.
pub async fn sweep_caches(ctx: &AppContext) -> Result<u64, sea_orm::DbErr> {
    let documents = ctx.resolver.sweep_cache(MAX_CACHED_DID_DOCS).await?;
    let reservations = crate::keys::sweep_reservations(&ctx.db).await?;
    Ok(documents + reservations)
}

/// Removes sessions and mailed codes that can no longer be used: password sessions past their
/// expiry and codes older than their lifetime. (An OAuth session's expiry is its current access
/// token's, so the session stays: its refresh token may still renew it.) How many rows went.
pub async fn sweep_expired(ctx: &AppContext) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    use crate::db::entities::{email_token, refresh_token};
    let now = crate::account::now();
    let sessions = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lte(now.as_str()))
        .exec(&ctx.db)
        .await?;
    let spent = crate::account::iso_after_secs(-crate::account::email_token::LIFETIME_SECS);
    let codes =
        email_token::Entity::delete_many().filter(email_token::Column::RequestedAt.lte(spent)).exec(&ctx.db).await?;
    Ok(sessions.rows_affected + codes.rows_affected)
}

/// How a job last went.
#[derive(Clone, Debug)]
pub struct LastRun {
    /// When it finished (RFC 3339).
    pub at: String,
    /// What it did, or why it failed.
    pub outcome: Result<String, String>,
}

/// Each job's last run, by name.
pub struct Jobs {
    runs: Mutex<BTreeMap<&'static str, LastRun>>,
    started: std::time::Instant,
    last_tick: Mutex<Option<std::time::Instant>>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs { runs: Mutex::default(), started: std::time::Instant::now(), last_tick: Mutex::default() }
    }
}

/// How long the minute's jobs may go without a round before readiness fails.
const STALLED_AFTER: Duration = Duration::from_secs(5 * 60);

impl Jobs {
    /// Notes that a round of jobs finished.
    pub fn tick(&self) {
        *self.last_tick.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }

    /// Why the jobs look stuck, if they do: no round finished for five minutes (counted from
    /// start-up until the first one).
    pub fn stalled(&self) -> Option<String> {
        let last = *self.last_tick.lock().unwrap_or_else(|p| p.into_inner());
        let since = last.unwrap_or(self.started).elapsed();
        (since > STALLED_AFTER).then(|| format!("no round of background jobs finished for {} s", since.as_secs()))
    }

    pub fn record(&self, job: &'static str, outcome: Result<String, String>) {
        if let Err(error) = &outcome {
            tracing::warn!(job, error = %error, "background job failed");
        }
        let run = LastRun { at: crate::account::now(), outcome };
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).insert(job, run);
    }

    pub fn last_runs(&self) -> Vec<(&'static str, LastRun)> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

/// Runs one job, timing it and recording how it went (in the overview and the metrics).
async fn run<E: std::fmt::Display>(
    ctx: &AppContext,
    job: &'static str,
    what: &str,
    work: impl std::future::Future<Output = Result<u64, E>>,
) {
    let started = std::time::Instant::now();
    let outcome = work.await.map(|n| format!("{n} {what}")).map_err(|e| e.to_string());
    ctx.metrics.job(job, outcome.is_ok(), started.elapsed());
    ctx.jobs.record(job, outcome);
}

/// Runs the jobs for as long as the server does: every minute the urgent ones, every quarter
/// hour the rest.
pub fn spawn(ctx: Arc<AppContext>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        for minute in 0u64.. {
            every.tick().await;
            let purge = async { crate::account::deletion::purge_due(&ctx).await.map(|n| n as u64) };
            run(&ctx, "purge deleted accounts", "purged", purge).await;
            let lift = async { crate::admin::takedown::lift_expired(&ctx).await.map(|n| n as u64) };
            run(&ctx, "lift expired suspensions", "lifted", lift).await;
            if minute % 15 == 0 {
                let collect = async { crate::blobs::collect_garbage(&ctx).await.map(|n| n as u64) };
                run(&ctx, "remove unclaimed uploads", "removed", collect).await;
                run(&ctx, "sweep caches", "removed", sweep_caches(&ctx)).await;
                run(&ctx, "sweep expired sessions and codes", "removed", sweep_expired(&ctx)).await;
                // The firehose keeps PDS_REPO_BACKFILL_LIMIT_MS of history.
                let trim = crate::sequencer::trim(&ctx.db, ctx.config.repo_backfill_limit_ms);
                run(&ctx, "trim firehose events", "trimmed", trim).await;
            }
            ctx.jobs.tick();
        }
    });
}
