//! The admin API: every `com.atproto.admin` method, who may call it (administrator, moderator,
//! moderation service), the audit log, and takedowns of accounts, records and blobs enforced on
//! every path until they are reversed.

use reqwest::Method;
use serde_json::{json, Value};

use crate::firehose::{connect, next_frame};
use crate::helpers::{Backend, TestApp, PNG};

const ADMIN: &str = "admin-secret";
const MODERATOR: &str = "moderator-secret-1234";

const SETTINGS: [(&str, &str); 2] = [("PDS_ADMIN_PASSWORD", ADMIN), ("AURORA_MODERATOR_PASSWORD", MODERATOR)];

/// Calls an admin method with basic credentials: a GET with `query`, or a POST with `body`.
async fn as_user(
    app: &TestApp,
    user: &str,
    password: &str,
    method: Method,
    nsid_and_query: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.xrpc(nsid_and_query)).basic_auth(user, Some(password));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin_get(app: &TestApp, nsid_and_query: &str) -> (u16, Value) {
    as_user(app, "admin", ADMIN, Method::GET, nsid_and_query, None).await
}

async fn admin_post(app: &TestApp, nsid: &str, body: Value) -> (u16, Value) {
    as_user(app, "admin", ADMIN, Method::POST, nsid, Some(&body)).await
}

fn repo_ref(did: &str) -> Value {
    json!({ "$type": "com.atproto.admin.defs#repoRef", "did": did })
}

async fn take_down(app: &TestApp, subject: Value, applied: bool) {
    let body = json!({ "subject": subject, "takedown": { "applied": applied, "ref": "mod-ticket-7" } });
    let (status, answer) = admin_post(app, "com.atproto.admin.updateSubjectStatus", body).await;
    assert_eq!(status, 200, "updateSubjectStatus: {answer}");
    assert_eq!(answer["takedown"]["applied"], applied);
}

async fn post(app: &TestApp, token: &str, did: &str, text: &str) -> (u16, Value) {
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" } });
    app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await
}

fn error(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"].as_str().unwrap_or("-"))
}

/// The `#account` events for `did` on the firehose from the start, as (active, status).
async fn account_events(app: &TestApp, did: &str, want: usize) -> Vec<(bool, Option<String>)> {
    let mut socket = connect(app, Some(0)).await;
    let mut found = Vec::new();
    while found.len() < want {
        let Some((header, body)) = next_frame(&mut socket).await else { break };
        if header["t"] == "#account" && body["did"] == did {
            found.push((body["active"].as_bool().expect("active"), body["status"].as_str().map(str::to_owned)));
        }
    }
    found
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    let entries = aurora_locus::admin::audit::list(&app.ctx.db, None, None, 100).await.expect("audit");
    entries.into_iter().rev().map(|e| (e.operator, e.action, e.subject)).collect()
}

