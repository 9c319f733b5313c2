//! Crash safety: the server is killed (SIGKILL) in the middle of concurrent writes and started
//! again on the same data. Every write it acknowledged must still be there, the repository
//! must verify, and the firehose log must hold a commit event for each.

// Shared with the api tests.
#[allow(dead_code)]
#[path = "support/binary.rs"]
mod binary;
#[allow(dead_code)]
#[path = "api/plc_double.rs"]
mod plc_double;

use std::time::Duration;

use aurora_atproto::car::{export_repo, verify_repo, CarLimits};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_during_concurrent_writes() {
    let plc = plc_double::PlcDouble::start().await;
    let data = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("probe").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = binary::start(data.path(), port, &plc.url, &[]).await;
    let client = reqwest::Client::new();
    let account: Value = client
        .post(format!("{base}/xrpc/com.atproto.server.createAccount"))
        .json(&json!({ "handle": "crash.test", "email": "crash@example.com", "password": "crash-password" }))
        .send()
        .await
        .expect("createAccount")
        .json()
        .await
        .expect("json");
    let token = account["accessJwt"].as_str().expect("token").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();

    let mut writers = Vec::new();
    for writer in 0..4 {
        let (client, base, token, did) = (client.clone(), base.clone(), token.clone(), did.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
                    "$type": "app.bsky.feed.post", "text": format!("{writer}-{i}"), "createdAt": "2024-05-01T12:00:00.000Z" } });
                let Ok(response) = client.post(format!("{base}/xrpc/com.atproto.repo.createRecord")).bearer_auth(&token).json(&body).send().await
                else {
                    break;
                };
                if !response.status().is_success() {
                    break;
                }
                let Ok(body) = response.json::<Value>().await else { break };
                acknowledged.push(body["uri"].as_str().unwrap_or_default().to_owned());
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.kill().await.expect("SIGKILL");
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    assert!(acknowledged.len() >= 4, "the writers got going before the kill ({})", acknowledged.len());

    let _server = binary::start(data.path(), port, &plc.url, &[]).await;
    for uri in &acknowledged {
        let rkey = uri.rsplit('/').next().expect("rkey");
        let response = client
            .get(format!("{base}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"))
            .send()
            .await
            .expect("getRecord");
        assert_eq!(response.status().as_u16(), 200, "acknowledged write {uri} was lost");
    }

    // The repository on disk is whole and signed, and the log has an event for every write.
    let db = aurora_locus::db::connect(&format!("sqlite://{}?mode=rwc", data.path().join("aurora.sqlite").display()))
        .await
        .expect("open the database");
    let typed: aurora_atproto::syntax::Did = did.parse().expect("a DID");
    let root = aurora_locus::repo::root(&db, &typed).await.expect("query").expect("root");
    let store = aurora_locus::repo::SqlBlockStore::new(&db, &typed);
    let (car, _) = export_repo(&store, root.cid.to_cid().expect("cid"), Vec::new()).await.expect("export");
    let (car_root, blocks) = aurora_atproto::car::read_car(&car[..], CarLimits::default()).await.expect("read");
    let key = aurora_atproto::crypto::PublicKey::from_multikey(
        account["didDoc"]["verificationMethod"][0]["publicKeyMultibase"].as_str().expect("key"),
    )
    .expect("multikey");
    let verified =
        verify_repo(car_root, blocks, &did.parse().expect("did"), &key).await.expect("the repository verifies");
    assert!(verified.records.len() >= acknowledged.len());
    use aurora_locus::db::entities::repo_seq;
    let events = repo_seq::Entity::find()
        .filter(repo_seq::Column::Did.eq(did.as_str()))
        .filter(repo_seq::Column::EventType.eq("commit"))
        .all(&db)
        .await
        .expect("events");
    for uri in &acknowledged {
        let path = uri.splitn(4, '/').nth(3).expect("path");
        let found = events.iter().any(|e| {
            let json =
                aurora_atproto::data::ipld_to_json(&aurora_atproto::data::from_dag_cbor(&e.event).expect("cbor"))
                    .expect("json");
            json["ops"].as_array().is_some_and(|ops| ops.iter().any(|op| op["path"] == path))
        });
        assert!(found, "no commit event for {uri}");
    }
    println!("{} acknowledged writes survived the kill", acknowledged.len());
}
