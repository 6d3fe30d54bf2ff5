//! # process
//!
//! Process intelligence as pure functions (GitHub issue 15). No I/O, no clock reads:
//!
//! * [`event`]: the bank's own processes ([`Process`]), their activities ([`Activity`]) and one
//!   [`ProcessEvent`] as a platform records it: case id, activity, time (UTC microseconds from
//!   the caller's Clock), resource (`system`, `customer` or a staff id) and [`Attributes`].
//!   Attributes are typed fields (product, amount in minor units, channel, outcome, cost, data
//!   source, service time), so no personal data can ride along in a free-form map.
//! * [`log`]: an event log as cases (traces), and the [`Filter`] every analysis takes.
//! * [`mining`]: directly-follows graph with frequencies and durations, variants, bottlenecks,
//!   rework loops, SLA breaches and value-stream figures.
//! * [`ocel`] and [`xes`]: export for other process-mining tools; [`xes`] and [`csv_import`]
//!   read logs of other systems.
//!
//! ## Time conventions
//! Events are instants: an event says its activity finished at `at`. The time since the case's
//! previous event is the activity's *duration*; the part of it spent working is its *service
//! time* (the event's `service_micros` when the recorder measured it, else 0) and the rest is
//! *waiting*. Value-added time of a case is the sum of its service times, lead time is last
//! event minus first, and process cycle efficiency is value-added over lead time. All durations
//! are integer microseconds.

pub mod csv_import;
pub mod event;
pub mod log;
pub mod mining;
pub mod ocel;
pub mod xes;

pub use event::{Activity, Attributes, DataSource, Process, ProcessEvent};
pub use log::{Case, Event, EventLog, Filter};

/// Why a log could not be read or analysed. Import errors name the line (CSV, XES) or the
/// element (XES) so the sender can fix the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the log has {events} events, more than the {limit} one request may handle; narrow the time window or the filters")]
    TooLarge { events: usize, limit: usize },
}
