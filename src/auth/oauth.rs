//! OAuth access tokens on XRPC calls (`Authorization: DPoP <token>` with a `DPoP` proof): the
//! proof, the token, its session (looked up on every call, so revoking one stops it at once),
//! and the permissions the method's rule asks of it.

use std::sync::Arc;

use poem::http::StatusCode;

use aurora_atproto::permission::{Need, Permissions};
use aurora_atproto::syntax::Did;
use aurora_xrpc::auth::{scope_missing, Access, AccessRule, Grant, OAuthGrant, OAuthRule};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::context::AppContext;
use crate::oauth::dpop::{self, DpopError};
use crate::oauth::error::www_authenticate;
use crate::oauth::token::AccessClaims;
use crate::oauth::{issuer, now, session};

/// A 401 with its `WWW-Authenticate: DPoP` challenge, as OAuth clients expect.
fn challenge(error: &'static str, message: impl Into<String>) -> XrpcError {
    let message = message.into();
    let header = www_authenticate(error, &message);
    XrpcError::new(StatusCode::UNAUTHORIZED, error, Some(message)).with_challenge(header)
}

fn invalid_token(message: &str) -> XrpcError {
    challenge("invalid_token", message)
}

impl From<DpopError> for XrpcError {
    fn from(error: DpopError) -> Self {
        challenge(error.error(), error.description().to_owned())
    }
}

/// The account an OAuth token acts for, with the permissions its session was granted.
pub async fn verify(ctx: &AppContext, req: &RequestContext, token: &str, rule: AccessRule) -> XrpcResult<Access> {
    let now = now();
    let url = format!("{}{}", issuer(&ctx.config), req.path);
    let expected = dpop::Expected { method: req.method.as_str(), url: &url, access_token: Some(token) };
    // A proof sent is checked first; then the token; then a DPoP-bound token must have come
    // with a proof (the reference's order, so a stray token gets `invalid_token`).
    let proof = dpop::check(&ctx.oauth, &req.headers, &expected, now).await?;
    let claims: AccessClaims = crate::auth::jwt::verify_hs256(token, "at+jwt", ctx.tokens.key())
        .map_err(|_| invalid_token("Invalid token"))?;
    let proof = proof.ok_or_else(|| challenge("invalid_dpop_proof", "DPoP proof required"))?;
    if claims.iss != issuer(&ctx.config) || claims.aud != ctx.config.service_did || !claims.jti.starts_with("tok-") {
        return Err(invalid_token("Invalid token"));
    }
    if claims.exp <= now {
        return Err(invalid_token("Token expired"));
    }
    if claims.cnf.jkt != proof.jkt {
        return Err(invalid_token("Invalid DPoP key binding"));
    }
    let did: Did = claims.sub.parse().map_err(|_| invalid_token("Invalid token"))?;
    let Some(session) = session::by_token_id(&ctx.db, &claims.jti).await.map_err(XrpcError::internal)? else {
        return Err(invalid_token("Invalid token"));
    };
    if session.dpop_jkt != claims.cnf.jkt || session.did != did {
        session::delete(&ctx.db, &session.id).await.map_err(XrpcError::internal)?;
        return Err(invalid_token("Invalid token"));
    }
    if session.expires_at <= now {
        return Err(invalid_token("Token expired"));
    }
    let permissions = Permissions::from_scope(&session.scope);
    if !permissions.has_atproto() {
        return Err(XrpcError::new(
            StatusCode::BAD_REQUEST,
            "InvalidToken",
            Some("OAuth token does not have \"atproto\" scope".to_owned()),
        ));
    }
    let found = crate::account::find(&ctx.db, crate::account::Lookup::Did(&did)).await.map_err(XrpcError::internal)?;
    match found.map(|a| a.status()) {
        None => return Err(invalid_token("Invalid token")),
        Some(status) if status.is_taken_down() && !rule.takendown => {
            return Err(XrpcError::new(
                StatusCode::UNAUTHORIZED,
                "AccountTakedown",
                Some("Account has been taken down".to_owned()),
            ))
        }
        Some(_) => {}
    }
    let grant = OAuthGrant { client_id: session.client_id, permissions: Arc::new(permissions) };
    Ok(Access { did, grant: Grant::OAuth(grant) })
}

/// Checks what the method's rule asks of an OAuth token (sessions pass: their level was
/// checked already).
pub fn apply_rule(ctx: &AppContext, req: &RequestContext, access: &Access, rule: OAuthRule) -> XrpcResult<()> {
    if access.oauth().is_none() {
        return Ok(());
    }
    match rule {
        OAuthRule::Any | OAuthRule::Handler => Ok(()),
        OAuthRule::Refused(message) => {
            Err(XrpcError::new(StatusCode::FORBIDDEN, "Forbidden", Some(message.to_owned())))
        }
        OAuthRule::Account(attr, manage) => access.permit(&Need::Account { attr, manage }),
        OAuthRule::Identity(attr) => access.permit(&Need::Identity(attr)),
        OAuthRule::Blob => {
            let mime = req
                .header("content-type")
                .and_then(|v| v.split(';').next())
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    XrpcError::invalid_request("Request encoding (Content-Type) required but not provided")
                })?;
            access.permit(&Need::Blob { mime })
        }
        OAuthRule::Rpc => {
            let aud = rpc_audience(ctx, req)?;
            access.permit(&Need::Rpc { aud: &aud, lxm: req.nsid })
        }
    }
}

/// The service a call served here on behalf of the AppView is for: the `atproto-proxy` header
/// as sent, else the configured AppView.
pub fn rpc_audience(ctx: &AppContext, req: &RequestContext) -> XrpcResult<String> {
    if let Some(header) = req.header("atproto-proxy") {
        return Ok(header.to_owned());
    }
    ctx.config
        .bsky_app_view
        .as_ref()
        .map(|(_, did)| format!("{did}#bsky_appview"))
        .ok_or_else(|| XrpcError::invalid_request(format!("No service configured for {}", req.nsid)))
}

/// The missing-permission answer, for callers outside the seam.
pub fn missing(need: &Need<'_>) -> XrpcError {
    scope_missing(need)
}
