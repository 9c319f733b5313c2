//! A stored DAG-CBOR block served as atproto JSON straight from its bytes: the block is
//! checked against the data model's rules as it is written out, in one walk, so no value tree
//! is built, filled and dropped between the two (which [`super::dag_cbor_to_json`] does, and
//! which was a fifth of a listRecords page's instructions, with as much again to write the tree
//! out and free it), and nothing is read twice (a separate checking walk validated every string
//! as UTF-8 once more, a tenth of a page).
//!
//! The JSON is exactly what [`super::dag_cbor_to_json`] gives: objects in the block's key order,
//! bytes as `{"$bytes": …}` (unpadded standard base64), links as `{"$link": …}`; a block it
//! refuses fails the serialisation, so whatever was written of it is thrown away with the
//! answer.

use std::cell::Cell;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use cid::Cid;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::rules::{check_integer, check_typed, Entry};
use super::DataError;

/// How deeply values may nest: the JSON side refuses deeper input (serde_json stops at 128), so
/// no record written through XRPC comes near it; the bound keeps a hostile imported block from
/// exhausting the stack.
const MAX_DEPTH: usize = 256;

/// A stored block, which serialises (with any serde serializer) as its atproto JSON, or fails
/// to if its bytes break the data model's rules.
#[derive(Clone, PartialEq, Eq)]
pub struct DagCborJson {
    bytes: bytes::Bytes,
}

impl DagCborJson {
    /// The block, to be checked as it is written: no floats, safe integers, string map keys in
    /// canonical order, no `$link`/`$bytes` keys, well-formed `$type` and blob maps, tag 42
    /// only, every head in its shortest form, no trailing bytes — as [`super::dag_cbor_to_json`]
    /// checks.
    pub fn from_block(bytes: impl Into<bytes::Bytes>) -> Self {
        DagCborJson { bytes: bytes.into() }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for DagCborJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(self) {
            Ok(json) => f.write_str(&json),
            Err(_) => f.write_str("<unreadable DAG-CBOR>"),
        }
    }
}

impl Serialize for DagCborJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pos = Cell::new(0);
        let written = Next { bytes: &self.bytes, pos: &pos, depth: 0 }.serialize(serializer)?;
        if pos.get() != self.bytes.len() {
            return Err(S::Error::custom(DataError::Decode("trailing bytes after the value".into())));
        }
        Ok(written)
    }
}

/// One data item's head: its major type and its argument (a value, a length or a count).
struct Head {
    major: u8,
    info: u8,
    argument: u64,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn malformed(what: &str) -> DataError {
    DataError::Decode(what.to_owned())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DataError> {
        let end =
            self.pos.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or_else(|| malformed("truncated"))?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn head(&mut self) -> Result<Head, DataError> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let argument = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]])),
            26 => u64::from(u32::from_be_bytes(self.array()?)),
            27 => u64::from_be_bytes(self.array()?),
            31 => return Err(malformed("indefinite lengths are not allowed")),
            _ => return Err(malformed("reserved additional information")),
        };
        // DAG-CBOR allows one encoding of each head: an argument in the shortest form that holds
        // it. The value tree's decoder refuses a longer one, and so must this. (Major type 7's
        // arguments are floats and simple values, refused on their own terms in `check`.)
        let shortest = match info {
            24 => 24,
            25 => 1 << 8,
            26 => 1 << 16,
            27 => 1 << 32,
            _ => 0,
        };
        if major != 7 && argument < shortest {
            return Err(malformed("a head not in its shortest form"));
        }
        Ok(Head { major, info, argument })
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DataError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// A length or count from the block, trusted only as far as the bytes left could hold it
    /// (every item takes at least a byte).
    fn length(&self, argument: u64) -> Result<usize, DataError> {
        usize::try_from(argument)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.pos)
            .ok_or_else(|| malformed("length beyond the block"))
    }

    fn text(&mut self, argument: u64) -> Result<&'a str, DataError> {
        let n = self.length(argument)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| malformed("text is not UTF-8"))
    }

    /// The link inside a tag 42: a byte string of a zero byte and a CID.
    fn link(&mut self) -> Result<Cid, DataError> {
        let head = self.head()?;
        if head.major != 2 {
            return Err(malformed("a link must be a byte string"));
        }
        let n = self.length(head.argument)?;
        match self.take(n)? {
            // Bytes after the CID are ignored, as the value tree's decoder (and so the write
            // path, which accepted the block) ignores them: the block is served as it was read.
            [0, cid @ ..] => Cid::read_bytes(cid).map_err(|e| DataError::Decode(format!("bad link: {e}"))),
            _ => Err(malformed("a link must start with a zero byte")),
        }
    }
}

