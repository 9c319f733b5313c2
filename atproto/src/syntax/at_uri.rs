//! `at://` URIs naming a repository, a collection in it, or a record.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{at_identifier, nsid, record_key, Did, Format, Nsid, RecordKey, SyntaxError};

/// The spec's cap on an AT URI (8 KB).
const MAX_LENGTH: usize = 8192;
const SCHEME: &str = "at://";

/// An AT URI in the restricted form lexicons accept: `at://AUTHORITY[/COLLECTION[/RKEY]]`, with
/// no query, fragment or trailing slash. The text is kept exactly as written (a handle authority
/// is not lowercased in it), because URIs inside records are hashed as sent; its checked parts
/// are read from it, not kept beside it (a listed record's URI cost three allocations more).
///
/// Equality, hashing and ordering follow the text.
#[derive(Clone, Debug)]
pub struct AtUri {
    text: String,
    /// Where the authority ends in the text.
    authority_end: usize,
    /// Where the collection ends in the text, when the URI names one.
    collection_end: Option<usize>,
}

impl AtUri {
    /// The URI of a record: `at://{did}/{collection}/{rkey}`.
    pub fn record(did: &Did, collection: &Nsid, rkey: &RecordKey) -> AtUri {
        AtUri::of_parts(did.as_str(), collection.as_str(), rkey.as_str())
    }

    /// [`AtUri::record`] with a key that is still text (as read from a row): checked here.
    pub fn record_with_key(did: &Did, collection: &Nsid, rkey: &str) -> Result<AtUri, SyntaxError> {
        record_key::validate(rkey).map_err(|part| SyntaxError::new(Format::AtUri, part.reason()))?;
        Ok(AtUri::of_parts(did.as_str(), collection.as_str(), rkey))
    }

    fn of_parts(authority: &str, collection: &str, rkey: &str) -> AtUri {
        // Pushed piece by piece: `format!` through `Display` was half the cost of a listed record's URI.
        let parts = [SCHEME, authority, "/", collection, "/", rkey];
        let mut text = String::with_capacity(parts.iter().map(|part| part.len()).sum());
        parts.iter().for_each(|part| text.push_str(part));
        let authority_end = SCHEME.len() + authority.len();
        AtUri { text, authority_end, collection_end: Some(authority_end + 1 + collection.len()) }
    }

    /// The text exactly as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text, without copying it.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The repository, a DID or a handle, as written.
    pub fn authority(&self) -> &str {
        self.text.get(SCHEME.len()..self.authority_end).unwrap_or_default()
    }

    /// The collection (an NSID), when the URI names one.
    pub fn collection(&self) -> Option<&str> {
        self.text.get(self.authority_end + 1..self.collection_end?)
    }

    /// The record key, when the URI names a record.
    pub fn rkey(&self) -> Option<&str> {
        self.text.get(self.collection_end? + 1..)
    }
}

impl PartialEq for AtUri {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for AtUri {}

impl Hash for AtUri {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for AtUri {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AtUri {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl FromStr for AtUri {
    type Err = SyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::try_from(text.to_owned())
    }
}

impl TryFrom<String> for AtUri {
    type Error = SyntaxError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let error = |reason| SyntaxError::new(Format::AtUri, reason);
        // Every part is re-reported as an AT URI error, so callers see which field failed.
        let part_error = |part: SyntaxError| error(part.reason());
        if text.len() > MAX_LENGTH {
            return Err(error("longer than 8192 characters"));
        }
        let Some(path) = text.strip_prefix(SCHEME) else {
            return Err(error("does not start with \"at://\""));
        };
        // No part's syntax admits `/`, `?` or `#`, so splitting on `/` and validating each part
        // also rejects queries, fragments, empty segments and trailing slashes.
        let mut parts = path.split('/');
        let authority = parts.next().unwrap_or_default();
        at_identifier::validate(authority).map_err(part_error)?;
        let authority_end = SCHEME.len() + authority.len();
        let collection_end = match parts.next() {
            Some(collection) => {
                nsid::validate(collection).map_err(part_error)?;
                Some(authority_end + 1 + collection.len())
            }
            None => None,
        };
        if let Some(rkey) = parts.next() {
            record_key::validate(rkey).map_err(part_error)?;
        }
        if parts.next().is_some() {
            return Err(error("has more than three path segments"));
        }
        Ok(AtUri { text, authority_end, collection_end })
    }
}

super::string_conversions!(AtUri);

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_record_uri_exposes_its_parts() {
        let uri: AtUri = "at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a".parse().unwrap();
        assert_eq!(uri.authority(), "did:plc:asdf123");
        assert_eq!(uri.collection(), Some("app.bsky.feed.post"));
        assert_eq!(uri.rkey(), Some("3jzfcijpj2z2a"));
    }

    #[test]
    fn a_repository_uri_has_no_collection_or_key() {
        let uri: AtUri = "at://alice.test".parse().unwrap();
        assert!(uri.collection().is_none());
        assert!(uri.rkey().is_none());
    }

    #[test]
    fn a_handle_authority_is_kept_as_written() {
        let uri: AtUri = "at://Alice.Test/app.bsky.feed.post".parse().unwrap();
        assert_eq!(uri.authority(), "Alice.Test");
        assert_eq!(uri.collection(), Some("app.bsky.feed.post"));
        assert_eq!(uri.rkey(), None);
        assert_eq!(uri.as_str(), "at://Alice.Test/app.bsky.feed.post");
    }

    #[test]
    fn a_repository_uri_names_only_its_authority() {
        let uri: AtUri = "at://did:plc:asdf123".parse().unwrap();
        assert_eq!(uri.authority(), "did:plc:asdf123");
    }

    #[test]
    fn a_record_uri_from_a_key_still_text_checks_the_key() {
        let did = "did:plc:asdf123".parse::<crate::syntax::Did>().unwrap();
        let collection = "app.bsky.feed.post".parse().unwrap();
        let uri = AtUri::record_with_key(&did, &collection, "3jzfcijpj2z2a").unwrap();
        assert_eq!(uri.as_str(), "at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a");
        assert_eq!(uri.rkey(), Some("3jzfcijpj2z2a"));
        assert_eq!(uri.as_str().parse::<AtUri>().unwrap(), uri);
        assert!(AtUri::record_with_key(&did, &collection, "a/b").is_err());
        assert!(AtUri::record_with_key(&did, &collection, "..").is_err());
    }

    #[test]
    fn a_trailing_slash_is_rejected() {
        assert!("at://did:plc:asdf123/".parse::<AtUri>().is_err());
    }

    #[test]
    fn a_fragment_is_rejected() {
        assert!("at://did:plc:asdf123/app.bsky.feed.post/abc#frag".parse::<AtUri>().is_err());
    }

    #[test]
    fn a_built_record_uri_parses_back_to_itself() {
        let uri = AtUri::record(
            &"did:plc:asdf123".parse::<crate::syntax::Did>().unwrap(),
            &"app.bsky.feed.post".parse().unwrap(),
            &"self".parse().unwrap(),
        );
        assert_eq!(uri.as_str().parse::<AtUri>().unwrap(), uri);
    }
}
