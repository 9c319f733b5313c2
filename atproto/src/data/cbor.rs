//! Canonical DAG-CBOR: the bytes that are hashed into CIDs and signed.

use cid::Cid;

use super::{json_to_ipld, validate, DataError, Ipld};
use crate::cids;

/// The canonical DAG-CBOR encoding of a value in the data model: map keys sorted by length then
/// bytewise, integers and lengths in their shortest form, links as tag 42 over a 0x00-prefixed
/// binary CID. Fails on values outside the data model (floats, unsafe integers, bad blobs).
pub fn to_dag_cbor(value: &Ipld) -> Result<Vec<u8>, DataError> {
    validate(value)?;
    serde_ipld_dagcbor::to_vec(value).map_err(|error| DataError::Encode(error.to_string()))
}

/// The DAG-CBOR encoding of a typed value (a generated lexicon type, say): serde's data model
/// mapped onto DAG-CBOR, with map keys in canonical order. Values whose types write the data
/// model's binary forms (bytes, links) when the format is not human-readable encode exactly as
/// their [`Ipld`] would.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, DataError> {
    serde_ipld_dagcbor::to_vec(value).map_err(|error| DataError::Encode(error.to_string()))
}

/// Decodes DAG-CBOR into a typed value (no canonical-form check: for values this server wrote).
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DataError> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(|error| DataError::Decode(error.to_string()))
}

/// Decodes DAG-CBOR strictly: the bytes must be exactly the canonical encoding of a value in the
/// data model. Non-canonical key order, duplicate keys, floats, indefinite lengths, tags other
/// than 42, non-minimal integers and trailing bytes are all refused, so that a value's bytes,
/// and hence its CID, are unique.
pub fn from_dag_cbor(bytes: &[u8]) -> Result<Ipld, DataError> {
    let value: Ipld = serde_ipld_dagcbor::from_slice(bytes).map_err(|error| DataError::Decode(error.to_string()))?;
    validate(&value)?;
    // The decoder already refuses most non-canonical forms; re-encoding catches the rest (e.g.
    // bytes trailing a CID inside its tag) and keeps this promise independent of its version.
    let canonical = serde_ipld_dagcbor::to_vec(&value).map_err(|error| DataError::Encode(error.to_string()))?;
    if canonical != bytes {
        return Err(DataError::NotCanonical);
    }
    Ok(value)
}

/// The CID and canonical DAG-CBOR bytes of a value, ready to store as a block.
pub fn cid_for_ipld(value: &Ipld) -> Result<(Cid, Vec<u8>), DataError> {
    let bytes = to_dag_cbor(value)?;
    Ok((cids::for_dag_cbor(&bytes), bytes))
}

