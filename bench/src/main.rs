//! `aurora-bench`: drives the release binary over HTTP and reports latency percentiles and
//! throughput. Run through `just bench` (which builds the release binary first).
//!
//! Usage: aurora-bench [path/to/aurora-locus] [--accounts N]

use std::process::Stdio;
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{handler, http::StatusCode, Route, Server};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A PLC directory that accepts every operation: the benchmark measures Aurora, not the directory.
#[handler]
fn accept() -> StatusCode {
    StatusCode::OK
}

struct Stats {
    name: &'static str,
    samples: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    fn report(&mut self) {
        self.samples.sort();
        let pick = |q: f64| self.samples[((self.samples.len() as f64 - 1.0) * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<16} n={:<5} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  {:>8.1} ops/s",
            self.name,
            self.samples.len(),
            ms(pick(0.5)),
            ms(pick(0.99)),
            ms(pick(1.0)),
            self.samples.len() as f64 / self.wall.as_secs_f64()
        );
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let binary =
        args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "target/release/aurora-locus".into());
    let accounts: usize = args
        .iter()
        .position(|a| a == "--accounts")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);

    let plc = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let plc_port = plc.local_addr()[0].as_socket_addr().map(|a| a.port()).ok_or("no PLC port")?;
    tokio::spawn(Server::new_with_acceptor(plc).run(Route::new().at("/*", poem::post(accept))));

    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let data = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(&binary)
        .env_clear()
        .env("PDS_PORT", port.to_string())
        .env("PDS_DATA_DIRECTORY", data.path())
        .env("PDS_DID_PLC_URL", format!("http://127.0.0.1:{plc_port}"))
        .env("AURORA_LOG", "warn")
        .env("AURORA_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/xrpc/_health")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(_)) = lines.next_line().await {}
        });
    }
    println!("aurora-bench: {binary}, {accounts} accounts; idle RSS peak {} KiB", rss_kib(pid).unwrap_or(0));

    let mut create = Stats { name: "createAccount", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for i in 0..accounts {
        let body = json!({ "handle": format!("user{i}.test"), "email": format!("user{i}@example.com"), "password": format!("password-{i}") });
        let t = Instant::now();
        let response = client.post(format!("{base}/xrpc/com.atproto.server.createAccount")).json(&body).send().await?;
        if !response.status().is_success() {
            return Err(format!("createAccount failed: {}", response.text().await?).into());
        }
        create.samples.push(t.elapsed());
    }
    create.wall = wall.elapsed();
    create.report();

    let mut login = Stats { name: "createSession", samples: Vec::new(), wall: Duration::ZERO };
    let wall = Instant::now();
    for i in 0..accounts {
        let body = json!({ "identifier": format!("user{i}.test"), "password": format!("password-{i}") });
        let t = Instant::now();
        let response = client.post(format!("{base}/xrpc/com.atproto.server.createSession")).json(&body).send().await?;
        if !response.status().is_success() {
            return Err(format!("createSession failed: {}", response.text().await?).into());
        }
        login.samples.push(t.elapsed());
    }
    login.wall = wall.elapsed();
    login.report();
    println!("peak RSS {} KiB", rss_kib(pid).unwrap_or(0));
    let _ = child.kill().await;
    Ok(())
}
