//! Feeds arbitrary bytes to the strict DAG-CBOR decoder. It must never panic, and whatever it
//! accepts must be canonical (re-encoding gives the same bytes) and survive the trip through
//! atproto JSON unchanged, since records are hashed in one encoding and served in the other.

#![no_main]

use aurora_atproto::data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = data::from_dag_cbor(bytes) else {
        return;
    };
    let encoded = data::to_dag_cbor(&value);
    assert_eq!(
        encoded.as_deref().ok(),
        Some(bytes),
        "accepted bytes are not canonical"
    );
    let json = data::ipld_to_json(&value);
    assert!(json.is_ok(), "accepted value has no JSON form: {json:?}");
    let back = json.ok().map(|json| data::json_to_ipld(&json));
    assert_eq!(back, Some(Ok(value)), "JSON round trip changed the value");
});
