//! Records: writes produce signed commits that a firehose consumer can verify, reads serve
//! them back, and every rule on keys, validation and concurrency holds.

use aurora_atproto::car::{read_car, CarLimits};
use aurora_atproto::mst::{verify_inversion, MstKey, RecordOp};
use aurora_locus::db::entities::repo_seq;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

fn post(text: &str) -> Value {
    json!({ "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" })
}

/// Checks every `#commit` event of `did` the way a relay does: the blocks in the event alone
/// must take the new MST root back to `prevData` when the operations are undone.
async fn verify_commit_events(app: &crate::helpers::TestApp, did: &str) -> usize {
    let events = repo_seq::Entity::find()
        .filter(repo_seq::Column::Did.eq(did))
        .filter(repo_seq::Column::EventType.eq("commit"))
        .order_by_asc(repo_seq::Column::Seq)
        .all(&app.ctx.db)
        .await
        .expect("events");
    let mut verified = 0;
    for event in &events {
        let body = aurora_atproto::data::from_dag_cbor(&event.event).expect("canonical event");
        let json = aurora_atproto::data::ipld_to_json(&body).expect("json");
        let Some(prev_data) = json["prevData"]["$link"].as_str() else { continue };
        let car = match &body {
            aurora_atproto::data::Ipld::Map(map) => match map.get("blocks") {
                Some(aurora_atproto::data::Ipld::Bytes(bytes)) => bytes.clone(),
                _ => panic!("event without blocks"),
            },
            _ => panic!("event is not a map"),
        };
        let (root, blocks) = read_car(&car[..], CarLimits::FIREHOSE).await.expect("event CAR");
        let commit = aurora_atproto::commit::Commit::from_bytes(&blocks[&root]).expect("commit block");
        let ops: Vec<RecordOp> = json["ops"]
            .as_array()
            .expect("ops")
            .iter()
            .map(|op| {
                let key: MstKey = op["path"].as_str().expect("path").parse().expect("key");
                let cid = || op["cid"]["$link"].as_str().expect("cid").parse().expect("cid");
                let prev = || op["prev"]["$link"].as_str().expect("prev").parse().expect("prev");
                match op["action"].as_str() {
                    Some("create") => RecordOp::Create { key, cid: cid() },
                    Some("update") => RecordOp::Update { key, cid: cid(), prev: prev() },
                    _ => RecordOp::Delete { key, prev: prev() },
                }
            })
            .collect();
        verify_inversion(commit.data, prev_data.parse().expect("prevData"), &ops, &blocks)
            .expect("the event's blocks prove the operations");
        verified += 1;
    }
    verified
}

app_test!(describe_repo_lists_each_collection_once_in_order, |app| {
    let account = app.create_account("quinn").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let shared = &app;
    let describe = |repo: String| async move {
        let (status, described) = shared.get_json(&format!("/xrpc/com.atproto.repo.describeRepo?repo={repo}")).await;
        assert_eq!(status, 200, "{described}");
        described["collections"].clone()
    };
    assert_eq!(describe(did.to_owned()).await, json!([]), "a new repository holds no collections");
    // Several records in each of several collections, written out of order; another account's
    // collection must not show.
    let collections = ["com.example.b", "app.bsky.feed.post", "com.example.a", "com.example.aa"];
    let writes: Vec<Value> = (0..12)
        .map(|i| {
            json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": collections[i % collections.len()],
                "value": { "$type": collections[i % collections.len()], "text": format!("n{i}"), "createdAt": "2024-05-01T12:00:00.000Z" } })
        })
        .collect();
    let body = json!({ "repo": did, "writes": writes, "validate": false });
    let (status, written) = app.call(Method::POST, "com.atproto.repo.applyWrites", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{written}");
    let other = app.create_account("rowan").await;
    let body = json!({ "repo": other["did"], "collection": "com.example.c", "record": { "$type": "com.example.c" } });
    let other_token = other["accessJwt"].as_str().expect("access");
    let (status, created) =
        app.call(Method::POST, "com.atproto.repo.createRecord", Some(other_token), Some(&body)).await;
    assert_eq!(status, 200, "{created}");
    let listed = json!(["app.bsky.feed.post", "com.example.a", "com.example.aa", "com.example.b"]);
    assert_eq!(describe(did.to_owned()).await, listed);
    assert_eq!(describe("quinn.test".to_owned()).await, listed, "by handle too");
    assert_eq!(describe(other["did"].as_str().expect("did").to_owned()).await, json!(["com.example.c"]));
});

