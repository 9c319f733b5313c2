//! `/tls-check?domain=…`: the question a TLS proxy with on-demand certificates (Caddy's `ask`)
//! puts before ordering a certificate. Yes (200) for this server's host name and for the
//! handles of accounts hosted here under its handle domains; no (404) for anything else, so a
//! stranger pointing names at this address cannot make the proxy order certificates for them.

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json, Query};
use poem::{handler, IntoResponse, Response};
use serde_json::json;

use aurora_atproto::syntax::Handle;

use crate::account::{self, Lookup};
use crate::context::AppContext;

#[handler]
pub async fn tls_check(ctx: Data<&Arc<AppContext>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(domain) = query.get("domain").map(|d| d.trim().trim_end_matches('.').to_lowercase()) else {
        return answer(StatusCode::BAD_REQUEST, "InvalidRequest", "bad or missing domain query param");
    };
    if domain == ctx.config.hostname {
        return answer(StatusCode::OK, "", "");
    }
    let under_ours = ctx.config.service_handle_domains.iter().any(|suffix| domain.ends_with(suffix.as_str()));
    let hosted = match domain.parse::<Handle>() {
        Ok(handle) if under_ours => match account::find_actor(&ctx.db, Lookup::Handle(&handle)).await {
            Ok(found) => found.is_some_and(|a| a.deleted_at.is_none()),
            Err(e) => {
                tracing::error!(error = %e, "tls-check: database failed");
                return answer(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal Server Error");
            }
        },
        _ => false,
    };
    if hosted {
        answer(StatusCode::OK, "", "")
    } else {
        answer(StatusCode::NOT_FOUND, "NotFound", "handle not found for this domain")
    }
}

fn answer(status: StatusCode, error: &str, message: &str) -> Response {
    let body = if status == StatusCode::OK {
        json!({ "success": true })
    } else {
        json!({ "error": error, "message": message })
    };
    (status, Json(body)).into_response()
}
