//! `com.atproto.sync` reads: what a relay fetches, verified the way a relay verifies it.

use aurora_atproto::car::{read_car, verify_repo, CarLimits};
use aurora_atproto::crypto::PublicKey;
use reqwest::Method;
use serde_json::json;

async fn bytes(app: &crate::helpers::TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = app.get(path).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.expect("body").to_vec())
}

app_test!(a_repository_exports_as_a_car_that_verifies_against_the_did_key, |app| {
    let account = app.create_account("fern").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let key = PublicKey::from_multikey(
        account["didDoc"]["verificationMethod"][0]["publicKeyMultibase"].as_str().expect("key"),
    )
    .expect("key");
    let mut rkeys = Vec::new();
    for i in 0..5 {
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
        let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
        assert_eq!(status, 200, "{created}");
        rkeys.push(created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned());
    }
    let (status, latest) = app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await;
    assert_eq!(status, 200, "{latest}");

    let (status, headers, car) = bytes(&app, &format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/vnd.ipld.car");
    let (root, blocks) = read_car(&car[..], CarLimits::default()).await.expect("a CAR");
    assert_eq!(root.to_string(), latest["cid"].as_str().expect("cid"));
    let repo = verify_repo(root, blocks, &did.parse().expect("did"), &key).await.expect("verifies");
    assert_eq!(repo.records.len(), 5);

    let (_, _, proof) = bytes(
        &app,
        &format!("/xrpc/com.atproto.sync.getRecord?did={did}&collection=app.bsky.feed.post&rkey={}", rkeys[2]),
    )
    .await;
    let (proof_root, proof_blocks) = read_car(&proof[..], CarLimits::default()).await.expect("proof CAR");
    assert_eq!(proof_root, root);
    assert!(proof_blocks.len() >= 3, "commit, path nodes and the record");

    let (status, list) = app.get_json("/xrpc/com.atproto.sync.listRepos").await;
    assert_eq!(status, 200);
    assert_eq!(list["repos"][0]["did"], did);
    assert_eq!(list["repos"][0]["active"], true);
    let (status, first) = app.get_json("/xrpc/com.atproto.sync.listRepos?cursor=").await;
    assert_eq!((status, &first["repos"][0]["did"]), (200, &list["repos"][0]["did"]), "an empty cursor is no cursor");
    let (_, repo_status) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!((repo_status["active"].as_bool(), repo_status["rev"].as_str()), (Some(true), latest["rev"].as_str()));

    app.call(Method::POST, "com.atproto.server.deactivateAccount", Some(token), Some(&json!({}))).await;
    let (status, body) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("RepoDeactivated")));
    let (_, repo_status) = app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await;
    assert_eq!((repo_status["active"].as_bool(), repo_status["status"].as_str()), (Some(false), Some("deactivated")));
    let (status, body) = app.get_json("/xrpc/com.atproto.sync.getRepo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("RepoNotFound")));
});

