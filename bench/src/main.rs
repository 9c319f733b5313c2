//! `aurora-bench`: drives the release binary over HTTP and reports latency percentiles and
//! throughput. Run through `just bench` (which builds the release binary first).
//!
//! Usage: aurora-bench [path/to/aurora-locus] [--accounts N] [--records N] [--only sync | --no-sync]
//!        aurora-bench [path/to/aurora-locus] --abuse   (the attack scenarios, see `abuse`)

mod abuse;
mod proxy;
mod sync;

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{handler, http::StatusCode, Route, Server};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A PLC directory that accepts every operation: the benchmark measures Aurora, not the directory.
#[handler]
fn accept() -> StatusCode {
    StatusCode::OK
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
        let (now, peak) =
            SERVER_PID.get().map_or((0, 0), |pid| (rss_now_kib(*pid).unwrap_or(0), rss_kib(*pid).unwrap_or(0)));
        let cpu = SERVER_PID.get().and_then(|pid| cpu_ticks(*pid)).unwrap_or(0);
        let spent = cpu.saturating_sub(CPU_AT_LAST_REPORT.swap(cpu, Ordering::Relaxed));
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
            spent as f64 * 1e6 / TICKS_PER_SECOND / self.samples.len() as f64
        );
    }
}

fn records_n(args: &[String]) -> usize {
    args.iter().position(|a| a == "--records").and_then(|i| args.get(i + 1)).and_then(|n| n.parse().ok()).unwrap_or(400)
}

/// The server's process, for the memory figures each report line carries.
static SERVER_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// The kernel's clock tick for process CPU times (`USER_HZ`), 100 on every Linux ABI we run on.
const TICKS_PER_SECOND: f64 = 100.0;
/// The server's CPU time (ticks) when the previous line was reported: each line shows the
/// server's CPU time per operation since the one before it, a steadier figure than
/// throughput on a machine whose speed drifts.
static CPU_AT_LAST_REPORT: AtomicU64 = AtomicU64::new(0);

/// User plus system CPU time of all the server's threads so far, in ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    Some(fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?)
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let binary =
        args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "target/release/aurora-locus".into());
    let accounts: usize = args
        .iter()
        .position(|a| a == "--accounts")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);

    let plc = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let plc_port = plc.local_addr()[0].as_socket_addr().map(|a| a.port()).ok_or("no PLC port")?;
    tokio::spawn(Server::new_with_acceptor(plc).run(Route::new().at("/*", poem::post(accept))));

    let (app_view_url, app_view_did) = proxy::start_app_view().await?;
    let plc_url = format!("http://127.0.0.1:{plc_port}");
    if args.iter().any(|a| a == "--abuse") {
        // Each attack against a fresh server, so each one's memory figures are its own.
        for scenario in abuse::SCENARIOS {
            let (mut child, base, pid, data) = start(&binary, &plc_url, &app_view_url, &app_view_did).await?;
            let client = reqwest::Client::new();
            let target = abuse::Target { client: &client, base: &base, pid, data: data.path() };
            abuse::run(&target, scenario).await?;
            let _ = child.kill().await;
        }
        return Ok(());
    }
    let (mut child, base, pid, _data) = start(&binary, &plc_url, &app_view_url, &app_view_did).await?;
    let client = reqwest::Client::new();
    println!("aurora-bench: {binary}, {accounts} accounts; idle RSS peak {} KiB", rss_kib(pid).unwrap_or(0));

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
    proxy::overhead(&client, &base, &app_view_url, &token, 1000).await?;
    let records = records_n(&args);
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
    let payload = vec![42u8; 1024 * 1024];
    let wall = Instant::now();
    for _ in 0..20 {
        let t = Instant::now();
        client
            .post(format!("{base}/xrpc/com.atproto.repo.uploadBlob"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(payload.clone())
            .send()
            .await?
            .bytes()
            .await?;
        upload.samples.push(t.elapsed());
    }
    upload.wall = wall.elapsed();
    upload.report();
    println!("  = {:.1} MiB/s", 20.0 / upload.wall.as_secs_f64());
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
    let _ = child.kill().await;
    Ok(())
}

/// Starts the server binary on a free port with its data in a fresh directory; waits until it
/// answers its health check.
async fn start(
    binary: &str,
    plc_url: &str,
    app_view_url: &str,
    app_view_did: &str,
) -> Result<(tokio::process::Child, String, u32, tempfile::TempDir), Box<dyn std::error::Error>> {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let data = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("PDS_PORT", port.to_string())
        .env("PDS_DATA_DIRECTORY", data.path())
        .env("PDS_DID_PLC_URL", plc_url)
        .env("PDS_BSKY_APP_VIEW_URL", app_view_url)
        .env("PDS_BSKY_APP_VIEW_DID", app_view_did)
        // Plain HTTP to the loopback stand-in AppView.
        .env("PDS_DEV_MODE", "true")
        .env("PDS_RATE_LIMITS_ENABLED", "false")
        .env("AURORA_LOG", std::env::var("AURORA_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .env("AURORA_LOG_FORMAT", "json")
        // Allocator tuning to compare, passed through when set.
        .envs(std::env::vars().filter(|(name, _)| name.starts_with("MALLOC_") || name.starts_with("MIMALLOC_")))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no pid")?;
    let _ = SERVER_PID.set(pid);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/xrpc/_health")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
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
