//! Runs the crypto vectors of the atproto interop tests.

use std::fs;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use cid::multibase;
use serde_json::Value;

use super::*;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn load(name: &str) -> Option<Vec<Value>> {
    let path = crate::interop::dir()?.join("crypto").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(!cases.is_empty(), "{} has no cases", path.display());
    Some(cases)
}

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name].as_str().unwrap_or_else(|| panic!("case lacks {name}: {case}"))
}

fn base64(case: &Value, name: &str) -> Vec<u8> {
    BASE64.decode(field(case, name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

#[test]
fn every_signature_fixture_verifies_or_fails_as_specified() {
    let Some(cases) = load("signature-fixtures.json") else {
        return;
    };
    let (mut valid, mut invalid) = (0, 0);
    for case in &cases {
        let comment = field(case, "comment");
        let key =
            PublicKey::from_did_key(field(case, "publicKeyDid")).unwrap_or_else(|error| panic!("{comment}: {error}"));
        let expected_type = match field(case, "algorithm") {
            "ES256K" => KeyType::K256,
            "ES256" => KeyType::P256,
            other => panic!("{comment}: unknown algorithm {other}"),
        };
        assert_eq!(key.key_type(), expected_type, "{comment}");
        assert_eq!(key.key_type().jwt_algorithm(), field(case, "algorithm"));
        assert_eq!(key.to_did_key(), field(case, "publicKeyDid"), "{comment}");

        // The fixtures' publicKeyMultibase is the older DID-document form: the bare compressed
        // point, without a multicodec prefix.
        let (_, legacy) =
            multibase::decode(field(case, "publicKeyMultibase")).unwrap_or_else(|error| panic!("{comment}: {error}"));
        assert_eq!(PublicKey::from_sec1_bytes(expected_type, &legacy).ok().as_ref(), Some(&key), "{comment}");

        let message = base64(case, "messageBase64");
        let signature = base64(case, "signatureBase64");
        let result = key.verify(&message, &signature);
        if case["validSignature"].as_bool() == Some(true) {
            assert!(result.is_ok(), "{comment}: {result:?}");
            valid += 1;
        } else {
            let tags: Vec<&str> = case["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            match result {
                Err(CryptoError::HighS) => assert!(tags.contains(&"high-s"), "{comment}"),
                Err(CryptoError::MalformedSignature(_)) => {
                    assert!(tags.contains(&"der-encoded"), "{comment}")
                }
                other => panic!("{comment}: expected a specific rejection, got {other:?}"),
            }
            invalid += 1;
        }
    }
    println!("crypto signatures: {valid} valid, {invalid} invalid cases");
}

#[test]
fn every_k256_did_key_vector_derives_from_its_private_key() {
    let Some(cases) = load("w3c_didkey_K256.json") else {
        return;
    };
    for case in &cases {
        let private = hex::decode(field(case, "privateKeyBytesHex")).unwrap_or_default();
        check_did_key(KeyType::K256, &private, field(case, "publicDidKey"));
    }
    println!("crypto did:key K256: {} cases", cases.len());
}

#[test]
fn every_p256_did_key_vector_derives_from_its_private_key() {
    let Some(cases) = load("w3c_didkey_P256.json") else {
        return;
    };
    for case in &cases {
        // Bare base58btc, which multibase reads once given its `z` prefix.
        let encoded = format!("z{}", field(case, "privateKeyBytesBase58"));
        let private = multibase::decode(encoded).map(|(_, bytes)| bytes).unwrap_or_default();
        check_did_key(KeyType::P256, &private, field(case, "publicDidKey"));
    }
    println!("crypto did:key P256: {} cases", cases.len());
}

fn check_did_key(key_type: KeyType, private: &[u8], did_key: &str) {
    let keypair = Keypair::from_private_bytes(key_type, private).unwrap_or_else(|error| panic!("{did_key}: {error}"));
    assert_eq!(keypair.did_key(), did_key);
    let public = PublicKey::from_did_key(did_key).unwrap_or_else(|error| panic!("{did_key}: {error}"));
    assert_eq!(public, keypair.public_key());
    assert_eq!(PublicKey::from_multikey(&public.to_multikey()).ok(), Some(public.clone()));
    let signature = keypair.sign(did_key.as_bytes());
    assert!(public.verify(did_key.as_bytes(), &signature).is_ok());
}