app_test!(blobs_are_served_with_protective_headers, |app| {
    let account = app.create_account("gwen").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let uploaded: serde_json::Value = app
        .client
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body("<script>alert(1)</script>")
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let cid = uploaded["blob"]["ref"]["$link"].as_str().expect("cid");
    let (status, _, _) = bytes(&app, &format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}")).await;
    assert_eq!(status, 400, "an unreferenced upload is not served");
    let record = json!({ "repo": did, "collection": "com.example.file", "record": { "$type": "com.example.file", "file": uploaded["blob"] } });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&record)).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = bytes(&app, &format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}")).await;
    assert_eq!(status, 200);
    assert_eq!(body, b"<script>alert(1)</script>");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(headers["etag"], format!("\"{cid}\"").as_str());
    let url = format!("{}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}", app.url);
    let ranged = app.client.get(&url).header("range", "bytes=1-6").send().await.expect("range");
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(ranged.headers()["content-range"], "bytes 1-6/25");
    assert_eq!(ranged.bytes().await.expect("body").as_ref(), b"script");
    let tail = app.client.get(&url).header("range", "bytes=-2").send().await.expect("suffix");
    assert_eq!((tail.status().as_u16(), tail.bytes().await.expect("body").as_ref()), (206, &b"t>"[..]));
    let beyond = app.client.get(&url).header("range", "bytes=100-").send().await.expect("beyond");
    assert_eq!(beyond.status().as_u16(), 416);
    let several = app.client.get(&url).header("range", "bytes=0-1,4-5").send().await.expect("multi");
    assert_eq!(several.status().as_u16(), 200, "several ranges get the whole blob");
    let (_, listed) = app.get_json(&format!("/xrpc/com.atproto.sync.listBlobs?did={did}")).await;
    assert_eq!(listed["cids"], json!([cid]));
    // As the reference pages: a non-empty page carries its last CID, the empty one after it none.
    assert_eq!(listed["cursor"], json!(cid));
    let (_, after) = app.get_json(&format!("/xrpc/com.atproto.sync.listBlobs?did={did}&cursor={cid}")).await;
    assert_eq!((after["cids"].clone(), after.get("cursor")), (json!([]), None), "{after}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_ask_the_configured_relays_to_crawl_at_most_once_per_interval() {
    use poem::listener::{Acceptor, Listener, TcpListener};
    use std::sync::{Arc, Mutex};
    let calls: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let recorded = calls.clone();
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind relay");
    let port = acceptor.local_addr()[0].as_socket_addr().expect("addr").port();
    let relay = poem::Route::new().at(
        "/xrpc/com.atproto.sync.requestCrawl",
        poem::post(poem::endpoint::make(move |request: poem::Request| {
            let recorded = recorded.clone();
            async move {
                let body: serde_json::Value = request.into_body().into_json().await.unwrap_or_default();
                recorded.lock().expect("calls").push(body);
                Ok::<_, poem::Error>("{}")
            }
        })),
    );
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(relay));
    let relay_url = format!("http://127.0.0.1:{port}");
    let app =
        crate::helpers::TestApp::spawn_with(crate::helpers::Backend::Sqlite, &[("PDS_CRAWLERS", relay_url.as_str())])
            .await
            .expect("app");
    let account = app.create_account("hope").await;
    let token = account["accessJwt"].as_str().expect("access");
    for text in ["one", "two"] {
        let body = json!({ "repo": account["did"], "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" } });
        let (status, _) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
        assert_eq!(status, 200);
    }
    for _ in 0..100 {
        if !calls.lock().expect("calls").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let seen = calls.lock().expect("calls").clone();
    assert_eq!(seen, vec![json!({ "hostname": "localhost" })], "one request for two writes");
    let reports = aurora_locus::crawl::reports(&app.ctx.db, std::slice::from_ref(&relay_url)).await.expect("reports");
    assert_eq!(reports[0].1.as_ref().and_then(|r| r.status), Some(200), "the relay's answer is recorded");

    let did = account["did"].as_str().expect("did");
    let (status, head) = app.get_json(&format!("/xrpc/com.atproto.sync.getHead?did={did}")).await;
    let (_, latest) = app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await;
    assert_eq!((status, &head["root"]), (200, &latest["cid"]));
    let checkout = app.get(&format!("/xrpc/com.atproto.sync.getCheckout?did={did}")).await;
    assert_eq!(checkout.status().as_u16(), 200);
}

