//! Deterministic cost per request (`--counts`): instructions executed, counted by valgrind's
//! callgrind, where timings on a shared machine move by a fifth from run to run.
//!
//! The server runs under callgrind; before each phase its counters are zeroed and after it
//! they are dumped (`callgrind_control`), so a phase's count is every instruction of every
//! server thread while its requests were served one at a time, divided by their number. The
//! protocol core's operations run in this binary under callgrind twice, with two iteration
//! counts, and the difference is divided by the difference in iterations, so start-up and
//! set-up cancel out.
//!
//! `--counts-check FILE` fails when any count is more than its [`tolerance`] above the baseline
//! in FILE (`bench/counts.txt`); `--counts-write FILE` records a new baseline; `--counts-keep
//! DIR` keeps callgrind's dumps there, each phase a profile for `callgrind_annotate`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::Env;

/// How far above its baseline a count may go before the check fails. Between runs the core's
/// signing, verifying and encoding counts do not move; its commit's moves by up to three per
/// cent (the in-memory block store is a hash map with a random seed per run: 718,600–738,200
/// over one day's runs of one source), a read's by under one, a write's by up to five (the
/// group commit's batching depends on the clock), a page's first read by up to eight (its
/// records go into the record cache, each a new key: 1,445,000–1,552,000 over four runs of one
/// source), and the bare health check's, a few
/// tens of thousands of instructions beside which the server's timers weigh, by up to twelve:
/// each bound catches a regression, not noise.
pub fn tolerance(name: &str) -> f64 {
    match name {
        "core commit 1 record to a 1k-record repo" => 0.05,
        _ if name.starts_with("core ") => 0.02,
        "server health check" => 0.25,
        "server listRecords 100 first read" => 0.15,
        _ => 0.10,
    }
}

type Error = Box<dyn std::error::Error>;

/// Counts every operation and compares them with, or writes, the baseline.
pub async fn run(env: &Env, check: Option<&str>, write: Option<&str>, keep: Option<&str>) -> Result<(), Error> {
    let temporary = tempfile::tempdir()?;
    // Kept dumps are profiles: `callgrind_annotate --inclusive=yes DIR/callgrind.PID.N`.
    let out = keep.map_or(temporary.path(), Path::new);
    let mut counts = server_counts(env, out).await?;
    counts.extend(core_counts(out)?);
    println!("{:<40} {:>14}", "operation", "instructions");
    for (name, count) in &counts {
        println!("{name:<40} {count:>14}");
    }
    if let Some(path) = write {
        let mut text = String::from(
            "# Instructions per operation under valgrind's callgrind: `just counts` compares a run\n\
             # with these, `just counts-write` records a new baseline (see bench/src/counts.rs).\n",
        );
        for (name, count) in &counts {
            text.push_str(&format!("{name}\t{count}\n"));
        }
        std::fs::write(path, text)?;
        println!("baseline written to {path}");
    }
    if let Some(path) = check {
        compare(&counts, &std::fs::read_to_string(path)?)?;
    }
    Ok(())
}

/// Each count against its baseline; an error naming every count above it by more than the
/// tolerance, or missing from the run.
fn compare(counts: &BTreeMap<String, u64>, baseline: &str) -> Result<(), Error> {
    let mut failures = Vec::new();
    println!("{:<40} {:>14} {:>14} {:>8}", "operation", "baseline", "now", "ratio");
    for line in baseline.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (name, expected) = line.rsplit_once('\t').ok_or_else(|| format!("bad baseline line: {line}"))?;
        let expected: u64 = expected.trim().parse()?;
        let Some(&now) = counts.get(name) else {
            failures.push(format!("{name}: not measured"));
            continue;
        };
        let ratio = now as f64 / expected as f64;
        println!("{name:<40} {expected:>14} {now:>14} {ratio:>8.3}");
        if ratio > 1.0 + tolerance(name) {
            failures.push(format!(
                "{name}: {now} instructions, {:.1}% above the baseline's {expected}",
                100.0 * (ratio - 1.0)
            ));
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(format!("instruction counts regressed:\n  {}", failures.join("\n  ")).into()),
    }
}

fn callgrind(out: &Path) -> Vec<String> {
    vec!["valgrind".into(), "--tool=callgrind".into(), format!("--callgrind-out-file={}/callgrind.%p", out.display())]
}

