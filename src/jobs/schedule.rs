//! The shared schedule in the `job_schedule` table. A server takes a due job by setting its
//! lease in one conditional update, so of several replicas exactly one wins; it hands the job
//! back with the outcome and the next due time. A server that stops mid-run leaves a lease
//! that runs out, after which any server may take the job again.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::db::entities::job_schedule::{self, Column};

/// How long a server may hold a job before others presume it gone.
pub const LEASE_MS: i64 = 10 * 60 * 1000;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Enters each job not yet in the schedule, due at once; jobs already there keep their times.
pub async fn enroll<C: ConnectionTrait>(conn: &C, names: &[&str], now: i64) -> Result<(), DbErr> {
    let rows = names.iter().map(|name| job_schedule::ActiveModel {
        name: Set((*name).to_owned()),
        next_run_at: Set(now),
        runs: Set(0),
        failures: Set(0),
        ..Default::default()
    });
    job_schedule::Entity::insert_many(rows)
        .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
        .do_nothing()
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes `name` for `holder` if it is due and no live lease holds it; whether it was taken.
pub async fn claim<C: ConnectionTrait>(conn: &C, name: &str, holder: &str, now: i64) -> Result<bool, DbErr> {
    let free = Condition::any().add(Column::LeaseUntil.is_null()).add(Column::LeaseUntil.lt(now));
    let taken = job_schedule::Entity::update_many()
        .col_expr(Column::LeaseHolder, Expr::value(holder))
        .col_expr(Column::LeaseUntil, Expr::value(now + LEASE_MS))
        .col_expr(Column::LastStartedAt, Expr::value(now))
        .filter(Column::Name.eq(name))
        .filter(Column::NextRunAt.lte(now))
        .filter(free)
        .exec(conn)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// How one run went.
pub struct Finished<'a> {
    pub started: i64,
    pub finished: i64,
    pub outcome: &'a Result<String, String>,
    pub next_run_at: i64,
}

/// Hands `name` back from `holder` with its outcome and next due time; false when the lease
/// had already passed to another server.
pub async fn finish<C: ConnectionTrait>(conn: &C, name: &str, holder: &str, run: Finished<'_>) -> Result<bool, DbErr> {
    let (ok, text) = match run.outcome {
        Ok(done) => (true, done.as_str()),
        Err(error) => (false, error.as_str()),
    };
    let done = job_schedule::Entity::update_many()
        .col_expr(Column::NextRunAt, Expr::value(run.next_run_at))
        .col_expr(Column::LeaseHolder, Expr::value(Option::<String>::None))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::LastFinishedAt, Expr::value(run.finished))
        .col_expr(Column::LastMillis, Expr::value(run.finished - run.started))
        .col_expr(Column::LastOk, Expr::value(ok))
        .col_expr(Column::LastOutcome, Expr::value(text))
        .col_expr(Column::Runs, Expr::col(Column::Runs).add(1))
        .col_expr(Column::Failures, Expr::col(Column::Failures).add(i64::from(!ok)))
        .filter(Column::Name.eq(name))
        .filter(Column::LeaseHolder.eq(holder))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Makes `name` due now (an operator's "run now"); false when there is no such job.
pub async fn make_due<C: ConnectionTrait>(conn: &C, name: &str, now: i64) -> Result<bool, DbErr> {
    let done = job_schedule::Entity::update_many()
        .col_expr(Column::NextRunAt, Expr::value(now))
        .filter(Column::Name.eq(name))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Every job in the schedule, by name.
pub async fn list<C: ConnectionTrait>(conn: &C) -> Result<Vec<job_schedule::Model>, DbErr> {
    job_schedule::Entity::find().order_by_asc(Column::Name).all(conn).await
}

/// One job's row.
pub async fn get<C: ConnectionTrait>(conn: &C, name: &str) -> Result<Option<job_schedule::Model>, DbErr> {
    job_schedule::Entity::find_by_id(name.to_owned()).one(conn).await
}
