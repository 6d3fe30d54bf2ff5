//! # kpi
//!
//! The KPI system of the operations cockpit (issue 14, part 3): what each indicator is (its
//! [`Definition`]: category, Chinese and English name, definition, unit, direction, formula)
//! and the arithmetic that turns the figures a platform reads from stored data ([`Inputs`])
//! into indicator values ([`compute`]). No SQL, no I/O, no clock: "now" is an argument.
//!
//! Invariants:
//! * every indicator in [`KpiId::ALL`] has exactly one [`Definition`], and [`compute`] returns
//!   one [`Reading`] per indicator, in that order;
//! * a value is `None` when its denominator is zero or its input was never recorded, never a
//!   made-up number;
//! * money is integer minor units (exact [`Decimal`]s with no fraction, except averages rounded
//!   half-up to a whole minor unit); ratios are fractions in `0..=1` rounded to six places.
//!
//! [`alerts`] holds the threshold alert rules' state machine (normal → pending → firing →
//! resolved, as in Grafana).

pub mod alerts;
mod catalogue;
mod compute;
mod time;

pub use catalogue::{definition, definitions, Category, Definition, Direction, KpiId, Unit};
pub use compute::{compute, is_digital_channel, percentile, ratio, Inputs, LoanBook, Reading, CHURN_RISK_THRESHOLD};
pub use time::{day_bucket, hour_bucket, quarter_start, DAY_MICROS, HOUR_MICROS, WINDOW_30D_MICROS};

pub use rust_decimal::Decimal;
