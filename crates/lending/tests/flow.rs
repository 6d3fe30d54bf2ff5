//! One instant loan and one SME line from application to repayment, through the public API only.
// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]
use chrono::{DateTime, Duration, NaiveDate, Utc};
use customer::{CustomerKind, KycStatus};
use lending::{
    accept, decide, eod, make_offer, AcceptRequest, DataSources, Decision, LendingError, Loan, LoanStatus,
    NoFraudCheck, Outcome, Product, RepaymentMethod, Simulator,
};
use money::{Amount, Currency};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_268_800, 0).unwrap() // 2026-01-01T12:00:00Z
}

fn first_approved(product: &Product, kind: CustomerKind) -> Decision {
    let sim = Simulator::new(99);
    let sources = DataSources::simulated(99);
    (0..200)
        .map(|i| {
            let mut a = sim.applicant(&format!("F{i:04}"), kind);
            a.kyc = KycStatus::Verified;
            decide(product, &sources.collect(&a, product, sim.base_date).unwrap(), &NoFraudCheck, now())
        })
        .find(|d| d.outcome == Outcome::Approve)
        .expect("some simulated applicant is approved")
}

#[test]
fn instant_loan_from_decision_to_payoff() {
    let product = Product::instant_consumer();
    let decision = first_approved(&product, CustomerKind::Individual);
    let offer = make_offer(&decision, &product, now()).unwrap();
    assert_eq!(offer.previews.len(), 10, "5 terms × 2 methods");
    assert!(offer.previews.iter().all(|p| p.apr >= offer.annual_rate));
    assert_eq!(offer.expires_at, now() + Duration::hours(72));
    let json = serde_json::to_string(&offer).unwrap();
    assert_eq!(serde_json::from_str::<lending::Offer>(&json).unwrap(), offer);

    let start = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    let req = AcceptRequest {
        amount: Amount::new(offer.limit.minor.min(50_000_00), Currency::CNY),
        term_months: 12,
        method: RepaymentMethod::EqualInstallment,
        start_date: start,
        accepted_at: now() + Duration::hours(1),
    };
    let contract = accept(&offer, &req).unwrap();
    assert!(matches!(
        accept(&offer, &AcceptRequest { accepted_at: now() + Duration::days(4), ..req.clone() }),
        Err(LendingError::OfferExpired { .. })
    ));
    let (mut loan, _) = Loan::open(&contract);
    for line in contract.schedule.installments.clone() {
        eod(&mut loan, line.due_date.pred_opt().unwrap()).unwrap();
        let (alloc, _) = loan.repay(Amount::new(line.total(), Currency::CNY), line.due_date).unwrap();
        assert_eq!(alloc.leftover, 0);
    }
    assert_eq!(loan.status, LoanStatus::PaidOff);
    assert_eq!(loan.paid.principal, req.amount.minor);
    assert_eq!(loan.paid.interest, contract.schedule.total_interest());
}

#[test]
fn declined_decision_gets_no_offer() {
    let product = Product::instant_consumer();
    let sim = Simulator::new(99);
    let sources = DataSources::simulated(99);
    let declined = (0..500)
        .map(|i| {
            let a = sim.applicant(&format!("N{i:04}"), CustomerKind::Individual);
            decide(&product, &sources.collect(&a, &product, sim.base_date).unwrap(), &NoFraudCheck, now())
        })
        .find(|d| d.outcome == Outcome::Decline)
        .unwrap();
    assert!(matches!(make_offer(&declined, &product, now()), Err(LendingError::NotApproved(_))));
}

#[test]
fn sme_line_and_supply_chain_offers() {
    let product = Product::tax_sme();
    let decision = first_approved(&product, CustomerKind::Sme);
    let offer = make_offer(&decision, &product, now()).unwrap();
    assert_eq!(offer.methods, vec![RepaymentMethod::Revolving]);
    assert_eq!(offer.annual_rate, offer.quoted_rate * rust_decimal::Decimal::from(360));

    let product = Product::supply_chain();
    let decision = first_approved(&product, CustomerKind::Sme);
    let offer = make_offer(&decision, &product, now()).unwrap();
    let due = decision.inputs.receivable.as_ref().unwrap().due_date;
    let start = now().date_naive();
    // Only terms that mature before the receivable is paid by the core enterprise.
    for t in &offer.terms_months {
        assert!(start.checked_add_months(chrono::Months::new(*t)).unwrap() <= due || offer.terms_months.len() == 1);
    }
    assert!(offer.previews.iter().all(|p| p.fee.minor > 0 && p.apr > offer.annual_rate));
}
