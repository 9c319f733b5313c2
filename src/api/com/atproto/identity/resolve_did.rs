//! `com.atproto.identity.resolveDid`: a DID's document.

use aurora_generated::com::atproto::identity::resolve_did::{Output, Params};
use aurora_xrpc::XrpcResult;

use super::did_error;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let doc = ctx.resolver.did_doc(&params.did, false).await.map_err(did_error)?;
    Ok(Output { did_doc: doc.into(), extra: Default::default() })
}
