//! Automated credit decisions.
//!
//! [`decide`] is a pure function of the product, the [`AdapterSnapshot`], a [`FraudCheck`] and
//! the decision time:
//! 1. eligibility and policy rules (kind, age, KYC, bureau report present, tax ≥ minimum,
//!    confirmed receivable, no severe current delinquency, at most N delinquencies in 12 months):
//!    any failure → `decline` with `eligible = false` and one reason per failed rule;
//! 2. fraud hook: `reject` → decline, `review` → at most review;
//! 3. a transparent points scorecard per product kind (base points + one [`FactorScore`] per
//!    factor, each with its input value and explanation);
//! 4. the score's row in the product's pricing grid gives the [`RiskGrade`], rate and limit
//!    multiplier; grades not offered (D, E) → decline; grades in the review band → review;
//! 5. limit = capacity base × multiplier, capped by the grid row and the product maximum; a limit
//!    below the product minimum → decline.
//!
//! The [`Decision`] records the inputs, the scorecard and model versions, every factor and the
//! reason codes with human-readable explanations.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use customer::KycStatus;
use money::Amount;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::data::{AdapterSnapshot, Applicant};
use crate::product::{Product, ProductKind};
use crate::{LendingError, RiskGrade};

/// Version of the decision pipeline itself (rules order, limit formula).
pub const MODEL_VERSION: &str = "lending-decision-1";

const NS: Uuid = Uuid::from_u128(0x6c65_6e64_696e_6700_0000_0000_0000_0002);

/// Identifies a credit decision (the application id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct DecisionId(pub Uuid);

/// The outcome of a credit decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DecisionOutcome)]
pub enum Outcome {
    Approve,
    /// Borderline or flagged: goes to the manual review queue.
    Review,
    Decline,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approve => "approve",
            Outcome::Review => "review",
            Outcome::Decline => "decline",
        }
    }
}

/// A reason code and its explanation, e.g. `bureau_delinquencies` / "declined: bureau shows 2
/// delinquencies in the last 12 months".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

impl Reason {
    pub fn new(code: &str, message: impl Into<String>) -> Reason {
        Reason { code: code.to_string(), message: message.into() }
    }
}

/// One scorecard factor: what it looked at and the points it gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FactorScore {
    pub factor: String,
    pub value: String,
    pub points: i32,
    pub explanation: String,
}

/// The fraud check's verdict on an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FraudVerdict {
    Allow,
    Review,
    Reject,
}

/// The fraud check of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FraudOutcome {
    pub verdict: FraudVerdict,
    pub reasons: Vec<Reason>,
    /// The risk engine's `loan_application` decision behind this verdict (look it up under
    /// `GET /v1/risk/decisions/{id}`); absent for decisions made before the engine decided
    /// applications, and when the application failed eligibility (no fraud check ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_decision_id: Option<Uuid>,
    /// The risk review case the decision opened, when its outcome was `review`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_case_id: Option<u64>,
}

impl FraudOutcome {
    pub fn allow() -> FraudOutcome {
        FraudOutcome { verdict: FraudVerdict::Allow, reasons: Vec::new(), risk_decision_id: None, risk_case_id: None }
    }
}

/// Fraud hook, called after eligibility. In the running system the verdict comes from the risk
/// engine (a `loan_application` decision made by `lending-platform` before [`decide`]) and is
/// passed in as a [`FraudOutcome`], which answers every check with itself; [`SimpleFraudCheck`]
/// is a stand-in for this crate's own tests.
pub trait FraudCheck: Send + Sync {
    fn check(&self, applicant: &Applicant, snapshot: &AdapterSnapshot) -> FraudOutcome;
}

/// A verdict decided beforehand (by the risk engine).
impl FraudCheck for FraudOutcome {
    fn check(&self, _: &Applicant, _: &AdapterSnapshot) -> FraudOutcome {
        self.clone()
    }
}

/// Allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFraudCheck;

impl FraudCheck for NoFraudCheck {
    fn check(&self, _: &Applicant, _: &AdapterSnapshot) -> FraudOutcome {
        FraudOutcome::allow()
    }
}

/// A simple rule-based check: a blocklist of applicant ids (reject), and application velocity
/// (more than `max_inquiries_3m` bureau inquiries in three months → review).
#[derive(Debug, Clone, Default)]
pub struct SimpleFraudCheck {
    pub blocked: HashSet<String>,
    pub max_inquiries_3m: Option<u32>,
}

