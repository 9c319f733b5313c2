//! Proofs must satisfy a verifier that looks a key up the simple way: from the root, take the
//! entry or descend into the subtree before the first larger key, down to a leaf — needing
//! every node it passes, whatever the key's height.

use aurora_atproto::blockstore::{BlockMap, MemoryBlockStore};
use aurora_atproto::mst::{decode_node, Mst, MstKey};
use cid::Cid;

/// Looks `key` up in the proof blocks alone: `Some(cid)` present, `None` proven absent.
fn walk(root: Cid, blocks: &BlockMap, key: &MstKey) -> Option<Cid> {
    let mut at = Some(root);
    while let Some(cid) = at {
        let node =
            decode_node(blocks.get(&cid).unwrap_or_else(|| panic!("proof lacks node {cid} on the path to {key}")))
                .expect("node");
        let index = node.entries.iter().position(|e| e.key.as_ref() >= key.as_ref()).unwrap_or(node.entries.len());
        if let Some(entry) = node.entries.get(index).filter(|e| e.key.as_ref() == key.as_ref()) {
            return Some(entry.value);
        }
        at = if index == 0 { node.left } else { node.entries[index - 1].right };
    }
    None
}

#[tokio::test]
async fn inclusion_and_absence_proofs_hold_every_node_a_plain_lookup_visits() {
    let store = MemoryBlockStore::new();
    let mut mst = Mst::new();
    let value = aurora_atproto::cids::for_dag_cbor(&[0xa0]);
    let keys: Vec<MstKey> = (0..400).map(|i| format!("app.bsky.feed.post/3k{i:011}").parse().expect("key")).collect();
    for key in &keys {
        mst.insert(&store, key, value).await.expect("insert");
    }
    let blocks = mst.blocks(&store).await.expect("blocks");
    let store = MemoryBlockStore::from_blocks(blocks);
    let root = mst.root_cid();
    for key in keys.iter().step_by(37) {
        let proof = mst.proof(&store, key).await.expect("proof");
        assert_eq!(walk(root, &proof, key), Some(value), "{key}");
    }
    let mut absent = 0;
    for i in 0..200 {
        let key: MstKey = format!("app.bsky.feed.post/3z{i:011}").parse().expect("key");
        let proof = mst.proof(&store, &key).await.expect("proof");
        assert_eq!(walk(root, &proof, &key), None, "{key}");
        absent += 1;
    }
    println!("{absent} absence proofs walked");
}
