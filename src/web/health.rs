//! Health: `/xrpc/_health` (the reference's shape: the version, and whether the database
//! answers), `/livez` (the process answers) and `/readyz` (every part the server needs works:
//! the database and its schema, the SQLite writer and its log sync, the blob store, the disk above its floor,
//! the background jobs running), for load balancers and orchestrators.

use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::blobs::BlobStore;
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

/// `GET /livez`: the process is up and its runtime answers.
#[handler]
pub fn livez() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

async fn within<F: std::future::Future<Output = Result<(), String>>>(check: F) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, check).await.unwrap_or_else(|_| Err("did not answer in time".to_owned()))
}

/// Whether the database has every migration this build knows (not so while another server is
/// migrating it, or after one was rolled back).
async fn schema_current(ctx: &AppContext) -> Result<(), String> {
    use aurora_migrations::MigratorTrait;
    let pending = aurora_migrations::Migrator::get_pending_migrations(&ctx.db).await.map_err(|e| e.to_string())?;
    match pending.len() {
        0 => Ok(()),
        n => Err(format!("{n} migrations not applied yet")),
    }
}

/// `GET /readyz`: 200 when every check passes, else 503 naming what failed.
#[handler]
pub async fn readyz(ctx: Data<&Arc<AppContext>>) -> Response {
    let ctx: &AppContext = &ctx;
    let mut checks: Vec<(&str, Result<(), String>)> = Vec::new();
    checks.push(("database", within(async { crate::db::ping(&ctx.db).await.map_err(|e| e.to_string()) }).await));
    checks.push(("database schema", within(schema_current(ctx)).await));
    if let Some(writer) = &ctx.sqlite_writer {
        let writer_check = async {
            writer.transaction(|_| Ok::<_, rusqlite::Error>(((), 0))).await.map_err(|e| e.to_string())?;
            writer.synced().await;
            Ok(())
        };
        checks.push(("sqlite writer and log sync", within(writer_check).await));
    }
    checks.push(("blob store", within(async { ctx.blobs.probe().await.map_err(|e| e.to_string()) }).await));
    let disk = match ctx.storage.free_space() {
        Some(free) if free < ctx.config.min_free_disk => {
            Err(format!("{free} bytes free, below the floor of {}", ctx.config.min_free_disk))
        }
        _ => Ok(()),
    };
    checks.push(("disk space", disk));
    checks.push(("background jobs", ctx.jobs.stalled().map_or(Ok(()), Err)));
    let ready = checks.iter().all(|(_, outcome)| outcome.is_ok());
    let mut detail = Map::new();
    for (name, outcome) in &checks {
        let value = match outcome {
            Ok(()) => json!("ok"),
            Err(reason) => {
                tracing::warn!(check = name, reason = %reason, "readiness check failed");
                json!(reason)
            }
        };
        detail.insert((*name).to_owned(), value);
    }
    let failing: Vec<&str> = checks.iter().filter(|(_, o)| o.is_err()).map(|(name, _)| *name).collect();
    // The jobs' schedule, for the operator reading this; a failed job alone leaves the server
    // ready, since it still answers its users.
    let jobs = crate::api::org::auroralocus::admin::list_jobs::all(ctx).await.unwrap_or_default();
    let body = json!({ "ready": ready, "failing": failing, "checks": detail, "jobs": jobs });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}
