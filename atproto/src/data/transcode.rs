//! DAG-CBOR straight to atproto JSON, for serving stored blocks: decoding into [`Ipld`] and then
//! converting builds every map twice (a `BTreeMap`, then a JSON object) and copies every string
//! twice, which was a quarter of a listRecords page's instructions.
//!
//! Objects keep the block's key order (canonical DAG-CBOR: shorter keys first), as the reference
//! PDS's decoder does, rather than the bytewise order an [`Ipld`] map would give them.

use std::fmt;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use cid::serde::BytesToCidVisitor;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::rules::{check_integer, check_typed, Entry};
use super::DataError;

/// A DAG-CBOR value as atproto JSON, with the data model's rules checked on the way (no floats,
/// safe integers, well-formed `$type` and blob maps, no `$link`/`$bytes` keys, no duplicate
/// keys). Unlike [`super::from_dag_cbor`] it does not insist on the canonical encoding: it is
/// for blocks that were checked when they were stored.
pub fn dag_cbor_to_json(bytes: &[u8]) -> Result<Value, DataError> {
    match serde_ipld_dagcbor::from_slice(bytes) {
        Ok(Json(value)) => Ok(value),
        // A broken rule comes back as the decoder's message: the rule's own words.
        Err(serde_ipld_dagcbor::DecodeError::Msg(message)) => Err(DataError::Decode(message)),
        Err(error) => Err(DataError::Decode(error.to_string())),
    }
}

struct Json(Value);

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(Json)
    }
}

struct JsonVisitor;

fn rule<E: de::Error>(error: DataError) -> E {
    E::custom(error)
}

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a value in the atproto data model")
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Value, E> {
        Ok(Value::Bool(flag))
    }

    fn visit_i64<E: de::Error>(self, integer: i64) -> Result<Value, E> {
        self.visit_i128(integer.into())
    }

    fn visit_u64<E: de::Error>(self, integer: u64) -> Result<Value, E> {
        self.visit_i128(integer.into())
    }

    fn visit_i128<E: de::Error>(self, integer: i128) -> Result<Value, E> {
        check_integer(integer).map(|integer| Value::Number(integer.into())).map_err(rule)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Err(rule(DataError::Float))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Value, E> {
        Ok(Value::String(text))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Value, E> {
        Ok(single_entry("$bytes", STANDARD_NO_PAD.encode(bytes)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    /// The decoder hands over tag 42 (a link) as a newtype struct around the CID's bytes.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let cid: cid::Cid = deserializer.deserialize_bytes(BytesToCidVisitor)?;
        Ok(single_entry("$link", cid.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // The length comes from the block: trust it only as far as its bytes could go.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Json(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut object = Map::with_capacity(entries.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = entries.next_key::<String>()? {
            // In JSON these keys turn an object into a link or bytes, so a map holding them
            // could not round-trip; the spec reserves them.
            if key == "$link" || key == "$bytes" {
                return Err(rule(DataError::ReservedKey(if key == "$link" { "$link" } else { "$bytes" })));
            }
            let Json(value) = entries.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate map key"));
            }
        }
        check_object(&object).map_err(rule)?;
        Ok(Value::Object(object))
    }
}

fn single_entry(key: &str, value: String) -> Value {
    Value::Object(Map::from_iter([(key.to_owned(), Value::String(value))]))
}

/// The `$type` rules of the data model for one converted map. Links and bytes are one-entry
/// `$link`/`$bytes` objects by now; since a map with those keys is refused above, such an object
/// can only be a link or bytes.
fn check_object(object: &Map<String, Value>) -> Result<(), DataError> {
    check_typed(|key| {
        object.get(key).map(|value| match value {
            Value::Object(link) if link.len() == 1 && link.contains_key("$link") => Entry::Link,
            Value::String(text) => Entry::Text(text),
            Value::Number(number) if number.as_u64().is_some() => Entry::NonNegative,
            _ => Entry::Other,
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::data::test_values::{map, raw};
    use crate::data::{ipld_to_json, to_dag_cbor, Ipld};

    fn link() -> Ipld {
        Ipld::Link(crate::cids::for_dag_cbor(&[0xa0]))
    }

    #[test]
    fn a_record_converts_as_through_ipld_with_its_keys_in_block_order() {
        let record = map(&[
            ("$type", Ipld::String("app.bsky.feed.post".into())),
            ("text", Ipld::String("héllo \"quoted\"\n".into())),
            ("langs", Ipld::List(vec![Ipld::String("en".into())])),
            ("n", Ipld::Integer(-(crate::data::MAX_SAFE_INTEGER as i128))),
            ("ok", Ipld::Bool(true)),
            ("none", Ipld::Null),
            ("bytes", Ipld::Bytes(vec![0, 1, 2, 250])),
            (
                "embed",
                map(&[
                    ("$type", Ipld::String("blob".into())),
                    ("ref", link()),
                    ("mimeType", Ipld::String("image/png".into())),
                    ("size", Ipld::Integer(12)),
                ]),
            ),
        ]);
        let bytes = to_dag_cbor(&record).unwrap();
        let direct = dag_cbor_to_json(&bytes).unwrap();
        assert_eq!(direct, ipld_to_json(&record).unwrap());
        let keys: Vec<&str> = direct.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["n", "ok", "none", "text", "$type", "bytes", "embed", "langs"]);
    }

    #[test]
    fn values_outside_the_data_model_are_refused() {
        let cases = [
            (map(&[("a", Ipld::Float(1.5))]), DataError::Float),
            (Ipld::Integer(i128::from(crate::data::MAX_SAFE_INTEGER) + 1), DataError::IntegerOutOfRange),
            (map(&[("$link", Ipld::String("x".into()))]), DataError::ReservedKey("$link")),
            (map(&[("$bytes", Ipld::String("x".into()))]), DataError::ReservedKey("$bytes")),
            (map(&[("$type", Ipld::String(String::new()))]), DataError::InvalidType),
            (map(&[("$type", Ipld::Integer(1))]), DataError::InvalidType),
            (map(&[("$type", Ipld::String("blob".into()))]), DataError::InvalidBlob("ref must be a link")),
            (
                map(&[
                    ("$type", Ipld::String("blob".into())),
                    ("ref", link()),
                    ("mimeType", Ipld::String("a/b".into())),
                ]),
                DataError::InvalidBlob("size must be a non-negative integer"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(dag_cbor_to_json(&raw(&value)), Err(DataError::Decode(expected.to_string())), "{value:?}");
        }
    }

    #[test]
    fn duplicate_keys_and_trailing_bytes_are_refused() {
        // {"a": 1, "a": 2}
        assert!(dag_cbor_to_json(&[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02]).is_err());
        let mut bytes = raw(&Ipld::Map(BTreeMap::new()));
        bytes.push(0x00);
        assert!(dag_cbor_to_json(&bytes).is_err());
    }
}
