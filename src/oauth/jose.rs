//! The little of JOSE that OAuth needs here: compact JWS with an elliptic-curve key (ES256 or
//! ES256K), public JWKs and their RFC 7638 thumbprints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use aurora_atproto::crypto::{KeyType, PublicKey};

/// The signing algorithms this server verifies, as metadata lists them.
pub const ALGORITHMS: [&str; 2] = ["ES256", "ES256K"];

/// A public elliptic-curve JWK.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    /// Present only in private keys, which must never be sent.
    #[serde(default)]
    pub d: Option<Value>,
}

impl Jwk {
    /// The key's curve as an algorithm name.
    pub fn algorithm(&self) -> Option<&'static str> {
        match (self.kty.as_str(), self.crv.as_str()) {
            ("EC", "P-256") => Some("ES256"),
            ("EC", "secp256k1") => Some("ES256K"),
            _ => None,
        }
    }

    /// The key, when the JWK is a public key on a supported curve.
    pub fn public_key(&self) -> Option<PublicKey> {
        if self.d.is_some() {
            return None;
        }
        let key_type = match self.algorithm()? {
            "ES256" => KeyType::P256,
            _ => KeyType::K256,
        };
        let x = URL_SAFE_NO_PAD.decode(&self.x).ok().filter(|x| x.len() == 32)?;
        let y = URL_SAFE_NO_PAD.decode(&self.y).ok().filter(|y| y.len() == 32)?;
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        PublicKey::from_sec1_bytes(key_type, &point).ok()
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let canonical = serde_json::json!({ "crv": self.crv, "kty": self.kty, "x": self.x, "y": self.y });
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// A compact JWS, decoded but not yet verified.
pub struct Jws<'a> {
    pub header: Header,
    signing_input: &'a str,
    signature: Vec<u8>,
    payload: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub jwk: Option<Jwk>,
    #[serde(default)]
    pub kid: Option<String>,
}

impl<'a> Jws<'a> {
    pub fn parse(token: &'a str) -> Option<Jws<'a>> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let signing_input = &token[..token.rfind('.')?];
        Some(Jws { header, signing_input, signature, payload })
    }

    /// Whether `key` signed this with the header's algorithm, which must be the key's.
    pub fn verify(&self, key: &PublicKey) -> bool {
        let expected = match key.key_type() {
            KeyType::P256 => "ES256",
            KeyType::K256 => "ES256K",
        };
        self.header.alg == expected && key.verify_jws(self.signing_input.as_bytes(), &self.signature).is_ok()
    }

    /// The claims, unverified unless [`Jws::verify`] said so.
    pub fn claims<C: DeserializeOwned>(&self) -> Option<C> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(self.payload).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7638_example_thumbprint_is_reproduced_for_an_ec_key() {
        // RFC 7638 gives an RSA example; for EC the members are crv, kty, x, y. This key and its
        // thumbprint come from RFC 9449 (DPoP), section 4.3 and 6.1.
        let jwk = Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs".into(),
            y: "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA".into(),
            kid: None,
            alg: None,
            d: None,
        };
        assert_eq!(jwk.thumbprint(), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        assert!(jwk.public_key().is_some());
        assert_eq!(jwk.algorithm(), Some("ES256"));
    }
}
