//! The token endpoint (an authorization code or a refresh token for a DPoP-bound access token
//! and a new refresh token) and the revocation endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use poem::http::HeaderMap;
use poem::web::{Data, Json};
use poem::{handler, Body, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::client::{self, Client, ClientAuth};
use super::dpop;
use super::error::OAuthError;
use super::par::dpop_error;
use super::session::{self, NewSession, Refresh};
use super::{finish, issuer, now, read_parameters, request};
use crate::context::AppContext;
use crate::db::entities::oauth_session;

/// How long a PKCE challenge is remembered, so a second request cannot reuse it.
const CHALLENGE_MEMORY_SECS: i64 = 95_040;

/// The claims of an access token. Its scope is not in it: the session in the database is read
/// on every request, so a revoked or refreshed session stops its token at once.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub jti: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub aud: String,
    pub cnf: Confirmation,
    pub client_id: String,
    pub iss: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// The access token for a session's current token id.
pub fn access_token(ctx: &AppContext, session: &oauth_session::Model, now: i64) -> String {
    let claims = AccessClaims {
        jti: session.token_id.clone(),
        sub: session.did.as_str().to_owned(),
        iat: now,
        exp: session.expires_at,
        aud: ctx.config.service_did.clone(),
        cnf: Confirmation { jkt: session.dpop_jkt.clone() },
        client_id: session.client_id.clone(),
        iss: issuer(&ctx.config),
    };
    crate::auth::jwt::sign_hs256("at+jwt", &claims, ctx.tokens.key())
}

#[handler]
pub async fn token_endpoint(ctx: Data<&Arc<AppContext>>, headers: &HeaderMap, body: Body) -> Response {
    let response = match exchange(&ctx, headers, body).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    };
    finish(&ctx.oauth, response)
}

#[derive(Serialize)]
struct TokenAnswer {
    access_token: String,
    token_type: &'static str,
    refresh_token: Option<String>,
    scope: String,
    expires_in: i64,
    sub: String,
}

async fn exchange(ctx: &AppContext, headers: &HeaderMap, body: Body) -> Result<TokenAnswer, OAuthError> {
    let now = now();
    let params = read_parameters(headers, body).await?;
    let get = |name: &str| params.get(name).map(String::as_str);
    let grant = get("grant_type").ok_or_else(|| OAuthError::invalid_grant("Missing \"grant_type\" parameter"))?;
    if !matches!(grant, "authorization_code" | "refresh_token") {
        return Err(OAuthError::invalid_grant(format!("Grant type \"{grant}\" is not supported by the server")));
    }
    let client_id =
        get("client_id").ok_or_else(|| OAuthError::invalid_grant("Client credentials missing: client_id"))?;
    let client = client::load(ctx, client_id, now).await?;
    let url = format!("{}/oauth/token", issuer(&ctx.config));
    let expected = dpop::Expected { method: "POST", url: &url, access_token: None };
    let proof = dpop::check(&ctx.oauth, headers, &expected, now)
        .await
        .map_err(dpop_error)?
        .ok_or_else(|| OAuthError::invalid_dpop_proof("DPoP proof required"))?;
    let client_auth = client.authenticate(ctx, get("client_assertion_type"), get("client_assertion"), now).await?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::invalid_grant(format!("\"{grant}\" grant type is not allowed for this client")));
    }
    let session = match grant {
        "authorization_code" => from_code(ctx, &client, &client_auth, &proof.jkt, &params, now).await?,
        _ => from_refresh(ctx, &client, &client_auth, &proof.jkt, &params, now).await?,
    };
    Ok(TokenAnswer {
        access_token: access_token(ctx, &session, now),
        token_type: "DPoP",
        refresh_token: session.refresh_token.clone().filter(|_| client.allows_grant("refresh_token")),
        scope: session.scope.clone(),
        expires_in: (session.expires_at - now).max(0),
        sub: session.did.as_str().to_owned(),
    })
}

/// Session lifetimes for a client: confidential clients prove who they are on every refresh,
/// so their sessions may last longer.
fn lifetimes(client: &Client) -> (i64, i64) {
    if client.is_confidential() {
        (super::CONFIDENTIAL_SESSION_SECS, super::CONFIDENTIAL_REFRESH_SECS)
    } else {
        (super::PUBLIC_SESSION_SECS, super::PUBLIC_REFRESH_SECS)
    }
}

