//! Two replicas — two server processes on one PostgreSQL database, one S3-compatible bucket
//! and (when configured) one Redis — behind no load balancer but the test, which alternates
//! between them. Writes to one repository from both stay serialised; each replica's
//! `subscribeRepos` consumer sees the same gap-free sequence, with every acknowledged commit;
//! a commit acknowledged by one replica reaches the other's live consumers promptly (p95 under
//! 250 ms, measured); and killing one replica (SIGKILL) loses no acknowledged write while the
//! other keeps serving.

#[allow(dead_code)]
#[path = "support/binary.rs"]
mod binary;
#[allow(dead_code)]
#[path = "api/plc_double.rs"]
mod plc_double;
#[allow(dead_code)]
#[path = "api/s3_server.rs"]
mod s3_server;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurora_atproto::data::{ipld_to_json, Ipld};
use futures_util::StreamExt;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// What a consumer saw: each frame's seq, type and commit CID, with when it arrived.
#[derive(Default)]
struct Seen {
    frames: Vec<(i64, String, Option<String>, Instant)>,
    /// Each `#commit`'s `since`: the revision it was built on.
    since: Vec<String>,
}

/// Follows `base`'s firehose live, recording every frame.
async fn follow(base: String, seen: Arc<Mutex<Seen>>) {
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("websocket");
    while let Some(Ok(message)) = socket.next().await {
        let Message::Binary(bytes) = message else { continue };
        let at = Instant::now();
        let mut reader = &bytes[..];
        let header: Ipld = serde_ipld_dagcbor::de::from_reader_once(&mut reader).expect("header");
        let body: Ipld = serde_ipld_dagcbor::de::from_reader_once(&mut reader).expect("body");
        let (header, body) = (ipld_to_json(&header).expect("json"), ipld_to_json(&body).expect("json"));
        let kind = header["t"].as_str().unwrap_or("error").to_owned();
        let commit = body["commit"]["$link"].as_str().map(str::to_owned);
        let mut seen = seen.lock().expect("seen");
        if kind == "#commit" {
            seen.since.push(body["since"].as_str().unwrap_or("none").to_owned());
        }
        seen.frames.push((body["seq"].as_i64().unwrap_or(-1), kind, commit, at));
    }
}

