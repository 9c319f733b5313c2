//! The public atproto interop vectors for lexicons: documents that must parse or be rejected,
//! and record data that must validate or be rejected.

use aurora_atproto::interop;
use aurora_atproto::lexicon::{Catalog, Validator};
use serde_json::Value;

fn cases(file: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).expect("vector file is readable");
    serde_json::from_str(&text).expect("vector file is JSON")
}

#[test]
fn lexicon_documents_parse_or_are_rejected_as_the_vectors_say() {
    let Some(dir) = interop::dir() else { return };
    let valid = cases(&dir.join("lexicon/lexicon-valid.json"));
    for case in &valid {
        Catalog::parse_value(case["lexicon"].clone()).unwrap_or_else(|e| panic!("{} should parse: {e}", case["name"]));
    }
    let invalid = cases(&dir.join("lexicon/lexicon-invalid.json"));
    for case in &invalid {
        assert!(Catalog::parse_value(case["lexicon"].clone()).is_err(), "{} should be rejected", case["name"]);
    }
    println!("lexicon documents: {} valid, {} invalid cases", valid.len(), invalid.len());
}

#[test]
fn record_data_validates_or_is_rejected_as_the_vectors_say() {
    let Some(dir) = interop::dir() else { return };
    let mut catalog = Catalog::new();
    for entry in std::fs::read_dir(dir.join("lexicon/catalog")).expect("catalog folder") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("catalog file");
        catalog.add(Catalog::parse_doc(&text).expect("catalog lexicon parses")).expect("unique ids");
    }
    let validator = Validator::new(&catalog);
    let valid = cases(&dir.join("lexicon/record-data-valid.json"));
    for case in &valid {
        let ty = case["data"]["$type"].as_str().expect("$type");
        validator.record(ty, &case["data"]).unwrap_or_else(|e| panic!("{} should validate: {e}", case["name"]));
    }
    let invalid = cases(&dir.join("lexicon/record-data-invalid.json"));
    for case in &invalid {
        let ty = case["data"]["$type"].as_str().expect("$type");
        assert!(validator.record(ty, &case["data"]).is_err(), "{} should be rejected", case["name"]);
    }
    println!("record data: {} valid, {} invalid cases", valid.len(), invalid.len());
}
