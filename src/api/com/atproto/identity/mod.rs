//! `com.atproto.identity`: resolving handles and DIDs, changing the handle, and the PLC
//! operations an account signs to move or change its identity. One file per method.

mod get_recommended_did_credentials;
mod refresh_identity;
mod request_plc_operation_signature;
mod resolve_did;
mod resolve_handle;
mod resolve_identity;
mod sign_plc_operation;
mod submit_plc_operation;
mod update_handle;

use aurora_atproto::syntax::{Did, Handle};
use aurora_generated::com::atproto::identity::{self as lex, defs::IdentityInfo, Service};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::api::{internal, Api};
use crate::context::AppContext;
use crate::identity::{self, ResolveError};
use crate::repo::records;

impl Service for Api {
    async fn get_recommended_did_credentials(
        &self,
        _ctx: RequestContext,
        auth: Access,
        _params: lex::get_recommended_did_credentials::Params,
    ) -> XrpcResult<lex::get_recommended_did_credentials::Output> {
        get_recommended_did_credentials::handle(&self.ctx, auth).await
    }

    async fn refresh_identity(
        &self,
        _ctx: RequestContext,
        _auth: Option<Access>,
        input: lex::refresh_identity::Input,
    ) -> XrpcResult<lex::refresh_identity::Output> {
        refresh_identity::handle(&self.ctx, input).await
    }

    async fn request_plc_operation_signature(&self, _ctx: RequestContext, auth: Access) -> XrpcResult<()> {
        request_plc_operation_signature::handle(&self.ctx, auth).await
    }

    async fn resolve_did(
        &self,
        _ctx: RequestContext,
        params: lex::resolve_did::Params,
    ) -> XrpcResult<lex::resolve_did::Output> {
        resolve_did::handle(&self.ctx, params).await
    }

    async fn resolve_handle(
        &self,
        _ctx: RequestContext,
        params: lex::resolve_handle::Params,
    ) -> XrpcResult<lex::resolve_handle::Output> {
        resolve_handle::handle(&self.ctx, params).await
    }

    async fn resolve_identity(
        &self,
        _ctx: RequestContext,
        params: lex::resolve_identity::Params,
    ) -> XrpcResult<lex::resolve_identity::Output> {
        resolve_identity::handle(&self.ctx, params).await
    }

    async fn sign_plc_operation(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::sign_plc_operation::Input,
    ) -> XrpcResult<lex::sign_plc_operation::Output> {
        sign_plc_operation::handle(&self.ctx, auth, input).await
    }

    async fn submit_plc_operation(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::submit_plc_operation::Input,
    ) -> XrpcResult<()> {
        submit_plc_operation::handle(&self.ctx, auth, input).await
    }

    async fn update_handle(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::update_handle::Input,
    ) -> XrpcResult<()> {
        update_handle::handle(&self.ctx, auth, input).await
    }
}

/// An unresolvable handle. The reference answers `HandleNotFound` only for handles under its
/// own domains, which it knows are not there; a handle elsewhere it could not resolve is an
/// `InvalidRequest`.
fn handle_not_found(ctx: &AppContext, handle: &Handle) -> XrpcError {
    if is_hosted_domain(ctx, handle) {
        lex::resolve_handle::Error::HandleNotFound(Some("Unable to resolve handle".into())).into()
    } else {
        XrpcError::invalid_request("Unable to resolve handle")
    }
}

/// Whether `handle` is under one of this server's handle domains.
fn is_hosted_domain(ctx: &AppContext, handle: &Handle) -> bool {
    let handle = handle.as_str();
    ctx.config
        .service_handle_domains
        .iter()
        .any(|domain| handle.ends_with(domain.as_str()) || handle == domain.trim_start_matches('.'))
}

fn did_error(error: ResolveError) -> XrpcError {
    match error {
        // resolveDid, resolveIdentity and refreshIdentity all declare it; the wire name is one.
        ResolveError::NotFound(what) => {
            lex::resolve_did::Error::DidNotFound(Some(format!("DID not found: {what}"))).into()
        }
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
async fn did_for_handle(ctx: &AppContext, handle: &Handle, fresh: bool) -> XrpcResult<Option<Did>> {
    if !is_hosted_domain(ctx, handle) {
        return Ok(ctx.resolver.resolve_handle(handle, fresh).await);
    }
    let named = aurora_atproto::syntax::AtIdentifier::Handle(handle.clone());
    records::active_did(&ctx.db, ctx.reader.as_deref(), &named).await.map_err(internal)
}

/// A DID or handle, verified both ways: the handle must name the DID and the DID's document
/// must claim the handle; otherwise the handle is reported as `handle.invalid`.
async fn identity_info(
    ctx: &AppContext,
    identifier: &aurora_xrpc::codegen::AtIdentifier,
    refresh: bool,
) -> XrpcResult<IdentityInfo> {
    use aurora_xrpc::codegen::AtIdentifier;
    let did = match identifier {
        AtIdentifier::Did(did) => did.clone(),
        AtIdentifier::Handle(handle) => {
            did_for_handle(ctx, handle, refresh).await?.ok_or_else(|| handle_not_found(ctx, handle))?
        }
    };
    let doc = ctx.resolver.did_doc(&did, refresh).await.map_err(did_error)?;
    let handle = match identity::atproto_handle(&doc) {
        Some(handle) if did_for_handle(ctx, &handle, refresh).await?.as_ref() == Some(&did) => handle,
        _ => Handle::invalid(),
    };
    Ok(IdentityInfo { did, handle, did_doc: doc.into(), extra: Default::default() })
}
