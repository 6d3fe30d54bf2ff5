//! Storage behind the ledger. [`LedgerStore`] is what the [`crate::Ledger`] facade calls; the
//! SQLite and PostgreSQL implementations differ only in SQL. The batch write path is written
//! once, in [`run_batch`], over the small [`BatchTx`] trait each backend implements.

use async_trait::async_trait;
use money::Currency;
use uuid::Uuid;

use crate::engine::{ids_to_load, plan_batch, Head, LoadedState, Plan};
use crate::types::*;
use crate::LedgerError;

pub mod postgres;
pub mod sqlite;

/// Another domain's writes that commit or roll back with a ledger batch, chosen once the
/// batch's outcomes are known (a loan's new state is saved only if its transfers were created).
pub type AlongWithBatch = Box<dyn FnOnce(&[TransferOutcome]) -> Vec<storage::Statement> + Send>;

/// Persistence for accounts, the journal and holds.
#[async_trait]
pub trait LedgerStore: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Opens accounts atomically. An id that exists with the same content is returned as is
    /// (`false` = not newly created); with other content the whole call fails.
    async fn open_accounts(&self, requests: &[NewAccount], now: i64) -> Result<Vec<(Account, bool)>, LedgerError>;

    async fn set_account_status(&self, id: AccountId, to: AccountStatus) -> Result<Account, LedgerError>;

    async fn account(&self, id: AccountId) -> Result<Option<Account>, LedgerError>;

    /// Accounts ordered by id, after `after`.
    async fn list_accounts(&self, after: Option<AccountId>, limit: u32) -> Result<Vec<Account>, LedgerError>;

    /// Every account of these customers (owner type `customer`), ordered by id.
    async fn customer_accounts(&self, owners: &[String]) -> Result<Vec<Account>, LedgerError>;

    /// Applies a batch in one database transaction and returns one outcome per request. Takes
    /// the batch by value so a store can move it to another thread without copying it.
    async fn write_batch(
        &self,
        requests: Vec<TransferRequest>,
        now: i64,
        allow_system: bool,
    ) -> Result<Vec<TransferOutcome>, LedgerError> {
        self.write_batch_with(requests, now, allow_system, None).await
    }

    /// [`LedgerStore::write_batch`], then the statements `along` returns for the outcomes, in
    /// the same transaction. A statement that changes another number of rows than it requires
    /// rolls everything back ([`LedgerError::AlongConflict`]).
    async fn write_batch_with(
        &self,
        requests: Vec<TransferRequest>,
        now: i64,
        allow_system: bool,
        along: Option<AlongWithBatch>,
    ) -> Result<Vec<TransferOutcome>, LedgerError>;

    /// Brings secondary indexes up to date with the journal (SQLite builds its per-account index
    /// in chunks; PostgreSQL indexes on insert and has nothing to do). Returns entries indexed.
    async fn catch_up_index(&self) -> Result<i64, LedgerError>;

    /// Pending transfers whose timeout has passed at `now` and that are still held.
    async fn due_holds(&self, now: i64, limit: u32) -> Result<Vec<TransferId>, LedgerError>;

    async fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, LedgerError>;

    async fn hold_status(&self, id: TransferId) -> Result<Option<HoldStatus>, LedgerError>;

    /// Journal entries touching an account, in seq order, after `after_seq`, created at or
    /// before `until` when given.
    async fn account_transfers(
        &self,
        id: AccountId,
        after_seq: i64,
        limit: u32,
        until: Option<i64>,
    ) -> Result<Vec<Transfer>, LedgerError>;

    /// The journal in seq order, after `after_seq`.
    async fn journal_page(&self, after_seq: i64, limit: u32) -> Result<Vec<Transfer>, LedgerError>;

    async fn head(&self) -> Result<Head, LedgerError>;

    /// Feeds the whole journal to `verifier` and returns every account and the journal head,
    /// all read from one consistent snapshot, so verifying a live ledger gives no false alarms.
    async fn verify_snapshot(
        &self,
        verifier: &mut crate::journal::Verifier,
        progress: &mut (dyn FnMut(u64, i64) + Send),
    ) -> Result<(Vec<Account>, Head), LedgerError>;

    /// Counts of accounts and journal entries (for metrics and the demo).
    async fn counts(&self) -> Result<(i64, i64), LedgerError>;
}