impl FraudCheck for SimpleFraudCheck {
    fn check(&self, applicant: &Applicant, snapshot: &AdapterSnapshot) -> FraudOutcome {
        if self.blocked.contains(&applicant.id) {
            return FraudOutcome {
                verdict: FraudVerdict::Reject,
                reasons: vec![Reason::new("fraud_blocklist", "rejected: applicant is on the fraud blocklist")],
                ..FraudOutcome::allow()
            };
        }
        if let (Some(max), Some(b)) = (self.max_inquiries_3m, &snapshot.bureau) {
            if b.inquiries_3m > max {
                return FraudOutcome {
                    verdict: FraudVerdict::Review,
                    reasons: vec![Reason::new(
                        "fraud_application_velocity",
                        format!("review: {} credit inquiries in 3 months (more than {max})", b.inquiries_3m),
                    )],
                    ..FraudOutcome::allow()
                };
            }
        }
        FraudOutcome::allow()
    }
}

/// The full, self-contained record of one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub id: DecisionId,
    pub product_code: String,
    pub applicant_id: String,
    pub decided_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// `false` when an eligibility or policy rule failed (no scoring happened).
    pub eligible: bool,
    pub model_version: String,
    pub scorecard_version: String,
    pub score: Option<i32>,
    pub factors: Vec<FactorScore>,
    pub grade: Option<RiskGrade>,
    pub limit: Option<Amount>,
    /// Rate in the product's basis (annual or per day), decimal string.
    #[schema(value_type = Option<String>, example = "0.0500")]
    pub quoted_rate: Option<Decimal>,
    /// Nominal annual rate, decimal string.
    #[schema(value_type = Option<String>, example = "0.0500")]
    pub annual_rate: Option<Decimal>,
    pub fraud: FraudOutcome,
    pub reasons: Vec<Reason>,
    pub inputs: AdapterSnapshot,
    /// Set when an analyst decided a `review` outcome by hand (`approve_review`,
    /// `decline_review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_review: Option<ManualReview>,
}

/// An analyst's manual decision of an application that was in the review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManualReview {
    /// `approve` or `decline`.
    pub outcome: Outcome,
    /// Who decided (API key id) and with which role.
    pub analyst: String,
    pub analyst_role: String,
    pub decided_at: DateTime<Utc>,
    /// Internal note of the analyst.
    pub note: String,
    /// Declines: the reason code (one of `DECLINE_REASONS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// Approvals: the automated grade and limit before the analyst's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_grade: Option<RiskGrade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_limit_minor: Option<i64>,
}

/// The reason codes an analyst can decline with, and what the customer is told.
pub const DECLINE_REASONS: [(&str, &str); 7] = [
    ("insufficient_income", "declined after manual review: income does not support the requested credit"),
    ("high_indebtedness", "declined after manual review: existing debt is too high"),
    ("adverse_credit_history", "declined after manual review: adverse credit history"),
    ("unverifiable_information", "declined after manual review: the application data could not be verified"),
    ("suspected_fraud", "declined after manual review: the application did not pass our checks"),
    ("policy_exception_refused", "declined after manual review: outside the product policy"),
    ("other", "declined after manual review"),
];

/// Who decides a review item, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analyst {
    pub id: String,
    pub role: String,
    pub at: DateTime<Utc>,
}

fn check_note(note: &str) -> Result<(), LendingError> {
    if note.trim().is_empty() || note.chars().count() > 2000 {
        return Err(LendingError::InvalidReview("note must be 1..2000 characters".into()));
    }
    Ok(())
}

