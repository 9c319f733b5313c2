//! `com.atproto.admin.updateAccountPassword`: the administrator sets an account's password;
//! every password session ends (app passwords stay), as after a reset.

use sea_orm::TransactionTrait;

use aurora_generated::com::atproto::admin::update_account_password::Input;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, password};
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<()> {
    if input.password.len() > 256 {
        return Err(XrpcError::invalid_request("Invalid password length."));
    }
    let did = &input.did;
    let hash = password::hash(input.password).await?;
    let txn = ctx.db.begin().await.map_err(internal)?;
    account::set_password(&txn, did, hash).await.map_err(internal)?;
    Entry::by(&auth, "updateAccountPassword").subject(did).write(&txn).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    ctx.gate.forget(did);
    Ok(())
}
