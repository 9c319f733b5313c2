//! MST keys (repo paths) and the depth a key's hash assigns it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The longest key accepted, in bytes. The spec sets no number; a maximal NSID (317) plus `/`
/// plus a maximal record key (512) fits with room to spare, and anything longer is abuse.
pub const MAX_KEY_LEN: usize = 1024;

/// The greatest height a key can have: all 256 bits of its hash zero, two bits per level.
pub const MAX_HEIGHT: u8 = 128;

/// A repo path used as an MST key: `<collection>/<record-key>`, at most [`MAX_KEY_LEN`] bytes
/// from the characters the spec allows. Collection and record key are checked only for shape
/// here (non-empty, allowed characters, not `.` or `..`): the MST must load any tree another
/// implementation could have written, and NSID rules are the caller's to apply on new writes.
///
/// Cheap to clone: the text is shared.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MstKey(Arc<str>);

/// Why a string is not a valid MST key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid MST key: {0}")]
pub struct InvalidKey(&'static str);

impl MstKey {
    /// The key for `rkey` in `collection`.
    pub fn new(collection: &str, rkey: &str) -> Result<MstKey, InvalidKey> {
        format!("{collection}/{rkey}").parse()
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's bytes, as the tree orders and hashes them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The collection part, before the `/`.
    pub fn collection(&self) -> &str {
        self.split().0
    }

    /// The record-key part, after the `/`.
    pub fn rkey(&self) -> &str {
        self.split().1
    }

    /// The key's height (layer) in the tree.
    pub fn height(&self) -> u8 {
        height(self.as_bytes())
    }

    fn split(&self) -> (&str, &str) {
        // Validation guarantees exactly one slash.
        self.0.split_once('/').unwrap_or((&self.0, ""))
    }

    pub(crate) fn from_validated_bytes(bytes: Vec<u8>) -> Result<MstKey, InvalidKey> {
        validate(&bytes)?;
        // Validation admits only ASCII, so the bytes are UTF-8.
        String::from_utf8(bytes).map(|text| MstKey(text.into())).map_err(|_| InvalidKey("not UTF-8"))
    }
}

impl FromStr for MstKey {
    type Err = InvalidKey;

    fn from_str(text: &str) -> Result<MstKey, InvalidKey> {
        validate(text.as_bytes())?;
        Ok(MstKey(text.into()))
    }
}

impl TryFrom<String> for MstKey {
    type Error = InvalidKey;

    fn try_from(text: String) -> Result<MstKey, InvalidKey> {
        validate(text.as_bytes())?;
        Ok(MstKey(text.into()))
    }
}

impl fmt::Display for MstKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MstKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for MstKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn validate(key: &[u8]) -> Result<(), InvalidKey> {
    if key.len() > MAX_KEY_LEN {
        return Err(InvalidKey("longer than 1024 bytes"));
    }
    let Some(slash) = key.iter().position(|&byte| byte == b'/') else {
        return Err(InvalidKey("must be <collection>/<record-key>"));
    };
    let (collection, rkey) = (&key[..slash], &key[slash + 1..]);
    for part in [collection, rkey] {
        if part.is_empty() {
            return Err(InvalidKey("collection and record key must not be empty"));
        }
        if part == b"." || part == b".." {
            return Err(InvalidKey("collection and record key must not be . or .."));
        }
        // The record-key alphabet; it also covers every NSID. A second slash fails here.
        if !part.iter().all(|&byte| byte.is_ascii_alphanumeric() || b"_~-:.".contains(&byte)) {
            return Err(InvalidKey("only A-Za-z0-9 . - _ : ~ and one / are allowed"));
        }
    }
    Ok(())
}

/// The height of `key`: leading zero bits of its SHA-256 hash, halved (fanout 4).
pub fn height(key: &[u8]) -> u8 {
    let digest = Sha256::digest(key);
    let mut zeros = 0u32;
    for byte in digest {
        zeros += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    // At most 256 zero bits, so the quotient fits in a u8.
    (zeros / 2) as u8
}

/// How many leading bytes `a` and `b` share: the prefix an MST node elides from a key.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn ordinary_repo_paths_are_valid_keys() {
        for key in ["app.bsky.feed.post/3jzfcijpj2z2a", "com.example.record/self", "A0/374913", "a/b:c~d_e-f.g"] {
            assert!(key.parse::<MstKey>().is_ok(), "{key}");
        }
    }

    #[test]
    fn malformed_paths_are_rejected() {
        let long = format!("app.bsky.feed.post/{}", "a".repeat(MAX_KEY_LEN));
        for key in ["", "/", "a/", "/b", "a/b/c", "no-slash", "a/./", "a/..", "./b", "a/b c", "a/é", long.as_str()] {
            assert!(key.parse::<MstKey>().is_err(), "{key}");
        }
    }

    #[test]
    fn a_key_splits_into_collection_and_rkey() {
        let key = MstKey::new("app.bsky.feed.like", "3jzfcijpj2z2a").unwrap();
        assert_eq!(key.collection(), "app.bsky.feed.like");
        assert_eq!(key.rkey(), "3jzfcijpj2z2a");
    }

    #[test]
    fn the_spec_examples_have_their_stated_heights() {
        assert_eq!(height(b"2653ae71"), 0);
        assert_eq!(height(b"blue"), 1);
        assert_eq!(height(b"app.bsky.feed.post/454397e440ec"), 4);
        assert_eq!(height(b"app.bsky.feed.post/9adeb165882c"), 8);
    }
}