/// The server's phases, each counted between a zero and a dump of its counters.
async fn server_counts(env: &Env, out: &Path) -> Result<BTreeMap<String, u64>, Error> {
    let env = Env { wrapper: callgrind(out), ..env.clone() };
    let (mut child, base, pid, _data) = crate::start(&env, None).await?;
    let client = reqwest::Client::new();
    let (token, did) = sign_up(&client, &base, "counted").await?;
    let post =
        |text: String| json!({ "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" });
    // Record keys of a fixed sequence, not of the clock: the tree's shape (and so the nodes a
    // commit rewrites) follows from the keys, and clock-made keys moved a createRecord's count
    // by up to 15% from run to run.
    let key = |i: u64| aurora_atproto::syntax::Tid::from_parts(1_714_564_800_000_000 + i * 1_000, 0).to_string();
    let writes: Vec<_> = (0..150)
        .map(|i| json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": key(i), "value": post(format!("set-up post {i}")) }))
        .collect();
    let filled = client
        .post(format!("{base}/xrpc/com.atproto.repo.applyWrites"))
        .bearer_auth(&token)
        .json(&json!({ "repo": did, "writes": writes }))
        .send()
        .await?;
    let filled: serde_json::Value = filled.json().await?;
    let rkeys: Vec<String> = filled["results"]
        .as_array()
        .ok_or_else(|| format!("applyWrites failed: {filled}"))?
        .iter()
        .filter_map(|r| Some(r["uri"].as_str()?.rsplit('/').next()?.to_owned()))
        .collect();

    // Pages read once each, as a crawler reads them: none of their records' JSON is kept yet.
    // A collection of 100 records each, written in batches of 200, in an account of their own
    // (the first one's repository stays the size the other phases were counted on).
    let (crawled_token, crawled_did) = sign_up(&client, &base, "crawled").await?;
    // Twice as many as are counted: the phase's warm-up reads the first ones.
    let first_reads: Vec<String> = (0..2 * FIRST_READS).map(|n| format!("com.example.first{n}")).collect();
    for pair in first_reads.chunks(2) {
        let writes: Vec<_> = pair
            .iter()
            .flat_map(|collection| {
                (0..100).map(move |i| {
                    let value = json!({ "$type": collection, "text": format!("first-read record {i}"), "createdAt": "2024-05-01T12:00:00.000Z" });
                    json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": collection, "value": value })
                })
            })
            .collect();
        let filled = client
            .post(format!("{base}/xrpc/com.atproto.repo.applyWrites"))
            .bearer_auth(&crawled_token)
            .json(&json!({ "repo": crawled_did, "writes": writes }))
            .send()
            .await?;
        expect_ok(filled).await?;
    }

    let get = |url: String| {
        let client = client.clone();
        async move { expect_ok(client.get(url).send().await?).await }
    };
    let mut counts = BTreeMap::new();
    let mut phase = Phase { pid, out, counts: &mut counts };
    phase.run("health check", 200, &mut |_| Box::pin(get(format!("{base}/xrpc/_health")))).await?;
    let record = |i: usize| {
        format!(
            "{base}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={}",
            rkeys[i % rkeys.len()]
        )
    };
    phase.run("getRecord", 200, &mut |i| Box::pin(get(record(i)))).await?;
    let page = format!("{base}/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100");
    phase.run("listRecords 100", 50, &mut |_| Box::pin(get(page.clone()))).await?;
    let first_read = |i: usize| {
        format!("{base}/xrpc/com.atproto.repo.listRecords?repo={crawled_did}&collection={}&limit=100", first_reads[i])
    };
    let mut read = 0;
    phase
        .run("listRecords 100 first read", FIRST_READS, &mut |_| {
            read += 1;
            Box::pin(get(first_read(read - 1)))
        })
        .await?;
    // The request as the official client (@atproto/api on Node's fetch, signed in) sends it,
    // headers and all: its Accept-Encoding has the page sent gzipped.
    let official = |url: String| {
        let request = client
            .get(url)
            .header("atproto-accept-labelers", "did:plc:ar7c4by46qjdydhdevvrndac;redact")
            .header("accept", "*/*")
            .header("accept-language", "*")
            .header("sec-fetch-mode", "cors")
            .header("user-agent", "node")
            .header("accept-encoding", "gzip, deflate")
            .bearer_auth(&token);
        Box::pin(async move { expect_ok(request.send().await?).await }) as Request
    };
    let encoded = did.replace(':', "%3A");
    let page =
        format!("{base}/xrpc/com.atproto.repo.listRecords?repo={encoded}&collection=app.bsky.feed.post&limit=100");
    phase.run("listRecords 100 gzip", 50, &mut |_| official(page.clone())).await?;
    let record = |i: usize| {
        format!(
            "{base}/xrpc/com.atproto.repo.getRecord?repo={encoded}&collection=app.bsky.feed.post&rkey={}",
            rkeys[i % rkeys.len()]
        )
    };
    phase.run("getRecord official client", 200, &mut |i| official(record(i))).await?;
    let mut created = 150;
    let mut create = |i: usize| {
        created += 1;
        let request = client.post(format!("{base}/xrpc/com.atproto.repo.createRecord")).bearer_auth(&token).json(
            &json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": key(created), "record": post(format!("counted post {i}")) }),
        );
        Box::pin(async move { expect_ok(request.send().await?).await }) as Request
    };
    phase.run("createRecord", 100, &mut create).await?;
    let _ = child.kill().await;
    Ok(counts)
}

type Request = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>>>>;

/// Pages counted on their first read (each a collection of its own).
const FIRST_READS: usize = 10;

/// Counts phases of requests to the server `pid` running under callgrind.
struct Phase<'a> {
    pid: u32,
    out: &'a Path,
    counts: &'a mut BTreeMap<String, u64>,
}

