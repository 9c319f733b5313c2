//! Backup under load, restore into another data directory, verify, and compare with the source.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, PNG};

fn post(text: &str) -> serde_json::Value {
    json!({ "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_and_verifies_whole() {
    let source = TestApp::spawn(Backend::Sqlite).await.expect("app");
    // A settled account with records and an image, and one that keeps writing meanwhile.
    let still = source.create_account("stillwater").await;
    let (still_did, still_token) =
        (still["did"].as_str().expect("did").to_owned(), still["accessJwt"].as_str().expect("jwt").to_owned());
    let blob = source.upload_blob(&still_token, PNG, "image/png").await;
    let cid = blob["ref"]["$link"].as_str().expect("cid").to_owned();
    let mut record = post("with a picture");
    record["embed"] = json!({ "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": blob }] });
    let body = json!({ "repo": still_did, "collection": "app.bsky.feed.post", "record": record });
    let (status, answer) =
        source.call(Method::POST, "com.atproto.repo.createRecord", Some(&still_token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    for i in 0..5 {
        let body =
            json!({ "repo": still_did, "collection": "app.bsky.feed.post", "record": post(&format!("still {i}")) });
        assert_eq!(
            source.call(Method::POST, "com.atproto.repo.createRecord", Some(&still_token), Some(&body)).await.0,
            200
        );
    }
    let busy = source.create_account("busybee").await;
    let (busy_did, busy_token) =
        (busy["did"].as_str().expect("did").to_owned(), busy["accessJwt"].as_str().expect("jwt").to_owned());
    let (stop, writer) = keep_writing(&source, &busy_did, &busy_token);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let dir = tempfile::tempdir().expect("backup dir");
    let manifest = aurora_locus::backup::backup(&source.ctx.config, dir.path()).await.expect("backup");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(written > 3, "writes went on during the backup ({written})");
    assert_eq!((manifest.repositories, manifest.blob_files), (2, 1), "{manifest:?}");
    // A second backup into the same directory copies no blob again.
    let again = aurora_locus::backup::backup(&source.ctx.config, dir.path()).await.expect("backup again");
    assert_eq!(again.blob_files_copied, 0);

    let target = tempfile::tempdir().expect("restore dir");
    let database_url = format!("sqlite://{}?mode=rwc", target.path().join("aurora.sqlite").display());
    let data_dir = target.path().display().to_string();
    let settings = [
        ("PDS_DATA_DIRECTORY", data_dir.as_str()),
        ("AURORA_DATABASE_URL", database_url.as_str()),
        ("PDS_DEV_MODE", "true"),
    ];
    let config = aurora_locus::config::Config::from_source(
        &settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<std::collections::BTreeMap<_, _>>(),
    )
    .expect("config");
    aurora_locus::backup::restore(&config, dir.path()).expect("restore");
    let refused = aurora_locus::backup::restore(&config, dir.path()).expect_err("only into an empty directory");
    assert!(refused.to_string().contains("empty data directory"), "{refused}");

    let restored = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("restored app");
    let report = aurora_locus::backup::verify(&restored.ctx).await.expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.repositories, report.blobs), (2, 1));

    // The settled account is exactly as it was; the busy one as it was at some moment.
    assert_eq!(latest_commit(&restored, &still_did).await, latest_commit(&source, &still_did).await);
    let (restored_busy, source_busy) =
        (latest_commit(&restored, &busy_did).await, latest_commit(&source, &busy_did).await);
    assert!(restored_busy["rev"].as_str() <= source_busy["rev"].as_str(), "{restored_busy} vs {source_busy}");
    let response = restored.get(&format!("/xrpc/com.atproto.sync.getBlob?did={still_did}&cid={cid}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);

    // And verify notices damage: a blob's bytes changed behind the server's back.
    let typed: cid::Cid = cid.parse().expect("cid");
    let aurora_locus::blobs::Blobs::Disk(disk) = &restored.ctx.blobs else { panic!("blobs on disk") };
    let path = disk.blob_path(&crate::helpers::typed_did(&still_did), &typed);
    std::fs::write(&path, b"not the picture").expect("damage");
    let report = aurora_locus::backup::verify(&restored.ctx).await.expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("do not match its CID"));
}

/// Writes posts to `did`'s repository until told to stop; how many it wrote.
fn keep_writing(app: &TestApp, did: &str, token: &str) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (url, client, until) = (app.xrpc("com.atproto.repo.createRecord"), app.client.clone(), stop.clone());
    let (did, token) = (did.to_owned(), token.to_owned());
    let writer = tokio::spawn(async move {
        let mut written = 0;
        while !until.load(Ordering::Relaxed) {
            let body =
                json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post(&format!("busy {written}")) });
            let response = client.post(&url).bearer_auth(&token).json(&body).send().await.expect("write");
            assert_eq!(response.status(), 200);
            written += 1;
        }
        written
    });
    (stop, writer)
}

