//! What operators' infrastructure asks the server: liveness and readiness for orchestrators and
//! load balancers, and `/tls-check` for a TLS proxy ordering certificates on demand.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

app_test!(a_ready_server_says_so_and_names_each_check, |app| {
    let (status, body) = app.get_json("/livez").await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["blob store"], "ok");
    assert_eq!(body["checks"]["background jobs"], "ok");
    if app.backend == Backend::Sqlite {
        assert_eq!(body["checks"]["sqlite writer and log sync"], "ok");
    }
});

#[tokio::test]
async fn readiness_fails_with_the_disk_below_its_floor_and_says_why() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("AURORA_MIN_FREE_DISK", "1000000000000000000")]).await.expect("app");
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], json!(["disk space"]));
    assert!(body["checks"]["disk space"].as_str().is_some_and(|s| s.contains("below the floor")), "{body}");
    // Liveness is unaffected: the process itself is fine.
    assert_eq!(app.get_json("/livez").await.0, 200);
}

app_test!(tls_certificates_are_allowed_for_this_host_and_its_hosted_handles_only, |app| {
    let hostname = app.ctx.config.hostname.clone();
    let ask = |domain: &str| {
        let path = format!("/tls-check?domain={domain}");
        let app = &app;
        async move { app.get_json(&path).await }
    };
    assert_eq!(ask(&hostname).await.0, 200);
    let account = app.create_account("tess").await;
    assert_eq!(ask("tess.test").await.0, 200);
    assert_eq!(ask("TESS.test").await.0, 200, "names are case-insensitive");
    assert_eq!(ask("nobody.test").await.0, 404);
    let (status, body) = ask("tess.example.com").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "not one of this server's handle domains"
    );
    let (status, body) = app.get_json("/tls-check").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")));
    let _ = account;
});

