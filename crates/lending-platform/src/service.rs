//! [`LendingService`]: the lending operations over the store and the ledger.

use std::sync::Arc;

use chrono::{DateTime, Months, NaiveDate, Utc};
use customer::CustomerKind;
use ledger::{
    AccountId, AlongWithBatch, Ledger, LedgerError, TransferError, TransferOutcome, TransferRequest, MAX_BATCH,
};
use lending::{
    accept, approve_review, decide, decline_review, direct_contract, early_warnings, eod, loan_alerts, make_offer,
    AcceptRequest, Alert, Analyst, Catalog, Contract, ContractId, DataSources, Decision, DocumentKind,
    DocumentRegistry, FileSource, Installment, LendingError, Loan, LoanId, Offer, Outcome, Posting, PrepayMode,
    Product, ProductKind, Receivable, ReceivableBook, RegistryEntry, RepaymentMethod, RiskGrade, Simulator,
    WRITE_OFF_MIN_DPD,
};
use money::{Amount, Currency};
use serde::{Deserialize, Serialize};
use storage::Database;
use tokio::sync::{Mutex, OnceCell};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{self, gl_accounts, AccountScheme, Parties, LOAN_ROLES, NS};
use crate::store::{self, ChargedOff, LendingStore, LoanRecord, LoanSave, LoanSummary, ReviewItem, Statement};
use crate::{LendingPlatformError, Result};

/// Seed of the simulated external data sources (bureau, social security, housing fund, tax, ERP).
pub const SIMULATOR_SEED: u64 = 2026;

/// Loans per end-of-day page (read, computed, posted as ledger batches, saved in one transaction).
pub const EOD_PAGE: i64 = 2_000;

/// Reads of one end-of-day page before giving up when its loans keep changing underneath.
const EOD_PAGE_ATTEMPTS: u32 = 5;

/// Input of [`LendingService::apply`]: a loan application.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(description = "A loan application.")]
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

/// Where applicant records and external data come from.
#[derive(Clone)]
enum ApplicantSource {
    Simulated(Simulator),
    Files(FileSource),
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn bad(e: LendingError) -> LendingPlatformError {
    LendingPlatformError::Lending(e)
}

/// The lending service: cheap to clone, shared by the server, the CLI and the demo.
#[derive(Clone)]
pub struct LendingService {
    store: LendingStore,
    ledger: Ledger,
    catalog: Arc<Catalog>,
    sources: DataSources,
    applicants: ApplicantSource,
    /// The risk engine that checks every application (see [`crate::fraud`]).
    risk: Option<Arc<risk_platform::RiskService>>,
    gl_ready: Arc<OnceCell<()>>,
    /// The document registry, cached; every append is serialised here and re-checked against
    /// the stored chain length.
    registry: Arc<Mutex<Option<DocumentRegistry>>>,
    /// One end of day at a time in this process (the stored run row guards across nodes).
    eod: Arc<Mutex<()>>,
    eod_limits: EodLimits,
}

/// How far ahead an end of day may be dated: its work grows with the days every loan must catch
/// up, so a date chosen by a client is bounded before any work starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EodLimits {
    /// At most this many days after the last end of day (default 31).
    pub max_gap_days: u32,
    /// At most this many days after today (default 1: tomorrow). Test and training systems that
    /// simulate months of business raise it.
    pub max_days_ahead: u32,
}

impl Default for EodLimits {
    fn default() -> Self {
        EodLimits { max_gap_days: 31, max_days_ahead: 1 }
    }
}

impl LendingService {
    pub fn new(db: Database, ledger: Ledger) -> Self {
        LendingService {
            store: LendingStore::new(db),
            ledger,
            catalog: Arc::new(Catalog::builtin()),
            sources: DataSources::simulated(SIMULATOR_SEED),
            applicants: ApplicantSource::Simulated(Simulator::new(SIMULATOR_SEED)),
            risk: None,
            gl_ready: Arc::new(OnceCell::new()),
            registry: Arc::new(Mutex::new(None)),
            eod: Arc::new(Mutex::new(())),
            eod_limits: EodLimits::default(),
        }
    }

    /// Bounds the date of an end of day (see [`EodLimits`]); catching up further means several runs.
    pub fn with_eod_limits(mut self, limits: EodLimits) -> Self {
        self.eod_limits = EodLimits { max_gap_days: limits.max_gap_days.max(1), ..limits };
        self
    }

    /// Checks applications with the risk engine. Without it, [`LendingService::apply`] refuses
    /// with [`LendingPlatformError::FraudCheckUnavailable`]: no application is decided without
    /// its fraud check.
    pub fn with_risk(mut self, risk: Arc<risk_platform::RiskService>) -> Self {
        self.risk = Some(risk);
        self
    }