/// The CID a value in atproto JSON would have as a DAG-CBOR block, e.g. to name a record.
pub fn cid_for_json(value: &serde_json::Value) -> Result<Cid, DataError> {
    cid_for_ipld(&json_to_ipld(value)?).map(|(cid, _)| cid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::data::test_values::map;

    #[test]
    fn shorter_keys_sort_before_longer_ones() {
        let value = map(&[("aa", Ipld::Integer(1)), ("b", Ipld::Integer(2))]);
        // {"b": 2, "aa": 1}
        assert_eq!(to_dag_cbor(&value).unwrap(), [0xa2, 0x61, b'b', 0x02, 0x62, b'a', b'a', 0x01]);
    }

    #[test]
    fn integers_use_their_shortest_encoding() {
        let cases: [(i128, &[u8]); 6] = [
            (23, &[0x17]),
            (24, &[0x18, 0x18]),
            (256, &[0x19, 0x01, 0x00]),
            (65_536, &[0x1a, 0x00, 0x01, 0x00, 0x00]),
            (-1, &[0x20]),
            (-25, &[0x38, 0x18]),
        ];
        for (integer, expected) in cases {
            assert_eq!(to_dag_cbor(&Ipld::Integer(integer)).unwrap(), expected, "{integer}");
        }
    }

    #[test]
    fn a_link_is_tag_42_over_a_zero_prefixed_cid() {
        let cid = cids::for_dag_cbor(&[0xa0]);
        let bytes = to_dag_cbor(&Ipld::Link(cid)).unwrap();
        let cid_bytes = cid.to_bytes();
        assert_eq!(&bytes[..2], [0xd8, 0x2a]);
        assert_eq!(bytes[2], 0x58);
        assert_eq!(usize::from(bytes[3]), cid_bytes.len() + 1);
        assert_eq!(bytes[4], 0x00);
        assert_eq!(&bytes[5..], cid_bytes);
        assert_eq!(from_dag_cbor(&bytes).unwrap(), Ipld::Link(cid));
    }

    #[test]
    fn the_empty_map_has_the_well_known_cid() {
        let (cid, bytes) = cid_for_ipld(&Ipld::Map(BTreeMap::new())).unwrap();
        assert_eq!(bytes, [0xa0]);
        assert_eq!(cid.to_string(), "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua");
    }

    #[test]
    fn keys_out_of_canonical_order_are_rejected() {
        // {"aa": 1, "b": 2}
        assert!(from_dag_cbor(&[0xa2, 0x62, b'a', b'a', 0x01, 0x61, b'b', 0x02]).is_err());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        assert!(from_dag_cbor(&[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02]).is_err());
    }

    #[test]
    fn floats_are_rejected_even_though_dag_cbor_allows_them() {
        let one_and_a_half = [0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0];
        assert_eq!(from_dag_cbor(&one_and_a_half), Err(DataError::Float));
        assert!(to_dag_cbor(&Ipld::Float(1.5)).is_err());
    }

    #[test]
    fn indefinite_lengths_are_rejected() {
        // [_ 1] and {_ "a": 1}
        assert!(from_dag_cbor(&[0x9f, 0x01, 0xff]).is_err());
        assert!(from_dag_cbor(&[0xbf, 0x61, b'a', 0x01, 0xff]).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        assert!(from_dag_cbor(&[0xa0, 0x00]).is_err());
    }

    #[test]
    fn tags_other_than_42_are_rejected() {
        // 1(0): an epoch timestamp.
        assert!(from_dag_cbor(&[0xc1, 0x00]).is_err());
    }

    #[test]
    fn a_non_minimal_integer_is_rejected() {
        assert!(from_dag_cbor(&[0x18, 0x01]).is_err());
    }

    #[test]
    fn a_non_string_map_key_is_rejected() {
        assert!(from_dag_cbor(&[0xa1, 0x01, 0x02]).is_err());
    }

    #[test]
    fn undefined_is_rejected() {
        assert!(from_dag_cbor(&[0xf7]).is_err());
    }

    #[test]
    fn bytes_after_a_cid_inside_its_tag_are_rejected() {
        let cid = cids::for_dag_cbor(&[0xa0]);
        let mut inner = vec![0x00];
        inner.extend(cid.to_bytes());
        inner.push(0xff);
        let mut bytes = vec![0xd8, 0x2a, 0x58, inner.len() as u8];
        bytes.extend(inner);
        assert!(from_dag_cbor(&bytes).is_err());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = to_dag_cbor(&map(&[("text", Ipld::String("hello".into()))])).unwrap();
        for end in 0..bytes.len() {
            assert!(from_dag_cbor(&bytes[..end]).is_err());
        }
    }

    proptest::proptest! {
        // The cargo-fuzz target under atproto/fuzz explores this far more deeply; this keeps a
        // cheap version of its property in the ordinary test run.
        #[test]
        fn whatever_the_decoder_accepts_is_canonical(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)
        ) {
            if let Ok(value) = from_dag_cbor(&bytes) {
                proptest::prop_assert_eq!(to_dag_cbor(&value).ok(), Some(bytes));
            }
        }

        #[test]
        fn a_corrupted_record_is_rejected_or_still_canonical(
            index in 0usize..64,
            byte in proptest::prelude::any::<u8>()
        ) {
            let record = map(&[
                ("$type", Ipld::String("app.bsky.feed.post".into())),
                ("text", Ipld::String("hello".into())),
                ("n", Ipld::Integer(300)),
                ("link", Ipld::Link(cids::for_dag_cbor(&[0xa0]))),
            ]);
            let mut bytes = to_dag_cbor(&record).unwrap();
            let index = index % bytes.len();
            bytes[index] = byte;
            if let Ok(value) = from_dag_cbor(&bytes) {
                proptest::prop_assert_eq!(to_dag_cbor(&value).ok(), Some(bytes));
            }
        }
    }
}
