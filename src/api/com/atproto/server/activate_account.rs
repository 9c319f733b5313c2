//! `com.atproto.server.activateAccount`: an account moving here goes live once its identity
//! points at this server: `#account`, `#identity` and `#sync` events announce it.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use super::{account_not_found, identity_problem};
use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::sequencer::{self, AccountStatus};

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<()> {
    let did = &auth.did;
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?.ok_or_else(account_not_found)?;
    if found.status().is_taken_down() {
        return Err(account_not_found());
    }
    if let Some(problem) = identity_problem(ctx, did).await? {
        return Err(XrpcError::invalid_request(problem));
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    actor::Entity::update_many()
        .col_expr(actor::Column::DeactivatedAt, Expr::value(Option::<String>::None))
        .col_expr(actor::Column::DeleteAfter, Expr::value(Option::<String>::None))
        .filter(actor::Column::Did.eq(did))
        .exec(&txn)
        .await
        .map_err(internal)?;
    sequencer::account(&txn, did, AccountStatus::Active).await.map_err(internal)?;
    sequencer::identity(&txn, did, found.actor.handle.as_ref()).await.map_err(internal)?;
    if let Some((_, commit)) = crate::repo::current_commit(&txn, did).await.map_err(internal)? {
        sequencer::sync(&txn, did, &commit).await.map_err(internal)?;
    }
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}
