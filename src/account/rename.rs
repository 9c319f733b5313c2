//! Giving an account a new handle: the PLC directory first (for did:plc), then the handle
//! column and an `#identity` event in one transaction. The account holder's `updateHandle` and
//! the administrator's `updateAccountHandle` both end here once they have decided the handle.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, SqlErr, TransactionTrait};

use aurora_atproto::syntax::{Did, Handle};
use aurora_generated::com::atproto::server::create_account::Error as SignUpError;
use aurora_xrpc::{XrpcError, XrpcResult};

use super::{find, Lookup};
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::plc::Operation;
use crate::sequencer;

// updateHandle's lexicon declares no errors; the reference answers with createAccount's for the
// same handle problems, so those generated errors are used here.
pub fn not_available(message: &str) -> XrpcError {
    SignUpError::HandleNotAvailable(Some(message.to_owned())).into()
}

/// Moves `did` to `new_handle`, unless another account holds it; `audit` is written with the
/// change when an operator made it.
pub async fn rename(ctx: &AppContext, did: &Did, new_handle: &Handle, audit: Option<Entry<'_>>) -> XrpcResult<()> {
    if let Some(holder) = find(&ctx.db, Lookup::Handle(new_handle)).await.map_err(internal)? {
        if holder.did() != did {
            return Err(not_available(&format!("Handle already taken: {new_handle}")));
        }
    }
    if did.method() == "plc" {
        update_plc_handle(ctx, did, new_handle).await?;
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    let updated = actor::Entity::update_many()
        .col_expr(actor::Column::Handle, Expr::value(Some(new_handle.clone())))
        .filter(actor::Column::Did.eq(did))
        .exec(&txn)
        .await;
    if let Err(e) = updated {
        return Err(match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => not_available(&format!("Handle already taken: {new_handle}")),
            _ => internal(e),
        });
    }
    sequencer::identity(&txn, did, Some(new_handle)).await.map_err(internal)?;
    if let Some(audit) = audit {
        audit.write(&txn).await.map_err(internal)?;
    }
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}

/// Points the DID's `alsoKnownAs` at a new handle, signed with this server's rotation key.
async fn update_plc_handle(ctx: &AppContext, did: &Did, handle: &Handle) -> XrpcResult<()> {
    let last = ctx.plc.last_operation(did).await.map_err(XrpcError::from)?;
    let mut also_known_as = vec![format!("at://{handle}")];
    also_known_as.extend(last.op.also_known_as.iter().filter(|aka| !aka.starts_with("at://")).cloned());
    let op = Operation { also_known_as, prev: Some(last.cid()), ..last.op.clone() };
    ctx.plc.submit(did, &op.sign(&ctx.rotation_key)).await.map_err(XrpcError::from)
}