/// The access token's expiry: an hour, never past the session's end.
fn access_expiry(client: &Client, created_at: i64, now: i64) -> i64 {
    (now + super::ACCESS_TOKEN_SECS).min(created_at + lifetimes(client).0)
}

async fn from_code(
    ctx: &AppContext,
    client: &Client,
    client_auth: &ClientAuth,
    jkt: &str,
    params: &HashMap<String, String>,
    now: i64,
) -> Result<oauth_session::Model, OAuthError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let code = get("code").ok_or_else(|| OAuthError::invalid_grant("Missing \"code\" parameter"))?;
    let well_formed =
        code.strip_prefix("cod-").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(OAuthError::invalid_grant("Invalid code"));
    }
    let Some(request) = request::take_code(&ctx.db, code).await.map_err(OAuthError::server_error)? else {
        // A code used twice: whatever the first use obtained is revoked.
        session::delete_by_code(&ctx.db, code).await.map_err(OAuthError::server_error)?;
        return Err(OAuthError::invalid_grant("Invalid code"));
    };
    // From here on the code is spent, whatever goes wrong.
    if request.row.expires_at < now {
        return Err(OAuthError::invalid_grant("This code has expired"));
    }
    if request.row.client_id != client.id {
        return Err(OAuthError::invalid_grant("The code was not issued to this client"));
    }
    client.same_auth(&request.client_auth, client_auth)?;
    if request.row.dpop_jkt.as_deref().is_some_and(|bound| bound != jkt) {
        return Err(OAuthError::invalid_grant("DPoP proof does not match the expected JKT"));
    }
    if get("redirect_uri") != Some(request.parameters.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "The redirect_uri parameter must match the one used in the authorization request",
        ));
    }
    let verifier = get("code_verifier").ok_or_else(|| OAuthError::invalid_grant("code_verifier is required"))?;
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok || URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != request.parameters.code_challenge
    {
        return Err(OAuthError::invalid_grant("Invalid code_verifier"));
    }
    let fresh = super::replay::first_use_stored(
        &ctx.db,
        "code_challenge",
        &request.parameters.code_challenge,
        now + CHALLENGE_MEMORY_SECS,
        now,
    )
    .await
    .map_err(OAuthError::server_error)?;
    if !fresh {
        return Err(OAuthError::invalid_grant("Code challenge already used"));
    }
    let did = request.row.did.clone().ok_or_else(|| OAuthError::invalid_grant("Invalid code"))?;
    let scope =
        super::permission_sets::expand(ctx, &request.parameters.scope).await.map_err(OAuthError::invalid_request)?;
    let new = NewSession {
        did,
        client_id: client.id.clone(),
        client_auth: serde_json::to_string(client_auth).map_err(OAuthError::server_error)?,
        device_id: request.row.device_id.clone(),
        dpop_jkt: jkt.to_owned(),
        scope,
        parameters: request.row.parameters.clone(),
        code: Some(code.to_owned()),
    };
    session::create(&ctx.db, new, now, access_expiry(client, now, now)).await.map_err(OAuthError::server_error)
}

async fn from_refresh(
    ctx: &AppContext,
    client: &Client,
    client_auth: &ClientAuth,
    jkt: &str,
    params: &HashMap<String, String>,
    now: i64,
) -> Result<oauth_session::Model, OAuthError> {
    let token = params
        .get("refresh_token")
        .map(String::as_str)
        .ok_or_else(|| OAuthError::invalid_grant("Missing \"refresh_token\" parameter"))?;
    let well_formed =
        token.strip_prefix("ref-").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(OAuthError::invalid_grant("Invalid refresh token"));
    }
    let current = match session::by_refresh_token(&ctx.db, token).await.map_err(OAuthError::server_error)? {
        Refresh::Current(session) => *session,
        Refresh::Used(session_id) => {
            session::delete(&ctx.db, &session_id).await.map_err(OAuthError::server_error)?;
            return Err(OAuthError::invalid_grant("Refresh token replayed"));
        }
        Refresh::Unknown => return Err(OAuthError::invalid_grant("Invalid refresh token")),
    };
    // Whatever is wrong with a refresh of a live session ends that session: a refresh token
    // in the wrong hands must not get a second try.
    let checked = check_refresh(ctx, client, client_auth, jkt, &current, now).await;
    let refreshed = match checked {
        Ok(scope) => session::rotate(&ctx.db, &current, &scope, now, access_expiry(client, current.created_at, now))
            .await
            .map_err(OAuthError::server_error)?
            .ok_or_else(|| OAuthError::invalid_grant("Refresh token replayed")),
        Err(error) => Err(error),
    };
    if refreshed.is_err() {
        session::delete(&ctx.db, &current.id).await.map_err(OAuthError::server_error)?;
    }
    refreshed
}

