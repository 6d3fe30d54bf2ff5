//! # lending-platform
//!
//! Lending as a running system (GitHub issue 5). The pure `lending` crate says what a decision,
//! an offer, a loan or an end of day *is*; this crate stores them (SQLite and PostgreSQL, one
//! query text each via `$N` placeholders) and moves the money through the [`ledger`]:
//!
//! * [`accounts`]: the ledger mapping. Each loan gets four asset accounts owned by the borrower
//!   (`loan.principal`, `loan.interest_receivable`, `loan.penalty_receivable`,
//!   `loan.fee_receivable`); the bank has four shared GL accounts (`gl.interest_income`,
//!   `gl.penalty_income`, `gl.fee_income_lending`, `gl.loan_loss_allowance`) with fixed UUID v5
//!   ids, opened idempotently. `CustomerAccount` is the borrower's deposit account for
//!   disbursements and fees, and the repayment account (the core enterprise's for supply-chain
//!   financing) for repayments.
//! * [`service`]: [`LendingService`]: apply, offer, accept + disburse, draw, repay, prepay,
//!   documents and receivables, end of day, overdue lists, review queue, alerts.
//!   Every operation's postings become one ledger batch of linked transfers whose ids derive
//!   from (loan id, loan version, sequence), so a retry replays instead of writing twice and a
//!   failed leg fails the whole operation. The loan's new state is saved in the same database
//!   transaction as the batch ([`ledger::Ledger::submit_batch_with`]), with an optimistic
//!   version check, so the loan and its ledger accounts never disagree.
//! * [`import`]: loan-book import from another system, with opening balances.
//! * [`store`]: the SQL.
//!
//! It knows nothing about HTTP; the server maps [`LendingPlatformError`] to responses.

pub mod accounts;
pub mod encryption;
mod fraud;
pub mod import;
mod products;
pub mod service;
pub mod store;

pub use import::{ImportCheck, ImportReport, ImportedLoan, MIGRATION_CLEARING};
pub use service::{
    AcceptInput, AcceptOutcome, ApplyInput, EodLimits, EodPhases, EodReport, FinanceInput, LendingService, LoanView,
    OperationOutcome, ReceivableInput, ReviewApproval, ReviewDecline, WriteOffInput, WriteOffOutcome,
};
pub use store::{ChargedOff, LoanRecord, LoanSummary, ReviewItem};

/// Errors of the lending platform.
#[derive(Debug, thiserror::Error)]
pub enum LendingPlatformError {
    #[error(transparent)]
    Lending(#[from] lending::LendingError),
    #[error("{0} {1} not found")]
    NotFound(&'static str, String),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The ledger refused a leg of the operation's batch; nothing was written.
    #[error("the ledger rejected the operation: {message}")]
    Rejected { code: ledger::TransferError, message: String },
    /// Someone else changed the loan in the meantime; retry.
    #[error("loan {0} was changed concurrently; retry")]
    Conflict(String),
    /// A statement's row expectation failed (a version moved on); nothing was written.
    #[error(transparent)]
    Stale(#[from] storage::RowCountMismatch),
    #[error("ledger error: {0}")]
    Ledger(#[from] ledger::LedgerError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// An end of day too far ahead: more days after today, or after the last one, than
    /// [`EodLimits`] allows.
    #[error("end of day {requested} is out of range: the next end of day must be {} and at most {latest}", earliest.map_or("any date".to_string(), |e| format!("after {e}")))]
    EodDateOutOfRange { requested: chrono::NaiveDate, earliest: Option<chrono::NaiveDate>, latest: chrono::NaiveDate },
    /// Applications are decided only with the risk engine's fraud check, and none is configured.
    #[error("loan applications need the risk engine's fraud check, which this process does not run")]
    FraudCheckUnavailable,
    /// The fraud check failed (a saturated decision log, an invalid event field, storage).
    #[error(transparent)]
    Risk(#[from] risk_platform::RiskPlatformError),
    /// A sealed value of a record failed its integrity check.
    #[error("record {record} of {table} failed its integrity check: {reason}")]
    Integrity { table: &'static str, record: String, reason: String },
    /// The field encryption keys could not be used.
    #[error("field encryption: {0}")]
    Vault(access::VaultError),
}

pub type Result<T, E = LendingPlatformError> = std::result::Result<T, E>;