app_test!(an_account_takedown_closes_every_path_until_it_is_reversed, [
    "PDS_ADMIN_PASSWORD" => "admin-secret",
], |app| {
    let account = app.create_account("tara").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let refresh = account["refreshJwt"].as_str().expect("refresh").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let (status, created) = post(&app, &token, &did, "before").await;
    assert_eq!(status, 200, "{created}");
    let rkey = created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned();

    take_down(&app, repo_ref(&did), true).await;

    // The session in hand stops at once; the refresh token is gone.
    assert_eq!(error(&post(&app, &token, &did, "after").await), (401, "AccountTakedown"));
    let refreshed = app.call(Method::POST, "com.atproto.server.refreshSession", Some(&refresh), None).await;
    assert_ne!(refreshed.0, 200, "{}", refreshed.1);
    let service_auth = app
        .call(Method::GET, "com.atproto.server.getServiceAuth?aud=did:web:example.com", Some(&token), None)
        .await;
    assert_ne!(service_auth.0, 200, "{}", service_auth.1);
    // Signing in again yields no usable session.
    let login = json!({ "identifier": "tara.test", "password": "tara-password" });
    let (_, session) = app.post_json("/xrpc/com.atproto.server.createSession", &login).await;
    if let Some(fresh) = session["accessJwt"].as_str() {
        assert_eq!(error(&post(&app, fresh, &did, "again").await), (401, "AccountTakedown"));
    }

    // Reads of the repository and its records refuse it.
    let reads = [
        format!("com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"),
        format!("com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post"),
        format!("com.atproto.repo.describeRepo?repo={did}"),
        format!("com.atproto.sync.getRepo?did={did}"),
        format!("com.atproto.sync.getLatestCommit?did={did}"),
        format!("com.atproto.sync.getRecord?did={did}&collection=app.bsky.feed.post&rkey={rkey}"),
        format!("com.atproto.sync.listBlobs?did={did}"),
    ];
    for read in &reads {
        let (status, body) = app.get_json(&format!("/xrpc/{read}")).await;
        assert_eq!(status, 400, "{read}: {body}");
    }
    let (_, status) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!((status["active"].as_bool(), status["status"].as_str()), (Some(false), Some("takendown")));
    let (_, listed) = app.get_json("/xrpc/com.atproto.sync.listRepos").await;
    let entry = listed["repos"].as_array().expect("repos").iter().find(|r| r["did"] == did.as_str()).cloned();
    assert_eq!(entry.expect("listed")["status"], "takendown");
    // The operators still read it.
    let (status, _) = admin_get(&app, &format!("com.atproto.sync.getLatestCommit?did={did}")).await;
    assert_eq!(status, 200);
    let (status, subject) = admin_get(&app, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await;
    assert_eq!(status, 200, "{subject}");
    assert_eq!(subject["takedown"], json!({ "applied": true, "ref": "mod-ticket-7" }));
    assert_eq!(subject["deactivated"], json!({ "applied": false }));

    take_down(&app, repo_ref(&did), false).await;

    let (status, session) = app.post_json("/xrpc/com.atproto.server.createSession", &login).await;
    assert_eq!(status, 200, "{session}");
    let fresh = session["accessJwt"].as_str().expect("access");
    assert_eq!(post(&app, fresh, &did, "back").await.0, 200);
    for read in &reads {
        let (status, body) = app.get_json(&format!("/xrpc/{read}")).await;
        assert_eq!(status, 200, "{read}: {body}");
    }
    let (_, subject) = admin_get(&app, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await;
    assert_eq!(subject["takedown"], json!({ "applied": false }));

    // The firehose said so, both ways.
    let events = account_events(&app, &did, 3).await;
    assert_eq!(events[1..], [(false, Some("takendown".into())), (true, None)], "{events:?}");
    let audit = audit_actions(&app).await;
    assert_eq!(
        audit,
        [
            ("admin".into(), "takedown".into(), Some(did.clone())),
            ("admin".into(), "reverse-takedown".into(), Some(did.clone())),
        ]
    );
});

app_test!(a_record_takedown_hides_it_from_record_reads_until_reversed, [
    "PDS_ADMIN_PASSWORD" => "admin-secret",
], |app| {
    let account = app.create_account("rhea").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let (_, created) = post(&app, token, did, "contested").await;
    let uri = created["uri"].as_str().expect("uri");
    let cid = created["cid"].as_str().expect("cid");
    let rkey = uri.rsplit('/').next().expect("rkey");
    let get_record = format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}");
    let list = format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post");
    let sync_record = format!("/xrpc/com.atproto.sync.getRecord?did={did}&collection=app.bsky.feed.post&rkey={rkey}");

    let strong_ref = json!({ "$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cid });
    take_down(&app, strong_ref.clone(), true).await;

    let (status, body) = app.get_json(&get_record).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("RecordNotFound")), "{body}");
    let (_, listed) = app.get_json(&list).await;
    assert_eq!(listed["records"], json!([]));
    let (status, body) = app.get_json(&sync_record).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("RecordNotFound")), "{body}");
    let (status, subject) = admin_get(&app, &format!("com.atproto.admin.getSubjectStatus?uri={uri}")).await;
    assert_eq!(status, 200, "{subject}");
    assert_eq!(subject["subject"], strong_ref);
    assert_eq!(subject["takedown"], json!({ "applied": true, "ref": "mod-ticket-7" }));
    // The operators and the account itself still get the proof.
    let (status, _) = admin_get(&app, &sync_record["/xrpc/".len()..]).await;
    assert_eq!(status, 200);

    take_down(&app, strong_ref, false).await;
    let (status, body) = app.get_json(&get_record).await;
    assert_eq!((status, body["cid"].as_str()), (200, Some(cid)), "{body}");
    let (_, listed) = app.get_json(&list).await;
    assert_eq!(listed["records"].as_array().map(Vec::len), Some(1));
    let response = app.get(&sync_record).await;
    assert_eq!(response.status(), 200);
});

