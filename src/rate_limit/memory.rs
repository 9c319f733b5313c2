//! Counters in this process (governor's GCRA): for a single server.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::policy::Limit;
use super::Status;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

#[derive(Default)]
pub struct Memory {
    limiters: Mutex<HashMap<&'static str, Arc<Keyed>>>,
}

impl Memory {
    fn limiter(&self, limit: &Limit) -> Option<Arc<Keyed>> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(limiter) = limiters.get(limit.name) {
            return Some(limiter.clone());
        }
        let burst = NonZeroU32::new(limit.points)?;
        let quota = Quota::with_period(limit.window / limit.points)?.allow_burst(burst);
        let limiter = Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>());
        limiters.insert(limit.name, limiter.clone());
        Some(limiter)
    }

    pub fn consume(&self, limit: &Limit, key: &str, points: u32) -> Option<Status> {
        let limiter = self.limiter(limit)?;
        let n = NonZeroU32::new(points)?;
        let period = limit.window / limit.points;
        let status = |remaining: u32, reset_after: Duration, refused: bool| Status {
            limit: limit.points,
            window: limit.window,
            remaining,
            reset_after,
            refused,
        };
        Some(match limiter.check_key_n(&key.to_owned(), n) {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot.remaining_burst_capacity();
                status(remaining, period * (limit.points - remaining), false)
            }
            Ok(Err(not_until)) => status(0, not_until.wait_time_from(limiter.clock().now()), true),
            // More points than the whole window allows.
            Err(_) => status(0, limit.window, true),
        })
    }

    /// Drops counters that have refilled, so that the memory held follows the active keys.
    pub fn sweep(&self) {
        let limiters: Vec<Arc<Keyed>> =
            self.limiters.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE: Limit = Limit { name: "test-five", window: Duration::from_secs(60), points: 5 };

    #[test]
    fn a_key_spends_its_points_then_is_refused_while_others_are_not() {
        let memory = Memory::default();
        for left in (0..5).rev() {
            let status = memory.consume(&FIVE, "a", 1).expect("counted");
            assert_eq!((status.remaining, status.refused), (left, false));
        }
        let refused = memory.consume(&FIVE, "a", 1).expect("counted");
        assert!(refused.refused && refused.reset_after > Duration::ZERO);
        assert!(!memory.consume(&FIVE, "b", 1).expect("counted").refused);
        assert!(memory.consume(&FIVE, "c", 6).expect("counted").refused, "more than the window allows");
    }
}
