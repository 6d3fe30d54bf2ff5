//! Offers, APR, acceptance and contracts.
//!
//! APR is the annualised effective rate that sets the net present value of the borrower's cash
//! flows to zero (an IRR): at time 0 the net amount received (principal − upfront fee), then every
//! installment at its time in years (`k / 12` for monthly installments, actual days / 365 for a
//! revolving preview). The root is found in `f64` with Newton steps safeguarded by bisection inside
//! a sign-changing bracket; only the rate is a float, every amount stays integer minor units.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
#[cfg(test)]
use money::Currency;
use money::{Amount, DayCount, Rounding};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::decision::{Decision, DecisionId, Outcome};
use crate::product::{Product, RateBasis};
use crate::schedule::{build_schedule, RepaymentMethod, Schedule, ScheduleRequest};
use crate::LendingError;

const NS: Uuid = Uuid::from_u128(0x6c65_6e64_696e_6700_0000_0000_0000_0001);

/// Identifies an offer (derived from its decision: one offer per approved decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct OfferId(pub Uuid);

/// Identifies a contract; its loan has the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct ContractId(pub Uuid);

/// Schedule preview of one term × method at the full limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SchedulePreview {
    pub term_months: u32,
    pub method: RepaymentMethod,
    pub amount: Amount,
    pub first_installment: Amount,
    pub last_installment: Amount,
    pub total_interest: Amount,
    pub fee: Amount,
    /// Annualised effective rate incl. fees, e.g. 0.061678 (decimal string).
    #[schema(value_type = String, example = "0.061678")]
    pub apr: Decimal,
}

/// An offer: the approved limit and rate, with schedule previews and APR per term and method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Offer {
    pub id: OfferId,
    pub decision_id: DecisionId,
    pub product_code: String,
    pub applicant_id: String,
    pub limit: Amount,
    pub min_amount: Amount,
    pub rate_basis: RateBasis,
    /// The rate as quoted to the customer (per year or per day), decimal string.
    #[schema(value_type = String, example = "0.0500")]
    pub quoted_rate: Decimal,
    /// Nominal annual rate used for schedules, decimal string.
    #[schema(value_type = String, example = "0.0500")]
    pub annual_rate: Decimal,
    /// Annual penalty rate, decimal string.
    #[schema(value_type = String, example = "0.0750")]
    pub penalty_rate: Decimal,
    pub terms_months: Vec<u32>,
    pub methods: Vec<RepaymentMethod>,
    /// Decimal string.
    #[schema(value_type = String, example = "0")]
    pub upfront_fee_rate: Decimal,
    pub day_count: DayCount,
    pub rounding: Rounding,
    pub previews: Vec<SchedulePreview>,
    /// Supply chain: the receivable financed.
    pub receivable_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What the customer accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptRequest {
    /// Principal (installment loans) or line amount (revolving), at most the offer limit.
    pub amount: Amount,
    pub term_months: u32,
    pub method: RepaymentMethod,
    pub start_date: NaiveDate,
    pub accepted_at: DateTime<Utc>,
}

/// A signed contract; [`crate::Loan::open`] turns it into a loan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(description = "A signed contract; its loan has the same id.")]
pub struct Contract {
    pub id: ContractId,
    /// The accepted offer; for contracts made without one, a derived id of no stored offer.
    pub offer_id: OfferId,
    /// The approved decision behind the offer; the nil UUID for contracts made without one
    /// (supply-chain financing, imported and demo loans).
    pub decision_id: DecisionId,
    pub product_code: String,
    pub applicant_id: String,
    /// Principal, or the line limit of a revolving line.
    pub principal: Amount,
    /// Nominal annual rate, decimal string.
    #[schema(value_type = String, example = "0.0500")]
    pub annual_rate: Decimal,
    /// Annual penalty rate, decimal string.
    #[schema(value_type = String, example = "0.0750")]
    pub penalty_rate: Decimal,
    pub method: RepaymentMethod,
    pub term_months: u32,
    pub start_date: NaiveDate,
    pub maturity_date: NaiveDate,
    pub day_count: DayCount,
    pub rounding: Rounding,
    pub upfront_fee: Amount,
    /// The repayment schedule (revolving: preview of a full draw held to maturity).
    pub schedule: Schedule,
    /// Annualised effective rate incl. fees, decimal string.
    #[schema(value_type = String, example = "0.051162")]
    pub apr: Decimal,
    pub receivable_id: Option<String>,
    pub signed_at: DateTime<Utc>,
}

