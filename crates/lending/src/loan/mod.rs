//! The loan state machine and its accounting model.
//!
//! A [`Loan`] is plain data (serde) holding the contract terms it needs, its balances per
//! accounting bucket and its ageing. Every operation validates first and only then mutates, so
//! an `Err` leaves the loan unchanged, and every operation that moves money returns the
//! [`Posting`]s that the server turns into balanced ledger transfers (one debit role, one credit
//! role, one amount each). Replaying the postings onto per-role balances reproduces the loan's
//! balances to the fen (tested), which is the "loan balances reconcile with the ledger" invariant.
//!
//! ## Accounting buckets
//! | bucket | role | grows by | shrinks by |
//! |---|---|---|---|
//! | principal | [`AccountRole::LoanPrincipal`] | disbursement / draw | repayment, write-off |
//! | interest (accrued + overdue) | [`AccountRole::InterestReceivable`] | daily accrual | repayment, write-off |
//! | penalty | [`AccountRole::PenaltyReceivable`] | daily penalty accrual | repayment, write-off |
//! | fees | [`AccountRole::FeeReceivable`] | [`Loan::charge_fee`] | repayment, write-off |
//!
//! ## Repayment waterfall ([`Loan::repay`])
//! penalty → fees → overdue interest (oldest due first) → overdue principal (oldest due first) →
//! current (accrued, not yet due) interest → current principal (installment loans: the principal
//! part of the running installment; revolving: all principal). Anything left is returned as
//! `leftover`, never silently kept; use [`Loan::prepay`] to reduce principal beyond the running
//! installment.
//!
//! ## End of day ([`eod`])
//! `eod(loan, t)` closes business day `t`: installments due on or before `t` fall due (unpaid
//! amounts become overdue), then the night `t → t+1` is accrued, then the loan is aged.
//! * Installment loans accrue the running line's scheduled interest `I` pro rata over the nights
//!   of its period: after `k` of `n` nights the cumulative accrual is `floor(I × k / n)` (integer
//!   arithmetic), so the nightly amounts differ by at most a fen and the period total is exactly
//!   the scheduled interest (30 daily accruals = the monthly interest to the fen). The carried
//!   sub-fen remainder is implicit in the cumulative formula.
//! * Revolving lines accrue `principal not yet due × daily rate` (daily rate = annual rate / days
//!   in year of the product's day count) in `Decimal`; the whole fen is posted (truncated) and
//!   the fraction is carried in `interest_carry` to the next night, so no fraction is lost or
//!   invented.
//! * Penalty interest accrues on overdue principal and overdue interest at the penalty rate
//!   (contractual rate × the product's multiplier, 1.5 by default) the same way, with
//!   `penalty_carry`.
//! * Idempotent per date: the same date again changes nothing; an earlier date is an error;
//!   a gap is processed day by day.
//!
//! Operations (`draw`, `repay`, `prepay`, `charge_fee`, `write_off`) are dated on the business day
//! they happen and must come after the last end of day that has run; the server should bring a
//! loan up to `date - 1` with [`eod`] before posting one.

use chrono::{Days, NaiveDate};
use money::{Amount, Currency, DayCount, Rounding};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::offer::{Contract, ContractId};
use crate::product::days_in_year;
use crate::schedule::{due_date, reschedule_after_prepayment, Installment, PrepayMode, RepaymentMethod};
use crate::LendingError;

/// Delinquency bucket by days past due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bucket {
    /// 0 days past due.
    Current,
    /// 1–30.
    M1,
    /// 31–60.
    M2,
    /// More than 60.
    M3Plus,
}

impl Bucket {
    pub fn from_dpd(dpd: u32) -> Bucket {
        match dpd {
            0 => Bucket::Current,
            1..=30 => Bucket::M1,
            31..=60 => Bucket::M2,
            _ => Bucket::M3Plus,
        }
    }
}

/// Days past due from which a loan may be written off (M3+ and at least 90 days).
pub const WRITE_OFF_MIN_DPD: u32 = 90;

/// Typed loan id (the id of its contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct LoanId(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoanStatus {
    Active,
    Overdue,
    PaidOff,
    WrittenOff,
}

impl LoanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LoanStatus::Active => "active",
            LoanStatus::Overdue => "overdue",
            LoanStatus::PaidOff => "paid_off",
            LoanStatus::WrittenOff => "written_off",
        }
    }
}

