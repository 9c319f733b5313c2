//! PLC operations an account asks its PDS for: recommended credentials (for moving here),
//! signing an operation with this server's rotation key after an emailed code (for moving
//! away or changing keys), and submitting an operation (for finishing a move here).

use aurora_generated::com::atproto::identity::{
    get_recommended_did_credentials as grdc, sign_plc_operation as spo, submit_plc_operation as sub,
};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};
use serde_json::{json, Value};

use crate::account::email_token;
use crate::account::{self, Lookup};
use crate::api::com::atproto::server::email as email_codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::mail::Purpose;
use crate::plc::{Operation, SignedOperation};
use crate::sequencer;

pub async fn recommended_credentials(ctx: &AppContext, req: &RequestContext) -> XrpcResult<grdc::Output> {
    let creds = ctx.verifier().standard(req)?;
    let found = account::find(&ctx.db, Lookup::Did(&creds.did)).await.map_err(internal)?;
    let handle = found.as_ref().and_then(|a| a.actor.handle.clone());
    let key = crate::keys::signing_key(ctx, &creds.did).await?;
    Ok(grdc::Output {
        rotation_keys: Some(vec![ctx.rotation_key.did_key()]),
        also_known_as: Some(handle.map(|h| vec![format!("at://{h}")]).unwrap_or_default()),
        verification_methods: Some(json!({ "atproto": key.did_key() })),
        services: Some(json!({
            "atproto_pds": { "type": "AtprotoPersonalDataServer", "endpoint": ctx.config.public_url }
        })),
        extra: Default::default(),
    })
}

pub async fn request_signature(ctx: &AppContext, req: &RequestContext) -> XrpcResult<()> {
    let creds = ctx.verifier().full(req)?;
    email_codes::send_code(ctx, &creds.did, Purpose::PlcOperation).await
}

fn map_field<T: serde::de::DeserializeOwned>(value: Option<Value>, name: &str) -> XrpcResult<Option<T>> {
    value
        .map(|v| serde_json::from_value(v).map_err(|e| XrpcError::invalid_request(format!("{name} is malformed: {e}"))))
        .transpose()
}

pub async fn sign(ctx: &AppContext, req: &RequestContext, input: spo::Input) -> XrpcResult<spo::Output> {
    let creds = ctx.verifier().full(req)?;
    let Some(token) = input.token.as_deref() else {
        return Err(XrpcError::invalid_request("email confirmation token required to sign PLC operations"));
    };
    email_token::verify(&ctx.db, &creds.did, Purpose::PlcOperation, token)
        .await
        .map_err(internal)?
        .map_err(email_codes::token_error)?;
    let last = ctx.plc.last_operation(&creds.did).await.map_err(XrpcError::from)?;
    let op = Operation {
        rotation_keys: input.rotation_keys.unwrap_or(last.op.rotation_keys.clone()),
        verification_methods: map_field(input.verification_methods, "verificationMethods")?
            .unwrap_or(last.op.verification_methods.clone()),
        also_known_as: input.also_known_as.unwrap_or(last.op.also_known_as.clone()),
        services: map_field(input.services, "services")?.unwrap_or(last.op.services.clone()),
        prev: Some(last.cid()),
    };
    let signed = op.sign(&ctx.rotation_key);
    email_token::consume(&ctx.db, &creds.did, Purpose::PlcOperation).await.map_err(internal)?;
    Ok(spo::Output { operation: serde_json::to_value(&signed).map_err(internal)?, extra: Default::default() })
}

pub async fn submit(ctx: &AppContext, req: &RequestContext, input: sub::Input) -> XrpcResult<()> {
    let creds = ctx.verifier().standard(req)?;
    let op: SignedOperation = serde_json::from_value(input.operation)
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
    let key = crate::keys::signing_key(ctx, &creds.did).await?;
    if op.op.verification_methods.get("atproto") != Some(&key.did_key()) {
        return Err(XrpcError::invalid_request("Incorrect signing key"));
    }
    let found = account::find(&ctx.db, Lookup::Did(&creds.did)).await.map_err(internal)?;
    let handle = found.as_ref().and_then(|a| a.actor.handle.clone());
    if let Some(handle) = &handle {
        if !op.op.also_known_as.iter().any(|aka| aka == &format!("at://{handle}")) {
            return Err(XrpcError::invalid_request("Incorrect handle in alsoKnownAs"));
        }
    }
    ctx.plc.submit(&creds.did, &op).await.map_err(XrpcError::from)?;
    let _ = ctx.resolver.did_doc(&creds.did, true).await;
    sequencer::identity(&ctx.db, &creds.did, handle.as_deref()).await.map_err(internal)?;
    ctx.firehose.poke();
    Ok(())
}

/// Points the DID's `alsoKnownAs` at a new handle, signed with this server's rotation key.
pub async fn update_plc_handle(ctx: &AppContext, did: &str, handle: &str) -> XrpcResult<()> {
    let last = ctx.plc.last_operation(did).await.map_err(XrpcError::from)?;
    let mut also_known_as = vec![format!("at://{handle}")];
    also_known_as.extend(last.op.also_known_as.iter().filter(|aka| !aka.starts_with("at://")).cloned());
    let op = Operation { also_known_as, prev: Some(last.cid()), ..last.op.clone() };
    ctx.plc.submit(did, &op.sign(&ctx.rotation_key)).await.map_err(XrpcError::from)
}
