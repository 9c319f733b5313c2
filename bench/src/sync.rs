//! Sync benchmarks: repository export (getRepo) at 1k and 10k records, and firehose delivery
//! latency from an acknowledged write to its event at 1, 100 and 1,000 live consumers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::{rss_kib, Stats};

pub struct Server<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    pub pid: u32,
}

async fn login(server: &Server<'_>, user: usize) -> Result<(String, String), Box<dyn std::error::Error>> {
    let body = json!({ "identifier": format!("user{user}.test"), "password": format!("password-{user}") });
    let session: serde_json::Value = server
        .client
        .post(format!("{}/xrpc/com.atproto.server.createSession", server.base))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let token = session["accessJwt"].as_str().ok_or("no token")?.to_owned();
    let did = session["did"].as_str().ok_or("no did")?.to_owned();
    Ok((token, did))
}

async fn fill(server: &Server<'_>, token: &str, did: &str, records: usize) -> Result<(), Box<dyn std::error::Error>> {
    for batch in 0..records.div_ceil(200) {
        let writes: Vec<_> = (0..200.min(records - batch * 200))
            .map(|i| json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post",
                "value": { "$type": "app.bsky.feed.post", "text": format!("export {batch}-{i}"), "createdAt": "2024-05-01T12:00:00.000Z" } }))
            .collect();
        let r = server
            .client
            .post(format!("{}/xrpc/com.atproto.repo.applyWrites", server.base))
            .bearer_auth(token)
            .json(&json!({ "repo": did, "writes": writes }))
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("applyWrites failed: {}", r.text().await?).into());
        }
    }
    Ok(())
}

/// getRepo of a repository holding `records` records, `rounds` times.
pub async fn get_repo(
    server: &Server<'_>,
    user: usize,
    records: usize,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let (token, did) = login(server, user).await?;
    fill(server, &token, &did, records).await?;
    let name = if records >= 10_000 { "getRepo 10k" } else { "getRepo 1k" };
    let mut stats = Stats { name, samples: Vec::new(), wall: Duration::ZERO };
    let mut bytes = 0;
    let wall = Instant::now();
    for _ in 0..rounds {
        let t = Instant::now();
        let car = server
            .client
            .get(format!("{}/xrpc/com.atproto.sync.getRepo?did={did}", server.base))
            .send()
            .await?
            .bytes()
            .await?;
        stats.samples.push(t.elapsed());
        bytes = car.len();
    }
    stats.wall = wall.elapsed();
    stats.report();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "  = {:.2} MiB per export, {:.0} MiB/s; server peak RSS so far {} KiB",
        mib,
        mib * rounds as f64 / stats.wall.as_secs_f64(),
        rss_kib(server.pid).unwrap_or(0)
    );
    if records >= 10_000 {
        // Its cost should not grow with the number of records, only with that of collections.
        let mut stats = Stats { name: "describeRepo 10k", samples: Vec::new(), wall: Duration::ZERO };
        let wall = Instant::now();
        for _ in 0..100 {
            let t = Instant::now();
            let url = format!("{}/xrpc/com.atproto.repo.describeRepo?repo={did}", server.base);
            let answer = server.client.get(url).send().await?;
            if !answer.status().is_success() {
                return Err(format!("describeRepo: {}", answer.text().await?).into());
            }
            answer.bytes().await?;
            stats.samples.push(t.elapsed());
        }
        stats.wall = wall.elapsed();
        stats.report();
    }
    Ok(())
}

/// The `rev` of a `#commit` frame, read straight from its DAG-CBOR: the text key "rev"
/// followed by a 13-character string.
fn frame_rev(frame: &[u8]) -> Option<String> {
    let at = frame.windows(5).position(|w| w == b"\x63rev\x6d")?;
    Some(String::from_utf8_lossy(frame.get(at + 5..at + 18)?).into_owned())
}

/// `writes` createRecords paced `interval` apart while `consumers` websocket consumers listen;
/// reports acknowledged-write → event-received latency over every (event, consumer) pair.
pub async fn firehose(
    server: &Server<'_>,
    user: usize,
    consumers: usize,
    writes: usize,
    interval: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let (token, did) = login(server, user).await?;
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", server.base.replace("http://", "ws://"));
    let mut listeners = Vec::new();
    for _ in 0..consumers {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        listeners.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(writes);
            while seen.len() < writes {
                match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
                    Ok(Some(Ok(message))) => {
                        let at = Instant::now();
                        if let Some(rev) = frame_rev(&message.into_data()) {
                            seen.push((rev, at));
                        }
                    }
                    _ => break,
                }
            }
            seen
        }));
    }
    let mut acked: HashMap<String, Instant> = HashMap::new();
    let wall = Instant::now();
    let mut tick = tokio::time::interval(interval);
    for i in 0..writes {
        tick.tick().await;
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": format!("firehose {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
        let r: serde_json::Value = server
            .client
            .post(format!("{}/xrpc/com.atproto.repo.createRecord", server.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        acked.insert(r["commit"]["rev"].as_str().ok_or("no rev")?.to_owned(), Instant::now());
    }
    let name = match consumers {
        1 => "firehose x1",
        100 => "firehose x100",
        1_000 => "firehose x1000",
        _ => "firehose",
    };
    let mut stats = Stats { name, samples: Vec::new(), wall: Duration::ZERO };
    let mut missing = 0;
    for listener in listeners {
        let seen = listener.await?;
        missing += writes.saturating_sub(seen.len());
        for (rev, at) in seen {
            if let Some(ack) = acked.get(&rev) {
                // An event can arrive before the HTTP answer does: that counts as no delay.
                stats.samples.push(at.saturating_duration_since(*ack));
            }
        }
    }
    stats.wall = wall.elapsed();
    print!("{consumers:>5} consumers: ");
    stats.report();
    println!(
        "  = {:.0} events/s delivered, {missing} events missed; server peak RSS so far {} KiB",
        stats.samples.len() as f64 / stats.wall.as_secs_f64(),
        rss_kib(server.pid).unwrap_or(0)
    );
    Ok(())
}
