//! The `datetime` format: the strict RFC 3339 profile atproto requires of timestamps.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Format, SyntaxError};

/// No real timestamp needs more; the cap bounds the work on hostile input with huge fractions.
const MAX_LENGTH: usize = 64;
const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A timestamp such as `1985-04-12T23:20:50.123Z`: uppercase `T`, seconds always present, any
/// number of fractional digits, and a timezone that is `Z` or `±HH:MM` (never the "unknown
/// offset" `-00:00`). The text is kept exactly as written, since records are hashed as sent.
///
/// Equality and hashing follow the text; ordering is chronological, with the text breaking ties
/// between different spellings of one instant so that it stays consistent with equality.
#[derive(Clone, Debug)]
pub struct Datetime {
    text: String,
    /// The instant, truncated to microseconds.
    unix_micros: i64,
}

impl Datetime {
    /// The current time, to the millisecond, in UTC (`…T…:…:….mmmZ`), the spelling clients
    /// produce, so server-made and client-made timestamps look alike.
    pub fn now() -> Datetime {
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros());
        Datetime::from_unix_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    /// The UTC timestamp for microseconds since the Unix epoch, written to the millisecond.
    /// Instants before year 0 or after year 9999 are clamped to those years' bounds, the range
    /// the four-digit year can express.
    pub fn from_unix_micros(micros: i64) -> Datetime {
        let lowest = days_from_civil(0, 1, 1) * SECONDS_PER_DAY * MICROS_PER_SECOND;
        let highest = days_from_civil(10000, 1, 1) * SECONDS_PER_DAY * MICROS_PER_SECOND - 1;
        let micros = micros.clamp(lowest, highest);
        let millis = micros.div_euclid(1000);
        let seconds = millis.div_euclid(1000);
        let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
            millis.rem_euclid(1000),
        );
        Datetime { text, unix_micros: micros - micros.rem_euclid(1000) }
    }

    /// The text exactly as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text, without copying it.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The UTC calendar date: year, month (1–12) and day (1–31).
    pub fn utc_date(&self) -> (i64, i64, i64) {
        civil_from_days(self.unix_micros.div_euclid(MICROS_PER_SECOND).div_euclid(SECONDS_PER_DAY))
    }

    /// Microseconds since the Unix epoch (negative before 1970), finer digits truncated.
    pub fn unix_micros(&self) -> i64 {
        self.unix_micros
    }
}

impl PartialEq for Datetime {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Datetime {}

impl Hash for Datetime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for Datetime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Datetime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.unix_micros.cmp(&other.unix_micros).then_with(|| self.text.cmp(&other.text))
    }
}

impl FromStr for Datetime {
    type Err = SyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::try_from(text.to_owned())
    }
}

impl TryFrom<String> for Datetime {
    type Error = SyntaxError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let unix_micros = parse(&text).map_err(|reason| SyntaxError::new(Format::Datetime, reason))?;
        Ok(Datetime { text, unix_micros })
    }
}

super::string_conversions!(Datetime);

