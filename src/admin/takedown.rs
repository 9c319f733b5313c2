//! Takedowns of an account, a record or a blob: applying and lifting them, and reading what is
//! applied. An account takedown ends its sessions and is announced with an `#account` event;
//! what enforces it is the account's status, which every path already consults
//! (`account::status`, the token gate, the sync methods). A record takedown hides it from
//! record reads; a blob takedown also moves the blob's bytes into the store's quarantine.

use cid::Cid;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TransactionTrait};

use aurora_atproto::syntax::{AtUri, CidString, Did};

use super::audit::Entry;
use crate::account::{self, status::AccountStatus};
use crate::blobs::BlobStore;
use crate::context::AppContext;
use crate::db::entities::{actor, blob, oauth_session, record, refresh_token};
use crate::sequencer;

/// A takedown to apply: its reference (the moderation service's id for the decision) and, for
/// a suspension, when it lifts by itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Takedown {
    pub reference: Option<String>,
    pub until: Option<String>,
}

/// What is applied to a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The takedown's reference, when one is applied.
    pub takedown: Option<String>,
    /// When a suspension lifts.
    pub until: Option<String>,
    pub deactivated: bool,
}

/// Applies (`Some`) or lifts (`None`) an account's takedown, writing `audit` in the same
/// transaction. Either way the account's refresh tokens and OAuth sessions end, as the
/// reference's do, and an `#account` event gives its new status. `false`: no such account.
pub async fn set_account(
    ctx: &AppContext,
    did: &Did,
    takedown: Option<Takedown>,
    audit: Entry<'_>,
) -> Result<bool, DbErr> {
    let txn = ctx.db.begin().await?;
    let Some(mut found) = actor::Entity::find_by_id(did.clone()).one(&txn).await? else { return Ok(false) };
    if found.deleted_at.is_some() {
        return Ok(false);
    }
    // The reference names an unnamed takedown by its time.
    found.takedown_ref = takedown.as_ref().map(|t| t.reference.clone().unwrap_or_else(account::now));
    found.takedown_until = takedown.and_then(|t| t.until);
    actor::Entity::update_many()
        .col_expr(actor::Column::TakedownRef, Expr::value(found.takedown_ref.clone()))
        .col_expr(actor::Column::TakedownUntil, Expr::value(found.takedown_until.clone()))
        .filter(actor::Column::Did.eq(did))
        .exec(&txn)
        .await?;
    refresh_token::Entity::delete_many().filter(refresh_token::Column::Did.eq(did)).exec(&txn).await?;
    oauth_session::Entity::delete_many().filter(oauth_session::Column::Did.eq(did)).exec(&txn).await?;
    sequencer::account(&txn, did, account::actor_status(&found)).await?;
    audit.write(&txn).await?;
    txn.commit().await?;
    ctx.gate.forget(did);
    ctx.firehose.poke();
    Ok(true)
}

/// Deactivates or reactivates an account for an operator, announced with an `#account` event.
/// `false`: no such account.
pub async fn set_deactivated(ctx: &AppContext, did: &Did, deactivated: bool, audit: Entry<'_>) -> Result<bool, DbErr> {
    let txn = ctx.db.begin().await?;
    let Some(mut found) = actor::Entity::find_by_id(did.clone()).one(&txn).await? else { return Ok(false) };
    found.deactivated_at = deactivated.then(account::now);
    actor::Entity::update_many()
        .col_expr(actor::Column::DeactivatedAt, Expr::value(found.deactivated_at.clone()))
        .col_expr(actor::Column::DeleteAfter, Expr::value(Option::<String>::None))
        .filter(actor::Column::Did.eq(did))
        .exec(&txn)
        .await?;
    sequencer::account(&txn, did, account::actor_status(&found)).await?;
    audit.write(&txn).await?;
    txn.commit().await?;
    ctx.firehose.poke();
    Ok(true)
}

