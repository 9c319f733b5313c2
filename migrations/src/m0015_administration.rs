//! Administration: every admin action is kept in an audit log, and a takedown may carry an
//! expiry (a suspension), after which the account is restored by itself.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdminAudit {
    Table,
    Id,
    At,
    Operator,
    Role,
    Action,
    Subject,
    Detail,
}

#[derive(DeriveIden)]
enum Actor {
    Table,
    TakedownUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AdminAudit::Table)
                    .col(ColumnDef::new(AdminAudit::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(AdminAudit::At).string().not_null())
                    .col(ColumnDef::new(AdminAudit::Operator).string().not_null())
                    .col(ColumnDef::new(AdminAudit::Role).string().not_null())
                    .col(ColumnDef::new(AdminAudit::Action).string().not_null())
                    .col(ColumnDef::new(AdminAudit::Subject).string().null())
                    .col(ColumnDef::new(AdminAudit::Detail).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("admin_audit_subject_idx")
                    .table(AdminAudit::Table)
                    .col(AdminAudit::Subject)
                    .col(AdminAudit::Id)
                    .to_owned(),
            )
            .await?;
        let column = ColumnDef::new(Actor::TakedownUntil).string().null().to_owned();
        manager.alter_table(Table::alter().table(Actor::Table).add_column(column).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Actor::Table).drop_column(Actor::TakedownUntil).to_owned()).await?;
        manager.drop_table(Table::drop().table(AdminAudit::Table).to_owned()).await
    }
}
