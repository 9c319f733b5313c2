//! The `at-identifier` format: an account named either by its DID or by its handle.

use std::str::FromStr;

use super::{did, handle, Did, Format, Handle, SyntaxError};

/// A DID or a handle, as accepted wherever the spec lets a client name an account either way.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtIdentifier {
    Did(Did),
    Handle(Handle),
}

impl AtIdentifier {
    /// The identifier's text (the handle lowercased).
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(did) => did.as_str(),
            AtIdentifier::Handle(handle) => handle.as_str(),
        }
    }

    /// The identifier's text, without copying it.
    pub fn into_string(self) -> String {
        match self {
            AtIdentifier::Did(did) => did.into_string(),
            AtIdentifier::Handle(handle) => handle.into_string(),
        }
    }

    /// The DID, when the account was named by one.
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            AtIdentifier::Did(did) => Some(did),
            AtIdentifier::Handle(_) => None,
        }
    }

    /// The handle, when the account was named by one.
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            AtIdentifier::Did(_) => None,
            AtIdentifier::Handle(handle) => Some(handle),
        }
    }
}

/// A string that starts with `did:` can only be a DID (a handle has no colon), so the prefix
/// decides which syntax applies and the error names that syntax.
fn looks_like_did(text: &str) -> bool {
    text.starts_with("did:")
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let result = if looks_like_did(text) { did::validate(text) } else { handle::validate(text) };
    result.map_err(|error| SyntaxError::new(Format::AtIdentifier, error.reason()))
}

impl FromStr for AtIdentifier {
    type Err = SyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::try_from(text.to_owned())
    }
}

impl TryFrom<String> for AtIdentifier {
    type Error = SyntaxError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        // The inner type's parse is the whole check (as `validate`'s), made once: checking
        // first and parsing after validated every identifier twice.
        let as_identifier = |error: SyntaxError| SyntaxError::new(Format::AtIdentifier, error.reason());
        if looks_like_did(&text) {
            Did::try_from(text).map(AtIdentifier::Did).map_err(as_identifier)
        } else {
            Handle::try_from(text).map(AtIdentifier::Handle).map_err(as_identifier)
        }
    }
}

impl From<Did> for AtIdentifier {
    fn from(did: Did) -> Self {
        AtIdentifier::Did(did)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(handle: Handle) -> Self {
        AtIdentifier::Handle(handle)
    }
}

super::string_conversions!(AtIdentifier);

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_did_is_parsed_as_a_did() {
        let id: AtIdentifier = "did:plc:abc123".parse().unwrap();
        assert!(id.as_did().is_some());
    }

    #[test]
    fn a_handle_is_parsed_as_a_lowercased_handle() {
        let id: AtIdentifier = "Alice.Test".parse().unwrap();
        assert_eq!(id.as_handle().map(Handle::as_str), Some("alice.test"));
    }

    #[test]
    fn an_email_address_is_neither() {
        let error = "alice@example.com".parse::<AtIdentifier>().unwrap_err();
        assert_eq!(error.format(), Format::AtIdentifier);
    }
}
