//! Signing up: `describeServer`, `createAccount`, handle resolution and the well-known proof.

use aurora_atproto::crypto::PublicKey;
use aurora_locus::db::entities::{repo_block, repo_root, repo_seq};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

app_test!(describe_server_reports_the_sign_up_rules, |app| {
    let (status, body) = app.get_json("/xrpc/com.atproto.server.describeServer").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["did"], "did:web:localhost");
    assert_eq!(body["availableUserDomains"], json!([".test"]));
    assert_eq!(body["inviteCodeRequired"], false);
    assert_eq!(body["blobUploadLimit"], 5 * 1024 * 1024);
});

app_test!(a_new_account_gets_a_plc_identity_a_signed_repo_and_a_session, |app| {
    let account = app.create_account("alice").await;
    let did = account["did"].as_str().expect("did");
    assert!(did.starts_with("did:plc:") && did.len() == 32, "{did}");
    assert_eq!(account["handle"], "alice.test");

    // The DID document names this server, the handle and a signing key.
    let doc = &account["didDoc"];
    assert_eq!(doc["id"], did);
    assert_eq!(doc["alsoKnownAs"], json!(["at://alice.test"]));
    assert_eq!(doc["service"][0]["type"], "AtprotoPersonalDataServer");
    assert_eq!(doc["service"][0]["serviceEndpoint"], "http://localhost:2583");
    let multikey = doc["verificationMethod"][0]["publicKeyMultibase"].as_str().expect("signing key");
    let signing_key = PublicKey::from_multikey(multikey).expect("a valid multikey");

    // The directory accepted a genesis operation that derives this DID (the double checks the
    // signature and the hash) and rotates with this server's key.
    let ops = app.plc.operations(did);
    assert_eq!(ops.len(), 1);
    assert!(ops[0].op.rotation_keys.contains(&app.ctx.rotation_key.did_key()));

    // The session works.
    let token = account["accessJwt"].as_str().expect("access token");
    let (status, session) = app.call(reqwest::Method::GET, "com.atproto.server.getSession", Some(token), None).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["did"], did);
    assert_eq!(session["email"], "alice@example.com");
    assert_eq!(session["active"], true);

    // The repository's first commit is stored and signed by the key in the DID document.
    let root = repo_root::Entity::find_by_id(crate::helpers::typed_did(did))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("root");
    let commit_block = repo_block::Entity::find()
        .filter(repo_block::Column::Did.eq(did))
        .filter(repo_block::Column::Cid.eq(root.cid.clone()))
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("commit block");
    let commit = aurora_atproto::commit::Commit::from_bytes(&commit_block.content).expect("a v3 commit");
    commit.verify(&signing_key).expect("the commit verifies against the DID document's key");
    assert_eq!(commit.did.as_str(), did);
    assert_eq!(commit.rev, root.rev);

    // Identity, account status, the first commit and a sync point went to the firehose, in order.
    let events = repo_seq::Entity::find()
        .filter(repo_seq::Column::Did.eq(did))
        .order_by_asc(repo_seq::Column::Seq)
        .all(&app.ctx.db)
        .await
        .expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["identity", "account", "commit", "sync"]);
    let commit_event = aurora_atproto::data::from_dag_cbor(&events[2].event).expect("canonical DAG-CBOR");
    let commit_event = aurora_atproto::data::ipld_to_json(&commit_event).expect("json");
    assert_eq!(commit_event["repo"], did);
    assert_eq!(commit_event["commit"]["$link"], root.cid.as_str());
    assert_eq!(commit_event["since"], Value::Null);
});

app_test!(sign_up_refuses_bad_or_taken_handles_and_emails, |app| {
    app.create_account("alice").await;
    let attempt =
        |handle: &str, email: &str| json!({ "handle": handle, "email": email, "password": "a-good-password" });
    let cases = [
        (attempt("alice.test", "other@example.com"), "InvalidRequest"),
        (attempt("ALICE.test", "other@example.com"), "InvalidRequest"),
        (attempt("bob.test", "alice@example.com"), "InvalidRequest"),
        (attempt("bob.test", "ALICE@example.com"), "InvalidRequest"),
        (attempt("bo.test", "bo@example.com"), "InvalidHandle"),
        (attempt("admin.test", "admin@example.com"), "HandleNotAvailable"),
        (attempt("bob.example.com", "bob@example.com"), "UnsupportedDomain"),
        (attempt("bob.test", "not-an-email"), "InvalidRequest"),
        (json!({ "handle": "bob.test", "email": "bob@example.com" }), "InvalidPassword"),
        (json!({ "handle": "bob.test", "password": "a-good-password" }), "InvalidRequest"),
        (json!({ "handle": "bob.test", "email": "bob@example.com", "password": "x".repeat(257) }), "InvalidRequest"),
    ];
    for (input, expected) in cases {
        let (status, body) = app.post_json("/xrpc/com.atproto.server.createAccount", &input).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(expected)), "{input} -> {body}");
    }
    let (status, body) = app
        .post_json("/xrpc/com.atproto.server.createAccount", &json!({ "handle": "not a handle", "password": "x" }))
        .await;
    assert_eq!(status, 400, "{body}");
});

