//! Counters in Redis (PDS_REDIS_SCRATCH_ADDRESS), shared by every replica: a fixed window per
//! key, as the reference's limiter keeps them. When Redis cannot be reached the request is let
//! through (fail open) with a warning, at most one a minute.

use std::time::Duration;

use super::policy::Limit;
use super::Status;
use crate::scratch::Scratch;

pub struct Redis {
    scratch: Scratch,
}

impl Redis {
    pub fn new(address: &str) -> Result<Redis, String> {
        Ok(Redis { scratch: Scratch::new(address, "rate limits: requests are let through uncounted")? })
    }

    /// Adds `points` to the key's counter in the current window; `None` when Redis did not answer.
    pub async fn consume(&self, limit: &Limit, key: &str, points: u32) -> Option<Status> {
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
        let (count, ttl_ms): (i64, i64) = self.scratch.query(&pipe).await?;
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
