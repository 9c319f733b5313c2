//! One-time codes mailed to an account's address, for the flows that prove the account holder
//! reads it: confirming or changing the address, resetting the password, deleting the account,
//! signing a PLC operation, and signing in with a second factor.

use aurora_atproto::syntax::Did;
use poem::http::StatusCode;

use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::email_token::{self, TokenProblem};
use crate::account::{find, Account, Lookup};
use crate::context::AppContext;
use crate::mail::Purpose;

/// A code the client sent that does not check out, or one asked for too soon.
pub fn token_error(problem: TokenProblem) -> XrpcError {
    match problem {
        TokenProblem::Invalid => {
            XrpcError::new(StatusCode::BAD_REQUEST, "InvalidToken", Some("Token is invalid".into()))
        }
        TokenProblem::Expired => {
            XrpcError::new(StatusCode::BAD_REQUEST, "ExpiredToken", Some("Token is expired".into()))
        }
        TokenProblem::TooSoon => XrpcError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RateLimitExceeded",
            Some("A code was sent moments ago; wait before asking for another".into()),
        ),
    }
}

/// The account and its address; a client error when either is missing.
pub async fn account_with_email(ctx: &AppContext, did: &Did) -> XrpcResult<(Account, String)> {
    let found = find(&ctx.db, Lookup::Did(did))
        .await
        .map_err(XrpcError::internal)?
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    let address = found
        .email()
        .map(str::to_owned)
        .ok_or_else(|| XrpcError::invalid_request("account does not have an email address"))?;
    Ok((found, address))
}

/// Creates a code for `purpose` and mails it to the account's address.
pub async fn send_code(ctx: &AppContext, did: &Did, purpose: Purpose) -> XrpcResult<()> {
    let (found, address) = account_with_email(ctx, did).await?;
    let token = email_token::create(&ctx.db, did, purpose).await.map_err(XrpcError::internal)?.map_err(token_error)?;
    ctx.mailer.send_token(&address, found.handle().as_str(), purpose, &token).await.map_err(XrpcError::internal)
}
