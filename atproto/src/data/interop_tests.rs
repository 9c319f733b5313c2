//! Runs the data-model vectors of the atproto interop tests.

use std::fs;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::*;

fn load(name: &str) -> Option<Vec<Value>> {
    let path = crate::interop::dir()?.join("data-model").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(!cases.is_empty(), "{} has no cases", path.display());
    Some(cases)
}

#[test]
fn every_fixture_converts_exactly_in_both_directions() {
    let Some(cases) = load("data-model-fixtures.json") else {
        return;
    };
    for case in &cases {
        let json = &case["json"];
        let expected_cbor =
            STANDARD_NO_PAD.decode(case["cbor_base64"].as_str().unwrap_or_default()).unwrap_or_default();
        let expected_cid = case["cid"].as_str().unwrap_or_default();

        let ipld = json_to_ipld(json).unwrap_or_else(|error| panic!("{json}: {error}"));
        let (cid, cbor) = cid_for_ipld(&ipld).unwrap_or_else(|error| panic!("{json}: {error}"));
        assert_eq!(cbor, expected_cbor, "JSON → CBOR for {json}");
        assert_eq!(cid.to_string(), expected_cid, "CID for {json}");
        assert_eq!(cid_for_json(json).ok(), Some(cid));

        let decoded = from_dag_cbor(&expected_cbor).unwrap_or_else(|error| panic!("{json}: {error}"));
        assert_eq!(decoded, ipld, "CBOR → IPLD for {json}");
        assert_eq!(ipld_to_json(&decoded).ok().as_ref(), Some(json), "CBOR → JSON for {json}");
        assert_eq!(dag_cbor_to_json(&expected_cbor).ok().as_ref(), Some(json), "CBOR → JSON directly for {json}");
        let served = DagCborJson::from_block(expected_cbor.clone());
        assert_eq!(serde_json::to_value(&served).ok().as_ref(), Some(json), "CBOR served as JSON for {json}");
    }
    println!("data-model fixtures: {} cases", cases.len());
}

#[test]
fn every_valid_data_model_case_is_accepted_and_round_trips() {
    let Some(cases) = load("data-model-valid.json") else {
        return;
    };
    for case in &cases {
        let note = &case["note"];
        let map = object_from_json(&case["json"]).unwrap_or_else(|error| panic!("{note}: {error}"));
        let bytes = to_dag_cbor(&Ipld::Map(map.clone())).unwrap_or_else(|error| panic!("{note}: {error}"));
        assert_eq!(
            dag_cbor_to_json(&bytes).ok(),
            ipld_to_json(&Ipld::Map(map.clone())).ok(),
            "{note}: CBOR → JSON directly"
        );
        let served = serde_json::to_string(&DagCborJson::from_block(bytes.clone())).ok();
        let tree = dag_cbor_to_json(&bytes).ok().and_then(|tree| serde_json::to_string(&tree).ok());
        assert_eq!(served, tree, "{note}: CBOR served as JSON");
        assert_eq!(from_dag_cbor(&bytes).ok(), Some(Ipld::Map(map)), "{note}");
    }
    println!("data-model valid: {} cases", cases.len());
}

#[test]
fn every_invalid_data_model_case_is_rejected() {
    let Some(cases) = load("data-model-invalid.json") else {
        return;
    };
    for case in &cases {
        match object_from_json(&case["json"]) {
            Ok(value) => panic!("{} was accepted as {value:?}", case["note"]),
            Err(error) => println!("  rejected {}: {error}", case["note"]),
        }
    }
    println!("data-model invalid: {} cases", cases.len());
}
