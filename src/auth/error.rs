//! Why a request's credentials were refused, and how each reason is answered: the status,
//! error name and message the reference PDS gives, so clients react to Aurora as they do to it
//! (official clients refresh their session on `ExpiredToken`).

use poem::http::StatusCode;

use aurora_xrpc::XrpcError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("the authorization header is malformed")]
    MalformedHeader,
    #[error("unsupported authorization scheme {0}")]
    UnsupportedScheme(String),
    #[error("a scheme this method does not take")]
    UnexpectedScheme,
    #[error("the token has expired")]
    Expired,
    #[error("the token could not be verified")]
    Unverifiable,
    #[error("the token's claims are malformed")]
    MalformedToken,
    #[error("the token's scope does not allow this method")]
    BadScope,
    #[error("the refresh token has no id")]
    MissingTokenId,
    #[error("the administrator's credentials are missing or wrong")]
    AdminRequired,
    /// A moderator's credentials, for a method only the administrator may call.
    #[error("the method needs the administrator, not a moderator")]
    RoleTooLow,
    #[error("service auth: {1}")]
    Service(&'static str, String),
    /// Verifies, but its account, generation or app password is gone.
    #[error("the token has been revoked")]
    Revoked,
}

impl From<AuthError> for XrpcError {
    fn from(error: AuthError) -> Self {
        // Every refusal of a credential is logged by kind; tokens and passwords never are. A
        // request without any is no failed authentication.
        if matches!(error, AuthError::Missing) {
            tracing::debug!(target: "aurora::auth", "no credentials");
        } else {
            tracing::info!(target: "aurora::auth", refusal = %error, "authentication refused");
        }
        let (status, name, message) = match error {
            AuthError::Missing => (StatusCode::UNAUTHORIZED, "AuthMissing", "Authentication Required".to_owned()),
            AuthError::MalformedHeader => {
                (StatusCode::BAD_REQUEST, "InvalidToken", "Malformed authorization header".to_owned())
            }
            AuthError::UnsupportedScheme(scheme) => {
                (StatusCode::BAD_REQUEST, "InvalidToken", format!("Unsupported authorization type: {scheme}"))
            }
            AuthError::UnexpectedScheme => {
                (StatusCode::BAD_REQUEST, "InvalidToken", "Unexpected authorization type".to_owned())
            }
            AuthError::Expired => (StatusCode::BAD_REQUEST, "ExpiredToken", "Token has expired".to_owned()),
            AuthError::Unverifiable => {
                (StatusCode::BAD_REQUEST, "InvalidToken", "Token could not be verified".to_owned())
            }
            AuthError::MalformedToken => (StatusCode::BAD_REQUEST, "InvalidToken", "Malformed token".to_owned()),
            AuthError::BadScope => (StatusCode::BAD_REQUEST, "InvalidToken", "Bad token scope".to_owned()),
            AuthError::MissingTokenId => {
                (StatusCode::UNAUTHORIZED, "MissingTokenId", "Unexpected missing refresh token id".to_owned())
            }
            AuthError::AdminRequired => {
                (StatusCode::UNAUTHORIZED, "AuthenticationRequired", "Authentication Required".to_owned())
            }
            // As the reference answers any credential that is not the administrator's.
            AuthError::RoleTooLow => (
                StatusCode::UNAUTHORIZED,
                "AuthenticationRequired",
                "This method needs the administrator; a moderator may not call it".to_owned(),
            ),
            AuthError::Service(name, message) => (StatusCode::UNAUTHORIZED, name, message),
            // As for a revoked refresh token: clients try to refresh, and sign out when that fails.
            AuthError::Revoked => (StatusCode::BAD_REQUEST, "ExpiredToken", "Token has been revoked".to_owned()),
        };
        XrpcError::new(status, name, Some(message))
    }
}
