//! `com.atproto.server.resetPassword`: a new password for the mailed reset code; every session
//! ends (app passwords stay).

use sea_orm::TransactionTrait;

use aurora_generated::com::atproto::server::reset_password::Input;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, email_token, password};
use crate::api::codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, input: Input) -> XrpcResult<()> {
    if input.password.len() > 256 {
        return Err(XrpcError::invalid_request("Invalid password length."));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    let did = email_token::find_did(&txn, Purpose::ResetPassword, &input.token)
        .await
        .map_err(internal)?
        .map_err(codes::token_error)?;
    let hash = password::hash(input.password).await?;
    account::set_password(&txn, &did, hash).await.map_err(internal)?;
    email_token::consume(&txn, &did, Purpose::ResetPassword).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    ctx.gate.forget(&did);
    Ok(())
}
