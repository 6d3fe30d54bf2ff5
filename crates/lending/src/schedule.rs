//! Repayment schedules: equal installment (annuity), equal principal, interest-only with a
//! bullet, and the preview of a fully drawn revolving line; rescheduling after a partial
//! prepayment.
//!
//! Conventions (stated once, used everywhere):
//! * Installment loans use the monthly period rate `annual / 12` (the usual CNY practice for
//!   等额本息 / 等额本金), so 100,000.00 at 6% over 12 months is 8,606.64 a month.
//! * A revolving line accrues `principal × annual × day_count.year_fraction(start, due)` per
//!   period (with a per-day quote and ACT/360, `annual = daily × 360`, i.e. `principal × daily ×
//!   days`).
//! * Interest per period and the annuity installment are rounded to minor units with the
//!   product's [`Rounding`]; the principal parts are whole minor units and the **last
//!   installment absorbs all rounding**, so the principal parts always sum exactly to the loan.

use chrono::{Months, NaiveDate};
use money::{Amount, Currency, DayCount, Rounding};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::LendingError;

/// How principal and interest are repaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RepaymentMethod {
    /// 等额本息: equal total installments (annuity).
    EqualInstallment,
    /// 等额本金: equal principal parts, decreasing interest.
    EqualPrincipal,
    /// Interest every month, all principal at maturity.
    InterestOnlyBullet,
    /// A credit line: draw and repay any time, interest accrued daily, interest due monthly,
    /// principal due at the end of the line tenor.
    Revolving,
}

impl RepaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            RepaymentMethod::EqualInstallment => "equal_installment",
            RepaymentMethod::EqualPrincipal => "equal_principal",
            RepaymentMethod::InterestOnlyBullet => "interest_only_bullet",
            RepaymentMethod::Revolving => "revolving",
        }
    }
}

/// What to keep when a partial prepayment reduces the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrepayMode {
    /// Same number of installments, lower installment.
    KeepTerm,
    /// Same installment (annuity) or principal part (equal principal), fewer installments.
    KeepInstallment,
}

/// Input of [`build_schedule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRequest {
    pub principal: Amount,
    /// Nominal annual rate (0.06 = 6%).
    pub annual_rate: Decimal,
    pub term_months: u32,
    /// Disbursement date; installment `k` falls due `k` months later (clamped to month end).
    pub start_date: NaiveDate,
    pub method: RepaymentMethod,
    pub day_count: DayCount,
    pub rounding: Rounding,
}

/// One line of a schedule. Amounts in minor units of [`Schedule::currency`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(description = "One line of a schedule. Amounts in minor units of the schedule's (the loan's) currency.")]
pub struct Installment {
    /// 1-based position in the original schedule (kept across reschedules).
    pub seq: u32,
    /// Interest of this line accrues over the nights from `accrual_start` to `due_date`.
    pub accrual_start: NaiveDate,
    pub due_date: NaiveDate,
    pub principal: i64,
    pub interest: i64,
    /// Principal still outstanding after this installment is paid.
    pub remaining_principal: i64,
}

impl Installment {
    pub fn total(&self) -> i64 {
        self.principal + self.interest
    }
}

/// A repayment schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub currency: Currency,
    pub method: RepaymentMethod,
    /// Nominal annual rate, decimal string.
    #[schema(value_type = String, example = "0.0500")]
    pub annual_rate: Decimal,
    pub day_count: DayCount,
    pub rounding: Rounding,
    /// The date installment due dates are counted from (the original disbursement date).
    pub anchor_date: NaiveDate,
    pub installments: Vec<Installment>,
}

impl Schedule {
    pub fn total_principal(&self) -> i64 {
        self.installments.iter().map(|i| i.principal).sum()
    }
    pub fn total_interest(&self) -> i64 {
        self.installments.iter().map(|i| i.interest).sum()
    }
    pub fn total_payment(&self) -> i64 {
        self.installments.iter().map(Installment::total).sum()
    }
    pub fn maturity(&self) -> Option<NaiveDate> {
        self.installments.last().map(|i| i.due_date)
    }
}

/// Installment `k` (1-based) falls due `k` months after `anchor`, clamped to the month end.
pub fn due_date(anchor: NaiveDate, k: u32) -> Result<NaiveDate, LendingError> {
    anchor.checked_add_months(Months::new(k)).ok_or_else(|| LendingError::InvalidSchedule("date out of range".into()))
}

fn round_minor(value: Decimal, rounding: Rounding) -> Result<i64, LendingError> {
    rounding.round(value, 0).to_i64().ok_or(LendingError::Money(money::MoneyError::Overflow))
}

