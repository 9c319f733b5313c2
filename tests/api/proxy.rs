//! Proxying to the AppView, chat and report services: routing by default and by
//! `atproto-proxy`, service-auth tokens the services verify, refusals, upstream errors, and
//! large answers streamed through.

use reqwest::Method;
use serde_json::{json, Value};

use crate::appview_double::AppViewDouble;
use crate::helpers::{Backend, TestApp};

async fn spawn(double: &AppViewDouble, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        ("PDS_BSKY_APP_VIEW_URL", double.url.as_str()),
        ("PDS_BSKY_APP_VIEW_DID", double.did.as_str()),
        ("PDS_REPORT_SERVICE_URL", double.url.as_str()),
        ("PDS_REPORT_SERVICE_DID", double.did.as_str()),
    ];
    settings.extend_from_slice(extra);
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app");
    double.use_plc(&app.plc.url);
    app
}

async fn get(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = app.client.get(format!("{}/xrpc/{path}", app.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.expect("body").to_vec())
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

#[tokio::test]
async fn app_bsky_calls_go_to_the_app_view_with_a_verified_service_token() {
    let double = AppViewDouble::start().await;
    let app = spawn(&double, &[]).await;
    let account = app.create_account("pia").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");

    let path = format!("app.bsky.actor.getProfile?actor={did}");
    let (status, headers, body) = get(&app, &path, Some(token), &[("accept-language", "de, en;q=0.5")]).await;
    let body = json_of(&body);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["did"], did, "the AppView saw (and verified) the caller");
    assert_eq!(body["displayName"], "AppView");
    assert_eq!(headers["atproto-repo-rev"], "3laaaaaaaaaa2");
    assert_eq!(headers["content-language"], "en");
    let calls = double.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].nsid.as_str(), calls[0].iss.as_str()), ("app.bsky.actor.getProfile", did));
    assert_eq!(calls[0].accept_language.as_deref(), Some("de, en;q=0.5"));

    // Signed-in callers only.
    let (status, _, body) = get(&app, &path, None, &[]).await;
    assert_eq!((status, json_of(&body)["error"].as_str()), (401, Some("AuthMissing")));

    // The AppView's own errors are passed on; its failures are an UpstreamFailure here.
    let (status, _, body) = get(&app, "app.bsky.feed.getPostThread?uri=at://x", Some(token), &[]).await;
    let body = json_of(&body);
    assert_eq!(
        (status, body["error"].as_str(), body["message"].as_str()),
        (400, Some("NotFound"), Some("Post not found"))
    );
    let (status, _, body) = get(&app, &format!("app.bsky.feed.getAuthorFeed?actor={did}"), Some(token), &[]).await;
    assert_eq!((status, json_of(&body)["error"].as_str()), (502, Some("UpstreamFailure")));
}

#[tokio::test]
async fn large_answers_stream_through_up_to_the_size_limit() {
    let double = AppViewDouble::start().await;
    let app = spawn(&double, &[("PDS_PROXY_MAX_RESPONSE_SIZE", "3000000")]).await;
    let account = app.create_account("quin").await;
    let token = account["accessJwt"].as_str().expect("access");
    // searchPosts gets nothing merged into it, so it streams straight through.
    let (status, _, body) = get(&app, "app.bsky.feed.searchPosts?q=x&size=2500000", Some(token), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 2_500_000 + r#"{"feed":[],"cursor":""}"#.len(), "every byte arrives");
    assert_eq!(json_of(&body)["feed"], json!([]));
    // Past the limit the answer is cut off: the client never gets a complete body.
    let response = app
        .client
        .get(format!("{}/xrpc/app.bsky.feed.searchPosts?q=x&size=4000000", app.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    let complete = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes).is_ok(),
        Err(_) => false,
    };
    assert!(!complete, "an over-limit answer is not passed on whole");
    // An answer that is merged into is read whole first, and refused past the limit.
    let (status, _, body) = get(&app, "app.bsky.feed.getTimeline?size=4000000", Some(token), &[]).await;
    assert_eq!((status, json_of(&body)["error"].as_str()), (502, Some("UpstreamFailure")));
}

#[tokio::test]
async fn the_atproto_proxy_header_picks_the_service_and_chat_needs_a_privileged_credential() {
    let double = AppViewDouble::start().await;
    let app = spawn(&double, &[]).await;
    let account = app.create_account("rex").await;
    let token = account["accessJwt"].as_str().expect("access");
    let chat = format!("{}#bsky_chat", double.did);
    let proxy = [("atproto-proxy", chat.as_str())];

    let (status, _, body) = get(&app, "chat.bsky.convo.listConvos", Some(token), &proxy).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body), json!({ "convos": [] }));

    let app_password =
        |privileged: bool| json!({ "name": if privileged { "chat" } else { "plain" }, "privileged": privileged });
    for privileged in [false, true] {
        let (_, created) = app
            .call(Method::POST, "com.atproto.server.createAppPassword", Some(token), Some(&app_password(privileged)))
            .await;
        let login = json!({ "identifier": "rex.test", "password": created["password"] });
        let (_, session) = app.post_json("/xrpc/com.atproto.server.createSession", &login).await;
        let limited = session["accessJwt"].as_str().expect("access");
        let (status, _, body) = get(&app, "chat.bsky.convo.listConvos", Some(limited), &proxy).await;
        if privileged {
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        } else {
            assert_eq!((status, json_of(&body)["error"].as_str()), (400, Some("InvalidToken")));
        }
    }

    // Malformed or unresolvable targets are refused before anything is sent.
    for header in ["no-fragment", "#bsky_chat", "did:web:localhost%3A1#x", &format!("{}#nothing_here", double.did)] {
        let (status, _, body) =
            get(&app, "chat.bsky.convo.listConvos", Some(token), &[("atproto-proxy", header)]).await;
        assert_eq!((status, json_of(&body)["error"].as_str()), (400, Some("InvalidRequest")), "{header}");
    }
}