/// Ledger account roles. The server maps each role (per loan or per product) to a ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    /// Asset: principal receivable.
    LoanPrincipal,
    /// Asset: interest accrued (due or not) and unpaid.
    InterestReceivable,
    /// Asset: penalty interest accrued and unpaid.
    PenaltyReceivable,
    /// Asset: fees charged and unpaid.
    FeeReceivable,
    InterestIncome,
    PenaltyIncome,
    FeeIncome,
    /// The borrower's settlement (deposit) account: receives disbursements, pays repayments.
    /// For supply-chain loans the repayment source is the core enterprise's account.
    CustomerAccount,
    /// Expense / allowance charged when a loan is written off.
    LoanLossAllowance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostingPurpose {
    Disbursement,
    Repayment,
    InterestAccrual,
    PenaltyAccrual,
    Fee,
    WriteOff,
}

/// One balanced ledger movement: `amount` from `credit` to `debit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Posting {
    pub loan_id: LoanId,
    pub date: NaiveDate,
    pub debit: AccountRole,
    pub credit: AccountRole,
    pub amount: Amount,
    pub purpose: PostingPurpose,
}

/// An installment (or revolving billing) that fell due and is not fully paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Due {
    pub due_date: NaiveDate,
    pub principal: i64,
    pub interest: i64,
}

/// What the borrower has paid so far, per bucket (minor units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaidToDate {
    pub principal: i64,
    pub interest: i64,
    pub penalty: i64,
    pub fees: i64,
}

/// How one payment was split by the waterfall (minor units). The parts plus `leftover` equal the
/// payment exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Allocation {
    pub penalty: i64,
    pub fees: i64,
    pub overdue_interest: i64,
    pub overdue_principal: i64,
    pub current_interest: i64,
    pub current_principal: i64,
    /// Not applied; returned to the payer.
    pub leftover: i64,
}

impl Allocation {
    pub fn applied(&self) -> i64 {
        self.penalty
            + self.fees
            + self.overdue_interest
            + self.overdue_principal
            + self.current_interest
            + self.current_principal
    }
}

/// Result of [`eod`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EodOutcome {
    /// `true` when the date had already been processed (nothing changed).
    pub already_run: bool,
    pub days_processed: u32,
    pub postings: Vec<Posting>,
}

/// A loan (or a revolving line) and its balances. Amounts are minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Loan {
    pub id: LoanId,
    pub contract_id: ContractId,
    pub product_code: String,
    pub currency: Currency,
    pub method: RepaymentMethod,
    /// Nominal annual rate, decimal string.
    #[schema(value_type = String, example = "0.0500")]
    pub annual_rate: Decimal,
    /// Annual penalty rate (contractual rate × multiplier), decimal string.
    #[schema(value_type = String, example = "0.0750")]
    pub penalty_rate: Decimal,
    pub day_count: DayCount,
    pub rounding: Rounding,
    pub start_date: NaiveDate,
    pub maturity_date: NaiveDate,
    pub term_months: u32,
    /// Revolving: the line limit; installment loans: the original principal.
    pub line_limit: i64,
    /// Installment lines (empty for revolving lines).
    #[serde(default)]
    pub schedule: Vec<Installment>,
    /// Index of the first installment (or revolving billing cycle) that has not fallen due.
    pub next_installment: usize,
    /// Outstanding principal, including overdue principal.
    pub principal: i64,
    /// Interest accrued and not yet due.
    pub accrued_interest: i64,
    /// Interest accrued so far for the running installment line (pro-rata accrual state).
    pub period_accrued: i64,
    /// Principal of the running installment line paid ahead of its due date.
    pub current_principal_paid: i64,
    /// Fallen due and unpaid, oldest first.
    pub dues: Vec<Due>,
    pub penalty: i64,
    pub fees: i64,
    /// Sub-fen remainder of revolving interest carried to the next night, in minor units, in [0, 1)
    /// (decimal string).
    #[schema(value_type = String, example = "0.25")]
    pub interest_carry: Decimal,
    /// Sub-fen remainder of penalty interest, in minor units, in [0, 1) (decimal string).
    #[schema(value_type = String, example = "0")]
    pub penalty_carry: Decimal,
    pub paid: PaidToDate,
    pub status: LoanStatus,
    pub dpd: u32,
    pub last_eod: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
}

fn overflow() -> LendingError {
    LendingError::Money(money::MoneyError::Overflow)
}

