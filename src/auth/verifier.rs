//! Checks the `Authorization` header against what a method requires and names the failure the
//! way clients expect: 401 `AuthRequired` without credentials, 401 `ExpiredToken` for an
//! expired token (official clients refresh on any 401), 401 `InvalidToken` for anything else
//! wrong with a token, 400 `InvalidToken` "Bad token scope" for a token of the wrong kind.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use poem::http::StatusCode;

use aurora_xrpc::{RequestContext, XrpcError};

use super::jwt::{self, JwtError};
use super::tokens::{now_secs, AccessClaims, RefreshClaims, Scope, Tokens};

/// The verified caller of a method that takes an access token or app password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessCredentials {
    pub did: String,
    pub scope: Scope,
}

/// The verified bearer of a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshCredentials {
    pub did: String,
    pub jti: String,
}

fn invalid_token(message: &str) -> XrpcError {
    XrpcError::new(StatusCode::UNAUTHORIZED, "InvalidToken", Some(message.to_owned()))
}

fn expired_token() -> XrpcError {
    XrpcError::new(StatusCode::UNAUTHORIZED, "ExpiredToken", Some("Token has expired".to_owned()))
}

/// The scheme and credentials of the `Authorization` header, if there is one.
fn authorization(ctx: &RequestContext) -> Result<Option<(&str, &str)>, XrpcError> {
    let Some(value) = ctx.header("authorization") else { return Ok(None) };
    let mut parts = value.split(' ').filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(scheme), Some(credentials), None) => Ok(Some((scheme, credentials))),
        _ => {
            Err(XrpcError::new(StatusCode::BAD_REQUEST, "InvalidToken", Some("Malformed authorization header".into())))
        }
    }
}

fn bearer(ctx: &RequestContext) -> Result<&str, XrpcError> {
    match authorization(ctx)? {
        None => Err(XrpcError::auth_required("Authentication Required")),
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token),
        Some(_) => Err(invalid_token("Unexpected authorization type")),
    }
}

fn map_jwt(error: JwtError) -> XrpcError {
    match error {
        JwtError::Malformed | JwtError::WrongHeader | JwtError::BadSignature => {
            invalid_token("Token could not be verified")
        }
    }
}

/// Verifies credentials for methods.
pub struct Verifier<'a> {
    tokens: &'a Tokens,
    admin_password: &'a str,
}

impl<'a> Verifier<'a> {
    pub fn new(tokens: &'a Tokens, admin_password: &'a str) -> Self {
        Self { tokens, admin_password }
    }

    /// An access token whose scope is one of `allowed`.
    pub fn access(&self, ctx: &RequestContext, allowed: &[Scope]) -> Result<AccessCredentials, XrpcError> {
        let token = bearer(ctx)?;
        let claims: AccessClaims = jwt::verify_hs256(token, "at+jwt", self.tokens.secret()).map_err(map_jwt)?;
        if claims.aud != self.tokens.service_did() {
            return Err(invalid_token("Token could not be verified"));
        }
        if claims.exp.is_some_and(|exp| exp <= now_secs()) {
            return Err(expired_token());
        }
        if claims.lxm.is_some() || !claims.sub.starts_with("did:") {
            return Err(invalid_token("Malformed token"));
        }
        match Scope::parse(&claims.scope) {
            Some(scope) if allowed.contains(&scope) => Ok(AccessCredentials { did: claims.sub, scope }),
            _ => Err(XrpcError::new(StatusCode::BAD_REQUEST, "InvalidToken", Some("Bad token scope".into()))),
        }
    }

    /// An access token from any session, app passwords included.
    pub fn standard(&self, ctx: &RequestContext) -> Result<AccessCredentials, XrpcError> {
        self.access(ctx, &[Scope::Access, Scope::AppPassPrivileged, Scope::AppPass])
    }

    /// An access token from a session opened with the account password.
    pub fn full(&self, ctx: &RequestContext) -> Result<AccessCredentials, XrpcError> {
        self.access(ctx, &[Scope::Access])
    }

