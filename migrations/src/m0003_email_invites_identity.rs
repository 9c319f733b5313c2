//! Email tokens, invite codes and the DID document cache.

use sea_orm_migration::prelude::*;

use crate::common::actor_fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EmailToken {
    Table,
    Purpose,
    Did,
    Token,
    RequestedAt,
}

#[derive(DeriveIden)]
enum InviteCode {
    Table,
    Code,
    AvailableUses,
    Disabled,
    ForAccount,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InviteCodeUse {
    Table,
    Code,
    UsedBy,
    UsedAt,
}

#[derive(DeriveIden)]
enum DidCache {
    Table,
    Did,
    Doc,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EmailToken::Table)
                    .col(ColumnDef::new(EmailToken::Purpose).string().not_null())
                    .col(ColumnDef::new(EmailToken::Did).string().not_null())
                    .col(ColumnDef::new(EmailToken::Token).string().not_null())
                    .col(ColumnDef::new(EmailToken::RequestedAt).string().not_null())
                    .primary_key(Index::create().col(EmailToken::Purpose).col(EmailToken::Did))
                    .foreign_key(&mut actor_fk(EmailToken::Table, "fk_email_token_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_email_token_purpose_token")
                    .table(EmailToken::Table)
                    .col(EmailToken::Purpose)
                    .col(EmailToken::Token)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InviteCode::Table)
                    .col(ColumnDef::new(InviteCode::Code).string().not_null().primary_key())
                    .col(ColumnDef::new(InviteCode::AvailableUses).integer().not_null())
                    .col(ColumnDef::new(InviteCode::Disabled).boolean().not_null().default(false))
                    .col(ColumnDef::new(InviteCode::ForAccount).string().not_null())
                    .col(ColumnDef::new(InviteCode::CreatedBy).string().not_null())
                    .col(ColumnDef::new(InviteCode::CreatedAt).string().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invite_code_for_account")
                    .table(InviteCode::Table)
                    .col(InviteCode::ForAccount)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InviteCodeUse::Table)
                    .col(ColumnDef::new(InviteCodeUse::Code).string().not_null())
                    .col(ColumnDef::new(InviteCodeUse::UsedBy).string().not_null())
                    .col(ColumnDef::new(InviteCodeUse::UsedAt).string().not_null())
                    .primary_key(Index::create().col(InviteCodeUse::Code).col(InviteCodeUse::UsedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invite_code_use_code")
                            .from_tbl(InviteCodeUse::Table)
                            .from_col(InviteCodeUse::Code)
                            .to_tbl(InviteCode::Table)
                            .to_col(InviteCode::Code)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DidCache::Table)
                    .col(ColumnDef::new(DidCache::Did).string().not_null().primary_key())
                    .col(ColumnDef::new(DidCache::Doc).text().not_null())
                    .col(ColumnDef::new(DidCache::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DidCache::Table.into_iden(),
            InviteCodeUse::Table.into_iden(),
            InviteCode::Table.into_iden(),
            EmailToken::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
