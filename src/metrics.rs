//! Prometheus metrics (`/metrics`): requests by route, status and credential kind with their
//! latency; forwarded calls by upstream and status; database statements by kind; rate-limit
//! refusals; mail sent and failed; firehose cut-offs and consumer lag; blob bytes served; the
//! SQLite writer's transactions and checkpoints; background jobs' runs and failures; and, read
//! at each scrape, the database pool, the SQLite log size, the firehose head and
//! consumers, accounts by state, records and blob bytes, and the process's own figures (memory,
//! CPU, open files). Routes are the served NSIDs and a few fixed page groups, never a path a
//! client chose, so the number of series stays bounded.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::context::AppContext;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    job_runs: IntCounterVec,
    job_seconds: HistogramVec,
    commits: IntCounter,
    batch_size: Histogram,
    sync_wait: Histogram,
    firehose_head: IntGauge,
    firehose_consumers: IntGauge,
    accounts: IntGaugeVec,
    records: IntGauge,
    blobs: IntGauge,
    blob_bytes: IntGauge,
    blob_bytes_served: IntCounter,
    upstream_calls: IntCounterVec,
    upstream_seconds: HistogramVec,
    statements: HistogramVec,
    statement_errors: IntCounterVec,
    pool: IntGaugeVec,
    wal_bytes: IntGauge,
    /// Rate-limit refusals, by limit; counted where the limits are kept.
    pub rate_limited: IntCounterVec,
    /// Mail sent and failed; counted by the mailer.
    pub mail: IntCounterVec,
    /// Firehose consumers cut off for falling too far behind.
    pub firehose_cut_offs: IntCounter,
    /// How many events a live consumer had waiting when it was sent one.
    pub firehose_lag: Histogram,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

fn single_histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            let _ = registry.register(Box::new(process));
        }
        let latency_buckets = vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let accounts = IntGaugeVec::new(Opts::new("aurora_accounts", "Accounts hosted, by state."), &["state"])
            .expect("a valid metric");
        registry.register(Box::new(accounts.clone())).expect("registered once");
        Metrics {
            requests: counter(
                &registry,
                "aurora_http_requests_total",
                "HTTP requests answered, by route, status and credential kind.",
                &["route", "status", "credential"],
            ),
            latency: histogram(
                &registry,
                "aurora_http_request_duration_seconds",
                "Time to answer a request (to its head; streamed bodies continue), by route.",
                &["route"],
                latency_buckets,
            ),
            job_runs: counter(
                &registry,
                "aurora_job_runs_total",
                "Background job runs, by job and outcome (ok or failed).",
                &["job", "outcome"],
            ),
            job_seconds: histogram(
                &registry,
                "aurora_job_duration_seconds",
                "How long each background job run took.",
                &["job"],
                vec![0.01, 0.1, 1.0, 10.0, 60.0, 600.0],
            ),
            commits: {
                let metric =
                    IntCounter::new("aurora_commits_total", "Repository commits stored.").expect("a valid metric");
                registry.register(Box::new(metric.clone())).expect("registered once");
                metric
            },
            batch_size: single_histogram(
                &registry,
                "aurora_commit_batch_size",
                "Commits stored together in one transaction (concurrent writes to one repository).",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            ),
            sync_wait: single_histogram(
                &registry,
                "aurora_log_sync_wait_seconds",
                "How long a stored batch waited for the SQLite log to reach the disk before it was answered.",
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
            ),
            firehose_head: gauge(&registry, "aurora_firehose_head_seq", "The newest firehose sequence number."),
            firehose_consumers: gauge(&registry, "aurora_firehose_consumers", "Firehose consumers connected."),
            accounts,
            records: gauge(&registry, "aurora_records", "Records stored."),
            blobs: gauge(&registry, "aurora_blobs", "Blobs stored (uploads no record claimed excepted)."),
            blob_bytes: gauge(&registry, "aurora_blob_bytes", "Bytes of blobs stored."),
            blob_bytes_served: {
                let metric = IntCounter::new("aurora_blob_bytes_served_total", "Bytes of blobs sent to clients.")
                    .expect("a valid metric");
                registry.register(Box::new(metric.clone())).expect("registered once");
                metric
            },
            upstream_calls: counter(
                &registry,
                "aurora_proxy_calls_total",
                "Calls forwarded to other services, by upstream (appview, chat, moderation, report, other) and status (or unreachable).",
                &["upstream", "status"],
            ),
            upstream_seconds: histogram(
                &registry,
                "aurora_proxy_call_duration_seconds",
                "Time for a forwarded call's upstream to answer (to its head), by upstream.",
                &["upstream"],
                vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
            statements: histogram(
                &registry,
                "aurora_db_statement_duration_seconds",
                "Database statements run through the pool, by kind (select, insert, update, delete, other).",
                &["kind"],
                vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
            ),
            statement_errors: counter(
                &registry,
                "aurora_db_statement_errors_total",
                "Database statements that failed, by kind.",
                &["kind"],
            ),
            pool: {
                let metric = IntGaugeVec::new(
                    Opts::new("aurora_db_pool_connections", "Database pool connections, by state (busy or idle)."),
                    &["state"],
                )
                .expect("a valid metric");
                registry.register(Box::new(metric.clone())).expect("registered once");
                metric
            },
            wal_bytes: gauge(&registry, "aurora_sqlite_wal_bytes", "Size of the SQLite write-ahead log file."),
            rate_limited: counter(
                &registry,
                "aurora_rate_limit_refusals_total",
                "Requests refused by a rate limit, by limit.",
                &["limit"],
            ),
            mail: counter(&registry, "aurora_mail_total", "Mail handed to SMTP or the outbox, by outcome (sent or failed).", &["outcome"]),
            firehose_cut_offs: {
                let metric = IntCounter::new(
                    "aurora_firehose_cut_offs_total",
                    "Firehose consumers cut off (ConsumerTooSlow) for falling too far behind.",
                )
                .expect("a valid metric");
                registry.register(Box::new(metric.clone())).expect("registered once");
                metric
            },
            firehose_lag: single_histogram(
                &registry,
                "aurora_firehose_consumer_lag_events",
                "Events a live consumer still had waiting each time it was sent one.",
                vec![0.0, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
            ),
            registry,
        }
    }
}