app_test!(a_blob_takedown_quarantines_its_bytes_until_reversed, [
    "PDS_ADMIN_PASSWORD" => "admin-secret",
], |app| {
    use aurora_locus::blobs::BlobStore;
    let account = app.create_account("bess").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let blob = app.upload_blob(token, PNG, "image/png").await;
    let cid = blob["ref"]["$link"].as_str().expect("cid").to_owned();
    let record = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "look", "createdAt": "2024-05-01T12:00:00.000Z",
        "embed": { "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": blob }] } } });
    let (status, answer) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&record)).await;
    assert_eq!(status, 200, "{answer}");
    let get_blob = format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}");
    assert_eq!(app.get(&get_blob).await.status(), 200);

    let subject = json!({ "$type": "com.atproto.admin.defs#repoBlobRef", "did": did, "cid": cid });
    take_down(&app, subject.clone(), true).await;
    let (status, body) = app.get_json(&get_blob).await;
    assert_eq!(status, 400, "{body}");
    let typed_cid: cid::Cid = cid.parse().expect("cid");
    let did_typed = crate::helpers::typed_did(did);
    assert!(!app.ctx.blobs.exists(&did_typed, &typed_cid).await.expect("exists"), "moved out of reach");
    assert!(app.ctx.blobs.is_quarantined(&did_typed, &typed_cid).await.expect("quarantined"), "kept in quarantine");
    let (status, state) = admin_get(&app, &format!("com.atproto.admin.getSubjectStatus?did={did}&blob={cid}")).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["subject"]["cid"], cid.as_str());
    assert_eq!(state["takedown"]["applied"], true);
    let (status, body) = admin_get(&app, &format!("com.atproto.admin.getSubjectStatus?blob={cid}")).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Must provide a did to request blob state")));

    take_down(&app, subject, false).await;
    let response = app.get(&get_blob).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
});

#[tokio::test]
async fn moderators_read_and_take_down_but_may_not_delete_or_change_credentials() {
    let app = TestApp::spawn_with(Backend::Sqlite, &SETTINGS).await.expect("app");
    let account = app.create_account("mona").await;
    let did = account["did"].as_str().expect("did");
    let moderator = |method, path: String, body: Option<Value>| {
        let app = &app;
        async move { as_user(app, "moderator", MODERATOR, method, &path, body.as_ref()).await }
    };
    let (status, info) = moderator(Method::GET, format!("com.atproto.admin.getAccountInfo?did={did}"), None).await;
    assert_eq!((status, info["handle"].as_str()), (200, Some("mona.test")), "{info}");
    let body = json!({ "subject": repo_ref(did), "takedown": { "applied": true } });
    let (status, answer) = moderator(Method::POST, "com.atproto.admin.updateSubjectStatus".into(), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = moderator(Method::GET, format!("com.atproto.sync.getLatestCommit?did={did}"), None).await;
    assert_eq!(status, 200, "a moderator reads a taken-down repository");

    for (nsid, body) in [
        ("com.atproto.admin.deleteAccount", json!({ "did": did })),
        ("com.atproto.admin.updateAccountPassword", json!({ "did": did, "password": "new-password" })),
        ("com.atproto.admin.updateAccountEmail", json!({ "account": did, "email": "x@example.com" })),
        ("com.atproto.admin.updateAccountHandle", json!({ "did": did, "handle": "other.test" })),
        ("com.atproto.server.createInviteCode", json!({ "useCount": 1 })),
    ] {
        let answer = moderator(Method::POST, nsid.into(), Some(body)).await;
        assert_eq!(error(&answer), (401, "AuthenticationRequired"), "{nsid}: {}", answer.1);
    }
    let (_, info) = admin_get(&app, &format!("com.atproto.admin.getAccountInfo?did={did}")).await;
    assert_eq!(info["email"], "mona@example.com", "nothing changed");

    // The moderator's password is not the administrator's, nor is a wrong one anybody's.
    let answer =
        as_user(&app, "admin", MODERATOR, Method::GET, &format!("com.atproto.admin.getAccountInfo?did={did}"), None)
            .await;
    assert_eq!(error(&answer), (401, "AuthenticationRequired"));
    let answer =
        as_user(&app, "moderator", "guess", Method::GET, &format!("com.atproto.admin.getAccountInfo?did={did}"), None)
            .await;
    assert_eq!(error(&answer), (401, "AuthenticationRequired"));
    let audit = audit_actions(&app).await;
    assert_eq!(audit, [("moderator".into(), "takedown".into(), Some(did.to_owned()))]);
}

#[tokio::test]
async fn without_a_moderator_password_there_is_no_moderator() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PDS_ADMIN_PASSWORD", ADMIN)]).await.expect("app");
    let account = app.create_account("nell").await;
    let path = format!("com.atproto.admin.getAccountInfo?did={}", account["did"].as_str().expect("did"));
    let answer = as_user(&app, "moderator", "", Method::GET, &path, None).await;
    assert_eq!(error(&answer), (401, "AuthenticationRequired"));
}

