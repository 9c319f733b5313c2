//! The `cid` string format: a content identifier as text, checked the way the spec checks it.

use cid::Cid;

use super::{all_bytes, Format, SyntaxError};

/// The spec's bounds on a CID's text.
const MIN_LENGTH: usize = 8;
const MAX_LENGTH: usize = 256;

super::string_newtype!(
    /// A CID in string form that passes the spec's syntactic check: 8 to 256 characters of
    /// letters, digits, `+` and `=`, and not a legacy CIDv0 (`Qm…`). Lexicon validation stops
    /// there on purpose, so records may carry CIDs in encodings or of versions we cannot decode;
    /// [`CidString::to_cid`] decodes one when a real CID is needed.
    CidString,
    validate
);

impl CidString {
    /// The decoded CID, or an error when the text is syntactically acceptable but not a CID this
    /// crate can decode (unknown multibase, bad varint, …).
    pub fn to_cid(&self) -> Result<Cid, cid::Error> {
        crate::cids::parse(&self.0)
    }
}

impl From<Cid> for CidString {
    fn from(cid: Cid) -> Self {
        // Every CIDv1 prints as base32 lowercase, which always satisfies the syntax above.
        CidString(cid.to_string())
    }
}

impl From<&Cid> for CidString {
    fn from(cid: &Cid) -> Self {
        CidString(cid.to_string())
    }
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let error = |reason| Err(SyntaxError::new(Format::Cid, reason));
    if text.len() < MIN_LENGTH || text.len() > MAX_LENGTH {
        return error("must have 8 to 256 characters");
    }
    if !all_bytes(text, |b| b.is_ascii_alphanumeric() || b == b'+' || b == b'=') {
        return error("may only hold ASCII letters, digits, + and =");
    }
    // CIDv0 is a bare base58 sha2-256 multihash; atproto only ever uses CIDv1.
    if text.starts_with("Qmb") {
        return error("CIDv0 is not supported");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_cid_string_decodes_to_the_same_cid() {
        let cid = crate::cids::for_dag_cbor(&[0xa0]);
        let text = CidString::from(cid);
        assert_eq!(text.to_cid().unwrap(), cid);
    }

    #[test]
    fn a_legacy_cid_v0_is_rejected() {
        assert!("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR".parse::<CidString>().is_err());
    }
}
