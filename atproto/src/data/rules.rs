//! The data model's rules on values, shared by the JSON and DAG-CBOR paths.

use std::collections::BTreeMap;

use super::{DataError, Ipld, MAX_SAFE_INTEGER};

/// Checks a whole value against the data model, e.g. after decoding it from DAG-CBOR.
pub fn validate(value: &Ipld) -> Result<(), DataError> {
    match value {
        Ipld::Null | Ipld::Bool(_) | Ipld::String(_) | Ipld::Bytes(_) | Ipld::Link(_) => Ok(()),
        Ipld::Integer(integer) => check_integer(*integer).map(drop),
        Ipld::Float(_) => Err(DataError::Float),
        Ipld::List(items) => items.iter().try_for_each(validate),
        Ipld::Map(map) => {
            check_map(map)?;
            map.values().try_for_each(validate)
        }
    }
}

/// The integer as an `i64`, if within the safe range.
pub(super) fn check_integer(integer: i128) -> Result<i64, DataError> {
    i64::try_from(integer)
        .ok()
        .filter(|value| value.unsigned_abs() <= MAX_SAFE_INTEGER.unsigned_abs())
        .ok_or(DataError::IntegerOutOfRange)
}

/// The rules for one map, not descending into its values.
pub(super) fn check_map(map: &BTreeMap<String, Ipld>) -> Result<(), DataError> {
    // In JSON these keys turn an object into a link or bytes, so a map holding them could not
    // round-trip; the spec reserves them.
    for key in ["$link", "$bytes"] {
        if map.contains_key(key) {
            return Err(DataError::ReservedKey(key));
        }
    }
    check_typed(|key| {
        map.get(key).map(|value| match value {
            Ipld::Link(_) => Entry::Link,
            Ipld::String(text) => Entry::Text(text),
            Ipld::Integer(integer) if *integer >= 0 => Entry::NonNegative,
            _ => Entry::Other,
        })
    })
}

/// What the `$type` rules need to know of a map's entry, whichever tree holds the map (an
/// [`Ipld`] map here, a JSON object when DAG-CBOR is turned straight into JSON).
pub(super) enum Entry<'a> {
    Link,
    Text(&'a str),
    NonNegative,
    Other,
}

/// The `$type` rules for one map whose entries `entry` gives by key: a `$type` is a non-empty
/// string, and a `$type: blob` map carries a link, a MIME type and a size.
pub(super) fn check_typed<'a>(entry: impl Fn(&str) -> Option<Entry<'a>>) -> Result<(), DataError> {
    match entry("$type") {
        None => Ok(()),
        Some(Entry::Text("blob")) => {
            if !matches!(entry("ref"), Some(Entry::Link)) {
                return Err(DataError::InvalidBlob("ref must be a link"));
            }
            if !matches!(entry("mimeType"), Some(Entry::Text(mime)) if !mime.is_empty()) {
                return Err(DataError::InvalidBlob("mimeType must be a non-empty string"));
            }
            match entry("size") {
                Some(Entry::NonNegative) => Ok(()),
                _ => Err(DataError::InvalidBlob("size must be a non-negative integer")),
            }
        }
        Some(Entry::Text(kind)) if !kind.is_empty() => Ok(()),
        Some(_) => Err(DataError::InvalidType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_values::map;

    #[test]
    fn a_float_anywhere_is_rejected() {
        let value = map(&[("a", Ipld::List(vec![Ipld::Float(1.5)]))]);
        assert_eq!(validate(&value), Err(DataError::Float));
    }

    #[test]
    fn integers_at_the_edge_of_the_safe_range_are_accepted_and_beyond_it_rejected() {
        let max = i128::from(MAX_SAFE_INTEGER);
        assert!(validate(&Ipld::Integer(max)).is_ok());
        assert!(validate(&Ipld::Integer(-max)).is_ok());
        assert_eq!(validate(&Ipld::Integer(max + 1)), Err(DataError::IntegerOutOfRange));
        assert_eq!(validate(&Ipld::Integer(-max - 1)), Err(DataError::IntegerOutOfRange));
    }

    #[test]
    fn an_empty_type_is_rejected() {
        assert_eq!(validate(&map(&[("$type", Ipld::String(String::new()))])), Err(DataError::InvalidType));
    }

    #[test]
    fn a_map_with_a_link_key_is_rejected_because_json_could_not_carry_it() {
        let value = map(&[("$link", Ipld::String("bafy".into()))]);
        assert_eq!(validate(&value), Err(DataError::ReservedKey("$link")));
    }

    #[test]
    fn a_blob_without_a_link_is_rejected() {
        let value = map(&[
            ("$type", Ipld::String("blob".into())),
            ("ref", Ipld::String("bafy".into())),
            ("mimeType", Ipld::String("image/png".into())),
            ("size", Ipld::Integer(1)),
        ]);
        assert!(matches!(validate(&value), Err(DataError::InvalidBlob(_))));
    }
}
