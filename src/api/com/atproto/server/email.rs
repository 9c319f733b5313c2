//! Email: confirming an address, changing it, resetting a password, and deleting the account,
//! each proved by a one-time code sent to the account's address.

use poem::http::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_generated::com::atproto::server::{
    confirm_email as ce, delete_account as dla, request_email_update as reu, request_password_reset as rpr,
    reset_password as rp, update_email as ue,
};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::email_token::{self, TokenProblem};
use crate::account::{self, email, password, Account, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{account as account_row, refresh_token};
use crate::mail::Purpose;

pub(crate) fn token_error(problem: TokenProblem) -> XrpcError {
    match problem {
        TokenProblem::Invalid => XrpcError::declared("InvalidToken", Some("Token is invalid".into())),
        TokenProblem::Expired => XrpcError::declared("ExpiredToken", Some("Token is expired".into())),
        TokenProblem::TooSoon => XrpcError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RateLimitExceeded",
            Some("A code was sent moments ago; wait before asking for another".into()),
        ),
    }
}

async fn account_with_email(ctx: &AppContext, did: &str) -> XrpcResult<(Account, String)> {
    let found = account::find(&ctx.db, Lookup::Did(did))
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    let address = found
        .email()
        .map(str::to_owned)
        .ok_or_else(|| XrpcError::invalid_request("account does not have an email address"))?;
    Ok((found, address))
}

/// Creates a code for `purpose` and mails it to the account's address.
pub(crate) async fn send_code(ctx: &AppContext, did: &str, purpose: Purpose) -> XrpcResult<()> {
    let (found, address) = account_with_email(ctx, did).await?;
    let token = email_token::create(&ctx.db, did, purpose).await.map_err(internal)?.map_err(token_error)?;
    ctx.mailer.send_token(&address, found.handle(), purpose, &token).await.map_err(internal)
}

pub async fn request_email_confirmation(ctx: &AppContext, req: &RequestContext) -> XrpcResult<()> {
    let creds = ctx.verifier().standard(req)?;
    send_code(ctx, &creds.did, Purpose::ConfirmEmail).await
}

