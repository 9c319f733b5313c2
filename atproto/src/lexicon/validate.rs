//! Checks atproto JSON data against lexicon definitions, the way a PDS must before accepting
//! a record or a request: every constraint the schema language can state is enforced.

use serde_json::{Map, Value};
use unicode_segmentation::UnicodeSegmentation;

use super::catalog::{split_ref, type_name, Catalog};
use super::schema::*;
use crate::syntax::Format;

/// Data that does not satisfy its lexicon, with the path to the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path} {message}")]
pub struct ValidationError {
    /// Where the value sits, e.g. `Record/embed/images/0/alt`.
    pub path: String,
    /// What is wrong with it, e.g. `must be a string`.
    pub message: String,
}

/// Validates data against the definitions of a catalog.
#[derive(Clone, Copy)]
pub struct Validator<'a> {
    catalog: &'a Catalog,
}

type Result<T = ()> = std::result::Result<T, ValidationError>;

fn fail<T>(path: impl std::fmt::Display, message: impl Into<String>) -> Result<T> {
    Err(ValidationError { path: path.to_string(), message: message.into() })
}

/// Where a value sits, built up as the walk descends and written out only if it fails: a
/// valid record or query, by far the common case, formats no path at all.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root(&'p str),
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(root) => f.write_str(root),
            Path::Key(parent, key) => write!(f, "{parent}/{key}"),
            Path::Index(parent, index) => write!(f, "{parent}/{index}"),
        }
    }
}

impl<'a> Validator<'a> {
    pub fn new(catalog: &'a Catalog) -> Self {
        Self { catalog }
    }

    /// Validates a record against the `main` record definition of `collection`.
    /// The record's own `$type`, if present, must name that collection.
    pub fn record(&self, collection: &str, value: &Value) -> Result {
        let Some(Def::Record(def)) = self.catalog.main(collection) else {
            return fail("Record", format!("has no record lexicon for {collection}"));
        };
        let Value::Object(map) = value else {
            return fail("Record", "must be an object");
        };
        match map.get("$type") {
            Some(Value::String(t)) if t == collection => {}
            Some(Value::String(t)) => return fail("Record/$type", format!("must be {collection}, found {t}")),
            Some(_) => return fail("Record/$type", "must be a string"),
            None => {}
        }
        self.object_at(def.record.object(), value, collection, &Path::Root("Record"))
    }

    /// Validates a value against a named definition (`nsid` or `nsid#name`).
    pub fn def(&self, reference: &str, value: &Value, path: &str) -> Result {
        let path = &Path::Root(path);
        let target = self
            .catalog
            .resolve(reference, "")
            .or_else(|_| fail(path, format!("refers to unknown definition {reference}")))?;
        match target.def {
            Def::Record(r) => self.object_at(r.record.object(), value, target.nsid, path),
            Def::Token(_) => self.token(&target.type_name(), value, path),
            other => match other.as_field() {
                Some(field) => self.field_at(&field, value, target.nsid, path),
                None => fail(path, format!("cannot be validated against a {} definition", other.kind())),
            },
        }
    }

    /// Validates a value against a field schema written inside document `context`.
    pub fn field(&self, field: &Field, value: &Value, context: &str, path: &str) -> Result {
        self.field_at(field, value, context, &Path::Root(path))
    }

    fn field_at(&self, field: &Field, value: &Value, context: &str, path: &Path<'_>) -> Result {
        match field {
            Field::Boolean(s) => boolean(s, value, path),
            Field::Integer(s) => integer(s, value, path),
            Field::String(s) => string(s, value, path),
            Field::Bytes(s) => bytes(s, value, path),
            Field::CidLink(_) => cid_link(value, path),
            Field::Blob(s) => blob(s, value, path),
            Field::Unknown(_) => unknown(value, path),
            Field::Array(s) => self.array(s, value, context, path),
            Field::Object(s) => self.object_at(s, value, context, path),
            Field::Ref(r) => self.reference(&r.target, value, context, path),
            Field::Union(u) => self.union(u, value, context, path),
        }
    }

