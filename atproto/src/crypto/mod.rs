//! Signing keys as atproto uses them: ECDSA over secp256k1 (`K256`) or NIST P-256 (`P256`), on
//! the SHA-256 of the message, with 64-byte compact `r‖s` signatures that must be low-S.
//!
//! Public keys travel as `did:key` strings and multikeys (`z` + base58btc of a multicodec prefix
//! and the compressed point). Verification is stricter than the curve crates on their own: it
//! refuses high-S and DER signatures for both curves, as the spec requires, so that a signature
//! has exactly one accepted form.

mod key_file;
mod keypair;
mod multikey;
mod public_key;

#[cfg(test)]
mod interop_tests;

pub use key_file::{read_private_key_file, write_private_key_file};
pub use keypair::Keypair;
pub use public_key::PublicKey;

/// The curves atproto signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    /// secp256k1, the curve of most atproto repo signing keys and PLC rotation keys.
    K256,
    /// NIST P-256, which hardware keystores and WebCrypto support.
    P256,
}

impl KeyType {
    /// The JWT `alg` for signatures with this curve (`ES256K` or `ES256`).
    pub fn jwt_algorithm(self) -> &'static str {
        match self {
            KeyType::K256 => "ES256K",
            KeyType::P256 => "ES256",
        }
    }
}

/// Why a key or signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(&'static str),
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
    /// Not 64 bytes of compact `r‖s` (DER-encoded signatures land here), or `r`/`s` out of range.
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// A high-S signature: valid ECDSA, but the spec admits only the low-S twin.
    #[error("signature is not in low-S form")]
    HighS,
    #[error("signature does not match the message and key")]
    BadSignature,
    #[error("could not access the key file: {0}")]
    Io(#[from] std::io::Error),
}
