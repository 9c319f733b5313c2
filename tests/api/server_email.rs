//! Flows proved by a code sent to the account's address, read back from a real SMTP server.

use reqwest::Method;
use serde_json::json;

app_test!(an_email_address_is_confirmed_with_the_mailed_code, |app| {
    let account = app.create_account("kate").await;
    let token = account["accessJwt"].as_str().expect("access");
    let (status, body) = app.call(Method::POST, "com.atproto.server.requestEmailConfirmation", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    let mail = app.smtp.messages();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].data.contains("Subject: Email Confirmation"), "{}", mail[0].data);
    let code = app.smtp.last_code_for("kate@example.com").expect("a code in the mail");

    let (status, body) = app.call(Method::POST, "com.atproto.server.requestEmailConfirmation", Some(token), None).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("RateLimitExceeded")), "codes are rate limited");

    let confirm = |email: &str, code: &str| json!({ "email": email, "token": code });
    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.server.confirmEmail",
            Some(token),
            Some(&confirm("kate@example.com", "AAAAA-AAAAA")),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")));
    let (status, body) = app
        .call(Method::POST, "com.atproto.server.confirmEmail", Some(token), Some(&confirm("other@example.com", &code)))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidEmail")));
    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.server.confirmEmail",
            Some(token),
            Some(&confirm("KATE@example.com", &code.to_lowercase())),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, session) = app.call(Method::GET, "com.atproto.server.getSession", Some(token), None).await;
    assert_eq!(session["emailConfirmed"], true);
    let (status, _) = app
        .call(Method::POST, "com.atproto.server.confirmEmail", Some(token), Some(&confirm("kate@example.com", &code)))
        .await;
    assert_eq!(status, 400, "a code works once");
});

