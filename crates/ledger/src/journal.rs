//! The tamper-evident journal: how an entry is hashed, and how the whole journal is re-checked.
//!
//! Each entry's hash is `SHA-256(previous hash || canonical encoding of the entry)`, with 32 zero
//! bytes before the first entry. Changing, removing or reordering any committed entry changes
//! every hash after it, so [`Verifier`] names the first entry that no longer matches.

use std::collections::{BTreeMap, HashMap};

use money::Currency;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::types::{Account, AccountId, Balances, Transfer, TransferId, TransferKind};

/// The hash before the first entry.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// SHA-256 over the previous hash and this entry's content (everything but `hash` itself).
pub fn entry_hash(prev: &[u8; 32], t: &Transfer) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(t.seq.to_be_bytes());
    h.update(t.id.0.as_bytes());
    h.update([kind_tag(t.kind)]);
    h.update(t.debit_account_id.0.as_bytes());
    h.update(t.credit_account_id.0.as_bytes());
    h.update(t.amount.to_be_bytes());
    h.update(t.currency.code().as_bytes());
    match t.pending_id {
        Some(p) => {
            h.update([1]);
            h.update(p.0.as_bytes());
        }
        None => h.update([0]),
    }
    h.update(t.timeout_secs.to_be_bytes());
    h.update([u8::from(t.linked)]);
    hash_optional_text(&mut h, t.reference.as_deref());
    hash_optional_text(&mut h, t.metadata.as_deref());
    h.update(t.created_at.to_be_bytes());
    h.finalize().into()
}

