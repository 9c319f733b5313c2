//! `org.auroralocus.admin.runJob`: runs a background job now, whatever its schedule.

use aurora_generated::org::auroralocus::admin::run_job;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::XrpcResult;

use super::list_jobs::view;
use crate::admin::audit;
use crate::api::internal;
use crate::context::AppContext;
use crate::jobs::{schedule, Job, RunRefused};

pub async fn handle(ctx: &AppContext, admin: &Admin, input: run_job::Input) -> XrpcResult<run_job::Output> {
    let Some(job) = Job::by_name(&input.name) else {
        return Err(run_job::Error::JobNotFound(Some(format!("No background job is named {:?}", input.name))).into());
    };
    audit::Entry::by(admin, "runJob").subject(job.name()).write(&ctx.db).await.map_err(internal)?;
    match crate::jobs::run_now(ctx, job).await {
        Ok(row) => Ok(view(job, Some(&row), schedule::now_ms())),
        Err(RunRefused::Running(holder)) => {
            Err(run_job::Error::JobRunning(Some(format!("The job is running on {holder} now"))).into())
        }
        Err(RunRefused::Db(error)) => Err(internal(error)),
    }
}
