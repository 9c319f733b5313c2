//! The atproto data-model values as they appear in JSON: `$bytes`, `$link`, blob references,
//! and the `$type`-tagged objects that unions are made of.

use std::fmt;

use aurora_atproto::data::DagCborJson;
use base64::Engine;
use serde::de::{self, DeserializeOwned};
use serde::ser::{self, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Standard base64; atproto writes it unpadded and this accepts either.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Bytes, written in JSON as `{"$bytes": "<base64>"}` and in DAG-CBOR as a byte string (the
/// data model's two forms: serde formats that are not human-readable get the binary one).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_bytes(&self.0);
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("$bytes", &BASE64.encode(&self.0))?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return serde_bytes::ByteBuf::deserialize(deserializer).map(|b| Bytes(b.into_vec()));
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            #[serde(rename = "$bytes")]
            bytes: String,
        }
        let wire = Wire::deserialize(deserializer)?;
        BASE64.decode(wire.bytes).map(Bytes).map_err(|e| de::Error::custom(format!("invalid $bytes: {e}")))
    }
}

/// A CID link, written in JSON as `{"$link": "<cid>"}` and in DAG-CBOR as a tag-42 link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidLink(pub cid::Cid);

impl Serialize for CidLink {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return self.0.serialize(serializer);
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("$link", &self.0.to_string())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for CidLink {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return cid::Cid::deserialize(deserializer).map(CidLink);
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            #[serde(rename = "$link")]
            link: String,
        }
        let wire = Wire::deserialize(deserializer)?;
        aurora_atproto::cids::parse(&wire.link)
            .map(CidLink)
            .map_err(|e| de::Error::custom(format!("invalid $link: {e}")))
    }
}

/// A reference to a blob. Old repositories hold a legacy form (`{"cid", "mimeType"}`, no size),
/// which is read and written back unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub cid: cid::Cid,
    pub mime_type: String,
    /// Size in bytes; `None` only for the legacy form.
    pub size: Option<u64>,
}

impl Serialize for BlobRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.size {
            Some(size) => {
                let mut map = serializer.serialize_map(Some(4))?;
                map.serialize_entry("$type", "blob")?;
                map.serialize_entry("ref", &CidLink(self.cid))?;
                map.serialize_entry("mimeType", &self.mime_type)?;
                map.serialize_entry("size", &size)?;
                map.end()
            }
            None => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("cid", &self.cid.to_string())?;
                map.serialize_entry("mimeType", &self.mime_type)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for BlobRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Typed {
                #[serde(rename = "$type")]
                kind: String,
                #[serde(rename = "ref")]
                link: CidLink,
                #[serde(rename = "mimeType")]
                mime_type: String,
                size: u64,
            },
            Legacy {
                cid: String,
                #[serde(rename = "mimeType")]
                mime_type: String,
            },
        }
        match Wire::deserialize(deserializer)? {
            Wire::Typed { kind, link, mime_type, size } if kind == "blob" => {
                Ok(BlobRef { cid: link.0, mime_type, size: Some(size) })
            }
            Wire::Typed { kind, .. } => Err(de::Error::custom(format!("blob $type must be \"blob\", found {kind:?}"))),
            Wire::Legacy { cid, mime_type } => aurora_atproto::cids::parse(&cid)
                .map(|cid| BlobRef { cid, mime_type, size: None })
                .map_err(|e| de::Error::custom(format!("invalid blob cid: {e}"))),
        }
    }
}

/// An object carrying a `$type`, read before deciding which union member it is.
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedObject {
    type_name: String,
    fields: Map<String, Value>,
}

impl TaggedObject {
    /// The `$type`, with a `#main` suffix removed (both spellings name the same definition).
    pub fn type_name(&self) -> &str {
        self.type_name.strip_suffix("#main").unwrap_or(&self.type_name)
    }
}

impl<'de> Deserialize<'de> for TaggedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = Map::deserialize(deserializer)?;
        match fields.remove("$type") {
            Some(Value::String(type_name)) if !type_name.is_empty() => Ok(TaggedObject { type_name, fields }),
            _ => Err(de::Error::custom("a union member must be an object with a non-empty string $type")),
        }
    }
}

/// A union member of a type this lexicon version does not know, kept whole so it round-trips.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownObject(pub Map<String, Value>);

impl UnknownObject {
    pub fn from_tagged(object: TaggedObject) -> Self {
        let mut map = Map::with_capacity(object.fields.len() + 1);
        map.insert("$type".into(), Value::String(object.type_name));
        map.extend(object.fields);
        UnknownObject(map)
    }

    pub fn type_name(&self) -> Option<&str> {
        self.0.get("$type").and_then(Value::as_str)
    }
}