app_test!(records_are_created_read_listed_updated_and_deleted, |app| {
    let account = app.create_account("wendy").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post("hello") });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["validationStatus"], "valid");
    let uri = created["uri"].as_str().expect("uri").to_owned();
    let rkey = uri.rsplit('/').next().expect("rkey").to_owned();
    assert!(rkey.parse::<aurora_atproto::syntax::Tid>().is_ok(), "a TID key by default: {rkey}");
    assert!(created["commit"]["cid"].is_string() && created["commit"]["rev"].is_string());

    let get = format!("/xrpc/com.atproto.repo.getRecord?repo=wendy.test&collection=app.bsky.feed.post&rkey={rkey}");
    let (status, got) = app.get_json(&get).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["value"], post("hello"));
    assert_eq!(got["cid"], created["cid"]);

    let put = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": post("edited") });
    let (status, updated) = app.call(Method::POST, "com.atproto.repo.putRecord", Some(token), Some(&put)).await;
    assert_eq!(status, 200, "{updated}");
    assert_ne!(updated["cid"], created["cid"]);
    assert!(updated["commit"]["rev"].as_str() > created["commit"]["rev"].as_str(), "revs increase");
    let (_, got) = app.get_json(&get).await;
    assert_eq!(got["value"]["text"], "edited");

    let (status, listed) =
        app.get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post")).await;
    assert_eq!(status, 200);
    assert_eq!(listed["records"].as_array().map(Vec::len), Some(1));
    let (_, described) = app.get_json(&format!("/xrpc/com.atproto.repo.describeRepo?repo={did}")).await;
    assert_eq!(described["collections"], json!(["app.bsky.feed.post"]));
    assert_eq!(described["handleIsCorrect"], true);

    let delete = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey });
    let (status, deleted) = app.call(Method::POST, "com.atproto.repo.deleteRecord", Some(token), Some(&delete)).await;
    assert_eq!(status, 200, "{deleted}");
    let (status, missing) = app.get_json(&get).await;
    assert_eq!((status, missing["error"].as_str()), (400, Some("RecordNotFound")));

    assert_eq!(verify_commit_events(&app, did).await, 3, "create, update and delete events verify");
});

app_test!(record_values_keep_the_blocks_key_order_as_the_reference_does, |app| {
    let account = app.create_account("ordered").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let record = json!({
        "$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00.000Z",
        "langs": ["en"], "aa": 1, "zzzzzzzzzzzz": { "b": 1, "a": 2 },
    });
    let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": record });
    let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!(status, 200, "{created}");
    let rkey = created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey");
    let keys = |value: &Value| value.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
    // Canonical DAG-CBOR order (shorter keys first, then bytewise): what the reference PDS sends.
    let expected = ["aa", "text", "$type", "langs", "createdAt", "zzzzzzzzzzzz"];
    let (_, got) = app
        .get_json(&format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"))
        .await;
    let (_, listed) =
        app.get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post")).await;
    for value in [&got["value"], &listed["records"][0]["value"]] {
        assert_eq!(keys(value), expected, "{value}");
        assert_eq!(keys(&value["zzzzzzzzzzzz"]), ["a", "b"], "{value}");
    }
});

/// Creates a post for each of `texts` in `did`'s repository; their createRecord answers.
async fn create_posts(app: &crate::helpers::TestApp, token: &str, did: &str, texts: &[&str]) -> Vec<Value> {
    let mut made = Vec::new();
    for text in texts {
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post(text) });
        let (status, created) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
        assert_eq!(status, 200, "{created}");
        made.push(created);
    }
    made
}

