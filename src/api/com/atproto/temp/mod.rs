//! `com.atproto.temp`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::temp::{check_signup_queue as csq, Service};
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    /// This server signs people up at once; there is no queue to wait in.
    async fn check_signup_queue(&self, _ctx: RequestContext, _params: csq::Params) -> XrpcResult<csq::Output> {
        Ok(csq::Output { activated: true, place_in_queue: None, estimated_time_ms: None, extra: Default::default() })
    }
}
