//! # process-platform
//!
//! Process intelligence as a running system (GitHub issue 15):
//!
//! * [`event_statement`]: the INSERT of one [`process::ProcessEvent`] as a
//!   [`storage::Statement`]. Every platform that changes state (lending, risk, customers) adds
//!   it to the statements of the **same** transaction as the change it records (the ledger
//!   batch's `along` statements, `storage::execute_all`, or its own `storage::transaction!`), so
//!   the log never says something happened that did not, nor misses what did.
//!   It lives here, not in `storage`, because the table is this domain's: `storage` stays the
//!   domain-agnostic foundation (its only cross-domain row is the audit entry, which the unit of
//!   work adds by itself), and a platform depends on this small crate as it depends on any port.
//! * [`ProcessStore`]: reads of the log (bounded: a request that would load more than its work
//!   budget is refused, never truncated silently) and imported logs of other systems, stored
//!   whole in one transaction or not at all.
//! * [`ProcessService`]: export (OCEL 2.0, XES), import (CSV with a column mapping, XES) and
//!   mining over either log, with the pure functions of the `process` crate.

mod service;
mod store;

pub use service::{default_sla, LogSource, ProcessService, DEFAULT_SLA_MINUTES};
pub use store::{event_statement, event_statements, LogInfo, ProcessStore};

/// Errors of the process platform.
#[derive(Debug, thiserror::Error)]
pub enum ProcessPlatformError {
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error("{0} {1} not found")]
    NotFound(&'static str, String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    UnitOfWork(#[from] storage::UnitOfWorkError),
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = ProcessPlatformError> = std::result::Result<T, E>;

/// Most events one request may load, mine or export (the work budget).
pub const MAX_EVENTS: usize = 1_000_000;
/// Most events one import may bring.
pub const MAX_IMPORT_EVENTS: usize = 200_000;
