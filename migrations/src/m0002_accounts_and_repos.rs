//! Accounts, sessions, signing keys, repositories and the event log: the tables that accounts,
//! repository writes and the firehose share. Times are RFC 3339 strings (as the reference
//! stores them), so both databases sort and compare them the same way.

use sea_orm_migration::prelude::*;

use crate::common::actor_fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Actor {
    Table,
    Did,
    Handle,
    CreatedAt,
    DeactivatedAt,
    DeleteAfter,
    TakedownRef,
}

#[derive(DeriveIden)]
enum Account {
    Table,
    Did,
    Email,
    EmailConfirmedAt,
    PasswordHash,
    InvitesDisabled,
}

#[derive(DeriveIden)]
enum AppPassword {
    Table,
    Did,
    Name,
    PasswordHash,
    Privileged,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RefreshToken {
    Table,
    Id,
    Did,
    ExpiresAt,
    AppPasswordName,
    NextId,
}

#[derive(DeriveIden)]
enum SigningKey {
    Table,
    Did,
    KeyType,
    /// The private key, sealed with the server's key-encryption key.
    Sealed,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RepoRoot {
    Table,
    Did,
    Cid,
    Rev,
    IndexedAt,
}

#[derive(DeriveIden)]
enum RepoBlock {
    Table,
    Did,
    Cid,
    Rev,
    Size,
    Content,
}

#[derive(DeriveIden)]
enum RepoSeq {
    Table,
    Seq,
    Did,
    EventType,
    Event,
    Invalidated,
    SequencedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Actor::Table)
                    .col(ColumnDef::new(Actor::Did).string().not_null().primary_key())
                    .col(ColumnDef::new(Actor::Handle).string().null().unique_key())
                    .col(ColumnDef::new(Actor::CreatedAt).string().not_null())
                    .col(ColumnDef::new(Actor::DeactivatedAt).string().null())
                    .col(ColumnDef::new(Actor::DeleteAfter).string().null())
                    .col(ColumnDef::new(Actor::TakedownRef).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Account::Table)
                    .col(ColumnDef::new(Account::Did).string().not_null().primary_key())
                    .col(ColumnDef::new(Account::Email).string().null().unique_key())
                    .col(ColumnDef::new(Account::EmailConfirmedAt).string().null())
                    .col(ColumnDef::new(Account::PasswordHash).string().not_null())
                    .col(ColumnDef::new(Account::InvitesDisabled).boolean().not_null().default(false))
                    .foreign_key(&mut actor_fk(Account::Table, "fk_account_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AppPassword::Table)
                    .col(ColumnDef::new(AppPassword::Did).string().not_null())
                    .col(ColumnDef::new(AppPassword::Name).string().not_null())
                    .col(ColumnDef::new(AppPassword::PasswordHash).string().not_null())
                    .col(ColumnDef::new(AppPassword::Privileged).boolean().not_null().default(false))
                    .col(ColumnDef::new(AppPassword::CreatedAt).string().not_null())
                    .primary_key(Index::create().col(AppPassword::Did).col(AppPassword::Name))
                    .foreign_key(&mut actor_fk(AppPassword::Table, "fk_app_password_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshToken::Table)
                    .col(ColumnDef::new(RefreshToken::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(RefreshToken::Did).string().not_null())
                    .col(ColumnDef::new(RefreshToken::ExpiresAt).string().not_null())
                    .col(ColumnDef::new(RefreshToken::AppPasswordName).string().null())
                    .col(ColumnDef::new(RefreshToken::NextId).string().null())
                    .foreign_key(&mut actor_fk(RefreshToken::Table, "fk_refresh_token_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_token_did")
                    .table(RefreshToken::Table)
                    .col(RefreshToken::Did)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKey::Table)
                    .col(ColumnDef::new(SigningKey::Did).string().not_null().primary_key())
                    .col(ColumnDef::new(SigningKey::KeyType).string().not_null())
                    .col(ColumnDef::new(SigningKey::Sealed).binary().not_null())
                    .col(ColumnDef::new(SigningKey::CreatedAt).string().not_null())
                    .foreign_key(&mut actor_fk(SigningKey::Table, "fk_signing_key_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RepoRoot::Table)
                    .col(ColumnDef::new(RepoRoot::Did).string().not_null().primary_key())
                    .col(ColumnDef::new(RepoRoot::Cid).string().not_null())
                    .col(ColumnDef::new(RepoRoot::Rev).string().not_null())
                    .col(ColumnDef::new(RepoRoot::IndexedAt).string().not_null())
                    .foreign_key(&mut actor_fk(RepoRoot::Table, "fk_repo_root_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RepoBlock::Table)
                    .col(ColumnDef::new(RepoBlock::Did).string().not_null())
                    .col(ColumnDef::new(RepoBlock::Cid).string().not_null())
                    .col(ColumnDef::new(RepoBlock::Rev).string().not_null())
                    .col(ColumnDef::new(RepoBlock::Size).integer().not_null())
                    .col(ColumnDef::new(RepoBlock::Content).binary().not_null())
                    .primary_key(Index::create().col(RepoBlock::Did).col(RepoBlock::Cid))
                    .foreign_key(&mut actor_fk(RepoBlock::Table, "fk_repo_block_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_repo_block_did_rev")
                    .table(RepoBlock::Table)
                    .col(RepoBlock::Did)
                    .col(RepoBlock::Rev)
                    .to_owned(),
            )
            .await?;
        // The event log outlives deleted accounts (their #account event must still be served),
        // so it has no foreign key to actor.
        manager
            .create_table(
                Table::create()
                    .table(RepoSeq::Table)
                    .col(ColumnDef::new(RepoSeq::Seq).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(RepoSeq::Did).string().not_null())
                    .col(ColumnDef::new(RepoSeq::EventType).string().not_null())
                    .col(ColumnDef::new(RepoSeq::Event).binary().not_null())
                    .col(ColumnDef::new(RepoSeq::Invalidated).boolean().not_null().default(false))
                    .col(ColumnDef::new(RepoSeq::SequencedAt).string().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("idx_repo_seq_did").table(RepoSeq::Table).col(RepoSeq::Did).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RepoSeq::Table.into_iden(),
            RepoBlock::Table.into_iden(),
            RepoRoot::Table.into_iden(),
            SigningKey::Table.into_iden(),
            RefreshToken::Table.into_iden(),
            AppPassword::Table.into_iden(),
            Account::Table.into_iden(),
            Actor::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
