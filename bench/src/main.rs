//! `aurora-bench`: drives the release binary over HTTP and reports latency percentiles and
//! throughput. Run through `just bench` (which builds the release binary first).
//!
//! Usage: aurora-bench [path/to/aurora-locus] [--accounts N] [--records N] [--only sync | --no-sync]
//!                     [--postgres URL]   (the same suite on PostgreSQL too, compared side by side)
//!        aurora-bench [path/to/aurora-locus] --abuse   (the attack scenarios, see `abuse`)
//!        aurora-bench [path/to/aurora-locus] --scale [--postgres URL] [--scale-accounts N]
//!                     (cost as data grows, see `scale`)
//!
//!        aurora-bench [path/to/aurora-locus] --counts [--counts-check FILE] [--counts-write FILE] [--counts-keep DIR]
//!                     (instructions per request under callgrind, see `counts`)
//!        aurora-bench [path/to/aurora-locus] --symbol-order FILE [--accounts N]
//!                     (the functions the suite runs, for the linker, see `symbol_order`)
//!
//! `--client-like`: every request of the suite asks for compression as the official clients
//! do (`Accept-Encoding: gzip, deflate, br`), so the server pays what it pays for them; the
//! bodies are counted as sent, not decompressed.

mod abuse;
mod counts;
mod proxy;
mod scale;
mod symbol_order;
mod sync;

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{handler, http::StatusCode, Route, Server};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The last operation the stand-in PLC directory accepted for each DID.
static PLC_OPS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>> =
    std::sync::LazyLock::new(Default::default);

/// A PLC directory that accepts every operation unchecked (the benchmark measures Aurora, not
/// the directory) and keeps the last one of each DID, to answer for its document.
#[handler]
fn accept(poem::web::Path(did): poem::web::Path<String>, body: poem::web::Json<serde_json::Value>) -> StatusCode {
    PLC_OPS.lock().unwrap_or_else(|p| p.into_inner()).insert(did, body.0);
    StatusCode::OK
}

/// The DID document of the last operation accepted for a DID.
#[handler]
fn document(poem::web::Path(did): poem::web::Path<String>) -> poem::Result<poem::web::Json<serde_json::Value>> {
    let ops = PLC_OPS.lock().unwrap_or_else(|p| p.into_inner());
    let op = ops.get(&did).ok_or_else(|| poem::Error::from_status(StatusCode::NOT_FOUND))?;
    let key = op["verificationMethods"]["atproto"].as_str().unwrap_or_default();
    Ok(poem::web::Json(json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "alsoKnownAs": op["alsoKnownAs"],
        "verificationMethod": [{ "id": format!("{did}#atproto"), "type": "Multikey", "controller": did,
            "publicKeyMultibase": key.strip_prefix("did:key:").unwrap_or(key) }],
        "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": op["services"]["atproto_pds"]["endpoint"] }],
    })))
}

pub(crate) struct Stats {
    pub name: &'static str,
    pub samples: Vec<Duration>,
    pub wall: Duration,
}

impl Stats {
    /// The `q` quantile of the samples (sorted by [`Stats::report`]).
    pub fn quantile(&self, q: f64) -> Duration {
        self.samples[((self.samples.len() as f64 - 1.0) * q).round() as usize]
    }

