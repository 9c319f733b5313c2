//! Cost as data grows: a server filled to 1%, 10% and 100% of `accounts` accounts holding a
//! hundred records each (10,000 and 1,000,000 by default), one of them a large repository of a
//! tenth of all records (100,000), measured at each step: createRecord, getRecord and
//! listRecords on random accounts, getRepo of the large repository, and a firehose backfill
//! from cursor 0. On SQLite, and on PostgreSQL too when a server is given. Loopback only.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::{start, Env, Line, Stats, SUMMARY};

/// Records per account (the large repository aside).
const PER_ACCOUNT: usize = 90;
/// Requests in flight while filling.
const FILLERS: usize = 4;
/// The pause between a fill and its measurement: the database's background work after a
/// burst of writes (checkpointing the write-ahead log, PostgreSQL's autovacuum) is the fill's
/// cost, not the measured operations'.
const SETTLE: Duration = Duration::from_secs(10);

struct Account {
    did: String,
    token: String,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

pub async fn run(env: &Env, postgres: Option<&str>, accounts: usize) -> Result<(), Failure> {
    let mut tables = Vec::new();
    let backends: Vec<Option<&str>> = std::iter::once(None).chain(postgres.map(Some)).collect();
    for backend in backends {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        println!(
            "== scale on {label}: {accounts} accounts × {PER_ACCOUNT} records + a repository of {} records",
            accounts * 10
        );
        let (mut child, base, pid, _data) = start(env, backend).await.map_err(|e| e.to_string())?;
        let client = reqwest::Client::new();
        let mut filled: Vec<Account> = Vec::new();
        let whale = create_accounts(&client, &base, 0, 1, "whale").await?.remove(0);
        let mut whale_records = 0;
        let mut steps = Vec::new();
        for percent in [1usize, 10, 100] {
            let wall = Instant::now();
            let target = accounts * percent / 100;
            let fresh = create_accounts(&client, &base, filled.len(), target - filled.len(), "user").await?;
            fill_each(&client, &base, &fresh).await?;
            filled.extend(fresh);
            let whale_target = accounts * 10 * percent / 100;
            fill(&client, &base, &whale, whale_target - whale_records).await?;
            whale_records = whale_target;
            println!(
                "-- {percent}%: {} accounts, {} records (filled in {:.0} s); peak RSS {} MiB",
                filled.len() + 1,
                filled.len() * PER_ACCOUNT + whale_records,
                wall.elapsed().as_secs_f64(),
                crate::rss_kib(pid).unwrap_or(0) / 1024
            );
            tokio::time::sleep(SETTLE).await;
            SUMMARY.lock().unwrap_or_else(|p| p.into_inner()).clear();
            measure(&client, &base, &filled, &whale, whale_records).await?;
            steps.push((percent, std::mem::take(&mut *SUMMARY.lock().unwrap_or_else(|p| p.into_inner()))));
        }
        let _ = child.kill().await;
        tables.push((label, steps));
    }
    for (label, steps) in &tables {
        println!("\n== {label}: median latency (and Aurora's CPU per operation) at 1%, 10%, 100% of the data");
        let Some((_, first)) = steps.first() else { continue };
        for line in first {
            let at: Vec<&Line> =
                steps.iter().filter_map(|(_, lines)| lines.iter().find(|other| other.name == line.name)).collect();
            let cells: Vec<String> =
                at.iter().map(|l| format!("{:>8.2} ms ({:>6.0} µs)", l.p50_ms, l.cpu_us)).collect();
            let growth = at.last().map_or(0.0, |last| last.p50_ms / line.p50_ms);
            println!("{:<22} {}   100%/1%: {growth:.2}×", line.name, cells.join("  "));
        }
    }
    Ok(())
}

/// Signs up `count` accounts named `<prefix><n>` from `first` on, a few at a time.
async fn create_accounts(
    client: &reqwest::Client,
    base: &str,
    first: usize,
    count: usize,
    prefix: &'static str,
) -> Result<Vec<Account>, Failure> {
    let results: Vec<Result<Account, Failure>> = futures_util::stream::iter(first..first + count)
        .map(|n| async move {
            let body = json!({ "handle": format!("{prefix}{n}.test"), "email": format!("{prefix}{n}@example.com"),
                "password": format!("password-{n}") });
            let answer: Value = client
                .post(format!("{base}/xrpc/com.atproto.server.createAccount"))
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            let did = answer["did"].as_str().ok_or_else(|| format!("createAccount: {answer}"))?.to_owned();
            let token = answer["accessJwt"].as_str().ok_or("no token")?.to_owned();
            Ok(Account { did, token })
        })
        .buffer_unordered(FILLERS)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Gives each account its records, in one applyWrites each.
async fn fill_each(client: &reqwest::Client, base: &str, accounts: &[Account]) -> Result<(), Failure> {
    let results: Vec<Result<Value, Failure>> = futures_util::stream::iter(accounts.iter().enumerate())
        .map(|(i, account)| apply(client, base, account, PER_ACCOUNT, i))
        .buffer_unordered(FILLERS)
        .collect()
        .await;
    results.into_iter().try_for_each(|r| r.map(drop))
}

async fn fill(client: &reqwest::Client, base: &str, account: &Account, records: usize) -> Result<(), Failure> {
    let batches: Vec<usize> = (0..records.div_ceil(200)).map(|b| 200.min(records - b * 200)).collect();
    let results: Vec<Result<Value, Failure>> = futures_util::stream::iter(batches.into_iter().enumerate())
        .map(|(b, size)| apply(client, base, account, size, b))
        .buffer_unordered(2)
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(())
}

async fn apply(
    client: &reqwest::Client,
    base: &str,
    account: &Account,
    count: usize,
    tag: usize,
) -> Result<Value, Failure> {
    let writes: Vec<_> = (0..count)
        .map(|i| json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post",
            "value": { "$type": "app.bsky.feed.post", "text": format!("scale {tag}-{i}"), "createdAt": "2024-05-01T12:00:00.000Z" } }))
        .collect();
    let response = client
        .post(format!("{base}/xrpc/com.atproto.repo.applyWrites"))
        .bearer_auth(&account.token)
        .json(&json!({ "repo": account.did, "writes": writes }))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("applyWrites failed: {}", response.text().await?).into());
    }
    Ok(response.json().await?)
}

