//! The poem endpoint every generated route uses: check the HTTP method, read parameters and
//! input against the lexicon, call the service, write the output.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use poem::http::Method as HttpMethod;
use poem::web::websocket::{Message, WebSocket};
use poem::{Endpoint, FromRequest, IntoResponse, Request, RequestBody, Response};

use aurora_atproto::lexicon::{Catalog, Def, ParamsSchema, Validator};

use crate::auth::{Admission, Authenticator, Credential};
use crate::method::{FrameStream, Handler, InputBody, MethodKind, OutputBody};
use crate::query::FromQuery;
use crate::{RequestContext, XrpcError, XrpcResult};

/// How long one frame may take to reach a subscriber before the connection is dropped.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Request body limits, attached to the route tree as poem data by the server.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Largest JSON body accepted, in bytes.
    pub json: usize,
    /// Largest JSON body the methods in `large_json_methods` accept.
    pub large_json: usize,
    pub large_json_methods: &'static [&'static str],
}

impl BodyLimits {
    /// The largest JSON body `nsid` accepts.
    pub fn json_for(&self, nsid: &str) -> usize {
        if self.large_json_methods.contains(&nsid) {
            self.large_json
        } else {
            self.json
        }
    }
}

impl Default for BodyLimits {
    fn default() -> Self {
        // The reference PDS accepts JSON bodies up to 150 KiB.
        Self { json: 150 * 1024, large_json: 150 * 1024, large_json_methods: &[] }
    }
}

