//! Session tokens stop at once when what they stand for is gone: a password reset or change,
//! a revoked app password, a deleted or taken-down account; for local methods, forwarded ones
//! and service-token minting alike. And deleteAccount checks the mailed code first.

use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::appview_double::AppViewDouble;
use crate::helpers::{Backend, TestApp};

async fn session_status(app: &TestApp, token: &str) -> (u16, Value) {
    app.call(Method::GET, "com.atproto.server.getSession", Some(token), None).await
}

fn revoked(answer: &(u16, Value)) -> bool {
    answer.0 == 400 && answer.1["error"] == "ExpiredToken" && answer.1["message"] == "Token has been revoked"
}

app_test!(a_password_reset_stops_every_access_token, |app| {
    let account = app.create_account("xena").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    assert_eq!(session_status(&app, &token).await.0, 200);
    app.post_json("/xrpc/com.atproto.server.requestPasswordReset", &json!({ "email": "xena@example.com" })).await;
    let code = app.smtp.last_code_for("xena@example.com").expect("a code");
    let (status, body) = app
        .post_json("/xrpc/com.atproto.server.resetPassword", &json!({ "token": code, "password": "brand-new-pass" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(revoked(&session_status(&app, &token).await), "the old access token is refused");
    let (status, login) = app
        .post_json(
            "/xrpc/com.atproto.server.createSession",
            &json!({ "identifier": "xena.test", "password": "brand-new-pass" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(session_status(&app, login["accessJwt"].as_str().expect("access")).await.0, 200, "new tokens work");
});

app_test!(a_revoked_app_password_stops_its_access_tokens, |app| {
    let account = app.create_account("yara").await;
    let main = account["accessJwt"].as_str().expect("access").to_owned();
    let app_token = app.app_password_session(&main, "yara.test", "phone").await;
    assert_eq!(session_status(&app, &app_token).await.0, 200);
    let (status, body) = app
        .call(Method::POST, "com.atproto.server.revokeAppPassword", Some(&main), Some(&json!({ "name": "phone" })))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(revoked(&session_status(&app, &app_token).await));
    let minted = app
        .call(Method::GET, "com.atproto.server.getServiceAuth?aud=did:web:api.example.com", Some(&app_token), None)
        .await;
    assert!(revoked(&minted), "no service token either: {minted:?}");
    assert_eq!(session_status(&app, &main).await.0, 200, "the account's own session is untouched");
});

app_test!(deleted_and_taken_down_accounts_tokens_stop, |app| {
    let gone = app.create_account("zane").await;
    let gone_token = gone["accessJwt"].as_str().expect("access").to_owned();
    let gone_did = gone["did"].as_str().expect("did").to_owned();
    app.call(Method::POST, "com.atproto.server.requestAccountDelete", Some(&gone_token), None).await;
    let code = app.smtp.last_code_for("zane@example.com").expect("a code");
    // The code is checked before the password: a wrong code never reveals whether the password was right.
    let (status, body) = app
        .post_json(
            "/xrpc/com.atproto.server.deleteAccount",
            &json!({ "did": gone_did, "password": "wrong", "token": "AAAAA-AAAAA" }),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "{body}");
    let (status, body) = app
        .post_json(
            "/xrpc/com.atproto.server.deleteAccount",
            &json!({ "did": gone_did, "password": "zane-password", "token": code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = session_status(&app, &gone_token).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");

    let down = app.create_account("zora").await;
    let down_token = down["accessJwt"].as_str().expect("access").to_owned();
    let down_did: aurora_atproto::syntax::Did = down["did"].as_str().expect("did").parse().expect("did");
    assert_eq!(session_status(&app, &down_token).await.0, 200);
    aurora_locus::db::entities::actor::Entity::update_many()
        .col_expr(aurora_locus::db::entities::actor::Column::TakedownRef, Expr::value("test-takedown"))
        .filter(aurora_locus::db::entities::actor::Column::Did.eq(&down_did))
        .exec(&app.ctx.db)
        .await
        .expect("take down");
    app.ctx.gate.forget(&down_did);
    let (status, body) = session_status(&app, &down_token).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AccountTakedown")), "{body}");
});

#[tokio::test]
async fn forwarded_calls_refuse_a_revoked_token() {
    let double = AppViewDouble::start().await;
    let settings = [("PDS_BSKY_APP_VIEW_URL", double.url.as_str()), ("PDS_BSKY_APP_VIEW_DID", double.did.as_str())];
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app");
    double.use_plc(&app.plc.url);
    let account = app.create_account("zeke").await;
    let main = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let app_token = app.app_password_session(&main, "zeke.test", "laptop").await;
    let path = format!("app.bsky.actor.getProfile?actor={did}");
    assert_eq!(app.call(Method::GET, &path, Some(&app_token), None).await.0, 200);
    app.call(Method::POST, "com.atproto.server.revokeAppPassword", Some(&main), Some(&json!({ "name": "laptop" })))
        .await;
    assert!(revoked(&app.call(Method::GET, &path, Some(&app_token), None).await));
}

app_test!(a_mailed_code_is_spent_after_five_wrong_guesses, |app| {
    let account = app.create_account("gus").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let delete = |code: &str| json!({ "did": did, "password": "gus-password", "token": code });
    app.call(Method::POST, "com.atproto.server.requestAccountDelete", Some(&token), None).await;
    let code = app.smtp.last_code_for("gus@example.com").expect("a code");
    for _ in 0..4 {
        let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete("AAAAA-AAAAA")).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "{body}");
    }
    // The fifth wrong guess spends the code: the right one no longer works.
    let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete("AAAAA-AAAAA")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "{body}");
    let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete(&code)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "the right code came too late: {body}");
    assert_eq!(session_status(&app, &token).await.0, 200, "the account is still there");

    // A fresh code survives four wrong guesses.
    let fresh = aurora_locus::account::email_token::create(
        &app.ctx.db,
        &did.parse().expect("did"),
        aurora_locus::mail::Purpose::DeleteAccount,
    )
    .await
    .expect("db")
    .expect("a new code");
    for _ in 0..4 {
        app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete("BBBBB-BBBBB")).await;
    }
    let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete(&fresh)).await;
    assert_eq!(status, 200, "{body}");
});
