//! The generic `uri` format: any absolute URI, as lexicons use for links and service endpoints.

use super::{Format, SyntaxError};

/// The spec's cap on a URI (8 KB).
const MAX_LENGTH: usize = 8192;

super::string_newtype!(
    /// A URI with a scheme (`https:`, `did:`, `at:`, `dns:` …) and a non-empty body free of
    /// whitespace. This is deliberately loose: the format only promises "something a program
    /// can dispatch on by scheme", not a URL that resolves.
    Uri,
    validate
);

impl Uri {
    /// The scheme, without the colon, e.g. `https`.
    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map_or("", |(scheme, _)| scheme)
    }
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let error = |reason| Err(SyntaxError::new(Format::Uri, reason));
    if text.len() > MAX_LENGTH {
        return error("longer than 8192 bytes");
    }
    let Some((scheme, rest)) = text.split_once(':') else {
        return error("has no scheme");
    };
    // RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return error("the scheme must be a letter followed by letters, digits, + - or .");
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return error("contains whitespace or a control character");
    }
    // After an optional `//`, something other than another slash must follow: `http:` and
    // `https:///path` name nothing.
    let body = rest.strip_prefix("//").unwrap_or(rest);
    if body.is_empty() || body.starts_with('/') {
        return error("has nothing after the scheme");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_uri_exposes_its_scheme() {
        assert_eq!("https://example.com".parse::<Uri>().unwrap().scheme(), "https");
    }

    #[test]
    fn a_bare_domain_is_not_a_uri() {
        assert!("example.com".parse::<Uri>().is_err());
    }

    #[test]
    fn a_scheme_starting_with_a_digit_is_rejected() {
        assert!("1http://example.com".parse::<Uri>().is_err());
    }
}
