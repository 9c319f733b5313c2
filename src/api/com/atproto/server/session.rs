//! Sessions: `createSession`, `getSession`, `refreshSession`, `deleteSession`.

use poem::http::StatusCode;
use sea_orm::TransactionTrait;
use serde::de::DeserializeOwned;

use aurora_generated::com::atproto::server::{create_session as cs, get_session as gs, refresh_session as rs};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::{self, password, Account, Lookup};
use crate::api::internal;
use crate::auth::{Scope, TokenPair};
use crate::context::AppContext;
use crate::sequencer::AccountStatus;

/// Longest password a login compares (longer ones cannot have been set).
const MAX_LOGIN_PASSWORD: usize = 512;

fn taken_down() -> XrpcError {
    XrpcError::new(StatusCode::UNAUTHORIZED, "AccountTakedown", Some("Account has been taken down".into()))
}

fn wrong_credentials() -> XrpcError {
    XrpcError::auth_required("Invalid identifier or password")
}

/// A session answer (`createSession`, `refreshSession`, `getSession` share their fields; the
/// first two add tokens), built once as JSON and read into the method's own output type.
fn session_output<T: DeserializeOwned>(account: &Account, tokens: Option<&TokenPair>) -> XrpcResult<T> {
    let status = account.status();
    let mut out = serde_json::json!({
        "did": account.did(),
        "handle": account.handle(),
        "emailConfirmed": account.email_confirmed(),
        "active": status == AccountStatus::Active,
    });
    if let Some(email) = account.email() {
        out["email"] = email.into();
        out["emailAuthFactor"] = account.email_auth_factor().into();
    }
    if let Some(status) = status.as_str() {
        out["status"] = status.into();
    }
    if let Some(tokens) = tokens {
        out["accessJwt"] = tokens.access_jwt.clone().into();
        out["refreshJwt"] = tokens.refresh_jwt.clone().into();
    }
    serde_json::from_value(out).map_err(internal)
}

pub async fn create_session(ctx: &AppContext, input: cs::Input) -> XrpcResult<cs::Output> {
    if input.password.len() > MAX_LOGIN_PASSWORD {
        return Err(XrpcError::auth_required("Password too long. Consider resetting your password."));
    }
    let identifier = input.identifier.trim().to_lowercase();
    let found = if identifier.contains('@') {
        account::find(&ctx.db, Lookup::Email(&identifier)).await
    } else {
        account::find_by_identifier(&ctx.db, &identifier).await
    }
    .map_err(internal)?;
    let Some(found) = found else {
        password::verify_nothing(input.password).await;
        return Err(wrong_credentials());
    };
    let Some(credentials) = found.account.clone() else {
        password::verify_nothing(input.password).await;
        return Err(wrong_credentials());
    };
    let (scope, app_password_name) = if password::verify(input.password.clone(), credentials.password_hash).await {
        (Scope::Access, None)
    } else {
        let hash = password::hash_app_password(found.did(), input.password).await;
        match account::app_password_by_hash(&ctx.db, found.did(), &hash).await.map_err(internal)? {
            // A taken-down account may not use app passwords at all.
            Some(app) if found.status() != AccountStatus::Takendown => {
                (if app.privileged { Scope::AppPassPrivileged } else { Scope::AppPass }, Some(app.name))
            }
            _ => return Err(wrong_credentials()),
        }
    };
    // The second factor guards the account password; app passwords are for apps that cannot
    // ask for a code, and carry no account-management rights.
    if scope == Scope::Access && found.email_auth_factor() {
        second_factor(ctx, &found, input.auth_factor_token.as_deref()).await?;
    }
    let pair = if found.status() == AccountStatus::Takendown {
        if input.allow_takendown != Some(true) {
            return Err(taken_down());
        }
        // A taken-down session can only look at its status: its refresh token is never stored,
        // so it cannot be renewed.
        ctx.tokens.pair(found.did(), Scope::Takendown, &crate::auth::tokens_new_refresh_id())
    } else {
        issue(ctx, found.did(), scope, app_password_name.as_deref()).await?
    };
    session_output(&found, Some(&pair))
}

