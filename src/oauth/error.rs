//! OAuth error answers (`{"error", "error_description"}`) and the headers every answer of the
//! authorization server's endpoints carries.

use poem::http::{HeaderValue, StatusCode};
use poem::{IntoResponse, Response};

/// An OAuth error as the token, PAR and revocation endpoints answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// DPoP errors also go in a `WWW-Authenticate: DPoP` header.
    pub www_authenticate: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError { status, error, description: description.into(), www_authenticate: false }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_client", description)
    }

    pub fn invalid_client_metadata(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", description)
    }

    pub fn invalid_client_id(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_client_id", description)
    }

    pub fn invalid_redirect_uri(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub fn unsupported_response_type(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "unsupported_response_type", description)
    }

    pub fn use_dpop_nonce(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "use_dpop_nonce", description)
    }

    pub fn invalid_dpop_proof(description: impl Into<String>) -> OAuthError {
        OAuthError {
            www_authenticate: true,
            ..OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", description)
        }
    }

    /// A DPoP key that is not the one the grant is bound to.
    pub fn invalid_dpop_key_binding() -> OAuthError {
        OAuthError {
            www_authenticate: true,
            ..OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid DPoP key binding")
        }
    }

    pub fn server_error(cause: impl std::fmt::Display) -> OAuthError {
        tracing::error!(error = %cause, "oauth request failed");
        OAuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Internal server error")
    }

    pub fn unsupported_media_type(content_type: &str) -> OAuthError {
        OAuthError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            format!("Unsupported content-type: {content_type}"),
        )
    }

    pub fn too_large() -> OAuthError {
        OAuthError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "Request body too large")
    }
}

/// The `WWW-Authenticate` value for a DPoP error. A parameter whose text holds a double quote
/// is left out, as quoting it would need escapes some clients do not read.
pub fn www_authenticate(error: &str, description: &str) -> String {
    let mut value = format!("DPoP algs=\"{}\"", super::jose::ALGORITHMS.join(" "));
    for (name, text) in [("error", error), ("error_description", description)] {
        if !text.contains('"') {
            value.push_str(&format!(", {name}=\"{text}\""));
        }
    }
    value
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "error_description": self.description });
        let mut response = poem::web::Json(body).with_status(self.status).into_response();
        if self.www_authenticate {
            if let Ok(value) = HeaderValue::from_str(&www_authenticate(self.error, &self.description)) {
                response.headers_mut().insert("www-authenticate", value);
            }
        }
        response
    }
}
