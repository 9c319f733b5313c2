//! Handwritten implementations of the generated service traits. Paths mirror the NSIDs:
//! `com.atproto.repo.createRecord` is implemented under `api/com/atproto/repo/`.

pub mod app;
pub mod codes;
pub mod com;
pub mod org;
pub mod views;

use std::sync::Arc;

use crate::context::AppContext;

/// The object the generated routes call; it implements every served namespace's trait.
pub struct Api {
    pub ctx: Arc<AppContext>,
}

impl Api {
    pub fn new(ctx: Arc<AppContext>) -> Self {
        Self { ctx }
    }
}

/// Database and other server-side failures: logged, and answered with a generic 500.
pub(crate) fn internal(error: impl std::fmt::Display) -> aurora_xrpc::XrpcError {
    aurora_xrpc::XrpcError::internal(error)
}

/// A request's value of lexicon type `unknown` as the JSON tree it came as.
pub(crate) fn request_json(value: aurora_xrpc::Unknown) -> aurora_xrpc::XrpcResult<serde_json::Value> {
    value.into_json().map_err(|e| aurora_xrpc::XrpcError::invalid_request(format!("not a JSON value: {e}")))
}