/// A cursor over the ASCII text being parsed.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl Cursor<'_> {
    /// Exactly `count` digits as a number.
    fn digits(&mut self, count: usize) -> Result<i64, &'static str> {
        let Some((digits, rest)) = self.bytes.split_at_checked(count) else {
            return Err("is truncated");
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err("expected a digit");
        }
        self.bytes = rest;
        Ok(digits.iter().fold(0, |value, digit| value * 10 + i64::from(digit - b'0')))
    }

    fn literal(&mut self, expected: u8, reason: &'static str) -> Result<(), &'static str> {
        match self.bytes.split_first() {
            Some((&byte, rest)) if byte == expected => {
                self.bytes = rest;
                Ok(())
            }
            _ => Err(reason),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.first().copied()
    }
}

/// The instant `text` names, in microseconds since the Unix epoch.
fn parse(text: &str) -> Result<i64, &'static str> {
    if text.len() > MAX_LENGTH {
        return Err("longer than 64 characters");
    }
    let mut cursor = Cursor { bytes: text.as_bytes() };
    let year = cursor.digits(4)?;
    cursor.literal(b'-', "expected - after the year")?;
    let month = cursor.digits(2)?;
    cursor.literal(b'-', "expected - after the month")?;
    let day = cursor.digits(2)?;
    cursor.literal(b'T', "expected an uppercase T between date and time")?;
    let hour = cursor.digits(2)?;
    cursor.literal(b':', "expected : after the hour")?;
    let minute = cursor.digits(2)?;
    cursor.literal(b':', "expected : after the minutes")?;
    let second = cursor.digits(2)?;
    let mut micros = 0;
    if cursor.peek() == Some(b'.') {
        cursor.literal(b'.', "expected .")?;
        let fraction_length = cursor.bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction_length == 0 {
            return Err("a decimal point must be followed by digits");
        }
        let (fraction, rest) = cursor.bytes.split_at(fraction_length);
        cursor.bytes = rest;
        // Keep microseconds: pad or cut the fraction to six digits (never summing more, which
        // could overflow).
        micros = fraction
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(6)
            .fold(0, |value, digit| value * 10 + i64::from(digit - b'0'));
    }
    let offset_minutes = match cursor.peek() {
        Some(b'Z') => {
            cursor.literal(b'Z', "expected Z")?;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            cursor.literal(sign, "expected a sign")?;
            let offset_hour = cursor.digits(2)?;
            cursor.literal(b':', "expected : in the timezone offset")?;
            let offset_minute = cursor.digits(2)?;
            if offset_hour > 23 || offset_minute > 59 {
                return Err("the timezone offset is out of range");
            }
            let minutes = offset_hour * 60 + offset_minute;
            // RFC 3339 reserves -00:00 for "offset unknown", which a timestamp may not be.
            if sign == b'-' && minutes == 0 {
                return Err("the offset -00:00 is not allowed");
            }
            if sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err("a timezone (Z or ±HH:MM) is required"),
    };
    if !cursor.bytes.is_empty() {
        return Err("has trailing characters");
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("the date does not exist");
    }
    // Leap seconds (:60) are refused, as most platforms cannot represent them.
    if hour > 23 || minute > 59 || second > 59 {
        return Err("the time of day is out of range");
    }
    let local_seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    let utc_seconds = local_seconds - offset_minutes * 60;
    if utc_seconds < days_from_civil(0, 1, 1) * SECONDS_PER_DAY {
        return Err("falls before year 0 once the offset is applied");
    }
    Ok(utc_seconds * MICROS_PER_SECOND + micros)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar. Counting from March makes the leap
/// day the last day of the counted year, so each 400-year era is uniform.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    fn datetime(text: &str) -> Datetime {
        text.parse().unwrap()
    }

    #[test]
    fn the_unix_epoch_is_zero() {
        assert_eq!(datetime("1970-01-01T00:00:00Z").unix_micros(), 0);
    }

    #[test]
    fn an_offset_is_applied_to_the_instant() {
        assert_eq!(
            datetime("1985-04-12T23:20:50.123-07:00").unix_micros(),
            datetime("1985-04-13T06:20:50.123Z").unix_micros()
        );
    }

    #[test]
    fn fractional_digits_beyond_microseconds_are_truncated() {
        assert_eq!(datetime("1970-01-01T00:00:01.1234567Z").unix_micros(), 1_123_456);
        assert_eq!(datetime("1970-01-01T00:00:01.5Z").unix_micros(), 1_500_000);
    }

    #[test]
    fn the_text_is_kept_as_written() {
        assert_eq!(datetime("1985-04-12T23:20:50.120000Z").as_str(), "1985-04-12T23:20:50.120000Z");
    }

    #[test]
    fn ordering_is_chronological_across_offsets() {
        assert!(datetime("2000-01-01T00:00:00+01:00") < datetime("2000-01-01T00:00:00Z"));
    }

    #[test]
    fn february_the_twenty_ninth_needs_a_leap_year() {
        assert!("2024-02-29T00:00:00Z".parse::<Datetime>().is_ok());
        assert!("2023-02-29T00:00:00Z".parse::<Datetime>().is_err());
        assert!("1900-02-29T00:00:00Z".parse::<Datetime>().is_err());
        assert!("2000-02-29T00:00:00Z".parse::<Datetime>().is_ok());
    }

    #[test]
    fn a_lowercase_z_is_rejected() {
        assert!("1985-04-12T23:20:50.123z".parse::<Datetime>().is_err());
    }

    #[test]
    fn now_is_written_to_the_millisecond_in_utc_and_parses_back() {
        let now = Datetime::now();
        assert_eq!(now.as_str().len(), "2000-01-01T00:00:00.000Z".len());
        assert_eq!(datetime(now.as_str()).unix_micros(), now.unix_micros());
    }

    #[test]
    fn civil_dates_round_trip_through_day_counts() {
        for days in [-719_528, -1, 0, 1, 10_957, 19_782, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(Datetime::from_unix_micros(0).as_str(), "1970-01-01T00:00:00.000Z");
    }
}