/// Per-backend steps of one batch transaction.
#[async_trait]
pub(crate) trait BatchTx: Send {
    /// Locks the journal head for the rest of the transaction and returns it.
    async fn lock_head(&mut self) -> Result<Head, LedgerError>;
    async fn transfers_by_ids(&mut self, ids: &[TransferId]) -> Result<Vec<Transfer>, LedgerError>;
    async fn hold_statuses(&mut self, ids: &[TransferId]) -> Result<Vec<(TransferId, HoldStatus)>, LedgerError>;
    async fn accounts_by_ids(&mut self, ids: &[AccountId]) -> Result<Vec<AccountState>, LedgerError>;
    async fn write_plan(&mut self, plan: &Plan) -> Result<(), LedgerError>;
}

/// Loads what a batch touches, plans it and writes the plan, inside the caller's transaction.
pub(crate) async fn run_batch<T: BatchTx>(
    tx: &mut T,
    requests: &[TransferRequest],
    now: i64,
    allow_system: bool,
) -> Result<Plan, LedgerError> {
    let started = std::time::Instant::now();
    let head = tx.lock_head().await?;
    let (ids, pending_ids, mut account_ids) = ids_to_load(requests);
    let mut state = LoadedState::default();
    for t in tx.transfers_by_ids(&ids).await? {
        state.existing.insert(t.id, t);
    }
    let looked_up = started.elapsed();
    if !pending_ids.is_empty() {
        let pendings = tx.transfers_by_ids(&pending_ids).await?;
        let hold_ids: Vec<TransferId> =
            pendings.iter().filter(|t| t.kind == TransferKind::Pending).map(|t| t.id).collect();
        let statuses: std::collections::HashMap<TransferId, HoldStatus> =
            tx.hold_statuses(&hold_ids).await?.into_iter().collect();
        for t in pendings {
            account_ids.push(t.debit_account_id);
            account_ids.push(t.credit_account_id);
            let status = statuses.get(&t.id).copied();
            state.pending.insert(t.id, (t, status));
        }
        account_ids.sort();
        account_ids.dedup();
    }
    for a in tx.accounts_by_ids(&account_ids).await? {
        state.accounts.insert(a.id, a);
    }
    let loaded = started.elapsed();
    let plan = plan_batch(requests, state, head, now, allow_system);
    let planned = started.elapsed();
    if plan.writes_anything() {
        tx.write_plan(&plan).await?;
    }
    tracing::debug!(
        requests = requests.len(),
        ids_us = looked_up.as_micros() as u64,
        accounts_us = (loaded - looked_up).as_micros() as u64,
        plan_us = (planned - loaded).as_micros() as u64,
        write_us = (started.elapsed() - planned).as_micros() as u64,
        "batch phases"
    );
    Ok(plan)
}

/// Page size of snapshot scans.
pub(crate) const SCAN_PAGE: i64 = 10_000;

pub(crate) const TRANSFER_COLUMNS: &str = "seq, id, kind, debit_account_id, credit_account_id, amount, currency, \
     pending_id, timeout_secs, linked, reference, metadata, created_at, hash";

pub(crate) const ACCOUNT_COLUMNS: &str = "id, currency, kind, owner_type, owner_id, code, name, \
     debits_must_not_exceed_credits, credits_must_not_exceed_debits, overdraft_limit, status, \
     debits_pending, debits_posted, credits_pending, credits_posted, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct TransferRow {
    seq: i64,
    id: Uuid,
    kind: String,
    debit_account_id: Uuid,
    credit_account_id: Uuid,
    amount: i64,
    currency: String,
    pending_id: Option<Uuid>,
    timeout_secs: i64,
    linked: bool,
    reference: Option<String>,
    metadata: Option<String>,
    created_at: i64,
    hash: Vec<u8>,
}

