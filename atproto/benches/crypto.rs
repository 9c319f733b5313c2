//! Signing and verification throughput per curve, plus the DAG-CBOR round trip every signed
//! commit pays for: `cargo bench -p aurora-atproto --bench crypto`.

use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::data;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// A commit-sized message: what a PDS signs once per write.
const MESSAGE: &[u8] = &[0x5a; 200];

fn signing(c: &mut Criterion) {
    for (name, key_type) in [("k256", KeyType::K256), ("p256", KeyType::P256)] {
        let keypair = Keypair::generate(key_type);
        let public = keypair.public_key();
        let signature = keypair.sign(MESSAGE);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("sign", |b| b.iter(|| keypair.sign(black_box(MESSAGE))));
        group.bench_function("verify", |b| b.iter(|| public.verify(black_box(MESSAGE), black_box(&signature)).is_ok()));
        group.finish();
    }
}

fn dag_cbor(c: &mut Criterion) {
    let record = serde_json::json!({
        "$type": "app.bsky.feed.post",
        "text": "a post of ordinary length, with a link and a few facets in it",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "langs": ["en"],
        "embed": { "$type": "app.bsky.embed.images", "images": [{
            "alt": "",
            "image": { "$type": "blob", "ref": { "$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity" },
                       "mimeType": "image/jpeg", "size": 10000 }
        }]}
    });
    let Ok(ipld) = data::json_to_ipld(&record) else {
        return;
    };
    let Ok(bytes) = data::to_dag_cbor(&ipld) else {
        return;
    };
    let mut group = c.benchmark_group("dag-cbor");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| data::to_dag_cbor(black_box(&ipld)).is_ok()));
    group.bench_function("decode", |b| b.iter(|| data::from_dag_cbor(black_box(&bytes)).is_ok()));
    group.finish();
}

criterion_group!(benches, signing, dag_cbor);
criterion_main!(benches);
