//! `com.atproto.admin.updateAccountEmail`: the administrator sets an account's address, which
//! is then unconfirmed; pending mailed codes are void.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, SqlErr, TransactionTrait};

use aurora_generated::com::atproto::admin::update_account_email::Input;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::email_token;
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::account as account_row;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<()> {
    let missing = || XrpcError::invalid_request(format!("Account does not exist: {}", input.account.as_str()));
    let found = super::find_identified(ctx, &input.account).await?.ok_or_else(missing)?;
    let did = found.did().clone();
    let email = input.email.trim().to_lowercase();
    let txn = ctx.db.begin().await.map_err(internal)?;
    let updated = account_row::Entity::update_many()
        .col_expr(account_row::Column::Email, Expr::value(Some(email.clone())))
        .col_expr(account_row::Column::EmailConfirmedAt, Expr::value(Option::<String>::None))
        .filter(account_row::Column::Did.eq(&did))
        .exec(&txn)
        .await;
    match updated {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(XrpcError::invalid_request("This email address is already in use, please use a different one."))
        }
        Err(e) => return Err(internal(e)),
        Ok(r) if r.rows_affected == 0 => return Err(missing()),
        Ok(_) => {}
    }
    email_token::delete_all(&txn, &did).await.map_err(internal)?;
    Entry::by(&auth, "updateAccountEmail").subject(&did).write(&txn).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    Ok(())
}
