//! Moving an account's identity between two Aurora servers: service auth for sign-up with an
//! existing DID, the PLC operation signed by the old server, submitted and activated on the new.
//! (Repository and blob transfer joins this flow with importRepo.)

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_moves_to_a_second_server_and_activates_there() {
    let old = TestApp::spawn(Backend::Sqlite).await.expect("old server");
    let new = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PDS_DID_PLC_URL", old.plc.url.as_str()), ("PDS_SERVICE_DID", "did:web:pds2.example")],
    )
    .await
    .expect("new server");
    let account = old.create_account("uma").await;
    let old_token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");

    let path = "com.atproto.server.getServiceAuth?aud=did:web:pds2.example&lxm=com.atproto.server.createAccount";
    let (status, auth) = old.call(Method::GET, path, Some(old_token), None).await;
    assert_eq!(status, 200, "{auth}");
    let service_token = auth["token"].as_str().expect("token");

    let sign_up = json!({ "did": did, "handle": "uma.test", "email": "uma@example.com", "password": "uma-new-pw" });
    let (status, body) = new.call(Method::POST, "com.atproto.server.createAccount", None, Some(&sign_up)).await;
    assert_eq!(status, 401, "an existing DID needs proof: {body}");
    let other = old.create_account("vera").await;
    let mut someone_else = sign_up.clone();
    someone_else["did"] = other["did"].clone();
    let (status, _) =
        new.call(Method::POST, "com.atproto.server.createAccount", Some(service_token), Some(&someone_else)).await;
    assert_eq!(status, 401, "the token proves only its issuer");
    // A token made to live for hours (a wide replay window) is refused, however well signed.
    let key = aurora_locus::keys::signing_key(&old.ctx, &crate::helpers::typed_did(did)).await.expect("key");
    let now = aurora_locus::auth::now_secs();
    let long_lived = aurora_locus::auth::jwt::sign_es(
        &json!({ "iss": did, "aud": "did:web:pds2.example", "lxm": "com.atproto.server.createAccount",
            "iat": now, "exp": now + 3 * 60 * 60, "jti": "long" }),
        &key,
    );
    let (status, body) =
        new.call(Method::POST, "com.atproto.server.createAccount", Some(&long_lived), Some(&sign_up)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("BadJwt")), "{body}");
    let (status, created) =
        new.call(Method::POST, "com.atproto.server.createAccount", Some(service_token), Some(&sign_up)).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["did"], did);
    let new_token = created["accessJwt"].as_str().expect("access").to_owned();
    let (_, session) = new.call(Method::GET, "com.atproto.server.getSession", Some(&new_token), None).await;
    assert_eq!((session["active"].as_bool(), session["status"].as_str()), (Some(false), Some("deactivated")));
    let (_, status_before) =
        new.call(Method::GET, "com.atproto.server.checkAccountStatus", Some(&new_token), None).await;
    assert_eq!(status_before["validDid"], false, "the identity still points at the old server");
    let (status, body) = new.call(Method::POST, "com.atproto.server.activateAccount", Some(&new_token), None).await;
    assert_eq!(status, 400, "activation waits for the identity to move: {body}");

    // The repository (with a post embedding an image) and its blob follow.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n not really an image, but typed as one";
    let uploaded: Value = old
        .client
        .post(old.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(old_token)
        .header("content-type", "image/png")
        .body(png.to_vec())
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let post = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "moving day", "createdAt": "2024-05-01T12:00:00.000Z",
        "embed": { "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": uploaded["blob"] }] } } });
    let (status, created) = old.call(Method::POST, "com.atproto.repo.createRecord", Some(old_token), Some(&post)).await;
    assert_eq!(status, 200, "{created}");
    let car = export(&old, did).await;
    let response = new
        .client
        .post(new.xrpc("com.atproto.repo.importRepo"))
        .bearer_auth(&new_token)
        .header("content-type", "application/vnd.ipld.car")
        .body(car.clone())
        .send()
        .await
        .expect("import");
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap_or_default());
    let (_, missing) = new.call(Method::GET, "com.atproto.repo.listMissingBlobs", Some(&new_token), None).await;
    assert_eq!(missing["blobs"].as_array().map(Vec::len), Some(1), "{missing}");
    assert_eq!(missing["blobs"][0]["cid"], uploaded["blob"]["ref"]["$link"]);
    let reupload = new
        .client
        .post(new.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(&new_token)
        .header("content-type", "image/png")
        .body(png.to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(reupload.status().as_u16(), 200);
    let (_, missing) = new.call(Method::GET, "com.atproto.repo.listMissingBlobs", Some(&new_token), None).await;
    assert_eq!(missing["blobs"].as_array().map(Vec::len), Some(0), "{missing}");
    let (_, counts) = new.call(Method::GET, "com.atproto.server.checkAccountStatus", Some(&new_token), None).await;
    assert_eq!(
        (counts["indexedRecords"].as_i64(), counts["expectedBlobs"].as_i64(), counts["importedBlobs"].as_i64()),
        (Some(1), Some(1), Some(1)),
        "{counts}"
    );
    let mut tampered = car;
    let last = tampered.len() - 3;
    tampered[last] ^= 0xff;
    let response = new
        .client
        .post(new.xrpc("com.atproto.repo.importRepo"))
        .bearer_auth(&new_token)
        .header("content-type", "application/vnd.ipld.car")
        .body(tampered)
        .send()
        .await
        .expect("import");
    assert_eq!(response.status().as_u16(), 400, "a tampered repository is refused");

    // The old server signs an operation pointing the identity at the new one.
    let (_, recommended) =
        new.call(Method::GET, "com.atproto.identity.getRecommendedDidCredentials", Some(&new_token), None).await;
    old.call(Method::POST, "com.atproto.identity.requestPlcOperationSignature", Some(old_token), None).await;
    let code = old.smtp.last_code_for("uma@example.com").expect("code");
    let mut request: Value = recommended.clone();
    request["token"] = json!(code);
    let (status, signed) =
        old.call(Method::POST, "com.atproto.identity.signPlcOperation", Some(old_token), Some(&request)).await;
    assert_eq!(status, 200, "{signed}");
    let (status, body) = new
        .call(
            Method::POST,
            "com.atproto.identity.submitPlcOperation",
            Some(&new_token),
            Some(&json!({ "operation": signed["operation"] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = new.call(Method::POST, "com.atproto.server.activateAccount", Some(&new_token), None).await;
    assert_eq!(status, 200, "{body}");
    let (_, session) = new.call(Method::GET, "com.atproto.server.getSession", Some(&new_token), None).await;
    assert_eq!(session["active"], true);
    let (status, _) =
        old.call(Method::POST, "com.atproto.server.deactivateAccount", Some(old_token), Some(&json!({}))).await;
    assert_eq!(status, 200);
    let doc = old.plc.operations(did).last().expect("ops").op.clone();
    assert_eq!(doc.services["atproto_pds"].endpoint, "http://localhost:2583");
    assert_eq!(doc.rotation_keys, vec![new.ctx.rotation_key.did_key()]);
    let (status, got) = new
        .get_json(&format!(
            "/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={}",
            created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey")
        ))
        .await;
    assert_eq!((status, got["value"]["text"].as_str()), (200, Some("moving day")), "{got}");
}

/// The repository as a CAR, from the old server's `sync.getRepo`.
async fn export(app: &TestApp, did: &str) -> Vec<u8> {
    let response = app.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.expect("CAR").to_vec()
}