/// Approves a decision that is in review. The analyst may change the grade to another offered
/// grade of the product (its grid rate then applies) and may set the limit: at least the product
/// minimum, at most the grid limit of the grade and the product maximum. Without a limit the
/// proposed one is kept, capped by the grade's grid limit. Pure: returns the approved decision.
pub fn approve_review(
    decision: &Decision,
    product: &Product,
    grade: Option<RiskGrade>,
    limit_minor: Option<i64>,
    note: &str,
    analyst: &Analyst,
) -> Result<Decision, LendingError> {
    if decision.outcome != Outcome::Review {
        return Err(LendingError::NotInReview(decision.outcome.as_str().into()));
    }
    check_note(note)?;
    let grade = grade.or(decision.grade).ok_or_else(|| LendingError::NotInReview("no grade".into()))?;
    let row = product
        .row_for_grade(grade)
        .filter(|r| r.offered)
        .ok_or_else(|| LendingError::GradeNotOffered(grade.as_str().into()))?;
    let max = row.max_limit_minor.min(product.max_amount_minor);
    let proposed = decision.limit.map(|l| l.minor);
    let limit = match (limit_minor, proposed) {
        (Some(l), _) => l,
        (None, Some(p)) => p.min(max),
        (None, None) => return Err(LendingError::InvalidReview("limit_minor is required".into())),
    };
    if limit > max {
        return Err(LendingError::LimitAboveGrid { limit, max });
    }
    if limit < product.min_amount_minor {
        return Err(LendingError::AmountBelowMinimum { amount: limit, minimum: product.min_amount_minor });
    }
    let mut d = decision.clone();
    d.outcome = Outcome::Approve;
    d.grade = Some(grade);
    d.limit = Some(Amount::new(limit, product.currency));
    d.quoted_rate = Some(row.rate);
    d.annual_rate = Some(product.annual_rate(row.rate));
    d.reasons.push(Reason::new(
        "manual_review_approved",
        format!("approved after manual review: grade {grade}, limit {} CNY", yuan(limit)),
    ));
    d.manual_review = Some(ManualReview {
        outcome: Outcome::Approve,
        analyst: analyst.id.clone(),
        analyst_role: analyst.role.clone(),
        decided_at: analyst.at,
        note: note.to_string(),
        reason_code: None,
        proposed_grade: decision.grade,
        proposed_limit_minor: proposed,
    });
    Ok(d)
}

/// Declines a decision that is in review with a reason code from [`DECLINE_REASONS`]: the
/// decision becomes a final decline and its reasons (what the customer sees) are replaced by the
/// code and its customer-facing message. The scorecard (`factors`, `score`, `grade`) stays in
/// the record; the analyst's note is kept in `manual_review`.
pub fn decline_review(
    decision: &Decision,
    reason_code: &str,
    note: &str,
    analyst: &Analyst,
) -> Result<Decision, LendingError> {
    if decision.outcome != Outcome::Review {
        return Err(LendingError::NotInReview(decision.outcome.as_str().into()));
    }
    let (code, message) = DECLINE_REASONS
        .iter()
        .find(|(c, _)| *c == reason_code)
        .ok_or_else(|| LendingError::UnknownDeclineReason(reason_code.into()))?;
    check_note(note)?;
    let mut d = decision.clone();
    d.outcome = Outcome::Decline;
    d.limit = None;
    d.quoted_rate = None;
    d.annual_rate = None;
    d.reasons = vec![Reason::new(code, *message)];
    d.manual_review = Some(ManualReview {
        outcome: Outcome::Decline,
        analyst: analyst.id.clone(),
        analyst_role: analyst.role.clone(),
        decided_at: analyst.at,
        note: note.to_string(),
        reason_code: Some(code.to_string()),
        proposed_grade: decision.grade,
        proposed_limit_minor: decision.limit.map(|l| l.minor),
    });
    Ok(d)
}

fn yuan(minor: i64) -> String {
    format!("{}", Decimal::new(minor, 2))
}

fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// Eligibility and policy rules; an empty result means eligible.
pub fn eligibility(product: &Product, s: &AdapterSnapshot) -> Vec<Reason> {
    let rules = &product.eligibility;
    let a = &s.applicant;
    let mut out = Vec::new();
    if !rules.allowed_kinds.contains(&a.kind) {
        out.push(Reason::new(
            "applicant_kind_not_eligible",
            format!("ineligible: {} applicants cannot apply for {}", a.kind.as_str(), product.code),
        ));
    }
    if rules.require_kyc_verified && a.kyc != KycStatus::Verified {
        out.push(Reason::new("kyc_not_verified", format!("ineligible: KYC status is {:?}, must be verified", a.kyc)));
    }
    if let Some(birth) = a.birth_date {
        let age = age_on(birth, s.as_of);
        if let Some(min) = rules.min_age {
            if age < min as i32 {
                out.push(Reason::new("age_below_minimum", format!("ineligible: age {age} is below {min}")));
            }
        }
        if let Some(max) = rules.max_age {
            if age > max as i32 {
                out.push(Reason::new("age_above_maximum", format!("ineligible: age {age} is above {max}")));
            }
        }
    } else if rules.min_age.is_some() && a.kind == customer::CustomerKind::Individual {
        out.push(Reason::new("age_unknown", "ineligible: date of birth unknown"));
    }
    match &s.bureau {
        None if rules.require_bureau_report => {
            out.push(Reason::new("no_bureau_report", "ineligible: the credit bureau has no report for the applicant"))
        }
        Some(b) => {
            if b.current_dpd >= rules.severe_dpd {
                out.push(Reason::new(
                    "severe_current_delinquency",
                    format!("declined: bureau shows an obligation currently {} days past due", b.current_dpd),
                ));
            }
            if let Some(max) = rules.max_delinquencies_12m {
                if b.delinquencies_12m > max {
                    out.push(Reason::new(
                        "bureau_delinquencies",
                        format!("declined: bureau shows {} delinquencies in the last 12 months", b.delinquencies_12m),
                    ));
                }
            }
        }
        None => {}
    }
    if let Some(min) = rules.min_annual_tax_minor {
        match s.tax.as_ref().and_then(|t| t.last_year()) {
            None => out.push(Reason::new("no_tax_record", "ineligible: no tax record for the last year")),
            Some(y) if y.tax_paid_minor < min => out.push(Reason::new(
                "tax_below_minimum",
                format!(
                    "ineligible: tax paid in {} was {} CNY, below the minimum of {} CNY",
                    y.year,
                    yuan(y.tax_paid_minor),
                    yuan(min)
                ),
            )),
            Some(_) => {}
        }
    }
    if rules.require_confirmed_receivable {
        match &s.receivable {
            None => {
                out.push(Reason::new("no_receivable", "ineligible: no receivable found in the core enterprise's ERP"))
            }
            Some(r) => {
                if !r.confirmed {
                    out.push(Reason::new(
                        "receivable_not_confirmed",
                        format!("ineligible: receivable {} is not confirmed by {}", r.id, r.core_enterprise_name),
                    ));
                }
                if r.supplier_id != a.id {
                    out.push(Reason::new(
                        "receivable_wrong_supplier",
                        format!("ineligible: receivable {} belongs to supplier {}", r.id, r.supplier_id),
                    ));
                }
                if r.due_date <= s.as_of {
                    out.push(Reason::new(
                        "receivable_matured",
                        format!("ineligible: receivable {} matured on {}", r.id, r.due_date),
                    ));
                }
                if r.currency != product.currency {
                    out.push(Reason::new(
                        "receivable_currency",
                        format!("ineligible: receivable is in {}", r.currency),
                    ));
                }
            }
        }
    }
    out
}

struct Card {
    base: i32,
    factors: Vec<FactorScore>,
}

impl Card {
    fn new(base: i32) -> Card {
        Card { base, factors: Vec::new() }
    }
    fn add(&mut self, factor: &str, value: impl Into<String>, points: i32, explanation: impl Into<String>) {
        self.factors.push(FactorScore {
            factor: factor.into(),
            value: value.into(),
            points,
            explanation: explanation.into(),
        });
    }
    fn total(&self) -> i32 {
        self.base + self.factors.iter().map(|f| f.points).sum::<i32>()
    }
}

fn band<T: PartialOrd + Copy>(x: T, bands: &[(T, i32)], otherwise: i32) -> i32 {
    bands.iter().find(|(min, _)| x >= *min).map(|(_, p)| *p).unwrap_or(otherwise)
}

