//! The MST against the public interop vectors, and the published roots of known small trees.

#![allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure

use std::collections::BTreeSet;

use aurora_atproto::blockstore::{BlockMap, MemoryBlockStore};
use aurora_atproto::interop;
use aurora_atproto::mst::{common_prefix_len, height, invert_ops, Mst, MstKey, RecordOp};
use cid::Cid;
use serde::Deserialize;

fn read_json<T: for<'de> Deserialize<'de>>(path: &str) -> Option<T> {
    let dir = interop::dir()?;
    let text = std::fs::read_to_string(dir.join(path)).unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

fn cid(text: &str) -> Cid {
    text.parse().unwrap()
}

fn key(text: &str) -> MstKey {
    text.parse().unwrap()
}

#[derive(Deserialize)]
struct KeyHeight {
    key: String,
    height: u8,
}

#[test]
fn key_heights_match_the_vectors() {
    let Some(cases) = read_json::<Vec<KeyHeight>>("mst/key_heights.json") else {
        return;
    };
    for case in &cases {
        assert_eq!(height(case.key.as_bytes()), case.height, "{:?}", case.key);
    }
    println!("mst/key_heights.json: {} cases", cases.len());
}

#[derive(Deserialize)]
struct CommonPrefix {
    left: String,
    right: String,
    len: usize,
}

#[test]
fn common_prefix_lengths_match_the_vectors() {
    let Some(cases) = read_json::<Vec<CommonPrefix>>("mst/common_prefix.json") else {
        return;
    };
    for case in &cases {
        assert_eq!(common_prefix_len(case.left.as_bytes(), case.right.as_bytes()), case.len, "{:?}", case.left);
    }
    println!("mst/common_prefix.json: {} cases", cases.len());
}

#[test]
fn example_keys_are_valid_and_named_for_their_heights() {
    let Some(dir) = interop::dir() else { return };
    let text = std::fs::read_to_string(dir.join("mst/example_keys.txt")).unwrap();
    let keys: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    for line in &keys {
        let key = key(line);
        // Each collection is a letter and the key's height, e.g. "A2/827942".
        let named: u8 = key.collection()[1..].parse().unwrap();
        assert_eq!(key.height(), named, "{line}");
    }
    println!("mst/example_keys.txt: {} keys", keys.len());
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofFixture {
    comment: String,
    leaf_value: String,
    keys: Vec<String>,
    adds: Vec<String>,
    dels: Vec<String>,
    root_before_commit: String,
    root_after_commit: String,
    blocks_in_proof: Vec<String>,
}

fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            all.push(tail);
        }
    }
    all
}

#[tokio::test]
async fn commit_proofs_match_the_vectors_and_invert_in_every_order() {
    let Some(fixtures) = read_json::<Vec<ProofFixture>>("firehose/commit-proof-fixtures.json") else {
        return;
    };
    for fixture in &fixtures {
        let name = &fixture.comment;
        let leaf = cid(&fixture.leaf_value);
        let store = MemoryBlockStore::new();
        let mut mst = Mst::new();
        for k in &fixture.keys {
            mst.insert(&store, &key(k), leaf).await.unwrap();
        }
        assert_eq!(mst.root_cid(), cid(&fixture.root_before_commit), "{name}: root before");
        for k in &fixture.adds {
            mst.insert(&store, &key(k), leaf).await.unwrap();
        }
        for k in &fixture.dels {
            assert_eq!(mst.delete(&store, &key(k)).await.unwrap(), Some(leaf), "{name}");
        }
        assert_eq!(mst.root_cid(), cid(&fixture.root_after_commit), "{name}: root after");

        let mut proof = BlockMap::new();
        for k in fixture.adds.iter().chain(&fixture.dels) {
            proof.extend(mst.covering_proof(&store, &key(k)).await.unwrap());
        }
        let expected: BTreeSet<Cid> = fixture.blocks_in_proof.iter().map(|c| cid(c)).collect();
        let ours: BTreeSet<Cid> = proof.keys().copied().collect();
        assert_eq!(ours, expected, "{name}: blocks in proof");

        // Undo the commit in every order, reading nothing but the vector's proof blocks.
        let all_blocks = mst.blocks(&store).await.unwrap();
        let only_proof: BlockMap = all_blocks.into_iter().filter(|(c, _)| expected.contains(c)).collect();
        assert_eq!(only_proof.len(), expected.len(), "{name}: every proof block is a node of the tree");
        let mut ops: Vec<RecordOp> = fixture.adds.iter().map(|k| RecordOp::Create { key: key(k), cid: leaf }).collect();
        ops.extend(fixture.dels.iter().map(|k| RecordOp::Delete { key: key(k), prev: leaf }));
        for order in permutations(&ops) {
            let before = invert_ops(mst.root_cid(), &order, &only_proof).unwrap();
            assert_eq!(before, cid(&fixture.root_before_commit), "{name}: inverted root");
        }
    }
    println!("firehose/commit-proof-fixtures.json: {} cases", fixtures.len());
}

