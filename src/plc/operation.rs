//! PLC operations. The signature covers the DAG-CBOR encoding of the operation without `sig`;
//! the DID of a new identity is the first 24 base32 characters of the SHA-256 of its signed
//! genesis operation.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use aurora_atproto::crypto::{Keypair, PublicKey};
use aurora_atproto::data::{self, Ipld};
use aurora_atproto::syntax::Did;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint: String,
}

/// An unsigned `plc_operation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub rotation_keys: Vec<String>,
    pub verification_methods: BTreeMap<String, String>,
    pub also_known_as: Vec<String>,
    pub services: BTreeMap<String, Service>,
    pub prev: Option<String>,
}

/// A signed operation, in the JSON form the directory accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedOperation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub op: Operation,
    pub sig: String,
}

impl Operation {
    /// The operation a new account's DID starts with.
    pub fn genesis(signing_key: &str, rotation_keys: Vec<String>, handle: &str, pds_endpoint: &str) -> Operation {
        Operation {
            rotation_keys,
            verification_methods: BTreeMap::from([("atproto".to_owned(), signing_key.to_owned())]),
            also_known_as: vec![format!("at://{handle}")],
            services: BTreeMap::from([(
                "atproto_pds".to_owned(),
                Service { kind: "AtprotoPersonalDataServer".to_owned(), endpoint: pds_endpoint.to_owned() },
            )]),
            prev: None,
        }
    }

    fn to_ipld(&self, sig: Option<&str>) -> Ipld {
        let strings = |items: &[String]| Ipld::List(items.iter().map(|s| Ipld::String(s.clone())).collect());
        let mut map = BTreeMap::new();
        map.insert("type".to_owned(), Ipld::String("plc_operation".to_owned()));
        map.insert("rotationKeys".to_owned(), strings(&self.rotation_keys));
        map.insert(
            "verificationMethods".to_owned(),
            Ipld::Map(self.verification_methods.iter().map(|(k, v)| (k.clone(), Ipld::String(v.clone()))).collect()),
        );
        map.insert("alsoKnownAs".to_owned(), strings(&self.also_known_as));
        map.insert(
            "services".to_owned(),
            Ipld::Map(
                self.services
                    .iter()
                    .map(|(id, s)| {
                        let service = BTreeMap::from([
                            ("type".to_owned(), Ipld::String(s.kind.clone())),
                            ("endpoint".to_owned(), Ipld::String(s.endpoint.clone())),
                        ]);
                        (id.clone(), Ipld::Map(service))
                    })
                    .collect(),
            ),
        );
        map.insert("prev".to_owned(), self.prev.clone().map_or(Ipld::Null, Ipld::String));
        if let Some(sig) = sig {
            map.insert("sig".to_owned(), Ipld::String(sig.to_owned()));
        }
        Ipld::Map(map)
    }

    /// Signs with a rotation key. (An operation holds only strings, lists and maps, which
    /// always encode, so the encoding results below cannot be errors.)
    pub fn sign(self, key: &Keypair) -> SignedOperation {
        let bytes = data::to_dag_cbor(&self.to_ipld(None)).unwrap_or_default();
        let sig = URL_SAFE_NO_PAD.encode(key.sign(&bytes));
        SignedOperation { kind: "plc_operation".to_owned(), op: self, sig }
    }
}

impl SignedOperation {
    /// The DAG-CBOR bytes of the whole signed operation.
    pub fn to_cbor(&self) -> Vec<u8> {
        data::to_dag_cbor(&self.op.to_ipld(Some(&self.sig))).unwrap_or_default()
    }

    /// The CID of this operation, which the next operation names as `prev`.
    pub fn cid(&self) -> String {
        aurora_atproto::cids::for_dag_cbor(&self.to_cbor()).to_string()
    }

    /// Whether one of `rotation_keys` (did:key form) signed this operation.
    pub fn signed_by_any(&self, rotation_keys: &[String]) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(&self.sig) else { return false };
        let Ok(unsigned) = data::to_dag_cbor(&self.op.to_ipld(None)) else { return false };
        rotation_keys
            .iter()
            .filter_map(|k| PublicKey::from_did_key(k).ok())
            .any(|key| key.verify(&unsigned, &sig).is_ok())
    }
}

/// The DID a signed genesis operation creates.
pub fn did_for_genesis(op: &SignedOperation) -> Did {
    let digest = Sha256::digest(op.to_cbor());
    let encoded = multibase::encode(multibase::Base::Base32Lower, digest);
    // Drop the multibase prefix `b`, keep 24 characters.
    format!("did:plc:{}", &encoded[1..25]).parse().expect("24 base32 characters make a valid did:plc")
}

/// The DID document the directory serves for an identity in the state `op` describes.
pub fn doc_for(did: &Did, op: &Operation) -> Value {
    let methods: Vec<Value> = op
        .verification_methods
        .iter()
        .map(|(id, key)| {
            json!({
                "id": format!("{did}#{id}"),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.strip_prefix("did:key:").unwrap_or(key),
            })
        })
        .collect();
    let services: Vec<Value> = op
        .services
        .iter()
        .map(|(id, s)| json!({ "id": format!("#{id}"), "type": s.kind, "serviceEndpoint": s.endpoint }))
        .collect();
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1"
        ],
        "id": did,
        "alsoKnownAs": op.also_known_as,
        "verificationMethod": methods,
        "service": services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_atproto::crypto::KeyType;

    #[test]
    fn a_genesis_operation_derives_a_24_character_did_and_verifies() {
        let rotation = Keypair::generate(KeyType::K256);
        let signing = Keypair::generate(KeyType::K256);
        let op = Operation::genesis(&signing.did_key(), vec![rotation.did_key()], "alice.test", "https://pds.test");
        let signed = op.sign(&rotation);
        let did = did_for_genesis(&signed).into_string();
        assert!(did.starts_with("did:plc:") && did.len() == 32, "{did}");
        assert!(did[8..].bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert!(signed.signed_by_any(&[rotation.did_key()]));
        assert!(!signed.signed_by_any(&[signing.did_key()]));
        assert!(!signed.sig.ends_with('='));
        let json = serde_json::to_value(&signed).expect("json");
        assert_eq!(json["type"], "plc_operation");
        assert_eq!(json["prev"], Value::Null);
        assert_eq!(json["alsoKnownAs"][0], "at://alice.test");
    }
}