impl Loan {
    /// Opens the loan of a signed contract. Installment loans are disbursed in full on the start
    /// date (principal to the customer's account; an upfront fee is deducted from it); revolving
    /// lines open undrawn (see [`Loan::draw`]).
    pub fn open(contract: &Contract) -> (Loan, Vec<Posting>) {
        let id = LoanId(contract.id.0);
        let revolving = contract.method == RepaymentMethod::Revolving;
        let mut loan = Loan {
            id,
            contract_id: contract.id,
            product_code: contract.product_code.clone(),
            currency: contract.principal.currency,
            method: contract.method,
            annual_rate: contract.annual_rate,
            penalty_rate: contract.penalty_rate,
            day_count: contract.day_count,
            rounding: contract.rounding,
            start_date: contract.start_date,
            maturity_date: contract.maturity_date,
            term_months: contract.term_months,
            line_limit: contract.principal.minor,
            schedule: if revolving { Vec::new() } else { contract.schedule.installments.clone() },
            next_installment: 0,
            principal: 0,
            accrued_interest: 0,
            period_accrued: 0,
            current_principal_paid: 0,
            dues: Vec::new(),
            penalty: 0,
            fees: 0,
            interest_carry: Decimal::ZERO,
            penalty_carry: Decimal::ZERO,
            paid: PaidToDate::default(),
            status: LoanStatus::Active,
            dpd: 0,
            last_eod: None,
            closed_on: None,
        };
        let mut postings = Vec::new();
        if !revolving {
            loan.principal = contract.principal.minor;
            postings.push(loan.posting(
                contract.start_date,
                AccountRole::LoanPrincipal,
                AccountRole::CustomerAccount,
                contract.principal.minor,
                PostingPurpose::Disbursement,
            ));
            if contract.upfront_fee.minor > 0 {
                postings.push(loan.posting(
                    contract.start_date,
                    AccountRole::CustomerAccount,
                    AccountRole::FeeIncome,
                    contract.upfront_fee.minor,
                    PostingPurpose::Fee,
                ));
            }
        }
        (loan, postings)
    }

    fn posting(
        &self,
        date: NaiveDate,
        debit: AccountRole,
        credit: AccountRole,
        minor: i64,
        purpose: PostingPurpose,
    ) -> Posting {
        Posting { loan_id: self.id, date, debit, credit, amount: Amount::new(minor, self.currency), purpose }
    }

    pub fn overdue_principal(&self) -> i64 {
        self.dues.iter().map(|d| d.principal).sum()
    }
    pub fn overdue_interest(&self) -> i64 {
        self.dues.iter().map(|d| d.interest).sum()
    }
    /// All interest receivable (accrued + overdue): the `InterestReceivable` balance.
    pub fn interest_receivable(&self) -> i64 {
        self.accrued_interest + self.overdue_interest()
    }
    /// Everything owed as of the last end of day.
    pub fn total_outstanding(&self) -> i64 {
        self.principal + self.interest_receivable() + self.penalty + self.fees
    }
    pub fn bucket(&self) -> Bucket {
        Bucket::from_dpd(self.dpd)
    }
    pub fn is_closed(&self) -> bool {
        matches!(self.status, LoanStatus::PaidOff | LoanStatus::WrittenOff)
    }
    /// Revolving: undrawn part of the line.
    pub fn available(&self) -> i64 {
        if self.method == RepaymentMethod::Revolving {
            (self.line_limit - self.principal).max(0)
        } else {
            0
        }
    }

    fn daily_rate(&self, annual: Decimal) -> Decimal {
        annual / days_in_year(self.day_count)
    }

    fn check_operation(&self, date: NaiveDate, amount: Amount) -> Result<(), LendingError> {
        if self.status == LoanStatus::WrittenOff {
            return Err(LendingError::LoanWrittenOff(self.id.0.to_string()));
        }
        if amount.currency != self.currency {
            return Err(LendingError::CurrencyMismatch { expected: self.currency, got: amount.currency });
        }
        if amount.minor <= 0 {
            return Err(LendingError::AmountNotPositive);
        }
        if date < self.start_date {
            return Err(LendingError::BeforeStart { date, start: self.start_date });
        }
        if let Some(last) = self.last_eod {
            if date <= last {
                return Err(LendingError::OperationBeforeLastEod { date, last_eod: last });
            }
        }
        Ok(())
    }