app_test!(a_damaged_record_block_fails_its_reads_whole_and_spares_the_others, |app| {
    let account = app.create_account("damaged").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let made = create_posts(&app, token, did, &["kept", "damaged"]).await;
    let get = |created: &Value| {
        let rkey = created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned();
        format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}")
    };
    let list = format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post");
    // The damage sits after most of the value has been written out: a float in the last of a
    // map's keys, which the data model forbids, then a key out of canonical order.
    let damages: [&[u8]; 2] = [
        &[0xa2, 0x64, b't', b'e', b'x', b't', 0x62, b'h', b'i', 0x65, b'$', b't', b'y', b'p', b'e', 0xf9, 0x3c, 0x00],
        &[0xa2, 0x64, b't', b'e', b'x', b't', 0x62, b'h', b'i', 0x61, b'a', 0x01],
    ];
    for damage in damages {
        replace_block(&app, did, &made[1], Some(damage)).await;

        for path in [get(&made[1]), list.clone()] {
            let response = app.get(&path).await;
            assert_eq!(response.status().as_u16(), 500, "{path}");
            let body: Value = response.json().await.expect("a whole JSON error, nothing of the record");
            assert_eq!(body["error"], "InternalServerError", "{path}: {body}");
        }
        let (status, kept) = app.get_json(&get(&made[0])).await;
        assert_eq!((status, &kept["value"]["text"]), (200, &json!("kept")), "{kept}");
    }
});

/// Replaces the stored block of the record `created` (a createRecord answer) with `content`,
/// or removes it when there is none.
async fn replace_block(app: &crate::helpers::TestApp, did: &str, created: &Value, content: Option<&[u8]>) {
    use aurora_locus::db::entities::repo_block;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, ModelTrait};
    let cid = created["cid"].as_str().expect("cid");
    let key = (crate::helpers::typed_did(did), cid.parse::<aurora_atproto::syntax::CidString>().expect("cid"));
    let block = repo_block::Entity::find_by_id(key).one(&app.ctx.db).await.expect("read").expect("the record's block");
    let Some(content) = content else {
        block.delete(&app.ctx.db).await.expect("remove the block");
        return;
    };
    let mut block: repo_block::ActiveModel = block.into();
    block.content = Set(content.to_vec());
    block.update(&app.ctx.db).await.expect("replace the block");
}

/// A block that breaks the data model (a float), which no read can write out as JSON.
const UNREADABLE: &[u8] = &[0xa1, 0x64, b't', b'e', b'x', b't', 0xf9, 0x3c, 0x00];

app_test!(a_listed_page_is_the_same_whether_its_records_json_was_kept_or_not, |app| {
    let app = &app;
    let account = app.create_account("kept").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let mut made = create_posts(app, token, did, &["p0", "p1", "p2", "p3", "p4", "p5"]).await;
    let list = format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post");
    let page = |path: String| async move {
        let response = app.get(&path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.bytes().await.expect("body")
    };
    let cold = page(list.clone()).await;
    assert_eq!(page(list.clone()).await, cold, "read again from the kept JSON: the same bytes");
    assert_eq!(page(format!("{list}&reverse=true&limit=3")).await, page(format!("{list}&reverse=true&limit=3")).await);

    // Kept records beside new ones, a deleted one gone.
    made.extend(create_posts(app, token, did, &["p6", "p7"]).await);
    let rkey = |created: &Value| created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned();
    let delete = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey(&made[0]) });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.deleteRecord", Some(token), Some(&delete)).await;
    assert_eq!(status, 200, "{body}");
    let (status, listed) = app.get_json(&list).await;
    assert_eq!(status, 200, "{listed}");
    let uris: Vec<&str> =
        listed["records"].as_array().expect("records").iter().map(|r| r["uri"].as_str().expect("uri")).collect();
    let expected: Vec<&str> = made[1..].iter().rev().map(|c| c["uri"].as_str().expect("uri")).collect();
    assert_eq!(uris, expected);
    for (record, created) in listed["records"].as_array().expect("records").iter().zip(made[1..].iter().rev()) {
        let path =
            format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={}", rkey(created));
        let (_, got) = app.get_json(&path).await;
        assert_eq!((&record["cid"], &record["value"]), (&got["cid"], &got["value"]), "{record}");
    }

    // A listed record's JSON is kept: its block is not read again (and a getRecord, which reads
    // it, fails on a block damaged since).
    replace_block(app, did, &made[3], Some(UNREADABLE)).await;
    let (status, listed) = app.get_json(&list).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["records"][4]["value"]["text"], "p3", "{listed}");
    let path =
        format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={}", rkey(&made[3]));
    assert_eq!(app.get(&path).await.status().as_u16(), 500);
});