/// Splits a CAR v1 into its header (as JSON) and blocks, without requiring a root, as
/// getBlocks answers.
fn split_car(mut car: &[u8]) -> (serde_json::Value, Vec<(cid::Cid, Vec<u8>)>) {
    fn varint(bytes: &mut &[u8]) -> usize {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = bytes[0];
            *bytes = &bytes[1..];
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }
    let len = varint(&mut car);
    let header: aurora_atproto::data::Ipld = serde_ipld_dagcbor::from_slice(&car[..len]).expect("header");
    car = &car[len..];
    let mut blocks = Vec::new();
    while !car.is_empty() {
        let len = varint(&mut car);
        let mut section = &car[..len];
        let cid = cid::Cid::read_bytes(&mut section).expect("cid");
        blocks.push((cid, section.to_vec()));
        car = &car[len..];
    }
    (aurora_atproto::data::ipld_to_json(&header).expect("json"), blocks)
}

app_test!(get_blocks_answers_the_asked_blocks_in_a_rootless_car_or_names_the_missing, |app| {
    let account = app.create_account("gina").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "a block", "createdAt": "2024-05-01T12:00:00.000Z" } });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{created}");
    let record = created["cid"].as_str().expect("cid");
    let commit = created["commit"]["cid"].as_str().expect("commit");

    let path = format!("/xrpc/com.atproto.sync.getBlocks?did={did}&cids={commit}&cids={record}");
    let (status, headers, car) = bytes(&app, &path).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&car));
    assert_eq!(headers["content-type"], "application/vnd.ipld.car");
    let (header, blocks) = split_car(&car);
    assert_eq!(header, json!({ "version": 1, "roots": [] }));
    let got: Vec<String> = blocks.iter().map(|(cid, _)| cid.to_string()).collect();
    assert_eq!(got, vec![commit.to_owned(), record.to_owned()]);
    for (cid, bytes) in &blocks {
        assert_eq!(&aurora_atproto::cids::for_dag_cbor(bytes), cid, "each block hashes to its CID");
    }

    // A CID the repository lacks fails the request and is named.
    let absent = aurora_atproto::cids::for_dag_cbor(b"\xa0").to_string();
    let (status, error) =
        app.get_json(&format!("/xrpc/com.atproto.sync.getBlocks?did={did}&cids={record}&cids={absent}")).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("InvalidRequest")), "{error}");
    assert!(error["message"].as_str().expect("message").contains(&absent), "{error}");

    let (status, error) = app.get_json(&format!("/xrpc/com.atproto.sync.getBlocks?did={did}&cids=notacid")).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("InvalidRequest")), "{error}");
    let (status, error) = app
        .get_json(&format!("/xrpc/com.atproto.sync.getBlocks?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa&cids={record}"))
        .await;
    assert_eq!((status, error["error"].as_str()), (400, Some("RepoNotFound")), "{error}");

    // Asked for many times over, a block comes once; past the cap a request is refused.
    let many: String = std::iter::repeat_n(format!("cids={record}"), 1000).collect::<Vec<_>>().join("&");
    let (status, _, car) = bytes(&app, &format!("/xrpc/com.atproto.sync.getBlocks?did={did}&{many}")).await;
    assert_eq!(status, 200);
    assert_eq!(split_car(&car).1.len(), 1);
    let too_many = format!("{many}&cids={commit}");
    let (status, error) = app.get_json(&format!("/xrpc/com.atproto.sync.getBlocks?did={did}&{too_many}")).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("InvalidRequest")), "{error}");
    assert!(error["message"].as_str().expect("message").contains("at most 1000"), "{error}");
});

