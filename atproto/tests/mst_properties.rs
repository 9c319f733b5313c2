//! Properties of the MST over random keys and operation sequences.

#![allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure

use std::collections::BTreeMap;

use aurora_atproto::blockstore::{BlockStore, MemoryBlockStore};
use aurora_atproto::cids;
use aurora_atproto::mst::{diff, invert_ops, Mst, MstKey, RecordOp};
use cid::Cid;
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

fn record(n: u8) -> Cid {
    cids::for_dag_cbor(&[n])
}

/// Keys from a small space, so that sequences revisit keys and trees get several layers.
fn key_strategy() -> impl Strategy<Value = MstKey> {
    (prop::sample::select(vec!["app.bsky.feed.post", "app.bsky.feed.like", "com.example.record"]), "[a-z2-7]{1,5}")
        .prop_map(|(collection, rkey)| MstKey::new(collection, &rkey).unwrap())
}

fn map_strategy(max: usize) -> impl Strategy<Value = BTreeMap<MstKey, u8>> {
    prop::collection::btree_map(key_strategy(), any::<u8>(), 0..max)
}

async fn build(store: &MemoryBlockStore, entries: impl IntoIterator<Item = (MstKey, u8)>) -> Mst {
    let mut mst = Mst::new();
    for (key, value) in entries {
        mst.insert(store, &key, record(value)).await.unwrap();
    }
    mst
}

#[derive(Debug, Clone)]
enum Edit {
    Put(MstKey, u8),
    Remove(MstKey),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (key_strategy(), any::<u8>()).prop_map(|(key, value)| Edit::Put(key, value)),
        key_strategy().prop_map(Edit::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_root_depends_only_on_the_final_contents(edits in prop::collection::vec(edit_strategy(), 0..300)) {
        runtime().block_on(async {
            let store = MemoryBlockStore::new();
            let mut mst = Mst::new();
            let mut model = BTreeMap::new();
            for edit in &edits {
                match edit {
                    Edit::Put(key, value) => {
                        mst.insert(&store, key, record(*value)).await.unwrap();
                        model.insert(key.clone(), *value);
                    }
                    Edit::Remove(key) => {
                        let removed = mst.delete(&store, key).await.unwrap();
                        assert_eq!(removed, model.remove(key).map(record));
                    }
                }
            }
            // Built fresh in descending order: a completely different history.
            let fresh = build(&store, model.clone().into_iter().rev()).await;
            assert_eq!(mst.root_cid(), fresh.root_cid());
        });
    }

    #[test]
    fn applying_a_diff_turns_one_tree_into_the_other(a in map_strategy(120), b in map_strategy(120)) {
        runtime().block_on(async {
            let store = MemoryBlockStore::new();
            let old = build(&store, a.clone()).await;
            let new = build(&store, b.clone()).await;
            let diff = diff(&store, &old, &new).await.unwrap();

            // Write the old tree, load it cold, and apply the diff's operations.
            store.put_many(old.blocks(&store).await.unwrap()).await.unwrap();
            let mut patched = Mst::load(old.root_cid());
            for op in diff.ops() {
                match op {
                    RecordOp::Create { key, cid } | RecordOp::Update { key, cid, .. } => {
                        patched.insert(&store, &key, cid).await.unwrap();
                    }
                    RecordOp::Delete { key, .. } => {
                        patched.delete(&store, &key).await.unwrap();
                    }
                }
            }
            assert_eq!(patched.root_cid(), new.root_cid());

            // The new blocks complete the stored old tree into the new one.
            store.put_many(diff.new_blocks.clone()).await.unwrap();
            let reloaded = Mst::load(new.root_cid());
            let listed = reloaded.list(&store, aurora_atproto::mst::ListOptions::all()).await.unwrap();
            assert_eq!(listed, b.iter().map(|(k, v)| (k.clone(), record(*v))).collect::<Vec<_>>());
        });
    }

    #[test]
    fn a_commit_inverts_from_its_slice_alone(
        start in map_strategy(150),
        edits in prop::collection::btree_map(key_strategy(), prop::option::of(any::<u8>()), 1..12),
        reverse in any::<bool>(),
    ) {
        runtime().block_on(async {
            let store = MemoryBlockStore::new();
            let before = build(&store, start.clone()).await;
            store.put_many(before.blocks(&store).await.unwrap()).await.unwrap();
            let mut after = Mst::load(before.root_cid());
            let mut ops = Vec::new();
            for (key, edit) in &edits {
                let prev = start.get(key).map(|value| record(*value));
                match (edit, prev) {
                    (Some(value), None) => ops.push(RecordOp::Create { key: key.clone(), cid: record(*value) }),
                    (Some(value), Some(prev)) if record(*value) != prev => {
                        ops.push(RecordOp::Update { key: key.clone(), cid: record(*value), prev })
                    }
                    (None, Some(prev)) => ops.push(RecordOp::Delete { key: key.clone(), prev }),
                    _ => continue,
                }
                match edit {
                    Some(value) => { after.insert(&store, key, record(*value)).await.unwrap(); }
                    None => { after.delete(&store, key).await.unwrap(); }
                }
            }

            // The slice: the commit's new nodes plus the covering proof of every operation.
            let mut slice = diff(&store, &before, &after).await.unwrap().new_blocks;
            for op in &ops {
                slice.extend(after.covering_proof(&store, op.key()).await.unwrap());
            }
            if reverse {
                ops.reverse();
            }
            assert_eq!(invert_ops(after.root_cid(), &ops, &slice).unwrap(), before.root_cid());
        });
    }
}
