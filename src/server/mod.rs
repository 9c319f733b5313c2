//! The HTTP server: XRPC routes from the generated crate, the service's own pages, and the
//! middleware every request passes through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::{HeaderValue, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::middleware::Cors;
use poem::{get, post, Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use tracing::Instrument;

use crate::api::Api;
use crate::context::AppContext;
use crate::web;
use compression::Compression;

mod body;
mod compression;
pub(crate) mod connections;
pub mod guard;

/// Record writes carry whole records, so they take JSON bodies up to 1,000,000 bytes (or
/// `AURORA_JSON_BODY_LIMIT` if larger), as the reference PDS's do.
const RECORD_WRITES: &[&str] =
    &["com.atproto.repo.applyWrites", "com.atproto.repo.createRecord", "com.atproto.repo.putRecord"];
const RECORD_WRITE_JSON_LIMIT: usize = 1_000_000;

/// The complete endpoint tree.
pub fn app(ctx: Arc<AppContext>) -> impl Endpoint<Output = Response> {
    let api = Arc::new(Api::new(ctx.clone()));
    let limits = aurora_xrpc::BodyLimits {
        json: ctx.config.json_body_limit,
        large_json: ctx.config.json_body_limit.max(RECORD_WRITE_JSON_LIMIT),
        large_json_methods: RECORD_WRITES,
    };
    let trusted: Arc<[ipnet::IpNet]> = ctx.config.trusted_proxies.clone().into();
    let body_gap = ctx.config.header_timeout;
    let metrics = ctx.metrics.clone();
    let compression =
        compression::Policy { min_bytes: ctx.config.compression_min_bytes, cars: ctx.config.compress_cars };
    // Enough for a refused upload of a few times the largest blob.
    let drain_limit = ctx.config.blob_upload_limit.saturating_mul(4).max(1 << 20);
    let route = web::admin::routes(crate::oauth::routes(aurora_generated::routes::routes(api, Route::new())));
    route
        .at("/xrpc/_health", get(web::health::health))
        .at("/livez", get(web::health::livez))
        .at("/readyz", get(web::health::readyz))
        .at("/tls-check", get(web::tls_check::tls_check))
        .at("/metrics", get(web::metrics::on_main_listener))
        .at("/xrpc/*", crate::proxy::forward)
        .at("/", get(web::landing::landing))
        .at("/robots.txt", get(web::landing::robots))
        .at("/docs", get(web::docs::swagger_ui))
        .at("/openapi.json", get(web::docs::openapi_json))
        .at("/.well-known/atproto-did", get(web::well_known::atproto_did))
        .at("/.well-known/did.json", get(web::well_known::did_json))
        .at("/account", get(web::account::account_page))
        .at("/account/sign-in", post(web::account::sign_in))
        .at("/account/sign-out", post(web::account::sign_out))
        .at("/account/apps/revoke", post(web::account::revoke_app))
        .at("/account/sessions/revoke", post(web::account::end_session))
        .at("/account/app-passwords/create", post(web::account::create_app_password))
        .at("/account/app-passwords/revoke", post(web::account::revoke_app_password))
        .at("/account/email", post(web::account::change_email))
        .at("/account/handle", post(web::account::change_handle))
        .at("/account/password", post(web::account::change_password))
        .at("/account/totp/enroll", post(web::account::totp_enroll))
        .at("/account/totp/confirm", post(web::account::totp_confirm))
        .at("/account/totp/disable", post(web::account::totp_disable))
        .at("/account/deactivate", post(web::account::deactivate))
        .at("/account/reactivate", post(web::account::reactivate))
        .at("/account/delete", post(web::account::delete))
        .around(dpop_nonce)
        .with(Compression(compression))
        .with(Cors::new().allow_credentials(false).max_age(86_400).expose_headers([
            "atproto-repo-rev",
            "atproto-content-labelers",
            "content-language",
            "x-request-id",
            "dpop-nonce",
            "www-authenticate",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "ratelimit-policy",
            "retry-after",
        ]))
        .around(move |next, request| observe(next, request, metrics.clone()))
        // The steps that only amend the request run here rather than as layers of their own
        // (poem's `data` among them): every layer's future holds its own copy of the request
        // and is copied whole into the box the server keeps it in, which was a fifth of a
        // getRecord's instructions.
        .around(move |next, mut request| {
            canonical_path(&mut request);
            client_address(&mut request, &trusted);
            request.extensions_mut().insert(ctx.clone());
            request.extensions_mut().insert(limits);
            body::guard(next, request, body_gap, drain_limit)
        })
}

/// Decides who the client is (see [`crate::rate_limit::client_ip`]) once, for every handler.
fn client_address(request: &mut Request, trusted: &[ipnet::IpNet]) {
    if let Some(peer) = request.remote_addr().as_socket_addr().map(|a| a.ip()) {
        let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = crate::rate_limit::client_ip::resolve(peer, forwarded, trusted);
        request.extensions_mut().insert(aurora_xrpc::ClientIp(ip));
    }
}

/// Every answer to a request made with an OAuth (DPoP) token carries a fresh nonce for the
/// client's next proof, readable by browser apps.
async fn dpop_nonce<E: Endpoint>(next: E, request: Request) -> poem::Result<Response> {
    let dpop = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 5 && v[..5].eq_ignore_ascii_case("dpop "));
    let ctx = request.data::<Arc<AppContext>>().cloned();
    let mut response = next.call(request).await?.into_response();
    if let (true, Some(ctx)) = (dpop, ctx) {
        let headers = response.headers_mut();
        if let Ok(nonce) = HeaderValue::from_str(&ctx.oauth.nonces.next(crate::oauth::now())) {
            headers.insert("dpop-nonce", nonce);
        }
        headers.insert("vary", HeaderValue::from_static("Authorization"));
    }
    Ok(response)
}

