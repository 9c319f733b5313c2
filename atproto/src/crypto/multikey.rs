//! The multikey encoding: `z` + base58btc(multicodec varint prefix ‖ compressed point).

use cid::multibase::{self, Base};

use super::{CryptoError, KeyType};

/// Varint encodings of the multicodec codes `secp256k1-pub` (0xe7) and `p256-pub` (0x1200).
const K256_PREFIX: [u8; 2] = [0xe7, 0x01];
const P256_PREFIX: [u8; 2] = [0x80, 0x24];

/// Bytes in a SEC1 compressed point for either curve.
pub(super) const COMPRESSED_LENGTH: usize = 33;

fn prefix(key_type: KeyType) -> [u8; 2] {
    match key_type {
        KeyType::K256 => K256_PREFIX,
        KeyType::P256 => P256_PREFIX,
    }
}

/// The multikey string for a compressed point.
pub(super) fn encode(key_type: KeyType, compressed: &[u8; COMPRESSED_LENGTH]) -> String {
    let mut bytes = Vec::with_capacity(2 + COMPRESSED_LENGTH);
    bytes.extend_from_slice(&prefix(key_type));
    bytes.extend_from_slice(compressed);
    multibase::encode(Base::Base58Btc, bytes)
}

/// The curve and compressed point a multikey string names.
pub(super) fn decode(text: &str) -> Result<(KeyType, Vec<u8>), CryptoError> {
    // The spec fixes base58btc; other multibases would give one key several spellings.
    if !text.starts_with('z') {
        return Err(CryptoError::InvalidPublicKey("a multikey must be base58btc (start with z)"));
    }
    let (_, bytes) = multibase::decode(text).map_err(|_| CryptoError::InvalidPublicKey("not valid base58btc"))?;
    let key_type = if bytes.starts_with(&K256_PREFIX) {
        KeyType::K256
    } else if bytes.starts_with(&P256_PREFIX) {
        KeyType::P256
    } else {
        return Err(CryptoError::InvalidPublicKey("unsupported multicodec key type"));
    };
    let point = bytes[2..].to_vec();
    if point.len() != COMPRESSED_LENGTH {
        return Err(CryptoError::InvalidPublicKey("a multikey must hold a 33-byte compressed point"));
    }
    Ok((key_type, point))
}
