//! Email as a second sign-in factor: when set, a password login also needs a mailed code.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Account {
    Table,
    EmailAuthFactor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new(Account::EmailAuthFactor).boolean().not_null().default(false).to_owned();
        manager.alter_table(Table::alter().table(Account::Table).add_column(column).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Account::Table).drop_column(Account::EmailAuthFactor).to_owned()).await
    }
}
