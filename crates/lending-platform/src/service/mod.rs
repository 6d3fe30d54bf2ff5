//! [`LendingService`]: the lending operations over the store and the ledger, split by
//! lifecycle: `origination.rs` (apply, offer, accept), `servicing.rs` (repay, draw, prepay,
//! write off, views, the review queue), `eod.rs` (end of day) and `receivables.rs` (documents,
//! receivables, supply-chain financing). The inputs and outputs of every operation are in
//! `types.rs`.

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

mod eod;
mod origination;
mod receivables;
mod servicing;
mod types;

pub use types::*;

/// Seed of the simulated external data sources (bureau, social security, housing fund, tax, ERP).
pub const SIMULATOR_SEED: u64 = 2026;

/// Loans per end-of-day page (read, computed, posted as ledger batches, saved in one transaction).
pub const EOD_PAGE: i64 = 2_000;

/// Reads of one end-of-day page before giving up when its loans keep changing underneath.
const EOD_PAGE_ATTEMPTS: u32 = 5;

/// Where applicant records and external data come from.
#[derive(Clone)]
enum ApplicantSource {
    Simulated(Simulator),
    Files(FileSource),
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
    /// The time source of every operation's "now" and "today" (the system clock unless set).
    clock: Arc<dyn clock::Clock>,
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
    /// A service on `db` and `ledger` that seals applicant data with `vault`.
    pub fn new(db: Database, ledger: Ledger, vault: access::Vault) -> Self {
        LendingService {
            store: LendingStore::new(db, vault),
            ledger,
            catalog: Arc::new(Catalog::builtin()),
            sources: DataSources::simulated(SIMULATOR_SEED),
            applicants: ApplicantSource::Simulated(Simulator::new(SIMULATOR_SEED)),
            risk: None,
            gl_ready: Arc::new(OnceCell::new()),
            registry: Arc::new(Mutex::new(None)),
            eod: Arc::new(Mutex::new(())),
            eod_limits: EodLimits::default(),
            clock: Arc::new(clock::SystemClock),
        }
    }

    /// Bounds the date of an end of day (see [`EodLimits`]); catching up further means several runs.
    pub fn with_eod_limits(mut self, limits: EodLimits) -> Self {
        self.eod_limits = EodLimits { max_gap_days: limits.max_gap_days.max(1), ..limits };
        self
    }

    /// Now, by this service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Uses `clock` for "now" and "today" (tests and simulations move a manual clock).
    pub fn with_clock(mut self, clock: Arc<dyn clock::Clock>) -> Self {
        self.clock = clock;
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
