//! A clock that mints TIDs which never go backwards within a process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::tid::{MAX_CLOCK_ID, MAX_TIMESTAMP};
use super::Tid;

/// The process-wide clock behind [`Tid::now`], so that every TID a process mints is unique.
static GLOBAL: LazyLock<TidClock> = LazyLock::new(TidClock::with_random_clock_id);

/// Mints TIDs from the system clock, strictly increasing even when the system clock steps back
/// or two calls land in the same microsecond: each TID's timestamp is at least one microsecond
/// past the previous one.
#[derive(Debug)]
pub struct TidClock {
    clock_id: u16,
    last_micros: AtomicU64,
}

impl TidClock {
    /// A clock stamping `clock_id` (masked to 10 bits) into every TID.
    pub fn new(clock_id: u16) -> TidClock {
        TidClock { clock_id: clock_id & MAX_CLOCK_ID, last_micros: AtomicU64::new(0) }
    }

    /// A clock with a random clock identifier, so that two processes minting TIDs in the same
    /// microsecond (e.g. two servers) are unlikely to collide.
    pub fn with_random_clock_id() -> TidClock {
        // Failing to read entropy only raises the odds of a cross-process collision; the
        // sequence within this process stays strictly increasing either way.
        let random = getrandom::u32().unwrap_or_else(|_| std::process::id());
        TidClock::new(random as u16)
    }

    /// The clock behind [`Tid::now`].
    pub fn global() -> &'static TidClock {
        &GLOBAL
    }

    /// The clock identifier stamped into this clock's TIDs.
    pub fn clock_id(&self) -> u16 {
        self.clock_id
    }

    /// The next TID: now, or one microsecond past the last one, whichever is later.
    pub fn next(&self) -> Tid {
        self.next_at_least(0)
    }

    /// The next TID that also sorts after `previous`, whichever clock `previous` came from.
    pub fn next_after(&self, previous: &Tid) -> Tid {
        self.next_at_least(previous.timestamp_micros().saturating_add(1))
    }

    fn next_at_least(&self, floor: u64) -> Tid {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros());
        let now = u64::try_from(now).unwrap_or(MAX_TIMESTAMP);
        let mut last = self.last_micros.load(Ordering::Relaxed);
        loop {
            // At the 53-bit ceiling (year 2255) the timestamp can no longer grow; the clock then
            // repeats its last value rather than wrapping to zero.
            let next = now.max(last.saturating_add(1)).max(floor).min(MAX_TIMESTAMP);
            match self.last_micros.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Tid::from_parts(next, self.clock_id),
                Err(current) => last = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successive_tids_strictly_increase() {
        let clock = TidClock::new(7);
        let mut previous = clock.next();
        for _ in 0..10_000 {
            let next = clock.next();
            assert!(next > previous);
            previous = next;
        }
    }

    #[test]
    fn tids_carry_the_clock_identifier() {
        assert_eq!(TidClock::new(1000).next().clock_id(), 1000);
    }

    #[test]
    fn a_clock_id_beyond_ten_bits_is_masked() {
        assert_eq!(TidClock::new(1024 + 5).clock_id(), 5);
    }

    #[test]
    fn a_tid_after_a_future_one_moves_the_clock_forward() {
        let clock = TidClock::new(0);
        let now = clock.next();
        let future = Tid::from_parts(now.timestamp_micros() + 60_000_000, 0);
        let after = clock.next_after(&future);
        assert!(after > future);
        // The clock keeps its new high-water mark, so it does not return to the present.
        assert!(clock.next() > after);
    }

    #[test]
    fn tids_are_recent() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros()) as u64;
        let micros = Tid::now().timestamp_micros();
        assert!(micros.abs_diff(now) < 60_000_000);
    }
}
