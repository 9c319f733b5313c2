//! A token generation per account: session tokens carry the generation they were issued in,
//! and a password change moves it on, so every token from before stops at once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Account {
    Table,
    TokenGeneration,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new(Account::TokenGeneration).big_integer().not_null().default(0).to_owned();
        manager.alter_table(Table::alter().table(Account::Table).add_column(column).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Account::Table).drop_column(Account::TokenGeneration).to_owned()).await
    }
}