    pub fn report(&mut self) {
        self.samples.sort();
        let pick = |q: f64| self.samples[((self.samples.len() as f64 - 1.0) * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (now, peak) = server_pid().map_or((0, 0), |pid| (rss_now_kib(pid).unwrap_or(0), rss_kib(pid).unwrap_or(0)));
        let cpu = server_pid().and_then(cpu_ns).unwrap_or(0);
        let spent = cpu.saturating_sub(CPU_AT_LAST_REPORT.swap(cpu, Ordering::Relaxed));
        SUMMARY.lock().unwrap_or_else(|p| p.into_inner()).push(Line {
            name: self.name.to_owned(),
            p50_ms: ms(pick(0.5)),
            per_sec: self.samples.len() as f64 / self.wall.as_secs_f64(),
            cpu_us: spent as f64 / 1e3 / self.samples.len() as f64,
        });
        println!(
            "{:<16} n={:<5} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  {:>8.1} ops/s  RSS {:>3} MiB (peak {:>3} MiB)  CPU {:>5.0} µs/op",
            self.name,
            self.samples.len(),
            ms(pick(0.5)),
            ms(pick(0.99)),
            ms(pick(1.0)),
            self.samples.len() as f64 / self.wall.as_secs_f64(),
            now / 1024,
            peak / 1024,
            spent as f64 / 1e3 / self.samples.len() as f64
        );
    }
}

/// The number after `flag` among `args`, or `default`.
fn number(args: &[String], flag: &str, default: usize) -> usize {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|n| n.parse().ok()).unwrap_or(default)
}

fn records_n(args: &[String]) -> usize {
    number(args, "--records", 400)
}

/// The process of the server being measured now (one per backend), for the memory and CPU
/// figures each report line carries; 0 before one starts.
static SERVER_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn server_pid() -> Option<u32> {
    Some(SERVER_PID.load(Ordering::Relaxed)).filter(|pid| *pid != 0)
}

/// Starts counting the server's CPU time afresh: the next line reports only what follows.
pub(crate) fn cpu_from_now() {
    if let Some(pid) = server_pid() {
        CPU_AT_LAST_REPORT.store(cpu_ns(pid).unwrap_or(0), Ordering::Relaxed);
    }
}

/// One reported line, kept for the comparison between backends.
pub(crate) struct Line {
    pub name: String,
    pub p50_ms: f64,
    pub per_sec: f64,
    pub cpu_us: f64,
}

/// Every line reported so far in this run of the suite.
pub(crate) static SUMMARY: std::sync::Mutex<Vec<Line>> = std::sync::Mutex::new(Vec::new());

/// The server's CPU time (ns) when the previous line was reported: each line shows the
/// server's CPU time per operation since the one before it, a steadier figure than
/// throughput on a machine whose speed drifts.
static CPU_AT_LAST_REPORT: AtomicU64 = AtomicU64::new(0);

/// CPU time (user and system) of the server's threads so far, in nanoseconds: the sum of each
/// thread's time on a CPU from `/proc/PID/task/*/schedstat`. The process's own counters in
/// `/proc/PID/stat` tick every 10 ms, which for a phase of 400 requests of a few hundred µs
/// was a resolution of a fifth. A thread that exits takes its time with it; the runtime's
/// workers live as long as the server, and a blocking-pool thread exits only after 10 s idle.
fn cpu_ns(pid: u32) -> Option<u64> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let on_cpu = |thread: std::fs::DirEntry| {
        let stat = std::fs::read_to_string(thread.path().join("schedstat")).ok()?;
        stat.split_whitespace().next()?.parse::<u64>().ok()
    };
    Some(threads.filter_map(Result::ok).filter_map(on_cpu).sum())
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server's peak resident memory so far.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

pub(crate) fn rss_now_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A protocol-core operation counted under callgrind (see `counts`): no runtime, no servers.
    if let Some(i) = args.iter().position(|a| a == "--counts-core") {
        let op = args.get(i + 1).ok_or("--counts-core OP N")?;
        let n = args.get(i + 2).and_then(|n| n.parse().ok()).ok_or("--counts-core OP N")?;
        return Ok(counts::core::run(op, n).map_err(|e| e.to_string())?);
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(args))
}

