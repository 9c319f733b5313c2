//! The generated types and validators on real lexicons: records and views round-trip through
//! JSON without losing anything, and validators enforce the lexicon's constraints.

use aurora_generated::app::bsky::feed::post;
use aurora_generated::app::bsky::graph::defs::ListPurpose;
use aurora_generated::com::atproto::repo::{apply_writes, strong_ref};
use serde_json::{json, Value};

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone()).expect("deserialises");
    serde_json::to_value(&typed).expect("serialises")
}

#[test]
fn a_post_with_an_embed_and_facets_round_trips_exactly() {
    let record = json!({
        "$type": "app.bsky.feed.post",
        "text": "hello @alice.test",
        "createdAt": "2024-05-01T12:00:00.000Z",
        "langs": ["en"],
        "facets": [{
            "index": { "byteStart": 6, "byteEnd": 17 },
            "features": [{ "$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz" }]
        }],
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [{
                "alt": "a cat",
                "image": { "$type": "blob", "ref": { "$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity" }, "mimeType": "image/jpeg", "size": 12345 },
                "aspectRatio": { "width": 4, "height": 3 }
            }]
        },
        "someFutureField": { "kept": true }
    });
    let mut without_type = record.clone();
    without_type.as_object_mut().expect("object").remove("$type");
    let back = round_trip::<post::Record>(&without_type);
    assert_eq!(back, without_type);
    let typed: post::Record = serde_json::from_value(without_type).expect("post");
    assert!(matches!(typed.embed, Some(post::RecordEmbed::Images(_))));
    assert_eq!(typed.extra.get("someFutureField"), Some(&json!({ "kept": true })));
}

#[test]
fn an_unknown_union_member_survives_a_round_trip() {
    let record = json!({
        "text": "x",
        "createdAt": "2024-05-01T12:00:00.000Z",
        "embed": { "$type": "com.example.embed.hologram", "depth": 3, "nested": { "a": [1, 2] } }
    });
    assert_eq!(round_trip::<post::Record>(&record), record);
    let typed: post::Record = serde_json::from_value(record).expect("post");
    match typed.embed {
        Some(post::RecordEmbed::Unknown(unknown)) => {
            assert_eq!(unknown.type_name(), Some("com.example.embed.hologram"))
        }
        other => panic!("expected an unknown embed, got {other:?}"),
    }
}

#[test]
fn a_closed_union_refuses_a_type_it_does_not_list() {
    let write = json!({ "$type": "com.example.notAWrite", "collection": "app.bsky.feed.post" });
    assert!(serde_json::from_value::<apply_writes::InputWritesItem>(write).is_err());
    let create =
        json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": {} });
    assert!(matches!(
        serde_json::from_value::<apply_writes::InputWritesItem>(create),
        Ok(apply_writes::InputWritesItem::Create(_))
    ));
}

#[test]
fn known_values_accept_values_the_lexicon_does_not_list() {
    let known: ListPurpose = serde_json::from_value(json!("app.bsky.graph.defs#modlist")).expect("known");
    assert_eq!(known, ListPurpose::Modlist);
    let other: ListPurpose = serde_json::from_value(json!("com.example#newPurpose")).expect("other");
    assert_eq!(other, ListPurpose::Other("com.example#newPurpose".into()));
    assert_eq!(serde_json::to_value(&other).expect("serialise"), json!("com.example#newPurpose"));
}

#[test]
fn string_formats_are_validated_on_deserialisation() {
    let bad = json!({ "uri": "not an at-uri", "cid": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq" });
    assert!(serde_json::from_value::<strong_ref::Main>(bad).is_err());
    let good = json!({ "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3jzfcijpj2z2a", "cid": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq" });
    assert_eq!(round_trip::<strong_ref::Main>(&good), good);
}

#[test]
fn record_validators_enforce_lexicon_constraints() {
    let ok = json!({ "$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-05-01T12:00:00.000Z" });
    post::validate(&ok).expect("a minimal post is valid");

    let too_long =
        json!({ "$type": "app.bsky.feed.post", "text": "é".repeat(301), "createdAt": "2024-05-01T12:00:00.000Z" });
    let error = post::validate(&too_long).expect_err("301 graphemes is too many");
    assert_eq!(error.path, "Record/text");

    let missing = json!({ "$type": "app.bsky.feed.post", "text": "hi" });
    assert!(post::validate(&missing).is_err());

    let bad_image = json!({
        "$type": "app.bsky.feed.post", "text": "x", "createdAt": "2024-05-01T12:00:00.000Z",
        "embed": { "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": { "$type": "blob", "ref": { "$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity" }, "mimeType": "text/plain", "size": 3 } }] }
    });
    let error = post::validate(&bad_image).expect_err("a text file is not an image");
    assert!(error.path.starts_with("Record/embed/images/0/image"), "{error}");
}

#[test]
fn every_record_lexicon_has_a_validator() {
    let catalog = aurora_generated::catalog::catalog();
    let records: Vec<&str> = catalog
        .docs()
        .filter(|d| matches!(d.defs.get("main"), Some(aurora_atproto::lexicon::Def::Record(_))))
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(records, aurora_generated::catalog::RECORD_COLLECTIONS);
    for collection in records {
        let outcome = aurora_generated::catalog::validate_record(collection, &json!({ "$type": collection }));
        assert!(outcome.is_some(), "{collection} has no validator");
    }
    assert!(aurora_generated::catalog::validate_record("com.example.unknown", &json!({})).is_none());
}

#[test]
fn every_embedded_lexicon_parses_and_its_references_resolve() {
    // The catalog parses a document when something first asks for it; this asks for all of them,
    // so a lexicon that would fail at run time fails here.
    let catalog = aurora_generated::catalog::catalog();
    catalog.check_refs().expect("every reference resolves");
    let files = walk_json(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lexicons").as_path());
    assert_eq!(catalog.docs().count(), files);
    assert!(catalog.main("com.atproto.repo.createRecord").is_some());
}

fn walk_json(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("lexicons/")
        .map(|entry| entry.expect("entry").path())
        .map(|path| match path.is_dir() {
            true => walk_json(&path),
            false => usize::from(path.extension().is_some_and(|e| e == "json")),
        })
        .sum()
}
