//! What a PDS reads out of a DID document.

use serde_json::Value;

use aurora_atproto::crypto::{KeyType, PublicKey};
use aurora_atproto::syntax::Handle;

fn matches_id(entry: &Value, did: &str, fragment: &str) -> bool {
    entry["id"].as_str().is_some_and(|id| id == fragment || id.strip_prefix(did) == Some(fragment))
}

/// The `#atproto` signing key. Multikey is today's form; the two legacy key types are read too.
pub fn atproto_key(did: &str, doc: &Value) -> Option<PublicKey> {
    verification_key(did, doc, "atproto")
}

/// The verification method `#<id>` (a labeler signs with `#atproto_label`).
pub fn verification_key(did: &str, doc: &Value, id: &str) -> Option<PublicKey> {
    let fragment = format!("#{id}");
    let method = doc["verificationMethod"].as_array()?.iter().find(|m| matches_id(m, did, &fragment))?;
    let multibase = method["publicKeyMultibase"].as_str()?;
    match method["type"].as_str()? {
        "Multikey" => PublicKey::from_multikey(multibase).ok(),
        legacy @ ("EcdsaSecp256k1VerificationKey2019" | "EcdsaSecp256r1VerificationKey2019") => {
            let key_type = if legacy.contains("256k1") { KeyType::K256 } else { KeyType::P256 };
            let bytes = multibase.strip_prefix('z').and_then(bs58_decode)?;
            PublicKey::from_sec1_bytes(key_type, &bytes).ok()
        }
        _ => None,
    }
}

fn bs58_decode(text: &str) -> Option<Vec<u8>> {
    multibase::decode(format!("z{text}")).ok().map(|(_, bytes)| bytes)
}

/// The `#atproto_pds` service endpoint.
pub fn pds_endpoint(did: &str, doc: &Value) -> Option<String> {
    let service = doc["service"].as_array()?.iter().find(|s| matches_id(s, did, "#atproto_pds"))?;
    if service["type"] != "AtprotoPersonalDataServer" {
        return None;
    }
    service["serviceEndpoint"].as_str().map(|e| e.trim_end_matches('/').to_owned())
}

/// The endpoint of the service with id `#<id>`, whatever its type (for proxying to it).
pub fn service_endpoint(did: &str, doc: &Value, id: &str) -> Option<String> {
    let fragment = format!("#{id}");
    let service = doc["service"].as_array()?.iter().find(|s| matches_id(s, did, &fragment))?;
    service["serviceEndpoint"].as_str().map(|e| e.trim_end_matches('/').to_owned())
}

/// The handle the document claims (`at://<handle>` in `alsoKnownAs`).
pub fn atproto_handle(doc: &Value) -> Option<Handle> {
    doc["alsoKnownAs"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|aka| aka.strip_prefix("at://"))?
        .parse()
        .ok()
}
