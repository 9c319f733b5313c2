//! Telling relays this server exists: `com.atproto.sync.requestCrawl` to every URL in
//! PDS_CRAWLERS at start-up and after writes, at most once per 20 minutes per relay. Each
//! relay's last answer is kept in the database, so `aurora-locus relays` can show an operator
//! why the network may not be seeing their posts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};

use crate::db::entities::server_meta;

/// The least time between two crawl requests to one relay (the reference's interval).
pub const INTERVAL: Duration = Duration::from_secs(20 * 60);

/// What a relay last answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlReport {
    pub relay: String,
    pub at: String,
    pub status: Option<u16>,
    pub answer: String,
}

/// Rate-limits crawl requests per relay.
#[derive(Default)]
pub struct Crawlers {
    last: Mutex<HashMap<String, Instant>>,
}

fn meta_key(relay: &str) -> String {
    format!("crawler:{relay}")
}

impl Crawlers {
    /// Relays due for a request now (and marks them as asked).
    fn due(&self, relays: &[String]) -> Vec<String> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let due: Vec<String> = relays
            .iter()
            .filter(|relay| last.get(*relay).is_none_or(|at| now.duration_since(*at) >= INTERVAL))
            .cloned()
            .collect();
        for relay in &due {
            last.insert(relay.clone(), now);
        }
        due
    }
}

/// Asks every due relay to crawl this server, in the background.
pub fn notify(ctx: &crate::context::AppContext) {
    let due = ctx.crawlers.due(&ctx.config.crawlers);
    if due.is_empty() {
        return;
    }
    let (db, hostname) = (ctx.db.clone(), ctx.config.hostname.clone());
    tokio::spawn(async move {
        for relay in due {
            let report = request_crawl(&relay, &hostname).await;
            if let Some(status) = report.status.filter(|s| (200..300).contains(s)) {
                tracing::info!(relay, status, "relay accepted the crawl request");
            } else {
                tracing::warn!(relay, status = report.status, answer = %report.answer, "relay did not accept the crawl request");
            }
            if let Err(e) = store(&db, &report).await {
                tracing::warn!(error = %e, "could not record the relay's answer");
            }
        }
    });
}

async fn request_crawl(relay: &str, hostname: &str) -> CrawlReport {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    let url = format!("{relay}/xrpc/com.atproto.sync.requestCrawl");
    let at = crate::account::now();
    match client.post(&url).json(&serde_json::json!({ "hostname": hostname })).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let mut answer = response.text().await.unwrap_or_default();
            answer.truncate(500);
            CrawlReport { relay: relay.to_owned(), at, status: Some(status), answer }
        }
        Err(e) => CrawlReport { relay: relay.to_owned(), at, status: None, answer: e.to_string() },
    }
}

async fn store<C: ConnectionTrait>(conn: &C, report: &CrawlReport) -> Result<(), DbErr> {
    server_meta::Entity::insert(server_meta::ActiveModel {
        key: Set(meta_key(&report.relay)),
        value: Set(serde_json::to_string(report).unwrap_or_default()),
    })
    .on_conflict(OnConflict::column(server_meta::Column::Key).update_column(server_meta::Column::Value).to_owned())
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// The last answer of each configured relay.
pub async fn reports<C: ConnectionTrait>(
    conn: &C,
    relays: &[String],
) -> Result<Vec<(String, Option<CrawlReport>)>, DbErr> {
    use sea_orm::ColumnTrait;
    let mut out = Vec::new();
    for relay in relays {
        let row = server_meta::Entity::find().filter(server_meta::Column::Key.eq(meta_key(relay))).one(conn).await?;
        out.push((relay.clone(), row.and_then(|r| serde_json::from_str(&r.value).ok())));
    }
    Ok(out)
}
