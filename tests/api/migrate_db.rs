//! `aurora-locus migrate-db`: a SQLite server's database copied into PostgreSQL serves the same
//! accounts, repositories, blobs and sessions, and its firehose goes on from where it was.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, PNG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_server_moves_to_postgresql_whole() {
    let Ok(base) = std::env::var("AURORA_TEST_POSTGRES_URL") else {
        println!("SKIPPED (PostgreSQL): AURORA_TEST_POSTGRES_URL is not set");
        return;
    };
    let source = TestApp::spawn(Backend::Sqlite).await.expect("app");
    let alice = source.create_account("alma").await;
    let (did, token) =
        (alice["did"].as_str().expect("did").to_owned(), alice["accessJwt"].as_str().expect("jwt").to_owned());
    let blob = source.upload_blob(&token, PNG, "image/png").await;
    let mut record =
        json!({ "$type": "app.bsky.feed.post", "text": "moving", "createdAt": "2024-05-01T12:00:00.000Z" });
    record["embed"] = json!({ "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": blob }] });
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": record });
    let (status, created) = source.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
    assert_eq!(status, 200, "{created}");
    let prefs = json!({ "preferences": [{ "$type": "app.bsky.actor.defs#adultContentPref", "enabled": true }] });
    assert_eq!(source.call(Method::POST, "app.bsky.actor.putPreferences", Some(&token), Some(&prefs)).await.0, 200);
    let other = source.create_account("bruno").await;
    let before = (latest(&source, &did).await, latest(&source, other["did"].as_str().expect("did")).await);
    let head_before = source.get_json("/xrpc/com.atproto.sync.listRepos").await.1;

    let name = format!("aurora_test_{}", crate::helpers::random_suffix());
    crate::helpers::create_database(&base, &name).await;
    let url = crate::helpers::database_url_for(&base, &name);
    let copied = aurora_locus::migrate_db::migrate(&source.ctx.db, &url).await.expect("migrate");
    let rows = |table: &str| copied.iter().find(|c| c.table == table).map(|c| c.rows);
    assert_eq!(rows("actor"), Some(2));
    assert_eq!(rows("record"), Some(1));
    assert!(rows("repo_block").is_some_and(|n| n > 4) && rows("repo_seq").is_some_and(|n| n > 2), "{copied:?}");
    let again = aurora_locus::migrate_db::migrate(&source.ctx.db, &url).await.expect_err("only into an empty database");
    assert!(again.to_string().contains("already holds accounts"), "{again}");

    // The same data directory (blobs, secrets) with the PostgreSQL database, the SQLite
    // server's directory kept until the end of the test.
    let data_dir = source.ctx.config.data_dir.display().to_string();
    let settings = [("AURORA_DATABASE_URL", url.as_str()), ("PDS_DATA_DIRECTORY", data_dir.as_str())];
    let target = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("the server on PostgreSQL");
    let after = (latest(&target, &did).await, latest(&target, other["did"].as_str().expect("did")).await);
    assert_eq!(after, before);
    assert_eq!(target.get_json("/xrpc/com.atproto.sync.listRepos").await.1, head_before);
    let report = aurora_locus::backup::verify(&target.ctx).await.expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.repositories, report.blobs), (2, 1));
    let path = format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={}", blob["ref"]["$link"].as_str().expect("cid"));
    assert_eq!(target.get(&path).await.bytes().await.expect("blob").as_ref(), PNG);

    // Sessions, passwords and preferences came along; new writes continue the firehose.
    let (status, prefs_after) = target.call(Method::GET, "app.bsky.actor.getPreferences", Some(&token), None).await;
    assert_eq!((status, &prefs_after["preferences"]), (200, &prefs["preferences"]));
    let login = json!({ "identifier": "alma.test", "password": "alma-password" });
    let (status, session) = target.call(Method::POST, "com.atproto.server.createSession", None, Some(&login)).await;
    assert_eq!(status, 200, "{session}");
    let seq_before = aurora_locus::admin::overview::totals(&target.ctx.db).await.expect("totals").head_seq;
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "moved", "createdAt": "2024-05-01T12:00:00.000Z" } });
    let (status, answer) = target.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let seq_after = aurora_locus::admin::overview::totals(&target.ctx.db).await.expect("totals").head_seq;
    assert_eq!(seq_after, seq_before + 1, "numbering goes on from the copied events");
    drop(target);
    // (The source's directory, which the target shared, goes last.)
    drop(source);
    crate::helpers::drop_database(&base, &name).await;
}

async fn latest(app: &TestApp, did: &str) -> serde_json::Value {
    app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await.1
}