/// A cheap, repeatable pick of `n` accounts spread over all of them.
fn spread(accounts: &[Account], n: usize) -> impl Iterator<Item = &Account> {
    (0..n).map(move |i| &accounts[(i * 7919 + 13) % accounts.len()])
}

async fn measure(
    client: &reqwest::Client,
    base: &str,
    accounts: &[Account],
    whale: &Account,
    whale_records: usize,
) -> Result<(), Failure> {
    // The filling is not the measured operations' cost.
    crate::cpu_from_now();
    let mut create = Stats { name: "createRecord", samples: Vec::new(), wall: Duration::ZERO };
    let mut written = Vec::new();
    let wall = Instant::now();
    for (i, account) in spread(accounts, 200).enumerate() {
        let body = json!({ "repo": account.did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": format!("measured {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
        let t = Instant::now();
        let answer: Value = client
            .post(format!("{base}/xrpc/com.atproto.repo.createRecord"))
            .bearer_auth(&account.token)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        create.samples.push(t.elapsed());
        let uri = answer["uri"].as_str().ok_or_else(|| format!("createRecord: {answer}"))?;
        written.push((account.did.clone(), uri.rsplit('/').next().unwrap_or_default().to_owned()));
    }
    create.wall = wall.elapsed();
    create.report();

    let mut get = Stats { name: "getRecord", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for _ in 0..3 {
        for (did, rkey) in &written {
            let t = Instant::now();
            let response = client
                .get(format!(
                    "{base}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"
                ))
                .send()
                .await?;
            if !response.status().is_success() {
                return Err(format!("getRecord: {}", response.status()).into());
            }
            response.bytes().await?;
            get.samples.push(t.elapsed());
        }
    }
    get.wall = wall.elapsed();
    get.report();

    let mut list = Stats { name: "listRecords 50", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for account in spread(accounts, 300) {
        let t = Instant::now();
        client
            .get(format!(
                "{base}/xrpc/com.atproto.repo.listRecords?repo={}&collection=app.bsky.feed.post&limit=50",
                account.did
            ))
            .send()
            .await?
            .bytes()
            .await?;
        list.samples.push(t.elapsed());
    }
    list.wall = wall.elapsed();
    list.report();

    let mut export = Stats { name: "getRepo (large)", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    let mut bytes = 0;
    for _ in 0..3 {
        let t = Instant::now();
        bytes = client
            .get(format!("{base}/xrpc/com.atproto.sync.getRepo?did={}", whale.did))
            .send()
            .await?
            .bytes()
            .await?
            .len();
        export.samples.push(t.elapsed());
    }
    export.wall = wall.elapsed();
    export.report();
    println!(
        "  = {whale_records} records, {:.1} MiB: {:.2} µs per record",
        bytes as f64 / 1048576.0,
        export.quantile(0.5).as_secs_f64() * 1e6 / whale_records.max(1) as f64
    );

    backfill(base).await
}

/// Reads the whole firehose from cursor 0: until a second passes with no frame.
async fn backfill(base: &str) -> Result<(), Failure> {
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos?cursor=0", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    let started = Instant::now();
    let mut count: u64 = 0;
    let mut last = started;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(1), socket.next()).await {
        count += 1;
        last = Instant::now();
    }
    let took = last.duration_since(started);
    let mut stats =
        Stats { name: "firehose backfill", samples: vec![took / count.max(1) as u32; count as usize], wall: took };
    stats.report();
    println!("  = {count} events from cursor 0 in {:.2} s", took.as_secs_f64());
    Ok(())
}
