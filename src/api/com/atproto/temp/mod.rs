//! `com.atproto.temp`: methods not implemented here answer `MethodNotImplemented`.

mod check_signup_queue;

use aurora_generated::com::atproto::temp::{check_signup_queue as csq, Service};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn check_signup_queue(
        &self,
        _ctx: RequestContext,
        _auth: Access,
        _params: csq::Params,
    ) -> XrpcResult<csq::Output> {
        Ok(check_signup_queue::handle())
    }
}