async fn bench(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let binary =
        args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "target/release/aurora-locus".into());
    let accounts = number(&args, "--accounts", 200);

    let plc = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let plc_port = plc.local_addr()[0].as_socket_addr().map(|a| a.port()).ok_or("no PLC port")?;
    tokio::spawn(Server::new_with_acceptor(plc).run(Route::new().at("/:did", poem::post(accept).get(document))));

    let (app_view_url, app_view_did) = proxy::start_app_view().await?;
    let plc_url = format!("http://127.0.0.1:{plc_port}");
    let env = Env { binary: binary.clone(), wrapper: Vec::new(), plc_url, app_view_url, app_view_did };
    let postgres = args.iter().position(|a| a == "--postgres").and_then(|i| args.get(i + 1)).cloned();
    if args.iter().any(|a| a == "--abuse") {
        // Each attack against a fresh server, so each one's memory figures are its own.
        for scenario in abuse::SCENARIOS {
            let (mut child, base, pid, data) = start(&env, None).await?;
            let client = reqwest::Client::new();
            let target = abuse::Target { client: &client, base: &base, pid, data: data.path() };
            abuse::run(&target, scenario).await?;
            let _ = child.kill().await;
        }
        return Ok(());
    }
    if args.iter().any(|a| a == "--counts") {
        let file = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str);
        return Ok(counts::run(&env, file("--counts-check"), file("--counts-write"), file("--counts-keep"))
            .await
            .map_err(|e| e.to_string())?);
    }
    if let Some(file) = args.iter().position(|a| a == "--symbol-order").and_then(|i| args.get(i + 1)) {
        return Ok(symbol_order::run(&env, &args, accounts, file).await.map_err(|e| e.to_string())?);
    }
    if args.iter().any(|a| a == "--scale") {
        let accounts = number(&args, "--scale-accounts", 10_000);
        let ran = scale::run(&env, postgres.as_deref(), accounts).await.map_err(|e| e.to_string());
        if let Some(server) = &postgres {
            drop_database(server).await?;
        }
        return Ok(ran?);
    }
    println!("== SQLite");
    suite(&env, &args, accounts, None).await?;
    let Some(postgres) = postgres else { return Ok(()) };
    let on_sqlite: Vec<Line> = std::mem::take(&mut *SUMMARY.lock().unwrap_or_else(|p| p.into_inner()));
    println!("\n== PostgreSQL");
    let ran = suite(&env, &args, accounts, Some(&postgres)).await;
    drop_database(&postgres).await?;
    ran?;
    let on_postgres = std::mem::take(&mut *SUMMARY.lock().unwrap_or_else(|p| p.into_inner()));
    println!("\n== side by side: median latency, throughput and Aurora's own CPU per operation");
    println!(
        "{:<18} {:>12} {:>12} {:>7}   {:>10} {:>10}   {:>9} {:>9}",
        "", "SQLite p50", "PG p50", "PG/SQL", "SQLite/s", "PG/s", "SQLite µs", "PG µs"
    );
    // Both runs report the same lines in the same order.
    for (line, pg) in on_sqlite.iter().zip(&on_postgres) {
        println!(
            "{:<18} {:>9.2} ms {:>9.2} ms {:>6.2}×   {:>10.1} {:>10.1}   {:>9.0} {:>9.0}",
            line.name,
            line.p50_ms,
            pg.p50_ms,
            pg.p50_ms / line.p50_ms,
            line.per_sec,
            pg.per_sec,
            line.cpu_us,
            pg.cpu_us
        );
    }
    println!("(CPU is the Aurora process's only; on PostgreSQL the database's own processes work too.)");
    Ok(())
}

/// Where the servers under test find their PLC directory and AppView.
#[derive(Clone)]
pub(crate) struct Env {
    pub binary: String,
    /// A command the server runs under (valgrind), if any.
    pub wrapper: Vec<String>,
    pub plc_url: String,
    pub app_view_url: String,
    pub app_view_did: String,
}

