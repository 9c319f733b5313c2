//! The account pages through the real server, as a browser posts them: signing in, app
//! passwords, connected apps and sessions, password and handle changes, two-factor sign-in with
//! an authenticator app (enforced on the pages, OAuth and createSession), deactivation, and the
//! refusal of forged forms.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::oauth::{hidden, signed_in, Browser};

/// Signs `name` in on `/account`; the browser and the CSRF token.
async fn open_account<'a>(server: &'a TestApp, name: &str) -> (Browser<'a>, String) {
    let mut browser = Browser::new(server);
    let (status, page, _) = browser.get("/account").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(">Sign in</button>"), "{page}");
    let csrf = hidden(&page, "csrf").expect("csrf");
    let (status, _, headers) = browser
        .post(
            "/account/sign-in",
            &[("csrf", &csrf), ("identifier", &format!("{name}.test")), ("password", &format!("{name}-password"))],
        )
        .await;
    assert_eq!(status, 303);
    let location = headers.get("location").expect("location").to_str().expect("text").to_owned();
    let (status, page, _) = browser.get(&location).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("@{name}.test")), "the dashboard: {page}");
    (browser, csrf)
}

async fn login(server: &TestApp, identifier: &str, password: &str, code: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "identifier": identifier, "password": password });
    if let Some(code) = code {
        body["authFactorToken"] = json!(code);
    }
    server.post_json("/xrpc/com.atproto.server.createSession", &body).await
}

app_test!(app_passwords_and_connected_apps_are_managed_on_the_account_page, |server| {
    let account = server.create_account("tara").await;
    let did = account["did"].as_str().expect("did").to_owned();
    let (mut app, tokens) = signed_in(&server, "tara", "atproto").await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let (mut browser, csrf) = open_account(&server, "tara").await;

    let (status, page, _) =
        browser.post("/account/app-passwords/create", &[("csrf", &csrf), ("did", &did), ("name", "phone")]).await;
    assert_eq!(status, 200, "{page}");
    let start = page.find("<code>").expect("the password") + "<code>".len();
    let secret = page[start..start + page[start..].find("</code>").expect("end")].to_owned();
    let (status, _) = login(&server, "tara.test", &secret, None).await;
    assert_eq!(status, 200, "the new app password signs in");
    let (status, _, _) =
        browser.post("/account/app-passwords/revoke", &[("csrf", &csrf), ("did", &did), ("name", "phone")]).await;
    assert_eq!(status, 303);
    let (status, _) = login(&server, "tara.test", &secret, None).await;
    assert_eq!(status, 401, "a revoked app password does not");

    let (_, page, _) = browser.get(&format!("/account?did={did}")).await;
    assert!(page.contains("Revoke access for An app on your computer"), "the connected app is listed: {page}");
    let client_id = hidden(&page, "client_id").expect("the app's id");
    assert_eq!(client_id, app.client_id, "the listed app");
    let (status, _, _) =
        browser.post("/account/apps/revoke", &[("csrf", &csrf), ("did", &did), ("client_id", &client_id)]).await;
    assert_eq!(status, 303);
    let (status, _, _) = app.xrpc(Method::GET, "com.atproto.server.getSession", &access, None).await;
    assert_eq!(status, 401, "the app's token stopped working");

    let (status, _, _) =
        browser.post("/account/app-passwords/create", &[("csrf", "forged"), ("did", &did), ("name", "x")]).await;
    assert_eq!(status, 403, "a form without the browser's token is refused");
});

