//! Handles and DIDs: changing the handle, resolving identities, and the PLC operation flow.

use reqwest::Method;
use serde_json::{json, Value};

app_test!(a_handle_change_updates_the_plc_directory_and_the_firehose, |app| {
    let account = app.create_account("olga").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let (status, body) = app
        .call(Method::POST, "com.atproto.identity.updateHandle", Some(token), Some(&json!({ "handle": "olga2.test" })))
        .await;
    assert_eq!(status, 200, "{body}");
    let ops = app.plc.operations(did);
    assert_eq!(ops.len(), 2, "a second operation, chained to the first (the double checks prev and signature)");
    assert_eq!(ops[1].op.also_known_as, vec!["at://olga2.test".to_owned()]);
    let (_, session) = app.call(Method::GET, "com.atproto.server.getSession", Some(token), None).await;
    assert_eq!(session["handle"], "olga2.test");
    let (_, resolved) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=olga2.test").await;
    assert_eq!(resolved["did"], did);
    let (_, old) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=olga.test").await;
    assert_eq!(old["error"], "HandleNotFound", "{old}");

    app.create_account("pete").await;
    let (status, body) = app
        .call(Method::POST, "com.atproto.identity.updateHandle", Some(token), Some(&json!({ "handle": "pete.test" })))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("HandleNotAvailable")), "{body}");
});

app_test!(a_handle_on_an_own_domain_must_point_at_the_did_first, |app| {
    let account = app.create_account("quinn").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let change = json!({ "handle": "quinn.example.com" });
    let (status, body) = app.call(Method::POST, "com.atproto.identity.updateHandle", Some(token), Some(&change)).await;
    assert_eq!(status, 400, "{body}");
    app.dns.set_txt("_atproto.quinn.example.com", &format!("did={did}"));
    let (status, body) = app.call(Method::POST, "com.atproto.identity.updateHandle", Some(token), Some(&change)).await;
    assert_eq!(status, 200, "{body}");
    let (status, resolved) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=quinn.example.com").await;
    assert_eq!((status, resolved["did"].as_str()), (200, Some(did)));

    // resolveIdentity checks both directions.
    let (status, info) = app.get_json("/xrpc/com.atproto.identity.resolveIdentity?identifier=quinn.example.com").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!((info["did"].as_str(), info["handle"].as_str()), (Some(did), Some("quinn.example.com")));
    app.dns.set_txt("_atproto.quinn.example.com", "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    let (_, info) =
        app.call(Method::POST, "com.atproto.identity.refreshIdentity", None, Some(&json!({ "identifier": did }))).await;
    assert_eq!(info["handle"], "handle.invalid", "a handle that no longer points back is not trusted: {info}");
});

app_test!(dids_resolve_through_the_directory, |app| {
    let account = app.create_account("rita").await;
    let did = account["did"].as_str().expect("did");
    let (status, body) = app.get_json(&format!("/xrpc/com.atproto.identity.resolveDid?did={did}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["didDoc"]["id"], did);
    let (status, body) =
        app.get_json("/xrpc/com.atproto.identity.resolveDid?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("DidNotFound")), "{body}");
});

app_test!(an_account_signs_a_plc_operation_only_with_the_mailed_code, |app| {
    let account = app.create_account("sam").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");

    let (status, creds) =
        app.call(Method::GET, "com.atproto.identity.getRecommendedDidCredentials", Some(token), None).await;
    assert_eq!(status, 200, "{creds}");
    assert_eq!(creds["rotationKeys"], json!([app.ctx.rotation_key.did_key()]));
    assert_eq!(creds["alsoKnownAs"], json!(["at://sam.test"]));
    assert_eq!(creds["services"]["atproto_pds"]["endpoint"], "http://localhost:2583");

    let app = &app;
    let sign = |body: Value| async move {
        app.call(Method::POST, "com.atproto.identity.signPlcOperation", Some(token), Some(&body)).await
    };
    let (status, _) = sign(json!({})).await;
    assert_eq!(status, 400, "a code is required");
    let (status, body) =
        app.call(Method::POST, "com.atproto.identity.requestPlcOperationSignature", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    let code = app.smtp.last_code_for("sam@example.com").expect("code");
    let (status, body) = sign(json!({ "token": "DDDDD-DDDDD" })).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")));

    let extra_key = aurora_atproto::crypto::Keypair::generate(aurora_atproto::crypto::KeyType::K256).did_key();
    let mut rotation = creds["rotationKeys"].as_array().expect("keys").clone();
    rotation.insert(0, json!(extra_key));
    let (status, signed) = sign(json!({ "token": code, "rotationKeys": rotation })).await;
    assert_eq!(status, 200, "{signed}");
    let operation = signed["operation"].clone();
    assert_eq!(operation["rotationKeys"][0], extra_key);

    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.identity.submitPlcOperation",
            Some(token),
            Some(&json!({ "operation": operation })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ops = app.plc.operations(did);
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[1].op.rotation_keys[0], extra_key);

    // An operation that would take the account away from this server's endpoint is refused.
    let mut moved = operation.clone();
    moved["services"]["atproto_pds"]["endpoint"] = json!("https://elsewhere.example");
    let (status, body) = app
        .call(
            Method::POST,
            "com.atproto.identity.submitPlcOperation",
            Some(token),
            Some(&json!({ "operation": moved })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
});
