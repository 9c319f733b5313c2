//! `com.atproto.admin.deleteAccount`: the administrator deletes an account outright (see
//! `account::deletion`); an `#account` event with `deleted` announces it.

use sea_orm::TransactionTrait;

use aurora_generated::com::atproto::admin::delete_account::Input;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::XrpcResult;

use crate::account::{self, Lookup};
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<()> {
    let did = &input.did;
    // As the reference: deleting an account that is not here succeeds and changes nothing.
    if account::find_actor(&ctx.db, Lookup::Did(did)).await.map_err(internal)?.is_none() {
        return Ok(());
    }
    let txn = ctx.db.begin().await.map_err(internal)?;
    Entry::by(&auth, "deleteAccount").subject(did).write(&txn).await.map_err(internal)?;
    account::deletion::delete(ctx, txn, did).await.map_err(internal)?;
    ctx.gate.forget(did);
    Ok(())
}
