//! Wall-clock times without reading a clock: [`WallClock`] pairs one
//! `Instant` with the Unix time it was, taken once when the conference is
//! built, so every later `now: Instant` converts to Unix milliseconds
//! deterministically (and tests choose both). Also the two UTC renderings
//! the crate needs (report lines, recording file names), so no calendar
//! crate is pulled in for them. No time zones: reports say UTC.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// An `Instant` and the Unix time (ms) it corresponds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// The anchor.
    pub at: Instant,
    /// Unix milliseconds at `at`.
    pub unix_ms: i64,
}

impl WallClock {
    /// The anchor for `at` and an explicit Unix time (tests, replays).
    pub fn new(at: Instant, unix_ms: i64) -> Self {
        WallClock { at, unix_ms }
    }

    /// Reads the system clock once. For the runtime, not for tests.
    pub fn system() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        WallClock {
            at: Instant::now(),
            unix_ms,
        }
    }

    /// Unix milliseconds at `now`.
    pub fn unix_ms(&self, now: Instant) -> i64 {
        match now.checked_duration_since(self.at) {
            Some(d) => self
                .unix_ms
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            None => self.unix_ms.saturating_sub(
                i64::try_from(self.at.duration_since(now).as_millis()).unwrap_or(i64::MAX),
            ),
        }
    }
}

/// (year, month, day, hour, minute, second, millisecond) in UTC.
fn civil(unix_ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let ms = unix_ms.rem_euclid(1000) as u32;
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, sod / 3600, sod / 60 % 60, sod % 60, ms)
}

/// `2024-03-05 14:07:09 UTC`.
pub fn format_utc(unix_ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(unix_ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// `20240305T140709.123Z`: sortable, and safe in a file name everywhere.
pub fn file_stamp(unix_ms: i64) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(unix_ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{ms:03}Z")
}

/// `1 h 02 min 05 s`, `3 min 07 s`, `12 s`.
pub fn format_duration(ms: i64) -> String {
    let total = ms.max(0) / 1000;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else if m > 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 23:59:59.999 UTC (leap day).
        assert_eq!(format_utc(1_709_251_199_999), "2024-02-29 23:59:59 UTC");
        assert_eq!(file_stamp(1_709_251_199_999), "20240229T235959.999Z");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn instants_convert_both_ways() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let c = WallClock::new(t0, 1_000_000);
        assert_eq!(c.unix_ms(t0 + Duration::from_millis(1500)), 1_001_500);
        assert_eq!(c.unix_ms(t0 - Duration::from_millis(500)), 999_500);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(12_400), "12 s");
        assert_eq!(format_duration(187_000), "3 min 07 s");
        assert_eq!(format_duration(3_725_000), "1 h 02 min 05 s");
        assert_eq!(format_duration(-5), "0 s");
    }
}
