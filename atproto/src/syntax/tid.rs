//! Timestamp identifiers: 13-character, lexically sortable IDs used as record keys and revisions.

use super::{Format, SyntaxError, TidClock};

/// The base32-sortable alphabet: ASCII order equals numeric order, so TIDs sort as strings.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
/// Characters in every TID: 13 × 5 bits holds the 64-bit value.
const LENGTH: usize = 13;
/// Low bits holding the clock identifier.
const CLOCK_ID_BITS: u32 = 10;
/// Bits holding the microsecond timestamp, above the clock identifier.
const TIMESTAMP_BITS: u32 = 53;

/// The largest timestamp a TID can hold, in microseconds since the Unix epoch (year 2255).
pub(crate) const MAX_TIMESTAMP: u64 = (1 << TIMESTAMP_BITS) - 1;
/// The largest clock identifier a TID can hold.
pub(crate) const MAX_CLOCK_ID: u16 = (1 << CLOCK_ID_BITS) - 1;

super::string_newtype!(
    /// A syntactically valid TID: a 53-bit microsecond timestamp and a 10-bit clock identifier,
    /// base32-sortable encoded, so that string order is creation order.
    Tid,
    validate
);

impl Tid {
    /// A fresh TID from the process-wide clock; never earlier than any TID it handed out before.
    pub fn now() -> Tid {
        TidClock::global().next()
    }

    /// A fresh TID from the process-wide clock that also sorts after `previous`, as a repo's
    /// next revision must even when `previous` came from another machine with a faster clock.
    /// The process clock keeps the new high-water mark so that TIDs stay unique, so callers
    /// should refuse a `previous` from far in the future rather than drag every TID along.
    pub fn next_after(previous: &Tid) -> Tid {
        TidClock::global().next_after(previous)
    }

    /// The TID for a timestamp and clock identifier; bits beyond 53 and 10 respectively are
    /// dropped, which the clock never produces.
    pub fn from_parts(timestamp_micros: u64, clock_id: u16) -> Tid {
        let value = (timestamp_micros & MAX_TIMESTAMP) << CLOCK_ID_BITS | u64::from(clock_id & MAX_CLOCK_ID);
        Tid::from_u64(value)
    }

    /// The TID encoding `value` directly (the top bit should be zero, as in every real TID).
    pub fn from_u64(value: u64) -> Tid {
        let text = (0..LENGTH)
            .rev()
            .map(|position| {
                let digit = (value >> (position * 5)) & 0x1f;
                char::from(ALPHABET[digit as usize])
            })
            .collect();
        Tid(text)
    }

    /// The 64-bit value the TID encodes.
    pub fn to_u64(&self) -> u64 {
        // Validation admits only alphabet characters with the first one below 16, so every
        // digit is found and the 65-bit accumulation never overflows.
        self.0.bytes().fold(0, |value, byte| {
            let digit = ALPHABET.iter().position(|&c| c == byte).unwrap_or(0) as u64;
            (value << 5) | digit
        })
    }

    /// Microseconds since the Unix epoch at which the TID was made.
    pub fn timestamp_micros(&self) -> u64 {
        (self.to_u64() >> CLOCK_ID_BITS) & MAX_TIMESTAMP
    }

    /// The clock identifier that keeps TIDs from different processes apart.
    pub fn clock_id(&self) -> u16 {
        (self.to_u64() & u64::from(MAX_CLOCK_ID)) as u16
    }
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let error = |reason| Err(SyntaxError::new(Format::Tid, reason));
    let bytes = text.as_bytes();
    if bytes.len() != LENGTH {
        return error("must have exactly 13 characters");
    }
    if !bytes.iter().all(|byte| ALPHABET.contains(byte)) {
        return error("may only hold the characters 234567a-z");
    }
    // The first character carries the top four bits of the 64-bit value (13 × 5 = 65 bits), so
    // anything past `j` (15) would need a 65th bit.
    if !(b'2'..=b'7').contains(&bytes[0]) && !(b'a'..=b'j').contains(&bytes[0]) {
        return error("the first character must be one of 234567abcdefghij");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_tid_round_trips_through_its_parts() {
        let tid = Tid::from_parts(1_700_000_000_123_456, 513);
        assert_eq!(tid.timestamp_micros(), 1_700_000_000_123_456);
        assert_eq!(tid.clock_id(), 513);
        assert_eq!(tid.as_str().parse::<Tid>().unwrap(), tid);
    }

    #[test]
    fn the_zero_tid_is_all_twos() {
        assert_eq!(Tid::from_u64(0).as_str(), "2222222222222");
    }

    #[test]
    fn string_order_is_numeric_order() {
        let earlier = Tid::from_parts(1_000, 1023);
        let later = Tid::from_parts(1_001, 0);
        assert!(earlier < later);
        assert!(earlier.as_str() < later.as_str());
    }

    #[test]
    fn a_known_tid_decodes_to_its_timestamp() {
        // Any TID minted in 2023 has a timestamp in that year.
        let micros = "3jzfcijpj2z2a".parse::<Tid>().unwrap().timestamp_micros();
        assert!((1_672_531_200_000_000..1_704_067_200_000_000).contains(&micros));
    }

    #[test]
    fn a_fresh_tid_sorts_after_one_from_the_future() {
        // Only a second ahead: the global clock keeps whatever high-water mark this sets.
        let future = Tid::from_parts(Tid::now().timestamp_micros() + 1_000_000, 0);
        assert!(Tid::next_after(&future) > future);
    }
}
