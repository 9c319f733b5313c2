//! `com.atproto.repo.importRepo` and `listMissingBlobs`: an import replaces the repository
//! wholesale (blocks, record index, blob references) and announces it; one that does not verify
//! changes nothing; the blobs its records name but the server lacks are listed page by page.

use aurora_atproto::blockstore::{BlockStore, MemoryBlockStore};
use aurora_atproto::car::{car_bytes, export_repo, import_repo, read_car, CarLimits};
use aurora_atproto::cids;
use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::repo::{RecordWrite, Repo};
use aurora_locus::db::entities::repo_seq;
use bytes::Bytes;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use crate::helpers::TestApp;

fn post(text: &str) -> Value {
    json!({ "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" })
}

async fn create(app: &TestApp, token: &str, did: &str, rkey: &str, record: Value) -> Value {
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": record });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{created}");
    created
}

async fn export(app: &TestApp, did: &str) -> Vec<u8> {
    let response = app.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.expect("CAR").to_vec()
}

/// Each import goes on a connection of its own: a refused one is answered before its body is
/// read, and the server then closes the connection, which a shared client might try to reuse.
async fn import(app: &TestApp, token: &str, car: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(app.xrpc("com.atproto.repo.importRepo"));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request.header("content-type", "application/vnd.ipld.car").body(car).send().await.expect("import");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The rkeys of the account's posts, in order.
async fn rkeys(app: &TestApp, did: &str) -> Vec<String> {
    let (status, listed) = app
        .get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100"))
        .await;
    assert_eq!(status, 200, "{listed}");
    listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned())
        .collect()
}

async fn latest_commit(app: &TestApp, did: &str) -> Value {
    let (status, latest) = app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await;
    assert_eq!(status, 200, "{latest}");
    latest
}

/// A repository for `did` holding `records` (rkey, value), signed by `key`, as a CAR.
async fn repo_car(did: &str, key: &Keypair, records: &[(&str, Value)]) -> Vec<u8> {
    let store = MemoryBlockStore::new();
    let writes = records
        .iter()
        .map(|(rkey, value)| {
            let ipld = aurora_atproto::data::json_to_ipld(value).expect("data");
            RecordWrite::Create {
                collection: "app.bsky.feed.post".parse().expect("nsid"),
                rkey: rkey.parse().expect("rkey"),
                record: Bytes::from(aurora_atproto::data::to_dag_cbor(&ipld).expect("cbor")),
            }
        })
        .collect();
    let (_, data) = Repo::create(&store, did.parse().expect("did"), key, writes).await.expect("repo");
    store.put_many(data.new_blocks).await.expect("stored");
    export_repo(&store, data.cid, Vec::new()).await.expect("export").0
}

