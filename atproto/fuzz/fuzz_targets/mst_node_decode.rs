//! Feeds arbitrary bytes to the strict MST node decoder. It must never panic, and whatever it
//! accepts must be a node the tree can use: valid keys, strictly ascending, all of one height.

#![no_main]

use aurora_atproto::mst::decode_node;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(node) = decode_node(bytes) else {
        return;
    };
    assert!(node.entries.windows(2).all(|pair| pair[0].key < pair[1].key), "accepted keys out of order");
    let heights: Vec<u8> = node.entries.iter().map(|entry| entry.key.height()).collect();
    assert!(heights.windows(2).all(|pair| pair[0] == pair[1]), "accepted keys of different heights");
    // Decoding is a function of the bytes.
    assert_eq!(decode_node(bytes).ok(), Some(node));
});