/// Routes `/xrpc/<nsid>/` and NSIDs in another case to the method they name, as the
/// reference's router does (it ignores case and a trailing slash); everything else passes as is.
fn canonical_path(request: &mut Request) {
    if let Some(nsid) = request.uri().path().strip_prefix("/xrpc/") {
        let served = aurora_generated::routes::SERVED;
        if served.binary_search(&nsid).is_err() {
            let trimmed = nsid.strip_suffix('/').unwrap_or(nsid);
            if let Some(canonical) = served.iter().find(|m| m.eq_ignore_ascii_case(trimmed)) {
                let path_and_query = match request.uri().query() {
                    Some(query) => format!("/xrpc/{canonical}?{query}"),
                    None => format!("/xrpc/{canonical}"),
                };
                if let Ok(uri) = path_and_query.parse() {
                    *request.uri_mut() = uri;
                }
            }
        }
    }
}

/// Gives every request an id and a span, logs its outcome, and renders any error poem raises
/// outside our handlers (bad paths, CORS refusals) in XRPC shape.
async fn observe<E: Endpoint>(
    next: Arc<E>,
    request: Request,
    metrics: Arc<crate::metrics::Metrics>,
) -> poem::Result<Response> {
    let route = crate::metrics::route_of(request.uri().path());
    let credential =
        crate::metrics::credential_of(request.headers().get("authorization").and_then(|v| v.to_str().ok()));
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    async move {
        let started = Instant::now();
        // Boxed: inline, the layers inside (CORS, compression and the rest) would be copied
        // whole with every move of this future.
        let mut response = match Box::pin(next.call(request)).await {
            Ok(response) => response.into_response(),
            Err(error) => error_response(error),
        };
        let status = response.status();
        metrics.request(route, credential, status.as_u16(), started.elapsed());
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        // 501 is the expected answer for methods Aurora does not implement, not a fault.
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            tracing::warn!(status = status.as_u16(), elapsed_ms, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), elapsed_ms, "request done");
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
        harden(response.headers_mut());
        Ok(response)
    }
    .instrument(span)
    .await
}

/// What every answer carries unless its handler set its own: no MIME sniffing, no framing by
/// other sites, and no full URLs in Referer headers to other sites.
fn harden(headers: &mut poem::http::HeaderMap) {
    use poem::http::header;
    // Names as constants and one lookup each: by `&str`, each name was parsed twice per answer.
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.entry(name).or_insert_with(|| HeaderValue::from_static(value));
    }
}

fn error_response(error: poem::Error) -> Response {
    let status = error.status();
    let name = match status {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "InvalidRequest",
        StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
        s if s.is_server_error() => "InternalServerError",
        _ => "InvalidRequest",
    };
    let message = if status.is_server_error() {
        tracing::error!(error = %error, "unhandled error");
        "Internal Server Error".to_owned()
    } else {
        error.to_string()
    };
    aurora_xrpc::XrpcError::new(status, name, Some(message)).into_response()
}

fn new_request_id() -> String {
    use rand::RngCore;
    // Sixteen hex digits; `hex::encode` built them a char at a time.
    format!("{:016x}", rand::rng().next_u64())
}

/// A bound, not yet serving, server; tests use the address before running it.
pub struct Bound {
    acceptor: poem::listener::TcpAcceptor,
    pub addr: SocketAddr,
}

impl Bound {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
        let acceptor = TcpListener::bind(addr).into_acceptor().await?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| std::io::Error::other("listener has no socket address"))?;
        Ok(Bound { acceptor, addr })
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to 10 s).
    pub async fn serve(
        self,
        ctx: Arc<AppContext>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        self.serve_when_built(ctx, shutdown, || {}).await
    }

    /// [`Bound::serve`], calling `built` once everything is built and before the first request.
    pub async fn serve_when_built(
        self,
        ctx: Arc<AppContext>,
        shutdown: impl std::future::Future<Output = ()> + Send,
        built: impl FnOnce(),
    ) -> std::io::Result<()> {
        let config = &ctx.config;
        let limits = guard::Limits {
            per_ip: config.max_connections_per_ip,
            uncapped: config.trusted_proxies.clone(),
            head_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            write_timeout: config.write_timeout,
        };
        if let Some(bind) = config.metrics_bind {
            web::metrics::serve_apart(ctx.clone(), bind).await?;
        }
        let app = app(ctx);
        built();
        connections::serve(guard::Guarded::new(self.acceptor, limits), app, shutdown, Duration::from_secs(10)).await
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}