/// Solves `Σ amount_i / (1 + r)^t_i = 0` for `r` (times in years). Returns the rate per year.
pub fn irr(flows: &[(f64, f64)]) -> Result<f64, LendingError> {
    let npv = |r: f64| -> (f64, f64) {
        let mut v = 0.0;
        let mut dv = 0.0;
        for &(t, a) in flows {
            let disc = (1.0 + r).powf(-t);
            v += a * disc;
            dv += -t * a * disc / (1.0 + r);
        }
        (v, dv)
    };
    let (mut lo, mut hi) = (-0.99, 1.0);
    let (mut flo, _) = npv(lo);
    let (mut fhi, _) = npv(hi);
    while flo.signum() == fhi.signum() {
        if hi > 1e6 {
            return Err(LendingError::IrrNoConvergence);
        }
        hi *= 4.0;
        fhi = npv(hi).0;
    }
    let mut r = 0.1f64.clamp(lo, hi);
    for _ in 0..200 {
        let (f, df) = npv(r);
        if f.abs() < 1e-9 {
            return Ok(r);
        }
        if f.signum() == flo.signum() {
            lo = r;
            flo = f;
        } else {
            hi = r;
        }
        let newton = if df != 0.0 { r - f / df } else { f64::NAN };
        r = if newton.is_finite() && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
        if hi - lo < 1e-14 {
            return Ok(r);
        }
    }
    let _ = fhi;
    Ok(r)
}

/// APR of a schedule with an upfront fee deducted from the amount paid out, rounded to 6 dp.
pub fn apr(schedule: &Schedule, upfront_fee: i64) -> Result<Decimal, LendingError> {
    let principal = schedule.total_principal();
    let mut flows = Vec::with_capacity(schedule.installments.len() + 1);
    flows.push((0.0, -((principal - upfront_fee) as f64)));
    for line in &schedule.installments {
        let t = match schedule.method {
            RepaymentMethod::Revolving => (line.due_date - schedule.anchor_date).num_days() as f64 / 365.0,
            _ => f64::from(line.seq) / 12.0,
        };
        flows.push((t, line.total() as f64));
    }
    let r = irr(&flows)?;
    Decimal::from_f64(r).map(|d| d.round_dp(6)).ok_or(LendingError::IrrNoConvergence)
}

fn fee_of(product_fee_rate: Decimal, amount: Amount) -> Result<Amount, LendingError> {
    Ok(amount.mul_rate(money::Rate::new(product_fee_rate), Rounding::HalfUp)?)
}

