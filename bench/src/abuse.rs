//! `aurora-bench --abuse`: the attacks of issue #20 against a fresh server, each while a probe
//! measures how other clients are served. Loopback only, bounded in count and time. Rate limits
//! are off, so what is measured is the server's resource bounds alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{rss_kib, rss_now_kib};

type Error = Box<dyn std::error::Error>;

pub struct Target<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    pub pid: u32,
    pub data: &'a std::path::Path,
}

impl Target<'_> {
    fn url(&self, nsid: &str) -> String {
        format!("{}/xrpc/{nsid}", self.base)
    }

    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

async fn account(t: &Target<'_>, name: &str) -> Result<(String, String), Error> {
    let body = json!({ "handle": format!("{name}.test"), "email": format!("{name}@example.com"), "password": format!("{name}-password") });
    let r: Value = t.client.post(t.url("com.atproto.server.createAccount")).json(&body).send().await?.json().await?;
    Ok((r["accessJwt"].as_str().ok_or("no token")?.to_owned(), r["did"].as_str().ok_or("no did")?.to_owned()))
}

/// getRecord latencies measured every 10 ms until `stop` is set.
fn probe(t: &Target<'_>, did: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(Vec<Duration>, usize)> {
    let client = reqwest::Client::new();
    let url = format!("{}?repo={did}&collection=com.example.probe&rkey=probe", t.url("com.atproto.repo.getRecord"));
    tokio::spawn(async move {
        let (mut samples, mut failed) = (Vec::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            match tokio::time::timeout(Duration::from_secs(10), client.get(&url).send()).await {
                Ok(Ok(r)) if r.status().is_success() => samples.push(started.elapsed()),
                _ => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (samples, failed)
    })
}

async fn finish_probe(
    stop: Arc<AtomicBool>,
    probe: tokio::task::JoinHandle<(Vec<Duration>, usize)>,
) -> Result<String, Error> {
    stop.store(true, Ordering::Relaxed);
    let (mut samples, failed) = probe.await?;
    samples.sort();
    let pick =
        |q: f64| samples.get(((samples.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or_default();
    Ok(format!(
        "getRecord probe n={} p50={:.1} ms p99={:.1} ms max={:.1} ms failed={failed}",
        samples.len(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        pick(1.0).as_secs_f64() * 1e3
    ))
}

fn memory(t: &Target<'_>) -> String {
    format!("RSS {} MiB, peak {} MiB", rss_now_kib(t.pid).unwrap_or(0) / 1024, rss_kib(t.pid).unwrap_or(0) / 1024)
}

/// The attacks, each run against its own fresh server.
pub const SCENARIOS: [u8; 5] = [1, 2, 3, 4, 5];

/// Sets up the probe's record, then runs attack `scenario` and prints its figures.
pub async fn run(t: &Target<'_>, scenario: u8) -> Result<(), Error> {
    let (token, did) = account(t, "probe").await?;
    let record = json!({ "repo": did, "collection": "com.example.probe", "rkey": "probe", "record": {
        "$type": "com.example.probe", "text": "probe" } });
    t.client
        .post(t.url("com.atproto.repo.createRecord"))
        .bearer_auth(&token)
        .json(&record)
        .send()
        .await?
        .error_for_status()?;
    let idle = rss_kib(t.pid).unwrap_or(0) / 1024;
    match scenario {
        1 => wrong_passwords(t, &did).await?,
        2 => stalled_downloads(t, &did).await?,
        3 => slowloris(t, &did).await?,
        4 => firehose(t).await?,
        _ => uploads(t, &did).await?,
    }
    println!("   server peak RSS {} MiB (idle {idle} MiB)", rss_kib(t.pid).unwrap_or(0) / 1024);
    Ok(())
}

/// 500 concurrent wrong-password logins.
async fn wrong_passwords(t: &Target<'_>, probe_did: &str) -> Result<(), Error> {
    for n in 0..10 {
        account(t, &format!("victim{n}")).await?;
    }
    let before = rss_kib(t.pid).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe(t, probe_did, stop.clone());
    let started = Instant::now();
    let logins = (0..500).map(|n| {
        let body = json!({ "identifier": format!("victim{}.test", n % 10), "password": format!("guess-{n}") });
        let request = t.client.post(t.url("com.atproto.server.createSession")).json(&body).send();
        async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) }
    });
    let statuses = futures_util::future::join_all(logins).await;
    let elapsed = started.elapsed();
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    println!(
        "1. 500 concurrent wrong-password createSession: {} answered 401, {} refused 503 (hashing pool full), {} other, in {:.1} s; peak RSS grew {} MiB; {}",
        count(401),
        count(503),
        statuses.len() - count(401) - count(503),
        elapsed.as_secs_f64(),
        rss_kib(t.pid).unwrap_or(0).saturating_sub(before) / 1024,
        finish_probe(stop, probing).await?
    );
    Ok(())
}

/// Eight getRepo downloads of a 5 MB repository that are never read.
async fn stalled_downloads(t: &Target<'_>, probe_did: &str) -> Result<(), Error> {
    let (token, did) = account(t, "bulky").await?;
    let filler = "x".repeat(10_000);
    for batch in 0..6 {
        let writes: Vec<Value> = (0..90)
            .map(|i| {
                json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.bulk",
                "value": { "$type": "com.example.bulk", "filler": filler, "n": batch * 1000 + i } })
            })
            .collect();
        t.client
            .post(t.url("com.atproto.repo.applyWrites"))
            .bearer_auth(&token)
            .json(&json!({ "repo": did, "writes": writes }))
            .send()
            .await?
            .error_for_status()?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe(t, probe_did, stop.clone());
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut socket = TcpStream::connect(t.addr()).await?;
        let request = format!("GET /xrpc/com.atproto.sync.getRepo?did={did} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        socket.write_all(request.as_bytes()).await?;
        stalled.push(socket);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let write =
        json!({ "repo": did, "collection": "com.example.bulk", "record": { "$type": "com.example.bulk", "n": -1 } });
    let started = Instant::now();
    let wrote = tokio::time::timeout(
        Duration::from_secs(10),
        t.client.post(t.url("com.atproto.repo.createRecord")).bearer_auth(&token).json(&write).send(),
    )
    .await;
    let write_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "2. 8 unread getRepo downloads of a 5 MB repository: createRecord meanwhile {} in {write_ms:.1} ms; {}; {}",
        if matches!(wrote, Ok(Ok(ref r)) if r.status().is_success()) { "answered" } else { "NOT answered" },
        finish_probe(stop, probing).await?,
        memory(t)
    );
    drop(stalled);
    Ok(())
}

/// 500 connections that trickle a request head and never finish it.
async fn slowloris(t: &Target<'_>, probe_did: &str) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe(t, probe_did, stop.clone());
    let started = Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..500 {
        let mut socket = TcpStream::connect(t.addr()).await?;
        socket.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\n").await?;
        sockets.push(socket);
    }
    let health_started = Instant::now();
    let health = t.client.get(format!("{}/xrpc/_health", t.base)).send().await?.status();
    let health_ms = health_started.elapsed().as_secs_f64() * 1e3;
    // Keep trickling a header line per second until the server hangs up on each.
    let mut open = sockets.len();
    while open > 0 && started.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        open = 0;
        for socket in &mut sockets {
            if socket.write_all(b"X-Trickle: a\r\n").await.is_ok() {
                open += 1;
            }
        }
    }
    println!(
        "3. 500 slowloris connections: health answered {health} in {health_ms:.1} ms while they were open; all closed by the server after {:.0} s ({open} still open); {}; {}",
        started.elapsed().as_secs_f64(),
        finish_probe(stop, probing).await?,
        memory(t)
    );
    Ok(())
}

/// 1,000 firehose subscribers, one of which never reads.
async fn firehose(t: &Target<'_>) -> Result<(), Error> {
    let (token, did) = account(t, "poster").await?;
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", t.base.replace("http://", "ws://"));
    let writes = 200usize;
    // The stalled one: connected, never read.
    let (stalled, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let mut listeners = Vec::new();
    for _ in 0..999 {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        listeners.push(tokio::spawn(async move {
            let mut seen = 0usize;
            while seen < writes {
                match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
                    Ok(Some(Ok(_))) => seen += 1,
                    _ => break,
                }
            }
            let _ = socket.close(None).await;
            seen
        }));
    }
    let started = Instant::now();
    for i in 0..writes {
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": format!("event {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
        t.client
            .post(t.url("com.atproto.repo.createRecord"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
    }
    let written = started.elapsed();
    let mut complete = 0;
    let mut missing = 0;
    for listener in listeners {
        let seen = listener.await?;
        complete += usize::from(seen == writes);
        missing += writes - seen;
    }
    println!(
        "4. 1,000 firehose subscribers, one never reading: {writes} commits in {:.1} s; {complete} of 999 readers got every event ({missing} events missed), all within {:.1} s; {}",
        written.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        memory(t)
    );
    drop(stalled);
    Ok(())
}

/// 200 parallel 5 MB uploads from one account.
async fn uploads(t: &Target<'_>, _probe_did: &str) -> Result<(), Error> {
    let (token, _) = account(t, "uploader").await?;
    let tmp = t.data.join("blobs").join("tmp");
    let disk_before = dir_bytes(&tmp);
    let before = rss_kib(t.pid).unwrap_or(0);
    let started = Instant::now();
    let bodies = (0..200u32).map(|n| {
        let body: Vec<u8> =
            (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(n) >> 13) as u8).collect();
        let request = t
            .client
            .post(t.url("com.atproto.repo.uploadBlob"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send();
        async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) }
    });
    let statuses = futures_util::future::join_all(bodies).await;
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    let grown = dir_bytes(&tmp).saturating_sub(disk_before);
    println!(
        "5. 200 parallel 5 MB uploads from one account: {} stored, {} refused by the quota (400), {} other, in {:.1} s; temporary blob disk grew {} MiB; peak RSS grew {} MiB; {}",
        count(200),
        count(400),
        statuses.len() - count(200) - count(400),
        started.elapsed().as_secs_f64(),
        grown / (1024 * 1024),
        rss_kib(t.pid).unwrap_or(0).saturating_sub(before) / 1024,
        memory(t)
    );
    Ok(())
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}
