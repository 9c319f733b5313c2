//! `com.atproto.server.confirmEmail`: the mailed code proves the account holder reads the
//! address.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_generated::com::atproto::server::confirm_email::{Error, Input};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, email_token};
use crate::api::codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::account as account_row;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<()> {
    let did = &auth.did;
    let (_, address) = codes::account_with_email(ctx, did)
        .await
        .map_err(|_| XrpcError::from(Error::AccountNotFound(Some("user not found".into()))))?;
    if address != input.email.trim().to_lowercase() {
        return Err(Error::InvalidEmail(Some("invalid email".into())).into());
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    email_token::verify(&txn, &ctx.db, did, Purpose::ConfirmEmail, &input.token)
        .await
        .map_err(internal)?
        .map_err(codes::token_error)?;
    email_token::consume(&txn, did, Purpose::ConfirmEmail).await.map_err(internal)?;
    account_row::Entity::update_many()
        .col_expr(account_row::Column::EmailConfirmedAt, Expr::value(Some(account::now())))
        .filter(account_row::Column::Did.eq(did))
        .exec(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)
}
