//! The CAR reader and writer: round trips, and every kind of bad input ending in a typed error.

#![allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure

use aurora_atproto::blockstore::BlockMap;
use aurora_atproto::car::{car_bytes, read_car, CarError, CarLimits, CarReader};
use aurora_atproto::cids;
use bytes::Bytes;
use cid::Cid;
use serde::Serialize;

fn block(text: &str) -> (Cid, Bytes) {
    let bytes = Bytes::copy_from_slice(text.as_bytes());
    (cids::for_raw(&bytes), bytes)
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[derive(Serialize)]
struct Header {
    roots: Vec<Cid>,
    version: u64,
}

fn header(roots: Vec<Cid>, version: u64) -> Vec<u8> {
    let bytes = serde_ipld_dagcbor::to_vec(&Header { roots, version }).unwrap();
    let mut out = Vec::new();
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(&bytes);
    out
}

fn section(cid: &Cid, bytes: &[u8], out: &mut Vec<u8>) {
    let cid = cid.to_bytes();
    varint((cid.len() + bytes.len()) as u64, out);
    out.extend_from_slice(&cid);
    out.extend_from_slice(bytes);
}

async fn read(bytes: &[u8], limits: CarLimits) -> Result<(Cid, BlockMap), CarError> {
    read_car(bytes, limits).await
}

#[tokio::test]
async fn blocks_written_are_read_back_with_their_root() {
    let blocks: BlockMap = ["one", "two", "three"].into_iter().map(block).collect();
    let root = *blocks.keys().next().unwrap();
    let car = car_bytes(root, blocks.clone()).await.unwrap();
    let (read_root, read_blocks) = read(&car, CarLimits::default()).await.unwrap();
    assert_eq!(read_root, root);
    assert_eq!(read_blocks, blocks);

    // A CAR with a root and no blocks is still a CAR.
    let empty = car_bytes(root, BlockMap::new()).await.unwrap();
    assert_eq!(read(&empty, CarLimits::default()).await.unwrap(), (root, BlockMap::new()));
}

#[tokio::test]
async fn the_reader_streams_block_by_block() {
    let blocks: BlockMap = ["a", "b"].into_iter().map(block).collect();
    let root = *blocks.keys().next().unwrap();
    let car = car_bytes(root, blocks.clone()).await.unwrap();
    let mut reader = CarReader::new(&car[..], CarLimits::default()).await.unwrap();
    assert_eq!(reader.roots(), &[root]);
    let mut count = 0;
    while let Some((cid, bytes)) = reader.next_block().await.unwrap() {
        assert_eq!(blocks.get(&cid), Some(&bytes));
        count += 1;
    }
    assert_eq!(count, 2);
}

#[tokio::test]
async fn a_block_that_does_not_match_its_cid_is_refused() {
    let (cid, _) = block("expected");
    let mut car = header(vec![cid], 1);
    section(&cid, b"something else", &mut car);
    assert!(matches!(read(&car, CarLimits::default()).await, Err(CarError::HashMismatch(c)) if c == cid));
}

#[tokio::test]
async fn a_cid_with_another_hash_is_refused() {
    let identity = Cid::new_v1(cids::RAW, multihash::Multihash::<64>::wrap(0x00, b"hi").unwrap());
    let mut car = header(vec![identity], 1);
    section(&identity, b"hi", &mut car);
    assert!(matches!(read(&car, CarLimits::default()).await, Err(CarError::UnsupportedHash(_))));
}

#[tokio::test]
async fn a_header_without_roots_is_refused() {
    let car = header(Vec::new(), 1);
    assert!(matches!(read(&car, CarLimits::default()).await, Err(CarError::MissingRoot)));
}

#[tokio::test]
async fn malformed_framing_is_refused_with_a_typed_error() {
    let (cid, bytes) = block("x");
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("empty input", Vec::new()));
    cases.push(("header version 2", header(vec![cid], 2)));
    cases.push(("header not CBOR", vec![3, 0xff, 0xff, 0xff]));
    let mut overlong = header(vec![cid], 1);
    overlong.extend_from_slice(&[0xff; 12]);
    cases.push(("varint of more than 64 bits", overlong));
    let mut truncated = header(vec![cid], 1);
    varint(100, &mut truncated);
    truncated.extend_from_slice(&cid.to_bytes());
    cases.push(("section shorter than its length", truncated));
    let mut bad_cid = header(vec![cid], 1);
    varint(4, &mut bad_cid);
    bad_cid.extend_from_slice(&[0x01, 0x71, 0x99, 0x99]);
    cases.push(("section without a CID", bad_cid));
    let mut good_then_truncated_header = Vec::new();
    varint(50, &mut good_then_truncated_header);
    good_then_truncated_header.extend_from_slice(&bytes);
    cases.push(("header shorter than its length", good_then_truncated_header));
    for (name, car) in cases {
        let error = read(&car, CarLimits::default()).await.err();
        assert!(matches!(error, Some(CarError::Malformed(_) | CarError::Io(_))), "{name}: {error:?}");
    }
}

#[tokio::test]
async fn limits_on_block_size_total_size_and_block_count_hold() {
    let blocks: BlockMap = ["0123456789", "abcdefghijklmnopqrstuvwxyz"].into_iter().map(block).collect();
    let root = *blocks.keys().next().unwrap();
    let car = car_bytes(root, blocks).await.unwrap();

    let small_blocks = CarLimits { max_block_size: 16, ..CarLimits::default() };
    assert!(matches!(read(&car, small_blocks).await, Err(CarError::BlockTooLarge { size: 26, max: 16 })));
    let small_file = CarLimits { max_total_size: car.len() as u64 - 1, ..CarLimits::default() };
    assert!(matches!(read(&car, small_file).await, Err(CarError::TooLarge { .. })));
    let exact = CarLimits { max_total_size: car.len() as u64, ..CarLimits::default() };
    assert!(read(&car, exact).await.is_ok());
    let one_block = CarLimits { max_blocks: 1, ..CarLimits::default() };
    assert!(matches!(read(&car, one_block).await, Err(CarError::TooManyBlocks { max: 1 })));

    // A section claiming 5 MiB is refused before anything is allocated for it.
    let mut huge = header(vec![root], 1);
    varint(5 * 1024 * 1024, &mut huge);
    assert!(matches!(read(&huge, CarLimits::default()).await, Err(CarError::BlockTooLarge { .. })));
}

#[tokio::test]
async fn corrupting_any_byte_gives_an_error_or_a_verified_car_never_a_panic() {
    let blocks: BlockMap = ["alpha", "beta", "gamma"].into_iter().map(block).collect();
    let root = *blocks.keys().next().unwrap();
    let car = car_bytes(root, blocks).await.unwrap();
    for position in 0..car.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut corrupt = car.clone();
            corrupt[position] ^= flip;
            if let Ok((_, read_blocks)) = read(&corrupt, CarLimits::default()).await {
                for (cid, bytes) in read_blocks {
                    assert_eq!(cid.hash().digest(), cids::for_raw(&bytes).hash().digest());
                }
            }
        }
        let truncated = &car[..position];
        let _ = read(truncated, CarLimits::default()).await;
    }
}