impl TryFrom<TransferRow> for Transfer {
    type Error = LedgerError;
    fn try_from(r: TransferRow) -> Result<Self, LedgerError> {
        let corrupt = |what: &str| LedgerError::Corrupt(format!("transfer seq {}: bad {what}", r.seq));
        Ok(Transfer {
            seq: r.seq,
            id: TransferId(r.id),
            kind: TransferKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
            debit_account_id: AccountId(r.debit_account_id),
            credit_account_id: AccountId(r.credit_account_id),
            amount: r.amount,
            currency: Currency::new(&r.currency).map_err(|_| corrupt("currency"))?,
            pending_id: r.pending_id.map(TransferId),
            timeout_secs: u32::try_from(r.timeout_secs).map_err(|_| corrupt("timeout"))?,
            linked: r.linked,
            reference: r.reference,
            metadata: r.metadata,
            created_at: r.created_at,
            hash: r.hash.as_slice().try_into().map_err(|_| corrupt("hash"))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    id: Uuid,
    currency: String,
    kind: String,
    owner_type: String,
    owner_id: Option<String>,
    code: Option<String>,
    name: Option<String>,
    debits_must_not_exceed_credits: bool,
    credits_must_not_exceed_debits: bool,
    overdraft_limit: i64,
    status: String,
    debits_pending: i64,
    debits_posted: i64,
    credits_pending: i64,
    credits_posted: i64,
    created_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = LedgerError;
    fn try_from(r: AccountRow) -> Result<Self, LedgerError> {
        let corrupt = |what: &str| LedgerError::Corrupt(format!("account {}: bad {what}", r.id));
        Ok(Account {
            id: AccountId(r.id),
            currency: Currency::new(&r.currency).map_err(|_| corrupt("currency"))?,
            kind: AccountKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
            owner_type: OwnerType::parse(&r.owner_type).ok_or_else(|| corrupt("owner_type"))?,
            owner_id: r.owner_id,
            code: r.code,
            name: r.name,
            debits_must_not_exceed_credits: r.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits: r.credits_must_not_exceed_debits,
            overdraft_limit: r.overdraft_limit,
            status: AccountStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            balances: Balances {
                debits_pending: r.debits_pending,
                debits_posted: r.debits_posted,
                credits_pending: r.credits_pending,
                credits_posted: r.credits_posted,
            },
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct HeadRow {
    seq: i64,
    hash: Vec<u8>,
    created_at: i64,
}

impl TryFrom<HeadRow> for Head {
    type Error = LedgerError;
    fn try_from(r: HeadRow) -> Result<Self, LedgerError> {
        Ok(Head {
            seq: r.seq,
            hash: r.hash.as_slice().try_into().map_err(|_| LedgerError::Corrupt("journal head hash".into()))?,
            created_at: r.created_at,
        })
    }
}

pub(crate) fn convert_all<R, T: TryFrom<R, Error = LedgerError>>(rows: Vec<R>) -> Result<Vec<T>, LedgerError> {
    rows.into_iter().map(T::try_from).collect()
}

/// Validates an account-opening request and builds the account it creates.
pub(crate) fn new_account(request: &NewAccount, now: i64) -> Result<Account, LedgerError> {
    if request.overdraft_limit < 0 {
        return Err(LedgerError::InvalidAccount("overdraft_limit must not be negative".into()));
    }
    if request.debits_must_not_exceed_credits && request.credits_must_not_exceed_debits {
        return Err(LedgerError::InvalidAccount(
            "an account cannot forbid both debits exceeding credits and credits exceeding debits".into(),
        ));
    }
    if request.owner_type == OwnerType::Customer && request.owner_id.as_deref().is_none_or(str::is_empty) {
        return Err(LedgerError::InvalidAccount("customer accounts need an owner_id".into()));
    }
    for (field, value) in [("owner_id", &request.owner_id), ("code", &request.code), ("name", &request.name)] {
        if value.as_ref().is_some_and(|v| v.len() > 200) {
            return Err(LedgerError::InvalidAccount(format!("{field} is longer than 200 bytes")));
        }
    }
    Ok(Account {
        id: request.id.unwrap_or_default(),
        currency: request.currency,
        kind: request.kind,
        owner_type: request.owner_type,
        owner_id: request.owner_id.clone(),
        code: request.code.clone(),
        name: request.name.clone(),
        debits_must_not_exceed_credits: request.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits: request.credits_must_not_exceed_debits,
        overdraft_limit: request.overdraft_limit,
        status: AccountStatus::Open,
        balances: Balances::default(),
        created_at: now,
    })
}

/// Checks a status change against the account's state.
pub(crate) fn check_status_change(account: &Account, to: AccountStatus) -> Result<(), LedgerError> {
    let invalid = || LedgerError::InvalidStatusChange { id: account.id, from: account.status, to };
    match (account.status, to) {
        (AccountStatus::Closed, _) => Err(invalid()),
        (from, to) if from == to => Err(invalid()),
        (_, AccountStatus::Closed) if !account.balances.is_zero() => Err(LedgerError::NonZeroBalance(account.id)),
        _ => Ok(()),
    }
}
