//! The batch engine: pure logic that turns a batch of requests plus the state it touches into
//! per-transfer outcomes and the rows to write. No I/O happens here, which is what lets the
//! SQLite and PostgreSQL stores share it and lets property tests drive it directly.

use std::collections::{HashMap, HashSet};

use crate::journal::entry_hash;
use crate::types::{
    AccountId, AccountState, AccountStatus, Balances, HoldStatus, Transfer, TransferError, TransferId, TransferKind,
    TransferOutcome, TransferRequest,
};

/// Largest batch accepted in one call (TigerBeetle's figure, for the same reason: it keeps one
/// commit's work bounded).
pub const MAX_BATCH: usize = 8190;
pub const MAX_REFERENCE_BYTES: usize = 256;
pub const MAX_METADATA_BYTES: usize = 4096;

/// The last committed journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
    pub created_at: i64,
}

/// What the engine needs loaded from storage before it can plan a batch.
#[derive(Debug, Default)]
pub struct LoadedState {
    pub accounts: HashMap<AccountId, AccountState>,
    /// Stored transfers whose id equals a request id (idempotent replays or conflicts).
    pub existing: HashMap<TransferId, Transfer>,
    /// Stored transfers referenced as `pending_id`, with their hold status (`None` when the
    /// referenced transfer is not a pending transfer).
    pub pending: HashMap<TransferId, (Transfer, Option<HoldStatus>)>,
}

/// Rows to write for a batch, and the outcome of each request.
#[derive(Debug, Default)]
pub struct Plan {
    pub outcomes: Vec<TransferOutcome>,
    pub new_transfers: Vec<Transfer>,
    pub account_updates: Vec<(AccountId, Balances)>,
    /// New holds: (pending transfer id, expiry in micros).
    pub new_holds: Vec<(TransferId, Option<i64>)>,
    /// Holds resolved by this batch that existed before it.
    pub hold_updates: Vec<(TransferId, HoldStatus)>,
    pub head: Option<Head>,
}

impl Plan {
    pub fn writes_anything(&self) -> bool {
        !self.new_transfers.is_empty()
    }
}

/// The ids a batch needs loaded: request ids, referenced pending ids, named accounts.
pub fn ids_to_load(requests: &[TransferRequest]) -> (Vec<TransferId>, Vec<TransferId>, Vec<AccountId>) {
    let mut ids = Vec::with_capacity(requests.len());
    let mut pending = Vec::new();
    let mut accounts = HashSet::new();
    for r in requests {
        ids.push(r.id);
        if let Some(p) = r.pending_id {
            pending.push(p);
        }
        accounts.extend(r.debit_account_id);
        accounts.extend(r.credit_account_id);
    }
    (ids, pending, accounts.into_iter().collect())
}

/// Canonical JSON text: object keys sorted at every level, no whitespace. Used for metadata so
/// that a retry with the same content but another key order is still the same request.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&map[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Is `request` the same write as the committed `t` (so a retry returns `t`)?
pub fn request_matches(request: &TransferRequest, t: &Transfer) -> bool {
    let same_opt = |given: Option<AccountId>, stored: AccountId| given.is_none_or(|g| g == stored);
    let common = request.kind == t.kind
        && request.timeout_secs == t.timeout_secs
        && request.linked == t.linked
        && request.reference == t.reference
        && request.metadata.as_ref().map(canonical_json) == t.metadata;
    if !common {
        return false;
    }
    match request.kind {
        TransferKind::Posted | TransferKind::Pending => {
            request.debit_account_id == Some(t.debit_account_id)
                && request.credit_account_id == Some(t.credit_account_id)
                && request.amount == Some(t.amount)
                && request.currency == Some(t.currency)
                && t.pending_id.is_none()
        }
        _ => {
            request.pending_id == t.pending_id
                && same_opt(request.debit_account_id, t.debit_account_id)
                && same_opt(request.credit_account_id, t.credit_account_id)
                && request.currency.is_none_or(|c| c == t.currency)
                && request.amount.is_none_or(|a| a == t.amount)
        }
    }
}

