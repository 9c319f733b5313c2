//! Minimal valid values for any lexicon schema: what a well-behaved client would send. Used to
//! call every method with input that passes validation, so that what comes back is the
//! method's own answer.

use aurora_atproto::lexicon::{Catalog, Def, Field, ObjectSchema, ParamsSchema, StringSchema};
use serde_json::{json, Map, Value};

pub const CID: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";

fn format_sample(format: &str) -> &'static str {
    match format {
        "did" => "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "handle" => "alice.test",
        "nsid" => "app.bsky.feed.post",
        "at-uri" => "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3jzfcijpj2z2a",
        "at-identifier" => "alice.test",
        "tid" => "3jzfcijpj2z2a",
        "record-key" => "self",
        "cid" => CID,
        "datetime" => "2024-01-01T00:00:00.000Z",
        "language" => "en",
        "uri" => "https://example.com/",
        other => panic!("no sample for string format {other}"),
    }
}

fn string(s: &StringSchema) -> Value {
    if let Some(c) = &s.const_ {
        return json!(c);
    }
    if let Some(values) = &s.enum_ {
        return json!(values[0]);
    }
    if let Some(format) = &s.format {
        return json!(format_sample(format));
    }
    if let Some(value) = s.known_values.first() {
        return json!(value);
    }
    let len = s.min_length.unwrap_or(0).max(s.min_graphemes.unwrap_or(0)).max(1) as usize;
    json!("a".repeat(len))
}

/// A valid value for `field`, written inside document `context`.
pub fn field(catalog: &Catalog, field: &Field, context: &str, depth: usize) -> Value {
    assert!(depth < 24, "schema recursion too deep in {context}");
    match field {
        Field::Boolean(b) => json!(b.const_.unwrap_or(false)),
        Field::Integer(i) => {
            if let Some(c) = i.const_ {
                json!(c)
            } else if let Some(values) = &i.enum_ {
                json!(values[0])
            } else {
                let low = i.minimum.unwrap_or(1).max(1);
                json!(i.maximum.map_or(low, |max| low.min(max)))
            }
        }
        Field::String(s) => string(s),
        Field::Bytes(b) => {
            let len = b.min_length.unwrap_or(1).max(1) as usize;
            use base64::Engine;
            json!({ "$bytes": base64::engine::general_purpose::STANDARD_NO_PAD.encode(vec![1u8; len]) })
        }
        Field::CidLink(_) => json!({ "$link": CID }),
        Field::Blob(b) => {
            let mime =
                b.accept.as_ref().and_then(|a| a.first()).map_or("image/png".to_owned(), |m| m.replace('*', "png"));
            json!({ "$type": "blob", "ref": { "$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity" }, "mimeType": mime, "size": 1 })
        }
        Field::Unknown(_) => json!({}),
        Field::Array(a) => {
            let n = a.min_length.unwrap_or(1).max(1) as usize;
            Value::Array((0..n).map(|_| self::field(catalog, &a.items, context, depth + 1)).collect())
        }
        Field::Object(o) => object(catalog, o, context, depth + 1),
        Field::Ref(r) => reference(catalog, &r.target, context, depth + 1),
        Field::Union(u) => {
            let mut value = reference(catalog, &u.refs[0], context, depth + 1);
            let target = catalog.resolve(&u.refs[0], context).expect("union ref resolves");
            value["$type"] = json!(target.type_name());
            value
        }
    }
}

fn reference(catalog: &Catalog, reference: &str, context: &str, depth: usize) -> Value {
    let target = catalog.resolve(reference, context).expect("reference resolves");
    match target.def {
        Def::Token(_) => json!(target.type_name()),
        Def::Record(r) => object(catalog, r.record.object(), target.nsid, depth),
        other => field(catalog, &other.as_field().expect("a data definition"), target.nsid, depth),
    }
}

pub fn object(catalog: &Catalog, o: &ObjectSchema, context: &str, depth: usize) -> Value {
    let mut map = Map::new();
    for name in &o.required {
        if let Some(f) = o.properties.get(name) {
            map.insert(name.clone(), field(catalog, f, context, depth + 1));
        }
    }
    Value::Object(map)
}

/// A query string holding every required parameter.
pub fn query_string(catalog: &Catalog, params: Option<&ParamsSchema>, context: &str) -> String {
    let Some(params) = params else { return String::new() };
    let mut parts = Vec::new();
    for name in &params.required {
        let Some(f) = params.properties.get(name) else { continue };
        let values = match field(catalog, f, context, 0) {
            Value::Array(items) => items,
            other => vec![other],
        };
        for value in values {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            parts.push(format!("{name}={}", urlencode(&text)));
        }
    }
    parts.join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