/// The endpoint for method `E` served by `services`.
pub fn endpoint<S, E>(services: Arc<S>, catalog: &'static Catalog) -> impl Endpoint<Output = Response>
where
    S: ?Sized + Authenticator + Send + Sync + 'static,
    E: Handler<S>,
{
    poem::endpoint::make(move |request: Request| {
        let services = services.clone();
        async move { Ok::<_, poem::Error>(serve::<S, E>(&services, catalog, request).await) }
    })
}

async fn serve<S, E>(services: &S, catalog: &'static Catalog, mut request: Request) -> Response
where
    S: ?Sized + Authenticator + Send + Sync,
    E: Handler<S>,
{
    let expected = match E::KIND {
        MethodKind::Query | MethodKind::Subscription => HttpMethod::GET,
        MethodKind::Procedure => HttpMethod::POST,
    };
    let method = request.method();
    let head_for_get = *method == HttpMethod::HEAD && expected == HttpMethod::GET;
    if *method != expected && !head_for_get {
        return XrpcError::invalid_request(format!("Incorrect HTTP method ({method}) expected {expected}"))
            .into_response();
    }
    let query = request.uri().query().unwrap_or_default();
    let params = match <E::Params as FromQuery>::from_query(query) {
        Some(params) => params,
        None => match validated_params::<E::Params>(query, catalog, E::NSID) {
            Ok(params) => params,
            Err(e) => return e.into_response(),
        },
    };
    let ctx = RequestContext {
        nsid: E::NSID,
        headers: request.headers().clone(),
        remote_addr: client_ip(&request),
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
    };
    // Parameters, then credentials, then the body: the order the reference's XRPC server
    // checks them in, so a request wrong in several ways gets the same first error.
    let auth = match <E::Credential as Credential>::authenticate(services, E::AUTH, &ctx).await {
        Ok(auth) => auth,
        Err(e) => return e.into_response(),
    };
    let body = request.take_body();
    let input = match <E::Input as InputBody>::read(&request, body, catalog, E::NSID).await {
        Ok(input) => input,
        Err(e) => return e.into_response(),
    };
    let admission = Admission {
        field: services.rate_key_field(E::NSID).and_then(|name| <E::Input as InputBody>::field(&input, name)),
    };
    let limits = match services.admit(&ctx, auth.account(), admission).await {
        Ok(headers) => headers,
        Err(e) => return e.into_response(),
    };
    let output = match E::call(services, ctx, auth, params, input).await {
        Ok(output) => output,
        Err(e) => return with_headers(e.into_response(), limits),
    };
    let output = match <E::Output as OutputBody>::into_frames(output) {
        Ok(frames) => return subscribe(&request, frames).await,
        Err(output) => output,
    };
    let response = match <E::Output as OutputBody>::write(output) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    with_headers(response, limits)
}

fn with_headers(mut response: Response, headers: Vec<(&'static str, String)>) -> Response {
    for (name, value) in headers {
        if let Ok(value) = poem::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The client's address: the one the server decided on, else the socket's peer.
pub fn client_ip(request: &Request) -> Option<std::net::IpAddr> {
    match request.extensions().get::<crate::ClientIp>() {
        Some(crate::ClientIp(ip)) => Some(*ip),
        None => request.remote_addr().as_socket_addr().map(|a| a.ip()),
    }
}

/// Buffers for a subscriber's socket. Subscribers send nothing but pings and closes (at most
/// 131 bytes a frame), so reads need little room and a large message from one is refused;
/// frames are written as they come. With tungstenite's defaults (128 KiB each way) a thousand
/// subscribers held 200 MiB; a read buffer of 4 KiB instead of 512 bytes kept 3 MiB more per
/// thousand (docs/performance.md).
fn subscriber_buffers() -> poem::web::websocket::WebSocketConfig {
    poem::web::websocket::WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

/// Parses the query string against the method's parameter schema through the lexicon
/// interpreter: the path that names what is wrong with a request [`FromQuery`] did not accept.
pub fn validated_params<P: serde::de::DeserializeOwned>(query: &str, catalog: &Catalog, nsid: &str) -> XrpcResult<P> {
    let schema: Option<&ParamsSchema> = match catalog.main(nsid) {
        Some(Def::Query(q)) => q.parameters.as_ref(),
        Some(Def::Procedure(p)) => p.parameters.as_ref(),
        Some(Def::Subscription(s)) => s.parameters.as_ref(),
        _ => None,
    };
    // Repeated keys are kept: array parameters repeat their key. Borrowed from the query
    // string unless percent-decoding changed them.
    // Split and decoded as the direct readers split them.
    let pairs: Vec<_> = crate::query::pairs(query).collect();
    let mut map = Validator::params_from_query(schema, pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
        .map_err(|e| XrpcError::invalid_request(e.to_string()))?;
    Validator::apply_param_defaults(schema, &mut map);
    if let Some(schema) = schema {
        Validator::new(catalog).params(schema, &map, nsid).map_err(|e| XrpcError::invalid_request(e.to_string()))?;
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| XrpcError::invalid_request(format!("Params: {e}")))
}

async fn subscribe(request: &Request, FrameStream(frames): FrameStream) -> Response {
    let mut body = RequestBody::default();
    // poem wants the upgrade callback to be Sync; a stream is only Send, so it waits in a mutex.
    let frames = std::sync::Mutex::new(Some(frames));
    match WebSocket::from_request(request, &mut body).await {
        Ok(ws) => ws
            .config(subscriber_buffers())
            .on_upgrade(move |socket| async move {
                let Some(mut frames) = frames.lock().ok().and_then(|mut slot| slot.take()) else {
                    return;
                };
                let (mut sink, mut incoming) = socket.split();
                loop {
                    tokio::select! {
                        frame = frames.next() => {
                            let Some(frame) = frame else { break };
                            // A peer that reads nothing for this long is gone; without the
                            // limit its connection would be held open forever.
                            match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Binary(frame))).await {
                                Ok(Ok(())) => {}
                                _ => break,
                            }
                        }
                        // Subscribers have nothing to say; reading lets the socket answer
                        // pings and notice a close without waiting for the next event.
                        message = incoming.next() => match message {
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                            Some(Ok(_)) => {}
                        },
                    }
                }
                let _ = sink.close().await;
            })
            .into_response(),
        Err(_) => XrpcError::invalid_request("this method is a subscription: connect with a websocket").into_response(),
    }
}
