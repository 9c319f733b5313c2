//! Starting the server binary for tests that need a real process (crashes, memory use).

use std::process::Stdio;
use std::time::{Duration, Instant};

/// Starts the binary on `port` with its data in `data` and the given PLC directory (plus any
/// `extra` settings), and waits until it answers its health check.
pub async fn start(data: &std::path::Path, port: u16, plc: &str, extra: &[(&str, String)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora-locus"));
    command
        .env_clear()
        .env("PDS_DATA_DIRECTORY", data)
        .env("PDS_PORT", port.to_string())
        .env("PDS_DID_PLC_URL", plc)
        .env("AURORA_LOG", "error")
        // These tests write far more than a person would, from one address.
        .env("PDS_RATE_LIMITS_ENABLED", "false");
    for (name, value) in extra {
        command.env(name, value);
    }
    // AURORA_TEST_SERVER_LOGS=1 shows the servers' error log while a test is looked into.
    let logs = if std::env::var_os("AURORA_TEST_SERVER_LOGS").is_some() { Stdio::inherit() } else { Stdio::null() };
    let child = command.stdout(logs).kill_on_drop(true).spawn().expect("start the server");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("http://127.0.0.1:{port}/xrpc/_health")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("probe").local_addr().expect("addr").port()
}

/// Signs up `name` (password `<name>-password`) and returns the createAccount answer.
pub async fn create_account(base: &str, name: &str) -> serde_json::Value {
    let body = serde_json::json!({
        "handle": format!("{name}.test"), "email": format!("{name}@example.com"), "password": format!("{name}-password")
    });
    reqwest::Client::new()
        .post(format!("{base}/xrpc/com.atproto.server.createAccount"))
        .json(&body)
        .send()
        .await
        .expect("createAccount")
        .json()
        .await
        .expect("json")
}

/// The peak resident memory of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("number")
}
