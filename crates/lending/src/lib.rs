//! # lending
//!
//! Pure domain logic for digital lending (no HTTP, no SQL). Owns:
//!
//! * [`product`]: configurable [`Product`] definitions (serde, from TOML/JSON) and the three
//!   shipped defaults: 秒贷 `instant_consumer`, 税贷通 `tax_sme`, 链融 `supply_chain`.
//! * [`data`]: external data adapters (credit bureau, social security, housing fund, tax,
//!   core-enterprise ERP): one trait per source, a JSON-file implementation and a deterministic
//!   seeded [`Simulator`].
//! * [`decision`]: eligibility rules, a [`FraudCheck`] hook, transparent points scorecards, risk
//!   grade on the [`RiskGrade`] scale AAA..E, limit and rate from the product's pricing grid; every
//!   [`Decision`] carries its inputs, versions and reason codes.
//! * [`offer`]: [`Offer`] with schedule previews and APR (IRR of the cash flows incl. fees),
//!   acceptance checks and the [`Contract`].
//! * [`schedule`]: equal installment, equal principal, interest-only bullet, revolving preview;
//!   rescheduling after partial prepayment.
//! * [`loan`]: the [`Loan`] state machine and accounting model: every operation returns balanced
//!   [`Posting`]s (debit role, credit role, amount, purpose) for the ledger; the repayment
//!   waterfall; prepayment and payoff; write-off; end of day ([`eod`]).
//! * [`monitor`]: days past due, buckets, early-warning signals and alerts.
//! * [`registry`]: the append-only, hash-chained supply-chain document registry and the
//!   receivable book (confirm, finance at most once).
//! * [`bench`]: benchmark helpers (`bench_decisions`, `bench_eod`) for the CLI and criterion.
//!
//! Money is never a float: amounts are `i64` minor units (fen), rates are `rust_decimal::Decimal`.
//! Only the APR solver works in `f64`, and only on the rate.
//!
//! Storage is someone else's job: every state type is a plain serde struct, and the traits a
//! store implements are [`LoanStore`] and the data-source traits.

// Amounts in minor units are written `<yuan>_<fen>` (e.g. `500_000_00` = 500,000.00 CNY); a fen
// group like `_64` is not a mistyped `i64` suffix.
#![allow(clippy::inconsistent_digit_grouping, clippy::mistyped_literal_suffixes)]

#[cfg(feature = "bench")]
pub mod bench;
pub mod data;
pub mod decision;
mod error;
mod grade;
pub mod loan;
pub mod monitor;
pub mod offer;
pub mod product;
pub mod registry;
pub mod schedule;

pub use data::recent_change_pct;
pub use data::{
    AdapterSnapshot, Applicant, BureauReport, BureauSource, DataSources, ErpReceivable, ErpSource, FileSource,
    HousingFundRecord, HousingFundSource, SimProfile, Simulator, SocialSecurityRecord, SocialSecuritySource, TaxRecord,
    TaxSource, TaxYear,
};
pub use decision::{
    approve_review, decide, decline_review, eligibility, Analyst, Decision, DecisionId, FactorScore, FraudCheck,
    FraudOutcome, FraudVerdict, ManualReview, NoFraudCheck, Outcome, Reason, SimpleFraudCheck, DECLINE_REASONS,
    MODEL_VERSION,
};
pub use error::LendingError;
pub use grade::RiskGrade;
pub use loan::Bucket;
pub use loan::{
    eod, AccountRole, Allocation, Due, EodOutcome, Loan, LoanId, LoanStatus, LoanStore, MemoryLoanStore, PaidToDate,
    Posting, PostingPurpose, WRITE_OFF_MIN_DPD,
};
pub use monitor::{early_warnings, loan_alerts, Alert, Severity};
pub use offer::{
    accept, apr, direct_contract, irr, make_offer, AcceptRequest, Contract, ContractId, Offer, OfferId, SchedulePreview,
};
pub use product::{Catalog, EligibilityRules, PricingRow, Product, ProductKind, RateBasis};
pub use registry::{
    content_hash, DocumentKind, DocumentRegistry, Financing, Receivable, ReceivableBook, RegistryEntry,
};
pub use schedule::{
    annuity_installment, build_schedule, reschedule_after_prepayment, Installment, PrepayMode, RepaymentMethod,
    Schedule, ScheduleRequest,
};
