//! `/xrpc/_health`: the version, and whether the database answers.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse, Response};
use serde_json::json;

use crate::context::AppContext;

#[handler]
pub async fn health(ctx: Data<&Arc<AppContext>>) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    match crate::db::ping(&ctx.db).await {
        Ok(()) => Json(json!({ "version": version })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            let body = json!({ "version": version, "error": "ServiceUnavailable", "message": "database unreachable" });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
