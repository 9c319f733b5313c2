//! `org.auroralocus.admin.listJobs`: the background jobs' schedule.

use aurora_atproto::syntax::Datetime;
use aurora_generated::org::auroralocus::admin::list_jobs::{self, Job as JobView};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::job_schedule;
use crate::jobs::{schedule, Job};

fn at(ms: i64) -> Datetime {
    Datetime::from_unix_micros(ms.saturating_mul(1000))
}

/// A job as operators see it: its row in the schedule, or (not enrolled yet) due at once.
pub fn view(job: Job, row: Option<&job_schedule::Model>, now: i64) -> JobView {
    let running_on =
        row.filter(|r| r.lease_until.is_some_and(|until| until >= now)).and_then(|r| r.lease_holder.clone());
    JobView {
        name: job.name().to_owned(),
        description: job.description().to_owned(),
        interval_seconds: job.every().as_secs() as i64,
        next_run_at: at(row.map_or(now, |r| r.next_run_at)),
        running_on,
        last_started_at: row.and_then(|r| r.last_started_at).map(at),
        last_finished_at: row.and_then(|r| r.last_finished_at).map(at),
        last_duration_ms: row.and_then(|r| r.last_millis),
        last_ok: row.and_then(|r| r.last_ok),
        last_outcome: row.and_then(|r| r.last_outcome.clone()),
        runs: row.map_or(0, |r| r.runs),
        failures: row.map_or(0, |r| r.failures),
        extra: Default::default(),
    }
}

/// Every job, in the order they run.
pub async fn all(ctx: &AppContext) -> Result<Vec<JobView>, sea_orm::DbErr> {
    let rows = schedule::list(&ctx.db).await?;
    let now = schedule::now_ms();
    Ok(Job::ALL.into_iter().map(|job| view(job, rows.iter().find(|r| r.name == job.name()), now)).collect())
}

pub async fn list(ctx: &AppContext) -> XrpcResult<list_jobs::Output> {
    Ok(list_jobs::Output { jobs: all(ctx).await.map_err(internal)?, extra: Default::default() })
}
