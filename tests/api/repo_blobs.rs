//! Blobs: uploaded to temporary storage, made permanent by a referencing record, released when
//! the last reference goes, and collected if never claimed.

use aurora_locus::db::entities::blob;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::PNG;

async fn upload(app: &crate::helpers::TestApp, token: &str, bytes: &[u8], content_type: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn blob_row(app: &crate::helpers::TestApp, did: &str, cid: &str) -> Option<blob::Model> {
    blob::Entity::find()
        .filter(blob::Column::Did.eq(did))
        .filter(blob::Column::Cid.eq(cid))
        .one(&app.ctx.db)
        .await
        .expect("query")
}

fn post_with_image(blob: &Value) -> Value {
    json!({
        "$type": "app.bsky.feed.post", "text": "look", "createdAt": "2024-05-01T12:00:00.000Z",
        "embed": { "$type": "app.bsky.embed.images", "images": [{ "alt": "a pixel", "image": blob }] }
    })
}

app_test!(an_uploaded_image_becomes_permanent_when_a_post_embeds_it, |app| {
    let account = app.create_account("cora").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let (status, uploaded) = upload(&app, token, PNG, "application/octet-stream").await;
    assert_eq!(status, 200, "{uploaded}");
    let blob = uploaded["blob"].clone();
    assert_eq!(blob["mimeType"], "image/png", "the type comes from the bytes, not the header");
    assert_eq!(blob["size"], PNG.len());
    let cid = blob["ref"]["$link"].as_str().expect("cid").to_owned();
    assert_eq!(cid, aurora_atproto::cids::for_raw(PNG).to_string());
    let row = blob_row(&app, did, &cid).await.expect("blob row");
    assert!(row.temp_key.is_some(), "temporary until referenced");
    assert_eq!((row.width, row.height), (Some(1), Some(1)));

    let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post_with_image(&blob) });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!(status, 200, "{created}");
    let row = blob_row(&app, did, &cid).await.expect("blob row");
    assert!(row.temp_key.is_none(), "a referenced blob is permanent");
    assert_eq!(app.stored_blob(did, &cid).await.expect("stored"), PNG);

    let mut wrong = blob.clone();
    wrong["mimeType"] = json!("image/jpeg");
    let bad = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post_with_image(&wrong) });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&bad)).await;
    assert_eq!(status, 400, "the record must not misstate the blob: {body}");
    let mut missing = blob.clone();
    missing["ref"]["$link"] = json!("bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity");
    let bad = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post_with_image(&missing) });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&bad)).await;
    assert_eq!(status, 400, "unknown blobs cannot be referenced: {body}");

    let rkey = created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned();
    let delete = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey });
    let (status, _) = app.call(Method::POST, "com.atproto.repo.deleteRecord", Some(token), Some(&delete)).await;
    assert_eq!(status, 200);
    assert!(blob_row(&app, did, &cid).await.is_none(), "deleting the last reference releases the blob");
    assert!(app.stored_blob(did, &cid).await.is_none(), "its bytes are deleted");
});

app_test!(unclaimed_uploads_are_collected_after_the_grace_period, |app| {
    let account = app.create_account("dina").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let (_, uploaded) = upload(&app, token, b"just some text", "text/plain").await;
    assert_eq!(uploaded["blob"]["mimeType"], "text/plain");
    let cid = uploaded["blob"]["ref"]["$link"].as_str().expect("cid").to_owned();
    assert_eq!(aurora_locus::blobs::collect_garbage(&app.ctx).await.expect("gc"), 0, "fresh uploads stay");
    blob::Entity::update_many()
        .col_expr(blob::Column::CreatedAt, sea_orm::sea_query::Expr::value("2000-01-01T00:00:00.000Z"))
        .filter(blob::Column::Cid.eq(cid.as_str()))
        .exec(&app.ctx.db)
        .await
        .expect("age the upload");
    assert_eq!(aurora_locus::blobs::collect_garbage(&app.ctx).await.expect("gc"), 1);
    assert!(blob_row(&app, did, &cid).await.is_none());
});

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let app =
        crate::helpers::TestApp::spawn_with(crate::helpers::Backend::Sqlite, &[("PDS_BLOB_UPLOAD_LIMIT", "1000")])
            .await
            .expect("app");
    let account = app.create_account("edna").await;
    let token = account["accessJwt"].as_str().expect("access");
    let (status, body) = upload(&app, token, &vec![7u8; 5000], "application/octet-stream").await;
    assert_eq!((status, body["error"].as_str()), (413, Some("PayloadTooLarge")), "{body}");
    let (status, _) = upload(&app, token, &vec![7u8; 900], "application/octet-stream").await;
    assert_eq!(status, 200);
    let (status, _) = app
        .client
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .header("content-type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("send");
    assert_eq!(status, 401);
}