app_test!(hosted_handles_resolve_locally_and_by_well_known, |app| {
    let account = app.create_account("carol").await;
    let (status, body) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=Carol.test").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["did"], account["did"]);
    let (status, body) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=nobody.test").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("HandleNotFound")));
    // Elsewhere a handle that does not resolve is an invalid request, as the reference answers.
    let (status, body) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=nobody.example.com").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");

    let response = app
        .client
        .get(format!("{}/.well-known/atproto-did", app.url))
        .header("host", "carol.test")
        .send()
        .await
        .expect("well-known");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("text"), account["did"].as_str().expect("did"));
    let response = app
        .client
        .get(format!("{}/.well-known/atproto-did", app.url))
        .header("host", "nobody.test")
        .send()
        .await
        .expect("well-known");
    assert_eq!(response.status().as_u16(), 404);
});

#[tokio::test]
async fn with_invites_required_a_code_from_the_admin_admits_one_sign_up_per_use() {
    let app = crate::helpers::TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[("PDS_INVITE_REQUIRED", "true"), ("PDS_ADMIN_PASSWORD", "admin-secret")],
    )
    .await
    .expect("app");
    let (_, described) = app.get_json("/xrpc/com.atproto.server.describeServer").await;
    assert_eq!(described["inviteCodeRequired"], true);
    let sign_up = |name: &str, code: Option<&str>| {
        let mut body =
            json!({ "handle": format!("{name}.test"), "email": format!("{name}@example.com"), "password": "pw-pw-pw" });
        if let Some(code) = code {
            body["inviteCode"] = json!(code);
        }
        body
    };
    let (status, answer) = app.post_json("/xrpc/com.atproto.server.createAccount", &sign_up("dave", None)).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("InvalidInviteCode")), "{answer}");

    let create_code = json!({ "useCount": 1 });
    let response =
        app.client.post(app.xrpc("com.atproto.server.createInviteCode")).json(&create_code).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 401, "only the admin creates codes");
    let too_many = app
        .client
        .post(app.xrpc("com.atproto.server.createInviteCode"))
        .basic_auth("admin", Some("admin-secret"))
        .json(&json!({ "useCount": 2_147_483_648_i64 }))
        .send()
        .await
        .expect("send");
    assert_eq!(too_many.status().as_u16(), 400);
    assert_eq!(too_many.json::<Value>().await.expect("json")["message"], "useCount must be at most 2147483647");
    // A whole number written with a decimal point is the integer it is, as JSON (and the
    // reference) reads it.
    let response = app
        .client
        .post(app.xrpc("com.atproto.server.createInviteCode"))
        .basic_auth("admin", Some("admin-secret"))
        .json(&json!({ "useCount": 1.0 }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let code = response.json::<Value>().await.expect("json")["code"].as_str().expect("code").to_owned();
    assert!(code.starts_with("localhost-"), "{code}");

    let (status, answer) =
        app.post_json("/xrpc/com.atproto.server.createAccount", &sign_up("dave", Some("bogus-code"))).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("InvalidInviteCode")));
    let (status, answer) = app.post_json("/xrpc/com.atproto.server.createAccount", &sign_up("dave", Some(&code))).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = app.post_json("/xrpc/com.atproto.server.createAccount", &sign_up("erin", Some(&code))).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("InvalidInviteCode")), "a one-use code is spent");

    // Codes issued to an account are listed for it, with their uses.
    let dave = answer_did(&app, "dave.test").await;
    let response = app
        .client
        .post(app.xrpc("com.atproto.server.createInviteCodes"))
        .basic_auth("admin", Some("admin-secret"))
        .json(&json!({ "codeCount": 2, "useCount": 3, "forAccounts": [dave] }))
        .send()
        .await
        .expect("send");
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["codes"][0]["codes"].as_array().map(Vec::len), Some(2), "{created}");
    let (_, session) = app
        .post_json(
            "/xrpc/com.atproto.server.createSession",
            &json!({ "identifier": "dave.test", "password": "pw-pw-pw" }),
        )
        .await;
    let (status, listed) = app
        .call(reqwest::Method::GET, "com.atproto.server.getAccountInviteCodes", session["accessJwt"].as_str(), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["codes"].as_array().map(Vec::len), Some(2));
    assert_eq!(listed["codes"][0]["available"], 3);
}

