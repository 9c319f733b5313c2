//! Proxy overhead: the same AppView call made directly and through Aurora (which verifies the
//! session, signs a service token and streams the answer back).

use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{handler, web::Json, IntoResponse, Route, Server};
use serde_json::json;

use crate::Stats;

#[handler]
fn profile() -> poem::Response {
    let view = json!({ "did": "did:plc:bench", "handle": "bench.test", "displayName": "Bench", "followersCount": 1 });
    let mut response = Json(view).into_response();
    // As an AppView answers a signed-in user: the rev of the user's repository it has indexed,
    // here one past every write (caught up, the usual case), so there is nothing to merge.
    response.headers_mut().insert("atproto-repo-rev", poem::http::HeaderValue::from_static("7zzzzzzzzzzzz"));
    response
}

/// Starts the stand-in AppView; returns its URL and DID.
pub async fn start_app_view() -> Result<(String, String), Box<dyn std::error::Error>> {
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let port = acceptor.local_addr()[0].as_socket_addr().map(|a| a.port()).ok_or("no AppView port")?;
    tokio::spawn(Server::new_with_acceptor(acceptor).run(Route::new().at("/xrpc/*", poem::get(profile))));
    Ok((format!("http://127.0.0.1:{port}"), format!("did:web:localhost%3A{port}")))
}

async fn measure(
    name: &'static str,
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    rounds: usize,
) -> Result<Stats, Box<dyn std::error::Error>> {
    let mut stats = Stats { name, samples: Vec::with_capacity(rounds), wall: Duration::ZERO };
    let wall = Instant::now();
    for _ in 0..rounds {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let t = Instant::now();
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(format!("{name}: {}", response.text().await?).into());
        }
        response.bytes().await?;
        stats.samples.push(t.elapsed());
    }
    stats.wall = wall.elapsed();
    Ok(stats)
}

/// getProfile directly from the stand-in, then through Aurora; prints both and the added p50/p99.
pub async fn overhead(
    client: &reqwest::Client,
    base: &str,
    app_view: &str,
    token: &str,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let path = "/xrpc/app.bsky.actor.getProfile?actor=bench.test";
    // Each line reports the server's CPU since the one before: the direct calls' (none of it
    // theirs) is left behind before the proxied ones are measured.
    crate::cpu_from_now();
    let mut direct = measure("AppView direct", client, &format!("{app_view}{path}"), None, rounds).await?;
    direct.report();
    let mut proxied = measure("via Aurora", client, &format!("{base}{path}"), Some(token), rounds).await?;
    proxied.report();
    let (d50, d99) = (direct.quantile(0.5), direct.quantile(0.99));
    let (p50, p99) = (proxied.quantile(0.5), proxied.quantile(0.99));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  = proxy adds {:.2} ms at p50, {:.2} ms at p99",
        ms(p50.saturating_sub(d50)),
        ms(p99.saturating_sub(d99))
    );
    Ok(())
}
