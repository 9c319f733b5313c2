//! Counters in Redis (PDS_REDIS_SCRATCH_ADDRESS), shared by every replica: a fixed window per
//! key, as the reference's limiter keeps them. When Redis cannot be reached the request is let
//! through (fail open) with a warning, at most one a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use super::policy::Limit;
use super::Status;

/// How long a counter update may take before the request goes ahead without it.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How often a lost connection is retried.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

pub struct Redis {
    client: redis::Client,
    connection: Mutex<(Option<ConnectionManager>, Option<Instant>)>,
    last_warning: AtomicU64,
    started: Instant,
}

impl Redis {
    pub fn new(address: &str) -> Result<Redis, String> {
        let url = if address.contains("://") { address.to_owned() } else { format!("redis://{address}") };
        let client = redis::Client::open(url).map_err(|e| format!("PDS_REDIS_SCRATCH_ADDRESS: {e}"))?;
        Ok(Redis {
            client,
            connection: Mutex::new((None, None)),
            last_warning: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = &slot.0 {
            return Some(connection.clone());
        }
        if slot.1.is_some_and(|at| at.elapsed() < RECONNECT_EVERY) {
            return None;
        }
        slot.1 = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        match tokio::time::timeout(TIMEOUT * 2, ConnectionManager::new_with_config(self.client.clone(), config)).await {
            Ok(Ok(connection)) => {
                slot.0 = Some(connection.clone());
                Some(connection)
            }
            Ok(Err(e)) => {
                self.warn(&e.to_string());
                None
            }
            Err(_) => {
                self.warn("connecting timed out");
                None
            }
        }
    }

    fn warn(&self, error: &str) {
        let now = self.started.elapsed().as_secs() + 60;
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 60
            && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(error, "rate limits: Redis is unreachable; requests are let through uncounted");
        }
    }

    /// Adds `points` to the key's counter in the current window; `None` when Redis did not answer.
    pub async fn consume(&self, limit: &Limit, key: &str, points: u32) -> Option<Status> {
        let mut connection = self.connection().await?;
        let redis_key = format!("rl:{}:{key}", limit.name);
        let window_ms = limit.window.as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&redis_key)
            .arg(0)
            .arg("PX")
            .arg(window_ms)
            .arg("NX")
            .ignore()
            .cmd("INCRBY")
            .arg(&redis_key)
            .arg(points)
            .cmd("PTTL")
            .arg(&redis_key);
        let answer: Result<Result<(i64, i64), redis::RedisError>, _> =
            tokio::time::timeout(TIMEOUT, pipe.query_async(&mut connection)).await;
        let (count, ttl_ms) = match answer {
            Ok(Ok(values)) => values,
            Ok(Err(e)) => {
                if e.is_unrecoverable_error() || e.is_io_error() {
                    self.connection.lock().await.0 = None;
                }
                self.warn(&e.to_string());
                return None;
            }
            Err(_) => {
                self.warn("the counter update timed out");
                return None;
            }
        };
        let used = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
        Some(Status {
            limit: limit.points,
            window: limit.window,
            remaining: limit.points.saturating_sub(used),
            reset_after: Duration::from_millis(ttl_ms.max(0) as u64),
            refused: used > limit.points,
        })
    }
}