    /// Reads applicants and external data from JSON files under `dir` instead of the simulator
    /// (layout: [`lending::FileSource`]). The directory must exist.
    pub fn with_data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(LendingPlatformError::Invalid(format!(
                "lending data directory {} does not exist or is not a directory",
                dir.display()
            )));
        }
        let files = FileSource::new(dir);
        self.sources = DataSources::all(files.clone());
        self.applicants = ApplicantSource::Files(files);
        Ok(self)
    }

    /// `simulator` or `files`.
    pub fn data_source_name(&self) -> &'static str {
        match self.applicants {
            ApplicantSource::Simulated(_) => "simulator",
            ApplicantSource::Files(_) => "files",
        }
    }

    pub fn store(&self) -> &LendingStore {
        &self.store
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) async fn ensure_gl(&self) -> Result<()> {
        self.gl_ready
            .get_or_try_init(|| async {
                self.ledger.open_accounts(&gl_accounts(Currency::CNY)).await?;
                Ok::<(), LendingPlatformError>(())
            })
            .await?;
        Ok(())
    }

    // ---- application, decision, offer, acceptance -------------------------------------------

    /// Collects the (simulated) external data, decides with the fraud check and stores the
    /// decision; a `review` outcome enters the review queue.
    pub async fn apply(&self, input: &ApplyInput) -> Result<Decision> {
        self.apply_at(input, Utc::now()).await
    }

    pub async fn apply_at(&self, input: &ApplyInput, now: DateTime<Utc>) -> Result<Decision> {
        if input.applicant_id.is_empty() || input.applicant_id.len() > 100 {
            return Err(LendingPlatformError::Invalid("applicant_id must be 1..100 characters".into()));
        }
        let product = self.catalog.get(&input.product_code)?;
        let kind = input.kind.unwrap_or(match product.kind {
            ProductKind::InstantConsumer => CustomerKind::Individual,
            _ => CustomerKind::Sme,
        });
        let applicant = match &self.applicants {
            ApplicantSource::Simulated(sim) => sim.applicant(&input.applicant_id, kind),
            // The bank's record decides the kind; a missing record is a data-source error.
            ApplicantSource::Files(files) => files.applicant_record(&input.applicant_id)?,
        };
        let snapshot = self.sources.collect(&applicant, product, now.date_naive())?;
        // One decision per application: a fresh id even for the same applicant.
        let id = Uuid::now_v7();
        // The engine sees only applications that pass eligibility (the same point at which the
        // pure decision asks for a fraud verdict).
        let fraud = if lending::eligibility(product, &snapshot).is_empty() {
            let risk = self.risk.as_ref().ok_or(LendingPlatformError::FraudCheckUnavailable)?;
            let event =
                crate::fraud::application_event(format!("loan-application:{id}"), input, &applicant, product, now)?;
            crate::fraud::check(risk, &event).await?
        } else {
            lending::FraudOutcome::allow()
        };
        let mut decision = decide(product, &snapshot, &fraud, now);
        decision.id = lending::DecisionId(id);
        self.store.insert_decision(&decision).await?;
        Ok(decision)
    }

    pub async fn decision(&self, id: &str) -> Result<Decision> {
        self.store.decision(id).await?.ok_or_else(|| LendingPlatformError::NotFound("application", id.into()))
    }

    /// The offer of an approved decision (idempotent per decision).
    pub async fn offer(&self, decision_id: &str) -> Result<Offer> {
        let decision = self.decision(decision_id).await?;
        let product = self.catalog.get(&decision.product_code)?;
        let offer = make_offer(&decision, product, Utc::now())?;
        self.store.insert_offer(&offer).await
    }

    /// Accepts an offer: contract, loan, and the disbursement through the ledger.
    pub async fn accept(&self, offer_id: &str, input: &AcceptInput) -> Result<AcceptOutcome> {
        let offer = self
            .store
            .offer(offer_id)
            .await?
            .ok_or_else(|| LendingPlatformError::NotFound("offer", offer_id.into()))?;
        let currency = input.currency.unwrap_or(offer.limit.currency);
        let req = AcceptRequest {
            amount: Amount::new(input.amount, currency),
            term_months: input.term_months,
            method: input.method,
            start_date: input.start_date.unwrap_or_else(today),
            accepted_at: Utc::now(),
        };
        let contract = accept(&offer, &req)?;
        let parties = Parties {
            customer: input.deposit_account_id,
            payer: input.deposit_account_id,
            scheme: AccountScheme::Clustered,
        };
        self.open_loan(contract, parties, Vec::new()).await
    }

    /// Opens a loan straight from a contract (demo data, benchmarks, migrated loans):
    /// disbursed to `customer`, repaid from `payer`.
    pub async fn open_contract(
        &self,
        contract: Contract,
        customer: AccountId,
        payer: AccountId,
    ) -> Result<AcceptOutcome> {
        self.open_loan(contract, Parties { customer, payer, scheme: AccountScheme::Clustered }, Vec::new()).await
    }

    /// Opens the loan of a contract: ledger accounts, disbursement batch, then the stored rows.
    async fn open_loan(&self, contract: Contract, parties: Parties, extra: Vec<Statement>) -> Result<AcceptOutcome> {
        let loan_id = LoanId(contract.id.0);
        if let Some(rec) = self.store.loan(loan_id).await? {
            return Ok(AcceptOutcome { contract, loan: rec.loan, transfers: Vec::new(), created: false });
        }
        for acct in [parties.customer, parties.payer] {
            let a = self.ledger.account(acct).await?;
            if a.currency != contract.principal.currency {
                return Err(bad(LendingError::CurrencyMismatch {
                    expected: contract.principal.currency,
                    got: a.currency,
                }));
            }
        }
        self.ensure_gl().await?;
        self.ledger
            .open_accounts(&accounts::loan_accounts(loan_id, &contract.applicant_id, contract.principal.currency))
            .await?;
        let (loan, postings) = Loan::open(&contract);
        let rec = LoanRecord {
            loan: loan.clone(),
            applicant_id: contract.applicant_id.clone(),
            customer_account: parties.customer,
            repayment_account: parties.payer,
            version: 1,
            account_scheme: parties.scheme,
        };
        let statements = [LendingStore::insert_contract_loan(&contract, &rec)?, extra].concat();
        let transfers = if postings.is_empty() {
            self.store.execute(&statements).await?;
            Vec::new()
        } else {
            // The disbursement and the stored loan commit together.
            let along: AlongWithBatch =
                Box::new(move |outcomes| if check(outcomes).is_ok() { statements } else { Vec::new() });
            self.post(loan_id, "v0", &postings, &parties, along).await?
        };
        Ok(AcceptOutcome { contract, loan, transfers, created: true })
    }

    /// Submits one operation's postings as one linked chain (any failed leg fails all), with
    /// the statements `along` returns committed in the same transaction.
    async fn post(
        &self,
        loan: LoanId,
        op: &str,
        postings: &[Posting],
        parties: &Parties,
        along: AlongWithBatch,
    ) -> Result<Vec<ledger::TransferId>> {
        if postings.is_empty() {
            return Ok(Vec::new());
        }
        let requests = accounts::transfers(loan, op, postings, parties);
        if requests.len() > MAX_BATCH {
            return Err(LendingPlatformError::Invalid(format!("{} postings in one operation", requests.len())));
        }
        let ids = requests.iter().map(|r| r.id).collect();
        let outcomes = self.ledger.submit_batch_with(requests, along).await?;
        check(&outcomes)?;
        Ok(ids)
    }

    // ---- loan operations --------------------------------------------------------------------

    pub async fn loan(&self, id: LoanId) -> Result<LoanRecord> {
        self.store.loan(id).await?.ok_or_else(|| LendingPlatformError::NotFound("loan", id.0.to_string()))
    }

    /// Runs `f` on the loan dated `date` (default: today, or the day after the last end of day
    /// if that is later), after bringing the loan's end of day up to the day before. The
    /// catch-up accruals and the operation's postings go to the ledger as one batch, and the
    /// new state is saved in the same transaction.
    async fn operate<T>(
        &self,
        id: LoanId,
        date: Option<NaiveDate>,
        payer: Option<AccountId>,
        f: impl FnOnce(&mut Loan, NaiveDate) -> Result<(T, Vec<Posting>), LendingError>,
    ) -> Result<(LoanRecord, Loan, NaiveDate, T, Vec<Posting>, Vec<ledger::TransferId>)> {
        let rec = self.loan(id).await?;
        self.operate_on(rec, date, payer, f, |_, _, _| Ok(Vec::new())).await
    }

    /// [`Self::operate`] on a loaded record, with `extra` statements (from the new state, the
    /// date and the operation's own postings) saved in the same transaction as the loan.
    async fn operate_on<T>(
        &self,
        rec: LoanRecord,
        date: Option<NaiveDate>,
        payer: Option<AccountId>,
        f: impl FnOnce(&mut Loan, NaiveDate) -> Result<(T, Vec<Posting>), LendingError>,
        extra: impl FnOnce(&Loan, NaiveDate, &[Posting]) -> Result<Vec<Statement>>,
    ) -> Result<(LoanRecord, Loan, NaiveDate, T, Vec<Posting>, Vec<ledger::TransferId>)> {
        let id = rec.loan.id;
        let mut loan = rec.loan.clone();
        let date = date.unwrap_or_else(|| {
            let next = loan.last_eod.and_then(|d| d.succ_opt()).unwrap_or(loan.start_date);
            today().max(next)
        });
        let mut postings = Vec::new();
        if let Some(prev) = date.pred_opt() {
            if prev >= loan.start_date && loan.last_eod.is_none_or(|l| l < prev) {
                postings.extend(eod(&mut loan, prev)?.postings);
            }
        }
        let (out, own) = f(&mut loan, date)?;
        let statements = extra(&loan, date, &own)?;
        postings.extend(own);
        let parties = rec.parties(payer);
        let statements = [store::save_loans([&LoanSave::new(&rec, &loan)?]), statements].concat();
        let saved = if postings.is_empty() {
            self.store.execute(&statements).await.map(|()| Vec::new())
        } else {
            // The new state commits in the same transaction as the transfers, or neither does.
            let along: AlongWithBatch =
                Box::new(move |outcomes| if check(outcomes).is_ok() { statements } else { Vec::new() });
            self.post(id, &format!("v{}", rec.version), &postings, &parties, along).await
        };
        let transfers = match saved {
            // The version moved: the row check failed, or another operation took this
            // version's transfer ids first.
            Err(LendingPlatformError::Stale(_))
            | Err(LendingPlatformError::Ledger(LedgerError::AlongConflict(_)))
            | Err(LendingPlatformError::Rejected { code: TransferError::IdempotencyConflict, .. }) => {
                return Err(LendingPlatformError::Conflict(id.0.to_string()))
            }
            other => other?,
        };
        Ok((rec, loan, date, out, postings, transfers))
    }

    /// A repayment through the waterfall, debited from the repayment account (or `from`).
    pub async fn repay(
        &self,
        id: LoanId,
        amount: Amount,
        date: Option<NaiveDate>,
        from: Option<AccountId>,
    ) -> Result<OperationOutcome> {
        let (_, loan, date, a, postings, transfers) =
            self.operate(id, date, from, |loan, d| loan.repay(amount, d)).await?;
        Ok(OperationOutcome { loan, date, allocation: Some(a), postings, transfers })
    }

    /// A draw on a revolving line, credited to the borrower's deposit account.
    pub async fn draw(&self, id: LoanId, amount: Amount, date: Option<NaiveDate>) -> Result<OperationOutcome> {
        let (_, loan, date, (), postings, transfers) =
            self.operate(id, date, None, |loan, d| Ok(((), loan.draw(amount, d)?))).await?;
        Ok(OperationOutcome { loan, date, allocation: None, postings, transfers })
    }

    /// A partial or full prepayment.
    pub async fn prepay(
        &self,
        id: LoanId,
        amount: Amount,
        mode: PrepayMode,
        date: Option<NaiveDate>,
        from: Option<AccountId>,
    ) -> Result<OperationOutcome> {
        let (_, loan, date, a, postings, transfers) =
            self.operate(id, date, from, |loan, d| loan.prepay(amount, d, mode)).await?;
        Ok(OperationOutcome { loan, date, allocation: Some(a), postings, transfers })
    }

    /// Writes off a loan that is at least [`WRITE_OFF_MIN_DPD`] days past due (after bringing its
    /// end of day up to the day before; `force` skips the check). Principal, interest, penalty
    /// and fees are charged to `gl.loan_loss_allowance` as one linked batch with deterministic
    /// ids (loan, version, sequence: a retry replays), the loan becomes `written_off` and the
    /// write-off (reason, analyst, amounts) is recorded in the transaction that saves the loan.
    /// Writing off a written-off loan again returns it unchanged.
    pub async fn write_off(&self, id: LoanId, input: &WriteOffInput, analyst: &Analyst) -> Result<WriteOffOutcome> {
        let reason = input.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(LendingPlatformError::Invalid("reason must be 1..500 characters".into()));
        }
        let rec = self.loan(id).await?;
        if rec.loan.status == lending::LoanStatus::WrittenOff {
            return Ok(WriteOffOutcome {
                date: rec.loan.closed_on.unwrap_or_else(today),
                loan: rec.loan,
                charged_off: ChargedOff::default(),
                postings: Vec::new(),
                transfers: Vec::new(),
                already_written_off: true,
            });
        }
        self.ensure_gl().await?;
        let force = input.force;
        let (_, loan, date, charged_off, postings, transfers) = self
            .operate_on(
                rec,
                input.date,
                None,
                |loan, d| {
                    let own = loan.write_off_overdue(d, WRITE_OFF_MIN_DPD, force)?;
                    Ok((charged(&own), own))
                },
                |loan, d, own| {
                    Ok(vec![store::insert_write_off(
                        loan.id,
                        d,
                        reason,
                        force,
                        &analyst.id,
                        &analyst.role,
                        &charged(own),
                    )])
                },
            )
            .await?;
        Ok(WriteOffOutcome { loan, date, charged_off, postings, transfers, already_written_off: false })
    }

    /// Posted balances of the loan's four ledger accounts.
    pub async fn ledger_balances(&self, rec: &LoanRecord) -> Result<LedgerBalances> {
        let mut b = [0i64; 4];
        for (i, (role, _)) in LOAN_ROLES.iter().enumerate() {
            b[i] = self.ledger.balance(rec.account(*role), None).await?.posted;
        }
        Ok(LedgerBalances {
            principal: b[0],
            interest_receivable: b[1],
            penalty_receivable: b[2],
            fee_receivable: b[3],
        })
    }

    /// The loan, its schedule, its ledger balances and alerts.
    pub async fn view(&self, id: LoanId) -> Result<LoanView> {
        let rec = self.loan(id).await?;
        let ledger = self.ledger_balances(&rec).await?;
        let l = &rec.loan;
        let expected = LedgerBalances {
            principal: l.principal,
            interest_receivable: l.interest_receivable(),
            penalty_receivable: l.penalty,
            fee_receivable: l.fees,
        };
        let mut alerts = loan_alerts(l);
        alerts.extend(self.early_warnings(&rec).await.unwrap_or_default());
        Ok(LoanView {
            bucket: store::bucket_name(l.bucket()),
            schedule: l.schedule.clone(),
            customer_account: rec.customer_account,
            repayment_account: rec.repayment_account,
            applicant_id: rec.applicant_id.clone(),
            reconciled: ledger == expected,
            ledger,
            alerts,
            loan: rec.loan,
        })
    }

    /// Early-warning signals: the data at decision time against the data now (simulated
    /// sources), plus the tax inflow trend.
    async fn early_warnings(&self, rec: &LoanRecord) -> Result<Vec<Alert>> {
        let contract = self
            .store
            .contract(&rec.loan.contract_id.0.to_string())
            .await?
            .ok_or_else(|| LendingPlatformError::Corrupt("loan without contract".into()))?;
        let Some(decision) = self.store.decision(&contract.decision_id.0.to_string()).await? else {
            return Ok(Vec::new());
        };
        let product = self.catalog.get(&decision.product_code)?;
        let current = self.sources.collect(&decision.inputs.applicant, product, today())?;
        let inflows = current.tax.as_ref().map(|t| t.monthly_inflows_minor.clone()).unwrap_or_default();
        Ok(early_warnings(&decision.inputs, &current, &inflows))
    }

    pub async fn list_loans(
        &self,
        status: Option<&str>,
        bucket: Option<&str>,
        applicant: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LoanSummary>> {
        self.store.list_loans(status, bucket, applicant, after.unwrap_or(""), limit.clamp(1, 1000)).await
    }

    pub async fn review_queue(&self, limit: i64) -> Result<Vec<ReviewItem>> {
        self.store.review_queue(limit.clamp(1, 1000)).await
    }

    /// An analyst approves a decision in the review queue (see [`lending::approve_review`]); an
    /// offer can then be made. Approving an approved item again returns the stored decision;
    /// a declined one is `review_already_decided`.
    pub async fn approve_review(&self, id: &str, input: &ReviewApproval, analyst: &Analyst) -> Result<Decision> {
        self.settle_review(id, Outcome::Approve, |d, product| {
            approve_review(d, product, input.grade, input.limit_minor, &input.note, analyst)
        })
        .await
    }

    /// An analyst declines a decision in the review queue with a listed reason code (see
    /// [`lending::decline_review`]); the customer sees the reason on the application.
    pub async fn decline_review(&self, id: &str, input: &ReviewDecline, analyst: &Analyst) -> Result<Decision> {
        self.settle_review(id, Outcome::Decline, |d, _| decline_review(d, &input.reason_code, &input.note, analyst))
            .await
    }

    async fn settle_review(
        &self,
        id: &str,
        want: Outcome,
        f: impl FnOnce(&Decision, &Product) -> Result<Decision, LendingError>,
    ) -> Result<Decision> {
        let done = if want == Outcome::Approve { "approved" } else { "declined" };
        let not_found = || LendingPlatformError::NotFound("review_item", id.to_string());
        let status = self.store.review_status(id).await?.ok_or_else(not_found)?;
        match status.as_str() {
            "open" => {}
            s if s == done => return self.decision(id).await,
            s => return Err(bad(LendingError::ReviewAlreadyDecided(s.to_string()))),
        }
        let decision = self.decision(id).await?;
        let product = self.catalog.get(&decision.product_code)?;
        // The decision read after the status may already carry a concurrent reviewer's outcome.
        let decided = match f(&decision, product) {
            Err(LendingError::NotInReview(_)) if decision.outcome != Outcome::Review => None,
            other => Some(other?),
        };
        if let Some(decided) = decided {
            if self.store.decide_review(&decided, done).await? {
                return Ok(decided);
            }
        }
        // Decided concurrently: answer as a retry would be answered.
        match self.store.review_status(id).await?.ok_or_else(not_found)? {
            s if s == done => self.decision(id).await,
            s => Err(bad(LendingError::ReviewAlreadyDecided(s))),
        }
    }

    // ---- end of day -------------------------------------------------------------------------

    /// End of day for `date` over every open loan, page by page: each page's accruals go to the
    /// ledger as batches of per-loan linked chains, and each batch saves its loans' new states
    /// in the same transaction. Idempotent per date: once a date is done, running it again
    /// reports `already_run` and writes nothing; a run that stopped half-way resumes (loans
    /// already at `date` are skipped). `progress(done, total)` after each page.
    pub async fn run_eod(&self, date: NaiveDate, mut progress: impl FnMut(u64, u64) + Send) -> Result<EodReport> {
        let _one_at_a_time = self.eod.lock().await;
        let t0 = std::time::Instant::now();
        if let Some((status, report)) = self.store.eod_run(date).await? {
            if status == "done" {
                let mut r: EodReport = report.map(|r| serde_json::from_str(&r)).transpose()?.unwrap_or_default();
                r.already_run = true;
                r.date = date;
                return Ok(r);
            }
        }
        let last = self.store.last_done_eod().await?.and_then(|l| NaiveDate::parse_from_str(&l, "%Y-%m-%d").ok());
        // Bounded work: at most `max_gap_days` after the last run and `max_days_ahead` after today.
        let limits = self.eod_limits;
        let ahead = today() + chrono::Days::new(u64::from(limits.max_days_ahead));
        let latest = last.map_or(ahead, |l| ahead.min(l + chrono::Days::new(u64::from(limits.max_gap_days))));
        if date > latest {
            return Err(LendingPlatformError::EodDateOutOfRange { requested: date, earliest: last, latest });
        }
        if let Some(last) = last {
            if last > date {
                return Err(bad(LendingError::EodDateInPast { requested: date, last }));
            }
        }
        self.ensure_gl().await?;
        self.store.execute(&[store::start_eod(date)]).await?;
        let total = self.store.count_open_loans().await?.max(0) as u64;
        let mut report = EodReport { date, ..Default::default() };
        // Pages are read one ahead: the next page is read and parsed (on another thread) while
        // this one's ledger batches commit. Pages cover disjoint id ranges, so this page's
        // commits never touch the next page's loans.
        let mut cursor = String::new();
        let mut next = Some(self.read_page(cursor.clone()));
        while let Some(pending) = next.take() {
            let read_started = std::time::Instant::now();
            let mut page = pending.await.map_err(|e| LendingPlatformError::Internal(format!("page reader: {e}")))??;
            report.phases_millis.read += read_started.elapsed().as_millis() as u64;
            let Some(last) = page.last().map(|r| r.loan.id.0.to_string()) else { break };
            if page.len() as i64 == EOD_PAGE {
                next = Some(self.read_page(last.clone()));
            }
            let mut attempt = 1;
            loop {
                let changed = match self.eod_page(&page, date, &mut report).await {
                    Err(LendingPlatformError::Ledger(LedgerError::AlongConflict(e))) => {
                        tracing::info!(attempt, error = %e, "end of day: a batch's loans changed meanwhile");
                        1
                    }
                    other => other?,
                };
                if changed == 0 {
                    break;
                }
                if attempt == EOD_PAGE_ATTEMPTS {
                    report.loans_failed += changed;
                    break;
                }
                // Loans of the page were changed (a repayment) since it was read. What committed
                // is at `date` now and is skipped; the rest is read again (up to the page's
                // end: the next page is already read).
                attempt += 1;
                page = self.store.open_loans_after(&cursor, EOD_PAGE).await?;
                page.retain(|r| r.loan.id.0.to_string() <= last);
            }
            report.loans_seen += page.len() as u64;
            progress(report.loans_seen.min(total), total);
            cursor = last;
        }
        report.millis = t0.elapsed().as_millis() as u64;
        self.store.execute(&[store::finish_eod(date, &serde_json::to_string(&report)?)]).await?;
        Ok(report)
    }

    /// Reads the page of open loans after `after` on another task.
    fn read_page(&self, after: String) -> tokio::task::JoinHandle<Result<Vec<LoanRecord>>> {
        let store = self.store.clone();
        tokio::spawn(async move { store.open_loans_after(&after, EOD_PAGE).await })
    }

    /// One page of end of day. Each ledger batch of whole per-loan chains commits together with
    /// the saved states of the loans whose chains it created, so a loan's state and its ledger
    /// accounts never disagree, even after a crash. A loan changed since the page was read
    /// rolls its batch back ([`LedgerError::AlongConflict`]); the caller re-reads the page.
    /// Returns how many loans were left alone because they changed meanwhile.
    async fn eod_page(&self, page: &[LoanRecord], date: NaiveDate, report: &mut EodReport) -> Result<u64> {
        let mut moved = 0;
        let compute_started = std::time::Instant::now();
        // (new state, postings, save) of loans that changed.
        let mut work: Vec<(&LoanRecord, Loan, Vec<Posting>)> = Vec::new();
        for rec in page {
            let mut loan = rec.loan.clone();
            if date < loan.start_date {
                continue;
            }
            match eod(&mut loan, date) {
                Ok(out) if out.already_run => {}
                Ok(out) => work.push((rec, loan, out.postings)),
                Err(e) => {
                    tracing::warn!(loan = %rec.loan.id.0, error = %e, "end of day skipped a loan");
                    report.loans_failed += 1;
                }
            }
        }
        // Serialized once, here; each batch below moves its loans' rows into its transaction.
        let mut saves =
            work.iter().map(|(rec, loan, _)| LoanSave::new(rec, loan).map(Some)).collect::<Result<Vec<_>>>()?;
        report.phases_millis.compute += compute_started.elapsed().as_millis() as u64;
        let ledger_started = std::time::Instant::now();
        let mut start = 0;
        while start < work.len() {
            let mut end = start;
            let mut requests: Vec<TransferRequest> = Vec::new();
            // (index into work, first request, chain length)
            let mut spans = Vec::new();
            while end < work.len() {
                let (rec, _, postings) = &work[end];
                if !requests.is_empty() && requests.len() + postings.len() > MAX_BATCH {
                    break;
                }
                let parties = rec.parties(None);
                let chain = accounts::transfers(rec.loan.id, &format!("v{}", rec.version), postings, &parties);
                spans.push((end, requests.len(), chain.len()));
                requests.extend(chain);
                end += 1;
            }
            let created =
                |outcomes: &[TransferOutcome], from: usize, len: usize| check(&outcomes[from..from + len]).is_ok();
            let batch_saves: Vec<LoanSave> = saves[start..end].iter_mut().filter_map(Option::take).collect();
            let outcomes = if requests.is_empty() {
                self.store.execute(&store::save_loans(&batch_saves)).await?;
                Vec::new()
            } else {
                let batch_spans = spans.clone();
                let along: AlongWithBatch = Box::new(move |outcomes| {
                    let saved = batch_spans
                        .iter()
                        .filter(|(_, from, len)| *len == 0 || created(outcomes, *from, *len))
                        .map(|(i, _, _)| &batch_saves[i - start]);
                    store::save_loans(saved)
                });
                self.ledger.submit_batch_with(requests, along).await?
            };
            for (i, from, len) in spans {
                if len > 0 && !created(&outcomes, from, len) {
                    match check(&outcomes[from..from + len]) {
                        // Its transfer ids (loan, version) were taken: the loan was changed
                        // since the page was read. Read again rather than fail it.
                        Err(LendingPlatformError::Rejected { code: TransferError::IdempotencyConflict, .. }) => {
                            moved += 1
                        }
                        _ => report.loans_failed += 1,
                    }
                    continue;
                }
                let (_, loan, postings) = &work[i];
                report.loans_processed += 1;
                report.postings += postings.len() as u64;
                for p in postings {
                    match p.purpose {
                        lending::PostingPurpose::InterestAccrual => report.interest_accrued_minor += p.amount.minor,
                        lending::PostingPurpose::PenaltyAccrual => report.penalty_accrued_minor += p.amount.minor,
                        _ => {}
                    }
                }
                if loan.status == lending::LoanStatus::Overdue {
                    report.overdue_loans += 1;
                }
            }
            start = end;
        }
        report.phases_millis.ledger += ledger_started.elapsed().as_millis() as u64;
        Ok(moved)
    }

    // ---- documents and receivables ----------------------------------------------------------

    /// Locks the registry, reloading it when the stored chain has grown elsewhere.
    async fn registry(&self) -> Result<tokio::sync::MutexGuard<'_, Option<DocumentRegistry>>> {
        let mut guard = self.registry.lock().await;
        let stored = self.store.registry_len().await?;
        if guard.as_ref().is_none_or(|r| r.entries().len() as i64 != stored) {
            *guard = Some(DocumentRegistry::from_entries(self.store.registry_entries().await?)?);
        }
        Ok(guard)
    }

    /// Registers a document by content (or by its SHA-256 hex); the same hash twice is refused.
    pub async fn register_document(
        &self,
        kind: DocumentKind,
        content: Option<&str>,
        hash: Option<&str>,
        party_id: &str,
        reference: &str,
    ) -> Result<RegistryEntry> {
        let hash = match (content, hash) {
            (Some(c), _) => lending::content_hash(c.as_bytes()),
            (None, Some(h)) => h.to_string(),
            (None, None) => return Err(LendingPlatformError::Invalid("give content or content_hash".into())),
        };
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let entry = reg.register_hash(kind, &hash, party_id, reference, Utc::now())?;
        self.store.execute(&[store::insert_entry(&entry)?]).await?;
        *guard = Some(reg);
        Ok(entry)
    }

    pub async fn receivable(&self, id: &str) -> Result<(Receivable, Option<String>)> {
        self.store.receivable(id).await?.ok_or_else(|| LendingPlatformError::NotFound("receivable", id.into()))
    }

    /// Registers a receivable with its documents (all in the registry, or nothing).
    pub async fn register_receivable(&self, input: &ReceivableInput) -> Result<Receivable> {
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let before = reg.entries().len();
        let mut book = ReceivableBook::new();
        if self.store.receivable(&input.id).await?.is_some() {
            return Err(bad(LendingError::DuplicateReceivable(input.id.clone())));
        }
        let docs: Vec<(DocumentKind, &[u8])> = input.documents.iter().map(|d| (d.kind, d.content.as_bytes())).collect();
        let r = book
            .register(
                &mut reg,
                &input.id,
                &input.core_enterprise_id,
                &input.supplier_id,
                Amount::new(input.amount, input.currency.unwrap_or(Currency::CNY)),
                input.issue_date,
                input.due_date,
                &docs,
                Utc::now(),
            )?
            .clone();
        let mut statements = Vec::new();
        for e in &reg.entries()[before..] {
            statements.push(store::insert_entry(e)?);
        }
        statements.push(store::insert_receivable(&r)?);
        self.store.execute(&statements).await?;
        *guard = Some(reg);
        Ok(r)
    }

    /// The core enterprise confirms the receivable (recorded in the registry).
    pub async fn confirm_receivable(&self, id: &str, core_enterprise_id: &str) -> Result<Receivable> {
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let before = reg.entries().len();
        let (r, loan) = self.receivable(id).await?;
        let mut book = ReceivableBook::new();
        book.receivables.insert(r.id.clone(), r);
        book.confirm(&mut reg, id, core_enterprise_id, Utc::now())?;
        let r = book.get(id)?.clone();
        let mut statements = Vec::new();
        for e in &reg.entries()[before..] {
            statements.push(store::insert_entry(e)?);
        }
        statements.push(store::update_receivable(&r, loan)?);
        self.store.execute(&statements).await?;
        *guard = Some(reg);
        Ok(r)
    }

    /// Finances a confirmed receivable once: a supply-chain loan disbursed to the supplier,
    /// repaid by the core enterprise's account, maturing no later than the receivable.
    pub async fn finance_receivable(&self, id: &str, input: &FinanceInput) -> Result<(Receivable, AcceptOutcome)> {
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let before = reg.entries().len();
        let (r, _) = self.receivable(id).await?;
        let product = self.catalog.get("supply_chain")?.clone();
        let start = input.start_date.unwrap_or_else(today);
        let amount = Amount::new(input.amount, input.currency.unwrap_or(r.amount.currency));
        let due = r.due_date;
        let mut book = ReceivableBook::new();
        book.receivables.insert(r.id.clone(), r);
        let ratio = product.advance_ratio.unwrap_or(rust_decimal::Decimal::ONE);
        let now = Utc::now();
        book.finance(&mut reg, id, &input.supplier_id, amount, ratio, start, now)?;
        let r = book.get(id)?.clone();
        let term = product
            .terms_months
            .iter()
            .copied()
            .filter(|t| start.checked_add_months(Months::new(*t)).is_some_and(|m| m <= due))
            .max()
            .unwrap_or(1);
        let rate = product
            .row_for_grade(RiskGrade::A)
            .map(|row| row.rate)
            .ok_or_else(|| LendingPlatformError::Corrupt("supply_chain has no grade A price".into()))?;
        let mut contract = direct_contract(
            &product,
            &input.supplier_id,
            amount,
            rate,
            term,
            RepaymentMethod::InterestOnlyBullet,
            start,
        )?;
        contract.id = ContractId(Uuid::new_v5(&NS, format!("receivable:{id}").as_bytes()));
        contract.receivable_id = Some(id.to_string());
        // A direct contract is signed at the earliest representable instant, which is no RFC 3339
        // date-time a client can parse; this one is signed when it is financed.
        contract.signed_at = now;
        let mut extra = Vec::new();
        for e in &reg.entries()[before..] {
            extra.push(store::insert_entry(e)?);
        }
        extra.push(store::update_receivable(&r, Some(contract.id.0.to_string()))?);
        let parties = Parties {
            customer: input.deposit_account_id,
            payer: input.repayment_account_id,
            scheme: AccountScheme::Clustered,
        };
        let outcome = self.open_loan(contract, parties, extra).await?;
        *guard = Some(reg);
        Ok((r, outcome))
    }
}

