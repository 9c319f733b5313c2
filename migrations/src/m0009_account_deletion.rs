//! Deleted accounts wait out a grace period before their data is purged: `actor.deleted_at`
//! marks them, and while it is set the account is offline but restorable.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Actor {
    Table,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Actor::Table)
                    .add_column(ColumnDef::new(Actor::DeletedAt).string().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Actor::Table).drop_column(Actor::DeletedAt).to_owned()).await
    }
}
