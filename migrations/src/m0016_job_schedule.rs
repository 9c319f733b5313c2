//! The background jobs' schedule, shared by every server on one database: when each job is
//! next due, which server holds it while it runs (a lease, so replicas never run a job
//! twice), and how its last run went. Kept in the database so a restart neither forgets a
//! failure nor runs every job again at once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum JobSchedule {
    Table,
    Name,
    NextRunAt,
    LeaseHolder,
    LeaseUntil,
    LastStartedAt,
    LastFinishedAt,
    LastMillis,
    LastOk,
    LastOutcome,
    Runs,
    Failures,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JobSchedule::Table)
                    .col(ColumnDef::new(JobSchedule::Name).string().not_null().primary_key())
                    .col(ColumnDef::new(JobSchedule::NextRunAt).big_integer().not_null())
                    .col(ColumnDef::new(JobSchedule::LeaseHolder).string().null())
                    .col(ColumnDef::new(JobSchedule::LeaseUntil).big_integer().null())
                    .col(ColumnDef::new(JobSchedule::LastStartedAt).big_integer().null())
                    .col(ColumnDef::new(JobSchedule::LastFinishedAt).big_integer().null())
                    .col(ColumnDef::new(JobSchedule::LastMillis).big_integer().null())
                    .col(ColumnDef::new(JobSchedule::LastOk).boolean().null())
                    .col(ColumnDef::new(JobSchedule::LastOutcome).text().null())
                    .col(ColumnDef::new(JobSchedule::Runs).big_integer().not_null().default(0))
                    .col(ColumnDef::new(JobSchedule::Failures).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(JobSchedule::Table).to_owned()).await
    }
}
