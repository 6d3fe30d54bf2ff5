use super::*;
use crate::data::{BureauReport, DataSources, HousingFundRecord, Simulator, SocialSecurityRecord, TaxRecord, TaxYear};
use customer::CustomerKind;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_268_800, 0).unwrap() // 2026-01-01T12:00:00Z
}
fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

fn person(id: &str) -> Applicant {
    Applicant {
        id: id.into(),
        kind: CustomerKind::Individual,
        name: "Test".into(),
        birth_date: NaiveDate::from_ymd_opt(1990, 5, 1),
        kyc: KycStatus::Verified,
        receivable_id: None,
    }
}

fn clean_bureau() -> BureauReport {
    BureauReport {
        score: Some(800),
        delinquencies_12m: 0,
        max_dpd_12m: 0,
        current_dpd: 0,
        open_loans: 1,
        outstanding_debt_minor: 50_000_00,
        monthly_debt_service_minor: 2_000_00,
        inquiries_3m: 0,
        history_months: 120,
    }
}

fn good_person() -> AdapterSnapshot {
    AdapterSnapshot {
        applicant: person("GOOD1"),
        as_of: as_of(),
        bureau: Some(clean_bureau()),
        social_security: Some(SocialSecurityRecord {
            active: true,
            months_contributed: 96,
            continuous_months: 60,
            monthly_base_minor: 25_000_00,
            employer: "Acme".into(),
        }),
        housing_fund: Some(HousingFundRecord {
            active: true,
            months_contributed: 60,
            monthly_deposit_minor: 6_000_00,
            balance_minor: 180_000_00,
        }),
        tax: None,
        receivable: None,
    }
}

fn sme(tax_minor: i64) -> AdapterSnapshot {
    AdapterSnapshot {
        applicant: Applicant { kind: CustomerKind::Sme, birth_date: None, ..person("SME1") },
        as_of: as_of(),
        bureau: Some(clean_bureau()),
        social_security: None,
        housing_fund: None,
        tax: Some(TaxRecord {
            credit_rating: "A".into(),
            registered_months: 96,
            years: vec![
                TaxYear { year: 2025, tax_paid_minor: tax_minor, revenue_minor: tax_minor * 30 },
                TaxYear { year: 2024, tax_paid_minor: tax_minor * 9 / 10, revenue_minor: tax_minor * 27 },
            ],
            monthly_inflows_minor: vec![tax_minor * 30 / 12; 12],
        }),
        receivable: None,
    }
}

#[test]
fn good_applicant_is_approved_with_a_high_grade() {
    let d = decide(&Product::instant_consumer(), &good_person(), &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Approve, "{:?}", d.reasons);
    assert!(d.eligible);
    assert!(d.grade.unwrap() <= RiskGrade::AA, "{:?} score {:?}", d.grade, d.score);
    // AAA: 20 × 25,000 = 500,000 (also the product maximum).
    assert_eq!(d.limit.unwrap().minor, 500_000_00);
    assert_eq!(d.annual_rate.unwrap(), "0.036".parse::<Decimal>().unwrap());
    assert_eq!(d.reasons[0].code, "approved");
    assert_eq!(d.inputs, good_person());
    assert_eq!(d.scorecard_version, "consumer-v1");
    assert_eq!(d.model_version, MODEL_VERSION);
    // Every factor is explained, and the points add up to the score.
    assert_eq!(560 + d.factors.iter().map(|f| f.points).sum::<i32>(), d.score.unwrap());
    assert!(d.factors.iter().all(|f| !f.explanation.is_empty()));
}

#[test]
fn delinquent_applicant_is_declined_with_the_reason() {
    let mut s = good_person();
    s.bureau.as_mut().unwrap().delinquencies_12m = 2;
    let d = decide(&Product::instant_consumer(), &s, &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Decline);
    assert!(!d.eligible);
    assert_eq!(d.reasons[0].code, "bureau_delinquencies");
    assert_eq!(d.reasons[0].message, "declined: bureau shows 2 delinquencies in the last 12 months");
    assert!(d.limit.is_none() && d.score.is_none());

    let mut s = good_person();
    s.bureau.as_mut().unwrap().current_dpd = 95;
    let d = decide(&Product::instant_consumer(), &s, &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Decline);
    assert_eq!(d.reasons[0].code, "severe_current_delinquency");
}

