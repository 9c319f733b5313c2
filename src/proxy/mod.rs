//! Service proxying: XRPC methods Aurora does not serve itself go to the service that does —
//! the one an `atproto-proxy: <did>#<service-id>` header names, else the configured AppView
//! (PDS_BSKY_APP_VIEW_*), moderation service (`tools.ozone.*`) or report service
//! (`createReport`). Each forwarded call carries a short service-auth token from the caller,
//! signed with their repository key. Bodies stream both ways; only error bodies are read, to
//! pass the upstream's XRPC error on.

mod read_after_write;
mod target;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode};
use poem::web::Data;
use poem::{handler, Body, IntoResponse, Request, Response};

use aurora_atproto::syntax::AtUri;
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use aurora_atproto::permission::Need;
use aurora_generated::auth as methods;
use aurora_xrpc::auth::{Access, AccessRule, Level, Scheme};

use crate::auth::now_secs;
use crate::context::AppContext;

pub use target::{Target, TargetError};

/// Request headers passed on to the upstream service.
const FORWARDED_REQUEST_HEADERS: &[&str] = &["accept-language", "atproto-accept-labelers", "x-bsky-topics"];
/// Response headers passed back to the client.
const FORWARDED_RESPONSE_HEADERS: &[&str] =
    &["content-type", "content-language", "atproto-repo-rev", "atproto-content-labelers", "retry-after"];
/// How long a forwarded call's service token lives.
const TOKEN_LIFETIME_SECS: i64 = 60;
/// Largest upstream error body read to find its XRPC error.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The outbound HTTP client for proxied calls: no redirects, bounded waits, and (outside
/// development mode) connections only to public addresses.
pub struct Proxy {
    client: reqwest::Client,
}

impl Proxy {
    pub fn new(dev_mode: bool) -> Result<Proxy, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .user_agent(concat!("aurora-locus/", env!("CARGO_PKG_VERSION")));
        if !dev_mode {
            builder = builder.dns_resolver(Arc::new(target::PublicOnly)).https_only(true);
        }
        Ok(Proxy { client: builder.build().map_err(|e| e.to_string())? })
    }
}

