//! The background jobs' shared schedule: every job runs once per period however many servers
//! share the database, a server that died mid-run does not hold a job for ever, times survive
//! restarts, and operators see and run jobs through the admin API and the dashboard.

use std::collections::BTreeSet;

use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use aurora_locus::context::AppContext;
use aurora_locus::db::entities::job_schedule;
use aurora_locus::jobs::{self, schedule, Job};

use crate::helpers::TestApp;

const ADMIN: &str = "admin-secret";
const MODERATOR: &str = "moderator-secret-1234";

async fn ran(ctx: &AppContext) -> Vec<&'static str> {
    jobs::run_due(ctx).await.expect("run due jobs").into_iter().map(|(job, _)| job.name()).collect()
}

async fn as_user(
    app: &TestApp,
    user: &str,
    password: &str,
    method: Method,
    nsid: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.xrpc(nsid)).basic_auth(user, Some(password));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

app_test!(each_job_runs_once_per_period_across_servers_sharing_the_database, |app| {
    // A second server on the same database, as a replica would be.
    let replica = AppContext::build(app.ctx.config.clone()).await.expect("a second server");
    let (first, second) = tokio::join!(ran(&app.ctx), ran(&replica));
    let mut all: Vec<&str> = first.iter().chain(second.iter()).copied().collect();
    all.sort_unstable();
    let mut expected: Vec<&str> = Job::ALL.iter().map(|job| job.name()).collect();
    expected.sort_unstable();
    assert_eq!(all, expected, "every job ran exactly once between them: {first:?} and {second:?}");

    // Nothing is due again until its period has passed, on either server (nor after a restart:
    // the times are in the database).
    assert!(ran(&app.ctx).await.is_empty());
    let restarted = AppContext::build(app.ctx.config.clone()).await.expect("a restarted server");
    assert!(ran(&restarted).await.is_empty());

    let rows = schedule::list(&app.ctx.db).await.expect("schedule");
    assert_eq!(rows.len(), Job::ALL.len());
    for row in &rows {
        assert_eq!((row.runs, row.failures, row.last_ok), (1, 0, Some(true)), "{row:?}");
        assert!(row.lease_holder.is_none() && row.lease_until.is_none(), "{row:?}");
        let every = Job::by_name(&row.name).expect("a known job").every().as_millis() as i64;
        let finished = row.last_finished_at.expect("finished");
        assert_eq!(row.next_run_at, finished + every, "{row:?}");
    }
});

app_test!(a_lease_left_by_a_server_that_stopped_runs_out, |app| {
    assert_eq!(ran(&app.ctx).await.len(), Job::ALL.len());
    let now = schedule::now_ms();
    let name = Job::TrimFirehose.name();
    // Due, but held by a server that is still running it...
    job_schedule::Entity::update_many()
        .col_expr(job_schedule::Column::NextRunAt, Expr::value(now - 1))
        .col_expr(job_schedule::Column::LeaseHolder, Expr::value("elsewhere:1:0"))
        .col_expr(job_schedule::Column::LeaseUntil, Expr::value(now + 60_000))
        .filter(job_schedule::Column::Name.eq(name))
        .exec(&app.ctx.db)
        .await
        .expect("lease elsewhere");
    assert!(ran(&app.ctx).await.is_empty(), "a live lease is respected");
    // ...and once that server's lease has run out, this one takes the job over.
    job_schedule::Entity::update_many()
        .col_expr(job_schedule::Column::LeaseUntil, Expr::value(now - 1))
        .filter(job_schedule::Column::Name.eq(name))
        .exec(&app.ctx.db)
        .await
        .expect("lease ran out");
    assert_eq!(ran(&app.ctx).await, vec![name]);
    let row = schedule::get(&app.ctx.db, name).await.expect("row").expect("present");
    assert_eq!((row.runs, row.lease_holder), (2, None));
});