#[tokio::test]
async fn the_moderation_service_calls_the_moderators_methods_with_a_service_token() {
    // The moderation service is an account on another server that shares the PLC directory.
    let service_host = TestApp::spawn(Backend::Sqlite).await.expect("service host");
    let labeler = service_host.create_account("labeler").await;
    let labeler_did = labeler["did"].as_str().expect("did");
    let labeler_token = labeler["accessJwt"].as_str().expect("access");
    let stranger = service_host.create_account("stranger").await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PDS_DID_PLC_URL", service_host.plc.url.as_str()),
            ("PDS_MOD_SERVICE_DID", labeler_did),
            ("PDS_MOD_SERVICE_URL", "http://127.0.0.1:9"),
        ],
    )
    .await
    .expect("app");
    let account = app.create_account("vera").await;
    let did = account["did"].as_str().expect("did");
    let service_did = app.ctx.config.service_did.clone();
    let mint = |token: &str, lxm: &str| {
        let path = format!("com.atproto.server.getServiceAuth?aud={service_did}&lxm={lxm}");
        let token = token.to_owned();
        let host = &service_host;
        async move {
            let (status, body) = host.call(Method::GET, &path, Some(&token), None).await;
            assert_eq!(status, 200, "{body}");
            body["token"].as_str().expect("token").to_owned()
        }
    };

    let token = mint(labeler_token, "com.atproto.admin.updateSubjectStatus").await;
    let body = json!({ "subject": repo_ref(did), "takedown": { "applied": true, "ref": "ozone-1" } });
    let answer = app.call(Method::POST, "com.atproto.admin.updateSubjectStatus", Some(&token), Some(&body)).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let token = mint(labeler_token, "com.atproto.admin.getSubjectStatus").await;
    let (status, subject) =
        app.call(Method::GET, &format!("com.atproto.admin.getSubjectStatus?did={did}"), Some(&token), None).await;
    assert_eq!((status, subject["takedown"]["ref"].as_str()), (200, Some("ozone-1")), "{subject}");

    // Not for another method, not for the administrator's methods, and not from anyone else.
    let answer =
        app.call(Method::GET, &format!("com.atproto.admin.getAccountInfo?did={did}"), Some(&token), None).await;
    assert_eq!(error(&answer), (401, "BadJwtLexiconMethod"), "{}", answer.1);
    let token = mint(labeler_token, "com.atproto.admin.deleteAccount").await;
    let answer =
        app.call(Method::POST, "com.atproto.admin.deleteAccount", Some(&token), Some(&json!({ "did": did }))).await;
    assert_eq!(answer.0, 401, "{}", answer.1);
    let token = mint(stranger["accessJwt"].as_str().expect("access"), "com.atproto.admin.getSubjectStatus").await;
    let answer =
        app.call(Method::GET, &format!("com.atproto.admin.getSubjectStatus?did={did}"), Some(&token), None).await;
    assert_eq!(error(&answer), (401, "UntrustedIss"), "{}", answer.1);
    let audit = audit_actions(&app).await;
    assert_eq!(audit, [(labeler_did.to_owned(), "takedown".into(), Some(did.to_owned()))]);
}

