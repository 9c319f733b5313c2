//! `com.atproto.server.deleteAccount`: deletes the account once the mailed code and its
//! password check out (see `account::deletion` for what deleting does).

use sea_orm::TransactionTrait;

use aurora_generated::com::atproto::server::delete_account::Input;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, email_token, password, Lookup};
use crate::api::codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, input: Input) -> XrpcResult<()> {
    if input.password.len() > 512 {
        return Err(XrpcError::auth_required("Password too long. Consider resetting your password."));
    }
    let did = &input.did;
    let found = account::find(&ctx.db, Lookup::Did(did))
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    let Some(stored) = found.account.as_ref().map(|a| a.password_hash.clone()) else {
        return Err(XrpcError::auth_required("Invalid did or password"));
    };
    // The mailed code first: checked before the password, a wrong password is never told apart
    // from a right one without the second factor.
    let txn = ctx.db.begin().await.map_err(internal)?;
    email_token::verify(&txn, &ctx.db, did, Purpose::DeleteAccount, &input.token)
        .await
        .map_err(internal)?
        .map_err(codes::token_error)?;
    if !password::verify(input.password, stored).await? {
        return Err(XrpcError::auth_required("Invalid did or password"));
    }
    account::deletion::delete(ctx, txn, did).await.map_err(internal)?;
    ctx.gate.forget(did);
    Ok(())
}