/// What write-off postings charged off, per receivable.
fn charged(postings: &[Posting]) -> ChargedOff {
    let mut c = ChargedOff::default();
    for p in postings.iter().filter(|p| p.purpose == lending::PostingPurpose::WriteOff) {
        let m = p.amount.minor;
        match p.credit {
            lending::AccountRole::LoanPrincipal => c.principal += m,
            lending::AccountRole::InterestReceivable => c.interest += m,
            lending::AccountRole::PenaltyReceivable => c.penalty += m,
            lending::AccountRole::FeeReceivable => c.fees += m,
            _ => {}
        }
        c.total += m;
    }
    c
}

/// Ok when every transfer committed (now or earlier); else the first real failure (a
/// `linked_event_failed` only when nothing else is known).
pub(crate) fn check(outcomes: &[TransferOutcome]) -> Result<()> {
    let failures: Vec<(TransferError, &String)> = outcomes
        .iter()
        .filter_map(|o| match o {
            TransferOutcome::Failed { code, message, .. } => Some((*code, message)),
            _ => None,
        })
        .collect();
    let pick = failures.iter().find(|(c, _)| *c != TransferError::LinkedEventFailed).or(failures.first());
    match pick {
        Some((code, message)) => Err(LendingPlatformError::Rejected { code: *code, message: (*message).clone() }),
        None => Ok(()),
    }
}
