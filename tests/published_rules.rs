//! The published document's server rules agree with the checks they describe: what a pattern
//! in `codegen/server-rules.json` refuses, the server refuses too (the pattern may accept more,
//! never less, and what it cannot say is listed in the method's `x-server-rules`).

use serde_json::{json, Value};

fn document() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("openapi.json")).expect("json")
}

#[test]
fn the_published_email_pattern_never_refuses_an_address_the_server_takes() {
    let document = document();
    let input = |nsid: &str| {
        document["paths"][format!("/xrpc/{nsid}")]["post"]["requestBody"]["content"]["application/json"]["schema"]
            .clone()
    };
    for nsid in ["com.atproto.server.createAccount", "com.atproto.server.updateEmail"] {
        let schema = &input(nsid)["properties"]["email"];
        let pattern = jsonschema::validator_for(schema).expect("the pattern compiles");
        let addresses = [
            "alice@example.com",
            "a+tag@mail.example.org",
            "ü@bücher.de",
            "a@b.test",
            "  padded@example.com ",
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@localhost",
            "a@b..com",
            "a b@example.com",
            "a@-b.com",
            "a@b.c|",
            "ab@c.d]",
            "a\u{1d}b@c.de",
            "a@b.c.",
            ".a@b.cd",
        ];
        for address in addresses {
            let server = aurora_locus::account::email::is_valid(&address.trim().to_lowercase());
            let published = pattern.is_valid(&json!(address));
            assert!(!server || published, "{nsid}: the pattern refuses {address:?}, which the server takes");
            assert_eq!(published, server, "{nsid}: pattern and server disagree on {address:?}");
        }
    }
}
