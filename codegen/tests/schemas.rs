//! The published JSON Schemas (OpenAPI components) say what the server's lexicon validator
//! enforces: checked with the `jsonschema` crate against the atproto interop vectors (record
//! data and string syntax, valid and invalid) and a corpus of real app.bsky records. Where JSON
//! Schema cannot express a lexicon rule, the schema accepts more than the validator, never
//! less; every such case is listed here against its reason in `aurora_codegen::formats::LIMITS`.

use std::path::Path;

use serde_json::{json, Value};

use aurora_atproto::lexicon::{Catalog, Validator};
use aurora_atproto::syntax::Format;
use aurora_codegen::auth::AuthTable;

/// Invalid interop record vectors the schema accepts, each with the `LIMITS` entry that says why.
const RECORDS_BEYOND_JSON_SCHEMA: &[(&str, &str)] = &[
    ("string too short (graphemes)", "graphemes"),
    ("string too long (graphemes)", "graphemes"),
    ("bytes too short", "bytes length"),
    ("bytes too long", "bytes length"),
    ("blob too large", "blob"),
    ("blob wrong type", "blob"),
];

/// Invalid syntax vectors the format patterns accept, by format, with their `LIMITS` entry.
const SYNTAX_BEYOND_JSON_SCHEMA: &[(&str, &str, &str)] = &[];

fn limit_exists(name: &str) -> bool {
    aurora_codegen::formats::LIMITS.iter().any(|(limit, _)| *limit == name)
}

/// A validator for the component `name` of an OpenAPI document.
fn component(document: &Value, name: &str) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": document["components"],
    });
    jsonschema::options()
        .should_validate_formats(false)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema of {name} compiles: {e}"))
}

/// The interop vectors' lexicons, with this repository's (which they reference) beside them.
fn interop_catalog(dir: &Path) -> Catalog {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lexicons");
    let mut catalog = aurora_codegen::load_catalog(&ours).expect("lexicons");
    let mut files: Vec<_> = std::fs::read_dir(dir.join("lexicon/catalog")).expect("catalog dir").flatten().collect();
    files.sort_by_key(|f| f.path());
    for file in files {
        let text = std::fs::read_to_string(file.path()).expect("read lexicon");
        catalog.add(Catalog::parse_doc(&text).expect("parse lexicon")).expect("add lexicon");
    }
    catalog
}

fn openapi_for(catalog: &Catalog) -> Value {
    let auth = AuthTable::parse(r#"{"methods":{},"protected":[],"privileged":[]}"#).expect("auth table");
    let ir = aurora_codegen::ir::build(catalog, &auth, &[]).expect("ir");
    let rules = aurora_codegen::server_rules::ServerRules::default();
    let document = aurora_codegen::openapi::document(&ir, catalog, &rules, "0.0.0").expect("openapi");
    serde_json::from_str(&document).expect("openapi JSON")
}

#[test]
fn the_record_schemas_accept_every_valid_interop_record_and_refuse_the_invalid_ones_they_can() {
    let Some(dir) = aurora_atproto::interop::dir() else { return };
    let catalog = interop_catalog(&dir);
    let document = openapi_for(&catalog);
    let read = |name: &str| -> Vec<Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join("lexicon").join(name)).expect("vectors")).expect("json")
    };
    let validator = Validator::new(&catalog);
    let mut checked = 0;
    for case in read("record-data-valid.json") {
        let data = &case["data"];
        let collection = data["$type"].as_str().expect("$type");
        let schema = component(&document, collection);
        assert!(validator.record(collection, data).is_ok(), "the validator accepts {}", case["name"]);
        let errors: Vec<String> = schema.iter_errors(data).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "the schema refuses valid {}: {errors:?}", case["name"]);
        checked += 1;
    }
    let mut beyond = Vec::new();
    for case in read("record-data-invalid.json") {
        let name = case["name"].as_str().expect("name");
        let data = &case["data"];
        let collection = data["$type"].as_str().expect("$type");
        assert!(validator.record(collection, data).is_err(), "the validator refuses {name}");
        let accepted = component(&document, collection).is_valid(data);
        match RECORDS_BEYOND_JSON_SCHEMA.iter().find(|(case, _)| *case == name) {
            Some((_, limit)) => {
                assert!(limit_exists(limit), "{name}: no LIMITS entry {limit:?}");
                assert!(accepted, "{name} is listed as beyond JSON Schema, but the schema refuses it: unlist it");
                beyond.push(name.to_owned());
            }
            None => assert!(!accepted, "the schema accepts invalid {name}: {data}"),
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} vectors");
    println!("{checked} record vectors; beyond JSON Schema: {beyond:?}");
}

