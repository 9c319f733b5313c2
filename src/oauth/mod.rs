//! The OAuth authorization server of the atproto OAuth profile: discovery documents, pushed
//! authorization requests, the sign-in and consent pages, the token and revocation endpoints.
//! Access tokens it issues are DPoP-bound; the resource side (checking them on XRPC calls) is
//! in `crate::auth::oauth`.

pub mod authorize;
pub mod client;
pub mod describe;
pub mod device;
pub mod dpop;
pub mod error;
pub mod jose;
pub mod metadata;
pub mod nonce;
pub mod par;
pub mod permission_sets;
pub mod replay;
pub mod request;
pub mod session;
pub mod token;

use std::collections::HashMap;

use poem::http::{HeaderMap, HeaderValue};
use poem::{get, post, Body, Response, Route};

use crate::config::Config;
use error::OAuthError;

/// Lifetimes, in seconds (the reference's).
pub const REQUEST_SECS: i64 = 300;
pub const CODE_SECS: i64 = 300;
pub const ACCESS_TOKEN_SECS: i64 = 3600;
pub const PUBLIC_SESSION_SECS: i64 = 14 * 24 * 3600;
pub const PUBLIC_REFRESH_SECS: i64 = 14 * 24 * 3600;
pub const CONFIDENTIAL_SESSION_SECS: i64 = 2 * 365 * 24 * 3600;
pub const CONFIDENTIAL_REFRESH_SECS: i64 = 91 * 24 * 3600;
/// How long a browser sign-in stands before the password is asked again.
pub const SIGN_IN_SECS: i64 = 7 * 24 * 3600;

/// The largest body the OAuth endpoints read.
const MAX_BODY_BYTES: usize = 100 * 1024;

/// What the OAuth endpoints keep in memory.
pub struct State {
    pub nonces: nonce::Nonces,
    pub recent_ids: replay::RecentIds,
    pub clients: client::ClientCache,
}

impl State {
    pub fn new(config: &Config) -> Result<State, String> {
        let secret = config.dpop_secret.as_ref().unwrap_or(&config.jwt_secret);
        let recent_ids = match &config.rate_limits.redis {
            Some(address) => replay::RecentIds::shared(address.expose())?,
            None => Default::default(),
        };
        Ok(State { nonces: nonce::Nonces::new(secret.expose().as_bytes()), recent_ids, clients: Default::default() })
    }
}

/// The authorization server's routes.
pub fn routes(route: Route) -> Route {
    route
        .at("/.well-known/oauth-protected-resource", get(metadata::protected_resource))
        .at("/.well-known/oauth-authorization-server", get(metadata::authorization_server))
        .at("/oauth/jwks", get(metadata::jwks))
        .at("/oauth/par", post(par::par))
        .at("/oauth/assets/style.css", get(authorize::stylesheet))
        .at("/oauth/authorize", get(authorize::authorize_page))
        .at("/oauth/authorize/sign-in", post(authorize::sign_in))
        .at("/oauth/authorize/consent", post(authorize::consent))
        .at("/oauth/token", post(token::token_endpoint))
        .at("/oauth/revoke", post(token::revoke_endpoint))
}

pub fn now() -> i64 {
    crate::auth::now_secs()
}

/// The issuer: the server's public origin, without a trailing slash.
pub fn issuer(config: &Config) -> String {
    config.public_url.trim_end_matches('/').to_owned()
}

/// The parameters of a form or JSON body (JSON values that are not strings are kept as their
/// JSON text).
pub async fn read_parameters(headers: &HeaderMap, body: Body) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = body.into_bytes_limit(MAX_BODY_BYTES).await.map_err(|e| match e {
        poem::error::ReadBodyError::PayloadTooLarge => OAuthError::too_large(),
        other => OAuthError::invalid_request(format!("could not read the request body: {other}")),
    })?;
    match content_type.as_str() {
        "application/x-www-form-urlencoded" => Ok(url::form_urlencoded::parse(&bytes).into_owned().collect()),
        "application/json" => {
            let value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&bytes).map_err(|_| OAuthError::invalid_request("Invalid JSON body"))?;
            Ok(value
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect())
        }
        other => Err(OAuthError::unsupported_media_type(other)),
    }
}

/// Adds what every answer of the PAR, token and revocation endpoints carries: a fresh DPoP
/// nonce (exposed to browser clients) and no caching.
pub fn finish(state: &State, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Ok(nonce) = HeaderValue::from_str(&state.nonces.next(now())) {
        headers.insert("dpop-nonce", nonce);
    }
    let exposed = if headers.contains_key("www-authenticate") { "DPoP-Nonce, WWW-Authenticate" } else { "DPoP-Nonce" };
    headers.insert("access-control-expose-headers", HeaderValue::from_static(exposed));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert("pragma", HeaderValue::from_static("no-cache"));
    response
}

/// A random identifier: `prefix` and `bytes` random bytes in hex.
pub fn random_id(prefix: &str, bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    format!("{prefix}{}", hex::encode(buffer))
}
