//! # customer-platform
//!
//! The customer data platform as a running system: where the pure `customer` crate says what a
//! profile, a tag or a segment *is*, this crate stores customers and their facts, keeps the
//! computed tags, tiers, RFM segments, defined segments and churn scores up to date, and answers
//! searches. It owns:
//!
//! * [`store`]: the SQL store (SQLite and PostgreSQL, one query text each via `$N`
//!   placeholders): customer master records with one record per identity document, channel
//!   identities, facts (the profile's inputs) with a dirty flag, computed results, and
//!   membership bitmaps (roaring, chunked) for search and counts by tag, tier, RFM or segment.
//! * [`lifecycle`]: what happens to a master record after registration, each in one
//!   transaction with a `customer_history` row per change: updates and document corrections,
//!   KYC status changes (checked transitions), closure (`status = 'closed'`, refused while the
//!   customer has open accounts with a balance or open loans) and merges of two records of one
//!   person (`status = 'merged'`, `merged_into`; identities, the stronger KYC status and a
//!   missing phone go to the survivor). Nothing is hard-deleted; closed and merged records leave
//!   search, counts and recomputation.
//! * [`recompute`]: full and incremental recomputation, parallel over pages of customers.
//! * [`churn`]: the churn model (gradient-boosted trees via `ml`), trained on labelled history
//!   with held-out AUC, scoring with top contributing factors.
//! * [`ledger_facts`]: fills balances and transaction behaviour of the facts from the ledger
//!   (the customer's accounts and their journal entries).
//! * [`tag_rules`]: the tag rules in force (built-ins plus stored versions) and their persistence.
//! * [`bench`]: the `digibank bench tags` workload (1M customers, 6 months of transactions).
//!
//! It knows nothing about HTTP; the server maps [`PlatformError`] to responses.

#[cfg(feature = "bench")]
pub mod bench;
pub mod churn;
pub mod encryption;
pub mod ledger_facts;
pub mod lifecycle;
pub mod products;
pub mod recompute;
pub mod store;
pub mod tag_rules;

pub use lifecycle::{Actor, CustomerUpdate, HistoryEvent, MergeOutcome};
pub use products::{OpenProduct, OpenProducts, ProductKind};
pub use recompute::{recompute, Mode, RecomputeReport};
pub use store::{ChurnFactor, ChurnScore, ComputedResult, CustomerRecord, CustomerStore, NewCustomerRecord};
pub use tag_rules::{load_registry, TagRules};

/// Errors of the customer platform.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("this identity document already belongs to customer {0}")]
    CustomerExists(String),
    #[error("this channel identity already belongs to customer {owner}")]
    IdentityTaken { owner: String },
    #[error("no customer {0}")]
    NotFound(String),
    /// The record is `closed` or `merged` (into `merged_into`) and cannot change.
    #[error("customer {id} is {status}")]
    Inactive { id: String, status: customer::CustomerStatus, merged_into: Option<String> },
    /// Closure refused: open ledger accounts with a balance, open loans.
    #[error("customer {id} still has {accounts} open account(s) with a balance and {} open loan(s)", loans.len())]
    OpenProducts { id: String, accounts: i64, loans: Vec<String> },
    #[error("cannot merge: {0}")]
    MergeConflict(String),
    #[error("KYC status cannot change from {from} to {to}")]
    InvalidKycTransition { from: String, to: String },
    /// A correction names a document another record holds (that is a merge, not a correction).
    #[error("this identity document already belongs to customer {0}")]
    DocumentTaken(String),
    #[error("customer {0} was changed by a concurrent request; retry")]
    Concurrent(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Customer(#[from] customer::CustomerError),
    /// Closing a customer needs every domain's open products, and none was configured.
    #[error("closing customers needs the ledger's and lending's product checks, which this process does not have")]
    ProductCheckUnavailable,
    #[error("model error: {0}")]
    Model(#[from] ml::MlError),
    /// A sealed value of a record failed its integrity check (changed outside digibank,
    /// truncated, moved from another column) or names a data key the database does not hold.
    #[error("record {record} of {table} failed its integrity check: {reason}")]
    Integrity { table: &'static str, record: String, reason: String },
    /// The field encryption keys could not be used.
    #[error("field encryption: {0}")]
    Vault(access::VaultError),
    #[error("ledger error: {0}")]
    Ledger(#[from] ledger::LedgerError),
}