fn bureau_factors(card: &mut Card, s: &AdapterSnapshot, income_minor: Option<i64>) {
    let Some(b) = &s.bureau else {
        card.add("bureau_report", "none", -20, "no credit bureau report");
        return;
    };
    match b.score {
        Some(sc) => {
            let p = band(sc, &[(780, 120), (740, 90), (700, 60), (660, 30), (620, 0), (580, -40)], -90);
            card.add("bureau_score", sc.to_string(), p, format!("bureau score {sc}"));
        }
        None => card.add("bureau_score", "none", -20, "no bureau score"),
    }
    let p = match b.delinquencies_12m {
        0 => 60,
        1 => 0,
        2 => -80,
        _ => -140,
    };
    card.add(
        "delinquencies_12m",
        b.delinquencies_12m.to_string(),
        p,
        format!("{} delinquencies in the last 12 months", b.delinquencies_12m),
    );
    let p = if b.max_dpd_12m == 0 {
        20
    } else if b.max_dpd_12m <= 30 {
        -20
    } else {
        -60
    };
    card.add("max_dpd_12m", b.max_dpd_12m.to_string(), p, format!("worst delinquency {} days past due", b.max_dpd_12m));
    let p = band(
        std::cmp::Reverse(b.inquiries_3m),
        &[(std::cmp::Reverse(1), 20), (std::cmp::Reverse(3), 0), (std::cmp::Reverse(6), -30)],
        -60,
    );
    card.add("inquiries_3m", b.inquiries_3m.to_string(), p, format!("{} credit inquiries in 3 months", b.inquiries_3m));
    let p = band(b.history_months, &[(60, 30), (24, 15), (6, 0)], -20);
    card.add(
        "history_months",
        b.history_months.to_string(),
        p,
        format!("{} months of credit history", b.history_months),
    );
    if let Some(income) = income_minor {
        if income > 0 {
            let dsr = b.monthly_debt_service_minor * 100 / income;
            let p = if dsr <= 20 {
                40
            } else if dsr <= 40 {
                10
            } else if dsr <= 60 {
                -30
            } else {
                -70
            };
            card.add("debt_service_ratio", format!("{dsr}%"), p, format!("debt service is {dsr}% of income"));
        }
    }
}

/// Monthly income evidence for individuals: the social-security contribution base, else the
/// housing-fund deposit / 24% (12% employee + 12% employer).
fn monthly_income(s: &AdapterSnapshot) -> Option<i64> {
    s.social_security
        .as_ref()
        .filter(|r| r.active && r.monthly_base_minor > 0)
        .map(|r| r.monthly_base_minor)
        .or_else(|| s.housing_fund.as_ref().filter(|h| h.active).map(|h| h.monthly_deposit_minor * 100 / 24))
}

fn consumer_card(s: &AdapterSnapshot) -> Card {
    let mut card = Card::new(560);
    let income = monthly_income(s);
    match income {
        Some(_) => bureau_factors(&mut card, s, income),
        None => {
            bureau_factors(&mut card, s, None);
            card.add("income_evidence", "none", -30, "no verified income (social security or housing fund)");
        }
    }
    match &s.social_security {
        Some(ss) if ss.active => {
            let p = band(ss.continuous_months, &[(36, 50), (12, 25), (6, 0)], -40);
            card.add(
                "social_security",
                format!("{} months continuous", ss.continuous_months),
                p,
                format!("social security paid for {} continuous months", ss.continuous_months),
            );
        }
        Some(_) => card.add("social_security", "inactive", -40, "social security contributions stopped"),
        None => card.add("social_security", "none", -40, "no social security record"),
    }
    match &s.housing_fund {
        Some(h) if h.active && h.months_contributed >= 24 => {
            card.add("housing_fund", format!("{} months", h.months_contributed), 40, "housing fund active for 2+ years")
        }
        Some(h) if h.active => {
            card.add("housing_fund", format!("{} months", h.months_contributed), 20, "housing fund active")
        }
        _ => card.add("housing_fund", "none", 0, "no active housing fund"),
    }
    card
}

fn tax_factors(card: &mut Card, s: &AdapterSnapshot) {
    let Some(t) = &s.tax else {
        card.add("tax_record", "none", -40, "no tax record");
        return;
    };
    if let Some(y) = t.last_year() {
        let p = band(
            y.tax_paid_minor,
            &[(500_000_00, 80), (200_000_00, 50), (100_000_00, 30), (50_000_00, 10), (20_000_00, 0)],
            -40,
        );
        card.add(
            "tax_paid",
            yuan(y.tax_paid_minor),
            p,
            format!("tax paid in {}: {} CNY", y.year, yuan(y.tax_paid_minor)),
        );
        if let Some(prev) = t.years.get(1).filter(|p| p.tax_paid_minor > 0) {
            let g = (y.tax_paid_minor - prev.tax_paid_minor) * 100 / prev.tax_paid_minor;
            let p = band(g, &[(10, 40), (-10, 10), (-30, -30)], -70);
            card.add("tax_growth", format!("{g}%"), p, format!("tax paid changed {g}% year on year"));
        }
    }
    let p = match t.credit_rating.as_str() {
        "A" => 60,
        "B" => 30,
        "M" => 0,
        "C" => -60,
        _ => -150,
    };
    card.add("tax_credit_rating", t.credit_rating.clone(), p, format!("tax credit rating {}", t.credit_rating));
    let p = band(t.registered_months, &[(60, 40), (36, 20), (24, 0)], -40);
    card.add(
        "registered_months",
        t.registered_months.to_string(),
        p,
        format!("registered for {} months", t.registered_months),
    );
    if let Some(g) = crate::data::recent_change_pct(&t.monthly_inflows_minor) {
        let p = band(g, &[(-10, 20), (-30, -20)], -60);
        card.add(
            "inflow_trend",
            format!("{g}%"),
            p,
            format!("last 3 months' inflows changed {g}% against the 3 before"),
        );
    }
}

