//! The Redis that replicas share for short-lived state (PDS_REDIS_SCRATCH_ADDRESS, as the
//! reference names it): rate-limit counters and the DPoP proof ids already used. Every caller
//! fails open: when Redis cannot be reached it goes on without it, with a warning at most once a
//! minute, and connecting is retried at most once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

/// How long one command may take before the caller goes on without it.
pub const TIMEOUT: Duration = Duration::from_millis(250);
/// How often a lost connection is retried.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

pub struct Scratch {
    client: redis::Client,
    connection: Mutex<(Option<ConnectionManager>, Option<Instant>)>,
    last_warning: AtomicU64,
    started: Instant,
    /// What goes without Redis, for the warning.
    consequence: &'static str,
}

impl Scratch {
    pub fn new(address: &str, consequence: &'static str) -> Result<Scratch, String> {
        let url = if address.contains("://") { address.to_owned() } else { format!("redis://{address}") };
        let client = redis::Client::open(url).map_err(|e| format!("PDS_REDIS_SCRATCH_ADDRESS: {e}"))?;
        Ok(Scratch {
            client,
            connection: Mutex::new((None, None)),
            last_warning: AtomicU64::new(0),
            started: Instant::now(),
            consequence,
        })
    }

    /// A connection, or `None` (with a warning) when Redis cannot be reached now.
    pub async fn connection(&self) -> Option<ConnectionManager> {
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

    /// Runs `pipe`; `None` (with a warning) when Redis failed or did not answer in time.
    pub async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(TIMEOUT, pipe.query_async(&mut connection)).await {
            Ok(Ok(values)) => Some(values),
            Ok(Err(e)) => {
                if e.is_unrecoverable_error() || e.is_io_error() {
                    self.connection.lock().await.0 = None;
                }
                self.warn(&e.to_string());
                None
            }
            Err(_) => {
                self.warn("a command timed out");
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
            tracing::warn!(error, "Redis (PDS_REDIS_SCRATCH_ADDRESS) is unreachable; {}", self.consequence);
        }
    }
}
