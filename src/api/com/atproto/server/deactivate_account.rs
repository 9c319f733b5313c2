//! `com.atproto.server.deactivateAccount`: the account stops being served (before moving
//! away, say) until it is activated again; an `#account` event announces it.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_generated::com::atproto::server::deactivate_account::Input;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::sequencer::{self, AccountStatus};

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<()> {
    let did = &auth.did;
    let found = account::find(&ctx.db, Lookup::Did(did))
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::invalid_request("Account not found"))?;
    let txn = ctx.db.begin().await.map_err(internal)?;
    actor::Entity::update_many()
        .col_expr(actor::Column::DeactivatedAt, Expr::value(Some(account::now())))
        .col_expr(actor::Column::DeleteAfter, Expr::value(input.delete_after.map(|d| d.as_str().to_owned())))
        .filter(actor::Column::Did.eq(did))
        .exec(&txn)
        .await
        .map_err(internal)?;
    // A taken-down account stays reported as taken down: takedown outranks deactivation.
    let status = if found.status().is_taken_down() { found.status() } else { AccountStatus::Deactivated };
    sequencer::account(&txn, did, status).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}