impl Serialize for UnknownObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A value of lexicon type `unknown`: the JSON a request carried, or a stored block that is
/// served as JSON straight from its DAG-CBOR ([`DagCborJson`]), never turned into a value tree,
/// or a stored block's JSON written earlier and kept ([`RenderedJson`]).
#[derive(Clone, Debug)]
pub enum Unknown {
    Json(Value),
    Stored(DagCborJson),
    Rendered(RenderedJson),
}

/// A stored block's JSON, written once (by [`RenderedJson::render`], the only way to make one)
/// and then served as often as asked by copying its text in, as serde_json serves a `RawValue`.
/// A record's block never changes under its CID, so neither does this.
#[derive(Clone)]
pub struct RenderedJson(std::sync::Arc<str>);

impl RenderedJson {
    /// The block's JSON, or the error its serialisation meets (a block that breaks the data
    /// model's rules, see [`DagCborJson`]).
    pub fn render(stored: &DagCborJson) -> Result<RenderedJson, serde_json::Error> {
        thread_local! {
            /// Written into here and copied out whole: one allocation per record, not two.
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|json| {
            json.clear();
            crate::json_writer::write(json, stored)?;
            let text = std::str::from_utf8(json).map_err(ser::Error::custom)?;
            let rendered = RenderedJson(text.into());
            // A record of megabytes leaves no megabytes behind with the thread.
            if json.capacity() > 64 * 1024 {
                *json = Vec::new();
            }
            Ok(rendered)
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RenderedJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RenderedJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // The shape serde_json's `RawValue` has: its serializers, and this crate's writer, copy
        // the text in as it is.
        let mut raw = serializer.serialize_struct(crate::json_writer::RAW_VALUE_TOKEN, 1)?;
        raw.serialize_field(crate::json_writer::RAW_VALUE_TOKEN, &*self.0)?;
        raw.end()
    }
}

impl Unknown {
    /// The value as a JSON tree: the request's own, or the stored block's, converted.
    pub fn to_json(&self) -> Result<std::borrow::Cow<'_, Value>, serde_json::Error> {
        match self {
            Unknown::Json(value) => Ok(std::borrow::Cow::Borrowed(value)),
            Unknown::Stored(stored) => serde_json::to_value(stored).map(std::borrow::Cow::Owned),
            Unknown::Rendered(rendered) => serde_json::from_str(rendered.as_str()).map(std::borrow::Cow::Owned),
        }
    }

    /// The value as a JSON tree, owned: a request's as it came, a stored block's converted.
    pub fn into_json(self) -> Result<Value, serde_json::Error> {
        match self {
            Unknown::Json(value) => Ok(value),
            Unknown::Stored(stored) => serde_json::to_value(&stored),
            Unknown::Rendered(rendered) => serde_json::from_str(rendered.as_str()),
        }
    }
}

impl From<Value> for Unknown {
    fn from(value: Value) -> Self {
        Unknown::Json(value)
    }
}

impl From<DagCborJson> for Unknown {
    fn from(stored: DagCborJson) -> Self {
        Unknown::Stored(stored)
    }
}

impl From<RenderedJson> for Unknown {
    fn from(rendered: RenderedJson) -> Self {
        Unknown::Rendered(rendered)
    }
}

/// Equal when they are the same JSON, whichever form holds it.
impl PartialEq for Unknown {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Unknown::Json(a), Unknown::Json(b)) => a == b,
            (Unknown::Stored(a), Unknown::Stored(b)) => a == b || self.to_json().ok() == other.to_json().ok(),
            _ => matches!((self.to_json(), other.to_json()), (Ok(a), Ok(b)) if a == b),
        }
    }
}

impl Serialize for Unknown {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Unknown::Json(value) => value.serialize(serializer),
            Unknown::Stored(stored) => stored.serialize(serializer),
            Unknown::Rendered(rendered) => rendered.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Unknown {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Unknown::Json)
    }
}

/// Serialises a union member as its fields plus `$type` (written first).
pub fn serialize_tagged<T: Serialize, S: Serializer>(
    type_name: &str,
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Value::Object(fields) = serde_json::to_value(value).map_err(ser::Error::custom)? else {
        return Err(ser::Error::custom("a union member must serialise to an object"));
    };
    let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
    map.serialize_entry("$type", type_name)?;
    for (key, value) in &fields {
        if key != "$type" {
            map.serialize_entry(key, value)?;
        }
    }
    map.end()
}

/// Deserialises the member a `$type` selected.
pub fn from_tagged<T: DeserializeOwned, E: de::Error>(object: TaggedObject) -> Result<T, E> {
    serde_json::from_value(Value::Object(object.fields)).map_err(E::custom)
}

/// The error for a closed union given a `$type` it does not list.
pub fn unexpected_type<E: de::Error>(found: &str, expected: &[&str]) -> E {
    E::custom(format!("unexpected $type {found:?}, expected one of {}", expected.join(", ")))
}