/// A statement's kind, by its first word.
fn statement_kind(sql: &str) -> &'static str {
    let word = sql.trim_start().split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or_default();
    ["select", "insert", "update", "delete"].into_iter().find(|kind| word.eq_ignore_ascii_case(kind)).unwrap_or("other")
}

/// The label a request's path gets: a served NSID, `proxied` for other XRPC methods, or the
/// page group it belongs to. Always a static string, so counting a request copies nothing.
pub fn route_of(path: &str) -> &'static str {
    if let Some(nsid) = path.strip_prefix("/xrpc/") {
        // The generated table is in NSID order.
        let served = aurora_generated::auth::SERVED;
        return match served.binary_search_by(|(m, _)| (*m).cmp(nsid)) {
            Ok(i) => served[i].0,
            Err(_) if nsid == "_health" => "/xrpc/_health",
            Err(_) => "proxied",
        };
    }
    const GROUPS: [&str; 10] = [
        "/admin",
        "/oauth",
        "/account",
        "/.well-known",
        "/livez",
        "/readyz",
        "/metrics",
        "/tls-check",
        "/docs",
        "/openapi.json",
    ];
    let in_group = |group: &str| path.strip_prefix(group).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    GROUPS.iter().copied().find(|group| in_group(group)).unwrap_or(if path == "/" { "/" } else { "other" })
}

/// The kind of credential a request carried, by its `Authorization` scheme.
pub fn credential_of(authorization: Option<&str>) -> &'static str {
    let scheme = authorization.and_then(|v| v.split(' ').next()).map(str::to_ascii_lowercase);
    match scheme.as_deref() {
        None | Some("") => "none",
        Some("bearer") => "bearer",
        Some("dpop") => "dpop",
        Some("basic") => "basic",
        Some(_) => "other",
    }
}

impl Metrics {
    /// Counts one answered request (labels from [`route_of`] and [`credential_of`]).
    pub fn request(&self, route: &str, credential: &str, status: u16, elapsed: Duration) {
        self.requests.with_label_values(&[route, &status.to_string(), credential]).inc();
        self.latency.with_label_values(&[route]).observe(elapsed.as_secs_f64());
    }