impl Phase<'_> {
    /// Sends `n` requests one at a time and records the server's instructions per request.
    async fn run(&mut self, name: &str, n: usize, request: &mut dyn FnMut(usize) -> Request) -> Result<(), Error> {
        // Warm: the first requests fill caches and prepare statements once per connection.
        for i in 0..n.min(10) {
            request(i).await?;
        }
        control(self.pid, &["--zero"])?;
        for i in 0..n {
            request(i).await?;
        }
        let dump = format!("phase-{}", name.replace(' ', "-"));
        control(self.pid, &["--dump", &dump])?;
        self.counts.insert(format!("server {name}"), dumped(self.out, &dump)? / n as u64);
        Ok(())
    }
}

/// A new account `name`.test: its access token and DID.
async fn sign_up(client: &reqwest::Client, base: &str, name: &str) -> Result<(String, String), Error> {
    let account: serde_json::Value = client
        .post(format!("{base}/xrpc/com.atproto.server.createAccount"))
        .json(&json!({ "handle": format!("{name}.test"), "email": format!("{name}@example.com"), "password": format!("{name}-password") }))
        .send()
        .await?
        .json()
        .await?;
    let token = account["accessJwt"].as_str().ok_or_else(|| format!("createAccount failed: {account}"))?;
    let did = account["did"].as_str().ok_or("no did")?;
    Ok((token.to_owned(), did.to_owned()))
}

async fn expect_ok(response: reqwest::Response) -> Result<(), Error> {
    let status = response.status();
    let body = response.bytes().await?;
    match status.is_success() {
        true => Ok(()),
        false => Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into()),
    }
}

fn control(pid: u32, args: &[&str]) -> Result<(), Error> {
    let status = std::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("callgrind_control {args:?} failed").into()),
    }
}