#[tokio::test]
async fn reports_go_to_the_report_service_as_the_caller() {
    let double = AppViewDouble::start().await;
    let app = spawn(&double, &[]).await;
    let account = app.create_account("sol").await;
    let token = account["accessJwt"].as_str().expect("access");
    let report = json!({ "reasonType": "com.atproto.moderation.defs#reasonSpam",
        "subject": { "$type": "com.atproto.admin.defs#repoRef", "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" } });
    let (status, body) =
        app.call(Method::POST, "com.atproto.moderation.createReport", Some(token), Some(&report)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reportedBy"], account["did"]);
    assert_eq!(double.calls().last().expect("call").body["reasonType"], "com.atproto.moderation.defs#reasonSpam");
}

#[tokio::test]
async fn without_a_service_or_a_reachable_one_the_answer_says_so() {
    // Nothing configured: not implemented here.
    let app = TestApp::spawn(Backend::Sqlite).await.expect("app");
    let account = app.create_account("tom").await;
    let token = account["accessJwt"].as_str().expect("access");
    let (status, _, body) = get(&app, "app.bsky.feed.getTimeline", Some(token), &[]).await;
    assert_eq!((status, json_of(&body)["error"].as_str()), (501, Some("MethodNotImplemented")));

    // Configured but down: an UpstreamFailure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://localhost:{closed}");
    let did = format!("did:web:localhost%3A{closed}");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PDS_BSKY_APP_VIEW_URL", url.as_str()), ("PDS_BSKY_APP_VIEW_DID", did.as_str())],
    )
    .await
    .expect("app");
    let account = app.create_account("uma").await;
    let token = account["accessJwt"].as_str().expect("access");
    let (status, _, body) = get(&app, "app.bsky.feed.getTimeline", Some(token), &[]).await;
    assert_eq!((status, json_of(&body)["error"].as_str()), (502, Some("UpstreamFailure")));
}

#[tokio::test]
async fn the_users_newer_records_are_merged_into_the_app_views_answers() {
    let double = AppViewDouble::start().await;
    let app = spawn(&double, &[]).await;
    let account = app.create_account("vic").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "just now", "createdAt": "2024-05-01T12:00:00.000Z" } });
    let (_, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
    let uri = created["uri"].as_str().expect("uri");

    // The AppView has not seen the post: it comes first in the timeline anyway.
    let (status, _, body) = get(&app, "app.bsky.feed.getTimeline?limit=10", Some(token), &[]).await;
    let timeline = json_of(&body);
    assert_eq!(status, 200, "{timeline}");
    assert_eq!(timeline["feed"][0]["post"]["uri"], uri, "{timeline}");
    assert_eq!(timeline["feed"][0]["post"]["cid"], created["cid"]);
    assert_eq!(timeline["feed"][0]["post"]["author"]["did"], did);
    assert_eq!(timeline["feed"][0]["post"]["record"]["text"], "just now");
    assert_eq!(timeline["cursor"], "", "the AppView's own fields are kept");

    // Once the AppView has caught up (its rev is newer), its answer goes out as it is.
    let (_, _, body) = get(&app, "app.bsky.feed.getTimeline?rev=7zzzzzzzzzzzz", Some(token), &[]).await;
    assert_eq!(json_of(&body)["feed"], json!([]));

    // A just-saved profile shows at once.
    let profile = json!({ "repo": did, "collection": "app.bsky.actor.profile", "rkey": "self",
        "record": { "$type": "app.bsky.actor.profile", "displayName": "Vic, locally" } });
    let (status, _) = app.call(Method::POST, "com.atproto.repo.putRecord", Some(token), Some(&profile)).await;
    assert_eq!(status, 200);
    let (_, _, body) = get(&app, &format!("app.bsky.actor.getProfile?actor={did}"), Some(token), &[]).await;
    let profile = json_of(&body);
    assert_eq!(profile["displayName"], "Vic, locally", "{profile}");
    assert_eq!(profile["handle"], "from-the-appview.test", "the rest is the AppView's");

    // The new post's thread, which the AppView answers NotFound for, is built here.
    let (status, _, body) = get(&app, &format!("app.bsky.feed.getPostThread?uri={uri}"), Some(token), &[]).await;
    let thread = json_of(&body);
    assert_eq!(status, 200, "{thread}");
    assert_eq!(thread["thread"]["post"]["uri"], uri);
    assert_eq!(thread["thread"]["post"]["author"]["displayName"], "Vic, locally");
}

#[tokio::test]
async fn chat_goes_to_the_configured_chat_service_without_a_header() {
    let chat = AppViewDouble::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (url, did) = (format!("http://localhost:{closed}"), format!("did:web:localhost%3A{closed}"));
    let settings = [
        ("PDS_BSKY_APP_VIEW_URL", url.as_str()),
        ("PDS_BSKY_APP_VIEW_DID", did.as_str()),
        ("AURORA_CHAT_URL", chat.url.as_str()),
        ("AURORA_CHAT_DID", chat.did.as_str()),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app");
    chat.use_plc(&app.plc.url);
    let account = app.create_account("wes").await;
    let token = account["accessJwt"].as_str().expect("access");
    let (status, _, body) = get(&app, "chat.bsky.convo.listConvos", Some(token), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // Everything else still goes to the (unreachable) AppView.
    let (status, _, _) = get(&app, "app.bsky.feed.getTimeline", Some(token), &[]).await;
    assert_eq!(status, 502);
}
