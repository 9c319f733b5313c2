//! `com.atproto.server.createSession`: signs in with the account password (and a mailed code
//! when the account asks for one) or an app password.

use poem::http::StatusCode;
use sea_orm::TransactionTrait;

use aurora_atproto::syntax::AtIdentifier;
use aurora_generated::com::atproto::server::create_session::{Input, Output};
use aurora_xrpc::{XrpcError, XrpcResult};

use super::taken_down;
use crate::account::{self, email_token, password, Account, Lookup};
use crate::api::codes;
use crate::api::internal;
use crate::auth::{Holder, Scope, TokenPair};
use crate::context::AppContext;
use crate::mail::Purpose;

/// Longest password a login compares (longer ones cannot have been set).
const MAX_LOGIN_PASSWORD: usize = 512;

fn wrong_credentials() -> XrpcError {
    XrpcError::auth_required("Invalid identifier or password")
}

pub async fn handle(ctx: &AppContext, input: Input) -> XrpcResult<Output> {
    if input.password.len() > MAX_LOGIN_PASSWORD {
        return Err(XrpcError::auth_required("Password too long. Consider resetting your password."));
    }
    let identifier = input.identifier.trim().to_lowercase();
    let found = if identifier.contains('@') {
        account::find(&ctx.db, Lookup::Email(&identifier)).await.map_err(internal)?
    } else {
        match identifier.parse::<AtIdentifier>() {
            Ok(identifier) => account::find_by_identifier(&ctx.db, &identifier).await.map_err(internal)?,
            // Neither a DID nor a handle names no account.
            Err(_) => None,
        }
    };
    let Some(found) = found else {
        password::verify_nothing(input.password).await?;
        return Err(wrong_credentials());
    };
    let Some(credentials) = found.account.clone() else {
        password::verify_nothing(input.password).await?;
        return Err(wrong_credentials());
    };
    let (scope, app_password_name) = if password::verify(input.password.clone(), credentials.password_hash).await? {
        (Scope::Access, None)
    } else {
        let hash = password::hash_app_password(found.did(), input.password).await?;
        match account::app_password_by_hash(&ctx.db, found.did(), &hash).await.map_err(internal)? {
            // A taken-down account may not use app passwords at all.
            Some(app) if !found.status().is_taken_down() => {
                (if app.privileged { Scope::AppPassPrivileged } else { Scope::AppPass }, Some(app.name))
            }
            _ => return Err(wrong_credentials()),
        }
    };
    // The second factor guards the account password; app passwords are for apps that cannot
    // ask for a code, and carry no account-management rights.
    if scope == Scope::Access {
        if account::totp::is_enabled(&ctx.db, found.did()).await.map_err(internal)? {
            authenticator_code(ctx, &found, input.auth_factor_token.as_deref()).await?;
        } else if found.email_auth_factor() {
            second_factor(ctx, &found, input.auth_factor_token.as_deref()).await?;
        }
    }
    let pair = if found.status().is_taken_down() {
        if input.allow_takendown != Some(true) {
            return Err(taken_down());
        }
        // A taken-down session can only look at its status: its refresh token is never stored,
        // so it cannot be renewed.
        let holder = Holder { did: found.did(), generation: found.token_generation(), app_password: None };
        ctx.tokens.pair(&holder, Scope::Takendown, &crate::auth::tokens_new_refresh_id())
    } else {
        let holder = Holder {
            did: found.did(),
            generation: found.token_generation(),
            app_password: app_password_name.as_deref(),
        };
        issue(ctx, &holder, scope).await?
    };
    Ok(session_output!(Output, &found, access_jwt: pair.access_jwt, refresh_jwt: pair.refresh_jwt))
}

/// Checks (and spends) the mailed sign-in code; without one, mails a code and asks for it.
async fn second_factor(ctx: &AppContext, found: &Account, token: Option<&str>) -> XrpcResult<()> {
    let Some(token) = token else {
        match codes::send_code(ctx, found.did(), Purpose::SignIn).await {
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
    email_token::verify(&txn, &ctx.db, found.did(), Purpose::SignIn, token)
        .await
        .map_err(internal)?
        .map_err(codes::token_error)?;
    email_token::consume(&txn, found.did(), Purpose::SignIn).await.map_err(internal)?;
    txn.commit().await.map_err(internal)
}

/// Checks the code from the account's authenticator app (or a recovery code), which clients
/// send in `authFactorToken` as they would a mailed code.
async fn authenticator_code(ctx: &AppContext, found: &Account, token: Option<&str>) -> XrpcResult<()> {
    let Some(token) = token else {
        return Err(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AuthFactorTokenRequired",
            Some("A code from your authenticator app is required".into()),
        ));
    };
    match account::totp::verify(ctx, found.did(), found.handle().as_str(), token).await {
        Ok(()) => Ok(()),
        Err(account::totp::TotpError::WrongCode) => Err(codes::token_error(email_token::TokenProblem::Invalid)),
        Err(other) => Err(internal(other)),
    }
}

/// Issues a token pair and stores its refresh token.
async fn issue(ctx: &AppContext, holder: &Holder<'_>, scope: Scope) -> XrpcResult<TokenPair> {
    let pair = ctx.tokens.pair(holder, scope, &crate::auth::tokens_new_refresh_id());
    account::store_refresh_token(&ctx.db, holder.did, &pair.refresh_id, pair.refresh_expires_at, holder.app_password)
        .await
        .map_err(internal)?;
    Ok(pair)
}
