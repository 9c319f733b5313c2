//! Logging in and out: sessions, refresh rotation and app passwords.

use reqwest::Method;
use serde_json::json;

async fn login(app: &crate::helpers::TestApp, identifier: &str, password: &str) -> (u16, serde_json::Value) {
    app.post_json("/xrpc/com.atproto.server.createSession", &json!({ "identifier": identifier, "password": password }))
        .await
}

app_test!(a_person_logs_in_by_handle_did_or_email, |app| {
    let account = app.create_account("erin").await;
    let did = account["did"].as_str().expect("did");
    for identifier in ["erin.test", "ERIN.test", did, "erin@example.com", "Erin@Example.com"] {
        let (status, session) = login(&app, identifier, "erin-password").await;
        assert_eq!(status, 200, "{identifier}: {session}");
        assert_eq!(session["did"], did);
        assert_eq!(session["handle"], "erin.test");
        assert_eq!(session["emailConfirmed"], false);
        assert_eq!(session["active"], true);
        assert!(session["accessJwt"].is_string() && session["refreshJwt"].is_string());
    }
    for (identifier, password) in [("erin.test", "wrong"), ("nobody.test", "erin-password"), ("x@example.com", "p")] {
        let (status, body) = login(&app, identifier, password).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("AuthenticationRequired")), "{identifier}");
        assert_eq!(body["message"], "Invalid identifier or password");
    }
});

app_test!(tokens_are_checked_for_presence_kind_and_forgery, |app| {
    let account = app.create_account("frank").await;
    let (status, body) = app.call(Method::GET, "com.atproto.server.getSession", None, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AuthMissing")));
    let refresh = account["refreshJwt"].as_str().expect("refresh");
    let (status, body) = app.call(Method::GET, "com.atproto.server.getSession", Some(refresh), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "a refresh token is not an access token");
    let access = account["accessJwt"].as_str().expect("access");
    let mut forged = access.to_owned();
    forged.pop();
    forged.push(if access.ends_with('A') { 'B' } else { 'A' });
    let (status, body) = app.call(Method::GET, "com.atproto.server.getSession", Some(&forged), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")));
    let (status, body) = app.call(Method::POST, "com.atproto.server.refreshSession", Some(access), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "an access token cannot refresh");
});

app_test!(refreshing_rotates_the_refresh_token_with_a_grace_period, |app| {
    let account = app.create_account("gina").await;
    let first = account["refreshJwt"].as_str().expect("refresh").to_owned();
    let (status, refreshed) = app.call(Method::POST, "com.atproto.server.refreshSession", Some(&first), None).await;
    assert_eq!(status, 200, "{refreshed}");
    let second = refreshed["refreshJwt"].as_str().expect("refresh").to_owned();
    assert_ne!(second, first);
    let (status, _) = app
        .call(
            Method::GET,
            "com.atproto.server.getSession",
            Some(refreshed["accessJwt"].as_str().expect("access")),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // A retry with the old token (its answer was lost) yields a session with the same successor.
    let (status, retried) = app.call(Method::POST, "com.atproto.server.refreshSession", Some(&first), None).await;
    assert_eq!(status, 200, "{retried}");
    let jti = |token: &str| {
        let payload = token.split('.').nth(1).expect("payload");
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64");
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("claims")["jti"].clone()
    };
    assert_eq!(jti(retried["refreshJwt"].as_str().expect("refresh")), jti(&second));

    // Logging out revokes the refresh token.
    let (status, _) = app.call(Method::POST, "com.atproto.server.deleteSession", Some(&second), None).await;
    assert_eq!(status, 200);
    let (status, body) = app.call(Method::POST, "com.atproto.server.refreshSession", Some(&second), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("ExpiredToken")), "{body}");
});

app_test!(app_passwords_open_limited_sessions_until_revoked, |app| {
    let account = app.create_account("hank").await;
    let full = account["accessJwt"].as_str().expect("access");
    let (status, created) = app
        .call(Method::POST, "com.atproto.server.createAppPassword", Some(full), Some(&json!({ "name": "phone" })))
        .await;
    assert_eq!(status, 200, "{created}");
    let secret = created["password"].as_str().expect("shown once").to_owned();
    assert_eq!(secret.len(), 19);
    assert_eq!(created["privileged"], false);
    let (status, duplicate) = app
        .call(Method::POST, "com.atproto.server.createAppPassword", Some(full), Some(&json!({ "name": "phone" })))
        .await;
    assert_eq!(status, 400, "{duplicate}");

    let (status, listed) = app.call(Method::GET, "com.atproto.server.listAppPasswords", Some(full), None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["passwords"][0]["name"], "phone");
    assert!(listed["passwords"][0].get("password").is_none(), "never shown again");

    let (status, session) = login(&app, "hank.test", &secret).await;
    assert_eq!(status, 200, "{session}");
    let limited = session["accessJwt"].as_str().expect("access").to_owned();
    let limited_refresh = session["refreshJwt"].as_str().expect("refresh").to_owned();
    let (status, _) = app.call(Method::GET, "com.atproto.server.getSession", Some(&limited), None).await;
    assert_eq!(status, 200);
    let (status, body) = app
        .call(Method::POST, "com.atproto.server.createAppPassword", Some(&limited), Some(&json!({ "name": "x" })))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidToken")),
        "app passwords cannot manage the account"
    );

    let (status, _) = app
        .call(Method::POST, "com.atproto.server.revokeAppPassword", Some(full), Some(&json!({ "name": "phone" })))
        .await;
    assert_eq!(status, 200);
    let (status, _) = login(&app, "hank.test", &secret).await;
    assert_eq!(status, 401, "a revoked app password no longer logs in");
    let (status, body) =
        app.call(Method::POST, "com.atproto.server.refreshSession", Some(&limited_refresh), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("ExpiredToken")), "its sessions end too");
});
