//! `/tls-check?domain=…`: the question a TLS proxy with on-demand certificates (Caddy's `ask`)
//! puts before ordering a certificate. Yes (200) for this server's host name and for the
//! handles of accounts served here under its handle domains; no for anything else (400 for a
//! name outside the handle domains, 404 for one no account holds, as the reference
//! distribution answers), so a stranger pointing names at this address cannot make the proxy
//! order certificates for them.

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json, Query};
use poem::{handler, IntoResponse, Response};
use serde_json::json;

use aurora_atproto::syntax::Handle;

use crate::account::{self, status::AccountStatus, Lookup};
use crate::context::AppContext;

#[handler]
pub async fn tls_check(ctx: Data<&Arc<AppContext>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(domain) = query.get("domain").map(|d| d.trim().trim_end_matches('.').to_lowercase()) else {
        return answer(StatusCode::BAD_REQUEST, "InvalidRequest", "bad or missing domain query param");
    };
    if domain == ctx.config.hostname {
        return answer(StatusCode::OK, "", "");
    }
    // As the reference distribution's own check answers (bluesky-social/pds, service/index.js).
    if !ctx.config.service_handle_domains.iter().any(|suffix| domain.ends_with(suffix.as_str())) {
        return answer(StatusCode::BAD_REQUEST, "InvalidRequest", "handles are not provided on this domain");
    }
    let hosted = match domain.parse::<Handle>() {
        Ok(handle) => match account::find_actor(&ctx.db, Lookup::Handle(&handle)).await {
            // Only an account that is served: not deleted, taken down or deactivated.
            Ok(found) => {
                found.is_some_and(|a| a.deleted_at.is_none() && account::actor_status(&a) == AccountStatus::Active)
            }
            Err(e) => {
                tracing::error!(error = %e, "tls-check: database failed");
                return answer(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal Server Error");
            }
        },
        Err(_) => false,
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
