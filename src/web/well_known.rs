//! `/.well-known/atproto-did`: proves a hosted handle belongs to its DID, by the Host header.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, IntoResponse, Request, Response};

use aurora_atproto::syntax::{AtIdentifier, Handle};

use crate::context::AppContext;
use crate::repo::records;

#[handler]
pub async fn atproto_did(request: &Request, ctx: Data<&Arc<AppContext>>) -> Response {
    let host = request.uri().host().or_else(|| request.header("host")).unwrap_or_default();
    let Ok(handle) = host.split(':').next().unwrap_or_default().to_lowercase().parse::<Handle>() else {
        return (StatusCode::NOT_FOUND, "User not found").into_response();
    };
    match records::active_did(&ctx.db, ctx.reader.as_deref(), &AtIdentifier::Handle(handle)).await {
        Ok(Some(did)) => did.to_string().with_content_type("text/plain; charset=utf-8").into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "User not found").into_response(),
        Err(e) => aurora_xrpc::XrpcError::internal(e).into_response(),
    }
}

/// `/.well-known/did.json`: the document of this server's `did:web` identity.
#[handler]
pub fn did_json(ctx: Data<&Arc<AppContext>>) -> Response {
    let did = &ctx.config.service_did;
    if !did.starts_with("did:web:") {
        return (StatusCode::NOT_FOUND, "This server's DID is not a did:web").into_response();
    }
    poem::web::Json(serde_json::json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": ctx.config.public_url,
        }],
    }))
    .into_response()
}
