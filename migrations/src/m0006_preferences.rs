//! Account preferences (`app.bsky.actor.putPreferences`), stored per account as the client
//! sent them.

use sea_orm_migration::prelude::*;

use crate::common::actor_fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccountPref {
    Table,
    Id,
    Did,
    Name,
    ValueJson,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountPref::Table)
                    .col(ColumnDef::new(AccountPref::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(AccountPref::Did).string().not_null())
                    .col(ColumnDef::new(AccountPref::Name).string().not_null())
                    .col(ColumnDef::new(AccountPref::ValueJson).text().not_null())
                    .foreign_key(&mut actor_fk(AccountPref::Table, "fk_account_pref_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_account_pref_did").table(AccountPref::Table).col(AccountPref::Did).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AccountPref::Table).to_owned()).await
    }
}
