//! The inputs and outputs of the lending operations.

use super::*;

/// Input of [`LendingService::apply`]: a loan application.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(description = "A loan application.")]
#[serde(deny_unknown_fields)]
pub struct ApplyInput {
    /// Customer id or ID number (1..100 characters): the key under which the applicant's
    /// external data (bureau, social security, tax, ...) is looked up.
    #[schema(example = "C-1001")]
    pub applicant_id: String,
    /// A product of `GET /v1/lending/products`: `instant_consumer`, `tax_sme` or `supply_chain`.
    #[schema(example = "instant_consumer")]
    pub product_code: String,
    /// `individual`, `sole_proprietor`, `sme` or `core_enterprise`. Defaults to `individual` for
    /// the consumer product and `sme` for the others.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "individual")]
    pub kind: Option<CustomerKind>,
    /// Requested amount in minor units (for the fraud check; the decision sets the limit).
    /// Defaults to the product maximum.
    #[serde(default)]
    #[schema(example = 5000000)]
    pub amount: Option<i64>,
    /// The channel the application came through: `web` (default), `mobile`, `branch`, `atm`,
    /// `pos`, `open_banking` or `call_center`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "mobile")]
    pub channel: Option<risk::Channel>,
    /// Device fingerprint, IP and phone, when the channel has them: the fraud check links the
    /// applicant to them in the relationship graph.
    #[serde(default)]
    #[schema(example = "dev-7f3a9c")]
    pub device_fingerprint: Option<String>,
    /// IPv4 or IPv6 address.
    #[serde(default)]
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    #[serde(default)]
    #[schema(example = "+8613812345678")]
    pub phone: Option<String>,
    /// The applicant's ID number when it is not the applicant id itself.
    #[serde(default)]
    #[schema(example = "11010519491231002X")]
    pub id_number: Option<String>,
}

/// Input of [`LendingService::accept`]: the terms the customer accepts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(description = "The terms the customer accepts.")]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    /// Principal (installment loans) or line amount (revolving) in minor units: at least the
    /// product minimum, at most the offer's limit.
    #[schema(example = 5000000)]
    pub amount: i64,
    /// Defaults to the offer's currency.
    #[serde(default)]
    pub currency: Option<Currency>,
    /// One of the offer's `terms_months`.
    #[schema(example = 12)]
    pub term_months: u32,
    /// One of the offer's `methods`.
    pub method: RepaymentMethod,
    /// The borrower's deposit account: receives the disbursement, pays the fee and repayments.
    pub deposit_account_id: AccountId,
    /// Defaults to today.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
}

/// Contract, loan and the disbursement transfers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AcceptOutcome {
    pub contract: Contract,
    pub loan: Loan,
    pub transfers: Vec<ledger::TransferId>,
    /// False when this acceptance had already been processed (the stored loan is returned).
    pub created: bool,
}

/// Result of a loan operation (repayment, draw, prepayment).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationOutcome {
    /// The loan after the operation.
    pub loan: Loan,
    /// The business date the operation was booked on.
    pub date: NaiveDate,
    /// Repayments and prepayments: how the payment was split by the waterfall (absent for draws).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation: Option<lending::Allocation>,
    /// The postings of the operation, including the end-of-day catch-up accruals before it.
    pub postings: Vec<Posting>,
    pub transfers: Vec<ledger::TransferId>,
}

/// Loan, schedule, ledger balances and alerts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoanView {
    pub loan: Loan,
    pub applicant_id: String,
    /// Delinquency bucket by days past due: `current`, `m1` (1-30), `m2` (31-60) or `m3_plus`.
    #[schema(value_type = String, example = "current")]
    pub bucket: &'static str,
    pub schedule: Vec<Installment>,
    pub customer_account: AccountId,
    pub repayment_account: AccountId,
    /// Posted balance of each of the loan's ledger accounts.
    pub ledger: LedgerBalances,
    /// True when the loan's principal, interest, penalty and fee balances equal its ledger accounts.
    pub reconciled: bool,
    pub alerts: Vec<Alert>,
}

/// Posted balances of a loan's four ledger accounts (minor units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerBalances {
    pub principal: i64,
    pub interest_receivable: i64,
    pub penalty_receivable: i64,
    pub fee_receivable: i64,
}

