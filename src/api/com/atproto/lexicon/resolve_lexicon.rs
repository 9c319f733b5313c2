//! `com.atproto.lexicon.resolveLexicon`: an NSID's published schema, resolved through its
//! authority's DNS and repository (see `lexicon_resolution`), with the record's URI and CID.

use aurora_generated::com::atproto::lexicon::resolve_lexicon::{Error, Output, Params};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let not_found = || Error::LexiconNotFound(Some(format!("Could not resolve Lexicon for NSID: {}", params.nsid)));
    let resolved = crate::lexicon_resolution::resolve(ctx, &params.nsid).await.ok_or_else(not_found)?;
    Ok(Output {
        uri: resolved.uri.parse().map_err(internal)?,
        cid: resolved.cid.parse().map_err(internal)?,
        schema: serde_json::from_value(resolved.document).map_err(|_| not_found())?,
        extra: Default::default(),
    })
}