app_test!(with_no_record_json_kept_each_page_reads_its_blocks, ["AURORA_RECORD_CACHE_BYTES" => "0"], |app| {
    let app = &app;
    let account = app.create_account("unkept").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let made = create_posts(app, token, did, &["one", "two"]).await;
    let list = format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post");
    let (status, listed) = app.get_json(&list).await;
    assert_eq!((status, &listed["records"][1]["value"]["text"]), (200, &json!("one")), "{listed}");
    replace_block(app, did, &made[0], Some(UNREADABLE)).await;
    let (status, body) = app.get_json(&list).await;
    assert_eq!((status, &body["error"]), (500, &json!("InternalServerError")), "{body}");
});

app_test!(a_listed_record_whose_block_is_gone_fails_the_page_whole, |app| {
    let app = &app;
    let account = app.create_account("gone").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let made = create_posts(app, token, did, &["one", "two", "three", "four", "five"]).await;
    let list = format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=");
    let (status, listed) = app.get_json(&format!("{list}4")).await;
    assert_eq!(status, 200, "{listed}");
    // The oldest record is not kept yet (the only one of the next page of five, whose block is
    // then asked for alone); its block goes missing.
    replace_block(app, did, &made[0], None).await;
    let (status, body) = app.get_json(&format!("{list}5")).await;
    assert_eq!((status, &body["error"]), (500, &json!("InternalServerError")), "{body}");
    let (status, listed) = app.get_json(&format!("{list}4")).await;
    assert_eq!((status, listed["records"].as_array().map(Vec::len)), (200, Some(4)), "the others are still served");
});

