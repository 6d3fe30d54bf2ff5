use crate::types::{AccountId, AccountStatus};

/// Errors of ledger operations other than per-transfer results (those are
/// [`crate::TransferError`] inside each [`crate::TransferOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    #[error("transfer {0} not found")]
    TransferNotFound(String),
    #[error("account {0} exists with different content")]
    AccountConflict(AccountId),
    #[error("account {id} cannot go from {from} to {to}")]
    InvalidStatusChange { id: AccountId, from: AccountStatus, to: AccountStatus },
    #[error("account {0} has a non-zero balance or open holds and cannot be closed")]
    NonZeroBalance(AccountId),
    #[error("invalid account: {0}")]
    InvalidAccount(String),
    #[error("batch of {0} transfers exceeds the maximum of {1}")]
    BatchTooLarge(usize, usize),
    #[error("empty batch")]
    EmptyBatch,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage error: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A statement written along with a batch found its rows moved on; nothing was written.
    #[error("a write along with the batch was refused, nothing was written: {0}")]
    AlongConflict(#[from] storage::RowCountMismatch),
    #[error("the ledger could not commit: {0}")]
    Unavailable(String),
    #[error("the ledger is shutting down")]
    ShuttingDown,
}
