//! Runs every syntax vector of the atproto interop tests against both [`Format::check`] and the
//! matching newtype's parser, which must agree.

use std::fs;
use std::path::Path;

use super::*;

/// The vector file prefix for each format.
fn file_prefix(format: Format) -> &'static str {
    match format {
        Format::Did => "did",
        Format::Handle => "handle",
        Format::Nsid => "nsid",
        Format::AtUri => "aturi",
        Format::AtIdentifier => "atidentifier",
        Format::Tid => "tid",
        Format::RecordKey => "recordkey",
        Format::Cid => "cid",
        Format::Datetime => "datetime",
        Format::Language => "language",
        Format::Uri => "uri",
    }
}

/// The cases of one vector file: every line that is neither empty nor a `#` comment, kept
/// byte-exact because leading and trailing spaces are part of several cases.
fn cases(path: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines().filter(|line| !line.is_empty() && !line.starts_with('#')).map(str::to_owned).collect()
}

/// Parses `value` with the newtype for `format`, returning its text as the type reports it.
fn parse_typed(format: Format, value: &str) -> Result<String, SyntaxError> {
    fn text<T: AsRef<str>>(parsed: T) -> String {
        parsed.as_ref().to_owned()
    }
    match format {
        Format::Did => value.parse::<Did>().map(text),
        Format::Handle => value.parse::<Handle>().map(text),
        Format::Nsid => value.parse::<Nsid>().map(text),
        Format::AtUri => value.parse::<AtUri>().map(text),
        Format::AtIdentifier => value.parse::<AtIdentifier>().map(text),
        Format::Tid => value.parse::<Tid>().map(text),
        Format::RecordKey => value.parse::<RecordKey>().map(text),
        Format::Cid => value.parse::<CidString>().map(text),
        Format::Datetime => value.parse::<Datetime>().map(text),
        Format::Language => value.parse::<Language>().map(text),
        Format::Uri => value.parse::<Uri>().map(text),
    }
}

#[test]
fn every_interop_syntax_vector_is_classified_correctly() {
    let Some(dir) = crate::interop::dir() else {
        return;
    };
    let dir = dir.join("syntax");
    let mut failures = Vec::new();
    let mut total_valid = 0;
    let mut total_invalid = 0;
    for format in Format::ALL {
        let prefix = file_prefix(format);
        let valid = cases(&dir.join(format!("{prefix}_syntax_valid.txt")));
        let mut invalid = cases(&dir.join(format!("{prefix}_syntax_invalid.txt")));
        invalid.extend(cases(&dir.join(format!("{prefix}_parse_invalid.txt"))));
        assert!(!valid.is_empty(), "no valid vectors for {format}");
        for case in &valid {
            let checked = format.check(case);
            let parsed = parse_typed(format, case);
            match (&checked, &parsed) {
                (Ok(()), Ok(text)) => {
                    // Handles (bare, or as an AT identifier) are lowercased; all else is kept.
                    let is_handle =
                        format == Format::Handle || (format == Format::AtIdentifier && !case.starts_with("did:"));
                    let expected = if is_handle { case.to_ascii_lowercase() } else { case.clone() };
                    if *text != expected {
                        failures.push(format!("{format}: {case:?} came back as {text:?}"));
                    }
                }
                _ => failures.push(format!("{format}: valid {case:?} rejected: {checked:?} / {parsed:?}")),
            }
        }
        for case in &invalid {
            if format.check(case).is_ok() || parse_typed(format, case).is_ok() {
                failures.push(format!("{format}: invalid {case:?} accepted"));
            }
        }
        println!("{format} syntax: {} valid, {} invalid cases", valid.len(), invalid.len());
        total_valid += valid.len();
        total_invalid += invalid.len();
    }
    println!("all syntax: {total_valid} valid, {total_invalid} invalid cases");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_valid_interop_value_survives_a_json_round_trip() {
    let Some(dir) = crate::interop::dir() else {
        return;
    };
    let mut count = 0;
    for case in cases(&dir.join("syntax/aturi_syntax_valid.txt")) {
        let uri: AtUri =
            serde_json::from_value(serde_json::Value::String(case.clone())).unwrap_or_else(|e| panic!("{case:?}: {e}"));
        assert_eq!(serde_json::to_value(&uri).ok(), Some(serde_json::Value::String(case)));
        count += 1;
    }
    for case in cases(&dir.join("syntax/datetime_syntax_invalid.txt")) {
        assert!(serde_json::from_value::<Datetime>(serde_json::Value::String(case)).is_err());
        count += 1;
    }
    println!("syntax serde: {count} cases");
}

#[test]
fn the_valid_interop_cids_that_use_a_supported_encoding_decode() {
    let Some(dir) = crate::interop::dir() else {
        return;
    };
    let (mut decoded, mut undecodable) = (0, Vec::new());
    for case in cases(&dir.join("syntax/cid_syntax_valid.txt")) {
        match case.parse::<CidString>().map(|cid| cid.to_cid()) {
            Ok(Ok(_)) => decoded += 1,
            _ => undecodable.push(case),
        }
    }
    // Syntax validation is deliberately looser than decoding; list what only the former admits.
    println!("cid decode: {decoded} decoded, {} syntax-only: {undecodable:?}", undecodable.len());
    assert!(decoded > 0);
}