    /// Validates an object against its schema: required and nullable fields, then each property.
    pub fn object(&self, schema: &ObjectSchema, value: &Value, context: &str, path: &str) -> Result {
        self.object_at(schema, value, context, &Path::Root(path))
    }

    fn object_at(&self, schema: &ObjectSchema, value: &Value, context: &str, path: &Path<'_>) -> Result {
        let Value::Object(map) = value else {
            return fail(path, "must be an object");
        };
        self.properties(&schema.properties, &schema.required, &schema.nullable, map, context, path)
    }

    /// Validates query parameters, already converted to JSON by [`Validator::params_from_query`].
    pub fn params(&self, schema: &ParamsSchema, params: &Map<String, Value>, context: &str) -> Result {
        self.properties(&schema.properties, &schema.required, &[], params, context, &Path::Root("Params"))
    }

    fn properties(
        &self,
        properties: &std::collections::BTreeMap<String, Field>,
        required: &[String],
        nullable: &[String],
        map: &Map<String, Value>,
        context: &str,
        path: &Path<'_>,
    ) -> Result {
        for name in required {
            match map.get(name) {
                None => return fail(path, format!("must have the property \"{name}\"")),
                Some(Value::Null) if !nullable.contains(name) => {
                    return fail(path, format!("must have the property \"{name}\""))
                }
                _ => {}
            }
        }
        for (name, field) in properties {
            match map.get(name) {
                None => {}
                Some(Value::Null) if nullable.contains(name) => {}
                Some(value) => self.field_at(field, value, context, &Path::Key(path, name))?,
            }
        }
        Ok(())
    }

    fn array(&self, schema: &ArraySchema, value: &Value, context: &str, path: &Path<'_>) -> Result {
        let Value::Array(items) = value else {
            return fail(path, "must be an array");
        };
        let len = items.len() as u64;
        if let Some(max) = schema.max_length.filter(|max| len > *max) {
            return fail(path, format!("must not have more than {max} elements"));
        }
        if let Some(min) = schema.min_length.filter(|min| len < *min) {
            return fail(path, format!("must not have fewer than {min} elements"));
        }
        for (i, item) in items.iter().enumerate() {
            self.field_at(&schema.items, item, context, &Path::Index(path, i))?;
        }
        Ok(())
    }

    fn reference(&self, reference: &str, value: &Value, context: &str, path: &Path<'_>) -> Result {
        let target = self
            .catalog
            .resolve(reference, context)
            .or_else(|_| fail(path, format!("refers to unknown definition {reference}")))?;
        match target.def {
            Def::Token(_) => self.token(&target.type_name(), value, path),
            Def::Record(r) => self.object_at(r.record.object(), value, target.nsid, path),
            other => match other.as_field() {
                Some(field) => self.field_at(&field, value, target.nsid, path),
                None => fail(path, format!("cannot hold a {} definition", other.kind())),
            },
        }
    }

    fn token(&self, name: &str, value: &Value, path: &Path<'_>) -> Result {
        match value {
            Value::String(s) if s == name => Ok(()),
            Value::String(_) => fail(path, format!("must be {name}")),
            _ => fail(path, "must be a string"),
        }
    }

    fn union(&self, schema: &UnionSchema, value: &Value, context: &str, path: &Path<'_>) -> Result {
        let Value::Object(map) = value else {
            return fail(path, "must be an object which includes the \"$type\" property");
        };
        let Some(Value::String(ty)) = map.get("$type") else {
            return fail(path, "must be an object which includes the \"$type\" property");
        };
        let wanted = canonical_type(ty);
        let matched = schema.refs.iter().find(|r| {
            let (nsid, name) = split_ref(r, context);
            type_name(nsid, name) == wanted
        });
        match matched {
            Some(reference) => self.reference(reference, value, context, path),
            // An open union accepts types it does not know: newer lexicons may add members.
            None if !schema.closed => Ok(()),
            None => {
                let expected: Vec<String> = schema
                    .refs
                    .iter()
                    .map(|r| {
                        let (nsid, name) = split_ref(r, context);
                        type_name(nsid, name)
                    })
                    .collect();
                fail(path, format!("$type must be one of {}", expected.join(", ")))
            }
        }
    }

