//! What can go wrong in the risk platform. The server maps each variant to one HTTP status in
//! one place (`crates/server/src/routes/risk.rs`).

use uuid::Uuid;

use crate::DecisionView;

#[derive(Debug, thiserror::Error)]
pub enum RiskPlatformError {
    /// Bad input or a state conflict found by the engine (missing field, invalid rule, unknown
    /// version, case already resolved, ...).
    #[error(transparent)]
    Engine(#[from] risk::RiskError),
    #[error("no decision {0}")]
    DecisionNotFound(Uuid),
    #[error("no stored model {0}")]
    ModelNotFound(String),
    #[error("no such list entry")]
    ListEntryNotFound,
    /// A request the platform refuses before doing anything (the message says why).
    #[error("{0}")]
    InvalidRequest(String),
    /// Transfer screening rejected the transfer; nothing reached the ledger.
    #[error("transfer rejected by risk decision {}: {}", .0.id, reason_list(.0))]
    Rejected(Box<DecisionView>),
    /// The decision log queue is full: the server sheds this request instead of queueing it
    /// behind work it cannot finish in time.
    #[error("the decision log is saturated; retry shortly")]
    Overloaded,
    #[error("decision log: {0}")]
    DecisionLog(String),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] storage::UnitOfWorkError),
    #[error("stored risk data does not parse: {0}")]
    Corrupt(String),
    /// A sealed value of a record failed its integrity check.
    #[error("record {record} of {table} failed its integrity check: {reason}")]
    Integrity { table: &'static str, record: String, reason: String },
    /// The field encryption keys could not be used.
    #[error("field encryption: {0}")]
    Vault(access::VaultError),
}

fn reason_list(view: &DecisionView) -> String {
    view.reasons.iter().map(|r| format!("{} ({})", r.code, r.explanation)).collect::<Vec<_>>().join("; ")
}

impl From<serde_json::Error> for RiskPlatformError {
    fn from(e: serde_json::Error) -> Self {
        RiskPlatformError::Corrupt(e.to_string())
    }
}

pub type Result<T, E = RiskPlatformError> = std::result::Result<T, E>;