app_test!(writes_follow_the_validation_key_and_swap_rules, |app| {
    let account = app.create_account("xena").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let app = &app;
    let write = |body: Value| async move {
        app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await
    };
    let too_long = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post(&"x".repeat(3001)) });
    let (status, body) = write(too_long.clone()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");
    let mut skip = too_long.clone();
    skip["validate"] = json!(false);
    let (status, body) = write(skip).await;
    assert_eq!(status, 200, "validate=false skips the lexicon: {body}");
    assert!(body.get("validationStatus").is_none());

    let custom =
        json!({ "repo": did, "collection": "com.example.thing", "record": { "$type": "com.example.thing", "n": 1 } });
    let (status, body) = write(custom.clone()).await;
    assert_eq!((status, body["validationStatus"].as_str()), (200, Some("unknown")), "{body}");
    let mut strict = custom;
    strict["validate"] = json!(true);
    let (status, _) = write(strict).await;
    assert_eq!(status, 400, "validate=true needs a known lexicon");

    let float =
        json!({ "repo": did, "collection": "com.example.thing", "record": { "$type": "com.example.thing", "n": 1.5 } });
    let (status, body) = write(float).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "floats are not data: {body}");
    let wrong_type =
        json!({ "repo": did, "collection": "app.bsky.feed.post", "record": { "$type": "app.bsky.feed.like" } });
    assert_eq!(write(wrong_type).await.0, 400);

    let profile = json!({ "$type": "app.bsky.actor.profile", "displayName": "Xena" });
    let (status, body) =
        write(json!({ "repo": did, "collection": "app.bsky.actor.profile", "rkey": "other", "record": profile })).await;
    assert_eq!(status, 400, "profiles live at self: {body}");
    let (status, body) = write(json!({ "repo": did, "collection": "app.bsky.actor.profile", "record": profile })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["uri"].as_str().expect("uri").ends_with("/app.bsky.actor.profile/self"));
    let (status, body) = write(json!({ "repo": did, "collection": "app.bsky.actor.profile", "record": profile })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "creating over a record is a clean 400: {body}"
    );

    let stale = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post("x"), "swapCommit": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq" });
    let (status, body) = write(stale).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidSwap")), "{body}");
    let put_stale = json!({ "repo": did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile, "swapRecord": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq" });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.putRecord", Some(token), Some(&put_stale)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidSwap")), "{body}");

    let other = app.create_account("yuri").await;
    let (status, body) =
        write(json!({ "repo": other["did"], "collection": "app.bsky.feed.post", "record": post("x") })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AuthenticationRequired")),
        "nobody writes to another's repository"
    );
    let (status, body) = write(
        json!({ "repo": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "collection": "app.bsky.feed.post", "record": post("x") }),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("AccountNotFound")), "{body}");
    let (status, _) = app
        .call(
            Method::POST,
            "com.atproto.repo.createRecord",
            None,
            Some(&json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post("x") })),
        )
        .await;
    assert_eq!(status, 401);
});

app_test!(apply_writes_is_all_or_nothing, |app| {
    let account = app.create_account("zack").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let create = |rkey: &str, text: &str| json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": rkey, "value": post(text) });
    let batch = json!({ "repo": did, "writes": [create("3kaaaaaaaaa22", "a"), create("3kaaaaaaaab22", "b"), create("3kaaaaaaaac22", "c")] });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.applyWrites", Some(token), Some(&batch)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["results"][0]["$type"], "com.atproto.repo.applyWrites#createResult");

    let mixed = json!({ "repo": did, "writes": [
        { "$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post", "rkey": "3kaaaaaaaaa22", "value": post("a2") },
        { "$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": "3kaaaaaaaab22" },
        create("3kaaaaaaaad22", &"x".repeat(3001)),
    ] });
    let (status, body) = app.call(Method::POST, "com.atproto.repo.applyWrites", Some(token), Some(&mixed)).await;
    assert_eq!(status, 400, "one invalid write fails the batch: {body}");
    let (_, listed) =
        app.get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post")).await;
    assert_eq!(listed["records"].as_array().map(Vec::len), Some(3), "nothing of the failed batch was written");
    assert_eq!(listed["records"][0]["value"]["text"], "c", "newest first");

    let (_, page) = app
        .get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=2"))
        .await;
    assert_eq!(page["records"].as_array().map(Vec::len), Some(2));
    let cursor = page["cursor"].as_str().expect("cursor");
    let (_, rest) = app
        .get_json(&format!(
            "/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["records"][0]["value"]["text"], "a");
    // As the reference pages: the short last page carries its last key, the empty one after it
    // none.
    assert_eq!(rest["cursor"].as_str(), Some("3kaaaaaaaaa22"), "{rest}");
    let (_, after) = app
        .get_json(&format!(
            "/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=2&cursor=3kaaaaaaaaa22"
        ))
        .await;
    assert_eq!((after["records"].as_array().map(Vec::len), after.get("cursor")), (Some(0), None), "{after}");
    let (_, reversed) = app
        .get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&reverse=true"))
        .await;
    assert_eq!(reversed["records"][0]["value"]["text"], "a");
    // An empty cursor is no cursor (the reference's reading): the first page.
    let (_, first) = app
        .get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&cursor="))
        .await;
    assert_eq!(first["records"].as_array().map(Vec::len), Some(3));
    assert_eq!(verify_commit_events(&app, did).await, 1);
});

app_test!(concurrent_writers_to_one_repository_lose_nothing, |app| {
    let account = app.create_account("abby").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let (client, url, token, did) =
            (app.client.clone(), app.xrpc("com.atproto.repo.createRecord"), token.clone(), did.clone());
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..5 {
                let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post(&format!("{writer}-{i}")) });
                let response = client.post(&url).bearer_auth(&token).json(&body).send().await.expect("send");
                assert_eq!(response.status().as_u16(), 200);
                let body: Value = response.json().await.expect("json");
                revs.push(body["commit"]["rev"].as_str().expect("rev").to_owned());
            }
            revs
        }));
    }
    let mut revs = Vec::new();
    for task in tasks {
        revs.extend(task.await.expect("writer"));
    }
    revs.sort();
    revs.dedup();
    assert_eq!(revs.len(), 40, "every write made its own commit");
    let (_, listed) = app
        .get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100"))
        .await;
    assert_eq!(listed["records"].as_array().map(Vec::len), Some(40));
    assert_eq!(verify_commit_events(&app, &did).await, 40, "a linear chain of verifiable commits");
});