/// `n` bytes that hash differently for each `seed`.
fn noise(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn temp_bytes(app: &crate::helpers::TestApp) -> u64 {
    let dir = app.ctx.config.blobstore_dir.join("tmp");
    std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

app_test!(the_same_bytes_uploaded_again_are_kept_once, |app| {
    let account = app.create_account("ursa").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    // Larger than the store's write batches, so the file is written in several.
    let bytes = noise(5, 700_000);
    let (status, first) = upload(&app, token, &bytes, "application/octet-stream").await;
    assert_eq!(status, 200, "{first}");
    let cid = first["blob"]["ref"]["$link"].as_str().expect("cid").to_owned();
    assert_eq!(cid, aurora_atproto::cids::for_raw(&bytes).to_string());
    let key = blob_row(&app, did, &cid).await.expect("row").temp_key.expect("temporary");
    assert_eq!(temp_bytes(&app), 700_000);

    let (status, again) = upload(&app, token, &bytes, "application/octet-stream").await;
    assert_eq!((status, &again["blob"]), (200, &first["blob"]), "{again}");
    let newer = blob_row(&app, did, &cid).await.expect("row").temp_key.expect("still temporary");
    assert_ne!(newer, key, "the newer upload is kept");
    assert_eq!(temp_bytes(&app), 700_000, "and the older one's file is gone");

    let record = json!({ "repo": did, "collection": "com.example.file", "record": {
        "$type": "com.example.file", "file": first["blob"] } });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&record)).await;
    assert_eq!(status, 200, "{body}");
    assert!(blob_row(&app, did, &cid).await.expect("row").temp_key.is_none(), "permanent once used");
    assert_eq!(app.stored_blob(did, &cid).await.expect("stored"), bytes);

    let (status, once_more) = upload(&app, token, &bytes, "application/octet-stream").await;
    assert_eq!((status, &once_more["blob"]), (200, &first["blob"]), "{once_more}");
    assert!(blob_row(&app, did, &cid).await.expect("row").temp_key.is_none(), "a stored blob stays stored");
    assert_eq!(temp_bytes(&app), 0, "the upload of what is already stored is dropped");
    assert_eq!(app.stored_blob(did, &cid).await.expect("stored"), bytes);
});

app_test!(an_upload_a_machine_crash_cut_short_is_refused_when_a_record_references_it, |app| {
    let account = app.create_account("orla").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let bytes = noise(9, 300_000);
    let (status, uploaded) = upload(&app, token, &bytes, "application/octet-stream").await;
    assert_eq!(status, 200, "{uploaded}");
    let cid = uploaded["blob"]["ref"]["$link"].as_str().expect("cid").to_owned();
    let key = blob_row(&app, did, &cid).await.expect("row").temp_key.expect("temporary");
    // Uploads are synced only once a record references them: what a machine crash before then
    // can leave is a file cut short, last written before the kernel now running.
    let path = app.ctx.config.blobstore_dir.join("tmp").join(&key);
    std::fs::write(&path, &bytes[..4096]).expect("cut short");
    let file = std::fs::File::options().write(true).open(&path).expect("open");
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).expect("age it");

    let record = json!({ "repo": did, "collection": "com.example.file", "record": {
        "$type": "com.example.file", "file": uploaded["blob"] } });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&record)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("BlobNotFound")), "{body}");
    let (_, listed) = app
        .call(Method::GET, &format!("com.atproto.repo.listRecords?repo={did}&collection=com.example.file"), None, None)
        .await;
    assert_eq!(listed["records"], json!([]), "no record refers to the lost bytes");
    assert!(app.stored_blob(did, &cid).await.is_none(), "nor are they stored");

    // Uploaded again, the blob can be used.
    let (status, again) = upload(&app, token, &bytes, "application/octet-stream").await;
    assert_eq!((status, &again["blob"]), (200, &uploaded["blob"]), "{again}");
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&record)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.stored_blob(did, &cid).await.expect("stored"), bytes);
});

app_test!(unused_uploads_are_held_to_a_quota_per_account, [
    "AURORA_TEMP_BLOB_QUOTA" => "1000000",
], |app| {
    let account = app.create_account("quinn").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    // Ten at once, 400 kB each, against a 1 MB quota: two fit, or one when the first is stored
    // while the second is counted (the quota counts an upload finishing meanwhile both in flight
    // and stored: too much, never too little).
    let uploads = (0..10).map(|n| {
        let token = token.clone();
        let app = &app;
        async move { upload(app, &token, &noise(n, 400_000), "application/octet-stream").await }
    });
    let answers = futures_util::future::join_all(uploads).await;
    let stored: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert!((1..=2).contains(&stored.len()), "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!((*status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");
        assert!(body["message"].as_str().expect("message").contains("quota"), "{body}");
    }
    assert!(temp_bytes(&app) <= 1_000_000, "no more than the quota on disk: {}", temp_bytes(&app));
    // Used in a record, an upload no longer counts: there is room again.
    let record = json!({ "repo": did, "collection": "com.example.file", "record": {
        "$type": "com.example.file", "file": stored[0]["blob"] } });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&record)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(&app, &token, &noise(99, 400_000), "application/octet-stream").await;
    assert_eq!(status, 200, "{body}");
    // Another account has its own quota.
    let other = app.create_account("quill").await;
    let (status, _) = upload(&app, other["accessJwt"].as_str().expect("access"), &noise(7, 400_000), "application/octet-stream").await;
    assert_eq!(status, 200);
});

#[tokio::test]
async fn below_the_free_space_floor_uploads_and_imports_are_refused() {
    let app = crate::helpers::TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[("AURORA_MIN_FREE_DISK", "1000000000000000000")],
    )
    .await
    .expect("app");
    let account = app.create_account("rory").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let (status, body) = upload(&app, &token, b"hello", "text/plain").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("NotEnoughResources")), "{body}");
    assert_eq!(temp_bytes(&app), 0);
    let response = app
        .client
        .post(app.xrpc("com.atproto.repo.importRepo"))
        .bearer_auth(&token)
        .header("content-type", "application/vnd.ipld.car")
        .body(vec![0u8; 16])
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), 503);
}
