//! Finding the blobs a record references.

use cid::Cid;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use serde_json::Value;

use aurora_atproto::syntax::{AtUri, CidString};

use crate::db::entities::record_blob;

/// A blob reference inside a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobReference {
    pub cid: Cid,
    pub mime_type: String,
    pub size: Option<u64>,
}

/// The blobs the stored records `uris` reference, as stored (a blob once per record).
pub async fn stored_for<C: ConnectionTrait>(conn: &C, uris: &[AtUri]) -> Result<Vec<CidString>, DbErr> {
    let mut cids = Vec::new();
    // Few enough values per `IN (…)` list for either database.
    for chunk in uris.chunks(500) {
        let found: Vec<CidString> = record_blob::Entity::find()
            .select_only()
            .column(record_blob::Column::BlobCid)
            .filter(record_blob::Column::RecordUri.is_in(chunk))
            .into_tuple()
            .all(conn)
            .await?;
        cids.extend(found);
    }
    Ok(cids)
}

/// Every blob reference in `value` (typed `{"$type":"blob"}` and legacy `{"cid","mimeType"}`).
pub fn find(value: &Value) -> Vec<BlobReference> {
    let mut found = Vec::new();
    walk(value, &mut found);
    found
}

fn walk(value: &Value, found: &mut Vec<BlobReference>) {
    match value {
        Value::Object(map) => {
            if map.get("$type").and_then(Value::as_str) == Some("blob") {
                let cid =
                    map.get("ref").and_then(|r| r.get("$link")).and_then(Value::as_str).and_then(|c| c.parse().ok());
                if let (Some(cid), Some(mime)) = (cid, map.get("mimeType").and_then(Value::as_str)) {
                    found.push(BlobReference {
                        cid,
                        mime_type: mime.to_owned(),
                        size: map.get("size").and_then(Value::as_u64),
                    });
                    return;
                }
            }
            if let (Some(Value::String(cid)), Some(Value::String(mime))) = (map.get("cid"), map.get("mimeType")) {
                if map.len() == 2 {
                    if let Ok(cid) = cid.parse() {
                        found.push(BlobReference { cid, mime_type: mime.clone(), size: None });
                        return;
                    }
                }
            }
            map.values().for_each(|v| walk(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
        _ => {}
    }
}