app_test!(metrics_count_requests_and_read_the_servers_figures, |app| {
    let account = app.create_account("mira").await;
    let body = json!({ "repo": account["did"], "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "counted", "createdAt": "2024-05-01T12:00:00.000Z" } });
    let token = account["accessJwt"].as_str().expect("access");
    let (status, answer) =
        app.call(reqwest::Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = app
        .get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={}", account["did"].as_str().expect("did")))
        .await;
    assert_eq!(status, 200);
    let _ = app.get_json("/xrpc/app.bsky.feed.getTimeline").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200, "loopback may read the metrics");
    assert!(response.headers()["content-type"].to_str().expect("type").starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.expect("text");
    let line = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
    assert_eq!(
        line("aurora_accounts{state=\"active\"}").as_deref(),
        Some("aurora_accounts{state=\"active\"} 1"),
        "{text}"
    );
    assert!(line("aurora_http_requests_total{credential=\"none\",route=\"com.atproto.sync.getLatestCommit\",status=\"200\"} 1").is_some(), "{text}");
    assert!(
        line("aurora_http_requests_total{credential=\"none\",route=\"proxied\",").is_some(),
        "a proxied call counts under one label: {text}"
    );
    assert!(line("aurora_http_request_duration_seconds_bucket{route=\"com.atproto.server.createAccount\"").is_some());
    assert!(line("aurora_firehose_head_seq ").is_some_and(|l| !l.ends_with(" 0")), "{text}");
    assert!(line("aurora_commits_total ").is_some_and(|l| !l.ends_with(" 0")), "the record's commit: {text}");
    if cfg!(target_os = "linux") {
        assert!(line("process_resident_memory_bytes ").is_some(), "process figures: {text}");
    }
});

#[tokio::test]
async fn metrics_move_to_their_own_address_when_one_is_configured() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let bind = format!("127.0.0.1:{port}");
    let app = TestApp::spawn_with(Backend::Sqlite, &[("AURORA_METRICS_BIND", bind.as_str())]).await.expect("app");
    assert_eq!(app.get("/metrics").await.status(), 404, "not on the main address");
    let text = reqwest::get(format!("http://{bind}/metrics")).await.expect("scrape").text().await.expect("text");
    assert!(text.contains("aurora_accounts"), "{text}");
}

app_test!(expired_password_sessions_and_spent_codes_are_swept, |app| {
    use aurora_locus::db::entities::refresh_token;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let account = app.create_account("odin").await;
    let did = account["did"].as_str().expect("did");
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::ExpiresAt, Expr::value("2001-01-01T00:00:00.000Z"))
        .filter(refresh_token::Column::Did.eq(did))
        .exec(&app.ctx.db)
        .await
        .expect("age the session");
    let swept = aurora_locus::jobs::sweep_expired_sessions(&app.ctx.db).await.expect("sweep");
    assert!(swept >= 1, "{swept}");
    let left =
        refresh_token::Entity::find().filter(refresh_token::Column::Did.eq(did)).all(&app.ctx.db).await.expect("rows");
    assert!(left.is_empty(), "{left:?}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_database_upstreams_mail_blobs_limits_and_the_firehose() {
    let double = crate::appview_double::AppViewDouble::start().await;
    let settings = [
        ("PDS_BSKY_APP_VIEW_URL", double.url.as_str()),
        ("PDS_BSKY_APP_VIEW_DID", double.did.as_str()),
        ("PDS_RATE_LIMITS_ENABLED", "true"),
        ("PDS_ADMIN_PASSWORD", "admin-secret"),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app");
    double.use_plc(&app.plc.url);
    let account = app.create_account("metra").await;
    let token = account["accessJwt"].as_str().expect("access");
    let mut firehose = crate::firehose::connect(&app, None).await;
    let blob = app.upload_blob(token, crate::helpers::PNG, "image/png").await;
    let mut record = json!({ "$type": "app.bsky.feed.post", "text": "seen", "createdAt": "2024-05-01T12:00:00.000Z" });
    record["embed"] = json!({ "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": blob }] });
    let body = json!({ "repo": account["did"], "collection": "app.bsky.feed.post", "record": record });
    let (status, answer) =
        app.call(reqwest::Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(crate::firehose::next_frame(&mut firehose).await.is_some(), "the commit reached the consumer");
    let path = format!(
        "/xrpc/com.atproto.sync.getBlob?did={}&cid={}",
        account["did"].as_str().expect("did"),
        blob["ref"]["$link"].as_str().expect("cid")
    );
    assert_eq!(app.get(&path).await.bytes().await.expect("blob").len(), crate::helpers::PNG.len());
    let (status, _) = app.call(reqwest::Method::GET, "app.bsky.feed.getTimeline", Some(token), None).await;
    assert_eq!(status, 200, "forwarded to the AppView double");
    let (status, _) =
        app.call(reqwest::Method::POST, "com.atproto.server.requestEmailConfirmation", Some(token), None).await;
    assert_eq!(status, 200);
    let mut refused = false;
    for _ in 0..32 {
        let response = app
            .client
            .get(app.xrpc("com.atproto.admin.getInviteCodes"))
            .basic_auth("admin", Some("a wrong guess"))
            .send()
            .await
            .expect("request");
        refused |= response.status() == 429;
    }
    assert!(refused, "wrong admin passwords run into their limit");

    let text = app.get("/metrics").await.text().await.expect("text");
    let value = |prefix: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {text}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number")
    };
    assert!(value("aurora_db_statement_duration_seconds_count{kind=\"select\"}") > 0.0);
    assert!(value("aurora_db_pool_connections{state=\"idle\"}") >= 0.0);
    assert!(value("aurora_sqlite_transaction_seconds_count") > 0.0, "commits run on the SQLite writer");
    assert!(value("aurora_sqlite_wal_bytes") > 0.0);
    assert!(text.contains("aurora_sqlite_checkpoints_total"), "{text}");
    assert_eq!(value("aurora_blob_bytes_served_total"), crate::helpers::PNG.len() as f64);
    assert_eq!(value("aurora_proxy_calls_total{status=\"200\",upstream=\"appview\"}"), 1.0, "{text}");
    assert!(value("aurora_proxy_call_duration_seconds_count{upstream=\"appview\"}") >= 1.0);
    assert_eq!(value("aurora_mail_total{outcome=\"sent\"}"), 1.0);
    assert!(value("aurora_rate_limit_refusals_total{limit=\"admin-auth\"}") >= 1.0, "{text}");
    assert!(value("aurora_firehose_consumer_lag_events_count") >= 1.0);
    assert_eq!(value("aurora_firehose_cut_offs_total"), 0.0);
}
