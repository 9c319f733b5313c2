//! `com.atproto.identity.updateHandle`: a new handle, recorded in the PLC directory (for
//! did:plc) and announced with an `#identity` event.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, SqlErr, TransactionTrait};

use aurora_generated::com::atproto::identity::update_handle::Input;
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::{self, handle, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::sequencer;

fn not_available(message: &str) -> XrpcError {
    XrpcError::declared("HandleNotAvailable", Some(message.to_owned()))
}

pub async fn update_handle(ctx: &AppContext, req: &RequestContext, input: Input) -> XrpcResult<()> {
    let creds = ctx.verifier().standard(req)?;
    let requested = input.handle.as_str().to_lowercase();
    let hosted_here = ctx.config.service_handle_domains.iter().any(|d| requested.ends_with(d.as_str()));
    let new_handle = if hosted_here {
        handle::check_local(&requested, &ctx.config.service_handle_domains)
            .map_err(|e| match e {
                handle::HandleError::Reserved => not_available("Reserved handle"),
                other => XrpcError::declared("InvalidHandle", Some(other.to_string())),
            })?
            .as_str()
            .to_owned()
    } else {
        // A handle on the person's own domain must already point at their DID.
        if ctx.resolver.resolve_handle(&requested, true).await.as_deref() != Some(creds.did.as_str()) {
            return Err(XrpcError::invalid_request("External handle did not resolve to DID"));
        }
        requested
    };
    if let Some(holder) = account::find(&ctx.db, Lookup::Handle(&new_handle)).await.map_err(internal)? {
        if holder.did() != creds.did {
            return Err(not_available(&format!("Handle already taken: {new_handle}")));
        }
    }
    if creds.did.starts_with("did:plc:") {
        super::plc_operations::update_plc_handle(ctx, &creds.did, &new_handle).await?;
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    let updated = actor::Entity::update_many()
        .col_expr(actor::Column::Handle, Expr::value(Some(new_handle.clone())))
        .filter(actor::Column::Did.eq(creds.did.as_str()))
        .exec(&txn)
        .await;
    if let Err(e) = updated {
        return Err(match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => not_available(&format!("Handle already taken: {new_handle}")),
            _ => internal(e),
        });
    }
    sequencer::identity(&txn, &creds.did, Some(&new_handle)).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}
