//! Rate limits through the real server: the reference's limits and 429 answer with its
//! headers, keyed by identifier and address, by account, and by address; the bypass key and
//! addresses; client addresses from X-Forwarded-For behind a trusted proxy only; the sign-in
//! pages counting against createSession's limit; counters shared through Redis between
//! replicas; and a Redis that is down letting requests through.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::oauth::{hidden, Browser};

const ON: (&str, &str) = ("PDS_RATE_LIMITS_ENABLED", "true");

async fn login_from(app: &TestApp, identifier: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.xrpc("com.atproto.server.createSession"))
        .json(&json!({ "identifier": identifier, "password": "not-the-password" }));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.expect("request")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Spends `n` of the 30 sign-in attempts per five minutes `identifier` has from `ip`.
async fn spend_sign_ins(app: &TestApp, identifier: &str, ip: Option<&str>, n: usize) {
    for attempt in 0..n {
        let response = login_from(app, identifier, ip).await;
        assert_eq!(response.status(), 401, "attempt {attempt} is answered, not limited");
    }
}

/// Signs in until refused, with at least two seconds before the next attempt is allowed. The
/// limit refills smoothly (30 per five minutes: one every ten seconds), so on a busy machine an
/// attempt may come back while the 30 are spent; a few more than the limit always reach it.
async fn until_limited(app: &TestApp, identifier: &str, ip: Option<&str>) -> reqwest::Response {
    for _ in 0..8 {
        let response = login_from(app, identifier, ip).await;
        if response.status() != 429 {
            continue;
        }
        let wait: u64 = header(&response, "retry-after").and_then(|v| v.parse().ok()).unwrap_or(0);
        if wait >= 2 {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100)).await;
    }
    panic!("{identifier} was never limited");
}

async fn assert_limited(response: reqwest::Response, limit: u32, window: u32) {
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "ratelimit-limit"), Some(limit.to_string()));
    assert_eq!(header(&response, "ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header(&response, "ratelimit-policy"), Some(format!("{limit};w={window}")));
    let reset: u64 = header(&response, "ratelimit-reset").expect("reset").parse().expect("epoch seconds");
    assert!(reset >= aurora_locus::auth::now_secs() as u64);
    assert!(header(&response, "retry-after").is_some());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "RateLimitExceeded", "{body}");
}

#[tokio::test]
async fn sign_ins_are_limited_per_identifier_and_address() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[ON]).await.expect("app");
    app.create_account("rita").await;
    let first = login_from(&app, "rita.test", None).await;
    assert_eq!(first.status(), 401);
    assert!(header(&first, "ratelimit-limit").is_some(), "limited routes describe their limit");
    spend_sign_ins(&app, "RITA.test", None, 29).await;
    assert_limited(until_limited(&app, "rita.test", None).await, 30, 300).await;
    // Another identifier from the same address, and the same one from another client behind
    // the (trusted, loopback) proxy, have their own counters.
    assert_eq!(login_from(&app, "someone-else.test", None).await.status(), 401);
    assert_eq!(login_from(&app, "rita.test", Some("198.51.100.7")).await.status(), 401);

    // The sign-in page counts against the same limit.
    let mut browser = Browser::new(&app);
    let (_, page, _) = browser.get("/account").await;
    let csrf = hidden(&page, "csrf").expect("csrf");
    until_limited(&app, "rita.test", None).await;
    let (status, page, _) = browser
        .post("/account/sign-in", &[("csrf", &csrf), ("identifier", "rita.test"), ("password", "rita-password")])
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("Too many sign-in attempts"), "{page}");
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[ON, ("AURORA_TRUSTED_PROXIES", "none")]).await.expect("app");
    spend_sign_ins(&app, "uma.test", Some("198.51.100.1"), 30).await;
    // A client naming another address in the header is still counted as itself.
    assert_limited(until_limited(&app, "uma.test", Some("198.51.100.2")).await, 30, 300).await;
}

#[tokio::test]
async fn the_bypass_key_and_addresses_skip_the_limits() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[ON, ("PDS_RATE_LIMIT_BYPASS_KEY", "let-me-through-please")])
        .await
        .expect("app");
    spend_sign_ins(&app, "vic.test", None, 30).await;
    assert_eq!(until_limited(&app, "vic.test", None).await.status(), 429);
    let bypassed = app
        .client
        .post(app.xrpc("com.atproto.server.createSession"))
        .header("x-ratelimit-bypass", "let-me-through-please")
        .json(&json!({ "identifier": "vic.test", "password": "nope" }))
        .send()
        .await
        .expect("request");
    assert_eq!(bypassed.status(), 401);

    let trusted =
        TestApp::spawn_with(Backend::Sqlite, &[ON, ("PDS_RATE_LIMIT_BYPASS_IPS", "127.0.0.0/8")]).await.expect("app");
    for _ in 0..32 {
        assert_eq!(login_from(&trusted, "vic.test", None).await.status(), 401);
    }
}

