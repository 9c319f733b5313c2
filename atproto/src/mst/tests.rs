//! Tree operations checked against a `BTreeMap` model, plus loading, listing, diffs and proofs.

#![allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use super::*;
use crate::blockstore::MemoryBlockStore;

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn key(text: &str) -> MstKey {
    text.parse().unwrap()
}

fn record(n: u64) -> Cid {
    cids::for_dag_cbor(&n.to_be_bytes())
}

fn random_keys(count: usize, seed: u64) -> Vec<MstKey> {
    let mut rng = Rng(seed);
    let collections = ["app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"];
    let mut keys: Vec<MstKey> = (0..count)
        .map(|_| {
            let n = rng.next();
            MstKey::new(collections[(n % 3) as usize], &format!("{:013x}", n >> 8)).unwrap()
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

async fn build(store: &MemoryBlockStore, entries: &[(MstKey, Cid)]) -> Mst {
    let mut mst = Mst::new();
    for (key, value) in entries {
        mst.insert(store, key, *value).await.unwrap();
    }
    mst
}

/// Writes every node of `mst` to `store` and returns the tree reloaded from its root alone.
async fn persist(store: &MemoryBlockStore, mst: &Mst) -> Mst {
    store.put_many(mst.blocks(store).await.unwrap()).await.unwrap();
    Mst::load(mst.root_cid())
}

fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = Rng(seed);
    for i in (1..items.len()).rev() {
        items.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
}

#[tokio::test]
async fn the_tree_agrees_with_a_sorted_map_through_inserts_updates_and_deletes() {
    let store = MemoryBlockStore::new();
    let keys = random_keys(600, 1);
    let mut model = BTreeMap::new();
    let mut mst = Mst::new();
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(mst.insert(&store, key, record(n as u64)).await.unwrap(), None);
        model.insert(key.clone(), record(n as u64));
    }
    for (n, key) in keys.iter().enumerate().step_by(3) {
        let previous = mst.insert(&store, key, record(10_000 + n as u64)).await.unwrap();
        assert_eq!(previous, model.insert(key.clone(), record(10_000 + n as u64)));
    }
    for key in keys.iter().skip(1).step_by(2) {
        assert_eq!(mst.delete(&store, key).await.unwrap(), model.remove(key));
    }
    assert_eq!(mst.delete(&store, &keys[1]).await.unwrap(), None, "deleting twice finds nothing");

    for key in &keys {
        assert_eq!(mst.get(&store, key).await.unwrap(), model.get(key).copied(), "{key}");
    }
    let listed = mst.list(&store, ListOptions::all()).await.unwrap();
    assert_eq!(listed, model.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>());

    // The same content built fresh, in another order, has the same root.
    let mut entries: Vec<_> = model.into_iter().collect();
    shuffle(&mut entries, 7);
    assert_eq!(build(&store, &entries).await.root_cid(), mst.root_cid());
}

#[tokio::test]
async fn deleting_every_key_gives_back_the_empty_tree() {
    let store = MemoryBlockStore::new();
    let keys = random_keys(200, 2);
    let entries: Vec<_> = keys.iter().map(|key| (key.clone(), record(1))).collect();
    let mut mst = build(&store, &entries).await;
    let mut order = keys.clone();
    shuffle(&mut order, 3);
    for key in &order {
        assert!(mst.delete(&store, key).await.unwrap().is_some());
    }
    assert_eq!(mst.root_cid(), Mst::new().root_cid());
}

#[tokio::test]
async fn a_loaded_tree_fetches_nodes_on_demand_and_edits_like_one_in_memory() {
    let store = MemoryBlockStore::new();
    let keys = random_keys(400, 4);
    let entries: Vec<_> = keys.iter().enumerate().map(|(n, key)| (key.clone(), record(n as u64))).collect();
    let mut in_memory = build(&store, &entries).await;
    let mut loaded = persist(&store, &in_memory).await;

    assert_eq!(loaded.get(&store, &keys[17]).await.unwrap(), Some(record(17)));
    let new_key = key("app.bsky.feed.post/zzzzzzzzzzzzz");
    for mst in [&mut in_memory, &mut loaded] {
        mst.insert(&store, &new_key, record(999)).await.unwrap();
        mst.delete(&store, &keys[3]).await.unwrap();
    }
    assert_eq!(loaded.root_cid(), in_memory.root_cid());
}

#[tokio::test]
async fn a_missing_node_is_reported_by_cid() {
    let store = MemoryBlockStore::new();
    let entries: Vec<_> = random_keys(100, 5).into_iter().map(|key| (key, record(1))).collect();
    let mst = build(&store, &entries).await;
    let root = mst.root_cid();
    let empty = MemoryBlockStore::new();
    let error = Mst::load(root).get(&empty, &entries[0].0).await.err().unwrap();
    assert!(matches!(error, MstError::MissingBlock(cid) if cid == root));
}

#[tokio::test]
async fn a_node_loaded_at_the_wrong_layer_is_rejected() {
    let store = MemoryBlockStore::new();
    // A root whose left link points at a layer-0 node although the root is at layer 2.
    let low = Node::new(None, vec![entry("com.example.record/3jqfcqzm3fo2j")], 0);
    let root = Node::new(Some(Link::Stub(low.cid())), vec![entry("com.example.record/3jqfcqzm3fx2j")], 2);
    for node in [&low, &root] {
        store.put(node.cid(), Bytes::from(node.encode())).await.unwrap();
    }
    let error = Mst::load(root.cid()).list(&store, ListOptions::all()).await.err().unwrap();
    assert!(matches!(error, MstError::MalformedTree { reason: "node at the wrong layer", .. }), "{error}");
}

#[tokio::test]
async fn a_root_that_is_only_a_pointer_down_is_rejected() {
    let store = MemoryBlockStore::new();
    let low = Node::new(None, vec![entry("com.example.record/3jqfcqzm3fo2j")], 0);
    let root = Node::new(Some(Link::Stub(low.cid())), Vec::new(), 1);
    for node in [&low, &root] {
        store.put(node.cid(), Bytes::from(node.encode())).await.unwrap();
    }
    let error = Mst::load(root.cid()).get(&store, &key("com.example.record/a")).await.err().unwrap();
    assert!(matches!(error, MstError::MalformedTree { .. }), "{error}");
}

fn entry(key: &str) -> node::Entry {
    node::Entry { key: key.parse().unwrap(), value: record(0), right: None }
}

#[tokio::test]
async fn listing_honours_ranges_prefixes_order_and_limits() {
    let store = MemoryBlockStore::new();
    let keys = random_keys(500, 6);
    let entries: Vec<_> = keys.iter().map(|key| (key.clone(), record(2))).collect();
    let mst = persist(&store, &build(&store, &entries).await).await;
    let strings: Vec<String> = keys.iter().map(|key| key.to_string()).collect();
    let listed = |options: ListOptions| {
        let mst = &mst;
        let store = &store;
        async move {
            mst.list(store, options).await.unwrap().into_iter().map(|(key, _)| key.to_string()).collect::<Vec<_>>()
        }
    };

    let likes: Vec<String> = strings.iter().filter(|key| key.starts_with("app.bsky.feed.like/")).cloned().collect();
    assert_eq!(listed(ListOptions::prefix("app.bsky.feed.like/")).await, likes);
    let mut reversed = likes.clone();
    reversed.reverse();
    assert_eq!(listed(ListOptions::prefix("app.bsky.feed.like/").reversed()).await, reversed);
    assert_eq!(listed(ListOptions::prefix("app.bsky.feed.like/").reversed().limit(5)).await, reversed[..5]);

    // Bounds that fall on keys, between keys, and beyond the ends, both ways.
    let (low, high) = (strings[100].clone(), strings[300].clone());
    let between = format!("{}0", strings[200]);
    let cases = [
        (Bound::Included(low.clone()), Bound::Excluded(high.clone())),
        (Bound::Excluded(low.clone()), Bound::Included(high.clone())),
        (Bound::Included(between.clone()), Bound::Unbounded),
        (Bound::Unbounded, Bound::Excluded(between.clone())),
        (Bound::Included("a".to_owned()), Bound::Included("zzz".to_owned())),
        (Bound::Included("zzz".to_owned()), Bound::Unbounded),
    ];
    for (start, end) in cases {
        let expected: Vec<String> = strings
            .iter()
            .filter(|key| RangeBounds::<String>::contains(&(start.clone(), end.clone()), *key))
            .cloned()
            .collect();
        let options = ListOptions::range(start.clone(), end.clone());
        assert_eq!(listed(options.clone()).await, expected, "{start:?}..{end:?}");
        let mut backwards = expected.clone();
        backwards.reverse();
        assert_eq!(listed(options.clone().reversed()).await, backwards, "reversed {start:?}..{end:?}");
        assert_eq!(listed(options.limit(3)).await, expected[..expected.len().min(3)]);
    }
}

#[tokio::test]
async fn a_diff_names_the_changed_entries_and_exactly_the_new_and_removed_nodes() {
    let store = MemoryBlockStore::new();
    let keys = random_keys(300, 8);
    let entries: Vec<_> = keys.iter().map(|key| (key.clone(), record(3))).collect();
    let old = persist(&store, &build(&store, &entries).await).await;
    let mut new = old.clone();
    let created = key("app.bsky.feed.post/aaaaaaaaaaaaa");
    new.insert(&store, &created, record(4)).await.unwrap();
    new.insert(&store, &keys[10], record(5)).await.unwrap();
    new.delete(&store, &keys[20]).await.unwrap();

    let diff = diff(&store, &old, &new).await.unwrap();
    assert_eq!(diff.created, BTreeMap::from([(created.clone(), record(4))]));
    assert_eq!(diff.updated, BTreeMap::from([(keys[10].clone(), (record(3), record(5)))]));
    assert_eq!(diff.deleted, BTreeMap::from([(keys[20].clone(), record(3))]));

    let old_nodes = old.blocks(&store).await.unwrap();
    let new_nodes = new.blocks(&store).await.unwrap();
    let added: BlockMap =
        new_nodes.iter().filter(|(cid, _)| !old_nodes.contains_key(cid)).map(|(c, b)| (*c, b.clone())).collect();
    let removed: Vec<Cid> = old_nodes.keys().filter(|cid| !new_nodes.contains_key(cid)).copied().collect();
    assert_eq!(diff.new_blocks, added);
    assert_eq!(diff.removed_blocks, removed);
    assert!(!diff.new_blocks.is_empty());

    // Only the new nodes had to be written for the new tree to load from the store.
    store.put_many(diff.new_blocks.clone()).await.unwrap();
    let reloaded = Mst::load(new.root_cid());
    assert_eq!(reloaded.list(&store, ListOptions::all()).await.unwrap().len(), keys.len());

    assert!(super::diff(&store, &new, &new).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_proof_alone_shows_a_key_present_or_absent() {
    let store = MemoryBlockStore::new();
    let keys = random_keys(300, 9);
    let entries: Vec<_> = keys.iter().map(|key| (key.clone(), record(6))).collect();
    let mst = persist(&store, &build(&store, &entries).await).await;
    let absent = key("app.bsky.feed.post/0000000000000");

    for probe in [&keys[0], &keys[150], &keys[299], &absent] {
        let proof = MemoryBlockStore::from_blocks(mst.proof(&store, probe).await.unwrap());
        let partial = Mst::load(mst.root_cid());
        let expected = if *probe == absent { None } else { Some(record(6)) };
        assert_eq!(partial.get(&proof, probe).await.unwrap(), expected, "{probe}");
        let covering = mst.covering_proof(&store, probe).await.unwrap();
        assert!(proof.to_block_map().keys().all(|cid| covering.contains_key(cid)));
    }
}

#[test]
fn inversion_rejects_two_operations_on_one_key() {
    let op = RecordOp::Create { key: key("a/b"), cid: record(1) };
    let error = invert_ops(Mst::new().root_cid(), &[op.clone(), op], &BlockMap::new()).err().unwrap();
    assert!(matches!(error, InvertError::DuplicateKey(_)));
}

#[tokio::test]
async fn inversion_rejects_an_operation_the_tree_does_not_reflect() {
    let store = MemoryBlockStore::new();
    let entries: Vec<_> = random_keys(50, 10).into_iter().map(|key| (key, record(7))).collect();
    let mst = build(&store, &entries).await;
    let blocks = mst.blocks(&store).await.unwrap();
    let wrong_cid = RecordOp::Create { key: entries[0].0.clone(), cid: record(8) };
    let still_there = RecordOp::Delete { key: entries[1].0.clone(), prev: record(7) };
    for op in [wrong_cid, still_there] {
        let error = invert_ops(mst.root_cid(), &[op], &blocks).err().unwrap();
        assert!(matches!(error, InvertError::OpMismatch { .. }), "{error}");
    }
}