/// The annuity installment in minor units for `principal` over `n` periods at period rate `r`.
pub fn annuity_installment(principal: i64, r: Decimal, n: u32, rounding: Rounding) -> Result<i64, LendingError> {
    if n == 0 {
        return Err(LendingError::InvalidSchedule("term must be at least one period".into()));
    }
    let p = Decimal::from(principal);
    if r.is_zero() {
        return round_minor(p / Decimal::from(n), rounding);
    }
    let mut q = Decimal::ONE;
    let base = Decimal::ONE + r;
    for _ in 0..n {
        q = q.checked_mul(base).ok_or(LendingError::Money(money::MoneyError::Overflow))?;
    }
    let value =
        p.checked_mul(r).and_then(|x| x.checked_mul(q)).ok_or(LendingError::Money(money::MoneyError::Overflow))?
            / (q - Decimal::ONE);
    round_minor(value, rounding)
}

struct Plan {
    currency: Currency,
    method: RepaymentMethod,
    annual: Decimal,
    day_count: DayCount,
    rounding: Rounding,
    anchor: NaiveDate,
}

impl Plan {
    fn period_rate(&self) -> Decimal {
        self.annual / Decimal::from(12)
    }

    fn interest(
        &self,
        remaining: i64,
        start: NaiveDate,
        due: NaiveDate,
        fraction: Decimal,
    ) -> Result<i64, LendingError> {
        let p = Decimal::from(remaining);
        let raw = match self.method {
            RepaymentMethod::Revolving => p * self.annual * self.day_count.year_fraction(start, due),
            _ => p * self.period_rate() * fraction,
        };
        round_minor(raw, self.rounding)
    }

    /// Builds lines with sequence numbers `first_seq..first_seq + n` (or fewer when keeping the
    /// installment), the first accruing from `first_start` with `first_fraction` of a period.
    #[allow(clippy::too_many_arguments)]
    fn lines(
        &self,
        principal: i64,
        first_seq: u32,
        n: u32,
        first_start: NaiveDate,
        first_fraction: Decimal,
        keep: Option<i64>,
    ) -> Result<Vec<Installment>, LendingError> {
        if n == 0 {
            return Err(LendingError::InvalidSchedule("no installments left".into()));
        }
        let annuity = match (self.method, keep) {
            (RepaymentMethod::EqualInstallment, Some(a)) => a,
            (RepaymentMethod::EqualInstallment, None) => {
                annuity_installment(principal, self.period_rate(), n, self.rounding)?
            }
            _ => 0,
        };
        let per_principal = match (self.method, keep) {
            (RepaymentMethod::EqualPrincipal, Some(p)) => p,
            (RepaymentMethod::EqualPrincipal, None) => {
                round_minor(Decimal::from(principal) / Decimal::from(n), self.rounding)?
            }
            _ => 0,
        };
        let mut out = Vec::with_capacity(n as usize);
        let mut remaining = principal;
        let mut start = first_start;
        for i in 0..n {
            let seq = first_seq + i;
            let due = due_date(self.anchor, seq)?;
            let fraction = if i == 0 { first_fraction } else { Decimal::ONE };
            let interest = self.interest(remaining, start, due, fraction)?;
            let last = i + 1 == n;
            let mut part = match self.method {
                RepaymentMethod::EqualInstallment => (annuity - interest).clamp(0, remaining),
                RepaymentMethod::EqualPrincipal => per_principal.clamp(0, remaining),
                RepaymentMethod::InterestOnlyBullet | RepaymentMethod::Revolving => 0,
            };
            if last {
                part = remaining;
            }
            remaining -= part;
            out.push(Installment {
                seq,
                accrual_start: start,
                due_date: due,
                principal: part,
                interest,
                remaining_principal: remaining,
            });
            start = due;
            if remaining == 0 && keep.is_some() {
                break;
            }
        }
        Ok(out)
    }

    fn schedule(&self, installments: Vec<Installment>) -> Schedule {
        Schedule {
            currency: self.currency,
            method: self.method,
            annual_rate: self.annual,
            day_count: self.day_count,
            rounding: self.rounding,
            anchor_date: self.anchor,
            installments,
        }
    }
}

