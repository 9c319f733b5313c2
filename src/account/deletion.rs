//! Account deletion. Deleting takes the account offline at once: sessions end, nothing of it is
//! served, and the firehose says `#account` deleted and forgets its earlier events. Its rows,
//! repository and blobs are purged after `AURORA_ACCOUNT_DELETION_GRACE_SECS` (default 0:
//! immediately); until then an operator can restore it (`aurora-locus restore-account`).

use aurora_atproto::syntax::{Did, Handle};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

use crate::blobs::BlobStore;
use crate::context::AppContext;
use crate::db::entities::{actor, refresh_token, repo_seq};
use crate::sequencer::{self, AccountStatus};

/// Deletes `did`'s account inside `txn` (in which the caller checked the credentials and spent
/// the emailed token), and commits.
pub async fn delete(ctx: &AppContext, txn: DatabaseTransaction, did: &Did) -> Result<(), DbErr> {
    let immediate = ctx.config.account_deletion_grace_secs == 0;
    if immediate {
        // Every per-account table cascades from the actor row.
        actor::Entity::delete_by_id(did.to_owned()).exec(&txn).await?;
    } else {
        actor::Entity::update_many()
            .col_expr(actor::Column::DeletedAt, Expr::value(Some(super::now())))
            .filter(actor::Column::Did.eq(did))
            .exec(&txn)
            .await?;
        refresh_token::Entity::delete_many().filter(refresh_token::Column::Did.eq(did)).exec(&txn).await?;
    }
    let seq = sequencer::account(&txn, did, AccountStatus::Deleted).await?;
    repo_seq::Entity::delete_many()
        .filter(repo_seq::Column::Did.eq(did))
        .filter(repo_seq::Column::Seq.lt(seq))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    ctx.firehose.poke();
    if immediate {
        remove_blobs(ctx, did).await;
    }
    Ok(())
}

async fn remove_blobs(ctx: &AppContext, did: &Did) {
    if let Err(e) = ctx.blobs.delete_account(did).await {
        tracing::warn!(%did, error = %e, "could not remove a deleted account's blobs");
    }
}

/// A deleted account still inside its grace period.
#[derive(Debug, Clone)]
pub struct PendingDeletion {
    pub did: Did,
    pub handle: Option<Handle>,
    pub deleted_at: String,
}

/// Deleted accounts not yet purged, oldest first.
pub async fn pending(ctx: &AppContext) -> Result<Vec<PendingDeletion>, DbErr> {
    let rows = actor::Entity::find()
        .filter(actor::Column::DeletedAt.is_not_null())
        .order_by_asc(actor::Column::DeletedAt)
        .all(&ctx.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|a| PendingDeletion { did: a.did, handle: a.handle, deleted_at: a.deleted_at.unwrap_or_default() })
        .collect())
}

/// Purges every deleted account whose grace period has passed. Returns how many.
pub async fn purge_due(ctx: &AppContext) -> Result<usize, DbErr> {
    let grace = i64::try_from(ctx.config.account_deletion_grace_secs).unwrap_or(i64::MAX / 2_000_000);
    let cutoff = aurora_atproto::syntax::Datetime::from_unix_micros(
        crate::auth::now_secs().saturating_sub(grace).saturating_mul(1_000_000),
    );
    let due = actor::Entity::find()
        .filter(actor::Column::DeletedAt.is_not_null())
        .filter(actor::Column::DeletedAt.lte(cutoff.as_str()))
        .all(&ctx.db)
        .await?;
    for account in &due {
        actor::Entity::delete_many()
            .filter(actor::Column::Did.eq(account.did.as_str()))
            .filter(actor::Column::DeletedAt.is_not_null())
            .exec(&ctx.db)
            .await?;
        remove_blobs(ctx, &account.did).await;
        tracing::info!(did = %account.did, "purged a deleted account");
    }
    Ok(due.len())
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not a deleted account awaiting purge")]
    NotPending(Did),
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

/// Brings a deleted account back within its grace period: it is served again and the firehose
/// is told (`#account`, `#identity`, and `#sync` from its current commit) so relays resync it.
/// Its sessions stay ended; its password and app passwords work again.
pub async fn restore(ctx: &AppContext, did: &Did) -> Result<(), RestoreError> {
    let txn = ctx.db.begin().await?;
    let Some(account) = actor::Entity::find()
        .filter(actor::Column::Did.eq(did))
        .filter(actor::Column::DeletedAt.is_not_null())
        .one(&txn)
        .await?
    else {
        return Err(RestoreError::NotPending(did.clone()));
    };
    actor::Entity::update_many()
        .col_expr(actor::Column::DeletedAt, Expr::value(Option::<String>::None))
        .filter(actor::Column::Did.eq(did))
        .exec(&txn)
        .await?;
    let status = if account.takedown_ref.is_some() {
        super::actor_status(&account)
    } else if account.deactivated_at.is_some() {
        AccountStatus::Deactivated
    } else {
        AccountStatus::Active
    };
    sequencer::account(&txn, did, status).await?;
    sequencer::identity(&txn, did, account.handle.as_ref()).await?;
    if let Some((_, commit)) = crate::repo::current_commit(&txn, did).await? {
        sequencer::sync(&txn, did, &commit).await?;
    }
    txn.commit().await?;
    ctx.firehose.poke();
    Ok(())
}
