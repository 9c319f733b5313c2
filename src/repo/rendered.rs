//! Records' JSON kept by CID, so a record read again is served without reading its block or
//! writing its JSON again. A block never changes under its CID, so an entry is never stale and
//! nothing needs to be told of writes: a record that changes has a new CID, and one that is
//! deleted or taken down is no longer listed by the record index, which every read still asks.
//!
//! Bounded by bytes (`AURORA_RECORD_CACHE_BYTES`), evicting as quick_cache does (S3-FIFO: a
//! record read once leaves before one read again, so a crawl does not flush the records read
//! often); an entry is only ever made from a block that rendered whole.

use aurora_atproto::data::DagCborJson;
use aurora_xrpc::RenderedJson;

/// Bytes an entry costs beyond its key and JSON: the table's slot, the `Arc`'s counts and the
/// two allocations' headers.
const ENTRY_OVERHEAD: u64 = 96;

/// A post's JSON and key come to some 350 bytes: the table is first sized for that.
const TYPICAL_ENTRY: u64 = 350;

/// What an entry weighs against the cache's bound.
#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<Box<str>, RenderedJson> for Weight {
    fn weight(&self, cid: &Box<str>, json: &RenderedJson) -> u64 {
        (cid.len() + json.as_str().len()) as u64 + ENTRY_OVERHEAD
    }
}

/// The records' JSON, by the CID of their block; empty and inert when its bound is 0.
pub struct RenderedRecords {
    cache: Option<quick_cache::sync::Cache<Box<str>, RenderedJson, Weight>>,
}

impl RenderedRecords {
    /// A cache holding at most `bytes` of records (keys and overhead counted); none at 0.
    pub fn new(bytes: u64) -> RenderedRecords {
        let cache = (bytes > 0).then(|| {
            let items = (bytes / TYPICAL_ENTRY).max(1) as usize;
            let cache = quick_cache::sync::Cache::with_weighter(items, bytes, Weight);
            // Its tables start empty and grow as it fills: growing them was a tenth of a first
            // read's instructions, in whichever page it fell. Sized once instead (some 50 bytes
            // an entry, for 4 MiB about half a megabyte, most of it untouched until used).
            cache.reserve(items);
            cache
        });
        RenderedRecords { cache }
    }

    /// Whether it keeps nothing (its bound is 0).
    pub fn is_off(&self) -> bool {
        self.cache.is_none()
    }

    /// The JSON kept for the block `cid`, if any.
    pub fn get(&self, cid: &str) -> Option<RenderedJson> {
        self.cache.as_ref()?.get(cid)
    }

    /// The JSON of `block`, whose CID is `cid`, written now and kept for the next read.
    pub fn render(&self, cid: &str, block: &DagCborJson) -> Result<RenderedJson, serde_json::Error> {
        let json = RenderedJson::render(block)?;
        if let Some(cache) = &self.cache {
            cache.insert(cid.into(), json.clone());
        }
        Ok(json)
    }

    /// The bytes held now (keys and overhead counted).
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |cache| cache.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> DagCborJson {
        let value = serde_json::json!({ "$type": "app.bsky.feed.post", "text": text });
        let ipld = aurora_atproto::data::json_to_ipld(&value).expect("in the data model");
        DagCborJson::from_block(aurora_atproto::data::to_dag_cbor(&ipld).expect("encodes"))
    }

    #[test]
    fn a_rendered_record_is_kept_by_its_cid_and_served_as_written() {
        let records = RenderedRecords::new(1 << 20);
        assert!(records.get("bafyone").is_none());
        let json = records.render("bafyone", &block("one")).expect("renders");
        assert_eq!(json.as_str(), r#"{"text":"one","$type":"app.bsky.feed.post"}"#);
        assert_eq!(records.get("bafyone").map(|j| j.as_str().to_owned()), Some(json.as_str().to_owned()));
        assert!(records.get("bafytwo").is_none(), "only the CID it was kept under");
    }

    #[test]
    fn a_block_that_does_not_render_is_not_kept() {
        let records = RenderedRecords::new(1 << 20);
        let mut broken = block("one").as_bytes().to_vec();
        broken.push(0);
        assert!(records.render("bafybroken", &DagCborJson::from_block(broken)).is_err());
        assert!(records.get("bafybroken").is_none());
        assert_eq!(records.weight(), 0);
    }

    #[test]
    fn the_bound_holds_and_zero_keeps_nothing() {
        let bound = 16 * 1024;
        let records = RenderedRecords::new(bound);
        for n in 0..1_000 {
            records.render(&format!("bafy{n}"), &block(&format!("post {n}"))).expect("renders");
        }
        assert!(records.weight() <= bound, "{} > {bound}", records.weight());
        assert!(records.weight() > bound / 2, "it fills up to its bound: {}", records.weight());
        let none = RenderedRecords::new(0);
        let json = none.render("bafyone", &block("one")).expect("still renders");
        assert_eq!(json.as_str(), r#"{"text":"one","$type":"app.bsky.feed.post"}"#);
        assert!(none.get("bafyone").is_none());
    }
}
