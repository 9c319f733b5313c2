//! `com.atproto.identity.signPlcOperation`: signs a PLC operation with this server's rotation
//! key, after the mailed code checks out (an account moving away, or changing its keys).

use aurora_generated::com::atproto::identity::sign_plc_operation::{Input, Output};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{Unknown, XrpcError, XrpcResult};

use crate::account::email_token;
use crate::api::codes;
use crate::api::internal;
use crate::context::AppContext;
use crate::mail::Purpose;
use crate::plc::Operation;

fn map_field<T: serde::de::DeserializeOwned>(value: Option<Unknown>, name: &str) -> XrpcResult<Option<T>> {
    value
        .map(|v| {
            v.into_json()
                .and_then(serde_json::from_value)
                .map_err(|e| XrpcError::invalid_request(format!("{name} is malformed: {e}")))
        })
        .transpose()
}

pub async fn handle(ctx: &AppContext, auth: Access, input: Input) -> XrpcResult<Output> {
    let did = &auth.did;
    let Some(token) = input.token.as_deref() else {
        return Err(XrpcError::invalid_request("email confirmation token required to sign PLC operations"));
    };
    email_token::verify(&ctx.db, &ctx.db, did, Purpose::PlcOperation, token)
        .await
        .map_err(internal)?
        .map_err(codes::token_error)?;
    let last = ctx.plc.last_operation(did).await.map_err(XrpcError::from)?;
    let op = Operation {
        rotation_keys: input.rotation_keys.unwrap_or(last.op.rotation_keys.clone()),
        verification_methods: map_field(input.verification_methods, "verificationMethods")?
            .unwrap_or(last.op.verification_methods.clone()),
        also_known_as: input.also_known_as.unwrap_or(last.op.also_known_as.clone()),
        services: map_field(input.services, "services")?.unwrap_or(last.op.services.clone()),
        prev: Some(last.cid()),
    };
    let signed = op.sign(&ctx.rotation_key);
    email_token::consume(&ctx.db, did, Purpose::PlcOperation).await.map_err(internal)?;
    Ok(Output { operation: serde_json::to_value(&signed).map_err(internal)?.into(), extra: Default::default() })
}