/// The catch-all for `/xrpc/<nsid>` methods without a local route.
#[handler]
pub async fn forward(request: &Request, body: Body, Data(ctx): Data<&Arc<AppContext>>) -> Response {
    let nsid = request.uri().path().trim_start_matches("/xrpc/");
    let ip = aurora_xrpc::client_ip(request);
    let limits = match ctx.rate_limits.admit(nsid, request.headers(), ip, None, None).await {
        Ok(limits) => limits,
        Err(error) => return error.into_response(),
    };
    let mut response = match proxy(ctx, request, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    for (name, value) in limits {
        if let Ok(value) = poem::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn proxy(ctx: &AppContext, request: &Request, body: Body) -> XrpcResult<Response> {
    let nsid = request.uri().path().trim_start_matches("/xrpc/");
    if nsid.parse::<aurora_xrpc::codegen::Nsid>().is_err() {
        return Err(XrpcError::invalid_request("invalid xrpc path"));
    }
    if ![Method::GET, Method::HEAD, Method::POST].contains(request.method()) {
        return Err(XrpcError::invalid_request("XRPC requests only supports GET and POST"));
    }
    if methods::is_protected(nsid) {
        return Err(bad_token_method());
    }
    if !request.headers().contains_key("atproto-proxy") && target::default_for(ctx, nsid).is_none() {
        return Err(XrpcError::method_not_implemented(nsid));
    }
    // Verified once here: a DPoP proof is good for one use.
    let creds = caller(ctx, request).await?;
    let body = (request.method() == Method::POST).then(|| reqwest::Body::wrap_stream(body.into_bytes_stream()));
    let path_and_query = request.uri().path_and_query().map_or(request.uri().path(), |p| p.as_str());
    let outgoing = Outgoing {
        method: request.method().clone(),
        nsid,
        path_and_query,
        headers: request.headers(),
        body,
        auth: Some(&creds),
    };
    let response = match call(ctx, outgoing).await {
        Ok(response) => response,
        Err(error) if nsid == "app.bsky.feed.getPostThread" && error.error == "NotFound" => {
            return own_new_thread(ctx, request, &creds.did).await?.ok_or(error);
        }
        Err(error) => return Err(error),
    };
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = forwarded_headers(response.headers());
    let rev = response.headers().get("atproto-repo-rev").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let (true, StatusCode::OK, Some(rev)) = (read_after_write::applies(nsid), status, rev) {
        if read_after_write::wrote_since(ctx, &creds.did, &rev).await.map_err(crate::api::internal)? {
            return merged(ctx, request, &creds.did, nsid, &rev, response, headers).await;
        }
    }
    // Streamed through; a body that runs past the limit is cut off.
    let limit = ctx.config.proxy_max_response_bytes;
    let mut seen = 0u64;
    let stream = response.bytes_stream().map_err(std::io::Error::other).and_then(move |chunk| {
        seen += chunk.len() as u64;
        let outcome = if seen > limit {
            Err(std::io::Error::other("upstream response exceeded the size limit"))
        } else {
            Ok(chunk)
        };
        std::future::ready(outcome)
    });
    let mut out = Response::builder().status(status).body(Body::from_bytes_stream(stream.boxed()));
    out.headers_mut().extend(headers);
    Ok(out)
}

fn query_pairs(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect()
}

/// The caller of a forwarded method: any session or OAuth token; a full or privileged session
/// for the privileged methods, and an OAuth token's `rpc:` permission, are checked once the
/// target is known.
async fn caller(ctx: &AppContext, request: &Request) -> XrpcResult<Access> {
    let req = RequestContext::new("", request.headers().clone(), None)
        .with_target(request.method().clone(), request.uri().path());
    match crate::auth::authorization(&req)? {
        Some((Scheme::Dpop, token)) => crate::auth::oauth::verify(ctx, &req, token, AccessRule::STANDARD).await,
        _ => crate::auth::session_access(ctx, &req, AccessRule::STANDARD).await,
    }
}

/// Reads an answer whole (within the limit), merges the caller's newer records into it, and
/// sends the result — or the answer as it came when there is nothing to merge.
async fn merged(
    ctx: &AppContext,
    request: &Request,
    did: &aurora_atproto::syntax::Did,
    nsid: &str,
    rev: &str,
    response: reqwest::Response,
    headers: HeaderMap,
) -> XrpcResult<Response> {
    let bytes = read_limited(ctx, response).await?;
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(value) => read_after_write::merge(ctx, did, nsid, &query_pairs(request), rev, value)
            .await
            .map_err(crate::api::internal)?
            .and_then(|merged| serde_json::to_vec(&merged).ok()),
        Err(_) => None,
    };
    let mut out = match body {
        Some(body) => Response::builder().status(StatusCode::OK).body(body),
        None => Response::builder().status(StatusCode::OK).body(bytes),
    };
    out.headers_mut().extend(headers);
    Ok(out)
}

/// `getPostThread` for the caller's own post that the AppView does not know yet.
async fn own_new_thread(
    ctx: &AppContext,
    request: &Request,
    did: &aurora_atproto::syntax::Did,
) -> XrpcResult<Option<Response>> {
    let query = query_pairs(request);
    let uri = query.iter().find(|(k, _)| k == "uri").and_then(|(_, v)| v.parse::<AtUri>().ok());
    let Some(uri) = uri else { return Ok(None) };
    let thread = read_after_write::local_thread(ctx, did, &uri).await.map_err(crate::api::internal)?;
    Ok(thread.map(|thread| poem::web::Json(thread).into_response()))
}

async fn read_limited(ctx: &AppContext, response: reqwest::Response) -> XrpcResult<Vec<u8>> {
    let limit = ctx.config.proxy_max_response_bytes as usize;
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| upstream_failure("Upstream response was cut short"))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            return Err(upstream_failure("Upstream response too large"));
        }
    }
    Ok(bytes)
}

/// Forwards a method served here only by proxy and reads its JSON answer (bounded by the
/// response limit); for `createReport`, whose route is generated.
pub async fn call_json<T: serde::de::DeserializeOwned>(
    ctx: &AppContext,
    req: &RequestContext,
    auth: &Access,
    nsid: &str,
    input: &impl serde::Serialize,
) -> XrpcResult<T> {
    // A method served here only by forwarding it is refused as a request, not as unknown, when
    // there is nowhere to forward it.
    if !req.headers.contains_key("atproto-proxy") && target::default_for(ctx, nsid).is_none() {
        return Err(XrpcError::invalid_request(format!("No service configured for {nsid}")));
    }
    let body = serde_json::to_vec(input).map_err(crate::api::internal)?;
    let mut headers = req.headers.clone();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.remove("content-length");
    headers.remove("content-encoding");
    let path = format!("/xrpc/{nsid}");
    let outgoing = Outgoing {
        method: Method::POST,
        nsid,
        path_and_query: &path,
        headers: &headers,
        body: Some(body.into()),
        auth: Some(auth),
    };
    let response = call(ctx, outgoing).await?;
    let bytes = read_limited(ctx, response).await?;
    serde_json::from_slice(&bytes)
        .map_err(|_| upstream_failure("Upstream answered something that is not the method's output"))
}

