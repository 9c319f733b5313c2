//! `com.atproto.identity.submitPlcOperation`: an account moving here submits the PLC operation
//! that points its identity at this server, checked to name this server's rotation key, its
//! endpoint, the account's signing key and handle.

use aurora_generated::com::atproto::identity::submit_plc_operation::Input;
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::plc::SignedOperation;
use crate::sequencer;

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<()> {
    let did = &auth.did;
    let op: SignedOperation = (input.operation.into_json().and_then(serde_json::from_value))
        .map_err(|e| XrpcError::invalid_request(format!("operation is not a PLC operation: {e}")))?;
    if op.kind != "plc_operation" {
        return Err(XrpcError::invalid_request("operation is not a plc_operation"));
    }
    if !op.op.rotation_keys.contains(&ctx.rotation_key.did_key()) {
        return Err(XrpcError::invalid_request("Rotation keys do not include server's rotation key"));
    }
    let service = op.op.services.get("atproto_pds");
    if service.map(|s| (s.kind.as_str(), s.endpoint.trim_end_matches('/')))
        != Some(("AtprotoPersonalDataServer", ctx.config.public_url.as_str()))
    {
        return Err(XrpcError::invalid_request("Incorrect endpoint on atproto_pds service"));
    }
    let key = crate::keys::signing_key(ctx, did).await.map_err(crate::api::internal)?;
    if op.op.verification_methods.get("atproto") != Some(&key.did_key()) {
        return Err(XrpcError::invalid_request("Incorrect signing key"));
    }
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?;
    let handle = found.as_ref().and_then(|a| a.actor.handle.clone());
    if let Some(handle) = &handle {
        if !op.op.also_known_as.iter().any(|aka| aka == &format!("at://{handle}")) {
            return Err(XrpcError::invalid_request("Incorrect handle in alsoKnownAs"));
        }
    }
    ctx.plc.submit(did, &op).await.map_err(XrpcError::from)?;
    let _ = ctx.resolver.did_doc(did, true).await;
    sequencer::identity(&ctx.db, did, handle.as_ref()).await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}
