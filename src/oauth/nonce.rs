//! DPoP nonces: an HMAC of the minute, so any instance with the secret can check one without
//! storing it. The server hands out the next minute's nonce and accepts the previous, current
//! and next, so each is good for about three minutes, as the reference's are.
//!
//! The secret is new each time the process starts: a proof seen before a restart carries a nonce
//! the new process refuses (the client retries with a fresh one, as `use_dpop_nonce` tells it),
//! so the in-memory replay store needs to remember nothing across restarts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PERIOD_SECS: i64 = 60;

pub struct Nonces {
    secret: [u8; 32],
}

impl Nonces {
    /// Nonces under a secret derived from `configured` (PDS_DPOP_SECRET or the JWT secret) and
    /// this process's own random salt.
    pub fn new(configured: &[u8]) -> Nonces {
        use rand::RngCore;
        let mut salt = [0u8; 32];
        rand::rng().fill_bytes(&mut salt);
        let mut mac = Hmac::<Sha256>::new_from_slice(configured).expect("HMAC takes keys of any length");
        mac.update(b"aurora dpop nonce\0");
        mac.update(&salt);
        Nonces { secret: mac.finalize().into_bytes().into() }
    }

    fn at(&self, counter: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(&counter.to_be_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn counter(now_secs: i64) -> i64 {
        now_secs.div_euclid(PERIOD_SECS)
    }

    /// The nonce to send now.
    pub fn next(&self, now_secs: i64) -> String {
        self.at(Self::counter(now_secs) + 1)
    }

    /// Whether a proof's nonce is still good.
    pub fn accepts(&self, nonce: &str, now_secs: i64) -> bool {
        let counter = Self::counter(now_secs);
        (counter - 1..=counter + 1).any(|c| self.at(c) == nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_lives_about_three_minutes_and_another_process_refuses_it() {
        let nonces = Nonces::new(b"secret");
        let handed_out = nonces.next(1_000_000);
        assert!(nonces.accepts(&handed_out, 1_000_000));
        assert!(nonces.accepts(&handed_out, 1_000_000 + 119));
        assert!(!nonces.accepts(&handed_out, 1_000_000 + 240));
        assert!(!Nonces::new(b"secret").accepts(&handed_out, 1_000_000), "a restart invalidates old nonces");
    }
}