#[test]
fn borderline_applicant_goes_to_review() {
    let mut s = good_person();
    let b = s.bureau.as_mut().unwrap();
    b.score = Some(610);
    b.delinquencies_12m = 1;
    b.max_dpd_12m = 20;
    b.inquiries_3m = 5;
    b.history_months = 30;
    b.monthly_debt_service_minor = 5_000_00;
    let ss = s.social_security.as_mut().unwrap();
    ss.continuous_months = 14;
    ss.monthly_base_minor = 10_000_00;
    s.housing_fund = None;
    let d = decide(&Product::instant_consumer(), &s, &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Review, "score {:?} grade {:?}", d.score, d.grade);
    assert!(matches!(d.grade, Some(RiskGrade::CCC) | Some(RiskGrade::C)));
    assert_eq!(d.reasons[0].code, "borderline_grade");
    assert!(d.reasons.iter().any(|r| r.message.starts_with("adverse:")));
    assert!(d.limit.is_some(), "the reviewer sees the proposed limit");
}

#[test]
fn low_score_is_declined_by_grade() {
    let mut s = good_person();
    let b = s.bureau.as_mut().unwrap();
    b.score = Some(500);
    b.delinquencies_12m = 1;
    b.max_dpd_12m = 45;
    b.inquiries_3m = 9;
    b.history_months = 3;
    b.monthly_debt_service_minor = 9_000_00;
    s.social_security.as_mut().unwrap().monthly_base_minor = 10_000_00;
    s.social_security.as_mut().unwrap().continuous_months = 3;
    s.housing_fund = None;
    let d = decide(&Product::instant_consumer(), &s, &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Decline);
    assert!(d.eligible);
    assert!(d.grade.unwrap() >= RiskGrade::D);
    assert_eq!(d.reasons[0].code, "grade_declined");
}

#[test]
fn tax_below_minimum_is_ineligible() {
    let d = decide(&Product::tax_sme(), &sme(19_999_99), &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Decline);
    assert!(!d.eligible);
    assert_eq!(d.reasons[0].code, "tax_below_minimum");
    assert!(d.reasons[0].message.contains("19999.99 CNY"), "{}", d.reasons[0].message);

    let d = decide(&Product::tax_sme(), &sme(300_000_00), &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Approve, "{:?}", d.reasons);
    // Limit = tax × multiplier, at most 20% of revenue (9,000,000 × 20% = 1,800,000).
    assert!(d.limit.unwrap().minor <= 1_800_000_00);
    assert!(d.quoted_rate.unwrap() < "0.0002".parse::<Decimal>().unwrap());

    let mut no_tax = sme(0);
    no_tax.tax = None;
    let d = decide(&Product::tax_sme(), &no_tax, &NoFraudCheck, now());
    assert_eq!(d.reasons[0].code, "no_tax_record");
}

#[test]
fn other_eligibility_rules() {
    let mut s = good_person();
    s.applicant.kyc = KycStatus::Pending;
    s.applicant.birth_date = NaiveDate::from_ymd_opt(2006, 1, 1);
    let d = decide(&Product::instant_consumer(), &s, &NoFraudCheck, now());
    let codes: Vec<&str> = d.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, vec!["kyc_not_verified", "age_below_minimum"]);
    // An individual cannot apply for the SME line.
    let d = decide(&Product::tax_sme(), &good_person(), &NoFraudCheck, now());
    assert!(d.reasons.iter().any(|r| r.code == "applicant_kind_not_eligible"));
}