/// Builds the offer for an approved decision, valid `offer_validity_hours` from `now`.
pub fn make_offer(decision: &Decision, product: &Product, now: DateTime<Utc>) -> Result<Offer, LendingError> {
    if decision.outcome != Outcome::Approve {
        return Err(LendingError::NotApproved(decision.outcome.as_str().into()));
    }
    let limit = decision.limit.ok_or_else(|| LendingError::NotApproved("no limit".into()))?;
    let quoted_rate = decision.quoted_rate.ok_or_else(|| LendingError::NotApproved("no rate".into()))?;
    let annual_rate = product.annual_rate(quoted_rate);
    let start = now.date_naive();
    let mut terms = product.terms_months.clone();
    if let Some(due) = decision.inputs.receivable.as_ref().map(|r| r.due_date) {
        // Supply chain: the financing must mature no later than the receivable.
        let fitting: Vec<u32> = terms
            .iter()
            .copied()
            .filter(|&t| start.checked_add_months(Months::new(t)).is_some_and(|m| m <= due))
            .collect();
        terms = if fitting.is_empty() { vec![*terms.iter().min().expect("validated")] } else { fitting };
    }
    let mut previews = Vec::new();
    for &term in &terms {
        for &method in &product.methods {
            let schedule = build_schedule(&ScheduleRequest {
                principal: limit,
                annual_rate,
                term_months: term,
                start_date: start,
                method,
                day_count: product.day_count,
                rounding: product.rounding,
            })?;
            let fee = fee_of(product.upfront_fee_rate, limit)?;
            let first = schedule.installments.first().map(|l| l.total()).unwrap_or(0);
            let last = schedule.installments.last().map(|l| l.total()).unwrap_or(0);
            previews.push(SchedulePreview {
                term_months: term,
                method,
                amount: limit,
                first_installment: Amount::new(first, limit.currency),
                last_installment: Amount::new(last, limit.currency),
                total_interest: Amount::new(schedule.total_interest(), limit.currency),
                fee,
                apr: apr(&schedule, fee.minor)?,
            });
        }
    }
    Ok(Offer {
        id: OfferId(Uuid::new_v5(&NS, format!("offer:{}", decision.id.0).as_bytes())),
        decision_id: decision.id,
        product_code: product.code.clone(),
        applicant_id: decision.applicant_id.clone(),
        limit,
        min_amount: Amount::new(product.min_amount_minor, product.currency),
        rate_basis: product.rate_basis,
        quoted_rate,
        annual_rate,
        penalty_rate: annual_rate * product.penalty_multiplier,
        terms_months: terms,
        methods: product.methods.clone(),
        upfront_fee_rate: product.upfront_fee_rate,
        day_count: product.day_count,
        rounding: product.rounding,
        previews,
        receivable_id: decision.inputs.receivable.as_ref().map(|r| r.id.clone()),
        created_at: now,
        expires_at: now + Duration::hours(i64::from(product.offer_validity_hours)),
    })
}

/// Validates an acceptance and produces the contract. The contract id is derived from the offer
/// and the request, so retrying the same acceptance yields the same contract.
pub fn accept(offer: &Offer, req: &AcceptRequest) -> Result<Contract, LendingError> {
    if req.accepted_at > offer.expires_at {
        return Err(LendingError::OfferExpired { expired_at: offer.expires_at });
    }
    if req.amount.currency != offer.limit.currency {
        return Err(LendingError::CurrencyMismatch { expected: offer.limit.currency, got: req.amount.currency });
    }
    if req.amount.minor <= 0 {
        return Err(LendingError::AmountNotPositive);
    }
    if req.amount.minor > offer.limit.minor {
        return Err(LendingError::AmountAboveLimit { amount: req.amount.minor, limit: offer.limit.minor });
    }
    if req.amount.minor < offer.min_amount.minor {
        return Err(LendingError::AmountBelowMinimum { amount: req.amount.minor, minimum: offer.min_amount.minor });
    }
    if !offer.terms_months.contains(&req.term_months) {
        return Err(LendingError::TermNotOffered(req.term_months));
    }
    if !offer.methods.contains(&req.method) {
        return Err(LendingError::MethodNotOffered(req.method.as_str().into()));
    }
    let schedule = build_schedule(&ScheduleRequest {
        principal: req.amount,
        annual_rate: offer.annual_rate,
        term_months: req.term_months,
        start_date: req.start_date,
        method: req.method,
        day_count: offer.day_count,
        rounding: offer.rounding,
    })?;
    let fee = fee_of(offer.upfront_fee_rate, req.amount)?;
    let apr = apr(&schedule, fee.minor)?;
    let maturity_date = schedule.maturity().expect("at least one installment");
    let key = format!(
        "contract:{}:{}:{}:{}:{}",
        offer.id.0,
        req.amount.minor,
        req.term_months,
        req.method.as_str(),
        req.start_date
    );
    Ok(Contract {
        id: ContractId(Uuid::new_v5(&NS, key.as_bytes())),
        offer_id: offer.id,
        decision_id: offer.decision_id,
        product_code: offer.product_code.clone(),
        applicant_id: offer.applicant_id.clone(),
        principal: req.amount,
        annual_rate: offer.annual_rate,
        penalty_rate: offer.penalty_rate,
        method: req.method,
        term_months: req.term_months,
        start_date: req.start_date,
        maturity_date,
        day_count: offer.day_count,
        rounding: offer.rounding,
        upfront_fee: fee,
        schedule,
        apr,
        receivable_id: offer.receivable_id.clone(),
        signed_at: req.accepted_at,
    })
}