    /// Converts raw query-string pairs to a JSON object typed by the parameter schema, so that
    /// they can be validated and deserialised like any other input.
    pub fn params_from_query<'q>(
        schema: Option<&ParamsSchema>,
        pairs: impl IntoIterator<Item = (&'q str, &'q str)>,
    ) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        let Some(schema) = schema else {
            return Ok(out);
        };
        let root = Path::Root("Params");
        for (key, raw) in pairs {
            // Parameters the lexicon does not declare are ignored, as in the reference implementation.
            let Some(field) = schema.properties.get(key) else { continue };
            let path = Path::Key(&root, key);
            match field {
                Field::Array(array) => {
                    let item = scalar_param(&array.items, raw, &path)?;
                    match out.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new())) {
                        Value::Array(items) => items.push(item),
                        _ => return fail(path, "must be an array"),
                    }
                }
                other => {
                    if out.insert(key.to_owned(), scalar_param(other, raw, &path)?).is_some() {
                        return fail(path, "must be given once");
                    }
                }
            }
        }
        Ok(out)
    }

    /// Fills in the lexicon's defaults for absent parameters.
    pub fn apply_param_defaults(schema: Option<&ParamsSchema>, params: &mut Map<String, Value>) {
        let Some(schema) = schema else { return };
        for (key, field) in &schema.properties {
            if params.contains_key(key) {
                continue;
            }
            let default = match field {
                Field::Integer(IntegerSchema { default: Some(d), .. }) => Value::from(*d),
                Field::Boolean(BooleanSchema { default: Some(d), .. }) => Value::from(*d),
                Field::String(StringSchema { default: Some(d), .. }) => Value::from(d.clone()),
                _ => continue,
            };
            params.insert(key.clone(), default);
        }
    }
}

/// An integer query parameter's value. Shared with the generated parameter readers, which must
/// read exactly as this validator does.
pub fn integer_param(raw: &str) -> Option<i64> {
    raw.parse().ok()
}

