//! Background jobs: purging deleted accounts, lifting suspensions that ran out, removing
//! uploads nobody claimed, sweeping expired sessions, spent codes, cached DID documents and
//! key reservations, and trimming old firehose events. One scheduler runs them from a shared
//! schedule in the database ([`schedule`]), so their times survive restarts and replicas on
//! one database never run a job twice; each run is logged, counted in the metrics and shown
//! in the health detail, the admin API and the dashboard.

pub mod schedule;
mod sweeps;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use sweeps::{sweep_expired_codes, sweep_expired_sessions, MAX_CACHED_DID_DOCS};

use crate::context::AppContext;

/// A background job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    PurgeDeletedAccounts,
    LiftExpiredSuspensions,
    RemoveUnclaimedUploads,
    SweepExpiredSessions,
    RemoveSpentEmailCodes,
    EvictDidDocuments,
    RemoveExpiredKeyReservations,
    TrimFirehose,
}

impl Job {
    pub const ALL: [Job; 8] = [
        Job::PurgeDeletedAccounts,
        Job::LiftExpiredSuspensions,
        Job::RemoveUnclaimedUploads,
        Job::SweepExpiredSessions,
        Job::RemoveSpentEmailCodes,
        Job::EvictDidDocuments,
        Job::RemoveExpiredKeyReservations,
        Job::TrimFirehose,
    ];

    /// Its name in the schedule, the metrics and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            Job::PurgeDeletedAccounts => "purge-deleted-accounts",
            Job::LiftExpiredSuspensions => "lift-expired-suspensions",
            Job::RemoveUnclaimedUploads => "remove-unclaimed-uploads",
            Job::SweepExpiredSessions => "sweep-expired-sessions",
            Job::RemoveSpentEmailCodes => "remove-spent-email-codes",
            Job::EvictDidDocuments => "evict-did-documents",
            Job::RemoveExpiredKeyReservations => "remove-expired-key-reservations",
            Job::TrimFirehose => "trim-firehose",
        }
    }

    pub fn by_name(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|job| job.name() == name)
    }

    /// What it does, for operators.
    pub fn description(self) -> &'static str {
        match self {
            Job::PurgeDeletedAccounts => "Erases accounts whose deletion grace period has passed.",
            Job::LiftExpiredSuspensions => "Restores accounts whose suspension has run out.",
            Job::RemoveUnclaimedUploads => "Removes uploaded blobs no record took within the hour.",
            Job::SweepExpiredSessions => "Removes password and OAuth sessions that can no longer be renewed.",
            Job::RemoveSpentEmailCodes => "Removes mailed codes past their lifetime.",
            Job::EvictDidDocuments => "Keeps the DID document cache to its limit, oldest out first.",
            Job::RemoveExpiredKeyReservations => "Removes signing keys reserved for accounts never created.",
            Job::TrimFirehose => "Drops firehose events older than PDS_REPO_BACKFILL_LIMIT_MS.",
        }
    }

    /// How often it runs. Deletions and suspensions are due to the minute; the rest is upkeep.
    pub fn every(self) -> Duration {
        match self {
            Job::PurgeDeletedAccounts | Job::LiftExpiredSuspensions => Duration::from_secs(60),
            _ => Duration::from_secs(15 * 60),
        }
    }

    /// Does the work once; what it did, or why it failed.
    pub async fn work(self, ctx: &AppContext) -> Result<String, String> {
        let count =
            |what: &str, n: Result<u64, sea_orm::DbErr>| n.map(|n| format!("{n} {what}")).map_err(|e| e.to_string());
        match self {
            Job::PurgeDeletedAccounts => {
                count("purged", crate::account::deletion::purge_due(ctx).await.map(|n| n as u64))
            }
            Job::LiftExpiredSuspensions => {
                count("lifted", crate::admin::takedown::lift_expired(ctx).await.map(|n| n as u64))
            }
            Job::RemoveUnclaimedUploads => count("removed", crate::blobs::collect_garbage(ctx).await.map(|n| n as u64)),
            Job::SweepExpiredSessions => count("removed", sweep_expired_sessions(&ctx.db).await),
            Job::RemoveSpentEmailCodes => count("removed", sweep_expired_codes(&ctx.db).await),
            Job::EvictDidDocuments => count("evicted", ctx.resolver.sweep_cache(MAX_CACHED_DID_DOCS).await),
            Job::RemoveExpiredKeyReservations => count("removed", crate::keys::sweep_reservations(&ctx.db).await),
            // The firehose keeps PDS_REPO_BACKFILL_LIMIT_MS of history.
            Job::TrimFirehose => {
                count("trimmed", crate::sequencer::trim(&ctx.db, ctx.config.repo_backfill_limit_ms).await)
            }
        }
    }
}

