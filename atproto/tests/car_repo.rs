//! Whole-repository export and import: what one writes the other verifies, and tampering of
//! each kind is caught.

#![allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure

use std::collections::BTreeMap;

use aurora_atproto::blockstore::{BlockMap, BlockStore, MemoryBlockStore};
use aurora_atproto::car::{car_bytes, export_repo, import_repo, read_car, verify_repo, CarError, CarLimits};
use aurora_atproto::cids;
use aurora_atproto::commit::{Commit, CommitError, UnsignedCommit};
use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::mst::{height, MstKey};
use aurora_atproto::repo::{RecordWrite, Repo};
use aurora_atproto::syntax::{Did, Tid};
use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;

fn did() -> Did {
    "did:plc:abcdefghijklmnopqrstuvwx".parse().unwrap()
}

fn record(n: usize) -> Bytes {
    let value = Ipld::Map(BTreeMap::from([("n".to_owned(), Ipld::Integer(n as i128))]));
    Bytes::from(serde_ipld_dagcbor::to_vec(&value).unwrap())
}

/// A stored repository of `count` posts; its commit CID and the key that signed it.
async fn sample_repo(store: &MemoryBlockStore, count: usize) -> (Cid, Keypair) {
    let key = Keypair::generate(KeyType::K256);
    let writes = (0..count)
        .map(|n| RecordWrite::Create {
            collection: "app.bsky.feed.post".parse().unwrap(),
            rkey: format!("post{n:05}").parse().unwrap(),
            record: record(n),
        })
        .collect();
    let (_, data) = Repo::create(store, did(), &key, writes).await.unwrap();
    store.put_many(data.new_blocks).await.unwrap();
    (data.cid, key)
}

#[tokio::test]
async fn an_exported_repository_imports_with_every_record() {
    let store = MemoryBlockStore::new();
    let (commit, key) = sample_repo(&store, 300).await;
    let (car, stats) = export_repo(&store, commit, Vec::new()).await.unwrap();
    assert_eq!(stats.records, 300);
    assert_eq!(stats.bytes, car.len() as u64);
    assert_eq!(stats.blocks as usize, store.len(), "every stored block, each once");

    let verified = import_repo(&car[..], CarLimits::default(), &did(), &key.public_key()).await.unwrap();
    assert_eq!(verified.commit_cid, commit);
    assert_eq!(verified.records.len(), 300);
    for (n, (key, cid, bytes)) in verified.records.iter().enumerate() {
        assert_eq!(key.as_str(), format!("app.bsky.feed.post/post{n:05}"));
        assert_eq!(*bytes, record(n));
        assert_eq!(*cid, cids::for_dag_cbor(bytes));
    }
    assert_eq!(verified.blocks, store.to_block_map());
}

#[tokio::test]
async fn the_export_starts_with_the_commit_and_gives_records_in_key_order() {
    let store = MemoryBlockStore::new();
    let (commit, _) = sample_repo(&store, 100).await;
    let (car, _) = export_repo(&store, commit, Vec::new()).await.unwrap();
    let mut reader = aurora_atproto::car::CarReader::new(&car[..], CarLimits::default()).await.unwrap();
    let (first, _) = reader.next_block().await.unwrap().unwrap();
    assert_eq!(first, commit);
    let records: Vec<Cid> = (0..100).map(|n| cids::for_dag_cbor(&record(n))).collect();
    let mut seen = Vec::new();
    while let Some((cid, _)) = reader.next_block().await.unwrap() {
        if records.contains(&cid) {
            seen.push(cid);
        }
    }
    assert_eq!(seen, records);
}

#[tokio::test]
async fn an_export_streams_into_any_writer() {
    let store = MemoryBlockStore::new();
    let (commit, _) = sample_repo(&store, 50).await;
    let (_, stats) = export_repo(&store, commit, tokio::io::sink()).await.unwrap();
    assert_eq!(stats.records, 50);
}

#[tokio::test]
async fn an_import_refuses_the_wrong_key_or_account() {
    let store = MemoryBlockStore::new();
    let (commit, key) = sample_repo(&store, 10).await;
    let (car, _) = export_repo(&store, commit, Vec::new()).await.unwrap();
    let other = Keypair::generate(KeyType::K256);
    let error = import_repo(&car[..], CarLimits::default(), &did(), &other.public_key()).await.err().unwrap();
    assert!(matches!(error, CarError::Commit(CommitError::BadSignature(_))), "{error}");
    let someone_else: Did = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz".parse().unwrap();
    let error = import_repo(&car[..], CarLimits::default(), &someone_else, &key.public_key()).await.err().unwrap();
    assert!(matches!(error, CarError::Commit(CommitError::WrongDid { .. })), "{error}");
}

