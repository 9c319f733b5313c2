//! Pushed authorization requests (RFC 9126): the client posts its authorization parameters
//! here first and gets a `request_uri` to send the person's browser to.

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::{HeaderMap, StatusCode};
use poem::web::{Data, Json};
use poem::{handler, Body, IntoResponse, Response};

use aurora_atproto::permission::{is_scope_parameter, Scope};

use super::client::{self, Client};
use super::dpop::{self, DpopError};
use super::error::OAuthError;
use super::request::{self, Parameters, ResponseMode};
use super::{finish, issuer, now, read_parameters, REQUEST_SECS};
use crate::context::AppContext;

#[handler]
pub async fn par(ctx: Data<&Arc<AppContext>>, headers: &HeaderMap, body: Body) -> Response {
    let outcome = push(&ctx, headers, body).await;
    let response = match outcome {
        Ok(request_uri) => Json(serde_json::json!({ "request_uri": request_uri, "expires_in": REQUEST_SECS - 1 }))
            .with_status(StatusCode::CREATED)
            .into_response(),
        Err(error) => error.into_response(),
    };
    finish(&ctx.oauth, response)
}

/// A DPoP failure as the authorization server answers it.
pub fn dpop_error(error: DpopError) -> OAuthError {
    match error {
        DpopError::UseNonce(text) => OAuthError::use_dpop_nonce(text),
        DpopError::Invalid(text) => OAuthError::invalid_dpop_proof(text),
    }
}

async fn push(ctx: &AppContext, headers: &HeaderMap, body: Body) -> Result<String, OAuthError> {
    let now = now();
    let params = read_parameters(headers, body).await?;
    let get = |name: &str| params.get(name).map(String::as_str);
    let client_id = get("client_id").ok_or_else(|| OAuthError::invalid_request("Missing \"client_id\" parameter"))?;
    let client = client::load(ctx, client_id, now).await?;
    let url = format!("{}/oauth/par", issuer(&ctx.config));
    let expected = dpop::Expected { method: "POST", url: &url, access_token: None };
    let proof = dpop::check(&ctx.oauth, headers, &expected, now).await.map_err(dpop_error)?;
    let dpop_jkt = match (get("dpop_jkt"), &proof) {
        (Some(requested), Some(proof)) if requested != proof.jkt => return Err(OAuthError::invalid_dpop_key_binding()),
        (Some(requested), _) => Some(requested.to_owned()),
        (None, proof) => proof.as_ref().map(|p| p.jkt.clone()),
    };
    let client_auth = client.authenticate(ctx, get("client_assertion_type"), get("client_assertion"), now).await?;
    let parameters = validate(ctx, &client, &params).await?;
    request::purge_expired(&ctx.db, now).await.map_err(OAuthError::server_error)?;
    request::create(&ctx.db, &parameters, &client_auth, dpop_jkt, now + REQUEST_SECS)
        .await
        .map_err(OAuthError::server_error)
}

/// Checks the authorization parameters, in the reference's order, and keeps what is valid.
async fn validate(
    ctx: &AppContext,
    client: &Client,
    params: &HashMap<String, String>,
) -> Result<Parameters, OAuthError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    for unsupported in ["nonce", "claims", "id_token_hint", "request"] {
        if params.contains_key(unsupported) {
            return Err(OAuthError::invalid_request(format!("Unsupported \"{unsupported}\" parameter")));
        }
    }
    match get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(OAuthError::unsupported_response_type(format!("Unsupported response_type \"{other}\"")))
        }
        None => return Err(OAuthError::invalid_request("Missing \"response_type\" parameter")),
    }
    let scope = get("scope").unwrap_or_default();
    if !scope.is_empty() && !is_scope_parameter(scope) {
        return Err(OAuthError::invalid_request("Invalid authorization request: Invalid OAuth scope"));
    }
    let declared = client.declared_scopes();
    let requested: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if let Some(undeclared) = requested.iter().find(|token| !declared.contains(token)) {
        return Err(OAuthError::invalid_scope(format!(
            "Scope \"{undeclared}\" is not declared in the client metadata"
        )));
    }
    let redirect_uri = client.redirect_uri(get("redirect_uri"))?;
    // Tokens that are not scopes are dropped, not refused: they grant nothing anyway.
    let mut kept: Vec<&str> = Vec::new();
    for token in &requested {
        if Scope::parse(token).is_some() && !kept.contains(token) {
            kept.push(token);
        }
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => return Err(OAuthError::invalid_request("Use of PKCE is required")),
        (None, Some(_)) => return Err(OAuthError::invalid_request("code_challenge is required")),
        (Some(challenge), Some("S256")) => challenge,
        (Some(_), _) => {
            return Err(OAuthError::invalid_request("atproto requires use of \"S256\" code_challenge_method"))
        }
    };
    if code_challenge.len() != 43
        || !code_challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(OAuthError::invalid_request("Invalid code_challenge"));
    }
    if !requested.contains(&"atproto") {
        return Err(OAuthError::invalid_scope("The \"atproto\" scope is required"));
    }
    if requested.contains(&"openid") {
        return Err(OAuthError::invalid_scope("OpenID Connect is not compatible with atproto"));
    }
    let prompt = match get("prompt") {
        None => None,
        Some(p @ ("login" | "consent" | "select_account")) => Some(p.to_owned()),
        Some("none") if !client.is_confidential() => {
            return Err(OAuthError::invalid_request("Public clients are not allowed to use silent-sign-on"))
        }
        Some("none") => Some("none".to_owned()),
        Some(other) => return Err(OAuthError::invalid_request(format!("Unsupported prompt \"{other}\""))),
    };
    // A public client could be anyone claiming its id: the person always confirms.
    let prompt = if client.is_confidential() {
        prompt
    } else {
        Some(prompt.filter(|p| p == "login").unwrap_or_else(|| "consent".to_owned()))
    };
    let login_hint = match get("login_hint") {
        None | Some("") => None,
        Some(hint) => {
            let hint = hint.to_lowercase();
            if hint.parse::<aurora_atproto::syntax::AtIdentifier>().is_err() {
                return Err(OAuthError::invalid_request(format!("Invalid login_hint \"{hint}\"")));
            }
            Some(hint)
        }
    };
    let response_mode = match get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => return Err(OAuthError::invalid_request(format!("Unsupported response_mode \"{other}\""))),
    };
    let scope = kept.join(" ");
    super::permission_sets::check_includes(ctx, &scope).await?;
    Ok(Parameters {
        client_id: client.id.clone(),
        redirect_uri,
        scope,
        state: get("state").map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
        response_mode,
        login_hint,
        prompt,
    })
}
