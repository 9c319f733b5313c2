//! The event log's head on PostgreSQL: the highest number handed out, in a row of its own.
//! A commit numbers its events by moving this row in the same statement that writes them,
//! so the row's lock (held to commit) keeps numbers in commit order with no separate lock
//! statement, and a number is never handed out twice even after the newest events are
//! deleted. SQLite numbers events itself (`AUTOINCREMENT`) and leaves the table empty.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RepoSeqHead {
    Table,
    Id,
    Seq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RepoSeqHead::Table)
                    .col(ColumnDef::new(RepoSeqHead::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(RepoSeqHead::Seq).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RepoSeqHead::Table).to_owned()).await
    }
}