#[tokio::test]
async fn an_import_refuses_missing_blocks_and_ignores_extra_ones() {
    let store = MemoryBlockStore::new();
    let (commit, key) = sample_repo(&store, 40).await;
    let (car, _) = export_repo(&store, commit, Vec::new()).await.unwrap();
    let (root, blocks) = read_car(&car[..], CarLimits::default()).await.unwrap();
    let record_cid = cids::for_dag_cbor(&record(7));

    let mut without_record = blocks.clone();
    without_record.remove(&record_cid);
    let error = verify_repo(root, without_record, &did(), &key.public_key()).await.err().unwrap();
    assert!(matches!(error, CarError::MissingRecord { cid, .. } if cid == record_cid), "{error}");

    let commit_block = Commit::from_bytes(&blocks[&root]).unwrap();
    let mut without_root_node = blocks.clone();
    without_root_node.remove(&commit_block.data);
    let error = verify_repo(root, without_root_node, &did(), &key.public_key()).await.err().unwrap();
    assert!(matches!(error, CarError::Mst(_)), "{error}");

    let mut without_commit = blocks.clone();
    without_commit.remove(&root);
    let error = verify_repo(root, without_commit, &did(), &key.public_key()).await.err().unwrap();
    assert!(matches!(error, CarError::RootBlockMissing(_)), "{error}");

    let mut with_extra = blocks.clone();
    let extra = Bytes::from_static(b"unrelated");
    with_extra.insert(cids::for_raw(&extra), extra);
    let verified = verify_repo(root, with_extra, &did(), &key.public_key()).await.unwrap();
    assert_eq!(verified.blocks, blocks, "the unrelated block is left out");
}

/// Encodes an MST node the generic way, independently of the crate's own encoder.
fn node(left: Option<Cid>, entries: &[(&str, Cid, Option<Cid>)]) -> (Cid, Bytes) {
    let link = |cid: Option<Cid>| cid.map_or(Ipld::Null, Ipld::Link);
    let entries = entries
        .iter()
        .map(|(key, value, right)| {
            Ipld::Map(BTreeMap::from([
                ("k".to_owned(), Ipld::Bytes(key.as_bytes().to_vec())),
                ("p".to_owned(), Ipld::Integer(0)),
                ("t".to_owned(), link(*right)),
                ("v".to_owned(), Ipld::Link(*value)),
            ]))
        })
        .collect();
    let value = Ipld::Map(BTreeMap::from([("e".to_owned(), Ipld::List(entries)), ("l".to_owned(), link(left))]));
    let bytes = serde_ipld_dagcbor::to_vec(&value).unwrap();
    (cids::for_dag_cbor(&bytes), Bytes::from(bytes))
}

#[tokio::test]
async fn a_tree_of_valid_nodes_in_the_wrong_order_is_refused() {
    // A layer-1 key with a layer-0 key that sorts after it hung on its left: each node is fine,
    // the tree is not a search tree.
    let keys: Vec<String> = (0..).map(|n| format!("com.example.record/k{n}")).take(500).collect();
    let high = keys.iter().find(|key| height(key.as_bytes()) == 1).unwrap();
    let low = keys.iter().find(|key| height(key.as_bytes()) == 0 && *key > high).unwrap();
    let value = cids::for_dag_cbor(&record(0));
    let (low_cid, low_bytes) = node(None, &[(low, value, None)]);
    let (root_cid, root_bytes) = node(Some(low_cid), &[(high, value, None)]);

    let key = Keypair::generate(KeyType::P256);
    let commit = UnsignedCommit::new(did(), root_cid, Tid::now()).sign(&key);
    let (commit_cid, commit_bytes) = commit.to_block();
    let blocks: BlockMap =
        [(commit_cid, commit_bytes), (low_cid, low_bytes), (root_cid, root_bytes), (value, record(0))]
            .into_iter()
            .collect();
    let car = car_bytes(commit_cid, blocks).await.unwrap();
    let error = import_repo(&car[..], CarLimits::default(), &did(), &key.public_key()).await.err().unwrap();
    assert!(matches!(error, CarError::KeysOutOfOrder(ref k) if *k == high.parse::<MstKey>().unwrap()), "{error}");
}