/// Roots of small trees published alongside the reference implementation's interop tests; all
/// entries point at the same record CID.
#[tokio::test]
async fn known_small_trees_have_their_published_roots() {
    let leaf = cid("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454");
    let record = |rkey: &str| key(&format!("com.example.record/{rkey}"));
    let store = MemoryBlockStore::new();
    let cases: [(&[&str], &str); 4] = [
        (&[], "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"),
        (&["3jqfcqzm3fo2j"], "bafyreibj4lsc3aqnrvphp5xmrnfoorvru4wynt6lwidqbm2623a6tatzdu"),
        (&["3jqfcqzm3fx2j"], "bafyreih7wfei65pxzhauoibu3ls7jgmkju4bspy4t2ha2qdjnzqvoy33ai"),
        (
            &["3jqfcqzm3fp2j", "3jqfcqzm3fr2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm4fc2j"],
            "bafyreicmahysq4n6wfuxo522m6dpiy7z7qzym3dzs756t5n7nfdgccwq7m",
        ),
    ];
    for (rkeys, root) in cases {
        let mut mst = Mst::new();
        for rkey in rkeys {
            mst.insert(&store, &record(rkey), leaf).await.unwrap();
        }
        assert_eq!(mst.root_cid(), cid(root), "{rkeys:?}");
    }

    // Deleting the only layer-1 key trims the root back to layer 0.
    let mut mst = Mst::new();
    for rkey in ["3jqfcqzm3fn2j", "3jqfcqzm3fo2j", "3jqfcqzm3fp2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm3fu2j"] {
        mst.insert(&store, &record(rkey), leaf).await.unwrap();
    }
    assert_eq!(mst.root_cid(), cid("bafyreifnqrwbk6ffmyaz5qtujqrzf5qmxf7cbxvgzktl4e3gabuxbtatv4"));
    mst.delete(&store, &record("3jqfcqzm3fs2j")).await.unwrap();
    assert_eq!(mst.root_cid(), cid("bafyreie4kjuxbwkhzg2i5dljaswcroeih4dgiqq6pazcmunwt2byd725vi"));

    // A layer-2 key splits a layer-1 tree two layers down, and deleting it merges them back.
    let mut mst = Mst::new();
    let rkeys = [
        "3jqfcqzm3fo2j",
        "3jqfcqzm3fp2j",
        "3jqfcqzm3fr2j",
        "3jqfcqzm3fs2j",
        "3jqfcqzm3ft2j",
        "3jqfcqzm3fz2j",
        "3jqfcqzm4fc2j",
        "3jqfcqzm4fd2j",
        "3jqfcqzm4ff2j",
        "3jqfcqzm4fg2j",
        "3jqfcqzm4fh2j",
    ];
    for rkey in rkeys {
        mst.insert(&store, &record(rkey), leaf).await.unwrap();
    }
    let layer1 = cid("bafyreiettyludka6fpgp33stwxfuwhkzlur6chs4d2v4nkmq2j3ogpdjem");
    assert_eq!(mst.root_cid(), layer1);
    mst.insert(&store, &record("3jqfcqzm3fx2j"), leaf).await.unwrap();
    assert_eq!(mst.root_cid(), cid("bafyreid2x5eqs4w4qxvc5jiwda4cien3gw2q6cshofxwnvv7iucrmfohpm"));
    mst.delete(&store, &record("3jqfcqzm3fx2j")).await.unwrap();
    assert_eq!(mst.root_cid(), layer1);

    // A key two layers above a one-layer tree, then one more in between.
    let mut mst = Mst::new();
    for rkey in ["3jqfcqzm3ft2j", "3jqfcqzm3fz2j"] {
        mst.insert(&store, &record(rkey), leaf).await.unwrap();
    }
    let layer0 = cid("bafyreidfcktqnfmykz2ps3dbul35pepleq7kvv526g47xahuz3rqtptmky");
    let layer2 = cid("bafyreiavxaxdz7o7rbvr3zg2liox2yww46t7g6hkehx4i4h3lwudly7dhy");
    assert_eq!(mst.root_cid(), layer0);
    mst.insert(&store, &record("3jqfcqzm3fx2j"), leaf).await.unwrap();
    assert_eq!(mst.root_cid(), layer2);
    mst.delete(&store, &record("3jqfcqzm3fx2j")).await.unwrap();
    assert_eq!(mst.root_cid(), layer0);
    mst.insert(&store, &record("3jqfcqzm3fx2j"), leaf).await.unwrap();
    mst.insert(&store, &record("3jqfcqzm4fd2j"), leaf).await.unwrap();
    assert_eq!(mst.root_cid(), cid("bafyreig4jv3vuajbsybhyvb7gggvpwh2zszwfyttjrj6qwvcsp24h6popu"));
    mst.delete(&store, &record("3jqfcqzm4fd2j")).await.unwrap();
    assert_eq!(mst.root_cid(), layer2);
    println!("known small trees: 4 roots, 3 edge cases");
}
