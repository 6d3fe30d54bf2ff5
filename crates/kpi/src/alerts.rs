//! Threshold alerts on the indicators (issue 14, part 4), as pure code: a [`Rule`] says which
//! indicator, which side of a threshold is bad and for how long it must stay there; [`evaluate`]
//! moves an alert's [`AlertState`] on from one reading, the way Grafana does:
//!
//! ```text
//!   normal ──condition holds──▶ pending ──held for `for`──▶ firing ──condition ends──▶ resolved
//!     ▲                            │                                                     │
//!     └──────condition ends────────┘          pending ◀──────condition holds again───────┘
//! ```
//!
//! * a rule with `for = 0` goes from normal (or resolved) straight to firing;
//! * `resolved` is where a firing alert goes when its condition ends, and it stays there (it is
//!   "normal, fired before") until the condition holds again;
//! * a reading without a value (no data) changes nothing: an indicator with nothing to compute
//!   from neither raises nor clears an alert.
//!
//! Silencing does not change states: a silenced rule's transitions are recorded and shown but
//! not notified (Grafana silences notifications, not evaluation).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    /// The alert condition holds when the value is strictly above the threshold.
    Above,
    /// The alert condition holds when the value is strictly below the threshold.
    Below,
}

impl Comparator {
    pub const ALL: [Comparator; 2] = [Comparator::Above, Comparator::Below];

    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Above => "above",
            Comparator::Below => "below",
        }
    }

    pub fn parse(s: &str) -> Option<Comparator> {
        Comparator::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether `value` is on the bad side of `threshold`.
    pub fn holds(self, value: Decimal, threshold: Decimal) -> bool {
        match self {
            Comparator::Above => value > threshold,
            Comparator::Below => value < threshold,
        }
    }
}

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition does not hold (and the alert has not fired since it last held).
    Normal,
    /// The condition holds, not yet for the rule's duration.
    Pending,
    /// The condition has held for the rule's duration.
    Firing,
    /// The alert fired and its condition no longer holds.
    Resolved,
}

impl AlertState {
    pub const ALL: [AlertState; 4] =
        [AlertState::Normal, AlertState::Pending, AlertState::Firing, AlertState::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Normal => "normal",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        AlertState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub comparator: Comparator,
    /// In the indicator's unit (fen, a fraction of 1, seconds, a count).
    pub threshold: Decimal,
    /// How long the condition must hold before the alert fires, in microseconds (0: at once).
    pub for_micros: i64,
}

/// An alert's state and when it entered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: AlertState,
    /// When the current state was entered (microseconds since the epoch); for `pending`, when
    /// the condition started to hold.
    pub since: i64,
}

/// The new status after a reading at `now`, or `None` when the state does not change.
pub fn evaluate(condition: &Condition, status: Status, value: Option<Decimal>, now: i64) -> Option<Status> {
    let value = value?;
    let holds = condition.comparator.holds(value, condition.threshold);
    let to = |state| Some(Status { state, since: now });
    match (status.state, holds) {
        (AlertState::Normal | AlertState::Resolved, true) if condition.for_micros <= 0 => to(AlertState::Firing),
        (AlertState::Normal | AlertState::Resolved, true) => to(AlertState::Pending),
        (AlertState::Pending, true) if now - status.since >= condition.for_micros => to(AlertState::Firing),
        (AlertState::Pending, false) => to(AlertState::Normal),
        (AlertState::Firing, false) => to(AlertState::Resolved),
        _ => None,
    }
}

/// Limits of a rule's fields.
pub const MAX_RULE_NAME: usize = 200;
pub const MAX_FOR_SECS: i64 = 7 * 24 * 3600;

/// Parses a threshold: a plain decimal number (no exponent), at most 28 significant digits.
pub fn parse_threshold(text: &str) -> Option<Decimal> {
    let t = text.trim();
    if t.is_empty() || t.contains(['e', 'E']) {
        return None;
    }
    Decimal::from_str(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(c: Comparator, t: i64, for_micros: i64) -> Condition {
        Condition { comparator: c, threshold: Decimal::from(t), for_micros }
    }

    fn st(state: AlertState, since: i64) -> Status {
        Status { state, since }
    }

    #[test]
    fn the_grafana_cycle() {
        let c = cond(Comparator::Above, 10, 100);
        let v = |n: i64| Some(Decimal::from(n));
        // normal: below the threshold stays normal, equal is not above
        assert_eq!(evaluate(&c, st(AlertState::Normal, 0), v(5), 10), None);
        assert_eq!(evaluate(&c, st(AlertState::Normal, 0), v(10), 10), None);
        // above: pending, then firing once held for `for`
        let p = evaluate(&c, st(AlertState::Normal, 0), v(11), 10).unwrap();
        assert_eq!(p, st(AlertState::Pending, 10));
        assert_eq!(evaluate(&c, p, v(12), 109), None);
        let f = evaluate(&c, p, v(12), 110).unwrap();
        assert_eq!(f, st(AlertState::Firing, 110));
        assert_eq!(evaluate(&c, f, v(50), 500), None);
        // back below: resolved, which stays until the condition holds again
        let r = evaluate(&c, f, v(3), 600).unwrap();
        assert_eq!(r, st(AlertState::Resolved, 600));
        assert_eq!(evaluate(&c, r, v(3), 700), None);
        assert_eq!(evaluate(&c, r, v(30), 800), Some(st(AlertState::Pending, 800)));
        // pending that ends before `for` goes back to normal (it never fired)
        assert_eq!(evaluate(&c, p, v(1), 50), Some(st(AlertState::Normal, 50)));
    }

    #[test]
    fn no_data_changes_nothing_and_zero_for_fires_at_once() {
        let c = cond(Comparator::Below, 0, 0);
        assert_eq!(evaluate(&c, st(AlertState::Firing, 0), None, 10), None);
        assert_eq!(evaluate(&c, st(AlertState::Normal, 0), None, 10), None);
        assert_eq!(
            evaluate(&c, st(AlertState::Normal, 0), Some(Decimal::from(-1)), 10),
            Some(st(AlertState::Firing, 10))
        );
        assert_eq!(
            evaluate(&c, st(AlertState::Resolved, 0), Some(Decimal::from(-1)), 10),
            Some(st(AlertState::Firing, 10))
        );
    }

    #[test]
    fn names_round_trip_and_thresholds_are_plain_decimals() {
        for s in AlertState::ALL {
            assert_eq!(AlertState::parse(s.as_str()), Some(s));
        }
        for c in Comparator::ALL {
            assert_eq!(Comparator::parse(c.as_str()), Some(c));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(parse_threshold("0.05"), Some(Decimal::new(5, 2)));
        assert_eq!(parse_threshold("-12"), Some(Decimal::from(-12)));
        assert_eq!(parse_threshold("1e3"), None);
        assert_eq!(parse_threshold("abc"), None);
        assert_eq!(parse_threshold(""), None);
    }
}