/// The `$type` rules' view of an item (see [`Entry`]).
enum Kind<'a> {
    Link,
    Text(&'a str),
    NonNegative,
    Other,
}

impl<'a> Kind<'a> {
    /// What the item at `pos` is, for an item already written (so already checked).
    fn at(bytes: &'a [u8], pos: usize) -> Result<Self, DataError> {
        let mut reader = Reader { bytes, pos };
        let head = reader.head()?;
        Ok(match head.major {
            0 => Kind::NonNegative,
            3 => Kind::Text(reader.text(head.argument)?),
            6 => Kind::Link,
            _ => Kind::Other,
        })
    }

    fn entry(&self) -> Entry<'a> {
        match *self {
            Kind::Link => Entry::Link,
            Kind::Text(text) => Entry::Text(text),
            Kind::NonNegative => Entry::NonNegative,
            Kind::Other => Entry::Other,
        }
    }
}

/// The map keys the `$type` rules look at, in the order [`Next`] keeps their values.
const TYPED_KEYS: [&str; 4] = ["$type", "ref", "mimeType", "size"];

/// The item at `pos` in a block; serialising it checks it, writes it and moves `pos` past it.
struct Next<'a, 'p> {
    bytes: &'a [u8],
    pos: &'p Cell<usize>,
    depth: usize,
}

impl<'a> Next<'a, '_> {
    /// The item after this one, one level down.
    fn inner(&self) -> Self {
        Next { bytes: self.bytes, pos: self.pos, depth: self.depth + 1 }
    }

    fn map<S: Serializer>(&self, reader: &mut Reader<'a>, count: usize, serializer: S) -> Result<S::Ok, S::Error> {
        let failed = |error: DataError| S::Error::custom(error);
        let mut map = serializer.serialize_map(Some(count))?;
        let mut previous: Option<&str> = None;
        let mut typed: [Option<Kind<'a>>; 4] = [None, None, None, None];
        for _ in 0..count {
            let head = reader.head().map_err(failed)?;
            if head.major != 3 {
                return Err(failed(malformed("map keys must be strings")));
            }
            let key = reader.text(head.argument).map_err(failed)?;
            if key == "$link" || key == "$bytes" {
                return Err(failed(DataError::ReservedKey(if key == "$link" { "$link" } else { "$bytes" })));
            }
            // Keys in canonical order (shorter first, then bytewise), strictly: the decoder
            // behind [`super::dag_cbor_to_json`] refuses a block out of that order, and so no
            // key repeats.
            if previous.is_some_and(|before| (before.len(), before.as_bytes()) >= (key.len(), key.as_bytes())) {
                return Err(failed(malformed("map keys out of canonical order")));
            }
            previous = Some(key);
            let start = reader.pos;
            self.pos.set(start);
            map.serialize_entry(key, &self.inner())?;
            reader.pos = self.pos.get();
            if let Some(slot) = TYPED_KEYS.iter().position(|typed_key| *typed_key == key) {
                typed[slot] = Some(Kind::at(self.bytes, start).map_err(failed)?);
            }
        }
        check_typed(|key| {
            let slot = TYPED_KEYS.iter().position(|typed_key| *typed_key == key)?;
            typed[slot].as_ref().map(Kind::entry)
        })
        .map_err(failed)?;
        map.end()
    }
}