struct Outgoing<'a> {
    method: Method,
    nsid: &'a str,
    path_and_query: &'a str,
    headers: &'a HeaderMap,
    body: Option<reqwest::Body>,
    /// The caller, when the method's generated route already authenticated it.
    auth: Option<&'a Access>,
}

/// Checks the caller may have `nsid` forwarded, finds the target, sends the call with a
/// service token, and returns a successful upstream response (errors become XRPC errors).
async fn call(ctx: &AppContext, out: Outgoing<'_>) -> XrpcResult<reqwest::Response> {
    let nsid = out.nsid;
    // Account management is never done by another service on the user's behalf.
    if methods::is_protected(nsid) {
        return Err(bad_token_method());
    }
    let header = out.headers.get("atproto-proxy");
    let default = target::default_for(ctx, nsid);
    if header.is_none() && default.is_none() {
        return Err(XrpcError::method_not_implemented(nsid));
    }
    // Only signed-in callers make this server look up DID documents.
    let creds = out.auth.ok_or_else(|| XrpcError::internal("a forwarded call without its caller"))?;
    let (target, audience) = match (header, default) {
        (Some(header), _) => {
            let header = header.to_str().map_err(|_| XrpcError::invalid_request("invalid proxy header"))?;
            (target::from_header(ctx, header).await.map_err(TargetError::into_xrpc)?, header.to_owned())
        }
        (None, Some(default)) => {
            let audience = target::default_audience(ctx, nsid, &default);
            (default, audience)
        }
        (None, None) => return Err(XrpcError::method_not_implemented(nsid)),
    };
    // An app may only call the services and methods it was granted.
    creds.permit(&Need::Rpc { aud: &audience, lxm: nsid })?;
    if methods::is_privileged(nsid) && !creds.meets(Level::Privileged) {
        return Err(bad_token_method());
    }
    target::check_url(&target.url, ctx.config.dev_mode).map_err(TargetError::into_xrpc)?;
    let exp = now_secs() + TOKEN_LIFETIME_SECS;
    let token = crate::auth::service::mint(ctx, &creds.did, &target.did, Some(nsid), exp)
        .await
        .map_err(crate::api::internal)?;

    let url = format!("{}{}", target.url.trim_end_matches('/'), out.path_and_query);
    let mut upstream = ctx
        .proxy
        .client
        .request(out.method.clone(), url)
        .bearer_auth(token)
        // Compressed or not, the client gets what our own compression layer gives it.
        .header("accept-encoding", "identity");
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = out.headers.get(*name) {
            upstream = upstream.header(*name, value.clone());
        }
    }
    if let Some(body) = out.body {
        // The compression middleware has already decoded the body: its original encoding and
        // length no longer describe what is sent.
        if let Some(value) = out.headers.get("content-type") {
            upstream = upstream.header("content-type", value.clone());
        }
        upstream = upstream.body(body);
    }
    let started = std::time::Instant::now();
    let sent = upstream.send().await;
    let answered = sent.as_ref().ok().map(|r| r.status().as_u16());
    ctx.metrics.upstream(target::kind(ctx, &target), answered, started.elapsed());
    let response = sent.map_err(|e| {
        tracing::warn!(nsid, upstream = target.url, error = %e, "proxied call failed");
        upstream_failure("Upstream service unreachable")
    })?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status.as_u16() >= 400 {
        return Err(upstream_error(status, response).await);
    }
    if response.content_length().is_some_and(|len| len > ctx.config.proxy_max_response_bytes) {
        return Err(upstream_failure("Upstream response too large"));
    }
    Ok(response)
}

fn bad_token_method() -> XrpcError {
    XrpcError::new(StatusCode::BAD_REQUEST, "InvalidToken", Some("Bad token method".into()))
}

fn upstream_failure(message: &str) -> XrpcError {
    XrpcError::new(StatusCode::BAD_GATEWAY, "UpstreamFailure", Some(message.into()))
}

fn forwarded_headers(upstream: &reqwest::header::HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in FORWARDED_RESPONSE_HEADERS {
        if let Some(value) = upstream.get(*name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            headers.insert(*name, value);
        }
    }
    headers
}

/// The upstream's own XRPC error, passed on; a server error there is an `UpstreamFailure`
/// here.
async fn upstream_error(status: StatusCode, response: reqwest::Response) -> XrpcError {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
    if status.is_server_error() {
        return XrpcError::new(StatusCode::BAD_GATEWAY, "UpstreamFailure", field("message"));
    }
    let name = field("error").unwrap_or_else(|| default_error_name(status).to_owned());
    XrpcError::new(status, name, field("message"))
}

fn default_error_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "AuthenticationRequired",
        403 => "Forbidden",
        404 => "XRPCNotSupported",
        413 => "PayloadTooLarge",
        429 => "RateLimitExceeded",
        _ => "InvalidRequest",
    }
}
