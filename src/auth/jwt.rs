//! Compact JWTs: HS256 for the server's own session tokens, ES256K/ES256 for service auth.
//! Small enough to write out; verification is strict about the algorithm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use aurora_atproto::crypto::{KeyType, Keypair, PublicKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("token is malformed")]
    Malformed,
    #[error("token uses an unexpected algorithm or type")]
    WrongHeader,
    #[error("token signature is invalid")]
    BadSignature,
}

#[derive(Serialize, Deserialize)]
pub struct Header {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    pub alg: String,
}

fn encode_part<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Splits a token into its decoded header, the signing input and the signature bytes.
pub fn split(token: &str) -> Result<(Header, &str, Vec<u8>, &str), JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| JwtError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| JwtError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..token.rfind('.').unwrap_or(token.len())];
    Ok((header, signing_input, signature, payload))
}

/// Decodes a token's claims without checking its signature (for routing and for service auth,
/// whose key depends on the issuer named in the claims).
pub fn claims<C: DeserializeOwned>(payload: &str) -> Result<C, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// The key of the server's HS256 tokens, with HMAC's key schedule done once: keying takes two
/// SHA-256 blocks, a third of verifying a session token.
#[derive(Clone)]
pub struct Hs256Key(Hmac<Sha256>);

impl Hs256Key {
    pub fn new(secret: &[u8]) -> Self {
        Self(Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length"))
    }
}

impl std::fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hs256Key(..)")
    }
}

/// An HS256 token with header `{"typ": typ, "alg": "HS256"}`.
pub fn sign_hs256<C: Serialize>(typ: &str, claims: &C, key: &Hs256Key) -> String {
    let header = Header { typ: Some(typ.to_owned()), alg: "HS256".to_owned() };
    let input = format!("{}.{}", encode_part(&header), encode_part(claims));
    let mut mac = key.0.clone();
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

/// Verifies an HS256 token of type `typ` and returns its claims. The comparison is constant
/// time; any other algorithm is refused.
pub fn verify_hs256<C: DeserializeOwned>(token: &str, typ: &str, key: &Hs256Key) -> Result<C, JwtError> {
    let (header, input, signature, payload) = split(token)?;
    if header.alg != "HS256" || header.typ.as_deref() != Some(typ) {
        return Err(JwtError::WrongHeader);
    }
    let mut mac = key.0.clone();
    mac.update(input.as_bytes());
    mac.verify_slice(&signature).map_err(|_| JwtError::BadSignature)?;
    claims(payload)
}

/// A service-auth token signed with an account's repository key (ES256K or ES256).
pub fn sign_es<C: Serialize>(claims: &C, key: &Keypair) -> String {
    let header = Header { typ: Some("JWT".to_owned()), alg: key.key_type().jwt_algorithm().to_owned() };
    let input = format!("{}.{}", encode_part(&header), encode_part(claims));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Verifies an ES256K/ES256 signature against `key`; the header's algorithm must match the key.
pub fn verify_es(token: &str, key: &PublicKey) -> Result<(), JwtError> {
    let (header, input, signature, _) = split(token)?;
    let expected = match key.key_type() {
        KeyType::K256 => "ES256K",
        KeyType::P256 => "ES256",
    };
    if header.alg != expected {
        return Err(JwtError::WrongHeader);
    }
    key.verify(input.as_bytes(), &signature).map_err(|_| JwtError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn an_hs256_token_verifies_with_its_secret_and_type_only() {
        let key = Hs256Key::new(b"secret");
        let token = sign_hs256("at+jwt", &json!({"sub": "did:plc:a"}), &key);
        // The key is used again and again: each use starts from its keyed state.
        let second = sign_hs256("at+jwt", &json!({"sub": "did:plc:b"}), &key);
        let claims: Value = verify_hs256(&token, "at+jwt", &key).expect("valid");
        assert_eq!(claims["sub"], "did:plc:a");
        let claims: Value = verify_hs256(&second, "at+jwt", &key).expect("valid");
        assert_eq!(claims["sub"], "did:plc:b");
        let other = Hs256Key::new(b"other");
        assert_eq!(verify_hs256::<Value>(&token, "at+jwt", &other), Err(JwtError::BadSignature));
        assert_eq!(verify_hs256::<Value>(&token, "refresh+jwt", &key), Err(JwtError::WrongHeader));
        assert_eq!(verify_hs256::<Value>("a.b", "at+jwt", &key), Err(JwtError::Malformed));
        // Keyed as the reference PDS keys it: HMAC-SHA256 over the raw secret's bytes.
        let (_, input, signature, _) = split(&token).expect("three parts");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").expect("any length");
        mac.update(input.as_bytes());
        assert_eq!(mac.finalize().into_bytes().as_slice(), signature.as_slice());
    }

    #[test]
    fn an_alg_none_token_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"at+jwt","alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"did:plc:a"}"#);
        let token = format!("{header}.{payload}.");
        assert!(verify_hs256::<Value>(&token, "at+jwt", &Hs256Key::new(b"secret")).is_err());
    }

    #[test]
    fn a_service_token_verifies_against_the_signing_key() {
        let key = Keypair::generate(KeyType::K256);
        let token = sign_es(&json!({"iss": "did:plc:a", "aud": "did:web:x", "exp": 1}), &key);
        verify_es(&token, &key.public_key()).expect("valid");
        let other = Keypair::generate(KeyType::K256);
        assert_eq!(verify_es(&token, &other.public_key()), Err(JwtError::BadSignature));
    }
}