/// The checks of a refresh; the session's scope, permission sets expanded anew.
async fn check_refresh(
    ctx: &AppContext,
    client: &Client,
    client_auth: &ClientAuth,
    jkt: &str,
    session: &oauth_session::Model,
    now: i64,
) -> Result<String, OAuthError> {
    if session.client_id != client.id {
        return Err(OAuthError::invalid_grant("Token was not issued to this client"));
    }
    let started: ClientAuth = serde_json::from_str(&session.client_auth).map_err(OAuthError::server_error)?;
    client.same_auth(&started, client_auth)?;
    if session.dpop_jkt != jkt {
        return Err(OAuthError::invalid_grant("DPoP proof does not match the expected JKT"));
    }
    let (session_secs, refresh_secs) = lifetimes(client);
    if now - session.created_at > session_secs {
        return Err(OAuthError::invalid_grant("Session expired"));
    }
    if now - session.updated_at > refresh_secs {
        return Err(OAuthError::invalid_grant("Refresh token expired"));
    }
    let requested: super::request::Parameters =
        serde_json::from_str(&session.parameters).map_err(OAuthError::server_error)?;
    let granted = granted_scope(&requested.scope, &session.scope);
    super::permission_sets::expand(ctx, &granted).await.map_err(OAuthError::invalid_request)
}

/// The scope to expand on refresh: the request's tokens the grant still holds, with its
/// permission sets (expanded in the stored grant) named again so a changed set takes effect.
fn granted_scope(requested: &str, granted: &str) -> String {
    let granted: Vec<&str> = granted.split(' ').collect();
    requested
        .split(' ')
        .filter(|token| token.starts_with("include:") || granted.contains(token))
        .collect::<Vec<_>>()
        .join(" ")
}

#[handler]
pub async fn revoke_endpoint(ctx: Data<&Arc<AppContext>>, headers: &HeaderMap, body: Body) -> Response {
    let response = match revocation(&ctx, headers, body).await {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(error) => error.into_response(),
    };
    finish(&ctx.oauth, response)
}

/// Ends the session a token belongs to. Only a malformed request or DPoP proof is refused;
/// whatever the token is (unknown, another client's, expired), the answer is the same.
async fn revocation(ctx: &AppContext, headers: &HeaderMap, body: Body) -> Result<(), OAuthError> {
    let now = now();
    let params = read_parameters(headers, body).await?;
    let token =
        params.get("token").cloned().ok_or_else(|| OAuthError::invalid_request("Missing \"token\" parameter"))?;
    let url = format!("{}/oauth/revoke", issuer(&ctx.config));
    let expected = dpop::Expected { method: "POST", url: &url, access_token: None };
    dpop::check(&ctx.oauth, headers, &expected, now).await.map_err(dpop_error)?;
    let Some(client_id) = params.get("client_id") else { return Ok(()) };
    let Ok(client) = client::load(ctx, client_id, now).await else { return Ok(()) };
    let get = |name: &str| params.get(name).map(String::as_str);
    if client.authenticate(ctx, get("client_assertion_type"), get("client_assertion"), now).await.is_err() {
        return Ok(());
    }
    let found = if token.starts_with("ref-") {
        match session::by_refresh_token(&ctx.db, &token).await {
            Ok(Refresh::Current(session)) => Some(*session),
            _ => None,
        }
    } else {
        let claims = crate::auth::jwt::verify_hs256::<AccessClaims>(&token, "at+jwt", ctx.tokens.key());
        match claims {
            Ok(claims) => session::by_token_id(&ctx.db, &claims.jti).await.ok().flatten(),
            Err(_) => None,
        }
    };
    if let Some(session) = found.filter(|s| s.client_id == client.id) {
        if let Err(e) = session::delete(&ctx.db, &session.id).await {
            tracing::warn!(error = %e, "could not revoke an OAuth session");
        }
    }
    Ok(())
}