    /// Counts a batch of `commits` commits stored together.
    pub fn batch(&self, commits: usize) {
        self.commits.inc_by(commits as u64);
        self.batch_size.observe(commits as f64);
    }

    /// Notes how long a stored batch waited for the log sync.
    pub fn sync_waited(&self, elapsed: Duration) {
        self.sync_wait.observe(elapsed.as_secs_f64());
    }

    /// Times one statement the database pool ran (sea-orm's metric callback).
    pub fn statement(&self, info: &sea_orm::metric::Info<'_>) {
        let kind = statement_kind(&info.statement.sql);
        self.statements.with_label_values(&[kind]).observe(info.elapsed.as_secs_f64());
        if info.failed {
            self.statement_errors.with_label_values(&[kind]).inc();
        }
    }

    /// Counts one forwarded call: its upstream's answer status (`None`: unreachable).
    pub fn upstream(&self, upstream: &str, status: Option<u16>, elapsed: Duration) {
        let status = status.map_or_else(|| "unreachable".to_owned(), |s| s.to_string());
        self.upstream_calls.with_label_values(&[upstream, &status]).inc();
        self.upstream_seconds.with_label_values(&[upstream]).observe(elapsed.as_secs_f64());
    }

    /// Counts blob bytes sent.
    pub fn blob_served(&self, bytes: u64) {
        self.blob_bytes_served.inc_by(bytes);
    }

    /// Adds the SQLite writer's own counters (checkpoints, transactions) to the exposition.
    pub fn adopt(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::warn!(error = %e, "a metric could not be registered");
        }
    }

    /// Counts one background job run.
    pub fn job(&self, job: &str, ok: bool, elapsed: Duration) {
        self.job_runs.with_label_values(&[job, if ok { "ok" } else { "failed" }]).inc();
        self.job_seconds.with_label_values(&[job]).observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with the figures read at scrape time brought up to date first.
    pub async fn render(&self, ctx: &AppContext) -> Result<String, sea_orm::DbErr> {
        let counts = crate::admin::accounts::counts(&ctx.db).await?;
        for (state, value) in [
            ("active", counts.active),
            ("deactivated", counts.deactivated),
            ("takendown", counts.taken_down),
            ("deleted", counts.pending_deletion),
        ] {
            self.accounts.with_label_values(&[state]).set(value as i64);
        }
        let totals = crate::admin::overview::totals(&ctx.db).await?;
        self.firehose_head.set(totals.head_seq);
        self.records.set(totals.records as i64);
        self.blobs.set(totals.blobs as i64);
        self.blob_bytes.set(totals.blob_bytes as i64);
        self.firehose_consumers.set(ctx.firehose.subscriber_count() as i64);
        let (size, idle) = match sea_orm::ConnectionTrait::get_database_backend(&ctx.db) {
            sea_orm::DbBackend::Sqlite => {
                let pool = ctx.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
            _ => {
                let pool = ctx.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
        };
        self.pool.with_label_values(&["busy"]).set(i64::from(size.saturating_sub(idle)));
        self.pool.with_label_values(&["idle"]).set(i64::from(idle));
        if let Some(writer) = &ctx.sqlite_writer {
            self.wal_bytes.set(writer.wal_bytes() as i64);
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_table_is_in_nsid_order_so_it_can_be_searched() {
        let served = aurora_generated::auth::SERVED;
        assert!(served.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn routes_are_served_nsids_or_a_fixed_group_never_a_client_path() {
        assert_eq!(route_of("/xrpc/com.atproto.repo.getRecord"), "com.atproto.repo.getRecord");
        assert_eq!(route_of("/xrpc/app.bsky.feed.getTimeline"), "proxied");
        assert_eq!(route_of("/xrpc/anything.a.client.makes.up"), "proxied");
        assert_eq!(route_of("/admin/accounts/did:plc:x"), "/admin");
        assert_eq!(route_of("/administrator"), "other");
        assert_eq!(route_of("/"), "/");
        assert_eq!(credential_of(Some("DPoP abc")), "dpop");
        assert_eq!(credential_of(None), "none");
        assert_eq!(statement_kind("  SELECT \"a\" FROM b"), "select");
        assert_eq!(statement_kind("insert into x"), "insert");
        assert_eq!(statement_kind("PRAGMA foo"), "other");
    }
}
