//! `com.atproto.server.refreshSession`: a new token pair for a refresh token, which is spent.
//! A retry within the grace period gets the same successor, so a client that lost the answer
//! to its first refresh ends up with the same session, not a fork.

use poem::http::StatusCode;
use sea_orm::TransactionTrait;

use aurora_generated::com::atproto::server::refresh_session::Output;
use aurora_xrpc::auth::Refresh;
use aurora_xrpc::{XrpcError, XrpcResult};

use super::taken_down;
use crate::account::{self, Lookup};
use crate::api::internal;
use crate::auth::Scope;
use crate::context::AppContext;

fn revoked() -> XrpcError {
    XrpcError::new(StatusCode::BAD_REQUEST, "ExpiredToken", Some("Token has been revoked".into()))
}

pub async fn handle(ctx: &AppContext, auth: Refresh) -> XrpcResult<Output> {
    let did = &auth.did;
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?;
    let Some(found) = found else {
        return Err(XrpcError::invalid_request(format!("Could not find user info for account: {did}")));
    };
    if found.status().is_taken_down() {
        return Err(taken_down());
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    let Some(old) = account::refresh_token(&txn, &auth.token_id).await.map_err(internal)? else {
        return Err(revoked());
    };
    account::delete_expired_refresh_tokens(&txn, did).await.map_err(internal)?;
    let now = crate::auth::now_secs();
    let grace_end = (now + account::REFRESH_GRACE_SECS).min(parse_time(&old.expires_at).unwrap_or(i64::MAX));
    if grace_end <= now {
        return Err(revoked());
    }
    let next_id = old.next_id.clone().unwrap_or_else(crate::auth::tokens_new_refresh_id);
    let grace_iso = aurora_atproto::syntax::Datetime::from_unix_micros(grace_end * 1_000_000).as_str().to_owned();
    if !account::rotate_refresh_token(&txn, &old, &next_id, &grace_iso).await.map_err(internal)? {
        return Err(XrpcError::invalid_request("The session was refreshed concurrently; retry"));
    }
    let scope = match &old.app_password_name {
        None => Scope::Access,
        Some(name) => match account::app_password(&txn, did, name).await.map_err(internal)? {
            Some(app) if app.privileged => Scope::AppPassPrivileged,
            Some(_) => Scope::AppPass,
            None => return Err(revoked()),
        },
    };
    let holder = crate::auth::Holder {
        did,
        generation: found.token_generation(),
        app_password: old.app_password_name.as_deref(),
    };
    let pair = ctx.tokens.pair(&holder, scope, &next_id);
    account::store_refresh_token(&txn, did, &next_id, pair.refresh_expires_at, old.app_password_name.as_deref())
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    Ok(session_output!(Output, &found, access_jwt: pair.access_jwt, refresh_jwt: pair.refresh_jwt))
}

fn parse_time(iso: &str) -> Option<i64> {
    iso.parse::<aurora_atproto::syntax::Datetime>().ok().map(|d| d.unix_micros() / 1_000_000)
}
