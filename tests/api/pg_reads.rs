//! The reads PostgreSQL serves on connections kept out of the pool (`db::PgReader`): a
//! connection is kept between reads, survives an error of its statement's own, and one that
//! was cancelled or that the server ended is not used again, without failing a read.

use std::time::Duration;

use aurora_locus::db::{PgReader, Reader};
use sea_orm::sea_query::Values;
use sea_orm::sqlx::Row;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::helpers::{Backend, TestApp};

/// The server process behind the connection a read runs on.
async fn backend_pid(reader: &PgReader) -> i32 {
    let row = reader.fetch_optional("SELECT pg_backend_pid()", Values(Vec::new())).await.expect("read").expect("a row");
    row.try_get::<i32, _>(0).expect("a pid")
}

/// Ends the server process `pid` from one of the pool's connections, and waits until it is gone.
async fn terminate(app: &TestApp, pid: i32) {
    let terminate =
        Statement::from_sql_and_values(DbBackend::Postgres, "SELECT pg_terminate_backend($1)", [pid.into()]);
    app.ctx.db.execute(terminate).await.expect("terminate");
    for _ in 0..100 {
        let alive = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            [pid.into()],
        );
        let row = app.ctx.db.query_one(alive).await.expect("activity").expect("a row");
        if row.try_get_by_index::<i64>(0).expect("count") == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("backend {pid} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_keep_their_connection_and_replace_one_that_ended() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[]).await else { return };
    let Some(Reader::Postgres(reader)) = app.ctx.reader.as_deref() else {
        panic!("a server on PostgreSQL reads on its own connections")
    };

    let first = backend_pid(reader).await;
    assert_eq!(backend_pid(reader).await, first, "a read's connection is kept for the next");

    let failed = reader.fetch_optional("SELECT 1 / 0", Values(Vec::new())).await;
    assert!(failed.is_err(), "the statement's own error is the read's");
    assert_eq!(backend_pid(reader).await, first, "kept after an error of its statement's own");

    // A read cancelled while the server works does not give its connection back half read:
    // the next reads answer their own statements, on another connection.
    let slow = reader.fetch_optional("SELECT pg_sleep(2)", Values(Vec::new()));
    assert!(tokio::time::timeout(Duration::from_millis(200), slow).await.is_err(), "cancelled");
    let after_cancel = backend_pid(reader).await;
    assert_ne!(after_cancel, first, "the cancelled read's connection is not reused");
    let row = reader.fetch_optional("SELECT 'answer'::text", Values(Vec::new())).await.expect("read").expect("row");
    assert_eq!(row.try_get::<String, _>(0).expect("text"), "answer");

    // The server ends the kept connection (a restart, an administrator): the read that finds it
    // ended runs on a new one and succeeds.
    terminate(&app, after_cancel).await;
    let replaced = backend_pid(reader).await;
    assert_ne!(replaced, after_cancel, "a new connection");
    assert_eq!(backend_pid(reader).await, replaced, "and that one is kept");

    // Through the server: a record read after its reader's connection was ended.
    let account = app.create_account("pgreads").await;
    let (did, token) = (account["did"].as_str().expect("did"), account["accessJwt"].as_str().expect("jwt"));
    let created = app
        .client
        .post(format!("{}/xrpc/com.atproto.repo.createRecord", app.url))
        .bearer_auth(token)
        .json(&serde_json::json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": "kept", "createdAt": "2024-05-01T12:00:00.000Z" } }))
        .send()
        .await
        .expect("createRecord");
    assert_eq!(created.status(), 200);
    let uri = created.json::<serde_json::Value>().await.expect("json")["uri"].as_str().expect("uri").to_owned();
    let rkey = uri.rsplit('/').next().expect("rkey");
    let get = || {
        app.client
            .get(format!("{}/xrpc/com.atproto.repo.getRecord", app.url))
            .query(&[("repo", did), ("collection", "app.bsky.feed.post"), ("rkey", rkey)])
            .send()
    };
    assert_eq!(get().await.expect("getRecord").status(), 200);
    terminate(&app, backend_pid(reader).await).await;
    let response = get().await.expect("getRecord");
    assert_eq!(response.status(), 200, "read on a new connection");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["value"]["text"], "kept");
}