#[test]
fn supply_chain_needs_a_confirmed_receivable() {
    let sim = Simulator::new(5).with_base_date(as_of());
    let sources = DataSources::simulated(5);
    let product = Product::supply_chain();
    let mut applicant = sim.applicant("SUP1", CustomerKind::Sme);
    applicant.kyc = KycStatus::Verified;
    let mut snap = sources.collect(&applicant, &product, as_of()).unwrap();
    let r = snap.receivable.as_mut().expect("simulated receivable");
    r.confirmed = false;
    let d = decide(&product, &snap, &NoFraudCheck, now());
    assert!(d.reasons.iter().any(|r| r.code == "receivable_not_confirmed"), "{:?}", d.reasons);

    snap.receivable.as_mut().unwrap().confirmed = true;
    snap.bureau = Some(clean_bureau());
    snap.receivable.as_mut().unwrap().core_grade = RiskGrade::AAA;
    snap.receivable.as_mut().unwrap().relationship_months = 48;
    let d = decide(&product, &snap, &NoFraudCheck, now());
    assert_eq!(d.outcome, Outcome::Approve, "{:?} {:?}", d.reasons, d.factors);
    let r = snap.receivable.as_ref().unwrap();
    assert!(d.limit.unwrap().minor <= r.amount_minor * 8 / 10);

    snap.receivable = None;
    let d = decide(&product, &snap, &NoFraudCheck, now());
    assert_eq!(d.reasons[0].code, "no_receivable");
}

#[test]
fn fraud_hook_can_reject_or_send_to_review() {
    let mut fraud = SimpleFraudCheck { max_inquiries_3m: Some(3), ..Default::default() };
    fraud.blocked.insert("GOOD1".into());
    let d = decide(&Product::instant_consumer(), &good_person(), &fraud, now());
    assert_eq!(d.outcome, Outcome::Decline);
    assert_eq!(d.reasons[0].code, "fraud_blocklist");
    assert_eq!(d.fraud.verdict, FraudVerdict::Reject);

    let fraud = SimpleFraudCheck { max_inquiries_3m: Some(3), ..Default::default() };
    let mut s = good_person();
    s.bureau.as_mut().unwrap().inquiries_3m = 6;
    let d = decide(&Product::instant_consumer(), &s, &fraud, now());
    assert_eq!(d.outcome, Outcome::Review);
    assert!(d.reasons.iter().any(|r| r.code == "fraud_application_velocity"));
}

#[test]
fn same_applicant_same_decision() {
    let sources = DataSources::simulated(42);
    let sim = Simulator::new(42);
    let product = Product::instant_consumer();
    for i in 0..50 {
        let a = sim.applicant(&format!("C{i:05}"), CustomerKind::Individual);
        let d1 = decide(&product, &sources.collect(&a, &product, as_of()).unwrap(), &NoFraudCheck, now());
        let d2 =
            decide(&product, &DataSources::simulated(42).collect(&a, &product, as_of()).unwrap(), &NoFraudCheck, now());
        assert_eq!(d1, d2);
        assert_eq!(serde_json::to_string(&d1).unwrap(), serde_json::to_string(&d2).unwrap());
    }
}

