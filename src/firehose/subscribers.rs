//! How many firehose subscribers the server holds: in all, and per address. Each costs a
//! task, a socket and a place in the broadcast; without a cap one client could open them
//! until the server runs out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Caps on subscribers (AURORA_FIREHOSE_MAX_SUBSCRIBERS, AURORA_FIREHOSE_MAX_PER_IP).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub total: usize,
    pub per_ip: usize,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("too many firehose subscriptions from this address")]
    PerIp,
    #[error("the firehose has as many subscribers as it can serve")]
    Full,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

pub struct Subscribers {
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
}

impl Subscribers {
    pub fn new(limits: Limits) -> Subscribers {
        Subscribers { limits, counts: Arc::default() }
    }

    /// A place for a subscriber from `ip`, held until the slot is dropped.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<Slot, Refused> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.limits.total {
            return Err(Refused::Full);
        }
        if let Some(ip) = ip {
            let held = counts.per_ip.entry(ip).or_default();
            if *held >= self.limits.per_ip {
                return Err(Refused::PerIp);
            }
            *held += 1;
        }
        counts.total += 1;
        Ok(Slot { ip, counts: self.counts.clone() })
    }

    /// Subscribers held now.
    pub fn count(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

pub struct Slot {
    ip: Option<IpAddr>,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(held) = counts.per_ip.get_mut(&ip) {
                *held -= 1;
                if *held == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_address_and_in_all_and_given_back() {
        let subscribers = Subscribers::new(Limits { total: 3, per_ip: 2 });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = subscribers.admit(Some(a)).expect("first");
        let _second = subscribers.admit(Some(a)).expect("second");
        assert_eq!(subscribers.admit(Some(a)).err(), Some(Refused::PerIp));
        let _third = subscribers.admit(Some(b)).expect("another address");
        assert_eq!(subscribers.admit(Some(b)).err(), Some(Refused::Full));
        drop(first);
        assert_eq!(subscribers.count(), 2);
        assert!(subscribers.admit(Some(a)).is_ok());
    }
}
