//! `com.atproto.identity.updateHandle`: a new handle, recorded in the PLC directory (for
//! did:plc) and announced with an `#identity` event.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, SqlErr, TransactionTrait};

use aurora_atproto::syntax::{Did, Handle};
use aurora_generated::com::atproto::identity::update_handle::Input;
use aurora_generated::com::atproto::server::create_account::Error as SignUpError;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, handle, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::actor;
use crate::plc::Operation;
use crate::sequencer;

// updateHandle's lexicon declares no errors; the reference answers with createAccount's for the
// same handle problems, so those generated errors are used here.
fn not_available(message: &str) -> XrpcError {
    SignUpError::HandleNotAvailable(Some(message.to_owned())).into()
}

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<()> {
    let did = &auth.did;
    let requested = input.handle;
    let new_handle = match handle::check_local(requested.as_str(), &ctx.config.service_handle_domains) {
        Ok(local) => local,
        Err(handle::HandleError::Reserved) => return Err(not_available("Reserved handle")),
        Err(handle::HandleError::Invalid(reason)) => {
            return Err(SignUpError::InvalidHandle(Some(reason)).into());
        }
        // A handle on the person's own domain must already point at their DID.
        Err(handle::HandleError::UnsupportedDomain) => {
            if ctx.resolver.resolve_handle(&requested, true).await.as_ref() != Some(did) {
                return Err(XrpcError::invalid_request("External handle did not resolve to DID"));
            }
            requested
        }
    };
    if let Some(holder) = account::find(&ctx.db, Lookup::Handle(&new_handle)).await.map_err(internal)? {
        if holder.did() != did {
            return Err(not_available(&format!("Handle already taken: {new_handle}")));
        }
    }
    if auth.did.method() == "plc" {
        update_plc_handle(ctx, did, &new_handle).await?;
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
    sequencer::identity(&txn, did, Some(&new_handle)).await.map_err(internal)?;
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
