//! Decentralised identifiers (`did:method:identifier`), the stable account identifiers.

use super::{all_bytes, Format, SyntaxError};

/// The spec caps DIDs at 2 KB so that they fit in indexes and URLs.
const MAX_LENGTH: usize = 2048;

super::string_newtype!(
    /// A syntactically valid DID, e.g. `did:plc:7iza6de2dwap2sbkpav7c6c6`. Only the generic DID
    /// syntax is checked; whether the method is one atproto supports is for resolution to decide.
    Did,
    validate
);

impl Did {
    /// The method name, e.g. `plc` for `did:plc:…`.
    pub fn method(&self) -> &str {
        method_and_identifier(&self.0).0
    }

    /// The method-specific identifier: everything after the second colon.
    pub fn identifier(&self) -> &str {
        method_and_identifier(&self.0).1
    }
}

fn method_and_identifier(did: &str) -> (&str, &str) {
    // Validation guarantees `did:` and a second colon, so the fallbacks are never taken.
    let rest = did.strip_prefix("did:").unwrap_or(did);
    rest.split_once(':').unwrap_or((rest, ""))
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let error = |reason| Err(SyntaxError::new(Format::Did, reason));
    if text.len() > MAX_LENGTH {
        return error("longer than 2048 characters");
    }
    let Some(rest) = text.strip_prefix("did:") else {
        return error("does not start with \"did:\"");
    };
    let Some((method, identifier)) = rest.split_once(':') else {
        return error("has no method-specific identifier");
    };
    if method.is_empty() || !all_bytes(method, |b| b.is_ascii_lowercase()) {
        return error("method must be one or more lowercase letters");
    }
    check_identifier(identifier).or_else(error)
}

/// The method-specific identifier: `[A-Za-z0-9._:-]` and `%XX` escapes, not ending with `:`.
fn check_identifier(identifier: &str) -> Result<(), &'static str> {
    let bytes = identifier.as_bytes();
    match bytes.last() {
        None => return Err("method-specific identifier is empty"),
        Some(b':') => return Err("ends with a colon"),
        Some(_) => {}
    }
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'%' => {
                let escape = bytes.get(index + 1..index + 3);
                if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return Err("a percent sign is not followed by two hex digits");
                }
                index += 3;
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-') => index += 1,
            _ => return Err("method-specific identifier has a disallowed character"),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_plc_did_exposes_its_method_and_identifier() {
        let did: Did = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse().unwrap();
        assert_eq!(did.method(), "plc");
        assert_eq!(did.identifier(), "7iza6de2dwap2sbkpav7c6c6");
    }

    #[test]
    fn a_web_did_keeps_the_colons_of_its_identifier() {
        let did: Did = "did:web:example.com:user:alice".parse().unwrap();
        assert_eq!(did.method(), "web");
        assert_eq!(did.identifier(), "example.com:user:alice");
    }

    #[test]
    fn a_percent_sign_without_two_hex_digits_is_rejected() {
        assert!("did:web:localhost%3".parse::<Did>().is_err());
        assert!("did:web:localhost%zz".parse::<Did>().is_err());
        assert!("did:web:localhost%3A1234".parse::<Did>().is_ok());
    }

    #[test]
    fn an_uppercase_method_is_rejected() {
        let error = "did:PLC:abc".parse::<Did>().unwrap_err();
        assert_eq!(error.format(), Format::Did);
    }
}
