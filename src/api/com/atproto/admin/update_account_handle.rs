//! `com.atproto.admin.updateAccountHandle`: the administrator gives an account any valid
//! handle (reserved names and other domains included), through the PLC directory and an
//! `#identity` event as the account's own change would.

use aurora_generated::com::atproto::admin::update_account_handle::Input;
use aurora_generated::com::atproto::server::create_account::Error as SignUpError;
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, handle, rename, Lookup};
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<()> {
    let did = &input.did;
    if account::find_actor(&ctx.db, Lookup::Did(did)).await.map_err(internal)?.is_none() {
        return Err(XrpcError::invalid_request("Account not found"));
    }
    let new_handle = match handle::check_local(input.handle.as_str(), &ctx.config.service_handle_domains) {
        Ok(local) => local,
        Err(handle::HandleError::Invalid(reason)) => return Err(SignUpError::InvalidHandle(Some(reason)).into()),
        Err(handle::HandleError::Reserved | handle::HandleError::UnsupportedDomain) => input.handle.clone(),
    };
    // A DID this server cannot update must already name the handle itself.
    if did.method() != "plc" && ctx.resolver.resolve_handle(&new_handle, true).await.as_ref() != Some(did) {
        return Err(XrpcError::invalid_request("DID is not properly configured for handle"));
    }
    let audit =
        Entry::by(&auth, "updateAccountHandle").subject(did).detail(serde_json::json!({ "handle": new_handle }));
    rename::rename(ctx, did, &new_handle, Some(audit)).await
}