pub async fn confirm_email(ctx: &AppContext, req: &RequestContext, input: ce::Input) -> XrpcResult<()> {
    let creds = ctx.verifier().standard(req)?;
    let (_, address) = account_with_email(ctx, &creds.did)
        .await
        .map_err(|_| XrpcError::from(ce::Error::AccountNotFound(Some("user not found".into()))))?;
    if address != input.email.trim().to_lowercase() {
        return Err(ce::Error::InvalidEmail(Some("invalid email".into())).into());
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    email_token::verify(&txn, &creds.did, Purpose::ConfirmEmail, &input.token)
        .await
        .map_err(internal)?
        .map_err(token_error)?;
    email_token::consume(&txn, &creds.did, Purpose::ConfirmEmail).await.map_err(internal)?;
    account_row::Entity::update_many()
        .col_expr(account_row::Column::EmailConfirmedAt, Expr::value(Some(account::now())))
        .filter(account_row::Column::Did.eq(creds.did.as_str()))
        .exec(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)
}

pub async fn request_email_update(ctx: &AppContext, req: &RequestContext) -> XrpcResult<reu::Output> {
    let creds = ctx.verifier().full(req)?;
    let (found, _) = account_with_email(ctx, &creds.did).await?;
    // Only a confirmed address has to approve its replacement.
    let token_required = found.email_confirmed();
    if token_required {
        send_code(ctx, &creds.did, Purpose::UpdateEmail).await?;
    }
    Ok(reu::Output { token_required, extra: Default::default() })
}

pub async fn update_email(ctx: &AppContext, req: &RequestContext, input: ue::Input) -> XrpcResult<()> {
    let creds = ctx.verifier().full(req)?;
    let (found, _) = account_with_email(ctx, &creds.did).await?;
    let address = input.email.trim().to_lowercase();
    if !email::is_valid(&address) {
        return Err(XrpcError::invalid_request("This email address is not supported, please use a different email."));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    match input.token.as_deref() {
        Some(token) => email_token::verify(&txn, &creds.did, Purpose::UpdateEmail, token)
            .await
            .map_err(internal)?
            .map_err(token_error)?,
        None if found.email_confirmed() => {
            return Err(ue::Error::TokenRequired(Some("confirmation token required".into())).into())
        }
        None => {}
    }
    if found.email() != Some(address.as_str()) && account::email_taken(&txn, &address).await.map_err(internal)? {
        return Err(XrpcError::invalid_request("This email address is already in use, please use a different email."));
    }
    let changed = found.email() != Some(address.as_str());
    // The second factor needs an address the user has proved they read.
    if input.email_auth_factor == Some(true) && (changed || !found.email_confirmed()) {
        return Err(XrpcError::invalid_request("Confirm your email address before using it to sign in."));
    }
    let mut update = account_row::Entity::update_many().filter(account_row::Column::Did.eq(creds.did.as_str()));
    if changed {
        update = update
            .col_expr(account_row::Column::Email, Expr::value(Some(address)))
            .col_expr(account_row::Column::EmailConfirmedAt, Expr::value(Option::<String>::None))
            // A new, unconfirmed address cannot be a sign-in factor.
            .col_expr(account_row::Column::EmailAuthFactor, Expr::value(false));
    }
    if let Some(factor) = input.email_auth_factor {
        update = update.col_expr(account_row::Column::EmailAuthFactor, Expr::value(factor && !changed));
    }
    if changed || input.email_auth_factor.is_some() {
        update.exec(&txn).await.map_err(internal)?;
    }
    email_token::delete_all(&txn, &creds.did).await.map_err(internal)?;
    txn.commit().await.map_err(internal)
}

pub async fn request_password_reset(ctx: &AppContext, input: rpr::Input) -> XrpcResult<()> {
    let address = input.email.trim().to_lowercase();
    let found = account::find(&ctx.db, Lookup::Email(&address)).await.map_err(internal)?;
    // Unknown addresses get the same answer, so the endpoint does not reveal who has an account.
    let Some(found) = found else { return Ok(()) };
    match send_code(ctx, found.did(), Purpose::ResetPassword).await {
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => Err(e),
        other => other,
    }
}

pub async fn reset_password(ctx: &AppContext, input: rp::Input) -> XrpcResult<()> {
    if input.password.len() > 256 {
        return Err(XrpcError::invalid_request("Invalid password length."));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    let did = email_token::find_did(&txn, Purpose::ResetPassword, &input.token)
        .await
        .map_err(internal)?
        .map_err(token_error)?;
    let hash = password::hash(input.password).await;
    account_row::Entity::update_many()
        .col_expr(account_row::Column::PasswordHash, Expr::value(hash))
        .filter(account_row::Column::Did.eq(did.as_str()))
        .exec(&txn)
        .await
        .map_err(internal)?;
    email_token::consume(&txn, &did, Purpose::ResetPassword).await.map_err(internal)?;
    // A new password ends every session; app passwords stay.
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Did.eq(did.as_str()))
        .exec(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)
}

pub async fn request_account_delete(ctx: &AppContext, req: &RequestContext) -> XrpcResult<()> {
    let creds = ctx.verifier().full(req)?;
    send_code(ctx, &creds.did, Purpose::DeleteAccount).await
}

/// Deletes the account once its password and the mailed token check out (see
/// [`account::deletion`] for what deleting does).
pub async fn delete_account(ctx: &AppContext, input: dla::Input) -> XrpcResult<()> {
    if input.password.len() > 512 {
        return Err(XrpcError::auth_required("Password too long. Consider resetting your password."));
    }
    let did = input.did.as_str();
    let found = account::find(&ctx.db, Lookup::Did(did))
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    let Some(stored) = found.account.as_ref().map(|a| a.password_hash.clone()) else {
        return Err(XrpcError::auth_required("Invalid did or password"));
    };
    if !password::verify(input.password, stored).await {
        return Err(XrpcError::auth_required("Invalid did or password"));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    email_token::verify(&txn, did, Purpose::DeleteAccount, &input.token)
        .await
        .map_err(internal)?
        .map_err(token_error)?;
    account::deletion::delete(ctx, txn, did).await.map_err(internal)
}