/// Announces an account's current status again (what the reference does for an update that
/// changes nothing). `false`: no such account.
pub async fn announce(ctx: &AppContext, did: &Did) -> Result<bool, DbErr> {
    let txn = ctx.db.begin().await?;
    let Some(found) = actor::Entity::find_by_id(did.clone()).one(&txn).await? else { return Ok(false) };
    let status = if found.deleted_at.is_some() { AccountStatus::Deleted } else { account::actor_status(&found) };
    sequencer::account(&txn, did, status).await?;
    txn.commit().await?;
    ctx.firehose.poke();
    Ok(true)
}

/// Applies or lifts a record's takedown. `false`: no such record.
pub async fn set_record(
    ctx: &AppContext,
    uri: &AtUri,
    takedown: Option<Takedown>,
    audit: Entry<'_>,
) -> Result<bool, DbErr> {
    let reference = takedown.map(|t| t.reference.unwrap_or_else(account::now));
    let txn = ctx.db.begin().await?;
    let updated = record::Entity::update_many()
        .col_expr(record::Column::TakedownRef, Expr::value(reference))
        .filter(record::Column::Uri.eq(uri))
        .exec(&txn)
        .await?;
    audit.write(&txn).await?;
    txn.commit().await?;
    Ok(updated.rows_affected > 0)
}

/// Applies or lifts a blob's takedown, moving its bytes into or out of quarantine. `false`: no
/// such blob.
pub async fn set_blob(
    ctx: &AppContext,
    did: &Did,
    cid: &CidString,
    takedown: Option<Takedown>,
    audit: Entry<'_>,
) -> Result<bool, BlobTakedownError> {
    let parsed: Cid = cid.to_cid().map_err(|e| BlobTakedownError::Store(e.to_string()))?;
    let applied = takedown.is_some();
    let reference = takedown.map(|t| t.reference.unwrap_or_else(account::now));
    let txn = ctx.db.begin().await?;
    let updated = blob::Entity::update_many()
        .col_expr(blob::Column::TakedownRef, Expr::value(reference))
        .filter(blob::Column::Did.eq(did))
        .filter(blob::Column::Cid.eq(cid))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    // Bytes move first: a failed move leaves the row as it was, so the two never disagree in
    // the direction that would serve a taken-down blob.
    let moved = if applied { ctx.blobs.quarantine(did, &parsed).await } else { ctx.blobs.release(did, &parsed).await };
    moved.map_err(|e| BlobTakedownError::Store(e.to_string()))?;
    audit.write(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

#[derive(Debug, thiserror::Error)]
pub enum BlobTakedownError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("blob store: {0}")]
    Store(String),
}

/// What is applied to an account; `None` without one.
pub async fn account_status<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<Option<Applied>, DbErr> {
    Ok(actor::Entity::find_by_id(did.clone()).one(conn).await?.filter(|a| a.deleted_at.is_none()).map(|a| Applied {
        takedown: a.takedown_ref,
        until: a.takedown_until,
        deactivated: a.deactivated_at.is_some(),
    }))
}

/// A record's takedown and its current CID; `None` without the record.
pub async fn record_status<C: ConnectionTrait>(
    conn: &C,
    uri: &AtUri,
) -> Result<Option<(Option<String>, CidString)>, DbErr> {
    Ok(record::Entity::find().filter(record::Column::Uri.eq(uri)).one(conn).await?.map(|r| (r.takedown_ref, r.cid)))
}

/// A blob's takedown; `None` without the blob.
pub async fn blob_status<C: ConnectionTrait>(
    conn: &C,
    did: &Did,
    cid: &CidString,
) -> Result<Option<Option<String>>, DbErr> {
    Ok(blob::Entity::find()
        .filter(blob::Column::Did.eq(did))
        .filter(blob::Column::Cid.eq(cid))
        .one(conn)
        .await?
        .map(|b| b.takedown_ref))
}

/// Lifts the suspensions whose time has come; how many.
pub async fn lift_expired(ctx: &AppContext) -> Result<usize, DbErr> {
    let due: Vec<Did> = actor::Entity::find()
        .filter(actor::Column::TakedownUntil.lte(account::now()))
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(|a| a.did)
        .collect();
    for did in &due {
        set_account(ctx, did, None, Entry::system("suspension-expired").subject(did)).await?;
    }
    Ok(due.len())
}
