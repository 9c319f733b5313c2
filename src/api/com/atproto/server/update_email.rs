//! `com.atproto.server.updateEmail`: a new address (unconfirmed until confirmed again), and
//! whether sign-ins need a mailed code.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_generated::com::atproto::server::update_email::{Error, Input};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, email, email_token};
use crate::api::codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::account as account_row;
use crate::mail::Purpose;

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<()> {
    let did = &auth.did;
    let (found, _) = codes::account_with_email(ctx, did).await?;
    let address = input.email.trim().to_lowercase();
    if !email::is_valid(&address) {
        return Err(XrpcError::invalid_request("This email address is not supported, please use a different email."));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    match input.token.as_deref() {
        Some(token) => email_token::verify(&txn, &ctx.db, did, Purpose::UpdateEmail, token)
            .await
            .map_err(internal)?
            .map_err(codes::token_error)?,
        None if found.email_confirmed() => {
            return Err(Error::TokenRequired(Some("confirmation token required".into())).into())
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
    let mut update = account_row::Entity::update_many().filter(account_row::Column::Did.eq(did));
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
    email_token::delete_all(&txn, did).await.map_err(internal)?;
    txn.commit().await.map_err(internal)
}