async fn create_record(client: &reqwest::Client, base: &str, token: &str, did: &str, text: &str) -> Option<Value> {
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" } });
    let response = client
        .post(format!("{base}/xrpc/com.atproto.repo.createRecord"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = response.status();
    let answer: Value = response.json().await.ok()?;
    assert!(status.is_success() || status.is_server_error(), "{status}: {answer}");
    if !status.is_success() {
        println!("{base} answered {status}: {answer}");
        return None;
    }
    Some(answer)
}

/// Waits until `seen` holds a commit with each of `cids`.
const ADMIN_PASSWORD: &str = "replicas-admin-password";

/// Applies or lifts a takedown of `did` through the admin API of `base`.
async fn take_down(client: &reqwest::Client, base: &str, did: &str, applied: bool) {
    let body = json!({ "subject": { "$type": "com.atproto.admin.defs#repoRef", "did": did },
        "takedown": { "applied": applied, "ref": "replicas test" } });
    let response = client
        .post(format!("{base}/xrpc/com.atproto.admin.updateSubjectStatus"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&body)
        .send()
        .await
        .expect("updateSubjectStatus");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn wait_for(seen: &Mutex<Seen>, cids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let missing = {
            let seen = seen.lock().expect("seen");
            cids.iter().filter(|cid| !seen.frames.iter().any(|f| f.2.as_deref() == Some(cid.as_str()))).count()
        };
        if missing == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{missing} acknowledged commits never reached a consumer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn seqs(seen: &Mutex<Seen>) -> Vec<i64> {
    seen.lock().expect("seen").frames.iter().map(|f| f.0).collect()
}

fn assert_gap_free(seqs: &[i64], who: &str) {
    assert!(!seqs.is_empty(), "{who} saw nothing");
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{who}'s firehose is not gap-free: {seqs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_one_set_of_repositories_with_one_exact_firehose() {
    let Ok(postgres) = std::env::var("AURORA_TEST_POSTGRES_URL") else {
        println!("SKIPPED (replicas): AURORA_TEST_POSTGRES_URL is not set");
        return;
    };
    let Some(s3) = s3_server::S3Server::start() else { return };
    let name = format!("aurora_replicas_{}", std::process::id());
    let admin = sea_orm::Database::connect(&postgres).await.expect("PostgreSQL");
    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}")).await;
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let mut database_url = url::Url::parse(&postgres).expect("URL");
    database_url.set_path(&name);

    let plc = plc_double::PlcDouble::start().await;
    let mut shared: Vec<(&str, String)> = s3.settings();
    shared.push(("AURORA_DATABASE_URL", database_url.to_string()));
    shared.push(("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()));
    if let Ok(redis) = std::env::var("AURORA_TEST_REDIS_URL") {
        shared.push(("PDS_REDIS_SCRATCH_ADDRESS", redis));
    }
    let (dir_a, dir_b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (port_a, port_b) = (binary::free_port(), binary::free_port());
    let mut replica_a = binary::start(dir_a.path(), port_a, &plc.url, &shared).await;
    // Every replica is configured with the same secrets.
    std::fs::copy(dir_a.path().join("dev-secrets.env"), dir_b.path().join("dev-secrets.env")).expect("secrets");
    let _replica_b = binary::start(dir_b.path(), port_b, &plc.url, &shared).await;
    let (a, b) = (format!("http://127.0.0.1:{port_a}"), format!("http://127.0.0.1:{port_b}"));
    let replicas = [a.clone(), b.clone()];

    let (seen_a, seen_b) = (Arc::new(Mutex::new(Seen::default())), Arc::new(Mutex::new(Seen::default())));
    tokio::spawn(follow(a.clone(), seen_a.clone()));
    tokio::spawn(follow(b.clone(), seen_b.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = reqwest::Client::new();
    let account = binary::create_account(&a, "rita").await;
    let token = account["accessJwt"].as_str().expect("token").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();

    // Alternating, one at a time: each acknowledged commit is timed to the other's consumer.
    let mut acknowledged: Vec<(usize, String, Instant)> = Vec::new();
    for i in 0..40 {
        let on = i % 2;
        let answer =
            create_record(&client, &replicas[on], &token, &did, &format!("alternate {i}")).await.expect("write");
        acknowledged.push((on, answer["commit"]["cid"].as_str().expect("commit").to_owned(), Instant::now()));
    }
    // A blob uploaded through one replica is claimed through the other and served by both.
    let bytes = b"shared through the bucket".to_vec();
    let uploaded: Value = client
        .post(format!("{a}/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(bytes.clone())
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let file = json!({ "repo": did, "collection": "org.example.file", "validate": false,
        "record": { "$type": "org.example.file", "file": uploaded["blob"] } });
    let response = client
        .post(format!("{b}/xrpc/com.atproto.repo.createRecord"))
        .bearer_auth(&token)
        .json(&file)
        .send()
        .await
        .expect("claim");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let cid = uploaded["blob"]["ref"]["$link"].as_str().expect("cid");
    for base in &replicas {
        let served = client
            .get(format!("{base}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"))
            .send()
            .await
            .expect("getBlob");
        assert_eq!(served.bytes().await.expect("bytes").as_ref(), bytes.as_slice(), "served by {base}");
    }

    // Both at once, to the same repository.
    let mut racers = Vec::new();
    for (on, base) in replicas.iter().enumerate() {
        let (client, base, token, did) = (client.clone(), base.clone(), token.clone(), did.clone());
        racers.push(tokio::spawn(async move {
            let mut cids = Vec::new();
            for i in 0..15 {
                let answer = create_record(&client, &base, &token, &did, &format!("race {on} {i}")).await;
                cids.push(answer.expect("a racing write succeeds")["commit"]["cid"].as_str().expect("cid").to_owned());
            }
            cids
        }));
    }
    let mut all: Vec<String> = acknowledged.iter().map(|(_, cid, _)| cid.clone()).collect();
    for racer in racers {
        all.extend(racer.await.expect("racer"));
    }
    wait_for(&seen_a, &all).await;
    wait_for(&seen_b, &all).await;
    let (from_a, from_b) = (seqs(&seen_a), seqs(&seen_b));
    assert_gap_free(&from_a, "replica A");
    assert_eq!(from_a, from_b, "both replicas' consumers see one sequence");
    // One chain of commits: a commit refused because the other replica moved the repository
    // first left no event behind (it would share its `since` with the commit that won), and
    // every commit seen was acknowledged (beside sign-up's and the blob claim's).
    let since = seen_a.lock().expect("seen").since.clone();
    let distinct: std::collections::BTreeSet<&String> = since.iter().collect();
    assert_eq!(distinct.len(), since.len(), "two commits were built on one revision: {since:?}");
    assert_eq!(since.len(), all.len() + 2, "commits seen against commits acknowledged");

    // How long an acknowledged commit took to reach the other replica's consumer.
    let mut latencies: Vec<Duration> = acknowledged
        .iter()
        .map(|(on, cid, acked)| {
            let other = if *on == 0 { &seen_b } else { &seen_a };
            let seen = other.lock().expect("seen");
            let arrived = seen.frames.iter().find(|f| f.2.as_deref() == Some(cid.as_str())).expect("arrived").3;
            arrived.saturating_duration_since(*acked)
        })
        .collect();
    latencies.sort();
    let p95 = latencies[latencies.len() * 95 / 100 - 1];
    println!(
        "cross-replica firehose delivery: p50 {:?}, p95 {:?}, max {:?} over {} commits",
        latencies[latencies.len() / 2],
        p95,
        latencies[latencies.len() - 1],
        latencies.len()
    );
    assert!(p95 < Duration::from_millis(250), "p95 {p95:?}");

    // A takedown through one replica ends the account's sessions on the other at once, not
    // when that replica's few-second cache of the account runs out.
    let session =
        |base: &str| client.get(format!("{base}/xrpc/com.atproto.server.getSession")).bearer_auth(&token).send();
    assert_eq!(session(&b).await.expect("getSession").status(), 200);
    take_down(&client, &a, &did, true).await;
    // Until B hears, its gate lets the token through and getSession itself finds no active
    // account; once it has, the gate refuses the session as taken down.
    let started = Instant::now();
    loop {
        let answer = session(&b).await.expect("getSession");
        let status = answer.status();
        let body: Value = answer.json().await.expect("json");
        if body["error"] == "AccountTakedown" {
            break;
        }
        assert!(started.elapsed() < Duration::from_millis(250), "B's gate still passes a taken-down account: {body}");
        assert_ne!(status, 200, "B serves a taken-down account's session: {body}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("a takedown through A reached B's session checks in {:?}", started.elapsed());
    take_down(&client, &a, &did, false).await;
    assert_eq!(session(&b).await.expect("getSession").status(), 200, "the takedown is lifted on B too");

    // Kill A in the middle of writes to both; every acknowledged write survives on B.
    let mut writers = Vec::new();
    for (on, base) in replicas.iter().enumerate() {
        let (client, base, token, did) = (client.clone(), base.clone(), token.clone(), did.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                match create_record(&client, &base, &token, &did, &format!("kill {on} {i}")).await {
                    Some(answer) => acked.push(answer["uri"].as_str().expect("uri").to_owned()),
                    None if on == 0 => break,
                    None => panic!("replica B refused a write"),
                }
                if on == 1 && i >= 60 {
                    break;
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    replica_a.start_kill().expect("kill A");
    let _ = replica_a.wait().await;
    let mut uris = Vec::new();
    for writer in writers {
        uris.extend(writer.await.expect("writer"));
    }
    for uri in &uris {
        let rkey = uri.rsplit('/').next().expect("rkey");
        let response = client
            .get(format!("{b}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"))
            .send()
            .await
            .expect("getRecord");
        assert_eq!(response.status(), 200, "an acknowledged write is lost: {uri}");
    }
    let after = create_record(&client, &b, &token, &did, "after the kill").await.expect("B keeps serving");
    wait_for(&seen_b, &[after["commit"]["cid"].as_str().expect("cid").to_owned()]).await;
    assert_gap_free(&seqs(&seen_b), "replica B after the kill");
    let listed: Value = client
        .get(format!("{b}/xrpc/com.atproto.sync.listRepos"))
        .send()
        .await
        .expect("listRepos")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["repos"][0]["head"], after["commit"]["cid"], "{listed}");
    println!("{} writes acknowledged around the kill, all found on the surviving replica", uris.len());
    // The database goes with the run (the surviving replica's connections ended by force).
    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
}
