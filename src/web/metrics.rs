//! `/metrics` in the Prometheus text format: on an address of its own when
//! `AURORA_METRICS_BIND` is set, else on the main address to trusted proxies and loopback only
//! (the figures describe the server's load and accounts; they are not for everyone).

use std::net::SocketAddr;
use std::sync::Arc;

use poem::http::{header, StatusCode};
use poem::listener::TcpListener;
use poem::web::Data;
use poem::{get, handler, EndpointExt, IntoResponse, Request, Response, Route};

use crate::context::AppContext;

async fn exposition(ctx: &AppContext) -> Response {
    match ctx.metrics.render(ctx).await {
        Ok(text) => text.with_content_type("text/plain; version=0.0.4; charset=utf-8").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: reading the figures failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /metrics` on the main address.
#[handler]
pub async fn on_main_listener(ctx: Data<&Arc<AppContext>>, request: &Request) -> Response {
    let peer = request.remote_addr().as_socket_addr().map(|a| a.ip());
    let allowed = ctx.config.metrics_bind.is_none()
        && peer.is_some_and(|ip| ip.is_loopback() || ctx.config.trusted_proxies.iter().any(|net| net.contains(&ip)));
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut response = exposition(&ctx).await;
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

#[handler]
async fn apart(ctx: Data<&Arc<AppContext>>) -> Response {
    exposition(&ctx).await
}

/// Listens on `bind` for `/metrics` alone, for as long as the process runs, through the same
/// accept loop as the main address.
pub async fn serve_apart(ctx: Arc<AppContext>, bind: SocketAddr) -> std::io::Result<()> {
    use poem::listener::Listener;
    let acceptor = TcpListener::bind(bind).into_acceptor().await?;
    tracing::info!(addr = %bind, "metrics listening");
    let app = Route::new().at("/metrics", get(apart)).data(ctx);
    tokio::spawn(async move {
        let forever = std::future::pending::<()>();
        if let Err(e) = crate::server::connections::serve(acceptor, app, forever, std::time::Duration::ZERO).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}
