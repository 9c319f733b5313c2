//! `resolveHandle`, `resolveDid`, `resolveIdentity`, `refreshIdentity`.

use aurora_generated::com::atproto::identity::{defs::IdentityInfo, resolve_did as rd, resolve_handle as rh};
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account;
use crate::api::internal;
use crate::context::AppContext;
use crate::identity::{self, ResolveError};
use crate::sequencer::AccountStatus;

fn handle_not_found() -> XrpcError {
    XrpcError::declared("HandleNotFound", Some("Unable to resolve handle".into()))
}

fn did_error(error: ResolveError) -> XrpcError {
    match error {
        ResolveError::NotFound(what) => XrpcError::declared("DidNotFound", Some(format!("DID not found: {what}"))),
        ResolveError::Failed(reason) => XrpcError::new(
            poem::http::StatusCode::BAD_GATEWAY,
            "UpstreamFailure",
            Some(format!("DID resolution failed: {reason}")),
        ),
        ResolveError::Db(e) => internal(e),
    }
}

/// The DID of a handle. Handles under this server's domains are answered from its accounts;
/// any other domain is its owner's to say, so it is asked (DNS, then HTTPS) every time.
pub async fn did_for_handle(ctx: &AppContext, handle: &str, fresh: bool) -> XrpcResult<Option<String>> {
    let handle = handle.to_lowercase();
    let hosted_here = ctx
        .config
        .service_handle_domains
        .iter()
        .any(|domain| handle.ends_with(domain.as_str()) || handle == domain.trim_start_matches('.'));
    if !hosted_here {
        return Ok(ctx.resolver.resolve_handle(&handle, fresh).await);
    }
    let found = account::find(&ctx.db, account::Lookup::Handle(&handle)).await.map_err(internal)?;
    Ok(found.filter(|a| a.status() == AccountStatus::Active).map(|a| a.did().to_owned()))
}

pub async fn resolve_handle(ctx: &AppContext, params: rh::Params) -> XrpcResult<rh::Output> {
    match did_for_handle(ctx, params.handle.as_str(), false).await? {
        Some(did) => Ok(rh::Output { did: did.parse().map_err(internal)?, extra: Default::default() }),
        None => Err(handle_not_found()),
    }
}

pub async fn resolve_did(ctx: &AppContext, params: rd::Params) -> XrpcResult<rd::Output> {
    let doc = ctx.resolver.did_doc(params.did.as_str(), false).await.map_err(did_error)?;
    Ok(rd::Output { did_doc: doc, extra: Default::default() })
}

/// A DID or handle, verified both ways: the handle must name the DID and the DID's document
/// must claim the handle; otherwise the handle is reported as `handle.invalid`.
pub async fn identity(ctx: &AppContext, identifier: &str, refresh: bool) -> XrpcResult<IdentityInfo> {
    let did = if identifier.starts_with("did:") {
        identifier.to_owned()
    } else {
        did_for_handle(ctx, identifier, refresh).await?.ok_or_else(handle_not_found)?
    };
    let doc = ctx.resolver.did_doc(&did, refresh).await.map_err(did_error)?;
    let claimed = identity::atproto_handle(&doc);
    let handle = match claimed {
        Some(handle) if did_for_handle(ctx, &handle, refresh).await?.as_deref() == Some(did.as_str()) => handle,
        _ => "handle.invalid".to_owned(),
    };
    Ok(IdentityInfo {
        did: did.parse().map_err(internal)?,
        handle: handle.parse().map_err(internal)?,
        did_doc: doc,
        extra: Default::default(),
    })
}
