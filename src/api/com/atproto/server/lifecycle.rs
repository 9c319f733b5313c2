//! Account lifecycle: `activateAccount`, `deactivateAccount`, `checkAccountStatus`.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::Value;

use aurora_atproto::mst::ListOptions;
use aurora_atproto::repo::Repo;
use aurora_generated::com::atproto::server::{check_account_status as cas, deactivate_account as da};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::auth::Scope;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::repo::SqlBlockStore;
use crate::sequencer::{self, AccountStatus};

fn account_not_found() -> XrpcError {
    XrpcError::new(poem::http::StatusCode::BAD_REQUEST, "AccountNotFound", Some("Account not found".into()))
}

/// Why the identity does not (yet) point at this server, or `None` when it does.
async fn identity_problem(ctx: &AppContext, did: &str) -> XrpcResult<Option<String>> {
    if !did.starts_with("did:plc:") {
        return Ok(Some("Only did:plc identities can be checked by this version".into()));
    }
    let data: Value = match ctx.plc.data(did).await {
        Ok(data) => data,
        Err(e) => return Ok(Some(format!("Could not resolve DID: {e}"))),
    };
    let rotation = ctx.rotation_key.did_key();
    if !data["rotationKeys"].as_array().is_some_and(|keys| keys.iter().any(|k| k.as_str() == Some(&rotation))) {
        return Ok(Some("Server rotation key not included in PLC DID data".into()));
    }
    if data["services"]["atproto_pds"]["endpoint"].as_str() != Some(ctx.config.public_url.as_str()) {
        return Ok(Some("DID document atproto_pds service endpoint does not match PDS public url".into()));
    }
    let key = crate::keys::signing_key(ctx, did).await?;
    if data["verificationMethods"]["atproto"].as_str() != Some(key.did_key().as_str()) {
        return Ok(Some("DID document verification method does not match expected signing key".into()));
    }
    Ok(None)
}

pub async fn activate(ctx: &AppContext, req: &RequestContext) -> XrpcResult<()> {
    let creds = ctx.verifier().full(req)?;
    let found =
        account::find(&ctx.db, Lookup::Did(&creds.did)).await.map_err(internal)?.ok_or_else(account_not_found)?;
    if found.status() == AccountStatus::Takendown {
        return Err(account_not_found());
    }
    if let Some(problem) = identity_problem(ctx, &creds.did).await? {
        return Err(XrpcError::invalid_request(problem));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    actor::Entity::update_many()
        .col_expr(actor::Column::DeactivatedAt, Expr::value(Option::<String>::None))
        .col_expr(actor::Column::DeleteAfter, Expr::value(Option::<String>::None))
        .filter(actor::Column::Did.eq(creds.did.as_str()))
        .exec(&txn)
        .await
        .map_err(internal)?;
    sequencer::account(&txn, &creds.did, AccountStatus::Active).await.map_err(internal)?;
    sequencer::identity(&txn, &creds.did, Some(found.handle())).await.map_err(internal)?;
    if let Some((_, commit)) = crate::repo::current_commit(&txn, &creds.did).await.map_err(internal)? {
        sequencer::sync(&txn, &creds.did, &commit).await.map_err(internal)?;
    }
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}

pub async fn deactivate(ctx: &AppContext, req: &RequestContext, input: da::Input) -> XrpcResult<()> {
    let creds = ctx.verifier().access(req, &[Scope::Access, Scope::Takendown])?;
    let found =
        account::find(&ctx.db, Lookup::Did(&creds.did)).await.map_err(internal)?.ok_or_else(account_not_found)?;
    let txn = ctx.db.begin().await.map_err(internal)?;
    actor::Entity::update_many()
        .col_expr(actor::Column::DeactivatedAt, Expr::value(Some(account::now())))
        .col_expr(actor::Column::DeleteAfter, Expr::value(input.delete_after.map(|d| d.as_str().to_owned())))
        .filter(actor::Column::Did.eq(creds.did.as_str()))
        .exec(&txn)
        .await
        .map_err(internal)?;
    // A taken-down account stays reported as taken down: takedown outranks deactivation.
    let status =
        if found.status() == AccountStatus::Takendown { AccountStatus::Takendown } else { AccountStatus::Deactivated };
    sequencer::account(&txn, &creds.did, status).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}

pub async fn check_account_status(ctx: &AppContext, req: &RequestContext) -> XrpcResult<cas::Output> {
    let creds = ctx.verifier().standard(req)?;
    let found =
        account::find(&ctx.db, Lookup::Did(&creds.did)).await.map_err(internal)?.ok_or_else(account_not_found)?;
    let (root, _) = crate::repo::current_commit(&ctx.db, &creds.did)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::internal(format!("{} has no repository", creds.did)))?;
    let store = SqlBlockStore::new(&ctx.db, &creds.did);
    let repo = Repo::load(store, root.cid.parse().map_err(internal)?).await.map_err(internal)?;
    let records = repo.list(ListOptions::all()).await.map_err(internal)?.len();
    let blocks = crate::repo::block_count(&ctx.db, &creds.did).await.map_err(internal)?;
    let (expected_blobs, imported_blobs) = blob_counts(ctx, &creds.did).await?;
    Ok(cas::Output {
        activated: found.status() == AccountStatus::Active,
        valid_did: identity_problem(ctx, &creds.did).await?.is_none(),
        repo_commit: root.cid.parse().map_err(internal)?,
        repo_rev: root.rev,
        repo_blocks: blocks as i64,
        indexed_records: records as i64,
        private_state_values: 0,
        expected_blobs,
        imported_blobs,
        extra: Default::default(),
    })
}

/// How many distinct blobs the account's records reference, and how many of those are stored.
async fn blob_counts(ctx: &AppContext, did: &str) -> XrpcResult<(i64, i64)> {
    use crate::db::entities::{blob, record_blob};
    use sea_orm::QuerySelect;
    let referenced: Vec<String> = record_blob::Entity::find()
        .select_only()
        .column(record_blob::Column::BlobCid)
        .distinct()
        .filter(record_blob::Column::Did.eq(did))
        .into_tuple()
        .all(&ctx.db)
        .await
        .map_err(internal)?;
    let mut stored = 0;
    for cid in &referenced {
        let present = blob::Entity::find()
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::Cid.eq(cid.as_str()))
            .filter(blob::Column::TempKey.is_null())
            .one(&ctx.db)
            .await
            .map_err(internal)?
            .is_some();
        stored += i64::from(present);
    }
    Ok((referenced.len() as i64, stored))
}
