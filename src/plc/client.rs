//! The PLC directory's HTTP API (the directory URL is operator configuration, so no SSRF
//! guard applies).

use std::time::Duration;

use serde_json::Value;

use super::SignedOperation;
use aurora_atproto::syntax::Did;

#[derive(Debug, thiserror::Error)]
pub enum PlcError {
    #[error("the PLC directory refused the operation: {0}")]
    Refused(String),
    #[error("the PLC directory failed: {0}")]
    Upstream(String),
    #[error("{0} is not known to the PLC directory")]
    NotFound(String),
}

#[derive(Clone, Debug)]
pub struct PlcClient {
    http: reqwest::Client,
    base: String,
}

impl PlcClient {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("aurora-locus/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { http, base: base.trim_end_matches('/').to_owned() }
    }

    fn url(&self, did: &Did, suffix: &str) -> String {
        format!("{}/{}{suffix}", self.base, did.as_str().replace(':', "%3A"))
    }

    /// Submits an operation for `did`.
    pub async fn submit(&self, did: &Did, op: &SignedOperation) -> Result<(), PlcError> {
        let response =
            self.http.post(self.url(did, "")).json(op).send().await.map_err(|e| PlcError::Upstream(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or("Unable to perform PLC operation").to_owned();
        if status.is_server_error() {
            Err(PlcError::Upstream(message))
        } else {
            Err(PlcError::Refused(message))
        }
    }

    async fn get_json(&self, did: &Did, suffix: &str) -> Result<Value, PlcError> {
        let response =
            self.http.get(self.url(did, suffix)).send().await.map_err(|e| PlcError::Upstream(e.to_string()))?;
        match response.status() {
            s if s.is_success() => response.json().await.map_err(|e| PlcError::Upstream(e.to_string())),
            s if s.as_u16() == 404 || s.as_u16() == 410 => Err(PlcError::NotFound(did.to_string())),
            s => Err(PlcError::Upstream(format!("status {s}"))),
        }
    }

    /// The DID document.
    pub async fn document(&self, did: &Did) -> Result<Value, PlcError> {
        self.get_json(did, "").await
    }

    /// The identity's current state: rotation keys, verification methods, handles, services.
    pub async fn data(&self, did: &Did) -> Result<Value, PlcError> {
        self.get_json(did, "/data").await
    }

    /// The last operation in the identity's log.
    pub async fn last_operation(&self, did: &Did) -> Result<SignedOperation, PlcError> {
        let value = self.get_json(did, "/log/last").await?;
        serde_json::from_value(value).map_err(|e| PlcError::Upstream(format!("unexpected operation: {e}")))
    }
}

impl From<PlcError> for aurora_xrpc::XrpcError {
    /// The directory's refusals are the client's problem (400, with the directory's reason); its
    /// failures are upstream ones (502).
    fn from(error: PlcError) -> Self {
        match error {
            PlcError::Refused(message) => aurora_xrpc::XrpcError::invalid_request(message),
            PlcError::NotFound(did) => {
                aurora_xrpc::XrpcError::invalid_request(format!("{did} is not known to the PLC directory"))
            }
            PlcError::Upstream(message) => {
                tracing::warn!(error = %message, "PLC directory failed");
                aurora_xrpc::XrpcError::new(
                    poem::http::StatusCode::BAD_GATEWAY,
                    "UpstreamFailure",
                    Some("Unable to perform PLC operation".into()),
                )
            }
        }
    }
}
