//! The lexicon schema language (lexicon version 1), as serde types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One lexicon document: an NSID and its named definitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LexiconDoc {
    pub lexicon: LexiconVersion,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub defs: BTreeMap<String, Def>,
}

/// The `lexicon` field, which must be the integer 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct LexiconVersion;

impl TryFrom<u64> for LexiconVersion {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(LexiconVersion),
            other => Err(format!("unsupported lexicon version {other}")),
        }
    }
}

impl From<LexiconVersion> for u64 {
    fn from(_: LexiconVersion) -> u64 {
        1
    }
}

/// A named definition. Primary kinds (record, query, procedure, subscription, permission-set)
/// may only be the `main` definition; the catalog checks that.
// Schemas are parsed once and matched on everywhere; boxing the large variants would only
// add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Def {
    Record(RecordDef),
    Query(QueryDef),
    Procedure(ProcedureDef),
    Subscription(SubscriptionDef),
    PermissionSet(PermissionSetDef),
    Token(TokenDef),
    Object(ObjectSchema),
    Array(ArraySchema),
    String(StringSchema),
    Integer(IntegerSchema),
    Boolean(BooleanSchema),
    Bytes(BytesSchema),
    CidLink(CidLinkSchema),
    Blob(BlobSchema),
}

impl Def {
    /// The `type` string of this definition.
    pub fn kind(&self) -> &'static str {
        match self {
            Def::Record(_) => "record",
            Def::Query(_) => "query",
            Def::Procedure(_) => "procedure",
            Def::Subscription(_) => "subscription",
            Def::PermissionSet(_) => "permission-set",
            Def::Token(_) => "token",
            Def::Object(_) => "object",
            Def::Array(_) => "array",
            Def::String(_) => "string",
            Def::Integer(_) => "integer",
            Def::Boolean(_) => "boolean",
            Def::Bytes(_) => "bytes",
            Def::CidLink(_) => "cid-link",
            Def::Blob(_) => "blob",
        }
    }

    /// Whether this kind may only appear as a document's `main` definition.
    pub fn is_primary(&self) -> bool {
        matches!(
            self,
            Def::Record(_) | Def::Query(_) | Def::Procedure(_) | Def::Subscription(_) | Def::PermissionSet(_)
        )
    }

    pub fn description(&self) -> Option<&str> {
        match self {
            Def::Record(d) => d.description.as_deref(),
            Def::Query(d) => d.description.as_deref(),
            Def::Procedure(d) => d.description.as_deref(),
            Def::Subscription(d) => d.description.as_deref(),
            Def::PermissionSet(d) => d.description.as_deref(),
            Def::Token(d) => d.description.as_deref(),
            Def::Object(d) => d.description.as_deref(),
            Def::Array(d) => d.description.as_deref(),
            Def::String(d) => d.description.as_deref(),
            Def::Integer(d) => d.description.as_deref(),
            Def::Boolean(d) => d.description.as_deref(),
            Def::Bytes(d) => d.description.as_deref(),
            Def::CidLink(d) => d.description.as_deref(),
            Def::Blob(d) => d.description.as_deref(),
        }
    }

    /// The definition as a field schema, for the kinds data can be validated against.
    pub fn as_field(&self) -> Option<Field> {
        Some(match self {
            Def::Object(s) => Field::Object(s.clone()),
            Def::Array(s) => Field::Array(s.clone()),
            Def::String(s) => Field::String(s.clone()),
            Def::Integer(s) => Field::Integer(s.clone()),
            Def::Boolean(s) => Field::Boolean(s.clone()),
            Def::Bytes(s) => Field::Bytes(s.clone()),
            Def::CidLink(s) => Field::CidLink(s.clone()),
            Def::Blob(s) => Field::Blob(s.clone()),
            _ => return None,
        })
    }
}

/// The schema of a value inside an object, array, body or parameter list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Field {
    Boolean(BooleanSchema),
    Integer(IntegerSchema),
    String(StringSchema),
    Bytes(BytesSchema),
    CidLink(CidLinkSchema),
    Blob(BlobSchema),
    Unknown(UnknownSchema),
    Array(ArraySchema),
    Object(ObjectSchema),
    Ref(RefSchema),
    Union(UnionSchema),
}

impl Field {
    pub fn description(&self) -> Option<&str> {
        match self {
            Field::Boolean(s) => s.description.as_deref(),
            Field::Integer(s) => s.description.as_deref(),
            Field::String(s) => s.description.as_deref(),
            Field::Bytes(s) => s.description.as_deref(),
            Field::CidLink(s) => s.description.as_deref(),
            Field::Blob(s) => s.description.as_deref(),
            Field::Unknown(s) => s.description.as_deref(),
            Field::Array(s) => s.description.as_deref(),
            Field::Object(s) => s.description.as_deref(),
            Field::Ref(s) => s.description.as_deref(),
            Field::Union(s) => s.description.as_deref(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Record key type: `tid`, `nsid`, `any`, or `literal:<value>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub record: RecordObject,
}

/// A record's body, which must be declared `"type": "object"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RecordObject {
    Object(ObjectSchema),
}

impl RecordObject {
    pub fn object(&self) -> &ObjectSchema {
        match self {
            RecordObject::Object(o) => o,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ParamsSchema>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Body>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDef>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcedureDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ParamsSchema>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Body>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ParamsSchema>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub schema: Field,
}

/// OAuth permission sets; Aurora carries them through but does not interpret them yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionSetDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A request or response body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Body {
    pub encoding: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Field>,
}

impl Body {
    pub fn is_json(&self) -> bool {
        self.encoding == "application/json"
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Query-string parameters: `"type": "params"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "params")]
pub struct ParamsSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Field>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nullable: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Field>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArraySchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub items: Box<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_graphemes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_graphemes: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_values: Vec<String>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_: Option<Vec<String>>,
    #[serde(default, rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct IntegerSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_: Option<Vec<i64>>,
    #[serde(default, rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct BooleanSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BytesSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct CidLinkSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct UnknownSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "ref")]
    pub target: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnionSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub refs: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}
