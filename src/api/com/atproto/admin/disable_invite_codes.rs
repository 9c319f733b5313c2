//! `com.atproto.admin.disableInviteCodes`: codes, or every code of some accounts, stop working.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait};

use aurora_generated::com::atproto::admin::disable_invite_codes::Input;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::invite_code;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<()> {
    let codes = input.codes.unwrap_or_default();
    let accounts = input.accounts.unwrap_or_default();
    if accounts.iter().any(|a| a == "admin") {
        return Err(XrpcError::invalid_request("cannot disable admin invite codes"));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    if !codes.is_empty() || !accounts.is_empty() {
        invite_code::Entity::update_many()
            .col_expr(invite_code::Column::Disabled, Expr::value(true))
            .filter(
                Condition::any()
                    .add(invite_code::Column::Code.is_in(codes.iter().cloned()))
                    .add(invite_code::Column::ForAccount.is_in(accounts.iter().cloned())),
            )
            .exec(&txn)
            .await
            .map_err(internal)?;
    }
    Entry::by(&auth, "disableInviteCodes")
        .detail(serde_json::json!({ "codes": codes, "accounts": accounts }))
        .write(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)
}
