//! Blob references: how records point at uploaded media.

use std::collections::BTreeMap;

use cid::Cid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ipld_to_json, json_to_ipld, DataError, Ipld};

/// A blob reference, in the current form `{"$type": "blob", "ref": link, "mimeType", "size"}` or
/// the legacy form `{"cid": "…", "mimeType"}` that early records still carry. The form read is
/// the form written back, so a record's bytes never change by passing through this type.
///
/// Serde writes the JSON form to human-readable formats and the IPLD form (with a real link) to
/// DAG-CBOR, so one struct field serves both encodings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// The CID of the blob's raw bytes.
    pub cid: Cid,
    pub mime_type: String,
    /// The size in bytes; `None` only for the legacy form, which had none.
    pub size: Option<u64>,
}

impl BlobRef {
    /// A reference in the current form.
    pub fn new(cid: Cid, mime_type: impl Into<String>, size: u64) -> BlobRef {
        BlobRef { cid, mime_type: mime_type.into(), size: Some(size) }
    }

    /// Whether this is the legacy form, without `$type` or size.
    pub fn is_legacy(&self) -> bool {
        self.size.is_none()
    }

    /// The reference as an IPLD map.
    pub fn to_ipld(&self) -> Ipld {
        let text = |value: &str| Ipld::String(value.to_owned());
        let entries = match self.size {
            Some(size) => vec![
                ("$type", text("blob")),
                ("ref", Ipld::Link(self.cid)),
                ("mimeType", text(&self.mime_type)),
                ("size", Ipld::Integer(size.into())),
            ],
            None => vec![("cid", text(&self.cid.to_string())), ("mimeType", text(&self.mime_type))],
        };
        Ipld::Map(entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
    }

    /// Reads either form from an IPLD map.
    pub fn from_ipld(value: &Ipld) -> Result<BlobRef, DataError> {
        let Ipld::Map(map) = value else {
            return Err(DataError::InvalidBlob("not an object"));
        };
        let mime_type = match map.get("mimeType") {
            Some(Ipld::String(mime)) if !mime.is_empty() => mime.clone(),
            _ => return Err(DataError::InvalidBlob("mimeType must be a non-empty string")),
        };
        match map.get("$type") {
            Some(Ipld::String(kind)) if kind == "blob" => from_current(map, mime_type),
            Some(_) => Err(DataError::InvalidBlob("$type must be \"blob\"")),
            None => from_legacy(map, mime_type),
        }
    }

    /// The reference as atproto JSON.
    pub fn to_json(&self) -> serde_json::Value {
        // A blob reference is always inside the data model, so conversion cannot fail; the
        // fallback only satisfies the signature.
        ipld_to_json(&self.to_ipld()).unwrap_or_default()
    }

    /// Reads either form from atproto JSON.
    pub fn from_json(value: &serde_json::Value) -> Result<BlobRef, DataError> {
        BlobRef::from_ipld(&json_to_ipld(value)?)
    }
}

fn from_current(map: &BTreeMap<String, Ipld>, mime_type: String) -> Result<BlobRef, DataError> {
    let Some(Ipld::Link(cid)) = map.get("ref") else {
        return Err(DataError::InvalidBlob("ref must be a link"));
    };
    let size = match map.get("size") {
        Some(Ipld::Integer(size)) => u64::try_from(*size).ok(),
        _ => None,
    };
    let Some(size) = size else {
        return Err(DataError::InvalidBlob("size must be a non-negative integer"));
    };
    Ok(BlobRef { cid: *cid, mime_type, size: Some(size) })
}

fn from_legacy(map: &BTreeMap<String, Ipld>, mime_type: String) -> Result<BlobRef, DataError> {
    let Some(Ipld::String(text)) = map.get("cid") else {
        return Err(DataError::InvalidBlob("needs $type \"blob\" or a legacy cid string"));
    };
    let cid = crate::cids::parse(text).map_err(|_| DataError::InvalidBlob("cid is not a CID"))?;
    Ok(BlobRef { cid, mime_type, size: None })
}

impl Serialize for BlobRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.to_json().serialize(serializer)
        } else {
            self.to_ipld().serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for BlobRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parsed = if deserializer.is_human_readable() {
            BlobRef::from_json(&serde_json::Value::deserialize(deserializer)?)
        } else {
            BlobRef::from_ipld(&Ipld::deserialize(deserializer)?)
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use serde_json::json;

    use super::*;

    const CID: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";

    #[test]
    fn a_current_blob_round_trips_through_json() {
        let value = json!({ "$type": "blob", "ref": { "$link": CID }, "mimeType": "image/jpeg", "size": 10000 });
        let blob = BlobRef::from_json(&value).unwrap();
        assert_eq!(blob.size, Some(10000));
        assert_eq!(blob.to_json(), value);
    }

    #[test]
    fn a_legacy_blob_is_read_and_written_back_as_legacy() {
        let value = json!({ "cid": CID, "mimeType": "image/png" });
        let blob: BlobRef = serde_json::from_value(value.clone()).unwrap();
        assert!(blob.is_legacy());
        assert_eq!(serde_json::to_value(&blob).unwrap(), value);
    }

    #[test]
    fn a_blob_survives_dag_cbor_through_serde() {
        let blob = BlobRef::new(Cid::try_from(CID).unwrap(), "image/jpeg", 42);
        let bytes = serde_ipld_dagcbor::to_vec(&blob).unwrap();
        assert_eq!(crate::data::from_dag_cbor(&bytes).unwrap(), blob.to_ipld());
        assert_eq!(serde_ipld_dagcbor::from_slice::<BlobRef>(&bytes).unwrap(), blob);
    }

    #[test]
    fn a_blob_with_a_string_size_is_rejected() {
        let value = json!({ "$type": "blob", "ref": { "$link": CID }, "mimeType": "image/jpeg", "size": "1" });
        assert!(BlobRef::from_json(&value).is_err());
    }
}