    /// Revolving: draws from the line on `date`.
    pub fn draw(&mut self, amount: Amount, date: NaiveDate) -> Result<Vec<Posting>, LendingError> {
        self.check_operation(date, amount)?;
        if self.method != RepaymentMethod::Revolving {
            return Err(LendingError::WrongLoanKind { expected: "revolving" });
        }
        if self.status != LoanStatus::Active {
            return Err(LendingError::LoanNotActive(self.status.as_str().into()));
        }
        if date >= self.maturity_date {
            return Err(LendingError::LoanNotActive("matured".into()));
        }
        if amount.minor > self.available() {
            return Err(LendingError::LineExceeded { amount: amount.minor, available: self.available() });
        }
        self.principal += amount.minor;
        Ok(vec![self.posting(
            date,
            AccountRole::LoanPrincipal,
            AccountRole::CustomerAccount,
            amount.minor,
            PostingPurpose::Disbursement,
        )])
    }

    /// Charges a fee (e.g. a late fee); it is collected by the waterfall.
    pub fn charge_fee(&mut self, amount: Amount, date: NaiveDate) -> Result<Vec<Posting>, LendingError> {
        self.check_operation(date, amount)?;
        if self.is_closed() {
            return Err(LendingError::LoanNotActive(self.status.as_str().into()));
        }
        self.fees = self.fees.checked_add(amount.minor).ok_or_else(overflow)?;
        Ok(vec![self.posting(
            date,
            AccountRole::FeeReceivable,
            AccountRole::FeeIncome,
            amount.minor,
            PostingPurpose::Fee,
        )])
    }

    /// Principal still to be paid for the running installment (installment loans) or all
    /// principal not yet due (revolving).
    fn current_principal_due(&self) -> i64 {
        match self.method {
            RepaymentMethod::Revolving => self.principal - self.overdue_principal(),
            _ => self
                .schedule
                .get(self.next_installment)
                .map(|l| (l.principal - self.current_principal_paid).max(0))
                .unwrap_or(0),
        }
    }

    /// Applies a payment through the waterfall (see the module docs) and returns the split and the
    /// postings (one `CustomerAccount → receivable` posting per non-zero part).
    pub fn repay(&mut self, amount: Amount, date: NaiveDate) -> Result<(Allocation, Vec<Posting>), LendingError> {
        self.check_operation(date, amount)?;
        if self.status == LoanStatus::WrittenOff {
            return Err(LendingError::LoanNotActive(self.status.as_str().into()));
        }
        let mut left = amount.minor;
        let mut a = Allocation::default();
        let take = |left: &mut i64, owed: i64| -> i64 {
            let x = (*left).min(owed).max(0);
            *left -= x;
            x
        };
        a.penalty = take(&mut left, self.penalty);
        a.fees = take(&mut left, self.fees);
        a.overdue_interest = take(&mut left, self.overdue_interest());
        a.overdue_principal = take(&mut left, self.overdue_principal());
        a.current_interest = take(&mut left, self.accrued_interest);
        a.current_principal = take(&mut left, self.current_principal_due());
        a.leftover = left;
        self.apply_allocation(&a);
        let postings = self.allocation_postings(&a, date);
        self.refresh_status(date);
        Ok((a, postings))
    }

    fn apply_allocation(&mut self, a: &Allocation) {
        self.penalty -= a.penalty;
        self.fees -= a.fees;
        let mut oi = a.overdue_interest;
        for d in self.dues.iter_mut() {
            let x = oi.min(d.interest);
            d.interest -= x;
            oi -= x;
        }
        let mut op = a.overdue_principal;
        for d in self.dues.iter_mut() {
            let x = op.min(d.principal);
            d.principal -= x;
            op -= x;
        }
        self.dues.retain(|d| d.principal > 0 || d.interest > 0);
        self.accrued_interest -= a.current_interest;
        self.principal -= a.overdue_principal + a.current_principal;
        if self.method != RepaymentMethod::Revolving {
            self.current_principal_paid += a.current_principal;
        }
        self.paid.penalty += a.penalty;
        self.paid.fees += a.fees;
        self.paid.interest += a.overdue_interest + a.current_interest;
        self.paid.principal += a.overdue_principal + a.current_principal;
    }

