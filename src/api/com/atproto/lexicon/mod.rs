//! `com.atproto.lexicon`: resolving published lexicons. One file per method.

mod resolve_lexicon;

use aurora_generated::com::atproto::lexicon::{self as lex, Service};
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn resolve_lexicon(
        &self,
        _ctx: RequestContext,
        params: lex::resolve_lexicon::Params,
    ) -> XrpcResult<lex::resolve_lexicon::Output> {
        resolve_lexicon::handle(&self.ctx, params).await
    }
}