app_test!(password_handle_and_activation_change_on_the_account_page, |server| {
    let account = server.create_account("umar").await;
    let did = account["did"].as_str().expect("did").to_owned();
    let (mut browser, csrf) = open_account(&server, "umar").await;
    let (status, page, _) = browser
        .post("/account/password", &[("csrf", &csrf), ("did", &did), ("current", "wrong"), ("new", "a-new-password")])
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("The current password is not right"));
    let (status, _, _) = browser
        .post(
            "/account/password",
            &[("csrf", &csrf), ("did", &did), ("current", "umar-password"), ("new", "a-new-password")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(login(&server, "umar.test", "umar-password", None).await.0, 401);
    assert_eq!(login(&server, "umar.test", "a-new-password", None).await.0, 200);

    let (status, _, _) =
        browser.post("/account/handle", &[("csrf", &csrf), ("did", &did), ("handle", "umar2.test")]).await;
    assert_eq!(status, 303);
    let (_, resolved) = server.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=umar2.test").await;
    assert_eq!(resolved["did"], did);

    let (status, _, _) =
        browser.post("/account/deactivate", &[("csrf", &csrf), ("did", &did), ("password", "a-new-password")]).await;
    assert_eq!(status, 303);
    let (_, repo_status) = server.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!(repo_status["active"], false);
    let (_, page, _) = browser.get(&format!("/account?did={did}")).await;
    assert!(page.contains("Reactivate account"), "{page}");
    let (status, _, _) = browser.post("/account/reactivate", &[("csrf", &csrf), ("did", &did)]).await;
    assert_eq!(status, 303);
    let (_, repo_status) = server.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!(repo_status["active"], true);
});

app_test!(an_authenticator_app_guards_every_password_sign_in, |server| {
    let account = server.create_account("vera").await;
    let did = account["did"].as_str().expect("did").to_owned();
    let (mut browser, csrf) = open_account(&server, "vera").await;
    let (status, page, _) = browser.post("/account/totp/enroll", &[("csrf", &csrf), ("did", &did)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data:image/svg+xml;base64,"), "a QR code");
    let key_start = page.find("Key: <code>").expect("the key") + "Key: <code>".len();
    let key = page[key_start..key_start + page[key_start..].find("</code>").expect("end")].to_owned();
    let now = || u64::try_from(aurora_locus::auth::now_secs()).expect("time");
    let code = aurora_locus::account::totp::current_code(&key, now()).expect("a code");
    let (status, page, _) =
        browser.post("/account/totp/confirm", &[("csrf", &csrf), ("did", &did), ("code", &code)]).await;
    assert_eq!(status, 200, "{page}");
    let recovery: Vec<String> = page
        .match_indices("<li><code>")
        .map(|(i, _)| {
            let start = i + "<li><code>".len();
            page[start..start + page[start..].find("</code>").expect("end")].to_owned()
        })
        .collect();
    assert_eq!(recovery.len(), 10, "ten recovery codes");

    // createSession now asks for the code, takes a fresh one once, and a recovery code once.
    let (status, body) = login(&server, "vera.test", "vera-password", None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AuthFactorTokenRequired")), "{body}");
    let (status, _) = login(&server, "vera.test", "vera-password", Some(&code)).await;
    assert_eq!(status, 400, "the code used to confirm cannot be used again");
    let (status, body) = login(&server, "vera.test", "vera-password", Some(&recovery[0])).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = login(&server, "vera.test", "vera-password", Some(&recovery[0])).await;
    assert_eq!(status, 400, "a recovery code works once");
    let later = aurora_locus::account::totp::current_code(&key, now() + 30).expect("next code");
    let (status, body) = login(&server, "vera.test", "vera-password", Some(&later)).await;
    assert_eq!(status, 200, "{body}");

    // The account page's own sign-in asks for it too.
    let mut other = Browser::new(&server);
    let (_, page, _) = other.get("/account").await;
    let other_csrf = hidden(&page, "csrf").expect("csrf");
    let (status, page, _) = other
        .post("/account/sign-in", &[("csrf", &other_csrf), ("identifier", "vera.test"), ("password", "vera-password")])
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("authenticator app"), "{page}");

    let (status, _, _) =
        browser.post("/account/totp/disable", &[("csrf", &csrf), ("did", &did), ("code", &recovery[1])]).await;
    assert_eq!(status, 303);
    let (status, _) = login(&server, "vera.test", "vera-password", None).await;
    assert_eq!(status, 200, "off again");
});