app_test!(get_repo_holds_exactly_the_current_tree_and_stays_consistent_while_commits_land, |app| {
    let account = app.create_account("hugo").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let key = PublicKey::from_multikey(
        account["didDoc"]["verificationMethod"][0]["publicKeyMultibase"].as_str().expect("key"),
    )
    .expect("key");
    // Creates, updates and deletes leave blocks behind that the export must not carry.
    let mut uris = Vec::new();
    for i in 0..30 {
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": format!("tree {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
        let (_, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
        uris.push(created["uri"].as_str().expect("uri").to_owned());
    }
    for uri in uris.iter().step_by(3) {
        let rkey = uri.rsplit('/').next().expect("rkey");
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey });
        let (status, _) = app.call(Method::POST, "com.atproto.repo.deleteRecord", Some(&token), Some(&body)).await;
        assert_eq!(status, 200);
    }
    let body = json!({ "repo": did, "collection": "app.bsky.actor.profile", "rkey": "self",
        "record": { "$type": "app.bsky.actor.profile", "displayName": "one" } });
    app.call(Method::POST, "com.atproto.repo.putRecord", Some(&token), Some(&body)).await;
    let body = json!({ "repo": did, "collection": "app.bsky.actor.profile", "rkey": "self",
        "record": { "$type": "app.bsky.actor.profile", "displayName": "two" } });
    app.call(Method::POST, "com.atproto.repo.putRecord", Some(&token), Some(&body)).await;

    let (_, _, car) = bytes(&app, &format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    let (root, blocks) = read_car(&car[..], CarLimits::default()).await.expect("a CAR");
    let exported: std::collections::BTreeSet<_> = blocks.keys().copied().collect();
    let walked = {
        let store = aurora_locus::repo::SqlBlockStore::new(&app.ctx.db, &crate::helpers::typed_did(&did));
        let (walk, stats) = aurora_atproto::car::export_repo(&store, root, Vec::new()).await.expect("walk");
        let (_, walked) = read_car(&walk[..], CarLimits::default()).await.expect("walk CAR");
        assert_eq!(stats.records, 21, "20 posts and the profile");
        walked.keys().copied().collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(exported, walked, "the export holds the commit, the tree and its records, nothing stale");

    // Exports taken while another writer commits each verify against their own root.
    let app = std::sync::Arc::new(app);
    let writer = {
        let (app, token, did) = (app.clone(), token.clone(), did.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
                    "$type": "app.bsky.feed.post", "text": format!("during {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
                let (status, _) =
                    app.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
                assert_eq!(status, 200);
            }
        })
    };
    for _ in 0..15 {
        let (status, _, car) = bytes(&app, &format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
        assert_eq!(status, 200);
        let (root, blocks) = read_car(&car[..], CarLimits::default()).await.expect("a CAR");
        verify_repo(root, blocks, &did.parse().expect("did"), &key).await.expect("a consistent export");
    }
    writer.await.expect("writer");
});

app_test!(get_repo_since_a_rev_carries_only_later_blocks_all_in_cid_order, |app| {
    let account = app.create_account("iris").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let mut created = Vec::new();
    let mut post = async |i: usize| {
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": format!("since {i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
        let (status, out) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
        assert_eq!(status, 200, "{out}");
        created.push(out["cid"].as_str().expect("cid").to_owned());
    };
    for i in 0..3 {
        post(i).await;
    }
    let (_, before) = app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await;
    for i in 3..5 {
        post(i).await;
    }
    let (_, latest) = app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await;

    // The blocks in the order the CAR holds them.
    let blocks_of = async |query: String| {
        let (status, _, car) = bytes(&app, &format!("/xrpc/com.atproto.sync.getRepo?did={did}{query}")).await;
        assert_eq!(status, 200);
        let mut reader = aurora_atproto::car::CarReader::new(&car[..], CarLimits::default()).await.expect("a CAR");
        assert_eq!(reader.root().to_string(), latest["cid"].as_str().expect("cid"));
        let mut cids = Vec::new();
        while let Some((cid, _)) = reader.next_block().await.expect("a block") {
            cids.push(cid.to_string());
        }
        cids
    };
    let whole = blocks_of(String::new()).await;
    let since = blocks_of(format!("&since={}", before["rev"].as_str().expect("rev"))).await;
    for cids in [&whole, &since] {
        assert!(cids.windows(2).all(|w| w[0] < w[1]), "blocks in CID order, as the reference writes them");
    }
    assert!(created.iter().all(|cid| whole.contains(cid)));
    assert!(since.contains(&latest["cid"].as_str().expect("cid").to_owned()), "the current commit");
    assert!(created[3..].iter().all(|cid| since.contains(cid)), "the later records");
    assert!(created[..3].iter().all(|cid| !since.contains(cid)), "not the earlier records");
    assert!(since.iter().all(|cid| whole.contains(cid)) && since.len() < whole.len());
    let up_to_date = blocks_of(format!("&since={}", latest["rev"].as_str().expect("rev"))).await;
    assert!(up_to_date.is_empty(), "nothing after the current rev: {up_to_date:?}");

    let (status, error) = app.get_json("/xrpc/com.atproto.sync.getRepo?did=did:plc:nobodyhereatall0000000").await;
    assert_eq!((status, error["error"].as_str()), (400, Some("RepoNotFound")), "{error}");
});

app_test!(list_repos_pages_in_did_order_with_each_accounts_state, |app| {
    let mut accounts = Vec::new();
    for name in ["ivo", "jun", "kai"] {
        accounts.push(app.create_account(name).await);
    }
    let token = accounts[1]["accessJwt"].as_str().expect("access");
    let (status, _) =
        app.call(Method::POST, "com.atproto.server.deactivateAccount", Some(token), Some(&json!({}))).await;
    assert_eq!(status, 200);
    let deactivated = accounts[1]["did"].as_str().expect("did");

    let (status, whole) = app.get_json("/xrpc/com.atproto.sync.listRepos").await;
    assert_eq!(status, 200, "{whole}");
    let whole = whole["repos"].as_array().expect("repos").clone();
    let dids: Vec<&str> = whole.iter().map(|r| r["did"].as_str().expect("did")).collect();
    let mut sorted = dids.clone();
    sorted.sort();
    assert_eq!((dids.len(), &dids), (3, &sorted), "every repository once, in DID order");
    for repo in &whole {
        let did = repo["did"].as_str().expect("did");
        let (_, latest) = app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await;
        if did == deactivated {
            assert_eq!((repo["active"].as_bool(), repo["status"].as_str()), (Some(false), Some("deactivated")));
        } else {
            assert_eq!((repo["active"].as_bool(), repo.get("status")), (Some(true), None), "{repo}");
            assert_eq!((&repo["head"], &repo["rev"]), (&latest["cid"], &latest["rev"]));
        }
    }

    // Pages of two: the cursor is the last DID of the page before; followed until there is no
    // cursor or no repository, they hold the whole list.
    let (_, first) = app.get_json("/xrpc/com.atproto.sync.listRepos?limit=2").await;
    assert_eq!(first["repos"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["cursor"].as_str(), Some(dids[1]));
    let mut paged = first["repos"].as_array().expect("repos").clone();
    let mut cursor = first["cursor"].as_str().map(str::to_owned);
    while let Some(after) = cursor.take() {
        let (_, page) = app.get_json(&format!("/xrpc/com.atproto.sync.listRepos?limit=2&cursor={after}")).await;
        let repos = page["repos"].as_array().expect("repos");
        paged.extend(repos.iter().cloned());
        cursor = page["cursor"].as_str().filter(|_| !repos.is_empty()).map(str::to_owned);
    }
    assert_eq!(paged, whole);
    // As the reference pages: the short last page still carries its last DID, and the empty
    // page after it carries no cursor.
    let (_, last) = app.get_json(&format!("/xrpc/com.atproto.sync.listRepos?limit=2&cursor={}", dids[1])).await;
    assert_eq!((last["repos"].as_array().map(Vec::len), last["cursor"].as_str()), (Some(1), Some(dids[2])), "{last}");
    let (_, after) = app.get_json(&format!("/xrpc/com.atproto.sync.listRepos?limit=2&cursor={}", dids[2])).await;
    assert_eq!((after["repos"].as_array().map(Vec::len), after.get("cursor")), (Some(0), None), "{after}");
    let (status, body) = app.get_json("/xrpc/com.atproto.sync.listRepos?cursor=not-a-did").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")));
});
