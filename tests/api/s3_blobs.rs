//! Blobs in a real S3-compatible store (`s3s-fs` on loopback): the whole life of a blob as on
//! disk — upload, claim, ranges, quarantine and release, deletion, collection — large uploads
//! streamed in parts, and `blobs migrate` from disk to the bucket and back.

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp, PNG};
use crate::s3_server::S3Server;
use aurora_locus::blobs::{BlobStore, Blobs};
use aurora_locus::db::entities::blob;

const ADMIN: &str = "admin-secret";

async fn spawn_on(s3: &S3Server, extra: &[(&str, &str)]) -> TestApp {
    let owned = s3.settings();
    let mut settings: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    settings.push(("PDS_ADMIN_PASSWORD", ADMIN));
    settings.extend_from_slice(extra);
    TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app")
}

async fn upload(app: &TestApp, token: &str, bytes: Vec<u8>, content_type: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn post_with(blob: &Value) -> Value {
    json!({ "$type": "app.bsky.feed.post", "text": "look", "createdAt": "2024-05-01T12:00:00.000Z",
        "embed": { "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": blob }] } })
}

async fn take_down(app: &TestApp, did: &str, cid: &str, applied: bool) {
    let body = json!({ "subject": { "$type": "com.atproto.admin.defs#repoBlobRef", "did": did, "cid": cid },
        "takedown": { "applied": applied, "ref": "ticket-1" } });
    let response = app
        .client
        .post(app.xrpc("com.atproto.admin.updateSubjectStatus"))
        .basic_auth("admin", Some(ADMIN))
        .json(&body)
        .send()
        .await
        .expect("takedown");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_lives_its_whole_life_in_the_bucket() {
    let Some(s3) = S3Server::start() else { return };
    let app = spawn_on(&s3, &[]).await;
    assert!(matches!(app.ctx.blobs, Blobs::S3(_)));
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, 200, "the readiness probe writes to the bucket: {ready}");

    let account = app.create_account("sally").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let (status, uploaded) = upload(&app, token, PNG.to_vec(), "image/png").await;
    assert_eq!(status, 200, "{uploaded}");
    let blob = uploaded["blob"].clone();
    let cid = blob["ref"]["$link"].as_str().expect("cid").to_owned();
    let keys = s3.keys();
    assert!(keys.len() == 1 && keys[0].starts_with("tmp/"), "an upload waits under tmp/: {keys:?}");

    let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post_with(&blob) });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!(status, 200, "{created}");
    let stored = format!("blocks/{did}/{cid}");
    assert_eq!(s3.keys(), vec![stored.clone()], "the reference's layout");

    let get_blob = format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}");
    let response = app.get(&get_blob).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
    let ranged =
        app.client.get(format!("{}{get_blob}", app.url)).header("range", "bytes=2-9").send().await.expect("range");
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.headers()["content-range"], format!("bytes 2-9/{}", PNG.len()).as_str());
    assert_eq!(ranged.bytes().await.expect("bytes").as_ref(), &PNG[2..10]);

    take_down(&app, did, &cid, true).await;
    assert_eq!(s3.keys(), vec![format!("quarantine/{did}/{cid}")], "quarantined in the bucket");
    assert_eq!(app.get(&get_blob).await.status(), 400);
    take_down(&app, did, &cid, false).await;
    assert_eq!(s3.keys(), vec![stored.clone()]);
    assert_eq!(app.get(&get_blob).await.bytes().await.expect("bytes").as_ref(), PNG);

    let rkey = created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned();
    let delete = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey });
    let (status, _) = app.call(Method::POST, "com.atproto.repo.deleteRecord", Some(token), Some(&delete)).await;
    assert_eq!(status, 200);
    assert!(s3.keys().is_empty(), "the last reference gone, the object goes: {:?}", s3.keys());

    // An upload nobody claims is collected after the grace period.
    let (status, uploaded) = upload(&app, token, b"unclaimed".to_vec(), "text/plain").await;
    assert_eq!(status, 200);
    let unclaimed = uploaded["blob"]["ref"]["$link"].as_str().expect("cid").to_owned();
    blob::Entity::update_many()
        .col_expr(blob::Column::CreatedAt, sea_orm::sea_query::Expr::value("2000-01-01T00:00:00.000Z"))
        .filter(blob::Column::Cid.eq(unclaimed.as_str()))
        .exec(&app.ctx.db)
        .await
        .expect("age the upload");
    assert_eq!(aurora_locus::blobs::collect_garbage(&app.ctx).await.expect("gc"), 1);
    assert!(s3.keys().is_empty(), "{:?}", s3.keys());

    // A purged account's blobs, quarantined ones too, leave the bucket.
    let (_, first) = upload(&app, token, PNG.to_vec(), "image/png").await;
    let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post_with(&first["blob"]) });
    assert_eq!(app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await.0, 200);
    take_down(&app, did, first["blob"]["ref"]["$link"].as_str().expect("cid"), true).await;
    assert_eq!(s3.keys().len(), 1);
    app.ctx.blobs.delete_account(&crate::helpers::typed_did(did)).await.expect("delete account's blobs");
    assert!(s3.keys().is_empty(), "{:?}", s3.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_stream_to_the_bucket_in_parts_and_over_the_limit_leave_nothing() {
    let Some(s3) = S3Server::start() else { return };
    let app = spawn_on(&s3, &[("PDS_BLOB_UPLOAD_LIMIT", "20000000")]).await;
    let account = app.create_account("lars").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    // Three parts of S3's five-mebibyte minimum, the last one short.
    let big: Vec<u8> = (0..12_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let (status, uploaded) = upload(&app, token, big.clone(), "application/octet-stream").await;
    assert_eq!(status, 200, "{uploaded}");
    assert_eq!(uploaded["blob"]["size"], big.len());
    let cid = uploaded["blob"]["ref"]["$link"].as_str().expect("cid").to_owned();
    let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post_with(&uploaded["blob"]) });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!(status, 400, "a post may not embed a 12 MB octet stream as an image: {created}");
    let generic = json!({ "repo": did, "collection": "org.example.file", "validate": false,
        "record": { "$type": "org.example.file", "file": uploaded["blob"] } });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&generic)).await;
    assert_eq!(status, 200, "{created}");
    let get_blob = format!("{}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}", app.url);
    let whole = app.client.get(&get_blob).send().await.expect("get");
    assert_eq!(whole.bytes().await.expect("bytes").as_ref(), big.as_slice());
    let tail = app.client.get(&get_blob).header("range", "bytes=-1000").send().await.expect("range");
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.expect("bytes").as_ref(), &big[big.len() - 1000..]);

    let (status, refused) = upload(&app, token, vec![1u8; 20_000_001], "application/octet-stream").await;
    assert_eq!((status, refused["error"].as_str()), (413, Some("PayloadTooLarge")), "{refused}");
    // Streamed without a length, so refused only once the limit is passed mid-upload.
    let chunks =
        futures_util::stream::iter((0..25).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![2u8; 1_000_000]))));
    let response = app
        .client
        .post(app.xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("streamed upload");
    assert_eq!(response.status(), 413);
    assert_eq!(s3.keys(), vec![format!("blocks/{did}/{cid}")], "no part of a refused upload is left behind");
}