fn distribution(product: &Product, kind: CustomerKind, n: usize) -> std::collections::BTreeMap<String, usize> {
    let sources = DataSources::simulated(2026);
    let sim = Simulator::new(2026);
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..n {
        let a = sim.applicant(&format!("D{i:05}"), kind);
        let d = decide(product, &sources.collect(&a, product, as_of()).unwrap(), &NoFraudCheck, now());
        let key = match (d.outcome, d.eligible) {
            (Outcome::Decline, false) => format!("ineligible:{}", d.reasons[0].code),
            (o, _) => format!("{}:{}", o.as_str(), d.grade.map(|g| g.as_str()).unwrap_or("-")),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

#[test]
fn simulated_population_gives_varied_decisions() {
    for (product, kind) in [
        (Product::instant_consumer(), CustomerKind::Individual),
        (Product::tax_sme(), CustomerKind::Sme),
        (Product::supply_chain(), CustomerKind::Sme),
    ] {
        let counts = distribution(&product, kind, 2000);
        eprintln!("{}: {counts:?}", product.code);
        let sum = |prefix: &str| counts.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum::<usize>();
        assert!(sum("approve:") > 400, "{counts:?}");
        assert!(sum("review:") > 40, "{counts:?}");
        assert!(sum("decline:") + sum("ineligible:") > 200, "{counts:?}");
        assert!(sum("ineligible:") > 50, "{counts:?}");
        let grades = counts.keys().filter(|k| k.starts_with("approve:")).count();
        assert!(grades >= 3, "approvals spread over several grades: {counts:?}");
    }
    let sme = distribution(&Product::tax_sme(), CustomerKind::Sme, 2000);
    assert!(sme.contains_key("ineligible:tax_below_minimum"), "{sme:?}");
}

fn in_review() -> Decision {
    let fraud = SimpleFraudCheck { max_inquiries_3m: Some(3), ..Default::default() };
    let mut s = good_person();
    s.bureau.as_mut().unwrap().inquiries_3m = 6;
    let d = decide(&Product::instant_consumer(), &s, &fraud, now());
    assert_eq!(d.outcome, Outcome::Review);
    d
}

fn analyst() -> Analyst {
    Analyst { id: "key-1".into(), role: "operator".into(), at: now() }
}

#[test]
fn an_analyst_approves_within_the_grid_and_the_offer_follows() {
    let product = Product::instant_consumer();
    let d = in_review();
    let proposed = d.limit.unwrap().minor;
    let grade = d.grade.unwrap();
    let max = product.row_for_grade(grade).unwrap().max_limit_minor.min(product.max_amount_minor);
    // Above the grid limit of the grade: refused.
    assert_eq!(
        approve_review(&d, &product, None, Some(max + 1), "ok", &analyst()),
        Err(LendingError::LimitAboveGrid { limit: max + 1, max })
    );
    assert!(matches!(approve_review(&d, &product, None, None, "  ", &analyst()), Err(LendingError::InvalidReview(_))));
    assert!(matches!(
        approve_review(&d, &product, Some(RiskGrade::D), None, "ok", &analyst()),
        Err(LendingError::GradeNotOffered(_))
    ));
    // Lowering the limit works, the offer is built on it.
    let lower = (proposed / 2).max(product.min_amount_minor);
    let a = approve_review(&d, &product, None, Some(lower), "verified payslips", &analyst()).unwrap();
    assert_eq!(a.outcome, Outcome::Approve);
    assert_eq!(a.limit.unwrap().minor, lower);
    let review = a.manual_review.as_ref().unwrap();
    assert_eq!((review.analyst.as_str(), review.proposed_limit_minor), ("key-1", Some(proposed)));
    let offer = crate::make_offer(&a, &product, now()).unwrap();
    assert_eq!(offer.limit.minor, lower);
    // A decided decision is no longer in review.
    assert!(matches!(approve_review(&a, &product, None, None, "again", &analyst()), Err(LendingError::NotInReview(_))));
}

#[test]
fn an_analyst_declines_with_a_listed_reason_the_customer_sees() {
    let d = in_review();
    assert_eq!(
        decline_review(&d, "because", "note", &analyst()),
        Err(LendingError::UnknownDeclineReason("because".into()))
    );
    let x = decline_review(&d, "insufficient_income", "payslips do not match", &analyst()).unwrap();
    assert_eq!(x.outcome, Outcome::Decline);
    assert_eq!(x.reasons.len(), 1);
    assert_eq!(x.reasons[0].code, "insufficient_income");
    assert!(x.limit.is_none());
    assert!(crate::make_offer(&x, &Product::instant_consumer(), now()).is_err());
    // Stored decisions without the field still load.
    let mut json = serde_json::to_value(&d).unwrap();
    json.as_object_mut().unwrap().remove("manual_review");
    assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), d);
}
