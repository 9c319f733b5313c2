//! `com.atproto.server.resetPassword`: a new password for the mailed reset code; every session
//! ends (app passwords stay).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_generated::com::atproto::server::reset_password::Input;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{email_token, password};
use crate::api::codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::{account as account_row, refresh_token};
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
    let hash = password::hash(input.password).await;
    account_row::Entity::update_many()
        .col_expr(account_row::Column::PasswordHash, Expr::value(hash))
        .filter(account_row::Column::Did.eq(did.as_str()))
        .exec(&txn)
        .await
        .map_err(internal)?;
    email_token::consume(&txn, &did, Purpose::ResetPassword).await.map_err(internal)?;
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Did.eq(did.as_str()))
        .exec(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)
}