/// The whole suite against a fresh server: on SQLite, or on a fresh database of the
/// PostgreSQL server at `postgres`.
async fn suite(
    env: &Env,
    args: &[String],
    accounts: usize,
    postgres: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let binary = &env.binary;
    let app_view_url = &env.app_view_url;
    let (mut child, base, pid, _data) = start(env, postgres).await?;
    let client_like = args.iter().any(|a| a == "--client-like");
    let client = if client_like {
        let mut headers = reqwest::header::HeaderMap::new();
        headers
            .insert(reqwest::header::ACCEPT_ENCODING, reqwest::header::HeaderValue::from_static("gzip, deflate, br"));
        reqwest::Client::builder().default_headers(headers).build()?
    } else {
        reqwest::Client::new()
    };
    println!(
        "aurora-bench: {binary}, {accounts} accounts{}; idle RSS {} KiB (start-up's peak {} KiB)",
        if client_like { ", asking for compression as the official clients do" } else { "" },
        rss_now_kib(pid).unwrap_or(0),
        rss_kib(pid).unwrap_or(0)
    );

    let mut create = Stats { name: "createAccount", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for i in 0..accounts {
        let body = json!({ "handle": format!("user{i}.test"), "email": format!("user{i}@example.com"), "password": format!("password-{i}") });
        let t = Instant::now();
        let response = client.post(format!("{base}/xrpc/com.atproto.server.createAccount")).json(&body).send().await?;
        if !response.status().is_success() {
            return Err(format!("createAccount failed: {}", response.text().await?).into());
        }
        create.samples.push(t.elapsed());
    }
    create.wall = wall.elapsed();
    create.report();

    let mut login = Stats { name: "createSession", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for i in 0..accounts {
        let body = json!({ "identifier": format!("user{i}.test"), "password": format!("password-{i}") });
        let t = Instant::now();
        let response = client.post(format!("{base}/xrpc/com.atproto.server.createSession")).json(&body).send().await?;
        if !response.status().is_success() {
            return Err(format!("createSession failed: {}", response.text().await?).into());
        }
        login.samples.push(t.elapsed());
    }
    login.wall = wall.elapsed();
    login.report();

    if !args.iter().any(|a| a == "--no-sync") {
        let server = sync::Server { client: &client, base: &base, pid };
        sync::get_repo(&server, 1, 1_000, 20).await?;
        sync::get_repo(&server, 2, 10_000, 10).await?;
        for (user, consumers) in [(3, 1), (4, 100), (5, 1_000)] {
            sync::firehose(&server, user, consumers, 200, Duration::from_millis(20)).await?;
        }
        if args.iter().any(|a| a == "--only") {
            let _ = child.kill().await;
            return Ok(());
        }
    }

    let (status, session): (u16, serde_json::Value) = {
        let body = json!({ "identifier": "user0.test", "password": "password-0" });
        let r = client.post(format!("{base}/xrpc/com.atproto.server.createSession")).json(&body).send().await?;
        (r.status().as_u16(), r.json().await?)
    };
    if status != 200 {
        return Err(format!("login failed: {session}").into());
    }
    let token = session["accessJwt"].as_str().ok_or("no token")?.to_owned();
    let did = session["did"].as_str().ok_or("no did")?.to_owned();
    proxy::overhead(&client, &base, app_view_url, &token, 1000).await?;
    let records = records_n(args);
    let post = |i: usize| {
        json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": format!("benchmark post {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } })
    };

    let mut create = Stats { name: "createRecord", samples: Vec::new(), wall: Duration::ZERO };
    let mut rkeys = Vec::new();
    let wall = Instant::now();
    for i in 0..records {
        let t = Instant::now();
        let r = client
            .post(format!("{base}/xrpc/com.atproto.repo.createRecord"))
            .bearer_auth(&token)
            .json(&post(i))
            .send()
            .await?;
        create.samples.push(t.elapsed());
        let body: serde_json::Value = r.json().await?;
        rkeys.push(body["uri"].as_str().ok_or("no uri")?.rsplit('/').next().unwrap_or_default().to_owned());
    }
    create.wall = wall.elapsed();
    create.report();

    let mut concurrent = Stats { name: "createRecord x8", samples: Vec::new(), wall: Duration::ZERO };
    let batches_before = batch_metrics(&client, &base).await;
    let wall = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, base, token, did) = (client.clone(), base.clone(), token.clone(), did.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for i in 0..records / 8 {
                let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
                    "$type": "app.bsky.feed.post", "text": format!("concurrent {worker}-{i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
                let t = Instant::now();
                let r = client.post(format!("{base}/xrpc/com.atproto.repo.createRecord")).bearer_auth(&token).json(&body).send().await;
                if r.map(|r| r.status().is_success()).unwrap_or(false) {
                    samples.push(t.elapsed());
                }
            }
            samples
        }));
    }
    for task in tasks {
        concurrent.samples.extend(task.await?);
    }
    concurrent.wall = wall.elapsed();
    concurrent.report();
    if let (Some(before), Some(after)) = (batches_before, batch_metrics(&client, &base).await) {
        let batches = after.batches - before.batches;
        let waits = after.waits - before.waits;
        if batches > 0.0 {
            // On SQLite a batch waits for the log's sync after its commit; on PostgreSQL the
            // commit itself waits for the flush, so there is no separate wait to report.
            let waited = match waits > 0.0 {
                true => format!(
                    ", {:.2} ms per batch waiting for the log's sync",
                    1000.0 * (after.waited - before.waited) / waits
                ),
                false => String::new(),
            };
            println!("  = {:.1} commits per stored batch{waited}", (after.commits - before.commits) / batches);
        }
    }

    let mut get = Stats { name: "getRecord", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for rkey in &rkeys {
        let t = Instant::now();
        client
            .get(format!("{base}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"))
            .send()
            .await?
            .bytes()
            .await?;
        get.samples.push(t.elapsed());
    }
    get.wall = wall.elapsed();
    get.report();

    let mut get8 = Stats { name: "getRecord x8", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    let mut tasks = Vec::new();
    for chunk in rkeys.chunks(rkeys.len().div_ceil(8).max(1)) {
        let (client, base, did, chunk) = (client.clone(), base.clone(), did.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for rkey in chunk {
                let t = Instant::now();
                let url = format!(
                    "{base}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"
                );
                if let Ok(r) = client.get(url).send().await {
                    let _ = r.bytes().await;
                    samples.push(t.elapsed());
                }
            }
            samples
        }));
    }
    for task in tasks {
        get8.samples.extend(task.await?);
    }
    get8.wall = wall.elapsed();
    get8.report();

    // What a relay asks of each repository it follows, and what handle checks ask.
    // and what the app asks when it starts.
    let point_reads = [
        ("getLatestCommit", format!("{base}/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None, false),
        ("getRepoStatus", format!("{base}/xrpc/com.atproto.sync.getRepoStatus?did={did}"), None, false),
        ("resolveHandle", format!("{base}/xrpc/com.atproto.identity.resolveHandle?handle=user0.test"), None, false),
        ("atproto-did", format!("{base}/.well-known/atproto-did"), Some("user0.test"), false),
        ("getPreferences", format!("{base}/xrpc/app.bsky.actor.getPreferences"), None, true),
        ("getSession", format!("{base}/xrpc/com.atproto.server.getSession"), None, true),
    ];
    let preferences = json!({ "preferences": [
        { "$type": "app.bsky.actor.defs#adultContentPref", "enabled": false },
        { "$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": [
            { "id": "3l6ovcmm2vd2j", "type": "timeline", "value": "following", "pinned": true } ] },
        { "$type": "app.bsky.actor.defs#threadViewPref", "sort": "oldest" },
        { "$type": "app.bsky.actor.defs#feedViewPref", "feed": "home", "hideReplies": false },
        { "$type": "app.bsky.actor.defs#mutedWordsPref", "items": [] },
    ] });
    let put = client.post(format!("{base}/xrpc/app.bsky.actor.putPreferences")).bearer_auth(&token).json(&preferences);
    if !put.send().await?.status().is_success() {
        return Err("putPreferences failed".into());
    }
    for (name, url, host, signed_in) in point_reads {
        let mut stats = Stats { name, samples: Vec::new(), wall: Duration::ZERO };
        let wall = Instant::now();
        for _ in 0..400 {
            let t = Instant::now();
            let mut request = client.get(&url);
            if let Some(host) = host {
                request = request.header("host", host);
            }
            if signed_in {
                request = request.bearer_auth(&token);
            }
            let answer = request.send().await?;
            if !answer.status().is_success() {
                return Err(format!("{name}: {}", answer.status()).into());
            }
            answer.bytes().await?;
            stats.samples.push(t.elapsed());
        }
        stats.wall = wall.elapsed();
        stats.report();
    }

    // What a relay asks first: every repository, a page of up to 1,000 at a time.
    let mut repos = Stats { name: "listRepos", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for _ in 0..20 {
        let t = Instant::now();
        let answer = client.get(format!("{base}/xrpc/com.atproto.sync.listRepos?limit=1000")).send().await?;
        if !answer.status().is_success() {
            return Err(format!("listRepos: {}", answer.status()).into());
        }
        answer.bytes().await?;
        repos.samples.push(t.elapsed());
    }
    repos.wall = wall.elapsed();
    repos.report();

    let mut list = Stats { name: "listRecords 100", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for _ in 0..50 {
        let t = Instant::now();
        client
            .get(format!("{base}/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100"))
            .send()
            .await?
            .bytes()
            .await?;
        list.samples.push(t.elapsed());
    }
    list.wall = wall.elapsed();
    list.report();

    compression(&client, &base, &did).await?;

    let mut batch = Stats { name: "applyWrites 200", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for b in 0..5 {
        let writes: Vec<_> = (0..200)
            .map(|i| json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post",
                "value": { "$type": "app.bsky.feed.post", "text": format!("batch {b}-{i}"), "createdAt": "2024-05-01T12:00:00.000Z" } }))
            .collect();
        let t = Instant::now();
        let r = client
            .post(format!("{base}/xrpc/com.atproto.repo.applyWrites"))
            .bearer_auth(&token)
            .json(&json!({ "repo": did, "writes": writes }))
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("applyWrites failed: {}", r.text().await?).into());
        }
        batch.samples.push(t.elapsed());
    }
    batch.wall = wall.elapsed();
    batch.report();
    println!("  = {:.0} records/s in 200-record batches", 1000.0 / batch.wall.as_secs_f64());

    let mut upload = Stats { name: "uploadBlob 1MiB", samples: Vec::new(), wall: Duration::ZERO };
    // At most 200 by default (`AURORA_TEMP_BLOB_QUOTA`, 256 MiB): none is used in a record.
    let uploads = number(args, "--uploads", 50);
    let wall = Instant::now();
    for i in 0..uploads {
        // Each upload a blob of its own, as a client's are: the same bytes again would only
        // find the first.
        let mut payload = vec![42u8; 1024 * 1024];
        payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let t = Instant::now();
        let response = client
            .post(format!("{base}/xrpc/com.atproto.repo.uploadBlob"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(payload)
            .send()
            .await?;
        // A refusal (past the account's quota of unused uploads, say) is not an upload.
        if !response.status().is_success() {
            return Err(format!("uploadBlob failed: {}", response.text().await?).into());
        }
        response.bytes().await?;
        upload.samples.push(t.elapsed());
    }
    upload.wall = wall.elapsed();
    upload.report();
    println!("  = {:.1} MiB/s", uploads as f64 / upload.wall.as_secs_f64());
    println!("peak RSS {} KiB", rss_kib(pid).unwrap_or(0));

    // The repository built so far, exported and imported back: an import is staged on disk,
    // so the peak below should not grow with the repository's size.
    let car = client.get(format!("{base}/xrpc/com.atproto.sync.getRepo?did={did}")).send().await?.bytes().await?;
    let mut import = Stats { name: "importRepo", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for _ in 0..3 {
        let t = Instant::now();
        let r = client
            .post(format!("{base}/xrpc/com.atproto.repo.importRepo"))
            .bearer_auth(&token)
            .header("content-type", "application/vnd.ipld.car")
            .body(car.clone())
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("importRepo failed: {}", r.text().await?).into());
        }
        import.samples.push(t.elapsed());
    }
    import.wall = wall.elapsed();
    import.report();
    println!(
        "  = a {:.1} MiB repository in {:.0} ms; peak RSS with imports {} KiB",
        car.len() as f64 / 1048576.0,
        import.quantile(0.5).as_secs_f64() * 1000.0,
        rss_kib(pid).unwrap_or(0)
    );
    stop(&mut child, env).await;
    Ok(())
}

/// Ends the server. One under a wrapper (callgrind) is asked to shut down and given time to,
/// so the tool writes what it measured; killed, it would write nothing.
async fn stop(child: &mut tokio::process::Child, env: &Env) {
    if let (false, Some(pid)) = (env.wrapper.is_empty(), child.id()) {
        let asked = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        if asked.is_ok_and(|status| status.success()) {
            let _ = tokio::time::timeout(Duration::from_secs(120), child.wait()).await;
        }
    }
    let _ = child.kill().await;
}

/// What compression costs and saves: a page of records (JSON) and the repository (a CAR),
/// fetched with each content coding the official clients ask for, bytes on the wire against
/// the server's CPU per request. (CARs are compressed only with `AURORA_COMPRESS_CARS=true`.)
async fn compression(client: &reqwest::Client, base: &str, did: &str) -> Result<(), Box<dyn std::error::Error>> {
    let list = format!("{base}/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100");
    let repo = format!("{base}/xrpc/com.atproto.sync.getRepo?did={did}");
    let cases: [(&'static str, &str, &str, usize); 8] = [
        ("list identity", &list, "identity", 400),
        ("list gzip", &list, "gzip", 400),
        ("list br", &list, "br", 400),
        ("list zstd", &list, "zstd", 400),
        ("getRepo identity", &repo, "identity", 50),
        ("getRepo gzip", &repo, "gzip", 50),
        ("getRepo br", &repo, "br", 50),
        ("getRepo zstd", &repo, "zstd", 50),
    ];
    for (name, url, coding, n) in cases {
        let mut stats = Stats { name, samples: Vec::new(), wall: Duration::ZERO };
        let mut bytes = 0;
        let mut sent_as = String::from("identity");
        let wall = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let response = client.get(url).header("accept-encoding", coding).send().await?;
            if let Some(encoding) = response.headers().get("content-encoding").and_then(|v| v.to_str().ok()) {
                sent_as = encoding.to_owned();
            }
            bytes = response.bytes().await?.len();
            stats.samples.push(t.elapsed());
        }
        stats.wall = wall.elapsed();
        stats.report();
        println!("  = {:.1} KiB on the wire, sent as {sent_as}", bytes as f64 / 1024.0);
    }
    Ok(())
}

/// The server's group-commit counters, from its metrics (served to loopback).
struct BatchMetrics {
    batches: f64,
    commits: f64,
    waits: f64,
    waited: f64,
}

async fn batch_metrics(client: &reqwest::Client, base: &str) -> Option<BatchMetrics> {
    let text = client.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some(BatchMetrics {
        batches: value("aurora_commit_batch_size_count")?,
        commits: value("aurora_commit_batch_size_sum")?,
        waits: value("aurora_log_sync_wait_seconds_count").unwrap_or(0.0),
        waited: value("aurora_log_sync_wait_seconds_sum").unwrap_or(0.0),
    })
}

/// Starts the server binary on a free port with its data in a fresh directory (and, given a
/// PostgreSQL server, in a fresh database there); waits until it answers its health check.
pub(crate) async fn start(
    env: &Env,
    postgres: Option<&str>,
) -> Result<(tokio::process::Child, String, u32, tempfile::TempDir), Box<dyn std::error::Error>> {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let data = tempfile::tempdir()?;
    let database_url = match postgres {
        Some(server) => fresh_database(server).await?,
        None => format!("sqlite://{}?mode=rwc", data.path().join("aurora.sqlite").display()),
    };
    let mut command = match env.wrapper.split_first() {
        Some((program, args)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(args).arg(&env.binary);
            command
        }
        None => tokio::process::Command::new(&env.binary),
    };
    let mut child = command
        .env_clear()
        .env("PDS_PORT", port.to_string())
        .env("PDS_DATA_DIRECTORY", data.path())
        .env("AURORA_DATABASE_URL", database_url)
        .env("PDS_DID_PLC_URL", &env.plc_url)
        .env("PDS_BSKY_APP_VIEW_URL", &env.app_view_url)
        .env("PDS_BSKY_APP_VIEW_DID", &env.app_view_did)
        // Plain HTTP to the loopback stand-in AppView.
        .env("PDS_DEV_MODE", "true")
        .env("PDS_RATE_LIMITS_ENABLED", "false")
        .env("AURORA_LOG", std::env::var("AURORA_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .env("AURORA_LOG_FORMAT", "json")
        // Allocator tuning, the compression policy and the record cache to compare, passed
        // through when set.
        .envs(std::env::vars().filter(|(name, _)| {
            name.starts_with("MALLOC_")
                || name == "GLIBC_TUNABLES"
                || name.starts_with("AURORA_COMPRESS")
                || name == "AURORA_RECORD_CACHE_BYTES"
        }))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no pid")?;
    SERVER_PID.store(pid, Ordering::Relaxed);
    cpu_from_now();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/xrpc/_health")).send().await.is_err() {
        // Under valgrind the server starts some fifty times slower.
        let patience = if env.wrapper.is_empty() { 30 } else { 600 };
        if started.elapsed() > Duration::from_secs(patience) {
            return Err("the server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            // Shown when AURORA_BENCH_LOG asks for more than warnings.
            let show = std::env::var("AURORA_BENCH_LOG").is_ok();
            while let Ok(Some(line)) = lines.next_line().await {
                if show {
                    eprintln!("{line}");
                }
            }
        });
    }
    Ok((child, base, pid, data))
}

/// A new, empty database on the PostgreSQL server at `server` (dropped first if a previous run
/// left it), and its URL.
async fn fresh_database(server: &str) -> Result<String, Box<dyn std::error::Error>> {
    use sea_orm::ConnectionTrait;
    let name = database_name();
    let admin = sea_orm::Database::connect(server).await?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}")).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    admin.close().await?;
    let mut url = reqwest::Url::parse(server)?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// The database this run's servers use on PostgreSQL, one per benchmark process.
fn database_name() -> String {
    format!("aurora_bench_{}", std::process::id())
}

/// Drops this run's database once its servers are gone (their connections ended by force, as a
/// server killed a moment ago may not have closed them yet), so runs leave nothing behind.
async fn drop_database(server: &str) -> Result<(), Box<dyn std::error::Error>> {
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(server).await?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database_name())).await?;
    admin.close().await?;
    Ok(())
}