/// A contract built directly from a product and terms (demo data, benchmarks, migrations of
/// existing loans), bypassing decision and offer.
pub fn direct_contract(
    product: &Product,
    applicant_id: &str,
    amount: Amount,
    quoted_rate: Decimal,
    term_months: u32,
    method: RepaymentMethod,
    start_date: NaiveDate,
) -> Result<Contract, LendingError> {
    let annual_rate = product.annual_rate(quoted_rate);
    let offer = Offer {
        id: OfferId(Uuid::new_v5(&NS, format!("direct:{applicant_id}:{start_date}:{}", amount.minor).as_bytes())),
        decision_id: DecisionId(Uuid::nil()),
        product_code: product.code.clone(),
        applicant_id: applicant_id.to_string(),
        limit: amount,
        min_amount: Amount::new(1, amount.currency),
        rate_basis: product.rate_basis,
        quoted_rate,
        annual_rate,
        penalty_rate: annual_rate * product.penalty_multiplier,
        terms_months: vec![term_months],
        methods: vec![method],
        upfront_fee_rate: product.upfront_fee_rate,
        day_count: product.day_count,
        rounding: product.rounding,
        previews: Vec::new(),
        receivable_id: None,
        created_at: DateTime::<Utc>::MIN_UTC,
        expires_at: DateTime::<Utc>::MAX_UTC,
    };
    accept(&offer, &AcceptRequest { amount, term_months, method, start_date, accepted_at: DateTime::<Utc>::MIN_UTC })
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// An offer matching a contract, for tests.
    pub fn offer_from(c: &Contract) -> Offer {
        Offer {
            id: c.offer_id,
            decision_id: c.decision_id,
            product_code: c.product_code.clone(),
            applicant_id: c.applicant_id.clone(),
            limit: c.principal,
            min_amount: Amount::new(1, c.principal.currency),
            rate_basis: RateBasis::Annual,
            quoted_rate: c.annual_rate,
            annual_rate: c.annual_rate,
            penalty_rate: c.penalty_rate,
            terms_months: vec![c.term_months],
            methods: vec![c.method],
            upfront_fee_rate: Decimal::ZERO,
            day_count: c.day_count,
            rounding: c.rounding,
            previews: Vec::new(),
            receivable_id: None,
            created_at: c.signed_at,
            expires_at: DateTime::<Utc>::MAX_UTC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn irr_of_a_6pct_annuity_is_the_effective_rate() {
        let s = build_schedule(&ScheduleRequest {
            principal: Amount::new(100_000_00, Currency::CNY),
            annual_rate: d("0.06"),
            term_months: 12,
            start_date: NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(),
            method: RepaymentMethod::EqualInstallment,
            day_count: DayCount::Act360,
            rounding: Rounding::HalfUp,
        })
        .unwrap();
        // (1 + 0.06/12)^12 - 1 = 0.0616778
        let a = apr(&s, 0).unwrap();
        assert!((a - d("0.061678")).abs() <= d("0.000002"), "{a}");
        // A 1% upfront fee on a one-year amortising loan (average life about half a year) adds
        // about two points: 8.18%.
        let with_fee = apr(&s, 1_000_00).unwrap();
        assert_eq!(with_fee.round_dp(4), d("0.0818"));
    }

    #[test]
    fn irr_handles_zero_and_high_rates() {
        assert!(irr(&[(0.0, -100.0), (1.0, 100.0)]).unwrap().abs() < 1e-9);
        let r = irr(&[(0.0, -100.0), (1.0, 250.0)]).unwrap();
        assert!((r - 1.5).abs() < 1e-9, "{r}");
        assert!(irr(&[(0.0, 100.0), (1.0, 100.0)]).is_err());
    }
}
