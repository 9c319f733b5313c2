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

/// How a job last went.
#[derive(Clone, Debug)]
pub struct LastRun {
    /// When it finished (RFC 3339).
    pub at: String,
    /// What it did, or why it failed.
    pub outcome: Result<String, String>,
}

/// Each job's last run, by name.
#[derive(Default)]
pub struct Jobs {
    runs: Mutex<BTreeMap<&'static str, LastRun>>,
}

impl Jobs {
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

fn counted<E: std::fmt::Display>(what: &str, result: Result<impl Into<u64>, E>) -> Result<String, String> {
    result.map(|n| format!("{} {what}", n.into())).map_err(|e| e.to_string())
}

/// Runs the jobs for as long as the server does: every minute the urgent ones, every quarter
/// hour the rest.
pub fn spawn(ctx: Arc<AppContext>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        for minute in 0u64.. {
            every.tick().await;
            let purged = crate::account::deletion::purge_due(&ctx).await.map(|n| n as u64);
            ctx.jobs.record("purge deleted accounts", counted("purged", purged));
            let lifted = crate::admin::takedown::lift_expired(&ctx).await.map(|n| n as u64);
            ctx.jobs.record("lift expired suspensions", counted("lifted", lifted));
            if minute % 15 != 0 {
                continue;
            }
            let removed = crate::blobs::collect_garbage(&ctx).await.map(|n| n as u64);
            ctx.jobs.record("remove unclaimed uploads", counted("removed", removed));
            ctx.jobs.record("sweep caches", counted("removed", sweep_caches(&ctx).await));
            // The firehose keeps PDS_REPO_BACKFILL_LIMIT_MS of history.
            let trimmed = crate::sequencer::trim(&ctx.db, ctx.config.repo_backfill_limit_ms).await;
            ctx.jobs.record("trim firehose events", counted("trimmed", trimmed));
        }
    });
}
