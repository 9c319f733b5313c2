//! DPoP proofs (RFC 9449): a JWT the client signs with its own key for each request, which
//! binds tokens to that key. The authorization server and the resource server check proofs
//! the same way.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use poem::http::HeaderMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::jose::{Jwk, Jws};
use super::State;

/// How far a proof's `iat` may lie in the past or the future, in seconds (the reference's
/// ten-second token age plus three minutes of clock tolerance).
const MAX_AGE_SECS: i64 = 190;
const MAX_AHEAD_SECS: i64 = 180;

/// A verified proof: the thumbprint of the key that signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
}

/// Why a proof was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DpopError {
    /// `invalid_dpop_proof`.
    Invalid(String),
    /// `use_dpop_nonce`: the client should retry with the nonce the answer carries.
    UseNonce(&'static str),
}

impl DpopError {
    pub fn error(&self) -> &'static str {
        match self {
            DpopError::Invalid(_) => "invalid_dpop_proof",
            DpopError::UseNonce(_) => "use_dpop_nonce",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            DpopError::Invalid(text) => text,
            DpopError::UseNonce(text) => text,
        }
    }
}

/// What the proof must match: the request's method and URL, and for a resource request the
/// access token it carries.
pub struct Expected<'a> {
    pub method: &'a str,
    /// The request URL as the client sees it: the server's public URL and the path.
    pub url: &'a str,
    pub access_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<serde_json::Value>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    nonce: Option<String>,
    ath: Option<String>,
}

fn invalid(text: impl Into<String>) -> DpopError {
    DpopError::Invalid(text.into())
}

/// The request's proof, checked; `None` when it sent none.
pub async fn check(
    state: &State,
    headers: &HeaderMap,
    expected: &Expected<'_>,
    now: i64,
) -> Result<Option<Proof>, DpopError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(invalid("DPoP header must contain a single proof"));
    }
    let token = value.to_str().map_err(|_| invalid("DPoP header is not valid text"))?;
    if token.is_empty() {
        return Err(invalid("DPoP header cannot be empty"));
    }
    let jws = Jws::parse(token).ok_or_else(|| invalid("Failed to verify DPoP proof: malformed JWT"))?;
    if jws.header.typ.as_deref() != Some("dpop+jwt") {
        return Err(invalid(format!(
            "Failed to verify DPoP proof: unexpected \"typ\" JWT header value ({})",
            jws.header.typ.as_deref().unwrap_or("none")
        )));
    }
    let jwk: &Jwk = jws.header.jwk.as_ref().ok_or_else(|| invalid("Failed to verify DPoP proof: missing \"jwk\""))?;
    let key = jwk.public_key().ok_or_else(|| invalid("Failed to verify DPoP proof: unsupported or private \"jwk\""))?;
    if !jws.verify(&key) {
        return Err(invalid("Failed to verify DPoP proof: signature verification failed"));
    }
    let claims: Claims = jws.claims().ok_or_else(|| invalid("Failed to verify DPoP proof: malformed claims"))?;
    let iat = claims.iat.ok_or_else(|| invalid("Failed to verify DPoP proof: missing \"iat\" claim"))?;
    if iat < now - MAX_AGE_SECS {
        return Err(invalid("Failed to verify DPoP proof: \"iat\" claim timestamp check failed (too far in the past)"));
    }
    if iat > now + MAX_AHEAD_SECS {
        return Err(invalid(
            "Failed to verify DPoP proof: \"iat\" claim timestamp check failed (it should be in the past)",
        ));
    }
    if claims.exp.is_some_and(|exp| exp < now) || claims.nbf.is_some_and(|nbf| nbf > now + MAX_AHEAD_SECS) {
        return Err(invalid("Failed to verify DPoP proof: the proof is not valid at this time"));
    }
    let Some(serde_json::Value::String(jti)) = &claims.jti else {
        return Err(invalid("Invalid or missing jti property"));
    };
    if claims.htm.as_deref() != Some(expected.method) {
        return Err(invalid("DPoP \"htm\" mismatch"));
    }
    if !same_target(claims.htu.as_deref(), expected.url) {
        return Err(invalid("DPoP \"htu\" mismatch"));
    }
    match &claims.nonce {
        None => return Err(DpopError::UseNonce("Authorization server requires nonce in DPoP proof")),
        Some(nonce) if !state.nonces.accepts(nonce, now) => return Err(DpopError::UseNonce("DPoP \"nonce\" mismatch")),
        Some(_) => {}
    }
    match (expected.access_token, &claims.ath) {
        (Some(token), Some(ath)) if *ath == URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())) => {}
        (Some(_), _) => return Err(invalid("DPoP \"ath\" mismatch")),
        (None, Some(_)) => return Err(invalid("DPoP \"ath\" claim not allowed")),
        (None, None) => {}
    }
    let jkt = jwk.thumbprint();
    if !state.recent_ids.first_use(&format!("{jkt}:{jti}"), iat + MAX_AGE_SECS, now).await {
        return Err(invalid("DPoP proof replayed"));
    }
    Ok(Some(Proof { jkt }))
}

/// Whether a proof's `htu` names the request's URL: scheme, host, port and path, the query and
/// fragment left aside (the reference tolerates them).
fn same_target(htu: Option<&str>, expected: &str) -> bool {
    let (Some(htu), Ok(expected)) = (htu.and_then(|h| url::Url::parse(h).ok()), url::Url::parse(expected)) else {
        return false;
    };
    matches!(htu.scheme(), "http" | "https")
        && htu.username().is_empty()
        && htu.password().is_none()
        && htu.origin() == expected.origin()
        && htu.path() == expected.path()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_compared_without_query_but_with_the_path_exactly() {
        let url = "https://pds.example.com/oauth/par";
        assert!(same_target(Some("https://pds.example.com/oauth/par"), url));
        assert!(same_target(Some("https://pds.example.com/oauth/par?x=1#y"), url));
        assert!(same_target(Some("https://PDS.example.com:443/oauth/./par"), url));
        assert!(!same_target(Some("https://pds.example.com/oauth/par/"), url));
        assert!(!same_target(Some("http://pds.example.com/oauth/par"), url));
        assert!(!same_target(Some("https://user@pds.example.com/oauth/par"), url));
        assert!(!same_target(None, url));
    }
}