/// A boolean query parameter's value: `true` or `false`, nothing else.
pub fn boolean_param(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Grapheme clusters, as `maxGraphemes` and `minGraphemes` count them.
pub fn grapheme_count(s: &str) -> u64 {
    s.graphemes(true).count() as u64
}

fn scalar_param(field: &Field, raw: &str, path: &Path<'_>) -> Result<Value> {
    Ok(match field {
        Field::Integer(_) => match integer_param(raw) {
            Some(n) => Value::from(n),
            None => return fail(path, "must be an integer"),
        },
        Field::Boolean(_) => match boolean_param(raw) {
            Some(b) => Value::Bool(b),
            None => return fail(path, "must be a boolean"),
        },
        _ => Value::String(raw.to_owned()),
    })
}

/// `$type` values name `main` definitions without the `#main` suffix; accept both spellings.
fn canonical_type(ty: &str) -> &str {
    ty.strip_suffix("#main").unwrap_or(ty)
}

fn boolean(schema: &BooleanSchema, value: &Value, path: &Path<'_>) -> Result {
    let Value::Bool(b) = value else {
        return fail(path, "must be a boolean");
    };
    match schema.const_ {
        Some(c) if c != *b => fail(path, format!("must be {c}")),
        _ => Ok(()),
    }
}

fn integer(schema: &IntegerSchema, value: &Value, path: &Path<'_>) -> Result {
    let Some(n) = value.as_i64() else {
        return fail(path, "must be an integer");
    };
    if let Some(c) = schema.const_.filter(|c| *c != n) {
        return fail(path, format!("must be {c}"));
    }
    if let Some(values) = schema.enum_.as_ref().filter(|values| !values.contains(&n)) {
        let list: Vec<String> = values.iter().map(i64::to_string).collect();
        return fail(path, format!("must be one of ({})", list.join("|")));
    }
    if let Some(max) = schema.maximum.filter(|max| n > *max) {
        return fail(path, format!("can not be greater than {max}"));
    }
    if let Some(min) = schema.minimum.filter(|min| n < *min) {
        return fail(path, format!("can not be less than {min}"));
    }
    Ok(())
}

fn string(schema: &StringSchema, value: &Value, path: &Path<'_>) -> Result {
    let Value::String(s) = value else {
        return fail(path, "must be a string");
    };
    if let Some(c) = schema.const_.as_ref().filter(|c| *c != s) {
        return fail(path, format!("must be {c}"));
    }
    if let Some(values) = schema.enum_.as_ref().filter(|values| !values.contains(s)) {
        return fail(path, format!("must be one of ({})", values.join("|")));
    }
    // Lengths count UTF-8 bytes, as the lexicon spec defines.
    let len = s.len() as u64;
    if let Some(max) = schema.max_length.filter(|max| len > *max) {
        return fail(path, format!("must not be longer than {max} characters"));
    }
    if let Some(min) = schema.min_length.filter(|min| len < *min) {
        return fail(path, format!("must not be shorter than {min} characters"));
    }
    if schema.max_graphemes.is_some() || schema.min_graphemes.is_some() {
        let graphemes = grapheme_count(s);
        if let Some(max) = schema.max_graphemes.filter(|max| graphemes > *max) {
            return fail(path, format!("must not be longer than {max} graphemes"));
        }
        if let Some(min) = schema.min_graphemes.filter(|min| graphemes < *min) {
            return fail(path, format!("must not be shorter than {min} graphemes"));
        }
    }
    if let Some(format) = &schema.format {
        match Format::from_name(format) {
            Some(f) => {
                if let Err(e) = f.check(s) {
                    return fail(path, format!("must be a valid {format}: {e}"));
                }
            }
            None => return fail(path, format!("has an unknown string format {format}")),
        }
    }
    Ok(())
}

fn bytes(schema: &BytesSchema, value: &Value, path: &Path<'_>) -> Result {
    let decoded = match single_key(value, "$bytes") {
        Some(Value::String(b64)) => decode_base64(b64),
        _ => None,
    };
    let Some(decoded) = decoded else {
        return fail(path, "must be a byte array");
    };
    let len = decoded.len() as u64;
    if let Some(max) = schema.max_length.filter(|max| len > *max) {
        return fail(path, format!("must not be larger than {max} bytes"));
    }
    if let Some(min) = schema.min_length.filter(|min| len < *min) {
        return fail(path, format!("must not be smaller than {min} bytes"));
    }
    Ok(())
}

fn cid_link(value: &Value, path: &Path<'_>) -> Result {
    match single_key(value, "$link") {
        Some(Value::String(s)) if crate::cids::parse(s).is_ok() => Ok(()),
        _ => fail(path, "must be a CID"),
    }
}

fn blob(schema: &BlobSchema, value: &Value, path: &Path<'_>) -> Result {
    let Value::Object(map) = value else {
        return fail(path, "should be a blob ref");
    };
    let (mime, size) = if map.get("$type") == Some(&Value::String("blob".into())) {
        let link_ok = map.get("ref").is_some_and(|r| cid_link(r, path).is_ok());
        match (map.get("mimeType"), map.get("size").and_then(Value::as_i64)) {
            (Some(Value::String(mime)), Some(size)) if link_ok && size >= 0 => (mime.as_str(), Some(size as u64)),
            _ => return fail(path, "should be a blob ref"),
        }
    } else {
        // The legacy form, still found in old repositories: {"cid": "...", "mimeType": "..."}.
        match (map.get("cid"), map.get("mimeType")) {
            (Some(Value::String(c)), Some(Value::String(mime))) if crate::cids::parse(c).is_ok() => {
                (mime.as_str(), None)
            }
            _ => return fail(path, "should be a blob ref"),
        }
    };
    if let (Some(max), Some(size)) = (schema.max_size, size) {
        if size > max {
            return fail(path, format!("is too big ({size} bytes, the maximum is {max})"));
        }
    }
    if let Some(accept) = &schema.accept {
        if !accept.iter().any(|pattern| mime_matches(pattern, mime)) {
            return fail(path, format!("mime type {mime} is not accepted (expected {})", accept.join(", ")));
        }
    }
    Ok(())
}

/// Whether a MIME type matches an `accept` pattern such as `image/*` or `*/*`.
pub fn mime_matches(pattern: &str, mime: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(top) => mime.split_once('/').is_some_and(|(t, _)| t.eq_ignore_ascii_case(top)),
        None => pattern.eq_ignore_ascii_case(mime),
    }
}