impl Serialize for Next<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let failed = |error: DataError| S::Error::custom(error);
        if self.depth > MAX_DEPTH {
            return Err(failed(malformed("nested too deeply")));
        }
        let mut reader = Reader { bytes: self.bytes, pos: self.pos.get() };
        let head = reader.head().map_err(failed)?;
        match head.major {
            0 => {
                self.pos.set(reader.pos);
                check_integer(i128::from(head.argument)).map_err(failed)?;
                serializer.serialize_u64(head.argument)
            }
            1 => {
                self.pos.set(reader.pos);
                let integer = check_integer(-1 - i128::from(head.argument)).map_err(failed)?;
                serializer.serialize_i64(integer)
            }
            2 => {
                let bytes = reader.take(reader.length(head.argument).map_err(failed)?).map_err(failed)?;
                self.pos.set(reader.pos);
                single_entry(serializer, "$bytes", &STANDARD_NO_PAD.encode(bytes))
            }
            3 => {
                let text = reader.text(head.argument).map_err(failed)?;
                self.pos.set(reader.pos);
                serializer.serialize_str(text)
            }
            4 => {
                let count = reader.length(head.argument).map_err(failed)?;
                self.pos.set(reader.pos);
                let mut seq = serializer.serialize_seq(Some(count))?;
                for _ in 0..count {
                    seq.serialize_element(&self.inner())?;
                }
                seq.end()
            }
            5 => {
                let count = reader.length(head.argument).map_err(failed)?;
                let written = self.map(&mut reader, count, serializer)?;
                self.pos.set(reader.pos);
                Ok(written)
            }
            6 if head.argument == 42 => {
                let cid = reader.link().map_err(failed)?;
                self.pos.set(reader.pos);
                single_entry(serializer, "$link", &cid.to_string())
            }
            6 => Err(failed(malformed("only tag 42 (a link) is allowed"))),
            _ => {
                self.pos.set(reader.pos);
                match head.info {
                    20 => serializer.serialize_bool(false),
                    21 => serializer.serialize_bool(true),
                    22 => serializer.serialize_unit(),
                    25..=27 => Err(failed(DataError::Float)),
                    _ => Err(failed(malformed("simple values other than false, true and null are not allowed"))),
                }
            }
        }
    }
}

