//! Accounts, transfers and their outcomes: the ledger's public vocabulary.

use std::fmt;

use money::Currency;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Identifies an account. UUID v7 when the ledger makes one (sortable by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct AccountId(pub Uuid);

/// Identifies a transfer. Chosen by the client: it is the idempotency key of the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct TransferId(pub Uuid);

impl AccountId {
    pub fn new() -> Self {
        AccountId(Uuid::now_v7())
    }
}

impl Default for AccountId {
    fn default() -> Self {
        Self::new()
    }
}

impl TransferId {
    pub fn new() -> Self {
        TransferId(Uuid::now_v7())
    }
}

impl Default for TransferId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// The accounting class of an account, which fixes its normal balance side.
    AccountKind {
        Asset => "asset",
        Liability => "liability",
        Equity => "equity",
        Income => "income",
        Expense => "expense",
    }
}

text_enum! {
    /// Who owns an account: a customer (deposits, loans) or the bank itself (general ledger).
    OwnerType {
        Customer => "customer",
        Bank => "bank",
    }
}

text_enum! {
    /// Lifecycle of an account. Frozen accounts accept credits but no debits (a judicial or
    /// risk freeze stops money leaving); closed accounts accept nothing.
    AccountStatus {
        Open => "open",
        Frozen => "frozen",
        Closed => "closed",
    }
}

text_enum! {
    /// What a journal entry does.
    TransferKind {
        /// A single-phase transfer, posted at once.
        Posted => "posted",
        /// The first phase of a two-phase transfer: a hold on funds.
        Pending => "pending",
        /// Second phase: posts all or part of a pending transfer; the rest is released.
        PostPending => "post_pending",
        /// Second phase: releases a pending transfer in full.
        VoidPending => "void_pending",
        /// Written by the ledger when a pending transfer outlives its timeout.
        ExpirePending => "expire_pending",
    }
}

text_enum! {
    /// State of a two-phase hold.
    HoldStatus {
        Pending => "pending",
        Posted => "posted",
        Voided => "voided",
        Expired => "expired",
    }
}

impl AccountKind {
    /// Asset and expense accounts carry debit balances; the others carry credit balances.
    pub fn is_debit_normal(&self) -> bool {
        matches!(self, AccountKind::Asset | AccountKind::Expense)
    }
}

/// A request to open an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Optional client-chosen id; opening the same id twice with the same content is idempotent.
    #[serde(default)]
    pub id: Option<AccountId>,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub kind: AccountKind,
    pub owner_type: OwnerType,
    /// The customer id for customer accounts; empty for bank accounts.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Chart-of-accounts code or product code, e.g. "deposit.current" or "gl.cash".
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Debits (posted + pending) may not exceed posted credits plus `overdraft_limit`.
    #[serde(default)]
    pub debits_must_not_exceed_credits: bool,
    /// Credits (posted + pending) may not exceed posted debits.
    #[serde(default)]
    pub credits_must_not_exceed_debits: bool,
    /// In minor units; only meaningful with `debits_must_not_exceed_credits`.
    #[serde(default)]
    pub overdraft_limit: i64,
}

/// An account with its running balances (integer minor units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: AccountId,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub kind: AccountKind,
    pub owner_type: OwnerType,
    pub owner_id: Option<String>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub overdraft_limit: i64,
    pub status: AccountStatus,
    pub balances: Balances,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
}

/// The four running totals TigerBeetle-style ledgers keep per account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Balances {
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
}

/// What the batch engine needs of an account: everything but its descriptive text, so it is
/// `Copy` and a batch touching thousands of accounts allocates nothing for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub id: AccountId,
    pub currency: Currency,
    pub status: AccountStatus,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub overdraft_limit: i64,
    pub balances: Balances,
}

impl Account {
    pub fn state(&self) -> AccountState {
        AccountState {
            id: self.id,
            currency: self.currency,
            status: self.status,
            debits_must_not_exceed_credits: self.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits: self.credits_must_not_exceed_debits,
            overdraft_limit: self.overdraft_limit,
            balances: self.balances,
        }
    }

    /// Does the opening request describe this account (for idempotent re-opening)?
    pub fn matches(&self, request: &NewAccount) -> bool {
        self.currency == request.currency
            && self.kind == request.kind
            && self.owner_type == request.owner_type
            && self.owner_id == request.owner_id
            && self.code == request.code
            && self.name == request.name
            && self.debits_must_not_exceed_credits == request.debits_must_not_exceed_credits
            && self.credits_must_not_exceed_debits == request.credits_must_not_exceed_debits
            && self.overdraft_limit == request.overdraft_limit
    }