/// The instruction total of the dump named `name` (callgrind writes it before it answers).
fn dumped(out: &Path, name: &str) -> Result<u64, Error> {
    let trigger = format!("desc: Trigger: dump {name}");
    for _ in 0..100 {
        for entry in std::fs::read_dir(out)? {
            let text = std::fs::read_to_string(entry?.path()).unwrap_or_default();
            if text.lines().any(|l| l == trigger) {
                return totals(&text).ok_or_else(|| format!("no totals in the dump {name}").into());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("callgrind wrote no dump {name}").into())
}

fn totals(dump: &str) -> Option<u64> {
    dump.lines().find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:"))?.trim().parse().ok())
}

/// The protocol core's operations, each run under callgrind for two iteration counts.
fn core_counts(out: &Path) -> Result<BTreeMap<String, u64>, Error> {
    const FEW: u64 = 10;
    const MANY: u64 = 110;
    let me = std::env::current_exe()?;
    let mut counts = BTreeMap::new();
    for op in core::OPERATIONS {
        let total = |iterations: u64| -> Result<u64, Error> {
            let file = out.join(format!("core-{}-{iterations}", op.replace(' ', "-")));
            let status = std::process::Command::new("valgrind")
                .args(["--tool=callgrind", &format!("--callgrind-out-file={}", file.display())])
                .arg(&me)
                .args(["--counts-core", op, &iterations.to_string()])
                .stderr(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                return Err(format!("{op} under callgrind failed").into());
            }
            totals(&std::fs::read_to_string(&file)?).ok_or_else(|| format!("no totals for {op}").into())
        };
        let (few, many) = (total(FEW)?, total(MANY)?);
        counts.insert(format!("core {op}"), many.saturating_sub(few) / (MANY - FEW));
    }
    Ok(counts)
}

/// The protocol core's counted operations, run by `aurora-bench --counts-core OP N`.
pub mod core {
    use std::collections::BTreeMap;

    use aurora_atproto::blockstore::{BlockStore, MemoryBlockStore};
    use aurora_atproto::crypto::{KeyType, Keypair};
    use aurora_atproto::data;
    use aurora_atproto::repo::{RecordWrite, Repo};
    use ipld_core::ipld::Ipld;

    pub const OPERATIONS: [&str; 4] =
        ["dag-cbor post round trip", "k256 sign", "k256 verify", "commit 1 record to a 1k-record repo"];

    type Error = Box<dyn std::error::Error>;

    /// A fixed key, so every run does the same arithmetic.
    fn key() -> Result<Keypair, Error> {
        Ok(Keypair::from_private_bytes(KeyType::K256, &[0x42; 32])?)
    }

    fn post(n: usize) -> Result<RecordWrite, Error> {
        let record = Ipld::Map(BTreeMap::from([
            ("$type".to_owned(), Ipld::String("app.bsky.feed.post".to_owned())),
            ("text".to_owned(), Ipld::String(format!("{n:>6} {}", "lorem ipsum ".repeat(12)))),
            ("createdAt".to_owned(), Ipld::String("2024-01-01T00:00:00.000Z".to_owned())),
        ]));
        Ok(RecordWrite::Create {
            collection: "app.bsky.feed.post".parse()?,
            rkey: format!("3l{n:011}").parse()?,
            record: data::to_dag_cbor(&record)?.into(),
        })
    }

    /// Runs `op` `iterations` times.
    pub fn run(op: &str, iterations: u64) -> Result<(), Error> {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        match op {
            "dag-cbor post round trip" => {
                let record = serde_json::json!({
                    "$type": "app.bsky.feed.post",
                    "text": "a post of ordinary length, with a link and a few facets in it",
                    "createdAt": "2024-01-01T00:00:00.000Z",
                    "langs": ["en"],
                });
                let ipld = data::json_to_ipld(&record)?;
                for _ in 0..iterations {
                    let bytes = data::to_dag_cbor(std::hint::black_box(&ipld))?;
                    std::hint::black_box(data::from_dag_cbor(&bytes)?);
                }
            }
            "k256 sign" => {
                let key = key()?;
                for i in 0..iterations {
                    std::hint::black_box(key.sign(&i.to_be_bytes()));
                }
            }
            "k256 verify" => {
                let key = key()?;
                let public = key.public_key();
                let signature = key.sign(b"a commit");
                for _ in 0..iterations {
                    public.verify(std::hint::black_box(b"a commit"), &signature)?;
                }
            }
            "commit 1 record to a 1k-record repo" => runtime.block_on(async {
                let key = key()?;
                let store = MemoryBlockStore::new();
                let writes = (0..1000).map(post).collect::<Result<_, _>>()?;
                let did = "did:plc:abcdefghijklmnopqrstuvwx".parse()?;
                let (repo, data) = Repo::create(&store, did, &key, writes).await?;
                store.put_many(data.new_blocks).await?;
                let head = repo.into_head();
                for i in 0..iterations {
                    let mut repo = Repo::from_head(&store, head.clone());
                    std::hint::black_box(repo.apply_writes(vec![post(100_000 + i as usize)?], &key).await?);
                }
                Ok::<(), Error>(())
            })?,
            other => return Err(format!("no such operation: {other}").into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_above_the_tolerance_or_missing_fails_the_check() {
        let counts = BTreeMap::from([("server getRecord".to_owned(), 1_090), ("core k256 sign".to_owned(), 500)]);
        assert!(compare(&counts, "# a comment\nserver getRecord\t1000\ncore k256 sign\t600\n").is_ok());
        assert!(compare(&counts, "core k256 sign\t480\n").is_err(), "the core's bound is tighter");
        let error = compare(&counts, "server getRecord\t900\n").expect_err("21% above").to_string();
        assert!(error.contains("server getRecord"), "{error}");
        let error = compare(&counts, "server createRecord\t900\n").expect_err("not measured").to_string();
        assert!(error.contains("not measured"), "{error}");
        assert!(compare(&counts, "no tab here\n").is_err());
    }

    #[test]
    fn the_totals_come_from_a_callgrind_dump() {
        let dump = "version: 1\ndesc: Trigger: dump phase-getRecord\nevents: Ir\nsummary: 1234\ntotals: 1234\n";
        assert_eq!(totals(dump), Some(1234));
        assert_eq!(totals("events: Ir\n"), None);
    }
}
