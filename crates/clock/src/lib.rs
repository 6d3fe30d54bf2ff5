//! # clock
//!
//! The one time source of the workspace. Production uses [`SystemClock`]; tests and the demo
//! generator move a [`ManualClock`] so that expiry, windows and balances "as of" a date can be
//! exercised without waiting. Every crate that needs "now" takes an `Arc<dyn Clock>` (the ledger
//! and the risk engine do; platform crates are moving to it).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Microseconds since the Unix epoch (UTC): the storage timestamp format.
    fn now_micros(&self) -> i64;

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.now_micros()).unwrap_or_default()
    }

    /// Today's date in UTC.
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        Utc::now().timestamp_micros()
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to, shareable across threads (microsecond resolution).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(AtomicI64::new(start.timestamp_micros()))
    }

    pub fn at_micros(start_micros: i64) -> Self {
        ManualClock(AtomicI64::new(start_micros))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_micros(), Ordering::SeqCst);
    }

    pub fn set_micros(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at_micros(1_700_000_000_000_000);
        assert_eq!(c.now_micros(), 1_700_000_000_000_000);
        c.advance_secs(61);
        c.advance(Duration::milliseconds(5));
        assert_eq!(c.now_micros(), 1_700_000_061_005_000);
        assert_eq!(c.now().timestamp_micros(), c.now_micros());
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        c.set(t);
        assert_eq!((c.now(), c.today()), (t, t.date_naive()));
        assert!(SystemClock.now_micros() > 1_700_000_000_000_000);
    }
}