app_test!(repository_writes_spend_points_per_account, [
    "PDS_RATE_LIMITS_ENABLED" => "true",
], |app| {
    let account = app.create_account("wes").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    // 200 creates cost 600 points; the hour's 5,000 run out in the ninth batch.
    let batch = |n: usize| {
        let writes: Vec<Value> = (0..200)
            .map(|i| json!({
                "$type": "com.atproto.repo.applyWrites#create",
                "collection": "com.example.note",
                "rkey": format!("b{n}r{i}"),
                "value": { "$type": "com.example.note", "text": "hi" },
            }))
            .collect();
        json!({ "repo": did, "writes": writes })
    };
    for n in 0..8 {
        let (status, body) = app.call(Method::POST, "com.atproto.repo.applyWrites", Some(&token), Some(&batch(n))).await;
        assert_eq!(status, 200, "batch {n}: {body}");
    }
    let (status, body) = app.call(Method::POST, "com.atproto.repo.applyWrites", Some(&token), Some(&batch(8))).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("RateLimitExceeded")), "{body}");
    let (status, _) = app
        .call(Method::GET, &format!("com.atproto.repo.getRecord?repo={did}&collection=com.example.note&rkey=b8r0"), None, None)
        .await;
    assert_eq!(status, 400, "the refused batch wrote nothing");
    // Another account's writes are counted apart.
    let other = app.create_account("wyn").await;
    let (status, body) = app
        .call(Method::POST, "com.atproto.repo.createRecord", other["accessJwt"].as_str(), Some(&json!({
            "repo": other["did"], "collection": "app.bsky.feed.post",
            "record": { "$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00Z" },
        })))
        .await;
    assert_eq!(status, 200, "{body}");
});

#[tokio::test]
async fn handle_changes_and_admin_guesses_are_limited() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[ON]).await.expect("app");
    let account = app.create_account("xan").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    for n in 0..10 {
        let (status, body) = app
            .call(
                Method::POST,
                "com.atproto.identity.updateHandle",
                Some(&token),
                Some(&json!({ "handle": format!("xan{n}.test") })),
            )
            .await;
        assert_eq!(status, 200, "change {n}: {body}");
    }
    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.identity.updateHandle",
            Some(&token),
            Some(&json!({ "handle": "xan-last.test" })),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (429, Some("RateLimitExceeded")), "{body}");

    let guess = || {
        app.client
            .get(app.xrpc("com.atproto.admin.getAccountInfo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"))
            .basic_auth("admin", Some("a-wrong-guess"))
            .send()
    };
    for _ in 0..30 {
        assert_eq!(guess().await.expect("request").status(), 401);
    }
    assert_eq!(guess().await.expect("request").status(), 429);
}

#[tokio::test]
async fn replicas_share_counters_through_redis() {
    let Ok(redis) = std::env::var("AURORA_TEST_REDIS_URL") else {
        println!("SKIPPED (Redis): AURORA_TEST_REDIS_URL is not set");
        return;
    };
    let settings = [ON, ("PDS_REDIS_SCRATCH_ADDRESS", redis.as_str())];
    let one = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app");
    let two = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app");
    // A fresh identifier: the counters outlive this test in Redis.
    let identifier = format!("shared-{}.test", aurora_locus::account::password::random_base32(10));
    for n in 0..30 {
        let replica = if n % 2 == 0 { &one } else { &two };
        assert_eq!(login_from(replica, &identifier, None).await.status(), 401, "attempt {n}");
    }
    assert_limited(login_from(&one, &identifier, None).await, 30, 300).await;
    assert_limited(login_from(&two, &identifier, None).await, 30, 300).await;
}

#[tokio::test]
async fn an_unreachable_redis_lets_requests_through() {
    // Nothing listens on port 1: every count fails, and requests are answered uncounted.
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[ON, ("PDS_REDIS_SCRATCH_ADDRESS", "127.0.0.1:1")]).await.expect("app");
    let account = app.create_account("yul").await;
    assert_eq!(account["handle"], "yul.test");
    for _ in 0..35 {
        assert_eq!(login_from(&app, "yul.test", None).await.status(), 401);
    }
    let (status, _) = app
        .post_json(
            "/xrpc/com.atproto.server.createSession",
            &json!({ "identifier": "yul.test", "password": "yul-password" }),
        )
        .await;
    assert_eq!(status, 200);
}
