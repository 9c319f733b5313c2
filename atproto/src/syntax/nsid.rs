//! Namespaced identifiers (`com.example.fooBar`) naming lexicons, record collections and methods.

use super::{all_bytes, Format, SyntaxError};

/// The spec's cap on a whole NSID.
const MAX_LENGTH: usize = 317;
/// The DNS limit on one label, which the authority segments inherit.
const MAX_SEGMENT_LENGTH: usize = 63;

super::string_newtype!(
    /// A syntactically valid NSID: a reversed domain authority followed by a name, such as
    /// `app.bsky.feed.post`. Case is kept as written, since names are case-sensitive.
    Nsid,
    validate
);

impl Nsid {
    /// The final segment, e.g. `post` in `app.bsky.feed.post`.
    pub fn name(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(_, name)| name)
    }

    /// The reversed-domain authority, e.g. `app.bsky.feed` in `app.bsky.feed.post`.
    pub fn authority(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(authority, _)| authority)
    }

    /// The authority as a domain name, e.g. `feed.bsky.app`, where its lexicons are published.
    pub fn authority_domain(&self) -> String {
        self.authority().split('.').rev().collect::<Vec<_>>().join(".")
    }
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let error = |reason| Err(SyntaxError::new(Format::Nsid, reason));
    if text.len() > MAX_LENGTH {
        return error("longer than 317 characters");
    }
    let Some((authority, name)) = text.rsplit_once('.') else {
        return error("needs at least three segments");
    };
    if !authority.contains('.') {
        return error("needs at least three segments");
    }
    for segment in authority.split('.') {
        if segment.is_empty() || segment.len() > MAX_SEGMENT_LENGTH {
            return error("each segment must have 1 to 63 characters");
        }
        if !all_bytes(segment, |b| b.is_ascii_alphanumeric() || b == b'-') {
            return error("authority segments may only hold ASCII letters, digits and hyphens");
        }
        if segment.starts_with('-') || segment.ends_with('-') {
            return error("an authority segment starts or ends with a hyphen");
        }
    }
    // The first segment is a top-level domain, which never starts with a digit.
    if authority.starts_with(|c: char| c.is_ascii_digit()) {
        return error("the first segment starts with a digit");
    }
    if name.is_empty() || name.len() > MAX_SEGMENT_LENGTH {
        return error("the name must have 1 to 63 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) || !all_bytes(name, |b| b.is_ascii_alphanumeric()) {
        return error("the name must be ASCII letters and digits, starting with a letter");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn an_nsid_splits_into_authority_and_name() {
        let nsid: Nsid = "app.bsky.feed.post".parse().unwrap();
        assert_eq!(nsid.authority(), "app.bsky.feed");
        assert_eq!(nsid.name(), "post");
        assert_eq!(nsid.authority_domain(), "feed.bsky.app");
    }

    #[test]
    fn an_nsid_keeps_the_case_of_its_name() {
        assert_eq!("com.example.fooBar".parse::<Nsid>().unwrap().name(), "fooBar");
    }

    #[test]
    fn a_name_with_a_hyphen_is_rejected() {
        assert!("com.example.foo-bar".parse::<Nsid>().is_err());
    }

    #[test]
    fn two_segments_are_not_enough() {
        assert!("com.example".parse::<Nsid>().is_err());
    }
}
