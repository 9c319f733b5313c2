//! Discovery: the protected-resource and authorization-server metadata documents, and the
//! (empty) key set: access tokens are signed with a secret only this server holds.

use std::sync::Arc;

use poem::http::HeaderValue;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse, Response};
use serde_json::json;

use super::{issuer, jose::ALGORITHMS};
use crate::context::AppContext;

fn cacheable(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert("cache-control", HeaderValue::from_static("max-age=300"));
    response.headers_mut().insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response
}

#[handler]
pub fn protected_resource(ctx: Data<&Arc<AppContext>>) -> Response {
    let issuer = issuer(&ctx.config);
    cacheable(json!({
        "resource": issuer,
        "authorization_servers": [issuer],
        "scopes_supported": [],
        "bearer_methods_supported": ["header"],
        "resource_documentation": "https://atproto.com",
    }))
}

#[handler]
pub fn authorization_server(ctx: Data<&Arc<AppContext>>) -> Response {
    let issuer = issuer(&ctx.config);
    cacheable(json!({
        "issuer": issuer,
        "scopes_supported": ["atproto", "transition:email", "transition:generic", "transition:chat.bsky"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "ui_locales_supported": ["en-US"],
        "display_values_supported": ["page", "popup", "touch"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "jwks_uri": format!("{issuer}/oauth/jwks"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth/par"),
        "require_pushed_authorization_requests": true,
        "dpop_signing_alg_values_supported": ALGORITHMS,
        "protected_resources": [issuer],
        "client_id_metadata_document_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    }))
}

#[handler]
pub fn jwks() -> Response {
    cacheable(json!({ "keys": [] }))
}
