//! The one wire error of XRPC: `{"error": "<Name>", "message": "..."}` with an HTTP status.

use std::borrow::Cow;
use std::fmt;

use poem::http::StatusCode;
use poem::{IntoResponse, Response};

/// An error as an XRPC client sees it. Services return domain errors and translate them to
/// this at the boundary; internal failures become a logged, generic 500.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XrpcError {
    pub status: StatusCode,
    pub error: Cow<'static, str>,
    pub message: Option<String>,
    /// A `WWW-Authenticate` challenge to send with the answer (DPoP errors carry one).
    pub challenge: Option<String>,
    /// Other headers the answer carries (a rate limit's state, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

pub type XrpcResult<T> = Result<T, XrpcError>;

impl XrpcError {
    pub fn new(status: StatusCode, error: impl Into<Cow<'static, str>>, message: impl Into<Option<String>>) -> Self {
        Self { status, error: error.into(), message: message.into(), challenge: None, headers: Vec::new() }
    }

    /// 400 `InvalidRequest`: the client sent something the method cannot accept.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", Some(message.into()))
    }

    /// 400 with an error name the method's lexicon declares.
    pub fn declared(name: &'static str, message: Option<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, name, message)
    }

    /// 401 `AuthenticationRequired`: the credentials are missing or wrong (the reference's name).
    pub fn auth_required(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "AuthenticationRequired", Some(message.into()))
    }

    /// 403 `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", Some(message.into()))
    }

    /// 404 with the given error name, e.g. `RecordNotFound`.
    pub fn not_found(name: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, name, Some(message.into()))
    }

    /// 413 `PayloadTooLarge`.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", Some(message.into()))
    }

    /// 501 `MethodNotImplemented`: no such method, or one this server does not implement.
    pub fn method_not_implemented(nsid: &str) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "MethodNotImplemented", Some(format!("Method Not Implemented: {nsid}")))
    }

    /// 500 `InternalServerError`. The cause is logged (inside the request's span, which carries
    /// the request id) and never sent to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", Some("Internal Server Error".to_owned()))
    }

    /// The same error with a `WWW-Authenticate` challenge.
    pub fn with_challenge(self, challenge: String) -> Self {
        Self { challenge: Some(challenge), ..self }
    }

    /// The same error with another message.
    pub fn with_message(self, message: impl Into<String>) -> Self {
        Self { message: Some(message.into()), ..self }
    }

    /// The same error with one more header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 429 `RateLimitExceeded`.
    pub fn rate_limited() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", Some("Rate Limit Exceeded".to_owned()))
    }

    pub fn is(&self, name: &str) -> bool {
        self.error == name
    }
}

impl fmt::Display for XrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{} ({}): {message}", self.error, self.status.as_u16()),
            None => write!(f, "{} ({})", self.error, self.status.as_u16()),
        }
    }
}

impl std::error::Error for XrpcError {}

#[derive(serde::Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl IntoResponse for XrpcError {
    fn into_response(self) -> Response {
        let body = Body { error: &self.error, message: self.message.as_deref() };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| br#"{"error":"InternalServerError"}"#.to_vec());
        let mut response =
            Response::builder().status(self.status).content_type("application/json; charset=utf-8").body(json);
        if let Some(value) = self.challenge.and_then(|c| poem::http::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(poem::http::header::WWW_AUTHENTICATE, value);
        }
        for (name, value) in self.headers {
            if let Ok(value) = poem::http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl From<XrpcError> for poem::Error {
    fn from(error: XrpcError) -> Self {
        poem::Error::from_response(error.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_error_renders_as_xrpc_json_with_its_status() {
        let response = XrpcError::invalid_request("bad cursor").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response.into_body().into_string().await.expect("body");
        assert_eq!(body, r#"{"error":"InvalidRequest","message":"bad cursor"}"#);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = XrpcError::internal("database is on fire");
        assert_eq!(error.message.as_deref(), Some("Internal Server Error"));
    }
}