enum Applied {
    Created(usize),
    Replayed(Transfer),
    ReplayedInBatch(usize),
}

enum Undo {
    Balances(AccountId, Balances),
    Hold(TransferId, Option<HoldStatus>),
    Created(TransferId),
}

struct Engine<'a> {
    state: &'a mut LoadedState,
    now: i64,
    allow_system: bool,
    created: Vec<Transfer>,
    created_index: HashMap<TransferId, usize>,
    /// Hold status changes made by this batch (overlay over `state.pending`).
    holds: HashMap<TransferId, HoldStatus>,
    touched: HashSet<AccountId>,
    undo: Vec<Undo>,
}

/// Plans a batch. `now` is the commit timestamp in micros (clamped so the journal's timestamps
/// never go backwards); `allow_system` admits `expire_pending` entries, which only the ledger's
/// own expiry sweep may write.
pub fn plan_batch(
    requests: &[TransferRequest],
    mut state: LoadedState,
    head: Head,
    now: i64,
    allow_system: bool,
) -> Plan {
    let now = now.max(head.created_at);
    let mut engine = Engine {
        state: &mut state,
        now,
        allow_system,
        created: Vec::new(),
        created_index: HashMap::new(),
        holds: HashMap::new(),
        touched: HashSet::new(),
        undo: Vec::new(),
    };
    let mut applied: Vec<Result<Applied, TransferError>> = Vec::with_capacity(requests.len());
    let mut start = 0;
    while start < requests.len() {
        let mut end = start;
        while requests[end].linked && end + 1 < requests.len() {
            end += 1;
        }
        if requests[end].linked {
            for i in start..=end {
                let code =
                    if i == end { TransferError::LinkedEventChainOpen } else { TransferError::LinkedEventFailed };
                applied.push(Err(code));
            }
            break;
        }
        let undo_mark = engine.undo.len();
        let created_mark = engine.created.len();
        let chain_first = applied.len();
        let mut failure = None;
        for (offset, request) in requests[start..=end].iter().enumerate() {
            match engine.apply(request) {
                Ok(applied_one) => applied.push(Ok(applied_one)),
                Err(code) => {
                    failure = Some((offset, code));
                    break;
                }
            }
        }
        if let Some((failed, code)) = failure {
            engine.rollback(undo_mark, created_mark);
            applied.truncate(chain_first);
            for offset in 0..=(end - start) {
                applied.push(Err(if offset == failed { code } else { TransferError::LinkedEventFailed }));
            }
        }
        start = end + 1;
    }

    // Assign journal positions and hashes in commit order.
    let mut prev_hash = head.hash;
    let mut seq = head.seq;
    for t in engine.created.iter_mut() {
        seq += 1;
        t.seq = seq;
        t.created_at = now;
        t.hash = entry_hash(&prev_hash, t);
        prev_hash = t.hash;
    }
    let new_head = (!engine.created.is_empty()).then_some(Head { seq, hash: prev_hash, created_at: now });

    let outcomes = applied
        .into_iter()
        .zip(requests)
        .map(|(result, request)| match result {
            Ok(Applied::Created(i)) => TransferOutcome::Created { transfer: engine.created[i].clone() },
            Ok(Applied::ReplayedInBatch(i)) => TransferOutcome::Replayed { transfer: engine.created[i].clone() },
            Ok(Applied::Replayed(t)) => TransferOutcome::Replayed { transfer: t },
            Err(code) => TransferOutcome::failed(request.id, code),
        })
        .collect();

    let mut new_holds = Vec::new();
    for t in &engine.created {
        if t.kind == TransferKind::Pending {
            let expires = (t.timeout_secs > 0).then(|| t.created_at + i64::from(t.timeout_secs) * 1_000_000);
            new_holds.push((t.id, expires));
        }
    }
    // Stores insert `new_holds` as pending first, then apply these, so a hold created and
    // resolved in the same batch ends with its final status.
    let mut hold_updates: Vec<(TransferId, HoldStatus)> =
        engine.holds.iter().filter(|(_, s)| **s != HoldStatus::Pending).map(|(k, v)| (*k, *v)).collect();
    hold_updates.sort_by_key(|(id, _)| *id);
    let mut touched: Vec<AccountId> = engine.touched.iter().copied().collect();
    touched.sort();
    let account_updates = touched.into_iter().map(|id| (id, engine.state.accounts[&id].balances)).collect();
    Plan {
        outcomes,
        new_transfers: std::mem::take(&mut engine.created),
        account_updates,
        new_holds,
        hold_updates,
        head: new_head,
    }
}