/// This server's side of the scheduler: its name as a lease holder, and when its last round
/// finished (for readiness).
pub struct Jobs {
    holder: String,
    started: std::time::Instant,
    last_round: Mutex<Option<std::time::Instant>>,
}

impl Default for Jobs {
    fn default() -> Self {
        // Host and process, plus a random part so a restarted process is a new holder.
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "aurora".to_owned());
        let holder = format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>());
        Jobs { holder, started: std::time::Instant::now(), last_round: Mutex::default() }
    }
}

/// How often the scheduler looks for due jobs.
const POLL: Duration = Duration::from_secs(15);

/// How long the scheduler may go without a round before readiness fails.
const STALLED_AFTER: Duration = Duration::from_secs(5 * 60);

impl Jobs {
    /// This server's name as a lease holder.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn round_finished(&self) {
        *self.last_round.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }

    /// Why the scheduler looks stuck, if it does: no round finished for five minutes (counted
    /// from start-up until the first one).
    pub fn stalled(&self) -> Option<String> {
        let last = *self.last_round.lock().unwrap_or_else(|p| p.into_inner());
        let since = last.unwrap_or(self.started).elapsed();
        (since > STALLED_AFTER).then(|| format!("no round of background jobs finished for {} s", since.as_secs()))
    }
}

/// Runs every job that is due and that this server wins; the jobs it ran, with how each went.
pub async fn run_due(ctx: &AppContext) -> Result<Vec<(Job, Result<String, String>)>, sea_orm::DbErr> {
    let names: Vec<&str> = Job::ALL.iter().map(|job| job.name()).collect();
    schedule::enroll(&ctx.db, &names, schedule::now_ms()).await?;
    let mut ran = Vec::new();
    for job in Job::ALL {
        let started = schedule::now_ms();
        if schedule::claim(&ctx.db, job.name(), ctx.jobs.holder(), started).await? {
            ran.push((job, run_claimed(ctx, job, started).await?));
        }
    }
    Ok(ran)
}

/// Runs a job this server holds, then hands it back with how it went.
async fn run_claimed(ctx: &AppContext, job: Job, started: i64) -> Result<Result<String, String>, sea_orm::DbErr> {
    let clock = std::time::Instant::now();
    let outcome = job.work(ctx).await;
    let elapsed = clock.elapsed();
    ctx.metrics.job(job.name(), outcome.is_ok(), elapsed);
    match &outcome {
        Ok(done) => {
            tracing::info!(job = job.name(), done = %done, ms = elapsed.as_millis() as u64, "background job ran")
        }
        Err(error) => tracing::warn!(job = job.name(), error = %error, "background job failed"),
    }
    let finished = schedule::now_ms();
    let run = schedule::Finished {
        started,
        finished,
        outcome: &outcome,
        next_run_at: finished + job.every().as_millis() as i64,
    };
    if !schedule::finish(&ctx.db, job.name(), ctx.jobs.holder(), run).await? {
        tracing::warn!(job = job.name(), "background job outran its lease; another server may have run it too");
    }
    Ok(outcome)
}

/// Runs the scheduler for as long as the server does.
pub fn spawn(ctx: Arc<AppContext>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(POLL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match run_due(&ctx).await {
                Ok(_) => ctx.jobs.round_finished(),
                Err(error) => tracing::warn!(error = %error, "background jobs: the schedule is unreachable"),
            }
        }
    });
}

/// Why an operator's "run now" did not run the job.
#[derive(Debug)]
pub enum RunRefused {
    /// A server holds the job's lease: it is running now.
    Running(String),
    Db(sea_orm::DbErr),
}

impl From<sea_orm::DbErr> for RunRefused {
    fn from(error: sea_orm::DbErr) -> Self {
        RunRefused::Db(error)
    }
}

/// Runs `job` now whatever its schedule (an operator asked), unless a server is running it;
/// its row in the schedule afterwards.
pub async fn run_now(ctx: &AppContext, job: Job) -> Result<crate::db::entities::job_schedule::Model, RunRefused> {
    let names: Vec<&str> = Job::ALL.iter().map(|job| job.name()).collect();
    let now = schedule::now_ms();
    schedule::enroll(&ctx.db, &names, now).await?;
    schedule::make_due(&ctx.db, job.name(), now).await?;
    if !schedule::claim(&ctx.db, job.name(), ctx.jobs.holder(), now).await? {
        let holder = schedule::get(&ctx.db, job.name()).await?.and_then(|row| row.lease_holder).unwrap_or_default();
        return Err(RunRefused::Running(holder));
    }
    // How it went is in its row.
    let _outcome = run_claimed(ctx, job, now).await?;
    let row = schedule::get(&ctx.db, job.name()).await?;
    row.ok_or_else(|| RunRefused::Db(sea_orm::DbErr::RecordNotFound(job.name().to_owned())))
}
