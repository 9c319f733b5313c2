//! The release binary as an operator runs it: starts on defaults, serves, stops cleanly on
//! SIGTERM, and refuses a malformed setting naming the variable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// Shared with the api tests, which use more of it.
#[allow(dead_code)]
#[path = "api/smtp_sink.rs"]
mod smtp_sink;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aurora-locus"))
}

#[test]
fn the_binary_serves_and_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = binary()
        .env_clear()
        .env("PDS_DATA_DIRECTORY", dir.path())
        .env("AURORA_BIND", "127.0.0.1:0")
        .env("AURORA_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let addr = loop {
        assert!(started.elapsed() < Duration::from_secs(30), "no listening line within 30 s");
        let line = lines.next().expect("the server logs until it listens").expect("utf-8 log line");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if let Some(addr) = entry["fields"]["addr"].as_str() {
            if entry["fields"]["message"].as_str().unwrap_or_default().contains("listening") {
                break addr.to_owned();
            }
        }
    };
    let health = std::net::TcpStream::connect(&addr).map(|mut stream| {
        use std::io::{Read, Write};
        let _ = stream.write_all(b"GET /xrpc/_health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    });
    let health = health.expect("connect to the server");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(dir.path().join("dev-secrets.env").exists(), "dev secrets are persisted in the data directory");

    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "server did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

#[test]
fn a_malformed_setting_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = binary()
        .env_clear()
        .env("PDS_DATA_DIRECTORY", dir.path())
        .env("PDS_BLOB_UPLOAD_LIMIT", "five megabytes")
        .output()
        .expect("run the server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PDS_BLOB_UPLOAD_LIMIT"), "{stderr}");
}

#[tokio::test]
async fn send_test_mail_reports_the_mail_servers_answer() {
    let sink = smtp_sink::SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora-locus"))
        .args(["send-test-mail", "ops@example.com"])
        .env_clear()
        .env("PDS_DATA_DIRECTORY", dir.path())
        .env("PDS_EMAIL_SMTP_URL", &sink.url)
        .env("PDS_EMAIL_FROM_ADDRESS", "pds@example.com")
        .output()
        .await
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("250") && stdout.contains("queued as SINK1"), "{stdout}");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].data.contains("Subject: Aurora Locus test mail"));
}

#[test]
fn the_relays_command_reports_each_relay_and_the_head_seq() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = binary()
        .arg("relays")
        .env_clear()
        .env("PDS_DATA_DIRECTORY", dir.path())
        .env("PDS_CRAWLERS", "https://relay.example.com")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("firehose head seq: 0"), "{stdout}");
    assert!(stdout.contains("https://relay.example.com: never asked yet"), "{stdout}");
}

#[test]
fn lexicon_validate_says_what_is_valid_and_where_an_invalid_value_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2024-01-01T00:00:00.000Z"}"#)
        .expect("write");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2024-01-01T00:00:00.000Z","langs":["not a language tag!"]}"#)
        .expect("write");
    // No configuration needed: an empty environment and no data directory.
    let run = |file: &std::path::Path| {
        binary().env_clear().args(["lexicon", "validate", "app.bsky.feed.post"]).arg(file).output().expect("run")
    };
    let output = run(&good);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("a valid app.bsky.feed.post record"));
    let output = run(&bad);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Record/langs/0"), "the failing value's path: {stderr}");
    let output = binary().env_clear().args(["repo", "verify"]).arg(&bad).output().expect("run");
    assert!(!output.status.success(), "a JSON file is no CAR");
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a valid CAR"));
}
