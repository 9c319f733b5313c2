//! `com.atproto.identity.getRecommendedDidCredentials`: what an account moving here should put
//! in its DID document (this server's rotation key, the account's signing key and handle, this
//! server as its PDS).

use serde_json::json;

use aurora_generated::com::atproto::identity::get_recommended_did_credentials::Output;
use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let did = &auth.did;
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?;
    let handle = found.as_ref().and_then(|a| a.actor.handle.clone());
    let key = crate::keys::signing_key(ctx, did).await.map_err(crate::api::internal)?;
    Ok(Output {
        rotation_keys: Some(vec![ctx.rotation_key.did_key()]),
        also_known_as: Some(handle.map(|h| vec![format!("at://{h}")]).unwrap_or_default()),
        verification_methods: Some(json!({ "atproto": key.did_key() }).into()),
        services: Some(
            json!({
                "atproto_pds": { "type": "AtprotoPersonalDataServer", "endpoint": ctx.config.public_url }
            })
            .into(),
        ),
        extra: Default::default(),
    })
}
