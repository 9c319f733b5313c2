use sea_orm::entity::prelude::*;

/// One background job's place in the schedule (times are Unix milliseconds).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_schedule")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub next_run_at: i64,
    /// The server running it now, until `lease_until`; a lease that ran out (the server
    /// stopped mid-run) may be taken by any server.
    pub lease_holder: Option<String>,
    pub lease_until: Option<i64>,
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    pub last_millis: Option<i64>,
    pub last_ok: Option<bool>,
    /// What the last run did, or why it failed.
    pub last_outcome: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
