//! Record keys: the last segment of a record's path within a collection.

use super::{all_bytes, Format, SyntaxError};

/// The spec's cap on a record key.
const MAX_LENGTH: usize = 512;

super::string_newtype!(
    /// A syntactically valid record key, such as a TID or `self`. The collection's lexicon may
    /// narrow this further (e.g. to TIDs only); that is the lexicon validator's job.
    RecordKey,
    validate
);

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let error = |reason| Err(SyntaxError::new(Format::RecordKey, reason));
    if text.is_empty() || text.len() > MAX_LENGTH {
        return error("must have 1 to 512 characters");
    }
    // `.` and `..` would be path traversal in any file- or URL-based store of records.
    if text == "." || text == ".." {
        return error("may not be \".\" or \"..\"");
    }
    if !all_bytes(text, |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~')) {
        return error("may only hold ASCII letters, digits and . - _ : ~");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_is_a_record_key() {
        assert!("self".parse::<RecordKey>().is_ok());
    }

    #[test]
    fn a_slash_is_not_allowed_in_a_record_key() {
        assert!("alpha/beta".parse::<RecordKey>().is_err());
    }

    #[test]
    fn dot_and_dot_dot_are_rejected_but_three_dots_are_not() {
        assert!(".".parse::<RecordKey>().is_err());
        assert!("..".parse::<RecordKey>().is_err());
        assert!("...".parse::<RecordKey>().is_ok());
    }
}
