//! # ledger
//!
//! The double-entry ledger behind every digibank product. It owns:
//!
//! * **accounts** ([`Account`]): currency, accounting kind, owner, balance limits
//!   (`debits_must_not_exceed_credits` + overdraft), status (open, frozen, closed);
//! * **transfers** ([`TransferRequest`] → [`Transfer`]): single-phase, two-phase (pending hold,
//!   then post in full or in part, void, or expiry), linked chains that succeed or fail together,
//!   and batches with one outcome per transfer, committed in one database transaction;
//! * **idempotency**: the transfer id is chosen by the client; the same id with the same content
//!   returns the first result, with other content [`TransferError::IdempotencyConflict`];
//! * **the journal**: every entry is hash-chained (SHA-256); [`Ledger::verify`] re-checks the chain
//!   and re-derives every balance from it.
//!
//! Invariants: every entry debits one account and credits another by the same amount, so per
//! currency the sum of debits equals the sum of credits; a constrained account never goes past
//! its limit; a retried request never writes twice.
//!
//! Storage sits behind [`LedgerStore`] (SQLite and PostgreSQL). The batch logic itself is pure
//! ([`engine::plan_batch`]) and shared by both.

pub mod baseline;
mod batcher;
pub mod clock;
pub mod engine;
mod error;
pub mod journal;
pub mod store;
pub mod types;

use std::sync::Arc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Head, MAX_BATCH};
pub use error::LedgerError;
pub use journal::{Problem, VerifyReport};
use storage::Database;
pub use store::{AlongWithBatch, LedgerStore};
pub use types::*;

/// The ledger: the one entry point the server, the CLI and other domains use.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn LedgerStore>,
    clock: Arc<dyn Clock>,
    batcher: batcher::Batcher,
}

/// Largest page of statement entries or accounts returned at once.
pub const MAX_PAGE: u32 = 1000;

impl Ledger {
    /// A ledger on `db` using the system clock. Must be called inside a Tokio runtime.
    pub fn new(db: &Database) -> Self {
        Self::with_clock(db, Arc::new(SystemClock))
    }

    pub fn with_clock(db: &Database, clock: Arc<dyn Clock>) -> Self {
        let store: Arc<dyn LedgerStore> = match db {
            Database::Sqlite(db) => Arc::new(store::sqlite::SqliteLedgerStore::new(db.clone())),
            Database::Postgres(pool) => Arc::new(store::postgres::PgLedgerStore::new(pool.clone())),
        };
        let batcher = batcher::Batcher::start(store.clone(), clock.clone());
        Ledger { store, clock, batcher }
    }

    pub fn store(&self) -> &Arc<dyn LedgerStore> {
        &self.store
    }

    /// The ledger's time source (other services stamp their records with the same clock).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    /// Opens one account (idempotent on a client-chosen id).
    pub async fn open_account(&self, request: NewAccount) -> Result<Account, LedgerError> {
        let mut out = self.store.open_accounts(std::slice::from_ref(&request), self.now()).await?;
        Ok(out.pop().expect("one result per request").0)
    }

    /// Opens many accounts atomically.
    pub async fn open_accounts(&self, requests: &[NewAccount]) -> Result<Vec<Account>, LedgerError> {
        Ok(self.store.open_accounts(requests, self.now()).await?.into_iter().map(|(a, _)| a).collect())
    }

    pub async fn set_status(&self, id: AccountId, to: AccountStatus) -> Result<Account, LedgerError> {
        self.store.set_account_status(id, to).await
    }

    pub async fn account(&self, id: AccountId) -> Result<Account, LedgerError> {
        self.store.account(id).await?.ok_or(LedgerError::AccountNotFound(id))
    }

    pub async fn list_accounts(&self, after: Option<AccountId>, limit: u32) -> Result<Vec<Account>, LedgerError> {
        self.store.list_accounts(after, limit.clamp(1, MAX_PAGE)).await
    }

    /// Every account owned by these customers (at most [`MAX_PAGE`] owners per call).
    pub async fn customer_accounts(&self, owners: &[String]) -> Result<Vec<Account>, LedgerError> {
        if owners.len() > MAX_PAGE as usize {
            return Err(LedgerError::InvalidAccount(format!("at most {MAX_PAGE} owners per call")));
        }
        self.store.customer_accounts(owners).await
    }

    /// Submits a batch (at most [`MAX_BATCH`]) in one database transaction.
    pub async fn submit_batch(&self, requests: &[TransferRequest]) -> Result<Vec<TransferOutcome>, LedgerError> {
        if requests.is_empty() {
            return Err(LedgerError::EmptyBatch);
        }
        if requests.len() > MAX_BATCH {
            return Err(LedgerError::BatchTooLarge(requests.len(), MAX_BATCH));
        }
        let along = storage::audit::next_entry().map(|entry| -> AlongWithBatch { Box::new(move |_| vec![entry]) });
        self.store.write_batch_with(requests.to_vec(), self.now(), false, along).await
    }