app_test!(an_import_replaces_the_repository_and_writing_goes_on_from_it, |app| {
    let account = app.create_account("ines").await;
    let token = account["accessJwt"].as_str().expect("token");
    let did = account["did"].as_str().expect("did");
    for rkey in ["3kaaaaaaaaaa2", "3kaaaaaaaaab2", "3kaaaaaaaaac2"] {
        create(&app, token, did, rkey, post(rkey)).await;
    }
    let car = export(&app, did).await;
    let exported_rev = latest_commit(&app, did).await["rev"].as_str().expect("rev").to_owned();

    // The repository moves on, then the export comes back.
    let (status, _) = app
        .call(
            Method::POST,
            "com.atproto.repo.deleteRecord",
            Some(token),
            Some(&json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": "3kaaaaaaaaaa2" })),
        )
        .await;
    assert_eq!(status, 200);
    create(&app, token, did, "3kaaaaaaaaad2", post("later")).await;
    let before = latest_commit(&app, did).await;
    let (status, body) = import(&app, token, car).await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(rkeys(&app, did).await, ["3kaaaaaaaaac2", "3kaaaaaaaaab2", "3kaaaaaaaaaa2"]);
    let (status, gone) = app
        .get_json(&format!(
            "/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey=3kaaaaaaaaad2"
        ))
        .await;
    assert_eq!((status, gone["error"].as_str()), (400, Some("RecordNotFound")), "{gone}");
    let after = latest_commit(&app, did).await;
    let rev = after["rev"].as_str().expect("rev");
    assert!(rev > before["rev"].as_str().expect("rev") && rev > exported_rev.as_str(), "a newer rev: {after}");

    // What the server now holds is exactly the imported repository, re-signed by its key.
    let key = aurora_locus::keys::signing_key(&app.ctx, &crate::helpers::typed_did(did)).await.expect("key");
    let now = export(&app, did).await;
    let verified = import_repo(&now[..], CarLimits::default(), &did.parse().expect("did"), &key.public_key())
        .await
        .expect("the stored repository verifies");
    assert_eq!(verified.records.len(), 3);
    assert_eq!(verified.commit_cid.to_string(), after["cid"].as_str().expect("cid"));
    let stored = aurora_locus::repo::block_count(&app.ctx.db, &crate::helpers::typed_did(did)).await.expect("count");
    assert_eq!(stored as usize, verified.blocks.len(), "no block of the replaced repository is left behind");

    // Relays hear of it as a #sync event carrying the new commit.
    let last = repo_seq::Entity::find()
        .filter(repo_seq::Column::Did.eq(did))
        .order_by_desc(repo_seq::Column::Seq)
        .one(&app.ctx.db)
        .await
        .expect("query")
        .expect("an event");
    assert_eq!(last.event_type, "sync");
    let event = aurora_atproto::data::from_dag_cbor(&last.event).expect("event");
    let event = aurora_atproto::data::ipld_to_json(&event).expect("json");
    assert_eq!(event["rev"].as_str(), Some(rev), "{event}");

    // Writes build on the imported repository.
    let created = create(&app, token, did, "3kaaaaaaaaae2", post("after the import")).await;
    assert!(created["commit"]["rev"].as_str().expect("rev") > rev);
    assert_eq!(rkeys(&app, did).await.len(), 4);
});

/// The account's record index: per rkey, the record's CID and the rev that indexed it.
async fn index(app: &TestApp, did: &str) -> std::collections::BTreeMap<String, (String, String)> {
    use aurora_locus::db::entities::record;
    let rows = record::Entity::find().filter(record::Column::Did.eq(did)).all(&app.ctx.db).await.expect("index");
    rows.into_iter().map(|row| (row.rkey.to_string(), (row.cid.to_string(), row.rev.to_string()))).collect()
}

/// The account's blob references, as (rkey, blob CID).
async fn references(app: &TestApp, did: &str) -> std::collections::BTreeSet<(String, String)> {
    use aurora_locus::db::entities::record_blob;
    let rows =
        record_blob::Entity::find().filter(record_blob::Column::Did.eq(did)).all(&app.ctx.db).await.expect("refs");
    rows.into_iter()
        .map(|row| (row.record_uri.to_string().rsplit('/').next().expect("rkey").to_owned(), row.blob_cid.to_string()))
        .collect()
}

app_test!(an_import_keeps_the_index_rows_of_the_records_it_leaves_unchanged, |app| {
    let account = app.create_account("lena").await;
    let token = account["accessJwt"].as_str().expect("token");
    let did = account["did"].as_str().expect("did");
    let key = aurora_locus::keys::signing_key(&app.ctx, &crate::helpers::typed_did(did)).await.expect("key");
    let images: Vec<String> = [b"first".as_slice(), b"second"].iter().map(|b| cids::for_raw(b).to_string()).collect();
    let with_image = |n: usize| {
        let mut record = post(&format!("image {n}"));
        record["embed"] = json!({ "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": {
            "$type": "blob", "ref": { "$link": images[n] }, "mimeType": "image/png", "size": 5 } }] });
        record
    };
    let first = [("3keeeeeeeeaa2", with_image(0)), ("3keeeeeeeeab2", with_image(1)), ("3keeeeeeeeac2", post("c"))];
    let (status, body) = import(&app, token, repo_car(did, &key, &first).await).await;
    assert_eq!(status, 200, "{body}");
    let before = index(&app, did).await;
    let first_rev = latest_commit(&app, did).await["rev"].as_str().expect("rev").to_owned();
    assert!(before.values().all(|(_, rev)| *rev == first_rev), "{before:?}");
    let expected = [("3keeeeeeeeaa2".to_owned(), images[0].clone()), ("3keeeeeeeeab2".to_owned(), images[1].clone())];
    assert_eq!(references(&app, did).await, expected.iter().cloned().collect());

    // The same first record, the second changed (without its image), the third gone, a fourth.
    let second =
        [("3keeeeeeeeaa2", with_image(0)), ("3keeeeeeeeab2", post("b, changed")), ("3keeeeeeeead2", post("d"))];
    let (status, body) = import(&app, token, repo_car(did, &key, &second).await).await;
    assert_eq!(status, 200, "{body}");
    let rev = latest_commit(&app, did).await["rev"].as_str().expect("rev").to_owned();
    assert!(rev > first_rev);
    let after = index(&app, did).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), ["3keeeeeeeeaa2", "3keeeeeeeeab2", "3keeeeeeeead2"]);
    assert_eq!(after["3keeeeeeeeaa2"], before["3keeeeeeeeaa2"], "an unchanged record keeps its row");
    assert_ne!(after["3keeeeeeeeab2"].0, before["3keeeeeeeeab2"].0);
    assert_eq!(after["3keeeeeeeeab2"].1, rev, "a changed record is indexed at the import's rev");
    assert_eq!(after["3keeeeeeeead2"].1, rev);
    assert_eq!(references(&app, did).await, expected[..1].iter().cloned().collect(), "only the kept record's image");
    assert_eq!(rkeys(&app, did).await, ["3keeeeeeeead2", "3keeeeeeeeab2", "3keeeeeeeeaa2"]);
});