    fn allocation_postings(&self, a: &Allocation, date: NaiveDate) -> Vec<Posting> {
        let parts = [
            (a.penalty, AccountRole::PenaltyReceivable),
            (a.fees, AccountRole::FeeReceivable),
            (a.overdue_interest + a.current_interest, AccountRole::InterestReceivable),
            (a.overdue_principal + a.current_principal, AccountRole::LoanPrincipal),
        ];
        parts
            .iter()
            .filter(|(m, _)| *m > 0)
            .map(|&(m, role)| self.posting(date, AccountRole::CustomerAccount, role, m, PostingPurpose::Repayment))
            .collect()
    }

    /// Ages the loan and closes it when nothing is owed and nothing more can fall due.
    fn refresh_status(&mut self, date: NaiveDate) {
        if self.is_closed() {
            return;
        }
        self.dpd = match (self.dues.first(), self.last_eod) {
            (Some(d), Some(t)) => u32::try_from((t - d.due_date).num_days() + 1).unwrap_or(0),
            _ => 0,
        };
        let nothing_left_to_fall_due = match self.method {
            RepaymentMethod::Revolving => self.next_installment >= self.term_months as usize,
            _ => self.principal == 0,
        };
        if self.total_outstanding() == 0 && nothing_left_to_fall_due {
            self.status = LoanStatus::PaidOff;
            self.closed_on = Some(date);
            self.dpd = 0;
        } else {
            self.status = if self.dues.is_empty() { LoanStatus::Active } else { LoanStatus::Overdue };
        }
    }

    /// Amount that pays the loan off in full on `date`: everything owed including interest
    /// accrued up to `date` (the end of day of `date - 1` is simulated on a copy if it has not
    /// run yet). Installment loans only owe interest to date, not the rest of the period.
    pub fn payoff_quote(&self, date: NaiveDate) -> Result<Amount, LendingError> {
        let mut copy = self.clone();
        if let Some(prev) = date.checked_sub_days(Days::new(1)) {
            if prev >= copy.start_date && copy.last_eod.is_none_or(|l| l < prev) {
                eod(&mut copy, prev)?;
            }
        }
        Ok(Amount::new(copy.total_outstanding(), self.currency))
    }

    /// Partial or full prepayment on `date`: the payment first settles penalty, fees and the
    /// interest accrued to date, the rest reduces principal (the running installment's principal
    /// first, then the later ones). An installment loan is then rescheduled with `mode` (the first
    /// remaining line accrues from `date` on the new principal). Paying [`Loan::payoff_quote`]
    /// closes the loan. Not allowed while anything is overdue.
    pub fn prepay(
        &mut self,
        amount: Amount,
        date: NaiveDate,
        mode: PrepayMode,
    ) -> Result<(Allocation, Vec<Posting>), LendingError> {
        self.check_operation(date, amount)?;
        if self.is_closed() {
            return Err(LendingError::LoanNotActive(self.status.as_str().into()));
        }
        if !self.dues.is_empty() {
            return Err(LendingError::PrepayWhileOverdue);
        }
        let required = self.penalty + self.fees + self.accrued_interest;
        if amount.minor < required {
            return Err(LendingError::PrepayTooSmall { amount: amount.minor, required });
        }
        if self.method == RepaymentMethod::Revolving {
            return self.repay(amount, date);
        }
        // Validate the reschedule before mutating anything.
        let principal_part = (amount.minor - required).min(self.principal);
        let new_principal = self.principal - principal_part;
        let current = &self.schedule[self.next_installment.min(self.schedule.len().saturating_sub(1))];
        let start = if date < current.accrual_start { current.accrual_start } else { date };
        let full = crate::Schedule {
            currency: self.currency,
            method: self.method,
            annual_rate: self.annual_rate,
            day_count: self.day_count,
            rounding: self.rounding,
            anchor_date: self.start_date,
            installments: self.schedule.clone(),
        };
        let rescheduled = reschedule_after_prepayment(&full, self.next_installment, new_principal, start, mode)?;
        let a = Allocation {
            penalty: self.penalty,
            fees: self.fees,
            overdue_interest: 0,
            overdue_principal: 0,
            current_interest: self.accrued_interest,
            current_principal: principal_part,
            leftover: amount.minor - required - principal_part,
        };
        self.apply_allocation(&a);
        self.schedule = rescheduled.installments;
        self.current_principal_paid = 0;
        self.period_accrued = 0;
        if let Some(m) = self.schedule.last().map(|l| l.due_date) {
            self.maturity_date = m;
        }
        let postings = self.allocation_postings(&a, date);
        self.refresh_status(date);
        Ok((a, postings))
    }

