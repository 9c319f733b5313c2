//! `com.atproto.identity`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::identity::{resolve_handle, Service};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account;
use crate::api::{internal, Api};
use crate::sequencer::AccountStatus;

impl Service for Api {
    async fn resolve_handle(
        &self,
        _ctx: RequestContext,
        params: resolve_handle::Params,
    ) -> XrpcResult<resolve_handle::Output> {
        let handle = params.handle.as_str().to_lowercase();
        let found = account::find(&self.ctx.db, account::Lookup::Handle(&handle)).await.map_err(internal)?;
        if let Some(found) = found.filter(|a| a.status() == AccountStatus::Active) {
            return Ok(resolve_handle::Output {
                did: found.did().parse().map_err(internal)?,
                extra: Default::default(),
            });
        }
        let hosted_here = self
            .ctx
            .config
            .service_handle_domains
            .iter()
            .any(|domain| handle.ends_with(domain.as_str()) || handle == domain.trim_start_matches('.'));
        if hosted_here {
            return Err(resolve_handle::Error::HandleNotFound(Some("Unable to resolve handle".into())).into());
        }
        Err(XrpcError::new(
            poem::http::StatusCode::NOT_IMPLEMENTED,
            "MethodNotImplemented",
            Some("Resolving handles hosted elsewhere is not supported yet".into()),
        ))
    }
}