fn s3_config(s3: &S3Server) -> aurora_locus::blobs::S3Config {
    aurora_locus::blobs::S3Config {
        bucket: crate::s3_server::BUCKET.to_owned(),
        region: None,
        endpoint: Some(s3.endpoint.clone()),
        force_path_style: true,
        access_key_id: Some(crate::s3_server::ACCESS_KEY.to_owned()),
        secret_access_key: Some(aurora_locus::config::Secret::new(crate::s3_server::SECRET_KEY)),
        prefix: Some("pds-one".to_owned()),
        request_timeout: None,
        uploads: 4,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_migrate_to_the_bucket_and_back_checked_by_cid_and_resumable() {
    let Some(s3) = S3Server::start() else { return };
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PDS_ADMIN_PASSWORD", ADMIN)]).await.expect("app");
    let account = app.create_account("mira").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let mut cids = Vec::new();
    for n in 0..5u8 {
        let mut bytes = PNG.to_vec();
        bytes.extend_from_slice(&[n; 100]);
        let (_, uploaded) = upload(&app, token, bytes, "image/png").await;
        let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post_with(&uploaded["blob"]) });
        assert_eq!(app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await.0, 200);
        cids.push(uploaded["blob"]["ref"]["$link"].as_str().expect("cid").to_owned());
    }
    take_down(&app, did, &cids[0], true).await;

    let bucket = Blobs::S3(aurora_locus::blobs::S3BlobStore::new(&s3_config(&s3)).expect("store"));
    let done = std::sync::atomic::AtomicU64::new(0);
    let progress = || {
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let report =
        aurora_locus::blobs::migrate::migrate(&app.ctx.db, &app.ctx.blobs, &bucket, &progress).await.expect("migrate");
    assert_eq!((report.blobs, report.copied, report.present), (5, 5, 0), "{report:?}");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 5, "progress once per blob");
    let keys = s3.keys();
    assert!(keys.contains(&format!("pds-one/quarantine/{did}/{}", cids[0])), "the takedown is kept: {keys:?}");
    assert!(keys.contains(&format!("pds-one/blocks/{did}/{}", cids[1])), "{keys:?}");

    // Run again: everything is found, read back and checked; a damaged copy is made again.
    let damaged = s3.root.path().join(crate::s3_server::BUCKET).join(format!("pds-one/blocks/{did}/{}", cids[2]));
    std::fs::write(&damaged, b"not the picture").expect("damage");
    let report =
        aurora_locus::blobs::migrate::migrate(&app.ctx.db, &app.ctx.blobs, &bucket, &progress).await.expect("again");
    assert_eq!((report.copied, report.present), (1, 4), "{report:?}");

    // And back to an empty directory: the same bytes.
    let dir = tempfile::tempdir().expect("dir");
    let disk = Blobs::Disk(aurora_locus::blobs::DiskBlobStore::new(dir.path()));
    let report = aurora_locus::blobs::migrate::migrate(&app.ctx.db, &bucket, &disk, &progress).await.expect("back");
    assert_eq!((report.copied, report.problems.len()), (5, 0), "{report:?}");
    let typed = crate::helpers::typed_did(did);
    for cid in &cids[1..] {
        let cid: cid::Cid = cid.parse().expect("cid");
        let copied =
            aurora_locus::blobs::migrate::hash_of(disk.get(&typed, &cid, None).await.expect("read").expect("there"))
                .await;
        assert_eq!(copied.expect("hash"), cid);
    }
    assert!(disk.is_quarantined(&typed, &cids[0].parse().expect("cid")).await.expect("quarantine"));

    // A blob missing from the source is reported, not skipped in silence.
    let Blobs::Disk(source) = &app.ctx.blobs else { panic!("disk") };
    std::fs::remove_file(source.blob_path(&typed, &cids[3].parse().expect("cid"))).expect("remove");
    let empty = tempfile::tempdir().expect("dir");
    let elsewhere = Blobs::Disk(aurora_locus::blobs::DiskBlobStore::new(empty.path()));
    let report =
        aurora_locus::blobs::migrate::migrate(&app.ctx.db, &app.ctx.blobs, &elsewhere, &progress).await.expect("run");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].contains("missing"), "{:?}", report.problems);
}