    /// A refresh token. `allow_expired` is for logging out with a token that has run out.
    pub fn refresh(&self, ctx: &RequestContext, allow_expired: bool) -> Result<RefreshCredentials, XrpcError> {
        let token = bearer(ctx)?;
        let claims: RefreshClaims = jwt::verify_hs256(token, "refresh+jwt", self.tokens.secret()).map_err(map_jwt)?;
        if claims.aud != self.tokens.service_did() || claims.scope != Scope::Refresh.as_str() {
            return Err(invalid_token("Token could not be verified"));
        }
        if !allow_expired && claims.exp.is_some_and(|exp| exp <= now_secs()) {
            return Err(expired_token());
        }
        if !claims.sub.starts_with("did:") || claims.jti.is_empty() {
            return Err(invalid_token("Malformed token"));
        }
        Ok(RefreshCredentials { did: claims.sub, jti: claims.jti })
    }

    /// The administrator's basic credentials (`admin` and PDS_ADMIN_PASSWORD).
    pub fn admin(&self, ctx: &RequestContext) -> Result<(), XrpcError> {
        let refused = || XrpcError::auth_required("Authentication Required");
        let Some((scheme, credentials)) = authorization(ctx).map_err(|_| refused())? else {
            return Err(refused());
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(refused());
        }
        let decoded = STANDARD.decode(credentials).map_err(|_| refused())?;
        let text = String::from_utf8(decoded).map_err(|_| refused())?;
        let (user, password) = text.split_once(':').ok_or_else(refused)?;
        let password_ok: bool = constant_time_eq(password.as_bytes(), self.admin_password.as_bytes());
        if user == "admin" && password_ok {
            Ok(())
        } else {
            Err(refused())
        }
    }
}

/// Compares secrets without an early exit that would leak how much of them matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    // Hashing first makes the comparison independent of the lengths too.
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::{HeaderMap, HeaderValue};

    fn ctx(authorization: Option<&str>) -> RequestContext {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert("authorization", HeaderValue::from_str(value).expect("header"));
        }
        RequestContext::new("com.example.test", headers, None)
    }

    #[test]
    fn an_access_token_opens_methods_of_its_scope_only() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin-pass");
        let app = tokens.access("did:plc:alice", Scope::AppPass);
        let creds = verifier.standard(&ctx(Some(&format!("Bearer {app}")))).expect("standard");
        assert_eq!(creds.did, "did:plc:alice");
        let error = verifier.full(&ctx(Some(&format!("Bearer {app}")))).expect_err("app password on full");
        assert_eq!((error.status.as_u16(), error.error.as_ref()), (400, "InvalidToken"));
    }

    #[test]
    fn missing_expired_and_forged_tokens_get_distinct_errors() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin-pass");
        assert_eq!(verifier.standard(&ctx(None)).expect_err("none").error, "AuthRequired");
        let expired = jwt::sign_hs256(
            "at+jwt",
            &AccessClaims {
                scope: Scope::Access.as_str().into(),
                aud: "did:web:pds.test".into(),
                sub: "did:plc:alice".into(),
                iat: 1,
                exp: Some(2),
                lxm: None,
            },
            b"secret",
        );
        let error = verifier.standard(&ctx(Some(&format!("Bearer {expired}")))).expect_err("expired");
        assert_eq!((error.status.as_u16(), error.error.as_ref()), (401, "ExpiredToken"));
        let forged = Tokens::new("other", "did:web:pds.test").access("did:plc:alice", Scope::Access);
        let error = verifier.standard(&ctx(Some(&format!("Bearer {forged}")))).expect_err("forged");
        assert_eq!((error.status.as_u16(), error.error.as_ref()), (401, "InvalidToken"));
        let refresh = tokens.refresh("did:plc:alice", "jti").0;
        assert!(
            verifier.standard(&ctx(Some(&format!("Bearer {refresh}")))).is_err(),
            "a refresh token is no access token"
        );
    }

    #[test]
    fn the_admin_needs_the_exact_password() {
        let tokens = Tokens::new("secret", "did:web:pds.test");
        let verifier = Verifier::new(&tokens, "admin:pass");
        let basic = |user_pass: &str| format!("Basic {}", STANDARD.encode(user_pass));
        verifier.admin(&ctx(Some(&basic("admin:admin:pass")))).expect("colon in the password is fine");
        assert!(verifier.admin(&ctx(Some(&basic("admin:wrong")))).is_err());
        assert!(verifier.admin(&ctx(Some(&basic("root:admin:pass")))).is_err());
        assert!(verifier.admin(&ctx(None)).is_err());
    }
}
