//! `com.atproto.identity.updateHandle`: a new handle, recorded in the PLC directory (for
//! did:plc) and announced with an `#identity` event.

use aurora_generated::com::atproto::identity::update_handle::Input;
use aurora_generated::com::atproto::server::create_account::Error as SignUpError;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::handle;
use crate::account::rename::{not_available, rename};
use crate::context::AppContext;

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
    rename(ctx, did, &new_handle, None).await
}