#[test]
fn the_format_patterns_agree_with_the_validator_on_the_syntax_vectors() {
    let Some(dir) = aurora_atproto::interop::dir() else { return };
    let files = [
        ("did", "did"),
        ("handle", "handle"),
        ("nsid", "nsid"),
        ("atidentifier", "at-identifier"),
        ("aturi", "at-uri"),
        ("tid", "tid"),
        ("recordkey", "record-key"),
        ("cid", "cid"),
        ("datetime", "datetime"),
        ("language", "language"),
        ("uri", "uri"),
    ];
    let mut checked = 0;
    for (file, format) in files {
        let mut schema = json!({ "type": "string", "format": format });
        aurora_codegen::formats::apply(format, &mut schema);
        let compiled = jsonschema::validator_for(&schema).expect("pattern compiles");
        let parsed = Format::from_name(format).expect("a lexicon format");
        for (suffix, valid) in [("valid", true), ("invalid", false)] {
            let path = dir.join(format!("syntax/{file}_syntax_{suffix}.txt"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{}", path.display()));
            for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
                assert_eq!(parsed.check(line).is_ok(), valid, "the validator on {format} {line:?}");
                let accepted = compiled.is_valid(&json!(line));
                let beyond = SYNTAX_BEYOND_JSON_SCHEMA.iter().find(|(f, value, _)| *f == format && *value == line);
                match (valid, beyond) {
                    (true, _) => assert!(accepted, "the {format} pattern refuses valid {line:?}"),
                    (false, Some((_, _, limit))) => {
                        assert!(limit_exists(limit), "no LIMITS entry {limit:?}");
                        assert!(accepted, "{format} {line:?} is listed as beyond JSON Schema but is refused");
                    }
                    (false, None) => assert!(!accepted, "the {format} pattern accepts invalid {line:?}"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} syntax vectors");
}

#[test]
fn real_app_bsky_records_pass_both_the_validator_and_the_published_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let catalog = aurora_codegen::load_catalog(&root.join("lexicons")).expect("lexicons");
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("openapi/openapi.json")).expect("openapi"))
            .expect("json");
    let corpus: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/app-bsky-records.json"))
            .expect("corpus"),
    )
    .expect("corpus json");
    let validator = Validator::new(&catalog);
    for entry in &corpus {
        let collection = entry["collection"].as_str().expect("collection");
        let record = &entry["record"];
        validator
            .record(collection, record)
            .unwrap_or_else(|e| panic!("the validator refuses a real {collection}: {e}"));
        let errors: Vec<String> = component(&document, collection)
            .iter_errors(record)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "the published schema refuses a real {collection}: {errors:?}");
    }
    assert!(corpus.len() >= 25);
    // And a broken one is refused by both.
    let mut broken = corpus[0]["record"].clone();
    broken["createdAt"] = json!("yesterday");
    assert!(validator.record("app.bsky.feed.post", &broken).is_err());
    assert!(!component(&document, "app.bsky.feed.post").is_valid(&broken));
}

/// Values a schema-driven fuzzer (schemathesis) sent that the old patterns let through and the
/// server refused: the patterns now refuse them too.
#[test]
fn the_patterns_refuse_impossible_datetimes_and_overlong_handles() {
    let check = |format: &str, value: &str| {
        let mut schema = json!({ "type": "string" });
        aurora_codegen::formats::apply(format, &mut schema);
        let accepted = jsonschema::validator_for(&schema).expect("compiles").is_valid(&json!(value));
        let valid = Format::from_name(format).expect("format").check(value).is_ok();
        (accepted, valid)
    };
    for bad in ["2000-13-01T00:00:00Z", "2000-01-01T35:00:00Z", "2000-01-01T00:60:00Z", "2000-01-01T00:00:00-31:63"] {
        assert_eq!(check("datetime", bad), (false, false), "{bad}");
    }
    // A day the month does not have is beyond a pattern, and listed as such.
    assert_eq!(check("datetime", "2023-02-29T00:00:00Z"), (true, false));
    assert!(limit_exists("datetime"));
    let label = "a".repeat(63);
    let long_handle = format!("{label}.{label}.{label}.{}", "a".repeat(62));
    assert_eq!(long_handle.len(), 254);
    assert_eq!(check("at-identifier", &long_handle), (false, false));
    assert_eq!(check("at-identifier", &long_handle[1..]), (true, true));
    assert_eq!(check("at-identifier", "did:plc:ewvi7nxzyoun6zhxrhs64oiz"), (true, true));
}

/// The server rules reach the published document: a rule the server enforces beyond the
/// lexicon is in the method's schema.
#[test]
fn the_published_document_carries_the_server_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("openapi/openapi.json")).expect("openapi"))
            .expect("json");
    let create = &document["paths"]["/xrpc/com.atproto.server.createAccount"]["post"];
    let input = &create["requestBody"]["content"]["application/json"]["schema"];
    assert!(input["required"].as_array().expect("required").contains(&json!("password")));
    assert_eq!(input["properties"]["plcOp"], json!(false));
    let email = jsonschema::validator_for(&input["properties"]["email"]).expect("compiles");
    assert!(email.is_valid(&json!("alice@example.com")) && !email.is_valid(&json!("a@b")));
    let errors = &create["responses"]["401"]["content"]["application/json"]["schema"]["properties"]["error"]["enum"];
    assert!(errors.as_array().expect("401 names").contains(&json!("BadJwtType")));
    let forwarded = &document["paths"]["/xrpc/app.bsky.feed.getTimeline"]["get"]["responses"];
    assert!(forwarded.get("default").is_some() && forwarded.get("502").is_some());
}
