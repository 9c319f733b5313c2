//! Handles: DNS names that act as human-readable, mutable account names.

use super::{all_bytes, Format, SyntaxError};

/// The DNS limit on a whole name.
const MAX_LENGTH: usize = 253;
/// The DNS limit on one label.
const MAX_LABEL_LENGTH: usize = 63;

/// Top-level domains the spec reserves: a handle under one is syntactically valid but must not be
/// registered or resolved, because it can never be verified through public DNS.
const RESERVED_TLDS: [&str; 8] = ["alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"];

super::string_newtype!(
    /// A syntactically valid handle such as `alice.bsky.social`, lowercased on parse because
    /// handles compare case-insensitively and storing one spelling keeps lookups exact.
    Handle,
    validate,
    |text: &mut String| text.make_ascii_lowercase()
);

impl Handle {
    /// What a DID document's handle is shown as when it fails bidirectional verification.
    pub const INVALID: &'static str = "handle.invalid";

    /// [`Handle::INVALID`] as a handle, for answers that must carry one.
    pub fn invalid() -> Handle {
        Handle(Self::INVALID.to_owned())
    }

    /// Whether the handle sits under a top-level domain the spec reserves (`.local`, `.invalid`,
    /// `.onion`, …), which a PDS must refuse to register.
    pub fn has_reserved_tld(&self) -> bool {
        let tld = self.0.rsplit('.').next().unwrap_or_default();
        RESERVED_TLDS.contains(&tld)
    }
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let error = |reason| Err(SyntaxError::new(Format::Handle, reason));
    if text.len() > MAX_LENGTH {
        return error("longer than 253 characters");
    }
    let mut labels = text.split('.').peekable();
    let mut count = 0;
    while let Some(label) = labels.next() {
        count += 1;
        if label.is_empty() || label.len() > MAX_LABEL_LENGTH {
            return error("each label must have 1 to 63 characters");
        }
        if !all_bytes(label, |b| b.is_ascii_alphanumeric() || b == b'-') {
            return error("labels may only hold ASCII letters, digits and hyphens");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return error("a label starts or ends with a hyphen");
        }
        // The top-level domain may not start with a digit, which also keeps IPv4 addresses out.
        if labels.peek().is_none() && !label.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return error("the top-level domain must start with a letter");
        }
    }
    if count < 2 {
        return error("needs at least two labels");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_lowercased_on_parse() {
        let handle: Handle = "Alice.Bsky.Social".parse().unwrap();
        assert_eq!(handle.as_str(), "alice.bsky.social");
    }

    #[test]
    fn a_handle_with_a_trailing_dot_is_rejected() {
        assert!("alice.test.".parse::<Handle>().is_err());
    }

    #[test]
    fn a_handle_deserialised_from_json_is_lowercased() {
        let handle: Handle = serde_json::from_str("\"BOB.Test\"").unwrap();
        assert_eq!(handle.as_str(), "bob.test");
    }

    #[test]
    fn reserved_top_level_domains_are_recognised() {
        assert!("laptop.local".parse::<Handle>().unwrap().has_reserved_tld());
        assert!(Handle::INVALID.parse::<Handle>().unwrap().has_reserved_tld());
        assert!(!"alice.bsky.social".parse::<Handle>().unwrap().has_reserved_tld());
    }
}
