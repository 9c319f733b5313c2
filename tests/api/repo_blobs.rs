//! Blobs: uploaded to temporary storage, made permanent by a referencing record, released when
//! the last reference goes, and collected if never claimed.

use aurora_locus::db::entities::blob;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

/// A valid 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

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
    use aurora_locus::blobs::BlobStore;
    let path = app
        .ctx
        .blobs
        .path(&crate::helpers::typed_did(did), &cid.parse().expect("cid"))
        .await
        .expect("path")
        .expect("stored");
    assert_eq!(std::fs::read(path).expect("file"), PNG);

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
    assert!(app
        .ctx
        .blobs
        .path(&crate::helpers::typed_did(did), &cid.parse().expect("cid"))
        .await
        .expect("path")
        .is_none());
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
