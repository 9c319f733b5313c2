//! A large repository import against the server binary: the CAR is staged on disk and walked
//! block by block, so the server's memory does not grow with the repository's size, and other
//! accounts go on writing meanwhile.

// Shared with the api tests.
#[allow(dead_code)]
#[path = "support/binary.rs"]
mod binary;
#[allow(dead_code)]
#[path = "api/plc_double.rs"]
mod plc_double;

use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_repository_imports_with_bounded_memory() {
    let plc = plc_double::PlcDouble::start().await;
    let data = tempfile::tempdir().expect("temp dir");
    let port = binary::free_port();
    let base = format!("http://127.0.0.1:{port}");
    // Batches of 200 two-kilobyte records are larger than a JSON body may be by default.
    let bodies = [("AURORA_JSON_BODY_LIMIT", (1024 * 1024).to_string())];
    let mut server = binary::start(data.path(), port, &plc.url, &bodies).await;
    let pid = server.id().expect("pid");
    let client = reqwest::Client::new();
    let account = binary::create_account(&base, "hoard").await;
    let token = account["accessJwt"].as_str().expect("token");
    let did = account["did"].as_str().expect("did");

    // 10,000 records of 2 KB each, unvalidated (the padding is no post field).
    let pad = "p".repeat(2_000);
    for batch in 0..50 {
        let writes: Vec<Value> = (0..200)
            .map(|i| {
                json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.hoard",
                "value": { "$type": "com.example.hoard", "n": batch * 200 + i, "pad": pad } })
            })
            .collect();
        let response = client
            .post(format!("{base}/xrpc/com.atproto.repo.applyWrites"))
            .bearer_auth(token)
            .json(&json!({ "repo": did, "writes": writes, "validate": false }))
            .send()
            .await
            .expect("applyWrites");
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    }
    let car = client
        .get(format!("{base}/xrpc/com.atproto.sync.getRepo?did={did}"))
        .send()
        .await
        .expect("getRepo")
        .bytes()
        .await
        .expect("CAR");
    assert!(car.len() > 20_000_000, "a {} byte CAR", car.len());
    let before = binary::peak_rss_kib(pid);

    // Another account keeps writing throughout: its commits go in between the import's short
    // transactions rather than fail or wait for all of it.
    let other = binary::create_account(&base, "busy").await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, base, done) = (client.clone(), base.clone(), done.clone());
        let token = other["accessJwt"].as_str().expect("token").to_owned();
        let did = other["did"].as_str().expect("did").to_owned();
        tokio::spawn(async move {
            let mut written = 0;
            let mut slowest = std::time::Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
                    "$type": "app.bsky.feed.post", "text": "meanwhile", "createdAt": "2024-05-01T12:00:00.000Z" } });
                let response = client
                    .post(format!("{base}/xrpc/com.atproto.repo.createRecord"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("createRecord");
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
                written += 1;
                slowest = slowest.max(started.elapsed());
            }
            (written, slowest)
        })
    };

    let response = client
        .post(format!("{base}/xrpc/com.atproto.repo.importRepo"))
        .bearer_auth(token)
        .header("content-type", "application/vnd.ipld.car")
        .body(car.clone())
        .send()
        .await
        .expect("importRepo");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    let after = binary::peak_rss_kib(pid);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (written, slowest) = writer.await.expect("the other account's writes all succeeded");
    assert!(written > 0);
    println!("the slowest of {written} writes by another account during the import took {slowest:?}");
    // Staged in short transactions, the import lets other accounts' commits in between (about
    // 60 ms at worst in a debug build); as one transaction it held them for 700 ms.
    assert!(slowest < std::time::Duration::from_millis(400), "another account's write waited {slowest:?}");
    let (status, listed): (u16, Value) = {
        let url = format!("{base}/xrpc/com.atproto.repo.listRecords?repo={did}&collection=com.example.hoard&limit=1");
        let response = client.get(url).send().await.expect("listRecords");
        (response.status().as_u16(), response.json().await.expect("json"))
    };
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["records"][0]["value"]["n"], 9_999, "the newest record came through: {listed}");
    let _ = server.kill().await;

    let growth_mib = after.saturating_sub(before) / 1024;
    println!("peak RSS {before} KiB before, {after} KiB after importing a {} byte repository", car.len());
    // Held in memory, the CAR alone would be 20 MB, and its parsed blocks as much again (a
    // 5.8 MB CAR once grew the peak by 48 MiB). What remains is the index of blocks, the chunks
    // in flight and the database connection's page cache through a 20 MB transaction.
    assert!(growth_mib < 32, "peak memory grew by {growth_mib} MiB for a 20 MB import ({before} → {after} KiB)");
}