    /// Writes off a loan that is at least `min_dpd` days past due (see [`WRITE_OFF_MIN_DPD`]);
    /// `force` skips the ageing check (an administrator's override). Checks first, so an `Err`
    /// leaves the loan unchanged.
    pub fn write_off_overdue(
        &mut self,
        date: NaiveDate,
        min_dpd: u32,
        force: bool,
    ) -> Result<Vec<Posting>, LendingError> {
        if self.is_closed() {
            return Err(LendingError::LoanNotActive(self.status.as_str().into()));
        }
        if !force && self.dpd < min_dpd {
            return Err(LendingError::NotOverdueEnough { dpd: self.dpd, required: min_dpd });
        }
        self.write_off(date)
    }

    /// Writes the loan off: every receivable is charged to the loss allowance. The loan is closed
    /// with status `written_off`: end of day no longer accrues on it and every later money
    /// operation is refused with [`LendingError::LoanWrittenOff`] (recoveries are not booked
    /// against the loan).
    pub fn write_off(&mut self, date: NaiveDate) -> Result<Vec<Posting>, LendingError> {
        if self.is_closed() {
            return Err(LendingError::LoanNotActive(self.status.as_str().into()));
        }
        if let Some(last) = self.last_eod {
            if date <= last {
                return Err(LendingError::OperationBeforeLastEod { date, last_eod: last });
            }
        }
        let parts = [
            (self.principal, AccountRole::LoanPrincipal),
            (self.interest_receivable(), AccountRole::InterestReceivable),
            (self.penalty, AccountRole::PenaltyReceivable),
            (self.fees, AccountRole::FeeReceivable),
        ];
        let postings = parts
            .iter()
            .filter(|(m, _)| *m > 0)
            .map(|&(m, role)| self.posting(date, AccountRole::LoanLossAllowance, role, m, PostingPurpose::WriteOff))
            .collect();
        self.principal = 0;
        self.accrued_interest = 0;
        self.dues.clear();
        self.penalty = 0;
        self.fees = 0;
        self.interest_carry = Decimal::ZERO;
        self.penalty_carry = Decimal::ZERO;
        self.period_accrued = 0;
        self.status = LoanStatus::WrittenOff;
        self.closed_on = Some(date);
        Ok(postings)
    }

    /// One business day `t` (see the module docs).
    fn eod_one(&mut self, t: NaiveDate, out: &mut Vec<Posting>) -> Result<(), LendingError> {
        if self.is_closed() {
            self.last_eod = Some(t);
            return Ok(());
        }
        // 1. Falling due.
        match self.method {
            RepaymentMethod::Revolving => {
                let cycles = self.term_months as usize;
                if self.next_installment < cycles && due_date(self.start_date, self.next_installment as u32 + 1)? <= t {
                    self.next_installment += 1;
                    let principal =
                        if self.next_installment == cycles { self.principal - self.overdue_principal() } else { 0 };
                    let interest = self.accrued_interest;
                    self.accrued_interest = 0;
                    if principal > 0 || interest > 0 {
                        self.dues.push(Due { due_date: t, principal, interest });
                    }
                }
            }
            _ => {
                while let Some(line) = self.schedule.get(self.next_installment).copied() {
                    if line.due_date > t {
                        break;
                    }
                    let principal = (line.principal - self.current_principal_paid).max(0);
                    let interest = self.accrued_interest;
                    if principal > 0 || interest > 0 {
                        self.dues.push(Due { due_date: line.due_date, principal, interest });
                    }
                    self.accrued_interest = 0;
                    self.period_accrued = 0;
                    self.current_principal_paid = 0;
                    self.next_installment += 1;
                }
            }
        }
        // 2. Accrual for the night t -> t+1.
        let interest = match self.method {
            RepaymentMethod::Revolving => {
                let base = self.principal - self.overdue_principal();
                if base > 0 {
                    let exact = Decimal::from(base) * self.daily_rate(self.annual_rate) + self.interest_carry;
                    let whole = exact.trunc();
                    self.interest_carry = exact - whole;
                    whole.to_i64().ok_or_else(overflow)?
                } else {
                    0
                }
            }
            _ => match self.schedule.get(self.next_installment) {
                Some(line) if t >= line.accrual_start => {
                    let nights = (line.due_date - line.accrual_start).num_days().max(1) as i128;
                    let done = ((t - line.accrual_start).num_days() + 1) as i128;
                    let target = (line.interest as i128 * done.min(nights) / nights) as i64;
                    let add = target - self.period_accrued;
                    self.period_accrued = target;
                    add
                }
                _ => 0,
            },
        };
        if interest > 0 {
            self.accrued_interest += interest;
            out.push(self.posting(
                t,
                AccountRole::InterestReceivable,
                AccountRole::InterestIncome,
                interest,
                PostingPurpose::InterestAccrual,
            ));
        }
        let overdue_base = self.overdue_principal() + self.overdue_interest();
        if overdue_base > 0 {
            let exact = Decimal::from(overdue_base) * self.daily_rate(self.penalty_rate) + self.penalty_carry;
            let whole = exact.trunc();
            self.penalty_carry = exact - whole;
            let pen = whole.to_i64().ok_or_else(overflow)?;
            if pen > 0 {
                self.penalty += pen;
                out.push(self.posting(
                    t,
                    AccountRole::PenaltyReceivable,
                    AccountRole::PenaltyIncome,
                    pen,
                    PostingPurpose::PenaltyAccrual,
                ));
            }
        }
        // 3. Ageing.
        self.last_eod = Some(t);
        self.refresh_status(t);
        Ok(())
    }
}

