//! A stand-in PLC directory speaking the real HTTP API. It checks what the real one checks on
//! every operation: the genesis operation derives the DID, signatures come from a rotation key
//! of the previous state, and `prev` names the last operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aurora_locus::plc::{did_for_genesis, doc_for, SignedOperation};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json, Path};
use poem::{get, handler, EndpointExt, IntoResponse, Response, Route, Server};
use serde_json::json;

type Log = Arc<Mutex<HashMap<String, Vec<SignedOperation>>>>;

pub struct PlcDouble {
    pub url: String,
    log: Log,
    _server: tokio::task::JoinHandle<()>,
}

impl PlcDouble {
    pub async fn start() -> PlcDouble {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind PLC double");
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().expect("socket address");
        let log: Log = Arc::default();
        let app = Route::new()
            .at("/:did", get(document).post(submit))
            .at("/:did/data", get(data))
            .at("/:did/log/last", get(last_operation))
            .data(log.clone());
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        PlcDouble { url: format!("http://localhost:{}", addr.port()), log, _server: server }
    }

    /// The operations the directory accepted for `did`.
    pub fn operations(&self, did: &str) -> Vec<SignedOperation> {
        self.log.lock().expect("log").get(did).cloned().unwrap_or_default()
    }
}

fn decode(did: &str) -> String {
    did.replace("%3A", ":").replace("%3a", ":")
}

fn refuse(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "message": message }))).into_response()
}

#[handler]
fn submit(Path(did): Path<String>, log: Data<&Log>, Json(op): Json<SignedOperation>) -> Response {
    let did = decode(&did);
    let mut log = log.lock().expect("log");
    let ops = log.entry(did.clone()).or_default();
    match ops.last() {
        None => {
            if op.op.prev.is_some() {
                return refuse("genesis operation must not have prev");
            }
            if did_for_genesis(&op).as_str() != did {
                return refuse("genesis operation does not hash to this DID");
            }
            if !op.signed_by_any(&op.op.rotation_keys) {
                return refuse("invalid signature");
            }
        }
        Some(last) => {
            if op.op.prev.as_deref() != Some(last.cid().as_str()) {
                return refuse("prev does not match the last operation");
            }
            if !op.signed_by_any(&last.op.rotation_keys) {
                return refuse("invalid signature");
            }
        }
    }
    ops.push(op);
    StatusCode::OK.into_response()
}

fn with_last(did: &str, log: &Log, f: impl FnOnce(&SignedOperation) -> Response) -> Response {
    match log.lock().expect("log").get(did).and_then(|ops| ops.last()) {
        Some(op) => f(op),
        None => {
            (StatusCode::NOT_FOUND, Json(json!({ "message": format!("DID not registered: {did}") }))).into_response()
        }
    }
}

#[handler]
fn document(Path(did): Path<String>, log: Data<&Log>) -> Response {
    let did = decode(&did);
    with_last(&did, &log, |op| Json(doc_for(&did.parse().expect("a DID"), &op.op)).into_response())
}

#[handler]
fn data(Path(did): Path<String>, log: Data<&Log>) -> Response {
    let did = decode(&did);
    with_last(&did, &log, |op| {
        let mut value = serde_json::to_value(&op.op).unwrap_or_default();
        value["did"] = json!(did);
        value.as_object_mut().map(|m| m.remove("prev"));
        Json(value).into_response()
    })
}

#[handler]
fn last_operation(Path(did): Path<String>, log: Data<&Log>) -> Response {
    let did = decode(&did);
    with_last(&did, &log, |op| Json(op).into_response())
}
