//! Repository hot paths: building an MST, recomputing a root after one write, exporting a
//! repository as a CAR. `cargo bench -p aurora-atproto --bench repo`.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::collections::BTreeMap;
use std::time::Duration;

use aurora_atproto::blockstore::{BlockStore, MemoryBlockStore};
use aurora_atproto::car::export_repo;
use aurora_atproto::cids;
use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::mst::{Mst, MstKey};
use aurora_atproto::repo::{RecordWrite, Repo};
use bytes::Bytes;
use cid::Cid;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ipld_core::ipld::Ipld;

/// Deterministic keys (splitmix64), spread over three collections like a real account's.
fn random_keys(count: usize) -> Vec<MstKey> {
    let mut state = 0x5eed_u64;
    let collections = ["app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"];
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            MstKey::new(collections[(z % 3) as usize], &format!("{:013x}", z >> 4)).unwrap()
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

async fn build(store: &MemoryBlockStore, keys: &[MstKey], value: Cid) -> Mst {
    let mut mst = Mst::new();
    for key in keys {
        mst.insert(store, key, value).await.unwrap();
    }
    mst
}

fn mst(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryBlockStore::new();
    let keys = random_keys(100_000);
    let value = cids::for_dag_cbor(&[0xa0]);

    let mut group = c.benchmark_group("mst");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("insert 100k random keys, then hash the root", |b| {
        b.iter(|| rt.block_on(async { black_box(build(&store, &keys, value).await.root_cid()) }))
    });

    let tree = rt.block_on(build(&store, &keys, value));
    tree.root_cid();
    let extra = random_keys(100_001).pop().unwrap();
    group.throughput(Throughput::Elements(1));
    group.sample_size(100).measurement_time(Duration::from_secs(5));
    group.bench_function("insert 1 key into a 100k tree and recompute the root", |b| {
        b.iter_batched(
            || tree.clone(),
            |mut mst| {
                rt.block_on(mst.insert(&store, &extra, value)).unwrap();
                black_box(mst.root_cid())
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A post-sized record for `key`: a type, ~150 characters of text, a timestamp.
fn post(n: usize, key: &MstKey) -> RecordWrite {
    let record = Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String(key.collection().to_owned())),
        ("text".to_owned(), Ipld::String(format!("{n:>6} {}", "lorem ipsum ".repeat(12)))),
        ("createdAt".to_owned(), Ipld::String("2024-01-01T00:00:00.000Z".to_owned())),
    ]));
    RecordWrite::Create {
        collection: key.collection().parse().unwrap(),
        rkey: key.rkey().parse().unwrap(),
        record: Bytes::from(serde_ipld_dagcbor::to_vec(&record).unwrap()),
    }
}

/// A stored repository of 10k post-sized records, its key and its commit.
fn stored_repo(rt: &tokio::runtime::Runtime, store: &MemoryBlockStore) -> (Keypair, Cid) {
    let key = Keypair::generate(KeyType::K256);
    let writes = random_keys(10_000).iter().enumerate().map(|(n, key)| post(n, key)).collect();
    let (_, data) =
        rt.block_on(Repo::create(store, "did:plc:abcdefghijklmnopqrstuvwx".parse().unwrap(), &key, writes)).unwrap();
    rt.block_on(store.put_many(data.new_blocks)).unwrap();
    (key, data.cid)
}

/// Building one commit as `createRecord` does: the tree edit, the diff, the signed commit and
/// the firehose's covering proofs (what the repository's writer does per commit).
fn commit(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryBlockStore::new();
    let (key, commit) = stored_repo(&rt, &store);
    let head = rt.block_on(Repo::load(&store, commit)).unwrap().into_head();
    // Past every stored key, as a new TID-keyed post is.
    let next = MstKey::new("app.bsky.feed.post", "zzzzzzzzzzzzz").unwrap();

    let mut group = c.benchmark_group("commit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("create 1 record in a 10k-record repo", |b| {
        b.iter_batched(
            || Repo::from_head(&store, head.clone()),
            |mut repo| black_box(rt.block_on(repo.apply_writes(vec![post(0, &next)], &key)).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn car_export(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryBlockStore::new();
    let (_, commit) = stored_repo(&rt, &store);
    let (car, _) = rt.block_on(export_repo(&store, commit, Vec::new())).unwrap();

    let mut group = c.benchmark_group("car");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(car.len() as u64));
    group.bench_function("export a 10k-record repo", |b| {
        b.iter(|| {
            rt.block_on(async { black_box(export_repo(&store, commit, Vec::with_capacity(car.len())).await.unwrap()) })
        })
    });
    group.finish();
}

criterion_group!(benches, mst, commit, car_export);
criterion_main!(benches);