app_test!(
    operators_list_and_run_jobs_through_the_admin_api,
    ["PDS_ADMIN_PASSWORD" => "admin-secret", "AURORA_MODERATOR_PASSWORD" => "moderator-secret-1234"],
    |app| {
        // Listed before any run: every job, due at once.
        let (status, listed) = as_user(&app, "admin", ADMIN, Method::GET, "org.auroralocus.admin.listJobs", None).await;
        assert_eq!(status, 200, "{listed}");
        let names: BTreeSet<&str> = listed["jobs"].as_array().expect("jobs").iter().filter_map(|j| j["name"].as_str()).collect();
        assert_eq!(names, Job::ALL.iter().map(|job| job.name()).collect());
        assert!(listed["jobs"][0]["lastFinishedAt"].is_null());

        // An expired password session, swept when the operator runs the sweep.
        let account = app.create_account("sweepme").await;
        let did = account["did"].as_str().expect("did");
        use aurora_locus::db::entities::refresh_token;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::ExpiresAt, Expr::value("2001-01-01T00:00:00.000Z"))
            .filter(refresh_token::Column::Did.eq(did))
            .exec(&app.ctx.db)
            .await
            .expect("age the session");
        let body = json!({ "name": "sweep-expired-sessions" });
        let (status, job) =
            as_user(&app, "admin", ADMIN, Method::POST, "org.auroralocus.admin.runJob", Some(body.clone())).await;
        assert_eq!(status, 200, "{job}");
        assert_eq!((job["name"].as_str(), job["lastOk"].as_bool(), job["runs"].as_i64()), (Some("sweep-expired-sessions"), Some(true), Some(1)));
        assert_eq!(job["lastOutcome"], "1 removed");
        assert!(job["nextRunAt"].as_str() > job["lastFinishedAt"].as_str(), "{job}");

        // Audited; moderators may neither list nor run; unknown jobs and running ones are refused.
        let (_, audit) = as_user(&app, "admin", ADMIN, Method::GET, "org.auroralocus.admin.listAuditEntries", None).await;
        assert_eq!((audit["entries"][0]["action"].as_str(), audit["entries"][0]["subject"].as_str()), (Some("runJob"), Some("sweep-expired-sessions")));
        let (status, refused) = as_user(&app, "moderator", MODERATOR, Method::POST, "org.auroralocus.admin.runJob", Some(body)).await;
        assert_eq!((status, refused["error"].as_str()), (401, Some("AuthenticationRequired")));
        let (status, _) = as_user(&app, "moderator", MODERATOR, Method::GET, "org.auroralocus.admin.listJobs", None).await;
        assert_eq!(status, 401);
        let (status, unknown) =
            as_user(&app, "admin", ADMIN, Method::POST, "org.auroralocus.admin.runJob", Some(json!({ "name": "make-coffee" }))).await;
        assert_eq!((status, unknown["error"].as_str()), (400, Some("JobNotFound")));
        job_schedule::Entity::update_many()
            .col_expr(job_schedule::Column::LeaseHolder, Expr::value("elsewhere:1:0"))
            .col_expr(job_schedule::Column::LeaseUntil, Expr::value(schedule::now_ms() + 60_000))
            .filter(job_schedule::Column::Name.eq("trim-firehose"))
            .exec(&app.ctx.db)
            .await
            .expect("lease elsewhere");
        let (status, busy) = as_user(&app, "admin", ADMIN, Method::POST, "org.auroralocus.admin.runJob", Some(json!({ "name": "trim-firehose" }))).await;
        assert_eq!((status, busy["error"].as_str()), (400, Some("JobRunning")), "{busy}");
        let (_, listed) = as_user(&app, "admin", ADMIN, Method::GET, "org.auroralocus.admin.listJobs", None).await;
        let trim = listed["jobs"].as_array().expect("jobs").iter().find(|j| j["name"] == "trim-firehose").cloned();
        assert_eq!(trim.expect("listed")["runningOn"], "elsewhere:1:0");

        // The readiness detail shows the schedule too.
        let (status, ready) = app.get_json("/readyz").await;
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["checks"]["database schema"], "ok");
        let swept = ready["jobs"].as_array().expect("jobs").iter().find(|j| j["name"] == "sweep-expired-sessions").cloned();
        assert_eq!(swept.expect("listed")["lastOutcome"], "1 removed");
    }
);
