use chrono::{DateTime, NaiveDate, Utc};
use money::Currency;

/// Errors of the lending domain. The server maps each variant to an HTTP status and a stable
/// snake_case code ([`LendingError::code`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LendingError {
    #[error("invalid product `{code}`: {reason}")]
    InvalidProduct { code: String, reason: String },
    #[error("unknown product `{0}`")]
    UnknownProduct(String),
    #[error("invalid schedule request: {0}")]
    InvalidSchedule(String),
    #[error("amount {amount} is above the offered limit {limit} (minor units)")]
    AmountAboveLimit { amount: i64, limit: i64 },
    #[error("amount {amount} is below the product minimum {minimum} (minor units)")]
    AmountBelowMinimum { amount: i64, minimum: i64 },
    #[error("amount must be positive")]
    AmountNotPositive,
    #[error("term of {0} months is not offered")]
    TermNotOffered(u32),
    #[error("repayment method {0} is not offered")]
    MethodNotOffered(String),
    #[error("offer expired at {expired_at}")]
    OfferExpired { expired_at: DateTime<Utc> },
    #[error("decision outcome is {0}, only an approved decision leads to an offer")]
    NotApproved(String),
    #[error("currency mismatch: expected {expected}, got {got}")]
    CurrencyMismatch { expected: Currency, got: Currency },
    #[error("end of day for {requested} is earlier than the last end of day {last}")]
    EodDateInPast { requested: NaiveDate, last: NaiveDate },
    #[error("date {date} is before the loan start {start}")]
    BeforeStart { date: NaiveDate, start: NaiveDate },
    #[error("operation dated {date} but end of day has already run for {last_eod}")]
    OperationBeforeLastEod { date: NaiveDate, last_eod: NaiveDate },
    #[error("loan is {0}; operation not allowed")]
    LoanNotActive(String),
    #[error("draw of {amount} exceeds the available line {available} (minor units)")]
    LineExceeded { amount: i64, available: i64 },
    #[error("operation requires a {expected} loan")]
    WrongLoanKind { expected: &'static str },
    #[error("prepayment is not allowed while the loan is overdue; repay the overdue amounts first")]
    PrepayWhileOverdue,
    #[error("prepayment of {amount} does not cover accrued interest, penalty and fees of {required} (minor units)")]
    PrepayTooSmall { amount: i64, required: i64 },
    #[error("document with hash {0} is already registered")]
    DuplicateDocument(String),
    #[error("unknown document {0}")]
    UnknownDocument(String),
    #[error("registry tampered at entry {seq}: {reason}")]
    RegistryTampered { seq: u64, reason: String },
    #[error("unknown receivable {0}")]
    UnknownReceivable(String),
    #[error("receivable {0} already exists")]
    DuplicateReceivable(String),
    #[error("receivable {0} is not confirmed by the core enterprise")]
    ReceivableNotConfirmed(String),
    #[error("receivable {0} is already financed")]
    ReceivableAlreadyFinanced(String),
    #[error("receivable {0} does not belong to {1}")]
    ReceivableWrongParty(String, String),
    #[error("receivable {0} matured on {1}")]
    ReceivableMatured(String, NaiveDate),
    #[error("invalid key {0:?}: use letters, digits, `-`, `_`, `.` and `:` only, not starting with `.`")]
    InvalidKey(String),
    #[error("data source {source_name}: {message}")]
    DataSource { source_name: &'static str, message: String },
    #[error("loan {0} is written off; repayments, draws, prepayments and fees are refused")]
    LoanWrittenOff(String),
    #[error("loan is {dpd} days past due; a write-off needs at least {required}")]
    NotOverdueEnough { dpd: u32, required: u32 },
    #[error("decision outcome is {0}; only a decision in manual review can be approved or declined")]
    NotInReview(String),
    #[error("review item was already {0}")]
    ReviewAlreadyDecided(String),
    #[error("grade {0} is not offered by this product")]
    GradeNotOffered(String),
    #[error("limit {limit} is above the grid limit {max} for the grade (minor units)")]
    LimitAboveGrid { limit: i64, max: i64 },
    #[error("invalid review: {0}")]
    InvalidReview(String),
    #[error("unknown decline reason code `{0}`")]
    UnknownDeclineReason(String),
    #[error("rate solver did not converge")]
    IrrNoConvergence,
    #[error(transparent)]
    Money(#[from] money::MoneyError),
}

impl LendingError {
    /// A stable snake_case code for API responses.
    pub fn code(&self) -> &'static str {
        use LendingError::*;
        match self {
            InvalidProduct { .. } => "invalid_product",
            UnknownProduct(_) => "unknown_product",
            InvalidSchedule(_) => "invalid_schedule",
            AmountAboveLimit { .. } => "amount_above_limit",
            AmountBelowMinimum { .. } => "amount_below_minimum",
            AmountNotPositive => "amount_must_be_positive",
            TermNotOffered(_) => "term_not_offered",
            MethodNotOffered(_) => "method_not_offered",
            OfferExpired { .. } => "offer_expired",
            NotApproved(_) => "decision_not_approved",
            CurrencyMismatch { .. } => "currency_mismatch",
            EodDateInPast { .. } => "eod_date_in_past",
            BeforeStart { .. } => "before_loan_start",
            OperationBeforeLastEod { .. } => "operation_before_last_eod",
            LoanNotActive(_) => "loan_not_active",
            LineExceeded { .. } => "line_exceeded",
            WrongLoanKind { .. } => "wrong_loan_kind",
            PrepayWhileOverdue => "prepay_while_overdue",
            PrepayTooSmall { .. } => "prepay_too_small",
            DuplicateDocument(_) => "duplicate_document",
            UnknownDocument(_) => "unknown_document",
            RegistryTampered { .. } => "registry_tampered",
            UnknownReceivable(_) => "unknown_receivable",
            DuplicateReceivable(_) => "duplicate_receivable",
            ReceivableNotConfirmed(_) => "receivable_not_confirmed",
            ReceivableAlreadyFinanced(_) => "receivable_already_financed",
            ReceivableWrongParty(..) => "receivable_wrong_party",
            ReceivableMatured(..) => "receivable_matured",
            InvalidKey(_) => "invalid_key",
            DataSource { .. } => "data_source_error",
            LoanWrittenOff(_) => "loan_written_off",
            NotOverdueEnough { .. } => "loan_not_overdue_enough",
            NotInReview(_) => "not_in_review",
            ReviewAlreadyDecided(_) => "review_already_decided",
            GradeNotOffered(_) => "grade_not_offered",
            LimitAboveGrid { .. } => "limit_above_grid",
            InvalidReview(_) => "invalid_review",
            UnknownDeclineReason(_) => "unknown_decline_reason",
            IrrNoConvergence => "irr_no_convergence",
            Money(money::MoneyError::CurrencyMismatch(..)) => "currency_mismatch",
            Money(money::MoneyError::Overflow) => "overflow",
            Money(_) => "invalid_amount",
        }
    }
}
