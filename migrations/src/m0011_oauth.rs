//! OAuth: pushed authorization requests, the sessions (token families) they turn into, the
//! refresh tokens those sessions used up, browsers people sign in on, the clients each account
//! authorized, one-time values that must not be replayed, and cached permission sets.

use sea_orm_migration::prelude::*;

use crate::common::actor_fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthRequest {
    Table,
    Id,
    ClientId,
    ClientAuth,
    Parameters,
    DpopJkt,
    ExpiresAt,
    DeviceId,
    Did,
    Code,
}

#[derive(DeriveIden)]
enum OauthSession {
    Table,
    Id,
    TokenId,
    Did,
    ClientId,
    ClientAuth,
    DeviceId,
    DpopJkt,
    Scope,
    Parameters,
    Code,
    RefreshToken,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum OauthUsedRefreshToken {
    Table,
    RefreshToken,
    SessionId,
}

#[derive(DeriveIden)]
enum OauthDevice {
    Table,
    Id,
    SecretHash,
    UserAgent,
    IpAddress,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum OauthDeviceAccount {
    Table,
    DeviceId,
    Did,
    AuthenticatedAt,
    Remember,
}

#[derive(DeriveIden)]
enum OauthAuthorizedClient {
    Table,
    Did,
    ClientId,
    Scope,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OauthReplay {
    Table,
    Key,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum LexiconCache {
    Table,
    Nsid,
    Lexicon,
    Uri,
    Cid,
    UpdatedAt,
    LastSucceededAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OauthRequest::Table)
                    .col(ColumnDef::new(OauthRequest::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(OauthRequest::ClientId).string().not_null())
                    .col(ColumnDef::new(OauthRequest::ClientAuth).text().not_null())
                    .col(ColumnDef::new(OauthRequest::Parameters).text().not_null())
                    .col(ColumnDef::new(OauthRequest::DpopJkt).string().null())
                    .col(ColumnDef::new(OauthRequest::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(OauthRequest::DeviceId).string().null())
                    .col(ColumnDef::new(OauthRequest::Did).string().null())
                    .col(ColumnDef::new(OauthRequest::Code).string().null().unique_key())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthSession::Table)
                    .col(ColumnDef::new(OauthSession::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(OauthSession::TokenId).string().not_null().unique_key())
                    .col(ColumnDef::new(OauthSession::Did).string().not_null())
                    .col(ColumnDef::new(OauthSession::ClientId).string().not_null())
                    .col(ColumnDef::new(OauthSession::ClientAuth).text().not_null())
                    .col(ColumnDef::new(OauthSession::DeviceId).string().null())
                    .col(ColumnDef::new(OauthSession::DpopJkt).string().not_null())
                    .col(ColumnDef::new(OauthSession::Scope).text().not_null())
                    .col(ColumnDef::new(OauthSession::Parameters).text().not_null())
                    .col(ColumnDef::new(OauthSession::Code).string().null().unique_key())
                    .col(ColumnDef::new(OauthSession::RefreshToken).string().null().unique_key())
                    .col(ColumnDef::new(OauthSession::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(OauthSession::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(OauthSession::ExpiresAt).big_integer().not_null())
                    .foreign_key(&mut actor_fk(OauthSession::Table, "fk_oauth_session_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oauth_session_did")
                    .table(OauthSession::Table)
                    .col(OauthSession::Did)
                    .col(OauthSession::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthUsedRefreshToken::Table)
                    .col(ColumnDef::new(OauthUsedRefreshToken::RefreshToken).string().not_null().primary_key())
                    .col(ColumnDef::new(OauthUsedRefreshToken::SessionId).string().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_used_refresh_token_session")
                            .from(OauthUsedRefreshToken::Table, OauthUsedRefreshToken::SessionId)
                            .to(OauthSession::Table, OauthSession::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oauth_used_refresh_token_session")
                    .table(OauthUsedRefreshToken::Table)
                    .col(OauthUsedRefreshToken::SessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthDevice::Table)
                    .col(ColumnDef::new(OauthDevice::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(OauthDevice::SecretHash).string().not_null())
                    .col(ColumnDef::new(OauthDevice::UserAgent).string().null())
                    .col(ColumnDef::new(OauthDevice::IpAddress).string().null())
                    .col(ColumnDef::new(OauthDevice::LastSeenAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthDeviceAccount::Table)
                    .col(ColumnDef::new(OauthDeviceAccount::DeviceId).string().not_null())
                    .col(ColumnDef::new(OauthDeviceAccount::Did).string().not_null())
                    .col(ColumnDef::new(OauthDeviceAccount::AuthenticatedAt).big_integer().not_null())
                    .col(ColumnDef::new(OauthDeviceAccount::Remember).boolean().not_null().default(false))
                    .primary_key(Index::create().col(OauthDeviceAccount::DeviceId).col(OauthDeviceAccount::Did))
                    .foreign_key(&mut actor_fk(OauthDeviceAccount::Table, "fk_oauth_device_account_actor"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_device_account_device")
                            .from(OauthDeviceAccount::Table, OauthDeviceAccount::DeviceId)
                            .to(OauthDevice::Table, OauthDevice::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthAuthorizedClient::Table)
                    .col(ColumnDef::new(OauthAuthorizedClient::Did).string().not_null())
                    .col(ColumnDef::new(OauthAuthorizedClient::ClientId).string().not_null())
                    .col(ColumnDef::new(OauthAuthorizedClient::Scope).text().not_null())
                    .col(ColumnDef::new(OauthAuthorizedClient::UpdatedAt).big_integer().not_null())
                    .primary_key(Index::create().col(OauthAuthorizedClient::Did).col(OauthAuthorizedClient::ClientId))
                    .foreign_key(&mut actor_fk(OauthAuthorizedClient::Table, "fk_oauth_authorized_client_actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthReplay::Table)
                    .col(ColumnDef::new(OauthReplay::Key).string().not_null().primary_key())
                    .col(ColumnDef::new(OauthReplay::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oauth_replay_expires_at")
                    .table(OauthReplay::Table)
                    .col(OauthReplay::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LexiconCache::Table)
                    .col(ColumnDef::new(LexiconCache::Nsid).string().not_null().primary_key())
                    .col(ColumnDef::new(LexiconCache::Lexicon).text().null())
                    .col(ColumnDef::new(LexiconCache::Uri).string().null())
                    .col(ColumnDef::new(LexiconCache::Cid).string().null())
                    .col(ColumnDef::new(LexiconCache::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(LexiconCache::LastSucceededAt).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LexiconCache::Table.into_iden(),
            OauthReplay::Table.into_iden(),
            OauthAuthorizedClient::Table.into_iden(),
            OauthDeviceAccount::Table.into_iden(),
            OauthDevice::Table.into_iden(),
            OauthUsedRefreshToken::Table.into_iden(),
            OauthSession::Table.into_iden(),
            OauthRequest::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