fn sme_card(s: &AdapterSnapshot) -> Card {
    let mut card = Card::new(560);
    tax_factors(&mut card, s);
    if let Some(b) = &s.bureau {
        let p = match b.delinquencies_12m {
            0 => 40,
            1 => -20,
            _ => -100,
        };
        card.add(
            "delinquencies_12m",
            b.delinquencies_12m.to_string(),
            p,
            format!("{} delinquencies in the last 12 months", b.delinquencies_12m),
        );
        let p = band(std::cmp::Reverse(b.inquiries_3m), &[(std::cmp::Reverse(2), 10), (std::cmp::Reverse(5), 0)], -30);
        card.add(
            "inquiries_3m",
            b.inquiries_3m.to_string(),
            p,
            format!("{} credit inquiries in 3 months", b.inquiries_3m),
        );
    } else {
        card.add("bureau_report", "none", -20, "no credit bureau report");
    }
    card
}

fn supply_chain_card(s: &AdapterSnapshot) -> Card {
    let mut card = Card::new(560);
    if let Some(r) = &s.receivable {
        let p = match r.core_grade {
            RiskGrade::AAA => 120,
            RiskGrade::AA => 100,
            RiskGrade::A => 80,
            RiskGrade::BBB => 40,
            RiskGrade::BB => 0,
            _ => -60,
        };
        card.add(
            "core_enterprise_grade",
            r.core_grade.as_str(),
            p,
            format!("{} is graded {}", r.core_enterprise_name, r.core_grade),
        );
        let p = band(r.relationship_months, &[(36, 40), (12, 20), (6, 0)], -40);
        card.add(
            "relationship_months",
            r.relationship_months.to_string(),
            p,
            format!("supplying the core enterprise for {} months", r.relationship_months),
        );
        let tenor = (r.due_date - s.as_of).num_days();
        let p = if tenor <= 90 {
            20
        } else if tenor <= 180 {
            0
        } else {
            -30
        };
        card.add("receivable_tenor_days", tenor.to_string(), p, format!("receivable due in {tenor} days"));
    }
    if let Some(b) = &s.bureau {
        let p = match b.delinquencies_12m {
            0 => 30,
            1 => -20,
            _ => -100,
        };
        card.add(
            "delinquencies_12m",
            b.delinquencies_12m.to_string(),
            p,
            format!("{} delinquencies in the last 12 months", b.delinquencies_12m),
        );
    }
    if let Some(t) = &s.tax {
        let p = match t.credit_rating.as_str() {
            "A" => 20,
            "B" => 10,
            "M" => 0,
            "C" => -40,
            _ => -100,
        };
        card.add("tax_credit_rating", t.credit_rating.clone(), p, format!("tax credit rating {}", t.credit_rating));
    }
    card
}

/// Capacity base the grid multiplier applies to, and a description for the reasons.
fn capacity(product: &Product, s: &AdapterSnapshot) -> (i64, Option<i64>, String) {
    match product.kind {
        ProductKind::InstantConsumer => {
            let income = monthly_income(s).unwrap_or(3_000_00);
            (income, None, format!("monthly income {} CNY", yuan(income)))
        }
        ProductKind::TaxSme => {
            let y = s.tax.as_ref().and_then(|t| t.last_year());
            let tax = y.map(|y| y.tax_paid_minor).unwrap_or(0);
            let revenue_cap = y.map(|y| y.revenue_minor / 5);
            (tax, revenue_cap, format!("tax paid {} CNY (limit also at most 20% of revenue)", yuan(tax)))
        }
        ProductKind::SupplyChain => {
            let r = s.receivable.as_ref().map(|r| r.amount_minor).unwrap_or(0);
            let ratio = product.advance_ratio.unwrap_or(Decimal::ONE);
            let base = (Decimal::from(r) * ratio).floor().to_i64().unwrap_or(0);
            (base, None, format!("receivable {} CNY × advance ratio {}", yuan(r), ratio))
        }
    }
}