fn hash_optional_text(h: &mut Sha256, text: Option<&str>) {
    match text {
        Some(s) => {
            h.update([1]);
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        None => h.update([0]),
    }
}

fn kind_tag(kind: TransferKind) -> u8 {
    match kind {
        TransferKind::Posted => 1,
        TransferKind::Pending => 2,
        TransferKind::PostPending => 3,
        TransferKind::VoidPending => 4,
        TransferKind::ExpirePending => 5,
    }
}

/// Replays journal entries onto balances. Shared by verification and balance-as-of so that
/// there is exactly one definition of what an entry does to an account.
#[derive(Debug, Default)]
pub struct BalanceReplay {
    pub balances: HashMap<AccountId, Balances>,
    pending_amounts: HashMap<TransferId, i64>,
}

impl BalanceReplay {
    /// Applies one entry. Fails (with a description) when the entry refers to an unknown
    /// pending transfer or a total overflows, which only a damaged journal can cause.
    pub fn apply(&mut self, t: &Transfer) -> Result<(), String> {
        let amount = t.amount;
        match t.kind {
            TransferKind::Posted => {
                self.add(t.debit_account_id, |b| (&mut b.debits_posted, amount))?;
                self.add(t.credit_account_id, |b| (&mut b.credits_posted, amount))?;
            }
            TransferKind::Pending => {
                self.pending_amounts.insert(t.id, amount);
                self.add(t.debit_account_id, |b| (&mut b.debits_pending, amount))?;
                self.add(t.credit_account_id, |b| (&mut b.credits_pending, amount))?;
            }
            TransferKind::PostPending | TransferKind::VoidPending | TransferKind::ExpirePending => {
                let pending_id = t.pending_id.ok_or("resolution entry without pending_id")?;
                let held = self
                    .pending_amounts
                    .remove(&pending_id)
                    .ok_or_else(|| format!("resolves unknown or already resolved pending transfer {pending_id}"))?;
                self.add(t.debit_account_id, |b| (&mut b.debits_pending, -held))?;
                self.add(t.credit_account_id, |b| (&mut b.credits_pending, -held))?;
                if t.kind == TransferKind::PostPending {
                    self.add(t.debit_account_id, |b| (&mut b.debits_posted, amount))?;
                    self.add(t.credit_account_id, |b| (&mut b.credits_posted, amount))?;
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, account: AccountId, field: impl FnOnce(&mut Balances) -> (&mut i64, i64)) -> Result<(), String> {
        let balances = self.balances.entry(account).or_default();
        let (slot, delta) = field(balances);
        *slot = slot.checked_add(delta).ok_or("balance overflow")?;
        Ok(())
    }
}

/// One finding of a verification run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The stored hash of this entry does not match its content and predecessor.
    HashMismatch { seq: i64, transfer_id: TransferId },
    /// Sequence numbers are not contiguous (an entry was removed or inserted).
    SequenceGap { expected: i64, found: i64 },
    /// The entry cannot be replayed (e.g. it resolves an unknown hold).
    BadEntry { seq: i64, transfer_id: TransferId, reason: String },
    /// The stored balances of an account differ from those re-derived from the journal.
    BalanceMismatch { account_id: AccountId, stored: Balances, derived: Balances },
    /// An account appears in the journal but not in the accounts table.
    UnknownAccount { account_id: AccountId },
    /// Total debits differ from total credits for a currency.
    Unbalanced { currency: Currency, debits: i128, credits: i128 },
    /// The journal head does not point at the last entry.
    HeadMismatch { head_seq: i64, last_seq: i64 },
}

/// The result of `digibank verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub accounts: u64,
    pub last_seq: i64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Streams the journal in seq order, checking the chain and re-deriving balances.
#[derive(Debug)]
pub struct Verifier {
    prev_hash: [u8; 32],
    next_seq: i64,
    entries: u64,
    replay: BalanceReplay,
    problems: Vec<Problem>,
    chain_broken: bool,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            prev_hash: GENESIS_HASH,
            next_seq: 1,
            entries: 0,
            replay: BalanceReplay::default(),
            problems: Vec::new(),
            chain_broken: false,
        }
    }
}

impl Verifier {
    pub fn feed(&mut self, t: &Transfer) {
        self.entries += 1;
        if t.seq != self.next_seq {
            self.problems.push(Problem::SequenceGap { expected: self.next_seq, found: t.seq });
        }
        self.next_seq = t.seq + 1;
        // After the first break every later hash differs too; report only the first, which is
        // the entry that was tampered with (or the first one after a removed entry).
        if !self.chain_broken && entry_hash(&self.prev_hash, t) != t.hash {
            self.problems.push(Problem::HashMismatch { seq: t.seq, transfer_id: t.id });
            self.chain_broken = true;
        }
        self.prev_hash = t.hash;
        if let Err(reason) = self.replay.apply(t) {
            self.problems.push(Problem::BadEntry { seq: t.seq, transfer_id: t.id, reason });
        }
    }

    /// Compares the re-derived balances with the stored accounts and the journal head.
    pub fn finish(mut self, accounts: &[Account], head_seq: i64) -> VerifyReport {
        let last_seq = self.next_seq - 1;
        if head_seq != last_seq {
            self.problems.push(Problem::HeadMismatch { head_seq, last_seq });
        }
        let mut totals: BTreeMap<Currency, (i128, i128)> = BTreeMap::new();
        let by_id: HashMap<AccountId, &Account> = accounts.iter().map(|a| (a.id, a)).collect();
        for account in accounts {
            let derived = self.replay.balances.get(&account.id).copied().unwrap_or_default();
            if derived != account.balances {
                self.problems.push(Problem::BalanceMismatch {
                    account_id: account.id,
                    stored: account.balances,
                    derived,
                });
            }
            let total = totals.entry(account.currency).or_default();
            total.0 += account.balances.debits_posted as i128;
            total.1 += account.balances.credits_posted as i128;
        }
        let mut unknown: Vec<AccountId> =
            self.replay.balances.keys().filter(|id| !by_id.contains_key(id)).copied().collect();
        unknown.sort();
        self.problems.extend(unknown.into_iter().map(|account_id| Problem::UnknownAccount { account_id }));
        for (currency, (debits, credits)) in totals {
            if debits != credits {
                self.problems.push(Problem::Unbalanced { currency, debits, credits });
            }
        }
        VerifyReport { entries: self.entries, accounts: accounts.len() as u64, last_seq, problems: self.problems }
    }
}