app_test!(a_confirmed_address_must_approve_its_replacement, |app| {
    let account = app.create_account("liam").await;
    let token = account["accessJwt"].as_str().expect("access");
    // Unconfirmed: no code needed.
    let (status, body) = app.call(Method::POST, "com.atproto.server.requestEmailUpdate", Some(token), None).await;
    assert_eq!((status, body["tokenRequired"].as_bool()), (200, Some(false)), "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.server.updateEmail",
            Some(token),
            Some(&json!({ "email": "liam2@example.com" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Confirm the new address, then changing it needs a code sent to it.
    app.call(Method::POST, "com.atproto.server.requestEmailConfirmation", Some(token), None).await;
    let code = app.smtp.last_code_for("liam2@example.com").expect("code");
    app.call(
        Method::POST,
        "com.atproto.server.confirmEmail",
        Some(token),
        Some(&json!({ "email": "liam2@example.com", "token": code })),
    )
    .await;
    let (_, body) = app.call(Method::POST, "com.atproto.server.requestEmailUpdate", Some(token), None).await;
    assert_eq!(body["tokenRequired"], true);
    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.server.updateEmail",
            Some(token),
            Some(&json!({ "email": "liam3@example.com" })),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("TokenRequired")));
    let code = app.smtp.last_code_for("liam2@example.com").expect("update code");
    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.server.updateEmail",
            Some(token),
            Some(&json!({ "email": "liam3@example.com", "token": code })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, session) = app.call(Method::GET, "com.atproto.server.getSession", Some(token), None).await;
    assert_eq!(
        (session["email"].as_str(), session["emailConfirmed"].as_bool()),
        (Some("liam3@example.com"), Some(false))
    );
});

app_test!(a_forgotten_password_is_reset_with_the_mailed_code, |app| {
    let account = app.create_account("mona").await;
    let old_refresh = account["refreshJwt"].as_str().expect("refresh").to_owned();
    let (status, _) =
        app.post_json("/xrpc/com.atproto.server.requestPasswordReset", &json!({ "email": "nobody@example.com" })).await;
    assert_eq!(status, 200, "unknown addresses get the same answer");
    assert!(app.smtp.messages().is_empty());
    let (status, _) =
        app.post_json("/xrpc/com.atproto.server.requestPasswordReset", &json!({ "email": "Mona@example.com" })).await;
    assert_eq!(status, 200);
    let code = app.smtp.last_code_for("mona@example.com").expect("code");
    let (status, body) = app
        .post_json("/xrpc/com.atproto.server.resetPassword", &json!({ "token": "BBBBB-BBBBB", "password": "x" }))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")));
    let (status, body) = app
        .post_json("/xrpc/com.atproto.server.resetPassword", &json!({ "token": code, "password": "new-secret-1" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let login = |password: &str| json!({ "identifier": "mona.test", "password": password });
    let (status, _) = app.post_json("/xrpc/com.atproto.server.createSession", &login("mona-password")).await;
    assert_eq!(status, 401, "the old password is gone");
    let (status, _) = app.post_json("/xrpc/com.atproto.server.createSession", &login("new-secret-1")).await;
    assert_eq!(status, 200);
    let (status, body) = app.call(Method::POST, "com.atproto.server.refreshSession", Some(&old_refresh), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("ExpiredToken")), "sessions from before the reset end");
});

app_test!(an_account_is_deleted_with_password_and_mailed_code, |app| {
    let account = app.create_account("nick").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did").to_owned();
    let (status, _) = app.call(Method::POST, "com.atproto.server.requestAccountDelete", Some(token), None).await;
    assert_eq!(status, 200);
    let code = app.smtp.last_code_for("nick@example.com").expect("code");
    let delete = |password: &str, code: &str| json!({ "did": did, "password": password, "token": code });
    let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete("wrong", &code)).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) =
        app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete("nick-password", "CCCCC-CCCCC")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")));
    let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete("nick-password", &code)).await;
    assert_eq!(status, 200, "{body}");

    let (status, _) = app
        .post_json(
            "/xrpc/com.atproto.server.createSession",
            &json!({ "identifier": "nick.test", "password": "nick-password" }),
        )
        .await;
    assert_eq!(status, 401);
    let (_, resolved) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=nick.test").await;
    assert_eq!(resolved["error"], "HandleNotFound");
    use aurora_locus::db::entities::{repo_block, repo_seq};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let events =
        repo_seq::Entity::find().filter(repo_seq::Column::Did.eq(did.as_str())).all(&app.ctx.db).await.expect("q");
    assert_eq!(events.len(), 1, "only the deletion event remains");
    let event =
        aurora_atproto::data::ipld_to_json(&aurora_atproto::data::from_dag_cbor(&events[0].event).expect("cbor"))
            .expect("json");
    assert_eq!((event["active"].as_bool(), event["status"].as_str()), (Some(false), Some("deleted")));
    let blocks =
        repo_block::Entity::find().filter(repo_block::Column::Did.eq(did.as_str())).all(&app.ctx.db).await.expect("q");
    assert!(blocks.is_empty(), "the repository is gone");
    let (status, _) =
        app.call(Method::POST, "com.atproto.server.refreshSession", account["refreshJwt"].as_str(), None).await;
    assert_eq!(status, 400, "the account's sessions are gone with it");
});

app_test!(email_as_a_second_factor_asks_for_a_mailed_code_at_password_login, |app| {
    let account = app.create_account("zoe").await;
    let token = account["accessJwt"].as_str().expect("access");
    let factor = |code: Option<&str>, on: bool| {
        let mut body = json!({ "email": "zoe@example.com", "emailAuthFactor": on });
        if let Some(code) = code {
            body["token"] = code.into();
        }
        body
    };
    // Only a confirmed address can be a sign-in factor.
    let (status, body) =
        app.call(Method::POST, "com.atproto.server.updateEmail", Some(token), Some(&factor(None, true))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");
    app.call(Method::POST, "com.atproto.server.requestEmailConfirmation", Some(token), None).await;
    let code = app.smtp.last_code_for("zoe@example.com").expect("code");
    let confirm = json!({ "email": "zoe@example.com", "token": code });
    assert_eq!(app.call(Method::POST, "com.atproto.server.confirmEmail", Some(token), Some(&confirm)).await.0, 200);
    app.call(Method::POST, "com.atproto.server.requestEmailUpdate", Some(token), None).await;
    let code = app.smtp.last_code_for("zoe@example.com").expect("code");
    let (status, body) =
        app.call(Method::POST, "com.atproto.server.updateEmail", Some(token), Some(&factor(Some(&code), true))).await;
    assert_eq!(status, 200, "{body}");
    let (_, session) = app.call(Method::GET, "com.atproto.server.getSession", Some(token), None).await;
    assert_eq!((session["emailAuthFactor"].as_bool(), session["emailConfirmed"].as_bool()), (Some(true), Some(true)));

    // A password alone now gets a code mailed and the lexicon's error.
    let login = |code: Option<&str>| {
        let mut body = json!({ "identifier": "zoe.test", "password": "zoe-password" });
        if let Some(code) = code {
            body["authFactorToken"] = code.into();
        }
        body
    };
    let mails = app.smtp.messages().len();
    let (status, body) = app.post_json("/xrpc/com.atproto.server.createSession", &login(None)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AuthFactorTokenRequired")), "{body}");
    assert_eq!(app.smtp.messages().len(), mails + 1);
    assert!(app.smtp.messages().last().expect("mail").data.contains("Subject: Sign-in Code"));
    let code = app.smtp.last_code_for("zoe@example.com").expect("code");
    let (status, body) = app.post_json("/xrpc/com.atproto.server.createSession", &login(Some("AAAAA-AAAAA"))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "{body}");
    let (status, body) = app.post_json("/xrpc/com.atproto.server.createSession", &login(Some(&code))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["accessJwt"].is_string());
    // Spent: the same code does not sign in twice.
    let (status, _) = app.post_json("/xrpc/com.atproto.server.createSession", &login(Some(&code))).await;
    assert_eq!(status, 400);
    // A wrong password never reaches the second factor (and mails nothing).
    let mails = app.smtp.messages().len();
    let wrong = json!({ "identifier": "zoe.test", "password": "not-it" });
    assert_eq!(app.post_json("/xrpc/com.atproto.server.createSession", &wrong).await.0, 401);
    assert_eq!(app.smtp.messages().len(), mails);

    // App passwords sign in without it.
    let (_, app_password) = app
        .call(Method::POST, "com.atproto.server.createAppPassword", Some(token), Some(&json!({ "name": "reader" })))
        .await;
    let with_app = json!({ "identifier": "zoe.test", "password": app_password["password"] });
    assert_eq!(app.post_json("/xrpc/com.atproto.server.createSession", &with_app).await.0, 200);

    // Turned off again (with a fresh update code), a password is enough.
    app.call(Method::POST, "com.atproto.server.requestEmailUpdate", Some(token), None).await;
    let code = app.smtp.last_code_for("zoe@example.com").expect("code");
    let (status, body) =
        app.call(Method::POST, "com.atproto.server.updateEmail", Some(token), Some(&factor(Some(&code), false))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post_json("/xrpc/com.atproto.server.createSession", &login(None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["emailAuthFactor"].as_bool(), Some(false));
});