impl Engine<'_> {
    fn rollback(&mut self, undo_mark: usize, created_mark: usize) {
        while self.undo.len() > undo_mark {
            match self.undo.pop().expect("length checked") {
                Undo::Balances(id, old) => {
                    self.state.accounts.get_mut(&id).expect("undo of a loaded account").balances = old;
                }
                Undo::Hold(id, old) => match old {
                    Some(status) => {
                        self.holds.insert(id, status);
                    }
                    None => {
                        self.holds.remove(&id);
                    }
                },
                Undo::Created(id) => {
                    self.created_index.remove(&id);
                }
            }
        }
        self.created.truncate(created_mark);
    }

    fn apply(&mut self, r: &TransferRequest) -> Result<Applied, TransferError> {
        if r.reference.as_ref().is_some_and(|s| s.len() > MAX_REFERENCE_BYTES) {
            return Err(TransferError::ReferenceTooLong);
        }
        let metadata = r.metadata.as_ref().map(canonical_json);
        if metadata.as_ref().is_some_and(|m| m.len() > MAX_METADATA_BYTES) {
            return Err(TransferError::MetadataTooLarge);
        }
        if let Some(existing) = self.state.existing.get(&r.id) {
            return if request_matches(r, existing) {
                Ok(Applied::Replayed(existing.clone()))
            } else {
                Err(TransferError::IdempotencyConflict)
            };
        }
        if let Some(&i) = self.created_index.get(&r.id) {
            return if request_matches(r, &self.created[i]) {
                Ok(Applied::ReplayedInBatch(i))
            } else {
                Err(TransferError::IdempotencyConflict)
            };
        }
        let transfer = match r.kind {
            TransferKind::Posted | TransferKind::Pending => self.apply_new(r, metadata)?,
            TransferKind::PostPending | TransferKind::VoidPending => self.apply_resolution(r, metadata)?,
            TransferKind::ExpirePending if self.allow_system => self.apply_resolution(r, metadata)?,
            TransferKind::ExpirePending => return Err(TransferError::KindNotSubmittable),
        };
        let index = self.created.len();
        self.created_index.insert(transfer.id, index);
        self.undo.push(Undo::Created(transfer.id));
        if transfer.kind == TransferKind::Pending {
            self.set_hold(transfer.id, HoldStatus::Pending);
        }
        self.created.push(transfer);
        Ok(Applied::Created(index))
    }

    fn apply_new(&mut self, r: &TransferRequest, metadata: Option<String>) -> Result<Transfer, TransferError> {
        let debit_id = r.debit_account_id.ok_or(TransferError::DebitAccountRequired)?;
        let credit_id = r.credit_account_id.ok_or(TransferError::CreditAccountRequired)?;
        let amount = r.amount.ok_or(TransferError::AmountMustBePositive)?;
        let currency = r.currency.ok_or(TransferError::CurrencyRequired)?;
        if r.pending_id.is_some() {
            return Err(TransferError::PendingIdNotAllowed);
        }
        if r.kind == TransferKind::Posted && r.timeout_secs != 0 {
            return Err(TransferError::TimeoutNotAllowed);
        }
        if amount <= 0 {
            return Err(TransferError::AmountMustBePositive);
        }
        if debit_id == credit_id {
            return Err(TransferError::AccountsMustBeDifferent);
        }
        let debit = self.state.accounts.get(&debit_id).ok_or(TransferError::DebitAccountNotFound)?;
        let credit = self.state.accounts.get(&credit_id).ok_or(TransferError::CreditAccountNotFound)?;
        if debit.currency != currency || credit.currency != currency {
            return Err(TransferError::CurrencyMismatch);
        }
        match debit.status {
            AccountStatus::Closed => return Err(TransferError::DebitAccountClosed),
            AccountStatus::Frozen => return Err(TransferError::DebitAccountFrozen),
            AccountStatus::Open => {}
        }
        if credit.status == AccountStatus::Closed {
            return Err(TransferError::CreditAccountClosed);
        }
        let pending = r.kind == TransferKind::Pending;
        let mut new_debit = debit.balances;
        let mut new_credit = credit.balances;
        if pending {
            new_debit.debits_pending = checked(new_debit.debits_pending, amount)?;
            new_credit.credits_pending = checked(new_credit.credits_pending, amount)?;
        } else {
            new_debit.debits_posted = checked(new_debit.debits_posted, amount)?;
            new_credit.credits_posted = checked(new_credit.credits_posted, amount)?;
        }
        check_debit_limit(debit, &new_debit)?;
        check_credit_limit(credit, &new_credit)?;
        self.set_balances(debit_id, new_debit);
        self.set_balances(credit_id, new_credit);
        Ok(Transfer {
            seq: 0,
            id: r.id,
            kind: r.kind,
            debit_account_id: debit_id,
            credit_account_id: credit_id,
            amount,
            currency,
            pending_id: None,
            timeout_secs: r.timeout_secs,
            linked: r.linked,
            reference: r.reference.clone(),
            metadata,
            created_at: self.now,
            hash: [0; 32],
        })
    }

    fn apply_resolution(&mut self, r: &TransferRequest, metadata: Option<String>) -> Result<Transfer, TransferError> {
        let pending_id = r.pending_id.ok_or(TransferError::PendingIdRequired)?;
        if r.timeout_secs != 0 {
            return Err(TransferError::TimeoutNotAllowed);
        }
        let (pending, stored_status) = if let Some(&i) = self.created_index.get(&pending_id) {
            let t = self.created[i].clone();
            let status = (t.kind == TransferKind::Pending).then_some(HoldStatus::Pending);
            (t, status)
        } else if let Some((t, status)) = self.state.pending.get(&pending_id) {
            (t.clone(), *status)
        } else {
            return Err(TransferError::PendingTransferNotFound);
        };
        if pending.kind != TransferKind::Pending || stored_status.is_none() {
            return Err(TransferError::PendingTransferNotPending);
        }
        let status = self.holds.get(&pending_id).copied().or(stored_status);
        match status {
            Some(HoldStatus::Posted) => return Err(TransferError::PendingTransferAlreadyPosted),
            Some(HoldStatus::Voided) => return Err(TransferError::PendingTransferAlreadyVoided),
            Some(HoldStatus::Expired) => return Err(TransferError::PendingTransferExpired),
            _ => {}
        }
        let expires_at =
            (pending.timeout_secs > 0).then(|| pending.created_at + i64::from(pending.timeout_secs) * 1_000_000);
        let due = expires_at.is_some_and(|at| self.now >= at);
        if r.kind == TransferKind::ExpirePending {
            if !due {
                return Err(TransferError::PendingTransferNotPending);
            }
        } else if due {
            return Err(TransferError::PendingTransferExpired);
        }
        if r.debit_account_id.is_some_and(|d| d != pending.debit_account_id)
            || r.credit_account_id.is_some_and(|c| c != pending.credit_account_id)
            || r.currency.is_some_and(|c| c != pending.currency)
        {
            return Err(TransferError::PendingTransferMismatch);
        }
        let amount = match (r.kind, r.amount) {
            (TransferKind::PostPending, Some(a)) if a <= 0 => return Err(TransferError::AmountMustBePositive),
            (TransferKind::PostPending, Some(a)) if a > pending.amount => {
                return Err(TransferError::ExceedsPendingAmount)
            }
            (TransferKind::PostPending, Some(a)) => a,
            (_, None) => pending.amount,
            (_, Some(a)) if a == pending.amount => a,
            (_, Some(_)) => return Err(TransferError::PendingTransferMismatch),
        };
        let debit = self.state.accounts.get(&pending.debit_account_id).ok_or(TransferError::DebitAccountNotFound)?;
        let credit = self.state.accounts.get(&pending.credit_account_id).ok_or(TransferError::CreditAccountNotFound)?;
        if r.kind == TransferKind::PostPending {
            match debit.status {
                AccountStatus::Closed => return Err(TransferError::DebitAccountClosed),
                AccountStatus::Frozen => return Err(TransferError::DebitAccountFrozen),
                AccountStatus::Open => {}
            }
            if credit.status == AccountStatus::Closed {
                return Err(TransferError::CreditAccountClosed);
            }
        }
        let mut new_debit = debit.balances;
        let mut new_credit = credit.balances;
        new_debit.debits_pending = checked(new_debit.debits_pending, -pending.amount)?;
        new_credit.credits_pending = checked(new_credit.credits_pending, -pending.amount)?;
        if r.kind == TransferKind::PostPending {
            new_debit.debits_posted = checked(new_debit.debits_posted, amount)?;
            new_credit.credits_posted = checked(new_credit.credits_posted, amount)?;
        }
        let (debit_id, credit_id) = (debit.id, credit.id);
        self.set_balances(debit_id, new_debit);
        self.set_balances(credit_id, new_credit);
        self.set_hold(
            pending_id,
            match r.kind {
                TransferKind::PostPending => HoldStatus::Posted,
                TransferKind::VoidPending => HoldStatus::Voided,
                _ => HoldStatus::Expired,
            },
        );
        Ok(Transfer {
            seq: 0,
            id: r.id,
            kind: r.kind,
            debit_account_id: debit_id,
            credit_account_id: credit_id,
            amount,
            currency: pending.currency,
            pending_id: Some(pending_id),
            timeout_secs: 0,
            linked: r.linked,
            reference: r.reference.clone(),
            metadata,
            created_at: self.now,
            hash: [0; 32],
        })
    }

    fn set_balances(&mut self, id: AccountId, balances: Balances) {
        let account = self.state.accounts.get_mut(&id).expect("account loaded");
        self.undo.push(Undo::Balances(id, account.balances));
        account.balances = balances;
        self.touched.insert(id);
    }

    fn set_hold(&mut self, id: TransferId, status: HoldStatus) {
        let old = self.holds.insert(id, status);
        self.undo.push(Undo::Hold(id, old));
    }
}

fn checked(value: i64, delta: i64) -> Result<i64, TransferError> {
    value.checked_add(delta).ok_or(TransferError::Overflow)
}

/// Limits apply to the side a transfer increases; a credit to an overdrawn-by-rule account is
/// always allowed, because it only moves the account toward its limit.
fn check_debit_limit(account: &AccountState, new: &Balances) -> Result<(), TransferError> {
    if account.debits_must_not_exceed_credits {
        let debits = new.debits_posted as i128 + new.debits_pending as i128;
        let limit = new.credits_posted as i128 + account.overdraft_limit as i128;
        if debits > limit {
            return Err(TransferError::InsufficientFunds);
        }
    }
    Ok(())
}

fn check_credit_limit(account: &AccountState, new: &Balances) -> Result<(), TransferError> {
    if account.credits_must_not_exceed_debits {
        let credits = new.credits_posted as i128 + new.credits_pending as i128;
        if credits > new.debits_posted as i128 {
            return Err(TransferError::ExceedsDebits);
        }
    }
    Ok(())
}