    /// Posted balance on the account's normal side (positive for a funded deposit account).
    pub fn posted_balance(&self) -> i128 {
        self.balances.net_posted(self.kind)
    }
}

impl Balances {
    pub fn net_posted(&self, kind: AccountKind) -> i128 {
        let (d, c) = (self.debits_posted as i128, self.credits_posted as i128);
        if kind.is_debit_normal() {
            d - c
        } else {
            c - d
        }
    }

    /// Posted balance minus holds that would reduce it: what the owner can still spend.
    pub fn available(&self, kind: AccountKind) -> i128 {
        if kind.is_debit_normal() {
            self.net_posted(kind) - self.credits_pending as i128
        } else {
            self.net_posted(kind) - self.debits_pending as i128
        }
    }

    pub fn is_zero(&self) -> bool {
        self.debits_posted == self.credits_posted && self.debits_pending == 0 && self.credits_pending == 0
    }
}

/// A balance-changing request: one element of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// Client-chosen id: the idempotency key. Retrying with the same id and content returns the
    /// first result; the same id with other content is rejected.
    pub id: TransferId,
    #[serde(default = "default_kind")]
    pub kind: TransferKind,
    /// Required for `posted` and `pending`; for `post_pending`/`void_pending` it defaults to the
    /// pending transfer's and must match it when given.
    #[serde(default)]
    pub debit_account_id: Option<AccountId>,
    #[serde(default)]
    pub credit_account_id: Option<AccountId>,
    /// Minor units. For `post_pending`, omit to post the full pending amount.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "CNY")]
    pub currency: Option<Currency>,
    /// The pending transfer that a `post_pending`/`void_pending` resolves.
    #[serde(default)]
    pub pending_id: Option<TransferId>,
    /// Seconds after which a `pending` transfer expires and its hold is released (0 = never).
    #[serde(default)]
    pub timeout_secs: u32,
    /// Links this transfer to the next one in the batch: the chain succeeds or fails as a whole.
    #[serde(default)]
    pub linked: bool,
    #[serde(default)]
    pub reference: Option<String>,
    /// Free-form JSON stored with the entry (channel, merchant, narrative...).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

fn default_kind() -> TransferKind {
    TransferKind::Posted
}

impl TransferRequest {
    /// A single-phase transfer.
    pub fn posted(id: TransferId, debit: AccountId, credit: AccountId, amount: i64, currency: Currency) -> Self {
        TransferRequest {
            id,
            kind: TransferKind::Posted,
            debit_account_id: Some(debit),
            credit_account_id: Some(credit),
            amount: Some(amount),
            currency: Some(currency),
            pending_id: None,
            timeout_secs: 0,
            linked: false,
            reference: None,
            metadata: None,
        }
    }

    /// The first phase of a two-phase transfer.
    pub fn pending(id: TransferId, debit: AccountId, credit: AccountId, amount: i64, currency: Currency) -> Self {
        TransferRequest { kind: TransferKind::Pending, ..Self::posted(id, debit, credit, amount, currency) }
    }

    /// Posts `amount` (or all, when `None`) of a pending transfer.
    pub fn post(id: TransferId, pending_id: TransferId, amount: Option<i64>) -> Self {
        TransferRequest {
            id,
            kind: TransferKind::PostPending,
            debit_account_id: None,
            credit_account_id: None,
            amount,
            currency: None,
            pending_id: Some(pending_id),
            timeout_secs: 0,
            linked: false,
            reference: None,
            metadata: None,
        }
    }

    /// Voids a pending transfer.
    pub fn void(id: TransferId, pending_id: TransferId) -> Self {
        TransferRequest { kind: TransferKind::VoidPending, ..Self::post(id, pending_id, None) }
    }

    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    pub fn linked(mut self) -> Self {
        self.linked = true;
        self
    }

    pub fn with_timeout(mut self, secs: u32) -> Self {
        self.timeout_secs = secs;
        self
    }
}

/// A committed journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transfer {
    /// Position in the journal (1, 2, 3...).
    pub seq: i64,
    pub id: TransferId,
    pub kind: TransferKind,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    /// Minor units. For `post_pending` the posted amount; for `void_pending`/`expire_pending`
    /// the released amount.
    pub amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub pending_id: Option<TransferId>,
    pub timeout_secs: u32,
    pub linked: bool,
    pub reference: Option<String>,
    /// Canonical JSON text of the request's metadata.
    pub metadata: Option<String>,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
    /// SHA-256 over this entry's content and the previous entry's hash (hex).
    #[serde(with = "hex_hash")]
    #[schema(value_type = String)]
    pub hash: [u8; 32],
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        bytes.try_into().map_err(|_| serde::de::Error::custom("hash must be 32 bytes"))
    }
}

