//! Public keys: verifying signatures and naming keys as `did:key` and multikey strings.

use std::fmt;
use std::hash::{Hash, Hasher};

use ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

use super::multikey::{self, COMPRESSED_LENGTH};
use super::{CryptoError, KeyType};

const DID_KEY_PREFIX: &str = "did:key:";

/// A public key on one of the atproto curves.
#[derive(Clone)]
pub struct PublicKey {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    K256(k256::ecdsa::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    pub(super) fn from_k256(key: k256::ecdsa::VerifyingKey) -> PublicKey {
        PublicKey { inner: Inner::K256(key) }
    }

    pub(super) fn from_p256(key: p256::ecdsa::VerifyingKey) -> PublicKey {
        PublicKey { inner: Inner::P256(key) }
    }

    /// A key from its SEC1 encoding, compressed (33 bytes) or uncompressed (65 bytes), as
    /// older DID documents carry it in `publicKeyMultibase` without a multicodec prefix.
    pub fn from_sec1_bytes(key_type: KeyType, bytes: &[u8]) -> Result<PublicKey, CryptoError> {
        let invalid = |_| CryptoError::InvalidPublicKey("not a point on the curve");
        Ok(match key_type {
            KeyType::K256 => PublicKey::from_k256(k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(invalid)?),
            KeyType::P256 => PublicKey::from_p256(p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(invalid)?),
        })
    }

    /// A key from a multikey string (`z…`).
    pub fn from_multikey(text: &str) -> Result<PublicKey, CryptoError> {
        let (key_type, point) = multikey::decode(text)?;
        PublicKey::from_sec1_bytes(key_type, &point)
    }

    /// A key from a `did:key:z…` string.
    pub fn from_did_key(text: &str) -> Result<PublicKey, CryptoError> {
        let multikey = text
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(CryptoError::InvalidPublicKey("a did:key must start with \"did:key:\""))?;
        PublicKey::from_multikey(multikey)
    }

    /// The key's multikey string (`z…`), as DID documents' `Multikey` methods carry it.
    pub fn to_multikey(&self) -> String {
        multikey::encode(self.key_type(), &self.compressed_bytes())
    }

    /// The key's `did:key:z…` string.
    pub fn to_did_key(&self) -> String {
        format!("{DID_KEY_PREFIX}{}", self.to_multikey())
    }

    /// The curve.
    pub fn key_type(&self) -> KeyType {
        match self.inner {
            Inner::K256(_) => KeyType::K256,
            Inner::P256(_) => KeyType::P256,
        }
    }

    /// The point's affine coordinates `(x, y)`, as a JWK carries them.
    pub fn coordinates(&self) -> ([u8; 32], [u8; 32]) {
        let point = match &self.inner {
            Inner::K256(key) => key.to_sec1_point(false).as_bytes().to_vec(),
            Inner::P256(key) => key.to_sec1_point(false).as_bytes().to_vec(),
        };
        let (mut x, mut y) = ([0; 32], [0; 32]);
        if point.len() == 65 {
            x.copy_from_slice(&point[1..33]);
            y.copy_from_slice(&point[33..65]);
        }
        (x, y)
    }

    /// The SEC1 compressed point.
    pub fn compressed_bytes(&self) -> [u8; COMPRESSED_LENGTH] {
        let point = match &self.inner {
            Inner::K256(key) => key.to_sec1_point(true).as_bytes().to_vec(),
            Inner::P256(key) => key.to_sec1_point(true).as_bytes().to_vec(),
        };
        // Both curves' compressed points are 33 bytes; a shorter copy would only mean a bug in
        // the curve crate, and leaves zeros rather than panicking.
        let mut bytes = [0; COMPRESSED_LENGTH];
        let length = point.len().min(COMPRESSED_LENGTH);
        bytes[..length].copy_from_slice(&point[..length]);
        bytes
    }

    /// Checks a JWS signature (ES256, ES256K) over `message`: 64 bytes of `r‖s`, valid for this
    /// key over SHA-256 of the message. Unlike [`PublicKey::verify`] either S is accepted: JOSE
    /// does not ask signers (WebCrypto among them) to normalise it.
    pub fn verify_jws(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        if signature.len() != 64 {
            return Err(CryptoError::MalformedSignature("must be 64 bytes of r‖s"));
        }
        let digest = Sha256::digest(message);
        let malformed = |_| CryptoError::MalformedSignature("r or s is out of range");
        let bad = |_| CryptoError::BadSignature;
        match &self.inner {
            Inner::K256(key) => {
                let signature = k256::ecdsa::Signature::from_slice(signature).map_err(malformed)?.normalize_s();
                key.verify_prehash(&digest, &signature).map_err(bad)
            }
            Inner::P256(key) => {
                let signature = p256::ecdsa::Signature::from_slice(signature).map_err(malformed)?;
                key.verify_prehash(&digest, &signature).map_err(bad)
            }
        }
    }

    /// Checks `signature` over `message`: exactly 64 bytes of `r‖s`, low-S, and valid for this
    /// key over SHA-256 of the message.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        if signature.len() != 64 {
            return Err(CryptoError::MalformedSignature("must be 64 bytes of r‖s"));
        }
        let digest = Sha256::digest(message);
        let malformed = |_| CryptoError::MalformedSignature("r or s is out of range");
        let bad = |_| CryptoError::BadSignature;
        match &self.inner {
            Inner::K256(key) => {
                let signature = k256::ecdsa::Signature::from_slice(signature).map_err(malformed)?;
                if signature.normalize_s() != signature {
                    return Err(CryptoError::HighS);
                }
                key.verify_prehash(&digest, &signature).map_err(bad)
            }
            Inner::P256(key) => {
                let signature = p256::ecdsa::Signature::from_slice(signature).map_err(malformed)?;
                // p256 on its own accepts either S; atproto only the low one.
                if signature.normalize_s() != signature {
                    return Err(CryptoError::HighS);
                }
                key.verify_prehash(&digest, &signature).map_err(bad)
            }
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key_type() == other.key_type() && self.compressed_bytes() == other.compressed_bytes()
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_type().hash(state);
        self.compressed_bytes().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.to_did_key()).finish()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did_key())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    #[test]
    fn did_keys_carry_the_curve_in_their_prefix() {
        // The multicodec prefixes make K-256 keys start zQ3s and P-256 keys zDna.
        assert!(Keypair::generate(KeyType::K256).did_key().starts_with("did:key:zQ3s"));
        assert!(Keypair::generate(KeyType::P256).did_key().starts_with("did:key:zDna"));
    }

    #[test]
    fn a_multikey_in_another_multibase_is_rejected() {
        let key = Keypair::generate(KeyType::K256).public_key();
        let (_, bytes) = cid::multibase::decode(key.to_multikey()).unwrap();
        let base32 = cid::multibase::encode(cid::multibase::Base::Base32Lower, bytes);
        assert!(PublicKey::from_multikey(&base32).is_err());
    }

    #[test]
    fn a_did_key_with_an_unknown_codec_is_rejected() {
        // 0xed 0x01 is the Ed25519 prefix, which atproto does not use.
        let mut bytes = vec![0xed, 0x01];
        bytes.extend([7; 32]);
        let multikey = cid::multibase::encode(cid::multibase::Base::Base58Btc, bytes);
        assert!(PublicKey::from_did_key(&format!("did:key:{multikey}")).is_err());
    }

    #[test]
    fn a_did_web_is_not_a_did_key() {
        assert!(PublicKey::from_did_key("did:web:example.com").is_err());
    }

    #[test]
    fn the_high_s_twin_of_a_valid_p256_signature_is_rejected() {
        let keypair = Keypair::generate(KeyType::P256);
        let signature = keypair.sign(b"message");
        let low = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        let (r, s) = low.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let result = keypair.public_key().verify(b"message", &high.to_bytes());
        assert!(matches!(result, Err(CryptoError::HighS)));
    }
}