/// Checks (and spends) the mailed sign-in code; without one, mails a code and asks for it.
async fn second_factor(ctx: &AppContext, found: &Account, token: Option<&str>) -> XrpcResult<()> {
    use crate::account::email_token;
    use crate::mail::Purpose;
    let Some(token) = token else {
        match super::email::send_code(ctx, found.did(), Purpose::SignIn).await {
            // A code went out moments ago: the one in the inbox is still good.
            Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {}
            other => other?,
        }
        return Err(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AuthFactorTokenRequired",
            Some("A sign in code has been sent to your email address".into()),
        ));
    };
    let txn = ctx.db.begin().await.map_err(internal)?;
    email_token::verify(&txn, found.did(), Purpose::SignIn, token)
        .await
        .map_err(internal)?
        .map_err(super::email::token_error)?;
    email_token::consume(&txn, found.did(), Purpose::SignIn).await.map_err(internal)?;
    txn.commit().await.map_err(internal)
}

/// Issues a token pair and stores its refresh token.
pub async fn issue(ctx: &AppContext, did: &str, scope: Scope, app_password: Option<&str>) -> XrpcResult<TokenPair> {
    let pair = ctx.tokens.pair(did, scope, &crate::auth::tokens_new_refresh_id());
    account::store_refresh_token(&ctx.db, did, &pair.refresh_id, pair.refresh_expires_at, app_password)
        .await
        .map_err(internal)?;
    Ok(pair)
}

pub async fn get_session(ctx: &AppContext, req: &RequestContext) -> XrpcResult<gs::Output> {
    let creds = ctx.verifier().standard(req)?;
    let found = account::find(&ctx.db, Lookup::Did(&creds.did)).await.map_err(internal)?;
    let Some(found) = found.filter(|a| a.status() != AccountStatus::Takendown) else {
        return Err(XrpcError::invalid_request(format!("Could not find user info for account: {}", creds.did)));
    };
    session_output(&found, None)
}

pub async fn refresh_session(ctx: &AppContext, req: &RequestContext) -> XrpcResult<rs::Output> {
    let creds = ctx.verifier().refresh(req, false)?;
    let revoked = || XrpcError::new(StatusCode::UNAUTHORIZED, "ExpiredToken", Some("Token has been revoked".into()));
    // A revoked token (logout, password reset, deleted account) is refused before anything else.
    if account::refresh_token(&ctx.db, &creds.jti).await.map_err(internal)?.is_none() {
        return Err(revoked());
    }
    let found = account::find(&ctx.db, Lookup::Did(&creds.did)).await.map_err(internal)?;
    let Some(found) = found else {
        return Err(XrpcError::invalid_request(format!("Could not find user info for account: {}", creds.did)));
    };
    if found.status() == AccountStatus::Takendown {
        return Err(taken_down());
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    let Some(old) = account::refresh_token(&txn, &creds.jti).await.map_err(internal)? else {
        return Err(revoked());
    };
    account::delete_expired_refresh_tokens(&txn, &creds.did).await.map_err(internal)?;
    let now = crate::auth::now_secs();
    let grace_end = (now + account::REFRESH_GRACE_SECS).min(parse_time(&old.expires_at).unwrap_or(i64::MAX));
    if grace_end <= now {
        return Err(revoked());
    }
    // Every retry within the grace period gets the same successor, so a client that lost the
    // answer to its first refresh ends up with the same session, not a fork.
    let next_id = old.next_id.clone().unwrap_or_else(crate::auth::tokens_new_refresh_id);
    let grace_iso = aurora_atproto::syntax::Datetime::from_unix_micros(grace_end * 1_000_000).as_str().to_owned();
    if !account::rotate_refresh_token(&txn, &old, &next_id, &grace_iso).await.map_err(internal)? {
        return Err(XrpcError::invalid_request("The session was refreshed concurrently; retry"));
    }
    let scope = match &old.app_password_name {
        None => Scope::Access,
        Some(name) => match account::app_password(&txn, &creds.did, name).await.map_err(internal)? {
            Some(app) if app.privileged => Scope::AppPassPrivileged,
            Some(_) => Scope::AppPass,
            None => return Err(revoked()),
        },
    };
    let pair = ctx.tokens.pair(&creds.did, scope, &next_id);
    account::store_refresh_token(&txn, &creds.did, &next_id, pair.refresh_expires_at, old.app_password_name.as_deref())
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    session_output(&found, Some(&pair))
}

fn parse_time(iso: &str) -> Option<i64> {
    iso.parse::<aurora_atproto::syntax::Datetime>().ok().map(|d| d.unix_micros() / 1_000_000)
}

pub async fn delete_session(ctx: &AppContext, req: &RequestContext) -> XrpcResult<()> {
    let creds = ctx.verifier().refresh(req, true)?;
    account::delete_refresh_token(&ctx.db, &creds.jti).await.map_err(internal)
}