/// Why a transfer in a batch was not applied. Each has a stable snake_case code for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum TransferError {
    #[error("another transfer in this linked chain failed")]
    LinkedEventFailed,
    #[error("the batch ends inside a linked chain (the last transfer has linked=true)")]
    LinkedEventChainOpen,
    #[error("a transfer with this id exists with different content")]
    IdempotencyConflict,
    #[error("amount must be a positive number of minor units")]
    AmountMustBePositive,
    #[error("debit and credit accounts must be different")]
    AccountsMustBeDifferent,
    #[error("debit_account_id is required")]
    DebitAccountRequired,
    #[error("credit_account_id is required")]
    CreditAccountRequired,
    #[error("currency is required")]
    CurrencyRequired,
    #[error("debit account not found")]
    DebitAccountNotFound,
    #[error("credit account not found")]
    CreditAccountNotFound,
    #[error("transfer currency differs from the accounts' currency")]
    CurrencyMismatch,
    #[error("debit account is closed")]
    DebitAccountClosed,
    #[error("credit account is closed")]
    CreditAccountClosed,
    #[error("debit account is frozen")]
    DebitAccountFrozen,
    #[error("insufficient funds: debits would exceed credits plus overdraft limit")]
    InsufficientFunds,
    #[error("credits would exceed debits on an account that forbids it")]
    ExceedsDebits,
    #[error("the balance would overflow")]
    Overflow,
    #[error("pending_id is required for post_pending and void_pending")]
    PendingIdRequired,
    #[error("pending_id is only allowed on post_pending and void_pending")]
    PendingIdNotAllowed,
    #[error("timeout_secs is only allowed on pending transfers")]
    TimeoutNotAllowed,
    #[error("expire_pending entries are written by the ledger, not submitted")]
    KindNotSubmittable,
    #[error("pending transfer not found")]
    PendingTransferNotFound,
    #[error("the referenced transfer is not a pending transfer")]
    PendingTransferNotPending,
    #[error("pending transfer was already posted")]
    PendingTransferAlreadyPosted,
    #[error("pending transfer was already voided")]
    PendingTransferAlreadyVoided,
    #[error("pending transfer has expired")]
    PendingTransferExpired,
    #[error("amount exceeds the pending amount")]
    ExceedsPendingAmount,
    #[error("accounts, amount or currency differ from the pending transfer")]
    PendingTransferMismatch,
    #[error("reference is longer than 256 bytes")]
    ReferenceTooLong,
    #[error("metadata is larger than 4096 bytes")]
    MetadataTooLarge,
}

impl TransferError {
    pub fn code(&self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
}

/// The result of one transfer in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TransferOutcome {
    /// Committed by this call.
    Created { transfer: Transfer },
    /// Committed by an earlier call with the same id and content; nothing was written now.
    Replayed { transfer: Transfer },
    /// Not applied.
    Failed { id: TransferId, code: TransferError, message: String },
}

impl TransferOutcome {
    pub fn transfer(&self) -> Option<&Transfer> {
        match self {
            TransferOutcome::Created { transfer } | TransferOutcome::Replayed { transfer } => Some(transfer),
            TransferOutcome::Failed { .. } => None,
        }
    }

    pub fn error(&self) -> Option<TransferError> {
        match self {
            TransferOutcome::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn failed(id: TransferId, code: TransferError) -> Self {
        TransferOutcome::Failed { id, code, message: code.to_string() }
    }
}

/// One line of an account statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Entry {
    pub seq: i64,
    pub transfer_id: TransferId,
    pub kind: TransferKind,
    /// `debit` or `credit`, from this account's point of view.
    pub side: EntrySide,
    pub amount: i64,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub counterparty_account_id: AccountId,
    pub pending_id: Option<TransferId>,
    pub reference: Option<String>,
    pub metadata: Option<String>,
    pub created_at: i64,
}

text_enum! {
    /// Side of an entry from the account's point of view.
    EntrySide {
        Debit => "debit",
        Credit => "credit",
    }
}

/// A balance as of a point in time, re-derived from the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceView {
    pub account_id: AccountId,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Microseconds since the Unix epoch; `None` means "now".
    pub as_of: Option<i64>,
    #[serde(flatten)]
    pub balances: Balances,
    /// Posted balance on the account's normal side.
    pub posted: i64,
    /// Posted balance less holds that reduce it.
    pub available: i64,
}

impl BalanceView {
    pub fn new(account: &Account, balances: Balances, as_of: Option<i64>) -> Self {
        BalanceView {
            account_id: account.id,
            currency: account.currency,
            as_of,
            balances,
            posted: clamp(balances.net_posted(account.kind)),
            available: clamp(balances.available(account.kind)),
        }
    }
}

fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}
