//! Wrong guesses at a mailed code: past a few, the code is spent and a new one must be asked for.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EmailToken {
    Table,
    Attempts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new(EmailToken::Attempts).integer().not_null().default(0).to_owned();
        manager.alter_table(Table::alter().table(EmailToken::Table).add_column(column).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(EmailToken::Table).drop_column(EmailToken::Attempts).to_owned()).await
    }
}