/// Verifies a tree whose root node is `root` among `nodes`, each record value being `record(0)`.
async fn verify_tree(root: Cid, nodes: Vec<(Cid, Bytes)>) -> Result<(), CarError> {
    let key = Keypair::generate(KeyType::P256);
    let commit = UnsignedCommit::new(did(), root, Tid::now()).sign(&key);
    let (commit_cid, commit_bytes) = commit.to_block();
    let mut blocks: BlockMap = nodes.into_iter().collect();
    blocks.insert(commit_cid, commit_bytes);
    blocks.insert(cids::for_dag_cbor(&record(0)), record(0));
    verify_repo(commit_cid, blocks, &did(), &key.public_key()).await.map(|_| ())
}

#[tokio::test]
async fn nodes_out_of_their_layers_are_refused() {
    let keys: Vec<String> = (0..).map(|n| format!("com.example.record/k{n}")).take(2_000).collect();
    let at = |layer: u8| keys.iter().filter(move |key| height(key.as_bytes()) == layer);
    let (low, high) = (at(0).next().unwrap(), at(1).next().unwrap());
    let higher = at(2).find(|key| *key > low && *key > high).unwrap();
    let value = cids::for_dag_cbor(&record(0));
    let malformed = |result: Result<(), CarError>, reason: &str| {
        let error = result.err().unwrap();
        assert!(matches!(error, CarError::Mst(aurora_atproto::mst::MstError::MalformedTree { .. })), "{error}");
        assert!(error.to_string().contains(reason), "{error}");
    };

    // A layer-0 node hung straight under a layer-2 key skips layer 1.
    let leaf = node(None, &[(low, value, None)]);
    let skipping = node(Some(leaf.0), &[(higher, value, None)]);
    malformed(verify_tree(skipping.0, vec![leaf.clone(), skipping]).await, "wrong layer");
    // Through an empty layer-1 node it is a valid tree.
    let bridge = node(Some(leaf.0), &[]);
    let bridged = node(Some(bridge.0), &[(higher, value, None)]);
    verify_tree(bridged.0, vec![leaf.clone(), bridge, bridged]).await.unwrap();
    // An empty node with nothing under it has no place inside a tree.
    let hollow = node(None, &[]);
    let over_hollow = node(Some(hollow.0), &[(high, value, None)]);
    malformed(verify_tree(over_hollow.0, vec![hollow, over_hollow]).await, "empty node inside");
    // Nor may the root be an empty node over a subtree.
    let empty_root = node(Some(leaf.0), &[]);
    malformed(verify_tree(empty_root.0, vec![leaf.clone(), empty_root]).await, "root is an empty node");
    // Nothing hangs below layer 0.
    let below = node(Some(leaf.0), &[(low, value, None)]);
    malformed(verify_tree(below.0, vec![leaf, below]).await, "below the lowest layer");
}

#[tokio::test]
async fn corrupting_an_export_anywhere_never_panics() {
    let store = MemoryBlockStore::new();
    let (commit, key) = sample_repo(&store, 8).await;
    let (car, _) = export_repo(&store, commit, Vec::new()).await.unwrap();
    let public = key.public_key();
    let mut accepted = 0;
    for position in (0..car.len()).step_by(3) {
        let mut corrupt = car.clone();
        corrupt[position] ^= 0x5a;
        if import_repo(&corrupt[..], CarLimits::default(), &did(), &public).await.is_ok() {
            accepted += 1;
        }
    }
    // Every byte is framing, a CID, or content under a hash or the signature, so no corruption
    // gets through.
    assert_eq!(accepted, 0);
}

#[tokio::test]
async fn a_store_missing_a_record_fails_the_export() {
    let store = MemoryBlockStore::new();
    let (commit, _) = sample_repo(&store, 5).await;
    store.remove(&cids::for_dag_cbor(&record(2)));
    let error = export_repo(&store, commit, Vec::new()).await.err().unwrap();
    assert!(matches!(error, CarError::MissingRecord { .. }), "{error}");
    assert!(store.has(&commit).await.unwrap());
}