/// End of day for `date` (see the module docs): idempotent per date, gaps processed day by day,
/// an earlier date than the last processed one is [`LendingError::EodDateInPast`]. Deterministic
/// and free of I/O; on error the loan is unchanged.
pub fn eod(loan: &mut Loan, date: NaiveDate) -> Result<EodOutcome, LendingError> {
    let first = match loan.last_eod {
        Some(last) if date == last => {
            return Ok(EodOutcome { already_run: true, days_processed: 0, postings: Vec::new() })
        }
        Some(last) if date < last => return Err(LendingError::EodDateInPast { requested: date, last }),
        Some(last) => last.succ_opt().ok_or_else(overflow)?,
        None => {
            if date < loan.start_date {
                return Err(LendingError::BeforeStart { date, start: loan.start_date });
            }
            loan.start_date
        }
    };
    let mut work = loan.clone_if_multi(first, date);
    let target: &mut Loan = work.as_mut().unwrap_or(loan);
    let mut postings = Vec::new();
    let mut day = first;
    let mut days = 0;
    loop {
        target.eod_one(day, &mut postings)?;
        days += 1;
        if day == date {
            break;
        }
        day = day.succ_opt().ok_or_else(overflow)?;
    }
    if let Some(w) = work {
        *loan = w;
    }
    Ok(EodOutcome { already_run: false, days_processed: days, postings })
}

impl Loan {
    /// A single day cannot fail half-way after mutating (errors come before any mutation), so
    /// only multi-day catch-ups work on a copy to keep "on error, unchanged".
    fn clone_if_multi(&self, first: NaiveDate, last: NaiveDate) -> Option<Loan> {
        (first != last).then(|| self.clone())
    }
}

/// Storage-facing trait implemented by the server's database layer.
pub trait LoanStore {
    fn load(&self, id: LoanId) -> Result<Option<Loan>, LendingError>;
    /// Saves the loan together with the postings produced by the operation (one transaction).
    fn save(&mut self, loan: &Loan, postings: &[Posting]) -> Result<(), LendingError>;
    /// Loans that end of day must process (not closed, or closed after `date`).
    fn open_loan_ids(&self) -> Result<Vec<LoanId>, LendingError>;
}

/// An in-memory [`LoanStore`] for tests and demos.
#[derive(Debug, Default, Clone)]
pub struct MemoryLoanStore {
    pub loans: std::collections::BTreeMap<LoanId, Loan>,
    pub journal: Vec<Posting>,
}

impl LoanStore for MemoryLoanStore {
    fn load(&self, id: LoanId) -> Result<Option<Loan>, LendingError> {
        Ok(self.loans.get(&id).cloned())
    }
    fn save(&mut self, loan: &Loan, postings: &[Posting]) -> Result<(), LendingError> {
        self.loans.insert(loan.id, loan.clone());
        self.journal.extend_from_slice(postings);
        Ok(())
    }
    fn open_loan_ids(&self) -> Result<Vec<LoanId>, LendingError> {
        Ok(self.loans.values().filter(|l| !l.is_closed()).map(|l| l.id).collect())
    }
}

#[cfg(test)]
mod tests;
