//! `com.atproto.server.getServiceAuth`: a short-lived token, signed with the account's
//! repository key, that another atproto service accepts as proof of who is calling.

use poem::http::StatusCode;
use rand::RngCore;
use serde::Serialize;

use aurora_generated::com::atproto::server::get_service_auth::{Error, Output, Params};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::auth::{jwt, methods, now_secs, Scope};
use crate::context::AppContext;

/// Longest lifetime of a token bound to one method, and of one that is not.
const MAX_WITH_METHOD_SECS: i64 = 60 * 60;
const MAX_WITHOUT_METHOD_SECS: i64 = 60;

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    iss: &'a str,
    aud: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lxm: Option<&'a str>,
    jti: String,
}

fn is_service_reference(aud: &str) -> bool {
    let did = aud.split_once('#').map_or(aud, |(did, _)| did);
    (did.starts_with("did:plc:") || did.starts_with("did:web:")) && did.parse::<aurora_xrpc::codegen::Did>().is_ok()
}

pub async fn get_service_auth(ctx: &AppContext, req: &RequestContext, params: Params) -> XrpcResult<Output> {
    let creds =
        ctx.verifier().access(req, &[Scope::Access, Scope::AppPassPrivileged, Scope::AppPass, Scope::Takendown])?;
    if !is_service_reference(&params.aud) {
        return Err(XrpcError::invalid_request("aud must be a valid atproto DID or did#serviceId reference"));
    }
    let lxm = params.lxm.as_ref().map(|m| m.as_str());
    if creds.scope == Scope::Takendown && lxm != Some("com.atproto.server.createAccount") {
        return Err(XrpcError::new(StatusCode::BAD_REQUEST, "InvalidToken", Some("Bad token scope".into())));
    }
    if let Some(method) = lxm {
        if methods::is_privileged(method) && !creds.scope.is_privileged() {
            return Err(XrpcError::invalid_request(format!(
                "insufficient access to request a service auth token for the following method: {method}"
            )));
        }
        if methods::is_protected(method) {
            return Err(XrpcError::invalid_request(format!(
                "cannot request a service auth token for the following protected method: {method}"
            )));
        }
    }
    let now = now_secs();
    let exp = match params.exp {
        None => now + MAX_WITHOUT_METHOD_SECS,
        Some(exp) if exp < now => return Err(Error::BadExpiration(Some("expiration is in past".into())).into()),
        Some(exp) if exp - now > MAX_WITH_METHOD_SECS => {
            return Err(Error::BadExpiration(Some(
                "cannot request a token with an expiration more than an hour in the future".into(),
            ))
            .into())
        }
        Some(exp) if lxm.is_none() && exp - now > MAX_WITHOUT_METHOD_SECS => {
            return Err(Error::BadExpiration(Some(
                "cannot request a method-less token with an expiration more than a minute in the future".into(),
            ))
            .into())
        }
        Some(exp) => exp,
    };
    let token = mint(ctx, &creds.did, &params.aud, lxm, exp).await?;
    Ok(Output { token, extra: Default::default() })
}

/// A service-auth token from `iss` (signed with its repository key) for `aud`, bound to `lxm`
/// when given, expiring at `exp`. Callers check what the caller may ask for.
pub async fn mint(ctx: &AppContext, iss: &str, aud: &str, lxm: Option<&str>, exp: i64) -> XrpcResult<String> {
    let key = crate::keys::signing_key(ctx, iss).await?;
    let mut jti = [0u8; 16];
    rand::rng().fill_bytes(&mut jti);
    let claims = Claims { iat: now_secs(), iss, aud, exp, lxm, jti: hex::encode(jti) };
    Ok(jwt::sign_es(&claims, &key))
}