/// Runs the whole decision (see the module docs). Pure and deterministic: the same product,
/// snapshot, fraud verdict and time give the same decision, including its id.
pub fn decide(product: &Product, snapshot: &AdapterSnapshot, fraud: &dyn FraudCheck, now: DateTime<Utc>) -> Decision {
    let id = DecisionId(Uuid::new_v5(
        &NS,
        format!("{}:{}:{}", product.code, snapshot.applicant.id, now.timestamp_micros()).as_bytes(),
    ));
    let mut d = Decision {
        id,
        product_code: product.code.clone(),
        applicant_id: snapshot.applicant.id.clone(),
        decided_at: now,
        outcome: Outcome::Decline,
        eligible: true,
        model_version: MODEL_VERSION.into(),
        scorecard_version: product.scorecard_version.clone(),
        score: None,
        factors: Vec::new(),
        grade: None,
        limit: None,
        quoted_rate: None,
        annual_rate: None,
        fraud: FraudOutcome::allow(),
        reasons: Vec::new(),
        inputs: snapshot.clone(),
        manual_review: None,
    };
    let failed = eligibility(product, snapshot);
    if !failed.is_empty() {
        d.eligible = false;
        d.reasons = failed;
        return d;
    }
    d.fraud = fraud.check(&snapshot.applicant, snapshot);
    if d.fraud.verdict == FraudVerdict::Reject {
        d.reasons = d.fraud.reasons.clone();
        return d;
    }
    let card = match product.kind {
        ProductKind::InstantConsumer => consumer_card(snapshot),
        ProductKind::TaxSme => sme_card(snapshot),
        ProductKind::SupplyChain => supply_chain_card(snapshot),
    };
    let score = card.total();
    d.score = Some(score);
    d.factors = card.factors;
    let row = product.row_for_score(score);
    d.grade = Some(row.grade);
    let mut adverse: Vec<&FactorScore> = d.factors.iter().filter(|f| f.points < 0).collect();
    adverse.sort_by_key(|f| f.points);
    if !row.offered {
        d.reasons.push(Reason::new(
            "grade_declined",
            format!("declined: score {score} gives grade {}, which is not offered", row.grade),
        ));
        d.reasons.extend(adverse.iter().take(3).map(|f| Reason::new(&f.factor, format!("adverse: {}", f.explanation))));
        return d;
    }
    let (base, cap, basis) = capacity(product, snapshot);
    let mut limit = (Decimal::from(base) * row.limit_multiplier).floor().to_i64().unwrap_or(i64::MAX);
    limit = limit.min(row.max_limit_minor).min(product.max_amount_minor);
    if let Some(c) = cap {
        limit = limit.min(c);
    }
    // Round the limit down to whole hundreds of yuan.
    limit -= limit.rem_euclid(100_00);
    if limit < product.min_amount_minor {
        d.reasons.push(Reason::new(
            "limit_below_minimum",
            format!(
                "declined: the limit from {basis} would be {} CNY, below the product minimum {} CNY",
                yuan(limit),
                yuan(product.min_amount_minor)
            ),
        ));
        return d;
    }
    d.limit = Some(Amount::new(limit, product.currency));
    d.quoted_rate = Some(row.rate);
    d.annual_rate = Some(product.annual_rate(row.rate));
    let review_band = product.review_grades.contains(&row.grade);
    if review_band || d.fraud.verdict == FraudVerdict::Review {
        d.outcome = Outcome::Review;
        if review_band {
            d.reasons.push(Reason::new(
                "borderline_grade",
                format!("review: score {score} gives grade {} in the manual review band", row.grade),
            ));
            d.reasons
                .extend(adverse.iter().take(3).map(|f| Reason::new(&f.factor, format!("adverse: {}", f.explanation))));
        }
        d.reasons.extend(d.fraud.reasons.clone());
    } else {
        d.outcome = Outcome::Approve;
        d.reasons.push(Reason::new(
            "approved",
            format!("approved: score {score}, grade {}, limit {} CNY from {basis}", row.grade, yuan(limit)),
        ));
    }
    d
}

#[cfg(test)]
mod tests;