app_test!(an_import_that_does_not_verify_changes_nothing, |app| {
    let account = app.create_account("jude").await;
    let token = account["accessJwt"].as_str().expect("token");
    let did = account["did"].as_str().expect("did");
    create(&app, token, did, "3kaaaaaaaaaa2", post("kept")).await;
    let before = latest_commit(&app, did).await;
    let key = aurora_locus::keys::signing_key(&app.ctx, &crate::helpers::typed_did(did)).await.expect("key");
    let records = [("3kbbbbbbbbbb2", post("imported"))];

    let stranger = Keypair::generate(KeyType::K256);
    let other = app.create_account("kit").await;
    let other_did = other["did"].as_str().expect("did");
    let valid = repo_car(did, &key, &records).await;
    let (root, mut blocks) = read_car(&valid[..], CarLimits::default()).await.expect("read");
    let record = aurora_atproto::data::json_to_ipld(&records[0].1).expect("data");
    blocks.remove(&aurora_atproto::data::cid_for_ipld(&record).expect("cid").0);
    let without_record = car_bytes(root, blocks).await.expect("CAR");
    let mut corrupted = valid.clone();
    let last = corrupted.len() - 2;
    corrupted[last] ^= 0x40;
    let cases = [
        ("signed by a key that is not the account's", repo_car(did, &stranger, &records).await),
        ("another account's repository", repo_car(other_did, &key, &records).await),
        ("a record missing", without_record),
        ("a block that does not match its CID", corrupted),
        ("not a CAR at all", b"hello".to_vec()),
    ];
    for (case, car) in cases {
        let (status, body) = import(&app, token, car).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{case}: {body}");
        assert_eq!(latest_commit(&app, did).await, before, "{case}: the repository did not move");
    }
    assert_eq!(rkeys(&app, did).await, ["3kaaaaaaaaaa2"]);

    // An app password may not replace the repository.
    let limited = app.app_password_session(token, "jude.test", "app").await;
    let (status, body) = import(&app, &limited, valid.clone()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "{body}");
    let (status, body) = import(&app, "", valid.clone()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AuthMissing")), "{body}");
    assert_eq!(latest_commit(&app, did).await, before);

    // The same repository, properly signed, is taken.
    let (status, body) = import(&app, token, valid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rkeys(&app, did).await, ["3kbbbbbbbbbb2"]);
});

app_test!(
    a_server_not_taking_imports_or_this_large_a_one_refuses_it,
    ["PDS_ACCEPTING_REPO_IMPORTS" => "false"],
    |app| {
        let account = app.create_account("lior").await;
        let token = account["accessJwt"].as_str().expect("token");
        let did = account["did"].as_str().expect("did");
        let car = export(&app, did).await;
        let (status, body) = import(&app, token, car).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("not accepting")), "{body}");
    }
);

app_test!(a_repository_over_the_import_limit_is_refused, ["PDS_MAX_REPO_IMPORT_SIZE" => "2000"], |app| {
    let account = app.create_account("mika").await;
    let token = account["accessJwt"].as_str().expect("token");
    let did = account["did"].as_str().expect("did");
    let key = aurora_locus::keys::signing_key(&app.ctx, &crate::helpers::typed_did(did)).await.expect("key");
    let long = "x".repeat(1_000);
    let records: Vec<(String, Value)> = (b'a'..b'e').map(|n| (format!("3kcccccccc{}c2", n as char), post(&long))).collect();
    let records: Vec<(&str, Value)> = records.iter().map(|(rkey, value)| (rkey.as_str(), value.clone())).collect();
    let car = repo_car(did, &key, &records).await;
    assert!(car.len() > 2_000);
    // Answered before the body is read, on connections of their own (see `import`).
    let response = reqwest::Client::new()
        .post(app.xrpc("com.atproto.repo.importRepo"))
        .bearer_auth(token)
        .header("content-type", "application/vnd.ipld.car")
        .body(car.clone())
        .send()
        .await
        .expect("import");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "PayloadTooLarge", "{body}");
    // Without a declared length the stream is cut off at the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = car.chunks(500).map(|c| Ok(c.to_vec())).collect();
    let response = reqwest::Client::new()
        .post(app.xrpc("com.atproto.repo.importRepo"))
        .bearer_auth(token)
        .header("content-type", "application/vnd.ipld.car")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("limit")), "{body}");
    assert!(rkeys(&app, did).await.is_empty());
});

