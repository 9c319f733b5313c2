//! Service auth and the account lifecycle.

use aurora_atproto::crypto::PublicKey;
use aurora_locus::db::entities::repo_seq;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("base64");
    serde_json::from_slice(&bytes).expect("claims")
}

app_test!(service_auth_tokens_are_signed_by_the_repo_key_with_the_requested_claims, |app| {
    let account = app.create_account("ivan").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let path = "com.atproto.server.getServiceAuth?aud=did:web:api.example.com&lxm=app.bsky.feed.getTimeline";
    let (status, body) = app.call(Method::GET, path, Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    let jwt = body["token"].as_str().expect("token");
    let c = claims(jwt);
    assert_eq!((c["iss"].as_str(), c["aud"].as_str()), (Some(did), Some("did:web:api.example.com")));
    assert_eq!(c["lxm"], "app.bsky.feed.getTimeline");
    assert!(c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat") <= 60);
    assert_eq!(c["jti"].as_str().map(str::len), Some(32));
    let multikey = account["didDoc"]["verificationMethod"][0]["publicKeyMultibase"].as_str().expect("key");
    let key = PublicKey::from_multikey(multikey).expect("key");
    aurora_locus::auth::jwt::verify_es(jwt, &key).expect("signed with the DID document's key");

    let refused = [
        ("com.atproto.server.getServiceAuth?aud=not-a-did", "InvalidRequest"),
        ("com.atproto.server.getServiceAuth?aud=did:web:x.example&lxm=com.atproto.server.getSession", "InvalidRequest"),
        ("com.atproto.server.getServiceAuth?aud=did:web:x.example&exp=1", "BadExpiration"),
        ("com.atproto.server.getServiceAuth?aud=did:web:x.example&exp=99999999999", "BadExpiration"),
    ];
    for (path, error) in refused {
        let (status, body) = app.call(Method::GET, path, Some(token), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(error)), "{path}: {body}");
    }
    let (status, _) =
        app.call(Method::GET, "com.atproto.server.getServiceAuth?aud=did:web:x.example", None, None).await;
    assert_eq!(status, 401);

    // An ordinary app password may not act for private methods.
    let app_token = app.app_password_session(token, "ivan.test", "bot").await;
    let app_token = app_token.as_str();
    let path = "com.atproto.server.getServiceAuth?aud=did:web:chat.example&lxm=chat.bsky.convo.sendMessage";
    let (status, body) = app.call(Method::GET, path, Some(app_token), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");
});

app_test!(deactivating_and_reactivating_an_account_is_reported_and_sequenced, |app| {
    let account = app.create_account("judy").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");

    let (status, before) = app.call(Method::GET, "com.atproto.server.checkAccountStatus", Some(token), None).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["activated"], true);
    assert_eq!(before["validDid"], true, "the PLC directory names this server and key");
    assert_eq!(before["indexedRecords"], 0);
    assert!(before["repoBlocks"].as_i64().expect("blocks") >= 2, "commit and empty MST node");

    let (status, body) =
        app.call(Method::POST, "com.atproto.server.deactivateAccount", Some(token), Some(&json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (_, session) = app.call(Method::GET, "com.atproto.server.getSession", Some(token), None).await;
    assert_eq!((session["active"].as_bool(), session["status"].as_str()), (Some(false), Some("deactivated")));
    let (_, resolved) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=judy.test").await;
    assert_eq!(resolved["error"], "HandleNotFound", "a deactivated account's handle is not served");
    let well_known = || async {
        let url = format!("{}/.well-known/atproto-did", app.url);
        let response = app.client.get(url).header("host", "judy.test").send().await.expect("well-known");
        (response.status().as_u16(), response.text().await.expect("text"))
    };
    assert_eq!(well_known().await.0, 404, "nor proven at its well-known address");

    let (status, body) = app.call(Method::POST, "com.atproto.server.activateAccount", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    let (_, session) = app.call(Method::GET, "com.atproto.server.getSession", Some(token), None).await;
    assert_eq!(session["active"], true);
    assert_eq!(well_known().await, (200, did.to_owned()), "proven again once active");
    let (_, resolved) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=judy.test").await;
    assert_eq!(resolved["did"], did);

    let events = repo_seq::Entity::find()
        .filter(repo_seq::Column::Did.eq(did))
        .order_by_asc(repo_seq::Column::Seq)
        .all(&app.ctx.db)
        .await
        .expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["identity", "account", "commit", "sync", "account", "account", "identity", "sync"]);
    let deactivated = aurora_atproto::data::from_dag_cbor(&events[4].event).expect("cbor");
    let deactivated = aurora_atproto::data::ipld_to_json(&deactivated).expect("json");
    assert_eq!((deactivated["active"].as_bool(), deactivated["status"].as_str()), (Some(false), Some("deactivated")));
});

app_test!(a_deleted_account_is_offline_restorable_in_its_grace_period_then_purged, [
    "AURORA_ACCOUNT_DELETION_GRACE_SECS" => "3600",
], |app| {
    use aurora_locus::account::deletion;
    use aurora_locus::blobs::BlobStore;
    use aurora_locus::db::entities::{actor, repo_block, repo_seq};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let account = app.create_account("gwen").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let upload = app
        .client
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(b"gwen's file".to_vec())
        .send()
        .await
        .expect("upload");
    let blob: Value = upload.json().await.expect("json");
    let body = json!({ "repo": did, "collection": "com.example.file",
        "record": { "$type": "com.example.file", "file": blob["blob"] } });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
    assert_eq!(status, 200, "{created}");
    let cid: cid::Cid = blob["blob"]["ref"]["$link"].as_str().expect("cid").parse().expect("cid");
    let delete_with_code = |code: String| json!({ "did": did, "password": "gwen-password", "token": code });

    let (status, _) = app.call(Method::POST, "com.atproto.server.requestAccountDelete", Some(&token), None).await;
    assert_eq!(status, 200);
    let code = app.smtp.last_code_for("gwen@example.com").expect("code");
    let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete_with_code(code)).await;
    assert_eq!(status, 200, "{body}");

    // Offline at once: no login, no sessions, nothing served, the firehose forgot it.
    let login = json!({ "identifier": "gwen.test", "password": "gwen-password" });
    assert_eq!(app.post_json("/xrpc/com.atproto.server.createSession", &login).await.0, 401);
    let (status, _) = app.call(Method::POST, "com.atproto.server.refreshSession", account["refreshJwt"].as_str(), None).await;
    assert_eq!(status, 400);
    let (status, body) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("RepoNotFound")));
    let (status, _) = app.get_json(&format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}")).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=com.example.file"))
        .await;
    assert_eq!(status, 400);
    let (_, resolved) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=gwen.test").await;
    assert_eq!(resolved["error"], "HandleNotFound");
    let (status, repo_status) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!((status, repo_status["active"].as_bool(), repo_status["status"].as_str()), (200, Some(false), Some("deleted")));
    let events = repo_seq::Entity::find().filter(repo_seq::Column::Did.eq(did.as_str())).all(&app.ctx.db).await.expect("q");
    assert_eq!(events.len(), 1, "only the deletion event remains");
    // The handle and email stay reserved while it can come back.
    let again = json!({ "handle": "gwen.test", "email": "gwen2@example.com", "password": "other-password" });
    let (status, body) = app.post_json("/xrpc/com.atproto.server.createAccount", &again).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.starts_with("Handle already taken")), "{body}");
    // Its data is still here.
    assert!(app.ctx.blobs.exists(&crate::helpers::typed_did(&did), &cid).await.expect("exists"), "blob kept during the grace period");
    assert_eq!(deletion::purge_due(&app.ctx).await.expect("purge"), 0, "not due yet");

    // Restored: served again, and the firehose tells relays to pick it up.
    deletion::restore(&app.ctx, &crate::helpers::typed_did(&did)).await.expect("restore");
    let (status, session) = app.post_json("/xrpc/com.atproto.server.createSession", &login).await;
    assert_eq!(status, 200, "{session}");
    let (status, _) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    assert_eq!(status, 200);
    let (_, repo_status) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!(repo_status["active"].as_bool(), Some(true));
    let types: Vec<String> = repo_seq::Entity::find()
        .filter(repo_seq::Column::Did.eq(did.as_str()))
        .all(&app.ctx.db)
        .await
        .expect("q")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["account", "account", "identity", "sync"]);

    // Deleted again, and this time left past its grace period: purged, files and all.
    let token = session["accessJwt"].as_str().expect("access");
    app.call(Method::POST, "com.atproto.server.requestAccountDelete", Some(token), None).await;
    let code = app.smtp.last_code_for("gwen@example.com").expect("code");
    let (status, body) = app.post_json("/xrpc/com.atproto.server.deleteAccount", &delete_with_code(code)).await;
    assert_eq!(status, 200, "{body}");
    actor::Entity::update_many()
        .col_expr(actor::Column::DeletedAt, sea_orm::sea_query::Expr::value("2000-01-01T00:00:00.000Z"))
        .filter(actor::Column::Did.eq(did.as_str()))
        .exec(&app.ctx.db)
        .await
        .expect("age the deletion");
    assert_eq!(deletion::purge_due(&app.ctx).await.expect("purge"), 1);
    let blocks = repo_block::Entity::find().filter(repo_block::Column::Did.eq(did.as_str())).all(&app.ctx.db).await.expect("q");
    assert!(blocks.is_empty(), "the repository is gone");
    assert!(!app.ctx.blobs.exists(&crate::helpers::typed_did(&did), &cid).await.expect("exists"), "the blob file is gone");
    let (status, body) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("RepoNotFound")));
    assert!(matches!(deletion::restore(&app.ctx, &crate::helpers::typed_did(&did)).await, Err(deletion::RestoreError::NotPending(_))));
    // The handle is free again.
    let (status, body) = app.post_json("/xrpc/com.atproto.server.createAccount", &again).await;
    assert_eq!(status, 200, "{body}");
});