/// The error for a closed string enum given a value it does not list.
pub fn unknown_value<E: de::Error>(found: &str, expected: &'static [&'static str]) -> E {
    E::unknown_variant(found, expected)
}

/// `#[serde(default = "default_int::<N>")]` for integer fields with a lexicon default.
pub fn default_int<const N: i64>() -> i64 {
    N
}

/// `#[serde(default = "default_bool::<B>")]` for boolean fields with a lexicon default.
/// Deserialises a field that may be absent (`None`, through `#[serde(default)]`) or `null`
/// (`Some(None)`), which a lexicon's `nullable` keeps apart.
pub fn nullable<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

pub fn default_bool<const B: bool>() -> bool {
    B
}

impl fmt::Display for CidLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_block_is_the_same_unknown_as_its_json_tree() {
        let tree = serde_json::json!({ "$type": "com.example.thing", "text": "hé \"x\"", "n": [1, -2], "b": { "$bytes": "AAE" } });
        let ipld = aurora_atproto::data::json_to_ipld(&tree).expect("in the data model");
        let block = aurora_atproto::data::to_dag_cbor(&ipld).expect("encodes");
        let stored = Unknown::from(DagCborJson::from_block(block.clone()));
        let json = Unknown::from(tree.clone());
        let written = |value: &Unknown| serde_json::to_string(value).expect("serialise");
        // In the block's key order, as the tree read from the block has them.
        let read_back = aurora_atproto::data::dag_cbor_to_json(&block).expect("reads back");
        assert_eq!(written(&stored), serde_json::to_string(&read_back).expect("serialise"));
        assert_eq!(stored, json);
        assert_eq!(stored.clone().into_json().expect("a tree"), tree);
        assert_ne!(stored, Unknown::from(serde_json::json!({ "$type": "com.example.thing" })));
        let read: Unknown = serde_json::from_str(&written(&stored)).expect("deserialise");
        assert!(matches!(read, Unknown::Json(_)) && read == stored);
    }

    #[test]
    fn a_rendered_block_is_served_as_the_block_itself_is() {
        let tree = serde_json::json!({ "$type": "com.example.thing", "text": "hé \"x\"\n", "n": [1, -2], "b": { "$bytes": "AAE" } });
        let ipld = aurora_atproto::data::json_to_ipld(&tree).expect("in the data model");
        let stored = DagCborJson::from_block(aurora_atproto::data::to_dag_cbor(&ipld).expect("encodes"));
        let rendered = RenderedJson::render(&stored).expect("renders");
        let answer = |value: Unknown| {
            // Written after something else, as a page's records are.
            let mut ours = b"before".to_vec();
            let page = vec![value.clone(), value];
            crate::json_writer::write(&mut ours, &page).expect("write");
            (String::from_utf8(ours[6..].to_vec()).expect("utf-8"), serde_json::to_string(&page).expect("serde_json"))
        };
        let (ours, theirs) = answer(Unknown::from(rendered.clone()));
        assert_eq!(ours, answer(Unknown::from(stored.clone())).0, "the same bytes as the block served itself");
        assert_eq!(ours, theirs, "and as serde_json writes it");
        assert_eq!(Unknown::from(rendered.clone()), Unknown::from(stored.clone()));
        assert_eq!(Unknown::from(rendered.clone()).into_json().expect("a tree"), tree);
        // A block that breaks the rules renders nothing.
        let mut broken = stored.as_bytes().to_vec();
        broken.push(0);
        assert!(RenderedJson::render(&DagCborJson::from_block(broken)).is_err());
    }

    #[test]
    fn bytes_round_trip_as_unpadded_base64() {
        let json = serde_json::to_string(&Bytes(b"one".to_vec())).expect("serialise");
        assert_eq!(json, r#"{"$bytes":"b25l"}"#);
        let back: Bytes = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back.0, b"one");
    }

    #[test]
    fn a_legacy_blob_reference_is_written_back_in_its_own_form() {
        let legacy = r#"{"cid":"bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity","mimeType":"image/png"}"#;
        let blob: BlobRef = serde_json::from_str(legacy).expect("legacy blob");
        assert_eq!(blob.size, None);
        assert_eq!(serde_json::to_string(&blob).expect("serialise"), legacy);
    }

    #[test]
    fn an_unknown_union_member_keeps_every_field() {
        let json = serde_json::json!({"$type": "com.example.thing", "a": 1, "b": [true]});
        let tagged: TaggedObject = serde_json::from_value(json.clone()).expect("tagged");
        let unknown = UnknownObject::from_tagged(tagged);
        assert_eq!(serde_json::to_value(&unknown).expect("serialise"), json);
    }
}
