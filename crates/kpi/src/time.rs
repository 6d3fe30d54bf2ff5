//! Time buckets of the series and the windows of the indicators, from a timestamp passed in
//! (microseconds since the Unix epoch, UTC, the storage format).

use chrono::{DateTime, Datelike, NaiveDate};

pub const HOUR_MICROS: i64 = 3_600_000_000;
pub const DAY_MICROS: i64 = 24 * HOUR_MICROS;
/// The trailing window of the "30 days" indicators.
pub const WINDOW_30D_MICROS: i64 = 30 * DAY_MICROS;

/// The start of the UTC hour holding `micros`.
pub fn hour_bucket(micros: i64) -> i64 {
    micros - micros.rem_euclid(HOUR_MICROS)
}

/// The start of the UTC day holding `micros`.
pub fn day_bucket(micros: i64) -> i64 {
    micros - micros.rem_euclid(DAY_MICROS)
}

/// The start (00:00 UTC on its first day) of the calendar quarter holding `micros`; `back`
/// quarters earlier when `back > 0`.
pub fn quarter_start(micros: i64, back: u32) -> i64 {
    let date = DateTime::from_timestamp_micros(micros).unwrap_or_default().date_naive();
    let mut index = date.year() * 4 + (date.month0() / 3) as i32 - back as i32;
    if index < 0 {
        index = 0;
    }
    let (year, quarter) = (index.div_euclid(4), index.rem_euclid(4) as u32);
    NaiveDate::from_ymd_opt(year, quarter * 3 + 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn buckets() {
        assert_eq!(hour_bucket(at("2026-12-03T15:42:10Z")), at("2026-12-03T15:00:00Z"));
        assert_eq!(day_bucket(at("2026-12-03T15:42:10Z")), at("2026-12-03T00:00:00Z"));
        assert_eq!(hour_bucket(at("2026-12-03T15:00:00Z")), at("2026-12-03T15:00:00Z"));
    }

    #[test]
    fn quarters() {
        assert_eq!(quarter_start(at("2026-12-03T15:42:10Z"), 0), at("2026-10-01T00:00:00Z"));
        assert_eq!(quarter_start(at("2026-12-03T15:42:10Z"), 1), at("2026-07-01T00:00:00Z"));
        assert_eq!(quarter_start(at("2026-02-03T00:00:00Z"), 1), at("2025-10-01T00:00:00Z"));
        assert_eq!(quarter_start(at("2026-01-01T00:00:00Z"), 0), at("2026-01-01T00:00:00Z"));
    }
}
