//! Large bodies against the server binary: a 50 MB upload is streamed to disk while hashed,
//! and a 50 MB answer from a proxied service is streamed through; neither grows the server's
//! memory.

// Shared with the api tests.
#[allow(dead_code)]
#[path = "support/binary.rs"]
mod binary;
#[allow(dead_code)]
#[path = "api/plc_double.rs"]
mod plc_double;

use serde_json::Value;
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 800; // 50 MiB + change: 52,428,800 bytes

fn chunk(i: usize) -> Vec<u8> {
    // Varied bytes, so nothing along the way can compress them away.
    (0..CHUNK).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_upload_streams_through_with_bounded_memory() {
    let plc = plc_double::PlcDouble::start().await;
    let data = tempfile::tempdir().expect("temp dir");
    let port = binary::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let limit = [("PDS_BLOB_UPLOAD_LIMIT", (60 * 1024 * 1024).to_string())];
    let server = binary::start(data.path(), port, &plc.url, &limit).await;
    let pid = server.id().expect("pid");
    let client = reqwest::Client::new();
    let account = binary::create_account(&base, "big").await;
    let token = account["accessJwt"].as_str().expect("token");
    let before = binary::peak_rss_kib(pid);

    let body = futures_util::stream::iter((0..CHUNKS).map(|i| Ok::<_, std::io::Error>(chunk(i))));
    let response = client
        .post(format!("{base}/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .header("content-length", (CHUNK * CHUNKS).to_string())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 200);
    let uploaded: Value = response.json().await.expect("json");
    let after = binary::peak_rss_kib(pid);

    let mut hash = Sha256::new();
    for i in 0..CHUNKS {
        hash.update(chunk(i));
    }
    let expected = aurora_atproto::cids::from_sha256(0x55, hash.finalize().into());
    assert_eq!(uploaded["blob"]["size"].as_u64(), Some((CHUNK * CHUNKS) as u64));
    assert_eq!(uploaded["blob"]["ref"]["$link"].as_str(), Some(expected.to_string().as_str()));
    let growth_mib = after.saturating_sub(before) / 1024;
    println!("peak RSS {before} KiB before, {after} KiB after the upload");
    assert!(growth_mib < 8, "peak memory grew by {growth_mib} MiB for a 50 MiB upload ({before} → {after} KiB)");
}

#[poem::handler]
fn big_answer() -> poem::Response {
    let chunks = (0..CHUNKS).map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk(i))));
    poem::Response::builder()
        .content_type("application/octet-stream")
        .body(poem::Body::from_bytes_stream(futures_util::stream::iter(chunks)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_proxied_answer_streams_through_with_bounded_memory() {
    use poem::listener::{Acceptor, Listener};
    let app_view = poem::listener::TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind");
    let app_view_port = app_view.local_addr()[0].as_socket_addr().expect("addr").port();
    tokio::spawn(poem::Server::new_with_acceptor(app_view).run(poem::Route::new().at("/xrpc/*", big_answer)));
    let plc = plc_double::PlcDouble::start().await;
    let data = tempfile::tempdir().expect("temp dir");
    let port = binary::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let settings = [
        ("PDS_DEV_MODE", "true".to_owned()),
        ("PDS_BSKY_APP_VIEW_URL", format!("http://127.0.0.1:{app_view_port}")),
        ("PDS_BSKY_APP_VIEW_DID", format!("did:web:localhost%3A{app_view_port}")),
        ("PDS_PROXY_MAX_RESPONSE_SIZE", (60 * 1024 * 1024).to_string()),
    ];
    let server = binary::start(data.path(), port, &plc.url, &settings).await;
    let pid = server.id().expect("pid");
    let client = reqwest::Client::new();
    let account = binary::create_account(&base, "reader").await;
    let token = account["accessJwt"].as_str().expect("token");
    let before = binary::peak_rss_kib(pid);
    let mut response = client
        .get(format!("{base}/xrpc/app.bsky.feed.searchPosts?q=everything"))
        .bearer_auth(token)
        .header("accept-encoding", "identity")
        .send()
        .await
        .expect("proxied call");
    assert_eq!(response.status(), 200);
    let mut hash = Sha256::new();
    let mut received = 0;
    while let Some(piece) = response.chunk().await.expect("body") {
        received += piece.len();
        hash.update(&piece);
    }
    let after = binary::peak_rss_kib(pid);
    let mut expected = Sha256::new();
    for i in 0..CHUNKS {
        expected.update(chunk(i));
    }
    assert_eq!(received, CHUNK * CHUNKS);
    assert_eq!(hash.finalize(), expected.finalize(), "every byte arrives as sent");
    let growth_mib = after.saturating_sub(before) / 1024;
    println!("peak RSS {before} KiB before, {after} KiB after the proxied answer");
    assert!(growth_mib < 8, "peak memory grew by {growth_mib} MiB for a 50 MiB answer ({before} → {after} KiB)");
}