app_test!(writes_that_land_together_each_commit_or_fail_alone_and_leave_no_stale_state, |app| {
    let account = app.create_account("batch").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let mut rkeys = Vec::new();
    for i in 0..16 {
        let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post(&format!("p{i}")) });
        let (status, created) =
            app.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
        assert_eq!(status, 200, "{created}");
        rkeys.push(created["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned());
    }
    // Eight writers at once: each edits one post, deletes another, and all race to create the
    // same key, which exactly one may win. Queued together, they share transactions.
    let shared = "3jzfcijpj2z2a";
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, token, did) = (app.client.clone(), token.clone(), did.clone());
        let (edit, delete) = (rkeys[w].clone(), rkeys[w + 8].clone());
        let url = |nsid: &str| app.xrpc(nsid);
        let (put, remove, create) = (
            url("com.atproto.repo.putRecord"),
            url("com.atproto.repo.deleteRecord"),
            url("com.atproto.repo.createRecord"),
        );
        tasks.push(tokio::spawn(async move {
            let send = |url: String, body: Value| {
                let (client, token) = (client.clone(), token.clone());
                async move {
                    let response = client.post(url).bearer_auth(token).json(&body).send().await.expect("send");
                    (response.status().as_u16(), response.json::<Value>().await.expect("json"))
                }
            };
            let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": edit, "record": post(&format!("edited {w}")) });
            let (edited, _) = send(put, body).await;
            let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": delete });
            let (deleted, _) = send(remove, body).await;
            let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": shared, "record": post(&format!("won by {w}")) });
            let (created, answer) = send(create, body).await;
            (edited, deleted, created, answer)
        }));
    }
    let mut winners = 0;
    for task in tasks {
        let (edited, deleted, created, answer) = task.await.expect("writer");
        assert_eq!((edited, deleted), (200, 200));
        match created {
            200 => winners += 1,
            400 => assert_eq!(answer["error"], "InvalidRequest", "{answer}"),
            other => panic!("creating at a taken key answered {other}: {answer}"),
        }
    }
    assert_eq!(winners, 1, "exactly one create at the shared key succeeds");

    let (_, listed) = app
        .get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100"))
        .await;
    let texts: std::collections::BTreeSet<String> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["value"]["text"].as_str().expect("text").to_owned())
        .collect();
    assert_eq!(texts.len(), 9, "8 edited posts and the shared one: {texts:?}");
    assert!((0..8).all(|w| texts.contains(&format!("edited {w}"))), "{texts:?}");
    assert_eq!(verify_commit_events(&app, &did).await, 16 + 8 + 8 + 1, "one verifiable commit per write");

    // The stored blocks are exactly the current tree's: nothing a batch replaced is left.
    let response = app.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    let car = response.bytes().await.expect("CAR");
    let (root, blocks) = read_car(&car[..], CarLimits::default()).await.expect("a CAR");
    let store = aurora_locus::repo::SqlBlockStore::new(&app.ctx.db, &crate::helpers::typed_did(&did));
    let (walk, stats) = aurora_atproto::car::export_repo(&store, root, Vec::new()).await.expect("walk");
    let (_, walked) = read_car(&walk[..], CarLimits::default()).await.expect("walk CAR");
    assert_eq!(stats.records, 9);
    assert_eq!(
        blocks.keys().collect::<std::collections::BTreeSet<_>>(),
        walked.keys().collect::<std::collections::BTreeSet<_>>()
    );
});