app_test!(the_administrator_manages_accounts_and_invites, [
    "PDS_ADMIN_PASSWORD" => "admin-secret",
    "PDS_INVITE_REQUIRED" => "true",
], |app| {
    let (status, created) = admin_post(&app, "com.atproto.server.createInviteCode", json!({ "useCount": 2 })).await;
    assert_eq!(status, 200, "{created}");
    let code = created["code"].as_str().expect("code").to_owned();
    let signup = |name: &str| {
        json!({ "handle": format!("{name}.test"), "email": format!("{name}@example.com"),
                "password": format!("{name}-password"), "inviteCode": code })
    };
    let (status, ada) = app.post_json("/xrpc/com.atproto.server.createAccount", &signup("ada")).await;
    assert_eq!(status, 200, "{ada}");
    let did = ada["did"].as_str().expect("did").to_owned();
    let old_token = ada["accessJwt"].as_str().expect("access").to_owned();

    // What an operator sees of an account.
    let (status, info) = admin_get(&app, &format!("com.atproto.admin.getAccountInfo?did={did}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!((info["handle"].as_str(), info["email"].as_str()), (Some("ada.test"), Some("ada@example.com")));
    assert_eq!(info["invitedBy"]["code"], code.as_str());
    assert_eq!(info["invitedBy"]["uses"][0]["usedBy"], did.as_str());
    assert_eq!(info["invitesDisabled"], false);
    let (status, infos) =
        admin_get(&app, &format!("com.atproto.admin.getAccountInfos?dids={did}&dids=did:plc:unknownunknownunknown")).await;
    assert_eq!((status, infos["infos"].as_array().map(Vec::len)), (200, Some(1)), "{infos}");
    let answer = admin_get(&app, "com.atproto.admin.getAccountInfo?did=did:plc:unknownunknownunknown").await;
    assert_eq!(error(&answer), (400, "NotFound"));
    let (_, found) = admin_get(&app, "com.atproto.admin.searchAccounts?email=ADA@").await;
    assert_eq!(found["accounts"][0]["did"], did.as_str(), "{found}");
    let (_, found) = admin_get(&app, "com.atproto.admin.searchAccounts?email=nobody").await;
    assert_eq!(found["accounts"], json!([]));

    // Invites.
    for nsid in ["com.atproto.admin.disableAccountInvites", "com.atproto.admin.enableAccountInvites"] {
        let (status, body) = admin_post(&app, nsid, json!({ "account": did, "note": "spam" })).await;
        assert_eq!(status, 200, "{nsid}: {body}");
        let (_, info) = admin_get(&app, &format!("com.atproto.admin.getAccountInfo?did={did}")).await;
        assert_eq!(info["invitesDisabled"], nsid.ends_with("disableAccountInvites"));
    }
    let (_, listed) = admin_get(&app, "com.atproto.admin.getInviteCodes?sort=usage").await;
    assert_eq!(listed["codes"][0]["code"], code.as_str(), "{listed}");
    assert_eq!(error(&admin_get(&app, "com.atproto.admin.getInviteCodes?sort=oldest").await), (400, "InvalidRequest"));
    assert_eq!(error(&admin_get(&app, "com.atproto.admin.getInviteCodes?cursor=nonsense").await), (400, "InvalidRequest"));
    let answer = admin_post(&app, "com.atproto.admin.disableInviteCodes", json!({ "accounts": ["admin"] })).await;
    assert_eq!(answer.1["message"], "cannot disable admin invite codes");
    let (status, _) = admin_post(&app, "com.atproto.admin.disableInviteCodes", json!({ "codes": [code] })).await;
    assert_eq!(status, 200);
    let (status, refused) = app.post_json("/xrpc/com.atproto.server.createAccount", &signup("bob")).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("InvalidInviteCode")), "{refused}");
    let (_, listed) = admin_get(&app, "com.atproto.admin.getInviteCodes").await;
    assert_eq!(listed["codes"][0]["disabled"], true);
    // As the reference pages: a non-empty page carries a cursor, and the page after the last
    // code is empty and carries none.
    let codes = listed["codes"].as_array().map_or(0, Vec::len);
    let after = listed["cursor"].as_str().expect("a non-empty page's cursor");
    let (_, rest) = admin_get(&app, &format!("com.atproto.admin.getInviteCodes?cursor={after}")).await;
    assert_eq!((codes > 0, rest["codes"].clone(), rest.get("cursor")), (true, json!([]), None), "{rest}");

    // Email, handle and password.
    let (status, body) =
        admin_post(&app, "com.atproto.admin.updateAccountEmail", json!({ "account": "ada.test", "email": "ada@new.example" }))
            .await;
    assert_eq!(status, 200, "{body}");
    let answer =
        admin_post(&app, "com.atproto.admin.updateAccountEmail", json!({ "account": "nobody.test", "email": "a@b.c" })).await;
    assert_eq!(answer.1["message"], "Account does not exist: nobody.test");
    let (status, body) =
        admin_post(&app, "com.atproto.admin.updateAccountHandle", json!({ "did": did, "handle": "ada2.test" })).await;
    assert_eq!(status, 200, "{body}");
    let (_, resolved) = app.get_json("/xrpc/com.atproto.identity.resolveHandle?handle=ada2.test").await;
    assert_eq!(resolved["did"], did.as_str());
    let last = app.plc.operations(&did).last().cloned().expect("a PLC operation");
    assert_eq!(serde_json::to_value(&last).expect("op")["alsoKnownAs"][0], "at://ada2.test");
    let (_, info) = admin_get(&app, &format!("com.atproto.admin.getAccountInfo?did={did}")).await;
    assert_eq!((info["handle"].as_str(), info["email"].as_str()), (Some("ada2.test"), Some("ada@new.example")));
    assert!(info.get("emailConfirmedAt").is_none());
    let answer =
        admin_post(&app, "com.atproto.admin.updateAccountPassword", json!({ "did": did, "password": "x".repeat(300) }))
            .await;
    assert_eq!(answer.1["message"], "Invalid password length.");
    let (status, _) =
        admin_post(&app, "com.atproto.admin.updateAccountPassword", json!({ "did": did, "password": "fresh-pass" })).await;
    assert_eq!(status, 200);
    let (status, _) = app.call(Method::GET, "com.atproto.server.getSession", Some(&old_token), None).await;
    assert_ne!(status, 200, "the old session ended");
    let login = json!({ "identifier": "ada2.test", "password": "fresh-pass" });
    let (status, session) = app.post_json("/xrpc/com.atproto.server.createSession", &login).await;
    assert_eq!(status, 200, "{session}");

    // A message from the moderators.
    let body = json!({ "recipientDid": did, "senderDid": did, "content": "Please stop.", "subject": "A warning" });
    let (status, sent) = admin_post(&app, "com.atproto.admin.sendEmail", body).await;
    assert_eq!((status, sent["sent"].as_bool()), (200, Some(true)), "{sent}");
    let message = app.smtp.messages().into_iter().last().expect("a message");
    assert!(message.data.contains("Please stop.") && message.data.contains("A warning"), "{}", message.data);
    assert!(message.to.iter().any(|to| to.contains("ada@new.example")));

    // Deletion.
    let (status, _) = admin_post(&app, "com.atproto.admin.deleteAccount", json!({ "did": did })).await;
    assert_eq!(status, 200);
    assert_eq!(error(&admin_get(&app, &format!("com.atproto.admin.getAccountInfo?did={did}")).await), (400, "NotFound"));
    // Deletion also drops the account's earlier events from the log.
    let events = account_events(&app, &did, 1).await;
    assert_eq!(events, [(false, Some("deleted".into()))], "{events:?}");

    let actions: Vec<String> = audit_actions(&app).await.into_iter().map(|(_, action, _)| action).collect();
    assert_eq!(
        actions,
        [
            "createInviteCode",
            "disableAccountInvites",
            "enableAccountInvites",
            "disableInviteCodes",
            "updateAccountEmail",
            "updateAccountHandle",
            "updateAccountPassword",
            "sendEmail",
            "deleteAccount",
        ]
    );
});

