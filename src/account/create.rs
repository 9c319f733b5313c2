//! Registering a new account: one transaction that writes the account, its sealed signing key,
//! its use of an invite code, the repository's first commit, a session's refresh token and —
//! unless the account is moving here and starts deactivated — the `#identity`, `#account`,
//! `#commit` and `#sync` events that announce it.

use sea_orm::{DbErr, EntityTrait, Set, SqlErr, TransactionTrait};

use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::repo::CommitData;
use aurora_atproto::syntax::{Did, Handle};

use super::{invites, NewAccount};
use crate::context::AppContext;
use crate::db::entities::signing_key;
use crate::keys;
use crate::repo::store::{Pooled, StoreError};
use crate::sequencer::{self, AccountStatus};

/// Everything a new account is made of, checked and prepared beforehand.
pub struct Registration<'a> {
    pub did: &'a Did,
    pub handle: &'a Handle,
    pub email: &'a str,
    pub password_hash: String,
    pub signing_key: &'a Keypair,
    pub invite_code: Option<&'a str>,
    /// The repository's first commit.
    pub commit: &'a CommitData,
    /// The session the sign-up opens.
    pub refresh_id: &'a str,
    pub refresh_expires_at: i64,
    /// An account moving here starts deactivated, and is announced when it is activated.
    pub deactivated: bool,
}

/// Why an account was not registered.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Another sign-up took the handle since it was checked.
    #[error("the handle is taken")]
    HandleTaken,
    /// Another sign-up took the email address since it was checked.
    #[error("the email address is taken")]
    EmailTaken,
    /// The invite code's last use went to another sign-up since it was checked.
    #[error("the invite code is used up")]
    InviteUsedUp,
    #[error(transparent)]
    Db(DbErr),
}

impl From<StoreError> for CreateError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Db(e) => e.into(),
            other => CreateError::Db(DbErr::Custom(other.to_string())),
        }
    }
}

impl From<DbErr> for CreateError {
    fn from(error: DbErr) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) if detail.contains("email") => CreateError::EmailTaken,
            Some(SqlErr::UniqueConstraintViolation(_)) => CreateError::HandleTaken,
            _ => CreateError::Db(error),
        }
    }
}

/// Writes the account, all or nothing.
pub async fn register(ctx: &AppContext, new: Registration<'_>) -> Result<(), CreateError> {
    let Registration { did, handle, email, password_hash, signing_key, invite_code, commit, .. } = new;
    let txn = ctx.db.begin().await?;
    super::insert(
        &txn,
        NewAccount {
            did,
            handle,
            email: Some(email),
            password_hash: Some(password_hash),
            deactivated: new.deactivated,
        },
    )
    .await?;
    signing_key::Entity::insert(signing_key::ActiveModel {
        did: Set(did.clone()),
        key_type: Set(keys::key_type_name(KeyType::K256).to_owned()),
        sealed: Set(ctx.keys.seal(did.as_str(), signing_key)),
        created_at: Set(super::now()),
    })
    .exec_without_returning(&txn)
    .await?;
    if let Some(code) = invite_code {
        // Checked again inside the transaction, so two sign-ups cannot share a last use.
        if !invites::is_available(&txn, code).await? {
            return Err(CreateError::InviteUsedUp);
        }
        invites::record_use(&txn, code, did).await?;
    }
    crate::repo::persist_commit(&mut Pooled::new(&txn), did, commit).await?;
    super::store_refresh_token(&txn, did, new.refresh_id, new.refresh_expires_at, None).await?;
    if !new.deactivated {
        sequencer::identity(&txn, did, Some(handle)).await?;
        sequencer::account(&txn, did, AccountStatus::Active).await?;
        sequencer::commit(&txn, did, commit).await?;
        sequencer::sync(&txn, did, &commit.commit).await?;
    }
    txn.commit().await?;
    ctx.firehose.poke();
    Ok(())
}