fn unknown(value: &Value, path: &Path<'_>) -> Result {
    let Value::Object(map) = value else {
        return fail(path, "must be an object");
    };
    // `unknown` holds a record-like object, never one of the data model's special objects.
    if map.contains_key("$bytes") || map.contains_key("$link") || map.get("$type") == Some(&Value::from("blob")) {
        return fail(path, "must be an object, not a bytes, link or blob value");
    }
    Ok(())
}

fn single_key<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get(key),
        _ => None,
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
    use base64::Engine;
    // atproto writes standard base64 without padding; tolerate padding and non-zero trailing
    // bits on read, as other implementations do.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(s).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    const DOC: &str = r##"{"lexicon": 1, "id": "org.example.thing", "defs": {
        "main": {"type": "record", "key": "tid", "record": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "ref", "ref": "#item"}}}}},
        "item": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 3}}}}}"##;
    const QUERY: &str = r#"{"lexicon": 1, "id": "org.example.list", "defs": {
        "main": {"type": "query", "parameters": {"type": "params", "properties": {
            "limit": {"type": "integer", "maximum": 10}, "tag": {"type": "array", "items": {"type": "string"}}}}}}}"#;

    #[test]
    fn a_failure_names_the_path_to_the_offending_value() {
        let mut catalog = Catalog::new();
        catalog.add(Catalog::parse_doc(DOC).unwrap()).unwrap();
        catalog.add(Catalog::parse_doc(QUERY).unwrap()).unwrap();
        let validator = Validator::new(&catalog);
        let record = serde_json::json!({"items": [{"name": "ok"}, {"name": "long"}]});
        let error = validator.record("org.example.thing", &record).unwrap_err();
        assert_eq!(error.to_string(), "Record/items/1/name must not be longer than 3 characters");
        let record = serde_json::json!({"items": [{}]});
        let error = validator.record("org.example.thing", &record).unwrap_err();
        assert_eq!(error.to_string(), "Record/items/0 must have the property \"name\"");
        assert!(validator.record("org.example.thing", &serde_json::json!({"items": [{"name": "ok"}]})).is_ok());

        let Some(Def::Query(query)) = catalog.main("org.example.list") else { panic!("the query is there") };
        let schema = query.parameters.as_ref();
        let error = Validator::params_from_query(schema, [("limit", "x")]).unwrap_err();
        assert_eq!(error.to_string(), "Params/limit must be an integer");
        let error = Validator::params_from_query(schema, [("limit", "1"), ("limit", "2")]).unwrap_err();
        assert_eq!(error.to_string(), "Params/limit must be given once");
        let params = Validator::params_from_query(schema, [("limit", "11"), ("tag", "a"), ("tag", "b")]).unwrap();
        assert_eq!(params["tag"], serde_json::json!(["a", "b"]));
        let error = validator.params(schema.unwrap(), &params, "org.example.list").unwrap_err();
        assert_eq!(error.to_string(), "Params/limit can not be greater than 10");
    }

    #[test]
    fn image_wildcards_match_only_images() {
        assert!(mime_matches("image/*", "image/png"));
        assert!(!mime_matches("image/*", "text/plain"));
        assert!(mime_matches("*/*", "text/plain"));
        assert!(mime_matches("video/mp4", "video/mp4"));
    }
}
