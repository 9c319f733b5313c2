//! Signing keys reserved ahead of sign-up (for an account that will move here with its DID).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReservedKey {
    Table,
    KeyDid,
    Did,
    Sealed,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReservedKey::Table)
                    .col(ColumnDef::new(ReservedKey::KeyDid).string().not_null().primary_key())
                    .col(ColumnDef::new(ReservedKey::Did).string().null().unique_key())
                    .col(ColumnDef::new(ReservedKey::Sealed).binary().not_null())
                    .col(ColumnDef::new(ReservedKey::CreatedAt).string().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ReservedKey::Table).to_owned()).await
    }
}
