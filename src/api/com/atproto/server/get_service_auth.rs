//! `com.atproto.server.getServiceAuth`: a short-lived token, signed with the account's
//! repository key, that another atproto service accepts as proof of who is calling.

use aurora_atproto::permission::Need;
use aurora_generated::auth as methods;
use aurora_generated::com::atproto::server::get_service_auth::{Error, Output, Params};
use aurora_xrpc::auth::{Access, Level};
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::auth::service::{mint, MAX_WITHOUT_METHOD_SECS, MAX_WITH_METHOD_SECS};
use crate::auth::{now_secs, AuthError};
use crate::context::AppContext;

/// An atproto DID, or one with a `#service` fragment naming a service in its document.
fn is_service_reference(aud: &str) -> bool {
    let (did, fragment) = aud.split_once('#').map_or((aud, None), |(did, fragment)| (did, Some(fragment)));
    let did_ok = did.parse::<aurora_xrpc::codegen::Did>().is_ok_and(|d| matches!(d.method(), "plc" | "web"));
    let fragment_ok =
        fragment.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)));
    did_ok && fragment_ok
}

pub async fn handle(ctx: &AppContext, auth: Access, params: Params) -> XrpcResult<Output> {
    if !is_service_reference(&params.aud) {
        return Err(XrpcError::invalid_request("aud must be a valid atproto DID or did#serviceId reference"));
    }
    let lxm = params.lxm.as_ref().map(|m| m.as_str());
    // An app may only have tokens minted for the services and methods it was granted.
    auth.permit(&Need::Rpc { aud: &params.aud, lxm: lxm.unwrap_or("*") })?;
    // A taken-down account may only move away: it may ask for nothing but a sign-up elsewhere.
    // Its account is read too: a session opened before the takedown is not marked as taken down
    // (the reference lets such a session mint any token; Aurora does not).
    if lxm != Some("com.atproto.server.createAccount") {
        let taken_down = auth.is_takendown()
            || matches!(
                crate::account::status::check_present(&ctx.db, &auth.did).await.map_err(XrpcError::internal)?,
                Err(crate::account::status::Refusal::Takendown)
            );
        if taken_down {
            return Err(AuthError::BadScope.into());
        }
    }
    if let Some(method) = lxm.filter(|m| methods::is_privileged(m)) {
        if !auth.meets(Level::Privileged) {
            return Err(XrpcError::invalid_request(format!(
                "insufficient access to request a service auth token for the following method: {method}"
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
    if let Some(method) = lxm.filter(|m| methods::is_protected(m)) {
        return Err(XrpcError::invalid_request(format!(
            "cannot request a service auth token for the following protected method: {method}"
        )));
    }
    let token = mint(ctx, &auth.did, &params.aud, lxm, exp).await.map_err(crate::api::internal)?;
    Ok(Output { token, extra: Default::default() })
}