/// Result of an end of day.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EodReport {
    pub date: NaiveDate,
    /// True when this date had already been run: nothing was written.
    pub already_run: bool,
    pub loans_seen: u64,
    pub loans_processed: u64,
    pub loans_failed: u64,
    pub postings: u64,
    pub interest_accrued_minor: i64,
    pub penalty_accrued_minor: i64,
    pub overdue_loans: u64,
    pub millis: u64,
    /// Where the time went: reading loan pages, the domain computation, ledger posting, saving.
    #[serde(default)]
    pub phases_millis: EodPhases,
}

/// Milliseconds per phase of an end-of-day run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EodPhases {
    /// Reading pages of open loans.
    pub read: u64,
    /// Ageing and accrual in memory, and serializing the new states.
    pub compute: u64,
    /// Ledger batches with the loans' new states saved in the same transactions.
    pub ledger: u64,
}

/// Input of [`LendingService::register_receivable`]: a core enterprise's payable to a supplier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(description = "A core enterprise's payable to a supplier, with its documents.")]
#[serde(deny_unknown_fields)]
pub struct ReceivableInput {
    /// The receivable's id, chosen by the caller (unique).
    #[schema(example = "RCV-2026-0001")]
    pub id: String,
    #[schema(example = "CE-001")]
    pub core_enterprise_id: String,
    #[schema(example = "S-1001")]
    pub supplier_id: String,
    /// Minor units.
    #[schema(example = 10000000)]
    pub amount: i64,
    /// Default CNY.
    #[serde(default)]
    pub currency: Option<Currency>,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// Documents (order, invoice, delivery receipt) as text; their SHA-256 goes to the registry.
    pub documents: Vec<DocumentInput>,
}

/// A document registered with a receivable.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    pub kind: DocumentKind,
    /// The document text; its SHA-256 is registered (a text already registered is refused).
    #[schema(example = "invoice INV-2026-0001: 100,000.00 CNY, CE-001 to S-1001")]
    pub content: String,
}

/// Input of [`LendingService::finance_receivable`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(
    description = "The financing of a confirmed receivable: a supply-chain loan to the supplier, repaid by the core enterprise."
)]
#[serde(deny_unknown_fields)]
pub struct FinanceInput {
    /// The receivable's supplier.
    #[schema(example = "S-1001")]
    pub supplier_id: String,
    /// The advance in minor units: at most the receivable × the product's advance ratio.
    #[schema(example = 8000000)]
    pub amount: i64,
    /// Defaults to the receivable's currency.
    #[serde(default)]
    pub currency: Option<Currency>,
    /// The supplier's deposit account (receives the advance).
    pub deposit_account_id: AccountId,
    /// The core enterprise's account that repays at maturity.
    pub repayment_account_id: AccountId,
    /// Defaults to today.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
}

/// Input of [`LendingService::approve_review`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReviewApproval {
    /// The analyst's note (required, 1..2000 characters).
    pub note: String,
    /// Approved limit in minor units; default the proposed limit. At most the grid limit of the
    /// grade (and the product maximum), at least the product minimum.
    #[serde(default)]
    pub limit_minor: Option<i64>,
    /// Another offered grade of the product (its grid rate applies); default the proposed grade.
    #[serde(default)]
    pub grade: Option<RiskGrade>,
}

/// Input of [`LendingService::decline_review`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReviewDecline {
    /// One of [`lending::DECLINE_REASONS`]; the customer sees its message.
    pub reason_code: String,
    /// The analyst's internal note (required, 1..2000 characters).
    pub note: String,
}

/// Input of [`LendingService::write_off`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteOffInput {
    pub reason: String,
    /// Skip the days-past-due check (the server allows it to administrators only).
    #[serde(default)]
    pub force: bool,
    /// Business date; default today (or the day after the last end of day if later).
    #[serde(default)]
    pub date: Option<NaiveDate>,
}

/// Result of [`LendingService::write_off`].
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(description = "A write-off: what was charged off to `gl.loan_loss_allowance`, its postings and transfers.")]
pub struct WriteOffOutcome {
    pub loan: Loan,
    pub date: NaiveDate,
    pub charged_off: ChargedOff,
    pub postings: Vec<Posting>,
    pub transfers: Vec<ledger::TransferId>,
    /// True when the loan had already been written off: nothing was written now.
    pub already_written_off: bool,
}