async fn latest_commit(app: &TestApp, did: &str) -> serde_json::Value {
    app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_taken_under_load_restores_into_an_empty_database_and_verifies_whole() {
    let Ok(base) = std::env::var("AURORA_TEST_POSTGRES_URL") else {
        println!("SKIPPED (PostgreSQL): AURORA_TEST_POSTGRES_URL is not set");
        return;
    };
    let source = TestApp::spawn(Backend::Postgres).await.expect("app");
    let still = source.create_account("pgstill").await;
    let (still_did, still_token) =
        (still["did"].as_str().expect("did").to_owned(), still["accessJwt"].as_str().expect("jwt").to_owned());
    let blob = source.upload_blob(&still_token, PNG, "image/png").await;
    let mut record = post("with a picture");
    record["embed"] = json!({ "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": blob }] });
    let body = json!({ "repo": still_did, "collection": "app.bsky.feed.post", "record": record });
    assert_eq!(
        source.call(Method::POST, "com.atproto.repo.createRecord", Some(&still_token), Some(&body)).await.0,
        200
    );
    let busy = source.create_account("pgbusy").await;
    let (busy_did, busy_token) =
        (busy["did"].as_str().expect("did").to_owned(), busy["accessJwt"].as_str().expect("jwt").to_owned());
    let (stop, writer) = keep_writing(&source, &busy_did, &busy_token);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().expect("backup dir");
    let manifest = aurora_locus::backup::backup(&source.ctx.config, dir.path()).await.expect("backup");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    assert!(writer.await.expect("writer") > 3, "writes went on during the backup");
    assert_eq!((manifest.repositories, manifest.blob_files), (2, 1), "{manifest:?}");
    assert!(dir.path().join("aurora.pgdump").exists());

    // Into a new, empty database and data directory.
    let name = format!("aurora_test_{}", crate::helpers::random_suffix());
    crate::helpers::create_database(&base, &name).await;
    let database_url = crate::helpers::database_url_for(&base, &name);
    let target = tempfile::tempdir().expect("restore dir");
    let data_dir = target.path().display().to_string();
    let settings = [
        ("PDS_DATA_DIRECTORY", data_dir.as_str()),
        ("AURORA_DATABASE_URL", database_url.as_str()),
        ("PDS_DEV_MODE", "true"),
    ];
    let config = aurora_locus::config::Config::from_source(
        &settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<std::collections::BTreeMap<_, _>>(),
    )
    .expect("config");
    aurora_locus::backup::restore(&config, dir.path()).expect("restore");
    let refused = aurora_locus::backup::restore(&config, dir.path()).expect_err("only into an empty database");
    assert!(refused.to_string().contains("empty database"), "{refused}");

    let restored = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("restored app");
    let report = aurora_locus::backup::verify(&restored.ctx).await.expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.repositories, report.blobs, report.events as i64), (2, 1, manifest.head_seq));
    assert_eq!(latest_commit(&restored, &still_did).await, latest_commit(&source, &still_did).await);
    let (restored_busy, source_busy) =
        (latest_commit(&restored, &busy_did).await, latest_commit(&source, &busy_did).await);
    assert!(restored_busy["rev"].as_str() <= source_busy["rev"].as_str(), "{restored_busy} vs {source_busy}");
    let cid = blob["ref"]["$link"].as_str().expect("cid");
    let response = restored.get(&format!("/xrpc/com.atproto.sync.getBlob?did={still_did}&cid={cid}")).await;
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
    drop(restored);
    crate::helpers::drop_database(&base, &name).await;
}
