//! Connections held without being used are closed: a request head trickled a byte at a time
//! (slowloris), a connection that sends nothing, a body that stops arriving; and one address
//! cannot hold more than its share of connections. Other clients are answered meanwhile.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp};

const FAST: &[(&str, &str)] = &[("AURORA_HEADER_TIMEOUT_SECS", "1"), ("AURORA_IDLE_TIMEOUT_SECS", "2")];

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.url.trim_start_matches("http://")).await.expect("connect")
}

/// Waits until the server closes `socket` (end of stream or reset), or `within` passes.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

async fn healthy(app: &TestApp) -> bool {
    app.get("/xrpc/_health").await.status() == 200
}

#[tokio::test]
async fn a_trickled_request_head_is_cut_off() {
    let app = TestApp::spawn_with(Backend::Sqlite, FAST).await.expect("app");
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\n").await.expect("write");
    let started = Instant::now();
    let trickle = async {
        for n in 0..20 {
            if slow.write_all(format!("X-Slow-{n}: a\r\n").as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    trickle.await;
    assert!(closed_within(&mut slow, Duration::from_secs(3)).await, "the slow head was cut off");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(healthy(&app).await);
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed_and_busy_ones_are_not() {
    let app = TestApp::spawn_with(Backend::Sqlite, FAST).await.expect("app");
    let mut silent = connect(&app).await;
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await, "a connection that never sends");

    // A kept-alive connection serves requests spread over longer than the head timeout.
    let mut kept = connect(&app).await;
    for _ in 0..3 {
        kept.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 1024];
        let n =
            tokio::time::timeout(Duration::from_secs(2), kept.read(&mut buf)).await.expect("answered").expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    assert!(closed_within(&mut kept, Duration::from_secs(4)).await, "closed once idle past the idle timeout");
}

#[tokio::test]
async fn a_body_that_stops_arriving_ends_the_request() {
    let app = TestApp::spawn_with(Backend::Sqlite, FAST).await.expect("app");
    let mut stalled = connect(&app).await;
    let head = "POST /xrpc/com.atproto.server.createSession HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"identifier\":";
    stalled.write_all(head.as_bytes()).await.expect("write");
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(4), stalled.read(&mut buf)).await.expect("answered").unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(healthy(&app).await);
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_connections() {
    let settings = [("AURORA_TRUSTED_PROXIES", "none"), ("AURORA_MAX_CONNECTIONS_PER_IP", "3")];
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.expect("app");
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut socket = connect(&app).await;
        socket.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 1024];
        let n = socket.read(&mut buf).await.expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(socket);
    }
    let mut fourth = connect(&app).await;
    let _ = fourth.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(closed_within(&mut fourth, Duration::from_secs(2)).await, "the fourth is refused");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(healthy(&app).await, "a slot given back is free again");
}

app_test!(stalled_repository_downloads_leave_the_database_to_others, |app| {
    let account = app.create_account("gale").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    // About 5 MB of records: more than the socket buffers of a client that reads nothing.
    let filler = "x".repeat(10_000);
    for batch in 0..6 {
        let writes: Vec<serde_json::Value> = (0..90)
            .map(|i| {
                serde_json::json!({
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": "com.example.bulk",
                    "rkey": format!("b{batch}n{i}"),
                    "value": { "$type": "com.example.bulk", "filler": filler, "n": batch * 1000 + i },
                })
            })
            .collect();
        let (status, body) = app
            .call(
                reqwest::Method::POST,
                "com.atproto.repo.applyWrites",
                Some(&token),
                Some(&serde_json::json!({ "repo": did, "writes": writes })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // More than either database's pool of connections.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut socket = connect(&app).await;
        let request = format!("GET /xrpc/com.atproto.sync.getRepo?did={did} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        socket.write_all(request.as_bytes()).await.expect("write");
        stalled.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let path = format!("com.atproto.repo.getRecord?repo={did}&collection=com.example.bulk&rkey=b0n1");
    let read = app.call(reqwest::Method::GET, &path, None, None);
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), read).await.expect("a read is answered");
    assert_eq!(status, 200);
    let record = serde_json::json!({ "repo": did, "collection": "com.example.bulk", "record": { "$type": "com.example.bulk", "n": -1 } });
    let write = app.call(reqwest::Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&record));
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), write).await.expect("a write is answered");
    assert_eq!(status, 200, "{body}");
    // And a download that does read gets the whole repository.
    let response = app.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")).await;
    let car = response.bytes().await.expect("car");
    assert!(car.len() > 5_000_000, "{} bytes", car.len());
    drop(stalled);
});

/// Reads one HTTP/1.1 answer (head and a content-length body) from `socket`.
async fn read_answer(socket: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n =
            tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await.expect("answered").expect("read");
        assert!(n > 0, "the connection closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn a_refused_upload_leaves_the_connection_usable() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("app");
    let mut socket = connect(&app).await;
    let body = vec![b'x'; 300_000];
    let head = format!(
        "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&body).await.expect("body");
    let answer = read_answer(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // A JSON body over the limit is refused part-way through, too.
    let big = format!("{{\"identifier\":\"{}\"}}", "y".repeat(200_000));
    let head = format!(
        "POST /xrpc/com.atproto.server.createSession HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(big.as_bytes()).await.expect("body");
    let answer = read_answer(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    socket.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("next request");
    let answer = read_answer(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "the same connection serves the next request: {answer}");
}

#[tokio::test]
async fn a_request_in_flight_when_the_server_stops_is_answered_and_no_new_one_is_taken() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.expect("app");
    let body = br#"{"identifier":"nobody.test","password":"not-the-password"}"#;
    let mut inflight = connect(&app).await;
    let head = format!(
        "POST /xrpc/com.atproto.server.createSession HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    inflight.write_all(head.as_bytes()).await.expect("head");
    inflight.write_all(&body[..10]).await.expect("half the body");
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.stop_serving();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = match TcpStream::connect(app.url.trim_start_matches("http://")).await {
        Err(_) => true,
        Ok(mut late) => {
            let _ = late.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
            closed_within(&mut late, Duration::from_secs(3)).await
        }
    };
    assert!(refused, "a connection opened after the stop is not served");

    inflight.write_all(&body[10..]).await.expect("the rest of the body");
    let answer = read_answer(&mut inflight).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("AuthenticationRequired"), "{answer}");
    assert!(closed_within(&mut inflight, Duration::from_secs(3)).await, "closed once answered");
}
