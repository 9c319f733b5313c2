//! A stand-in AppView (and chat and report service) on loopback. It checks every call's
//! service-auth token the way a real service does — ES256K signature against the caller's DID
//! document from the PLC directory, `aud` its own DID, `lxm` the method, a short `exp` — and
//! answers canned, lexicon-shaped data.

use std::sync::{Arc, Mutex};

use aurora_atproto::crypto::PublicKey;
use base64::Engine;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json, Path, Query};
use poem::{get, handler, Body, EndpointExt, IntoResponse, Request, Response, Route, Server};
use serde_json::{json, Value};

/// What the double saw of one call.
#[derive(Clone, Debug)]
pub struct Call {
    pub nsid: String,
    pub iss: String,
    pub accept_language: Option<String>,
    pub body: Value,
}

#[derive(Clone)]
struct State {
    did: String,
    plc: Arc<Mutex<String>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

pub struct AppViewDouble {
    pub url: String,
    pub did: String,
    plc: Arc<Mutex<String>>,
    calls: Arc<Mutex<Vec<Call>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl AppViewDouble {
    /// Starts the double; it reads callers' keys from the PLC directory given to [`Self::use_plc`].
    pub async fn start() -> AppViewDouble {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind AppView double");
        let port = acceptor.local_addr()[0].as_socket_addr().copied().expect("socket address").port();
        let url = format!("http://localhost:{port}");
        let did = format!("did:web:localhost%3A{port}");
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let plc: Arc<Mutex<String>> = Arc::default();
        let state = State { did: did.clone(), plc: plc.clone(), calls: calls.clone() };
        let app = Route::new()
            .at("/.well-known/did.json", get(did_document))
            .at("/xrpc/:nsid", get(xrpc).post(xrpc))
            .data(state)
            .data(url.clone());
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        AppViewDouble { url, did, plc, calls, _server: server }
    }

    pub fn use_plc(&self, url: &str) {
        *self.plc.lock().expect("plc") = url.to_owned();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

#[handler]
fn did_document(Data(state): Data<&State>, Data(url): Data<&String>) -> Json<Value> {
    Json(json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": state.did,
        "service": [
            { "id": "#bsky_appview", "type": "BskyAppView", "serviceEndpoint": url },
            { "id": "#bsky_chat", "type": "BskyChatService", "serviceEndpoint": url },
        ],
    }))
}

fn error(status: StatusCode, name: &str, message: &str) -> Response {
    (status, Json(json!({ "error": name, "message": message }))).into_response()
}

/// Checks the bearer token; returns the caller's DID.
async fn verify(state: &State, request: &Request, nsid: &str) -> Result<String, String> {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no bearer token")?;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else { return Err("not a JWT".into()) };
    let decode = |part: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(payload)?).map_err(|e| e.to_string())?;
    if header["alg"] != "ES256K" {
        return Err(format!("alg {}", header["alg"]));
    }
    let iss = claims["iss"].as_str().ok_or("no iss")?.to_owned();
    if claims["aud"] != state.did.as_str() {
        return Err(format!("aud {} is not {}", claims["aud"], state.did));
    }
    if claims["lxm"] != nsid {
        return Err(format!("lxm {} is not {nsid}", claims["lxm"]));
    }
    let now = aurora_locus::auth::now_secs();
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp <= now || exp > now + 120 {
        return Err(format!("exp {exp} is not shortly after {now}"));
    }
    let plc = state.plc.lock().expect("plc").clone();
    let doc: Value = reqwest::get(format!("{plc}/{iss}"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let multikey = doc["verificationMethod"][0]["publicKeyMultibase"].as_str().ok_or("no key in the DID document")?;
    let key = PublicKey::from_multikey(multikey).map_err(|e| e.to_string())?;
    let (input, _) = token.rsplit_once('.').ok_or("not a JWT")?;
    key.verify(input.as_bytes(), &decode(signature)?).map_err(|e| format!("signature: {e}"))?;
    Ok(iss)
}

#[derive(serde::Deserialize)]
struct Size {
    size: Option<usize>,
    /// The rev the answer claims to be indexed up to.
    rev: Option<String>,
}

#[handler]
async fn xrpc(
    request: &Request,
    Path(nsid): Path<String>,
    Query(size): Query<Size>,
    Data(state): Data<&State>,
    body: Body,
) -> Response {
    let iss = match verify(state, request, &nsid).await {
        Ok(iss) => iss,
        Err(reason) => return error(StatusCode::UNAUTHORIZED, "BadJwt", &reason),
    };
    let body: Value = serde_json::from_slice(&body.into_vec().await.unwrap_or_default()).unwrap_or(Value::Null);
    let accept_language = request.headers().get("accept-language").and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.calls.lock().expect("calls").push(Call {
        nsid: nsid.clone(),
        iss: iss.clone(),
        accept_language,
        body: body.clone(),
    });
    match nsid.as_str() {
        "app.bsky.actor.getProfile" => {
            let mut response = Json(json!({ "did": iss, "handle": "from-the-appview.test", "displayName": "AppView" }))
                .into_response();
            response.headers_mut().insert("atproto-repo-rev", "3laaaaaaaaaa2".parse().expect("header"));
            response.headers_mut().insert("content-language", "en".parse().expect("header"));
            response
        }
        "app.bsky.feed.getTimeline" | "app.bsky.feed.searchPosts" => {
            // A big answer, sent in pieces.
            let padding = "x".repeat(size.size.unwrap_or(0));
            let text = format!("{{\"feed\":[],\"cursor\":\"{padding}\"}}");
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
                text.into_bytes().chunks(64 * 1024).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
            Response::builder()
                .content_type("application/json")
                .header("atproto-repo-rev", size.rev.as_deref().unwrap_or("3laaaaaaaaaa2"))
                .body(Body::from_bytes_stream(futures_util::stream::iter(chunks)))
        }
        "app.bsky.feed.getPostThread" => error(StatusCode::BAD_REQUEST, "NotFound", "Post not found"),
        "app.bsky.feed.getAuthorFeed" => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "boom"),
        "chat.bsky.convo.listConvos" => Json(json!({ "convos": [] })).into_response(),
        "com.atproto.moderation.createReport" => Json(json!({
            "id": 7,
            "reasonType": body["reasonType"],
            "subject": body["subject"],
            "reportedBy": iss,
            "createdAt": "2024-05-01T12:00:00.000Z",
        }))
        .into_response(),
        _ => error(StatusCode::NOT_IMPLEMENTED, "MethodNotImplemented", "not here"),
    }
}
