//! # risk-platform
//!
//! The `risk` engine as a running service, between the pure engine (`crates/risk`) and HTTP
//! (`crates/server`):
//!
//! * [`RiskService::load`] builds the engine from the database: rule sets and the active one,
//!   live list entries, the case id sequence, confirmed-fraud customers, the latest model, and
//!   the recent decision log replayed into velocity counters and the relationship graph; a
//!   refresher keeps it in step with other processes and nodes.
//! * [`RiskService::decide`] decides and writes the decision (and the review case it opens) to
//!   the group-committed decision log ([`log`]) before answering; a full queue sheds the request.
//! * Rule sets, lists and models: stored and applied to the running engine together.
//! * [`RiskService::screen_transfer`] / [`RiskService::hold_for_review`]: transfer screening.
//! * [`RiskService::resolve_case`]: closing a case and posting or voiding its held transfer is
//!   one database transaction.
//! * [`store`]: every SQL statement of the risk tables, one text for both backends.
//!
//! Errors are [`RiskPlatformError`]; the server maps them to HTTP in one place.

mod config;
pub mod encryption;
mod error;
pub mod log;
mod screening;
mod service;
pub mod store;

pub use config::{DecisionLog, RiskConfig};
pub use error::{Result, RiskPlatformError};
pub use screening::Screening;
pub use service::{pseudonymised, replay_decision_log, sensitive_domain, ResolvedCase, RiskService};
pub use store::{CaseStatus, CaseView, DecisionView};