app_test!(a_suspension_lifts_by_itself_when_it_runs_out, [
    "PDS_ADMIN_PASSWORD" => "admin-secret",
], |app| {
    let account = app.create_account("sven").await;
    let did = account["did"].as_str().expect("did");
    let soon = aurora_atproto::syntax::Datetime::from_unix_micros(
        aurora_atproto::syntax::Datetime::now().unix_micros() + 1_500_000,
    );
    let past = json!({ "subject": repo_ref(did), "takedown": { "applied": true, "expiresAt": "2001-01-01T00:00:00Z" } });
    let answer = admin_post(&app, "com.atproto.admin.updateSubjectStatus", past).await;
    assert_eq!(answer.1["message"], "expiresAt must be in the future");
    let body = json!({ "subject": repo_ref(did), "takedown": { "applied": true, "expiresAt": soon.as_str() } });
    let (status, answer) = admin_post(&app, "com.atproto.admin.updateSubjectStatus", body).await;
    assert_eq!(status, 200, "{answer}");
    let (_, state) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!(state["status"], "suspended", "{state}");
    let (_, subject) = admin_get(&app, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await;
    assert_eq!(subject["takedown"]["expiresAt"], soon.as_str());
    let token = account["accessJwt"].as_str().expect("access");
    assert_eq!(error(&post(&app, token, did, "while suspended").await), (401, "AccountTakedown"));

    assert_eq!(aurora_locus::admin::takedown::lift_expired(&app.ctx).await.expect("lift"), 0, "not yet");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(aurora_locus::admin::takedown::lift_expired(&app.ctx).await.expect("lift"), 1);
    let (_, state) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!(state["active"], true, "{state}");
    let events = account_events(&app, did, 3).await;
    assert_eq!(events[1..], [(false, Some("suspended".into())), (true, None)], "{events:?}");
    let audit = audit_actions(&app).await;
    assert_eq!(audit.last(), Some(&("system".into(), "suspension-expired".into(), Some(did.to_owned()))));
});

#[tokio::test]
async fn methods_served_elsewhere_are_forwarded_rather_than_refused() {
    let double = crate::appview_double::AppViewDouble::start().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PDS_BSKY_APP_VIEW_URL", double.url.as_str()), ("PDS_BSKY_APP_VIEW_DID", double.did.as_str())],
    )
    .await
    .expect("app");
    double.use_plc(&app.plc.url);
    let account = app.create_account("fern").await;
    let token = account["accessJwt"].as_str().expect("access");
    let (status, body) = app.call(Method::GET, "com.atproto.label.queryLabels?uriPatterns=*", Some(token), None).await;
    assert_ne!(body["error"], "MethodNotImplemented", "{status} {body}");
    assert!(double.calls().iter().any(|c| c.nsid == "com.atproto.label.queryLabels"), "the AppView was asked");

    // A taken-down account is forwarded nowhere.
    let did = account["did"].as_str().expect("did");
    let body = json!({ "subject": repo_ref(did), "takedown": { "applied": true } });
    let response = app
        .client
        .post(app.xrpc("com.atproto.admin.updateSubjectStatus"))
        .basic_auth("admin", Some(app.ctx.config.admin_password.expose()))
        .json(&body)
        .send()
        .await
        .expect("takedown");
    assert_eq!(response.status(), 200);
    let answer = app.call(Method::GET, "com.atproto.label.queryLabels?uriPatterns=*", Some(token), None).await;
    assert_eq!(error(&answer), (401, "AccountTakedown"), "{}", answer.1);
    let answer = app.call(Method::GET, "app.bsky.actor.getProfile?actor=fern.test", Some(token), None).await;
    assert_eq!(error(&answer), (401, "AccountTakedown"), "{}", answer.1);

    // Without a service to ask, the method is not implemented here.
    let bare = TestApp::spawn(Backend::Sqlite).await.expect("app");
    let (status, body) = bare.get_json("/xrpc/com.atproto.temp.checkHandleAvailability?handle=a.test").await;
    assert_eq!((status, body["error"].as_str()), (501, Some("MethodNotImplemented")), "{body}");
}