app_test!(writes_are_refused_while_the_account_is_deactivated_and_resume_after, |app| {
    let account = app.create_account("dormant").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let create = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post("before") });
    let (status, _) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!(status, 200);
    let (status, body) =
        app.call(Method::POST, "com.atproto.server.deactivateAccount", Some(token), Some(&json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, refused) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("AccountDeactivated")), "{refused}");
    let absent = json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a" });
    let (status, refused) = app.call(Method::POST, "com.atproto.repo.deleteRecord", Some(token), Some(&absent)).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("AccountDeactivated")),
        "even a write with nothing to do"
    );
    // Nor is its repository listed, by DID or by handle.
    let handle = account["handle"].as_str().expect("handle");
    let list = |repo: &str| format!("/xrpc/com.atproto.repo.listRecords?repo={repo}&collection=app.bsky.feed.post");
    for repo in [did, handle] {
        let (status, body) = app.get_json(&list(repo)).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");
        assert_eq!(body["message"], format!("Could not find repo: {repo}"));
    }
    let (status, body) = app.call(Method::POST, "com.atproto.server.activateAccount", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create)).await;
    assert_eq!(status, 200, "{body}");
    for repo in [did, handle] {
        let (status, listed) = app.get_json(&list(repo)).await;
        assert_eq!(status, 200, "{listed}");
        let uris: Vec<&str> =
            listed["records"].as_array().expect("records").iter().filter_map(|r| r["uri"].as_str()).collect();
        assert_eq!(uris.len(), 2, "{listed}");
        assert!(uris.iter().all(|uri| uri.starts_with(&format!("at://{did}/app.bsky.feed.post/"))), "{listed}");
    }
    let (status, body) = app.get_json(&list("nobody.test")).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Could not find repo: nobody.test")), "{body}");
    assert_eq!(verify_commit_events(&app, did).await, 2);
});

app_test!(a_writer_whose_cached_repository_moved_under_it_rebuilds_on_the_current_commit, |app| {
    let account = app.create_account("shared").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let create = |text: &str| json!({ "repo": did, "collection": "app.bsky.feed.post", "record": post(text) });
    let (status, _) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create("one"))).await;
    assert_eq!(status, 200);
    // A second server on the same database commits behind this one's cached state.
    let other = aurora_locus::context::AppContext::build(app.ctx.config.clone()).await.expect("second server");
    let write = aurora_locus::repo::writer::Write::Create {
        collection: "app.bsky.feed.post".parse().expect("nsid"),
        rkey: None,
        record: post("two"),
    };
    let elsewhere = aurora_locus::repo::writer::apply(&other, &crate::helpers::typed_did(did), vec![write], None, None)
        .await
        .expect("the other server writes")
        .expect("a commit");
    let (status, here) =
        app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&create("three"))).await;
    assert_eq!(status, 200, "{here}");
    assert!(
        here["commit"]["rev"].as_str().expect("rev") > elsewhere.rev.as_str(),
        "built on the other server's commit"
    );
    let (_, listed) =
        app.get_json(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post")).await;
    assert_eq!(listed["records"].as_array().map(Vec::len), Some(3), "{listed}");
    assert_eq!(verify_commit_events(&app, did).await, 3, "one linear chain");
});