/// Builds a full schedule. For [`RepaymentMethod::Revolving`] this is the preview of a line drawn
/// in full on the start date and held to the end of the tenor (interest monthly, bullet).
pub fn build_schedule(req: &ScheduleRequest) -> Result<Schedule, LendingError> {
    if req.principal.minor <= 0 {
        return Err(LendingError::AmountNotPositive);
    }
    if req.term_months == 0 || req.term_months > 480 {
        return Err(LendingError::InvalidSchedule("term must be 1..=480 months".into()));
    }
    if req.annual_rate < Decimal::ZERO || req.annual_rate > Decimal::from(10) {
        return Err(LendingError::InvalidSchedule("annual rate must be within 0..=10".into()));
    }
    let plan = Plan {
        currency: req.principal.currency,
        method: req.method,
        annual: req.annual_rate,
        day_count: req.day_count,
        rounding: req.rounding,
        anchor: req.start_date,
    };
    let lines = plan.lines(req.principal.minor, 1, req.term_months, req.start_date, Decimal::ONE, None)?;
    Ok(plan.schedule(lines))
}

/// The schedule after a partial prepayment made on `date`, when the lines before `next_index`
/// are settled and `new_principal` remains. The first remaining line accrues interest from
/// `date` on the new principal for the rest of its period (the interest up to `date` is settled
/// with the prepayment), later lines are regular.
///
/// * [`PrepayMode::KeepTerm`]: same due dates, installment (or principal part) recomputed.
/// * [`PrepayMode::KeepInstallment`]: the annuity installment (or equal-principal part) of the
///   current line is kept and the schedule ends earlier. Interest-only loans always keep the term.
pub fn reschedule_after_prepayment(
    schedule: &Schedule,
    next_index: usize,
    new_principal: i64,
    date: NaiveDate,
    mode: PrepayMode,
) -> Result<Schedule, LendingError> {
    let current = schedule
        .installments
        .get(next_index)
        .ok_or_else(|| LendingError::InvalidSchedule("no remaining installment to reschedule".into()))?;
    if date < current.accrual_start || date > current.due_date {
        return Err(LendingError::InvalidSchedule("prepayment date outside the current period".into()));
    }
    let plan = Plan {
        currency: schedule.currency,
        method: schedule.method,
        annual: schedule.annual_rate,
        day_count: schedule.day_count,
        rounding: schedule.rounding,
        anchor: schedule.anchor_date,
    };
    let mut settled: Vec<Installment> = schedule.installments[..next_index].to_vec();
    if new_principal <= 0 {
        return Ok(plan.schedule(settled));
    }
    let remaining_count = (schedule.installments.len() - next_index) as u32;
    let period_days = (current.due_date - current.accrual_start).num_days().max(1);
    let fraction = Decimal::from((current.due_date - date).num_days()) / Decimal::from(period_days);
    let keep = match (mode, schedule.method) {
        (PrepayMode::KeepInstallment, RepaymentMethod::EqualInstallment) => Some(current.total()),
        (PrepayMode::KeepInstallment, RepaymentMethod::EqualPrincipal) => Some(current.principal),
        _ => None,
    };
    let lines = plan.lines(new_principal, current.seq, remaining_count, date, fraction, keep)?;
    settled.extend(lines);
    Ok(plan.schedule(settled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn date(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn req(minor: i64, rate: &str, term: u32, method: RepaymentMethod) -> ScheduleRequest {
        ScheduleRequest {
            principal: Amount::new(minor, Currency::CNY),
            annual_rate: d(rate),
            term_months: term,
            start_date: date(2026, 1, 15),
            method,
            day_count: DayCount::Act360,
            rounding: Rounding::HalfUp,
        }
    }

    #[test]
    fn annuity_100k_12m_6pct() {
        let s = build_schedule(&req(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment)).unwrap();
        assert_eq!(s.installments.len(), 12);
        assert_eq!(s.installments[0].total(), 8_606_64);
        assert_eq!(s.installments[0].interest, 500_00);
        assert_eq!(s.installments[0].principal, 8_106_64);
        assert_eq!(s.installments[1].interest, 459_47); // 91,893.36 × 0.5% = 459.4668
        for i in &s.installments[..11] {
            assert_eq!(i.total(), 8_606_64);
        }
        let last = s.installments[11];
        assert!((last.total() - 8_606_64).abs() <= 12, "last {}", last.total());
        assert_eq!(s.total_principal(), 100_000_00);
        assert_eq!(last.remaining_principal, 0);
        assert_eq!(last.due_date, date(2027, 1, 15));
        // Hand check: 12 × 8,606.64 − 100,000 = 3,279.68; the last line absorbs the rounding of
        // the installment (0.4 fen short per period, compounded), here +5 fen.
        assert_eq!(last.total(), 8_606_69);
        assert_eq!(s.total_interest(), 3_279_73);
    }

    #[test]
    fn equal_principal_hand_values() {
        let s = build_schedule(&req(120_000_00, "0.06", 12, RepaymentMethod::EqualPrincipal)).unwrap();
        assert_eq!(s.installments[0].principal, 10_000_00);
        assert_eq!(s.installments[0].interest, 600_00);
        assert_eq!(s.installments[1].interest, 550_00);
        assert_eq!(s.installments[11].interest, 50_00);
        assert_eq!(s.total_interest(), 3_900_00); // 600+550+...+50
                                                  // 100,000 / 7 = 14,285.714 → 14,285.71 × 6, last 14,285.74
        let s = build_schedule(&req(100_000_00, "0.06", 7, RepaymentMethod::EqualPrincipal)).unwrap();
        assert_eq!(s.installments[0].principal, 14_285_71);
        assert_eq!(s.installments[6].principal, 14_285_74);
        assert_eq!(s.total_principal(), 100_000_00);
    }

    #[test]
    fn interest_only_bullet_hand_values() {
        let s = build_schedule(&req(500_000_00, "0.048", 3, RepaymentMethod::InterestOnlyBullet)).unwrap();
        let lines: Vec<(i64, i64)> = s.installments.iter().map(|i| (i.principal, i.interest)).collect();
        assert_eq!(lines, vec![(0, 2_000_00), (0, 2_000_00), (500_000_00, 2_000_00)]);
    }

    #[test]
    fn revolving_preview_uses_days() {
        // 1,000,000 at 0.015%/day (5.4% ACT/360); Jan 15 → Feb 15 is 31 days: 1,000,000 × 0.00015 × 31.
        let s = build_schedule(&ScheduleRequest {
            rounding: Rounding::Bankers,
            ..req(1_000_000_00, "0.054", 2, RepaymentMethod::Revolving)
        })
        .unwrap();
        assert_eq!(s.installments[0].interest, 4_650_00);
        assert_eq!(s.installments[1].interest, 4_200_00); // 28 days of February
        assert_eq!(s.installments[1].principal, 1_000_000_00);
    }

    #[test]
    fn zero_rate_annuity_splits_evenly() {
        let s = build_schedule(&req(100_00, "0", 3, RepaymentMethod::EqualInstallment)).unwrap();
        let parts: Vec<i64> = s.installments.iter().map(|i| i.principal).collect();
        assert_eq!(parts, vec![33_33, 33_33, 33_34]);
        assert_eq!(s.total_interest(), 0);
    }

    #[test]
    fn rejects_bad_requests() {
        assert!(build_schedule(&req(0, "0.06", 12, RepaymentMethod::EqualInstallment)).is_err());
        assert!(build_schedule(&req(100, "0.06", 0, RepaymentMethod::EqualInstallment)).is_err());
        assert!(build_schedule(&req(100, "-0.01", 3, RepaymentMethod::EqualInstallment)).is_err());
    }

    #[test]
    fn prepayment_keep_term_lowers_the_installment() {
        let s = build_schedule(&req(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment)).unwrap();
        // After 3 installments, on the 4th due-period start, pay 20,000 off the remaining principal.
        let remaining = s.installments[2].remaining_principal - 20_000_00;
        let start = s.installments[3].accrual_start;
        let r = reschedule_after_prepayment(&s, 3, remaining, start, PrepayMode::KeepTerm).unwrap();
        assert_eq!(r.installments.len(), 12);
        assert_eq!(&r.installments[..3], &s.installments[..3]);
        assert!(r.installments[3].total() < s.installments[3].total());
        let new_part: i64 = r.installments[3..].iter().map(|i| i.principal).sum();
        assert_eq!(new_part, remaining);
        // Equal installments over the 9 remaining periods.
        let a = annuity_installment(remaining, d("0.005"), 9, Rounding::HalfUp).unwrap();
        assert!(r.installments[3..11].iter().all(|i| i.total() == a));
    }

    #[test]
    fn prepayment_keep_installment_shortens_the_term() {
        let s = build_schedule(&req(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment)).unwrap();
        let remaining = s.installments[2].remaining_principal - 30_000_00;
        let start = s.installments[3].accrual_start;
        let r = reschedule_after_prepayment(&s, 3, remaining, start, PrepayMode::KeepInstallment).unwrap();
        assert!(r.installments.len() < 12, "{}", r.installments.len());
        assert!(r.installments[3..r.installments.len() - 1].iter().all(|i| i.total() == 8_606_64));
        let paid_first3: i64 = s.installments[..3].iter().map(|i| i.principal).sum();
        assert_eq!(r.total_principal(), paid_first3 + remaining);
        assert_eq!(r.installments.last().unwrap().remaining_principal, 0);
    }

    #[test]
    fn mid_period_prepayment_prorates_the_first_interest() {
        let s = build_schedule(&req(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment)).unwrap();
        // Prepay in the middle of period 1 (Jan 15 → Feb 15 = 31 days), on Jan 31: 15 days left.
        let r = reschedule_after_prepayment(&s, 0, 50_000_00, date(2026, 1, 31), PrepayMode::KeepTerm).unwrap();
        let expected = (Decimal::from(50_000_00) * d("0.005") * Decimal::from(15) / Decimal::from(31)).round();
        assert_eq!(Decimal::from(r.installments[0].interest), expected);
        assert_eq!(r.installments[0].accrual_start, date(2026, 1, 31));
        assert_eq!(r.total_principal(), 50_000_00);
    }

    fn methods() -> impl Strategy<Value = RepaymentMethod> {
        prop_oneof![
            Just(RepaymentMethod::EqualInstallment),
            Just(RepaymentMethod::EqualPrincipal),
            Just(RepaymentMethod::InterestOnlyBullet),
            Just(RepaymentMethod::Revolving),
        ]
    }
    fn roundings() -> impl Strategy<Value = Rounding> {
        prop_oneof![Just(Rounding::HalfUp), Just(Rounding::Bankers), Just(Rounding::Down), Just(Rounding::Up)]
    }

    proptest! {
        #[test]
        fn principal_parts_sum_exactly(
            minor in 1i64..10_000_000_000, bps in 0i64..3_600, term in 1u32..=60,
            method in methods(), rounding in roundings(),
        ) {
            let r = ScheduleRequest { rounding, ..req(minor, "0", term, method) };
            let r = ScheduleRequest { annual_rate: Decimal::new(bps, 4), ..r };
            let s = build_schedule(&r).unwrap();
            prop_assert_eq!(s.installments.len(), term as usize);
            prop_assert_eq!(s.total_principal(), minor);
            prop_assert!(s.installments.iter().all(|i| i.principal >= 0 && i.interest >= 0 && i.remaining_principal >= 0));
            prop_assert_eq!(s.installments.last().unwrap().remaining_principal, 0);
            if method == RepaymentMethod::EqualInstallment && term > 1 {
                let first = s.installments[0].total();
                // All but the last are equal unless the principal is smaller than a few fen
                // per period (then the clamp to the remaining principal applies).
                if minor > 100 * i64::from(term) {
                    prop_assert!(s.installments[..s.installments.len() - 1].iter().all(|i| i.total() == first));
                    let last = s.installments.last().unwrap().total();
                    // The installment is rounded to the fen (error ≤ 0.5 fen, ≤ 1 fen for Up/Down);
                    // that error compounds at the period rate into the last line:
                    // bound = Σ_{k<n} (1+r)^k fen + 1.
                    let r = bps as f64 / 10_000.0 / 12.0;
                    let bound = (0..term).map(|k| (1.0 + r).powi(k as i32)).sum::<f64>().ceil() as i64 + 1;
                    prop_assert!((last - first).abs() <= bound, "last {} first {} bound {}", last, first, bound);
                }
            }
        }

        #[test]
        fn reschedule_keeps_principal_exact(
            minor in 100_000i64..1_000_000_000, bps in 1i64..2_400, term in 2u32..=36,
            k_frac in 0.0f64..1.0, pay_frac in 0.0f64..1.0, keep in any::<bool>(),
            method in prop_oneof![Just(RepaymentMethod::EqualInstallment), Just(RepaymentMethod::EqualPrincipal), Just(RepaymentMethod::InterestOnlyBullet)],
        ) {
            let r = ScheduleRequest { annual_rate: Decimal::new(bps, 4), ..req(minor, "0", term, method) };
            let s = build_schedule(&r).unwrap();
            let k = ((term - 1) as f64 * k_frac) as usize;
            let before = if k == 0 { minor } else { s.installments[k - 1].remaining_principal };
            let new_principal = (before as f64 * pay_frac) as i64;
            let mode = if keep { PrepayMode::KeepInstallment } else { PrepayMode::KeepTerm };
            let start = s.installments[k].accrual_start;
            let out = reschedule_after_prepayment(&s, k, new_principal, start, mode).unwrap();
            let paid_before: i64 = s.installments[..k].iter().map(|i| i.principal).sum();
            prop_assert_eq!(out.total_principal(), paid_before + new_principal);
            prop_assert!(out.installments.len() <= s.installments.len());
            prop_assert!(out.installments.iter().all(|i| i.principal >= 0 && i.interest >= 0));
        }
    }
}