    /// [`Ledger::submit_batch`] with another domain's writes in the same transaction: `along`
    /// gets the outcomes and returns the statements to run before the commit. Everything
    /// commits together or nothing does, so a domain's record of an operation can never
    /// disagree with the ledger. A statement that changes another number of rows than it
    /// requires rolls all back with [`LedgerError::AlongConflict`].
    pub async fn submit_batch_with(
        &self,
        requests: Vec<TransferRequest>,
        along: AlongWithBatch,
    ) -> Result<Vec<TransferOutcome>, LedgerError> {
        if requests.is_empty() {
            return Err(LedgerError::EmptyBatch);
        }
        if requests.len() > MAX_BATCH {
            return Err(LedgerError::BatchTooLarge(requests.len(), MAX_BATCH));
        }
        // The batch may be written on another thread: take the audit entry with it.
        let along: AlongWithBatch = match storage::audit::next_entry() {
            Some(entry) => Box::new(move |outcomes| {
                let mut statements = along(outcomes);
                statements.push(entry);
                statements
            }),
            None => along,
        };
        self.store.write_batch_with(requests, self.now(), false, Some(along)).await
    }

    /// Submits one transfer through group commit (see the batcher module).
    pub async fn submit(&self, request: TransferRequest) -> Result<TransferOutcome, LedgerError> {
        storage::audit::set_resource(request.id.0.to_string());
        self.batcher.submit(request).await
    }

    pub async fn transfer(&self, id: TransferId) -> Result<Transfer, LedgerError> {
        self.store.transfer(id).await?.ok_or_else(|| LedgerError::TransferNotFound(id.to_string()))
    }

    pub async fn hold_status(&self, id: TransferId) -> Result<Option<HoldStatus>, LedgerError> {
        self.store.hold_status(id).await
    }

    /// Current balances, or balances as of `as_of` (micros) re-derived from the journal.
    pub async fn balance(&self, id: AccountId, as_of: Option<i64>) -> Result<BalanceView, LedgerError> {
        let account = self.account(id).await?;
        let Some(as_of) = as_of else {
            return Ok(BalanceView::new(&account, account.balances, None));
        };
        let mut replay = journal::BalanceReplay::default();
        let mut after = 0;
        loop {
            let page = self.store.account_transfers(id, after, 5000, Some(as_of)).await?;
            for t in &page {
                replay.apply(t).map_err(|e| LedgerError::Corrupt(format!("seq {}: {e}", t.seq)))?;
            }
            match page.last() {
                Some(t) if page.len() == 5000 => after = t.seq,
                _ => break,
            }
        }
        let balances = replay.balances.get(&id).copied().unwrap_or_default();
        Ok(BalanceView::new(&account, balances, Some(as_of)))
    }

    /// A page of an account's statement, oldest first, after journal position `after_seq`.
    pub async fn entries(&self, id: AccountId, after_seq: i64, limit: u32) -> Result<Vec<Entry>, LedgerError> {
        self.account(id).await?;
        let page = self.store.account_transfers(id, after_seq, limit.clamp(1, MAX_PAGE), None).await?;
        Ok(page
            .into_iter()
            .map(|t| {
                let debit = t.debit_account_id == id;
                Entry {
                    seq: t.seq,
                    transfer_id: t.id,
                    kind: t.kind,
                    side: if debit { EntrySide::Debit } else { EntrySide::Credit },
                    amount: t.amount,
                    currency: t.currency,
                    counterparty_account_id: if debit { t.credit_account_id } else { t.debit_account_id },
                    pending_id: t.pending_id,
                    reference: t.reference,
                    metadata: t.metadata,
                    created_at: t.created_at,
                }
            })
            .collect())
    }

    /// Releases holds whose timeout has passed; returns how many expired.
    pub async fn expire_due(&self) -> Result<usize, LedgerError> {
        let mut expired = 0;
        loop {
            let now = self.now();
            let due = self.store.due_holds(now, MAX_BATCH as u32).await?;
            if due.is_empty() {
                return Ok(expired);
            }
            let requests: Vec<TransferRequest> = due
                .iter()
                .map(|pending| TransferRequest {
                    kind: TransferKind::ExpirePending,
                    ..TransferRequest::void(TransferId::new(), *pending)
                })
                .collect();
            let outcomes = self.store.write_batch(requests, now, true).await?;
            let created = outcomes.iter().filter(|o| matches!(o, TransferOutcome::Created { .. })).count();
            expired += created;
            if created == 0 {
                return Ok(expired);
            }
        }
    }

    /// Recomputes the hash chain and every balance from the journal. `progress` is called with
    /// the number of entries checked so far.
    pub async fn verify(&self, mut progress: impl FnMut(u64, i64) + Send) -> Result<VerifyReport, LedgerError> {
        let mut verifier = journal::Verifier::default();
        let (accounts, head) = self.store.verify_snapshot(&mut verifier, &mut progress).await?;
        Ok(verifier.finish(&accounts, head.seq))
    }
}
