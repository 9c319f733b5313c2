//! Authenticator-app two-factor sign-in: the account's TOTP secret (sealed), when it was
//! confirmed, the last time step used (so a code works once), and its recovery codes' hashes.

use sea_orm_migration::prelude::*;

use crate::common::actor_fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccountTotp {
    Table,
    Did,
    SecretSealed,
    EnabledAt,
    LastStep,
    RecoveryCodes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountTotp::Table)
                    .col(ColumnDef::new(AccountTotp::Did).string().not_null().primary_key())
                    .col(ColumnDef::new(AccountTotp::SecretSealed).string().not_null())
                    .col(ColumnDef::new(AccountTotp::EnabledAt).big_integer().null())
                    .col(ColumnDef::new(AccountTotp::LastStep).big_integer().not_null().default(0))
                    .col(ColumnDef::new(AccountTotp::RecoveryCodes).text().not_null())
                    .foreign_key(&mut actor_fk(AccountTotp::Table, "fk_account_totp_actor"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AccountTotp::Table).to_owned()).await
    }
}