fn single_entry<S: Serializer>(serializer: S, key: &str, value: &str) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;
    use crate::data::test_values::{map, raw};
    use crate::data::{dag_cbor_to_json, to_dag_cbor, Ipld};

    /// The block served as JSON text, or the error that stopped it.
    fn served(bytes: &[u8]) -> Result<String, serde_json::Error> {
        serde_json::to_string(&DagCborJson::from_block(bytes.to_vec()))
    }

    /// The served JSON is byte for byte the value tree's, and a block one refuses the other
    /// refuses too.
    fn same_as_the_tree(bytes: &[u8]) {
        match (served(bytes), dag_cbor_to_json(bytes)) {
            (Ok(served), Ok(tree)) => {
                assert_eq!(served, serde_json::to_string(&tree).unwrap());
                assert_eq!(serde_json::to_value(DagCborJson::from_block(bytes.to_vec())).unwrap(), tree);
            }
            (Err(_), Err(_)) => {}
            (served, tree) => panic!("{bytes:02x?}: served {served:?}, tree {tree:?}"),
        }
    }

    #[test]
    fn a_record_serves_as_its_value_tree_would() {
        let link = Ipld::Link(crate::cids::for_dag_cbor(&[0xa0]));
        let record = map(&[
            ("$type", Ipld::String("app.bsky.feed.post".into())),
            ("text", Ipld::String("héllo \"quoted\"\n\u{1}".into())),
            ("langs", Ipld::List(vec![Ipld::String("en".into()), Ipld::List(vec![])])),
            ("n", Ipld::Integer(-(crate::data::MAX_SAFE_INTEGER as i128))),
            ("big", Ipld::Integer(crate::data::MAX_SAFE_INTEGER as i128)),
            ("ok", Ipld::Bool(true)),
            ("no", Ipld::Bool(false)),
            ("none", Ipld::Null),
            ("bytes", Ipld::Bytes(vec![0, 1, 2, 250])),
            ("empty", map(&[])),
            (
                "embed",
                map(&[
                    ("$type", Ipld::String("blob".into())),
                    ("ref", link.clone()),
                    ("mimeType", Ipld::String("image/png".into())),
                    ("size", Ipld::Integer(12)),
                ]),
            ),
            ("links", Ipld::List(vec![link, Ipld::Integer(-1), Ipld::Integer(0), Ipld::Integer(65536)])),
        ]);
        let bytes = to_dag_cbor(&record).unwrap();
        same_as_the_tree(&bytes);
        let served = serde_json::to_value(DagCborJson::from_block(bytes)).unwrap();
        let keys: Vec<&str> = served.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[..4], ["n", "no", "ok", "big"], "the block's key order");
    }

    #[test]
    fn blocks_outside_the_data_model_are_refused_as_the_tree_refuses_them() {
        let link = Ipld::Link(crate::cids::for_dag_cbor(&[0xa0]));
        let cases = [
            map(&[("a", Ipld::Float(1.5))]),
            Ipld::Integer(i128::from(crate::data::MAX_SAFE_INTEGER) + 1),
            Ipld::Integer(-i128::from(crate::data::MAX_SAFE_INTEGER) - 1),
            map(&[("$link", Ipld::String("x".into()))]),
            map(&[("$bytes", Ipld::String("x".into()))]),
            map(&[("$type", Ipld::String(String::new()))]),
            map(&[("$type", Ipld::Integer(1))]),
            map(&[("$type", Ipld::String("blob".into())), ("ref", Ipld::String("no".into()))]),
            map(&[
                ("$type", Ipld::String("blob".into())),
                ("ref", link.clone()),
                ("mimeType", Ipld::String("image/png".into())),
                ("size", Ipld::Integer(-1)),
            ]),
            map(&[("$type", Ipld::String("blob".into())), ("ref", link), ("size", Ipld::Integer(1))]),
        ];
        for case in &cases {
            let bytes = raw(case);
            assert!(served(&bytes).is_err(), "{case:?}");
            same_as_the_tree(&bytes);
        }
    }

    #[test]
    fn malformed_bytes_are_refused_not_served() {
        let duplicate = [0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02];
        let unsorted = [0xa2, 0x61, b'b', 0x01, 0x61, b'a', 0x02];
        let cases: [&[u8]; 10] = [
            &[],
            &[0xa1, 0x61],                                           // truncated key
            &duplicate,                                              // a key twice
            &[0x9f, 0xff],                                           // indefinite length
            &[0xc1, 0x00],                                           // a tag other than 42
            &[0xf7],                                                 // undefined
            &[0xa1, 0x01, 0x01],                                     // an integer key
            &[0x62, 0xff, 0xfe],                                     // text that is not UTF-8
            &[0x01, 0x02],                                           // trailing bytes
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // a count beyond the block
        ];
        for case in cases {
            assert!(served(case).is_err(), "{case:02x?}");
            same_as_the_tree(case);
        }
        // Out of canonical order, though without a duplicate: refused, as the tree refuses it.
        assert!(served(&unsorted).is_err());
        same_as_the_tree(&unsorted);
    }

    #[test]
    fn a_head_longer_than_it_needs_to_be_is_refused_as_the_tree_refuses_it() {
        for bytes in [
            &[0x18, 0x05][..],                           // 5 as a one-byte argument
            &[0x39, 0x00, 0x06],                         // -7 as a two-byte argument
            &[0x78, 0x01, 0x61],                         // "a" with a one-byte length
            &[0x58, 0x00],                               // empty bytes with a one-byte length
            &[0x98, 0x00],                               // empty list with a one-byte count
            &[0xb9, 0x00, 0x00],                         // empty map with a two-byte count
            &[0xa1, 0x78, 0x01, 0x61, 0x01],             // a map key with a one-byte length
            &[0xd9, 0x00, 0x2a, 0x41, 0x00],             // tag 42 as a two-byte argument
            &[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], // 2^32 - 1 as an eight-byte argument
        ] {
            assert!(served(bytes).is_err(), "{bytes:02x?}");
            same_as_the_tree(bytes);
        }
        // The shortest forms at each width's edge are served.
        for bytes in [&[0x18, 0x18][..], &[0x19, 0x01, 0x00], &[0x1a, 0x00, 0x01, 0x00, 0x00], &[0x38, 0x18]] {
            assert!(served(bytes).is_ok(), "{bytes:02x?}");
            same_as_the_tree(bytes);
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep: Vec<u8> = std::iter::repeat_n(0x81, MAX_DEPTH + 2).chain([0x01]).collect();
        assert!(served(&deep).is_err());
        let shallow: Vec<u8> = std::iter::repeat_n(0x81, 100).chain([0x01]).collect();
        same_as_the_tree(&shallow);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_served_as_the_tree_gives_them_or_refused_by_both(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            same_as_the_tree(&bytes);
        }

        #[test]
        fn a_corrupted_record_is_served_as_the_tree_gives_it_or_refused_by_both(at in 0usize..1000, byte in proptest::prelude::any::<u8>()) {
            let link = Ipld::Link(crate::cids::for_dag_cbor(&[0xa0]));
            let record = map(&[
                ("$type", Ipld::String("app.bsky.feed.post".into())),
                ("text", Ipld::String("a post".into())),
                ("n", Ipld::List(vec![Ipld::Integer(-7), Ipld::Integer(300), Ipld::Bool(false), Ipld::Null])),
                ("embed", map(&[
                    ("$type", Ipld::String("blob".into())),
                    ("ref", link),
                    ("mimeType", Ipld::String("image/png".into())),
                    ("size", Ipld::Integer(12)),
                ])),
                ("bytes", Ipld::Bytes(vec![9, 8, 7])),
            ]);
            let mut bytes = to_dag_cbor(&record).unwrap();
            let at = at % bytes.len();
            bytes[at] = byte;
            same_as_the_tree(&bytes);
        }
    }
}
