//! Dates: RFC 3339 timestamps in UTC, as log lines and JSON documents write them, formatted by
//! `humantime`.

use std::{
    cell::Cell,
    io::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Length of a [`rfc3339_micros`] timestamp, `2026-11-25T17:53:00.123456Z`.
pub const MICROS_LEN: usize = 27;

/// The last second `humantime` can write: 9999-12-31T23:59:59Z.
const LAST_SECOND: u64 = 253_402_300_799;

/// `time` as RFC 3339 in UTC with microseconds, always [`MICROS_LEN`] bytes, so that lines which
/// start with one sort by time as text. The date and time of day are formatted once a second per
/// thread: a log line only adds its microseconds.
pub fn rfc3339_micros(time: SystemTime) -> [u8; MICROS_LEN] {
    thread_local! {
        static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
    }
    let since_epoch = since_epoch(time);
    let seconds = since_epoch.as_secs();
    let (cached, mut date) = SECOND.get();
    if cached != seconds {
        // `2026-11-25T17:53:00Z`: the first 19 bytes are the date and the time of day.
        let mut text = [0; 20];
        let whole = UNIX_EPOCH + Duration::from_secs(seconds);
        let _ = write!(
            &mut text[..],
            "{}",
            humantime::format_rfc3339_seconds(whole)
        );
        date.copy_from_slice(&text[..19]);
        SECOND.set((seconds, date));
    }
    let mut text = [0; MICROS_LEN];
    text[..19].copy_from_slice(&date);
    text[19] = b'.';
    // 1,000,000 plus the microseconds has seven digits: the last six are the microseconds, padded.
    let mut digits = itoa::Buffer::new();
    let padded = digits.format(1_000_000 + since_epoch.subsec_micros());
    text[20..26].copy_from_slice(&padded.as_bytes()[1..]);
    text[26] = b'Z';
    text
}

/// `time` as RFC 3339 in UTC with milliseconds, as JavaScript's `toISOString` writes it.
pub fn rfc3339_millis(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch(time)).to_string()
}

/// `seconds` since the Unix epoch as RFC 3339 in UTC, rounded to the millisecond, as JavaScript's
/// `toISOString` writes it.
pub fn rfc3339_millis_of_seconds(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round().max(0.0) as u64;
    rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis))
}

/// `time` in seconds since the Unix epoch; 0 before it.
pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The time since the Unix epoch, kept within what RFC 3339 can write (years 1970 to 9999 here).
fn since_epoch(time: SystemTime) -> Duration {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    since.min(Duration::new(LAST_SECOND, 999_999_999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_written_as_javascript_writes_them() {
        assert_eq!(rfc3339_millis_of_seconds(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis_of_seconds(1_764_093_180.25),
            "2025-11-25T17:53:00.250Z"
        );
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1_500)), 1.5);
    }

    fn micros(seconds: u64, micros: u64) -> String {
        let time = UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros);
        String::from_utf8(rfc3339_micros(time).to_vec()).unwrap()
    }

    #[test]
    fn timestamps_are_rfc_3339_in_utc_with_padded_microseconds() {
        let texts = [
            micros(0, 0),
            micros(951_782_400, 7),
            micros(1_795_641_382, 123_456),
            micros(4_102_444_799, 999_999),
        ];

        assert_eq!(
            texts,
            [
                "1970-01-01T00:00:00.000000Z",
                "2000-02-29T00:00:00.000007Z",
                "2026-11-25T21:16:22.123456Z",
                "2099-12-31T23:59:59.999999Z",
            ]
        );
    }

    #[test]
    fn a_cached_second_gives_way_to_the_next_one() {
        let first = micros(1_795_641_382, 999_999);

        let next = micros(1_795_641_383, 1);

        assert_eq!(first, "2026-11-25T21:16:22.999999Z");
        assert_eq!(next, "2026-11-25T21:16:23.000001Z");
    }

    #[test]
    fn times_outside_what_rfc_3339_writes_are_clamped() {
        let before = UNIX_EPOCH - Duration::from_secs(1);
        let after = UNIX_EPOCH + Duration::from_secs(LAST_SECOND * 2);

        let (early, late) = (rfc3339_micros(before), rfc3339_micros(after));

        assert_eq!(&early, b"1970-01-01T00:00:00.000000Z");
        assert_eq!(&late, b"9999-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339_millis(after), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn milliseconds_are_written_as_javascript_writes_them() {
        let time = UNIX_EPOCH + Duration::from_millis(1_764_093_180_250);

        let text = rfc3339_millis(time);

        assert_eq!(text, "2025-11-25T17:53:00.250Z");
    }
}