async fn answer_did(app: &crate::helpers::TestApp, handle: &str) -> String {
    let (_, body) = app.get_json(&format!("/xrpc/com.atproto.identity.resolveHandle?handle={handle}")).await;
    body["did"].as_str().expect("did").to_owned()
}

app_test!(reserved_signing_keys_are_stable_per_did_and_the_service_did_document_is_served, |app| {
    let app = &app;
    let reserve = |did: Option<&str>| {
        let body = did.map_or_else(|| json!({}), |d| json!({ "did": d }));
        async move { app.post_json("/xrpc/com.atproto.server.reserveSigningKey", &body).await }
    };
    let (status, first) = reserve(Some("did:plc:ewvi7nxzyoun6zhxrhs64oiz")).await;
    assert_eq!(status, 200, "{first}");
    let key = first["signingKey"].as_str().expect("key");
    assert!(aurora_atproto::crypto::PublicKey::from_did_key(key).is_ok(), "{key}");
    let (_, again) = reserve(Some("did:plc:ewvi7nxzyoun6zhxrhs64oiz")).await;
    assert_eq!(again["signingKey"], key);
    let (_, fresh) = reserve(None).await;
    assert_ne!(fresh["signingKey"], key);

    let (status, _) = app.get_json("/xrpc/com.atproto.temp.checkSignupQueue").await;
    assert_eq!(status, 401, "only a signed-up account asks");
    let account = app.create_account("quinn").await;
    let (status, queue) =
        app.call(reqwest::Method::GET, "com.atproto.temp.checkSignupQueue", account["accessJwt"].as_str(), None).await;
    assert_eq!((status, queue["activated"].as_bool()), (200, Some(true)));

    let (status, doc) = app.get_json("/.well-known/did.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["id"], "did:web:localhost");
    assert_eq!(doc["service"][0]["serviceEndpoint"], "http://localhost:2583");
});

app_test!(an_account_read_in_one_go_is_the_account_read_row_by_row, |app| {
    use aurora_locus::account::{find, find_by_did, Lookup};
    use aurora_locus::db::entities::actor;
    let account = app.create_account("ursula").await;
    let app = &app;
    let did = crate::helpers::typed_did(account["did"].as_str().expect("did"));
    let reader = app.ctx.reader.as_deref();
    let same = |what: &'static str| {
        let did = did.clone();
        async move {
            let by_rows = find(&app.ctx.db, Lookup::Did(&did)).await.expect("find");
            let in_one = find_by_did(&app.ctx.db, reader, &did).await.expect("find_by_did");
            assert_eq!(format!("{in_one:?}"), format!("{by_rows:?}"), "{what}");
            in_one
        }
    };
    let found = same("active").await.expect("found");
    assert_eq!(found.email(), Some("ursula@example.com"));
    let set = |column: actor::Column, value: Option<&'static str>| {
        let did = did.clone();
        async move {
            actor::Entity::update_many()
                .col_expr(column, sea_orm::sea_query::Expr::value(value))
                .filter(actor::Column::Did.eq(did.as_str()))
                .exec(&app.ctx.db)
                .await
                .expect("update");
        }
    };
    set(actor::Column::DeactivatedAt, Some("2026-01-01T00:00:00.000Z")).await;
    assert!(same("deactivated").await.expect("found").actor.deactivated_at.is_some());
    set(actor::Column::TakedownRef, Some("ticket-1")).await;
    set(actor::Column::TakedownUntil, Some("2030-01-01T00:00:00.000Z")).await;
    same("suspended").await;
    set(actor::Column::DeletedAt, Some("2026-01-02T00:00:00.000Z")).await;
    assert!(same("deleted").await.is_none(), "a deleted account is not found");
    let unknown = crate::helpers::typed_did("did:plc:nobodyhereatall0000000");
    assert!(find_by_did(&app.ctx.db, reader, &unknown).await.expect("find").is_none());
});
