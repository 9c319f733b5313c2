//! The service's own pages and endpoints, outside the lexicon-defined XRPC methods.

pub mod docs;
pub mod health;
pub mod landing;
pub mod well_known;

use poem::{handler, IntoResponse, Request, Response};

/// `/xrpc/<nsid>` for any method without a route of its own.
#[handler]
pub fn unknown_method(request: &Request) -> Response {
    let nsid = request.uri().path().trim_start_matches("/xrpc/");
    aurora_xrpc::XrpcError::method_not_implemented(nsid).into_response()
}