app_test!(missing_blobs_are_listed_page_by_page_until_uploaded, |app| {
    let account = app.create_account("noor").await;
    let token = account["accessJwt"].as_str().expect("token");
    let did = account["did"].as_str().expect("did");
    let key = aurora_locus::keys::signing_key(&app.ctx, &crate::helpers::typed_did(did)).await.expect("key");
    let images: Vec<Vec<u8>> = (0..3u8).map(|n| [b"\x89PNG\r\n\x1a\n".as_slice(), &[n; 40]].concat()).collect();
    let cids: Vec<String> = images.iter().map(|bytes| cids::for_raw(bytes).to_string()).collect();
    let with_image = |n: usize| {
        let mut record = post(&format!("image {n}"));
        record["embed"] = json!({ "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": {
            "$type": "blob", "ref": { "$link": cids[n] }, "mimeType": "image/png", "size": images[n].len() } }] });
        record
    };
    let records =
        [("3kddddddddaa2", with_image(0)), ("3kddddddddab2", with_image(1)), ("3kddddddddac2", with_image(2))];
    let (status, body) = import(&app, token, repo_car(did, &key, &records).await).await;
    assert_eq!(status, 200, "{body}");

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let path = match &cursor {
            Some(cursor) => format!("com.atproto.repo.listMissingBlobs?limit=2&cursor={cursor}"),
            None => "com.atproto.repo.listMissingBlobs?limit=2".to_owned(),
        };
        let (status, page) = app.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(status, 200, "{page}");
        let blobs = page["blobs"].as_array().expect("blobs");
        assert!(blobs.len() <= 2);
        listed.extend(blobs.iter().map(|b| (b["cid"].as_str().expect("cid").to_owned(), b["recordUri"].to_string())));
        cursor = page["cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    // As the reference pages: the short page of one still carries a cursor; the empty one ends.
    assert_eq!(pages, 3);
    let mut expected: Vec<(String, String)> = records
        .iter()
        .zip(&cids)
        .map(|((rkey, _), cid)| (cid.clone(), json!(format!("at://{did}/app.bsky.feed.post/{rkey}")).to_string()))
        .collect();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected);

    let response = app
        .client
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(images[1].clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 200);
    let (_, page) = app.call(Method::GET, "com.atproto.repo.listMissingBlobs", Some(token), None).await;
    let left: Vec<&str> = page["blobs"].as_array().expect("blobs").iter().filter_map(|b| b["cid"].as_str()).collect();
    assert_eq!(left.len(), 2, "{page}");
    assert!(!left.contains(&cids[1].as_str()), "the uploaded one is no longer missing: {page}");
});

app_test!(a_taken_down_account_can_neither_write_upload_nor_import_with_a_token_it_still_holds, |app| {
    use aurora_locus::db::entities::actor;
    let account = app.create_account("omar").await;
    let token = account["accessJwt"].as_str().expect("token");
    let did = account["did"].as_str().expect("did");
    create(&app, token, did, "3kaaaaaaaaaa2", post("before")).await;
    let car = export(&app, did).await;
    let root = || async {
        aurora_locus::repo::root(&app.ctx.db, &crate::helpers::typed_did(did))
            .await
            .expect("root")
            .expect("a repository")
            .cid
    };
    let before = root().await;
    actor::Entity::update_many()
        .col_expr(actor::Column::TakedownRef, sea_orm::sea_query::Expr::value("takedown-1"))
        .filter(actor::Column::Did.eq(did))
        .exec(&app.ctx.db)
        .await
        .expect("taken down");

    let write = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post("after") });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&write)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AccountTakedown")), "{body}");
    let response = reqwest::Client::new()
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body("some text")
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "AccountTakedown", "{body}");
    let (status, body) = import(&app, token, car).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AccountTakedown")), "{body}");
    assert_eq!(root().await, before, "nothing changed");
    let (status, body) = app.get_json(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("RepoTakendown")), "{body}");
});
