use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::*;
use crate::offer::{accept, direct_contract, AcceptRequest, Offer};
use crate::Product;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}
fn day(y: i32, m: u32, dd: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, dd).unwrap()
}
fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn installment_loan(minor: i64, rate: &str, term: u32, method: RepaymentMethod) -> (Loan, Vec<Posting>) {
    let c = direct_contract(&Product::instant_consumer(), "P1", cny(minor), d(rate), term, method, day(2026, 1, 15))
        .unwrap();
    Loan::open(&c)
}

fn revolving_line(limit: i64, daily: &str) -> Loan {
    let c = direct_contract(
        &Product::tax_sme(),
        "S1",
        cny(limit),
        d(daily),
        12,
        RepaymentMethod::Revolving,
        day(2026, 1, 15),
    )
    .unwrap();
    let (loan, postings) = Loan::open(&c);
    assert!(postings.is_empty(), "a line opens undrawn");
    loan
}

/// Replays postings onto per-role balances (debit positive).
fn balances(postings: &[Posting]) -> BTreeMap<AccountRole, i64> {
    let mut b = BTreeMap::new();
    for p in postings {
        *b.entry(p.debit).or_insert(0) += p.amount.minor;
        *b.entry(p.credit).or_insert(0) -= p.amount.minor;
    }
    b
}

fn assert_reconciles(loan: &Loan, journal: &[Posting]) {
    let b = balances(journal);
    let get = |r| b.get(&r).copied().unwrap_or(0);
    assert_eq!(get(AccountRole::LoanPrincipal), loan.principal, "principal");
    assert_eq!(get(AccountRole::InterestReceivable), loan.interest_receivable(), "interest");
    assert_eq!(get(AccountRole::PenaltyReceivable), loan.penalty, "penalty");
    assert_eq!(get(AccountRole::FeeReceivable), loan.fees, "fees");
    assert_eq!(b.values().sum::<i64>(), 0, "debits = credits");
    assert!(journal.iter().all(|p| p.amount.minor > 0 && p.debit != p.credit && p.loan_id == loan.id));
}

#[test]
fn disbursement_postings() {
    let (loan, postings) = installment_loan(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment);
    assert_eq!(postings.len(), 1);
    assert_eq!(postings[0].debit, AccountRole::LoanPrincipal);
    assert_eq!(postings[0].credit, AccountRole::CustomerAccount);
    assert_eq!(postings[0].purpose, PostingPurpose::Disbursement);
    assert_eq!(loan.principal, 100_000_00);
    assert_eq!(loan.status, LoanStatus::Active);
    // Supply chain deducts its 0.2% upfront fee from the payout.
    let c = direct_contract(
        &Product::supply_chain(),
        "S",
        cny(500_000_00),
        d("0.05"),
        3,
        RepaymentMethod::InterestOnlyBullet,
        day(2026, 1, 15),
    )
    .unwrap();
    let (_, postings) = Loan::open(&c);
    assert_eq!(postings[1].amount.minor, 1_000_00);
    assert_eq!((postings[1].debit, postings[1].credit), (AccountRole::CustomerAccount, AccountRole::FeeIncome));
}

#[test]
fn daily_accrual_sums_to_the_scheduled_interest_and_installment_falls_due() {
    let (mut loan, mut journal) = installment_loan(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment);
    // Jan 15 .. Feb 14: 31 nights; the period's interest is 500.00.
    let out = eod(&mut loan, day(2026, 2, 14)).unwrap();
    assert_eq!(out.days_processed, 31);
    assert_eq!(out.postings.len(), 31);
    let amounts: Vec<i64> = out.postings.iter().map(|p| p.amount.minor).collect();
    assert_eq!(amounts.iter().sum::<i64>(), 500_00);
    assert!(amounts.iter().max().unwrap() - amounts.iter().min().unwrap() <= 1);
    journal.extend(out.postings);
    assert_eq!(loan.accrued_interest, 500_00);
    // Pay the installment on the due date, before its end of day.
    let (a, p) = loan.repay(cny(8_606_64), day(2026, 2, 15)).unwrap();
    journal.extend(p);
    assert_eq!((a.current_interest, a.current_principal, a.leftover), (500_00, 8_106_64, 0));
    journal.extend(eod(&mut loan, day(2026, 2, 15)).unwrap().postings);
    assert!(loan.dues.is_empty());
    assert_eq!(loan.status, LoanStatus::Active);
    assert_eq!(loan.principal, 91_893_36);
    assert_reconciles(&loan, &journal);
}

#[test]
fn revolving_30_days_equal_the_monthly_interest_to_the_fen() {
    // 100,000.00 at 6% a year ACT/360 = 16.666… fen a night; 30 nights = 500.00 exactly.
    let mut line = revolving_line(1_000_000_00, "0.00016666666666666666666666667");
    line.annual_rate = d("0.06");
    line.draw(cny(100_000_00), day(2026, 1, 15)).unwrap();
    let out = eod(&mut line, day(2026, 2, 13)).unwrap();
    assert_eq!(out.days_processed, 30);
    assert_eq!(line.accrued_interest, 500_00);
    // 0.015%/day on 1,000,000: 150.00 a day.
    let mut line = revolving_line(3_000_000_00, "0.00015");
    line.draw(cny(1_000_000_00), day(2026, 1, 15)).unwrap();
    eod(&mut line, day(2026, 1, 24)).unwrap();
    assert_eq!(line.accrued_interest, 10 * 150_00);
    assert_eq!(line.interest_carry, Decimal::ZERO);
}

#[test]
fn revolving_draw_repay_and_billing() {
    let mut line = revolving_line(500_000_00, "0.00015");
    let mut journal = Vec::new();
    journal.extend(line.draw(cny(200_000_00), day(2026, 1, 15)).unwrap());
    assert!(matches!(line.draw(cny(300_000_01), day(2026, 1, 15)), Err(LendingError::LineExceeded { .. })));
    journal.extend(eod(&mut line, day(2026, 1, 31)).unwrap().postings);
    // Repay principal any time: interest first, then principal.
    let (a, p) = line.repay(cny(50_000_00), day(2026, 2, 1)).unwrap();
    journal.extend(p);
    assert_eq!(a.current_interest, 17 * 30_00);
    assert_eq!(a.current_principal, 50_000_00 - 17 * 30_00);
    assert_eq!(line.available(), 500_000_00 - line.principal);
    // Billing on Feb 15: accrued interest falls due; unpaid it makes the line overdue.
    journal.extend(eod(&mut line, day(2026, 2, 15)).unwrap().postings);
    assert_eq!(line.dues.len(), 1);
    assert_eq!(line.status, LoanStatus::Overdue);
    assert_eq!(line.dpd, 1);
    assert!(matches!(line.draw(cny(1_00), day(2026, 2, 16)), Err(LendingError::LoanNotActive(_))));
    let due = line.dues[0].interest;
    // One night of penalty (on the overdue interest) comes first in the waterfall.
    let penalty = line.penalty;
    assert!(penalty > 0);
    let (a, p) = line.repay(cny(due + penalty), day(2026, 2, 16)).unwrap();
    journal.extend(p);
    assert_eq!((a.penalty, a.overdue_interest), (penalty, due));
    assert_eq!(line.status, LoanStatus::Active);
    assert_reconciles(&line, &journal);
}

#[test]
fn overdue_ageing_penalty_and_waterfall_order() {
    let (mut loan, mut journal) = installment_loan(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment);
    journal.extend(eod(&mut loan, day(2026, 2, 15)).unwrap().postings);
    assert_eq!(loan.status, LoanStatus::Overdue);
    assert_eq!((loan.dpd, loan.bucket()), (1, Bucket::M1));
    assert_eq!(loan.overdue_principal(), 8_106_64);
    assert_eq!(loan.overdue_interest(), 500_00);
    journal.extend(eod(&mut loan, day(2026, 3, 17)).unwrap().postings);
    assert_eq!((loan.dpd, loan.bucket()), (31, Bucket::M2));
    // Penalty: 1.5 × 6% / 360 per night on the overdue amounts; two installments are overdue now.
    assert!(loan.penalty > 0);
    journal.extend(loan.charge_fee(cny(50_00), day(2026, 3, 18)).unwrap());
    // A small payment goes to penalty, then fees, then overdue interest (oldest first).
    let pay = loan.penalty + 50_00 + 100_00;
    let penalty = loan.penalty;
    let (a, p) = loan.repay(cny(pay), day(2026, 3, 18)).unwrap();
    journal.extend(p);
    assert_eq!((a.penalty, a.fees, a.overdue_interest, a.overdue_principal), (penalty, 50_00, 100_00, 0));
    assert_eq!(loan.dues[0].interest, 400_00);
    // Everything overdue plus more: the rest goes to current interest and current principal,
    // and what exceeds the running installment comes back.
    let owed = loan.total_outstanding();
    let (a, p) = loan.repay(cny(owed), day(2026, 3, 18)).unwrap();
    journal.extend(p);
    assert_eq!(a.applied() + a.leftover, owed);
    assert!(a.leftover > 0);
    assert!(loan.dues.is_empty());
    assert_eq!(loan.status, LoanStatus::Active);
    assert_eq!(loan.dpd, 0);
    assert_reconciles(&loan, &journal);
    // Age 61+ → M3+.
    journal.extend(eod(&mut loan, day(2026, 7, 1)).unwrap().postings);
    assert_eq!(loan.bucket(), Bucket::M3Plus);
    assert_eq!(crate::monitor::loan_alerts(&loan)[0].severity, crate::Severity::Critical);
    journal.extend(loan.write_off(day(2026, 7, 2)).unwrap());
    assert_eq!(loan.status, LoanStatus::WrittenOff);
    assert_eq!(loan.total_outstanding(), 0);
    assert_reconciles(&loan, &journal);
    assert!(matches!(loan.repay(cny(1), day(2026, 7, 3)), Err(LendingError::LoanWrittenOff(_))));
}

#[test]
fn write_off_needs_ninety_days_past_due_unless_forced_and_stops_accrual() {
    let (mut loan, mut journal) = installment_loan(12_000_00, "0.12", 12, RepaymentMethod::EqualInstallment);
    journal.extend(eod(&mut loan, day(2026, 3, 1)).unwrap().postings);
    assert!(loan.dpd > 0 && loan.dpd < WRITE_OFF_MIN_DPD, "dpd {}", loan.dpd);
    let before = loan.clone();
    assert!(matches!(
        loan.write_off_overdue(day(2026, 3, 2), WRITE_OFF_MIN_DPD, false),
        Err(LendingError::NotOverdueEnough { required: WRITE_OFF_MIN_DPD, .. })
    ));
    assert_eq!(loan, before);
    // A forced write-off of a loan that is not old enough works (administrator override).
    let mut forced = loan.clone();
    assert!(!forced.write_off_overdue(day(2026, 3, 2), WRITE_OFF_MIN_DPD, true).unwrap().is_empty());
    assert_eq!(forced.status, LoanStatus::WrittenOff);

    journal.extend(eod(&mut loan, day(2026, 6, 1)).unwrap().postings);
    assert!(loan.dpd >= WRITE_OFF_MIN_DPD);
    let owed = loan.total_outstanding();
    let postings = loan.write_off_overdue(day(2026, 6, 2), WRITE_OFF_MIN_DPD, false).unwrap();
    assert_eq!(postings.iter().map(|p| p.amount.minor).sum::<i64>(), owed);
    assert!(postings
        .iter()
        .all(|p| p.debit == AccountRole::LoanLossAllowance && p.purpose == PostingPurpose::WriteOff));
    journal.extend(postings);
    assert_reconciles(&loan, &journal);
    // End of day no longer accrues anything on it.
    let out = eod(&mut loan, day(2026, 9, 1)).unwrap();
    assert!(out.postings.is_empty());
    assert_eq!(loan.total_outstanding(), 0);
    assert!(matches!(loan.write_off(day(2026, 9, 2)), Err(LendingError::LoanNotActive(_))));
    assert!(matches!(loan.prepay(cny(1), day(2026, 9, 2), PrepayMode::KeepTerm), Err(LendingError::LoanWrittenOff(_))));
}

#[test]
fn wrong_currency_and_stale_dates_are_errors() {
    let (mut loan, _) = installment_loan(10_000_00, "0.06", 3, RepaymentMethod::EqualPrincipal);
    let before = loan.clone();
    assert!(matches!(
        loan.repay(Amount::new(100, Currency::USD), day(2026, 1, 20)),
        Err(LendingError::CurrencyMismatch { expected: Currency::CNY, got: Currency::USD })
    ));
    assert!(matches!(loan.repay(cny(0), day(2026, 1, 20)), Err(LendingError::AmountNotPositive)));
    eod(&mut loan, day(2026, 1, 20)).unwrap();
    assert!(matches!(loan.repay(cny(100), day(2026, 1, 20)), Err(LendingError::OperationBeforeLastEod { .. })));
    assert!(matches!(eod(&mut loan, day(2026, 1, 19)), Err(LendingError::EodDateInPast { .. })));
    let snapshot = loan.clone();
    let again = eod(&mut loan, day(2026, 1, 20)).unwrap();
    assert!(again.already_run && again.postings.is_empty());
    assert_eq!(loan, snapshot);
    assert!(matches!(eod(&mut before.clone(), day(2026, 1, 1)), Err(LendingError::BeforeStart { .. })));
}

#[test]
fn prepayment_partial_and_full() {
    let (mut loan, mut journal) = installment_loan(100_000_00, "0.06", 12, RepaymentMethod::EqualInstallment);
    journal.extend(eod(&mut loan, day(2026, 2, 14)).unwrap().postings);
    journal.extend(loan.repay(cny(8_606_64), day(2026, 2, 15)).unwrap().1);
    journal.extend(eod(&mut loan, day(2026, 3, 1)).unwrap().postings);
    // Too small to cover accrued interest.
    assert!(matches!(
        loan.prepay(cny(1), day(2026, 3, 2), PrepayMode::KeepTerm),
        Err(LendingError::PrepayTooSmall { .. })
    ));
    let accrued = loan.accrued_interest;
    let (a, p) = loan.prepay(cny(accrued + 30_000_00), day(2026, 3, 2), PrepayMode::KeepTerm).unwrap();
    journal.extend(p);
    assert_eq!((a.current_interest, a.current_principal, a.leftover), (accrued, 30_000_00, 0));
    assert_eq!(loan.principal, 91_893_36 - 30_000_00);
    assert_eq!(loan.schedule.len(), 12);
    assert_eq!(loan.schedule[1..].iter().map(|l| l.principal).sum::<i64>(), loan.principal);
    assert!(loan.schedule[2].total() < 8_606_64);
    // Keep installment instead: fewer lines.
    let mut short = loan.clone();
    let (_, p) = short.prepay(cny(10_000_00), day(2026, 3, 3), PrepayMode::KeepInstallment).unwrap();
    assert!(!p.is_empty());
    assert!(short.schedule.len() < 12);
    assert_eq!(short.schedule[1..].iter().map(|l| l.principal).sum::<i64>(), short.principal);
    assert_eq!(short.maturity_date, short.schedule.last().unwrap().due_date);
    // Full payoff: quote includes interest to date and closes the loan.
    let quote = loan.payoff_quote(day(2026, 3, 13)).unwrap();
    journal.extend(eod(&mut loan, day(2026, 3, 12)).unwrap().postings);
    assert_eq!(quote.minor, loan.total_outstanding());
    assert!(loan.accrued_interest > 0);
    let (a, p) = loan.prepay(quote, day(2026, 3, 13), PrepayMode::KeepTerm).unwrap();
    journal.extend(p);
    assert_eq!(a.leftover, 0);
    assert_eq!(loan.status, LoanStatus::PaidOff);
    assert_eq!(loan.total_outstanding(), 0);
    assert_reconciles(&loan, &journal);
    // EOD on a closed loan posts nothing.
    assert!(eod(&mut loan, day(2026, 4, 30)).unwrap().postings.is_empty());
}

#[test]
fn full_life_of_an_equal_principal_loan_paid_on_time() {
    let (mut loan, mut journal) = installment_loan(120_000_00, "0.06", 12, RepaymentMethod::EqualPrincipal);
    let schedule = loan.schedule.clone();
    for line in &schedule {
        journal.extend(eod(&mut loan, line.due_date.pred_opt().unwrap()).unwrap().postings);
        let (a, p) = loan.repay(cny(line.total()), line.due_date).unwrap();
        assert_eq!(a.leftover, 0, "installment {}", line.seq);
        journal.extend(p);
    }
    assert_eq!(loan.status, LoanStatus::PaidOff);
    assert_eq!(loan.paid.interest, 3_900_00);
    assert_eq!(loan.paid.principal, 120_000_00);
    assert_reconciles(&loan, &journal);
}

#[test]
fn acceptance_validation() {
    let c = direct_contract(
        &Product::instant_consumer(),
        "P",
        cny(50_000_00),
        d("0.05"),
        12,
        RepaymentMethod::EqualInstallment,
        day(2026, 1, 1),
    )
    .unwrap();
    let at = DateTime::<Utc>::from_timestamp(1_767_268_800, 0).unwrap();
    let offer = Offer {
        limit: cny(50_000_00),
        min_amount: cny(1_000_00),
        terms_months: vec![6, 12],
        expires_at: at + Duration::hours(72),
        ..crate::offer::tests_support::offer_from(&c)
    };
    let ok = AcceptRequest {
        amount: cny(50_000_00),
        term_months: 12,
        method: RepaymentMethod::EqualInstallment,
        start_date: day(2026, 1, 2),
        accepted_at: at,
    };
    let contract = accept(&offer, &ok).unwrap();
    assert_eq!(contract.schedule.total_principal(), 50_000_00);
    assert_eq!(accept(&offer, &ok).unwrap().id, contract.id, "same acceptance → same contract id");
    let e = |r: AcceptRequest| accept(&offer, &r).unwrap_err();
    assert!(matches!(e(AcceptRequest { amount: cny(50_000_01), ..ok.clone() }), LendingError::AmountAboveLimit { .. }));
    assert!(matches!(e(AcceptRequest { amount: cny(999_99), ..ok.clone() }), LendingError::AmountBelowMinimum { .. }));
    assert!(matches!(e(AcceptRequest { term_months: 24, ..ok.clone() }), LendingError::TermNotOffered(24)));
    assert!(matches!(
        e(AcceptRequest { method: RepaymentMethod::InterestOnlyBullet, ..ok.clone() }),
        LendingError::MethodNotOffered(_)
    ));
    assert!(matches!(
        e(AcceptRequest { accepted_at: at + Duration::hours(73), ..ok.clone() }),
        LendingError::OfferExpired { .. }
    ));
    assert!(matches!(
        e(AcceptRequest { amount: Amount::new(1_000_00, Currency::USD), ..ok.clone() }),
        LendingError::CurrencyMismatch { .. }
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Nothing,
    Repay(i64),
    Prepay(i64, bool),
    Draw(i64),
    Fee(i64),
}

fn ops() -> impl Strategy<Value = Vec<(u8, Op)>> {
    let op = prop_oneof![
        3 => Just(Op::Nothing),
        4 => (1i64..3_000_000).prop_map(Op::Repay),
        1 => (1i64..5_000_000, any::<bool>()).prop_map(|(a, k)| Op::Prepay(a, k)),
        2 => (1i64..50_000_000).prop_map(Op::Draw),
        1 => (1i64..10_000).prop_map(Op::Fee),
    ];
    proptest::collection::vec((1u8..45, op), 1..25)
}

fn loan_strategy() -> impl Strategy<Value = (Loan, Vec<Posting>)> {
    (1_000_00i64..1_000_000_00, 1i64..2_400, prop_oneof![Just(3u32), Just(6), Just(12), Just(24)], 0u8..4).prop_map(
        |(minor, bps, term, kind)| {
            let method = [
                RepaymentMethod::EqualInstallment,
                RepaymentMethod::EqualPrincipal,
                RepaymentMethod::InterestOnlyBullet,
                RepaymentMethod::Revolving,
            ][kind as usize];
            let product =
                if method == RepaymentMethod::Revolving { Product::tax_sme() } else { Product::instant_consumer() };
            let rate = if method == RepaymentMethod::Revolving { Decimal::new(bps, 8) } else { Decimal::new(bps, 4) };
            let c = direct_contract(&product, "X", cny(minor), rate, term, method, day(2026, 1, 31)).unwrap();
            Loan::open(&c)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_lives_reconcile_and_allocations_conserve_money(opened in loan_strategy(), script in ops()) {
        let (mut loan, mut journal) = opened;
        let mut date = loan.start_date;
        for (days, op) in script {
            let today = date;
            let before_op = loan.clone();
            let res: Result<Vec<Posting>, LendingError> = match op {
                Op::Nothing => Ok(Vec::new()),
                Op::Repay(a) => loan.repay(cny(a), today).map(|(alloc, p)| {
                    assert_eq!(alloc.applied() + alloc.leftover, a);
                    assert!(alloc.leftover >= 0 && alloc.applied() >= 0);
                    assert_eq!(p.iter().map(|x| x.amount.minor).sum::<i64>(), alloc.applied());
                    p
                }),
                Op::Prepay(a, keep) => {
                    let mode = if keep { PrepayMode::KeepInstallment } else { PrepayMode::KeepTerm };
                    loan.prepay(cny(a), today, mode).map(|(alloc, p)| {
                        assert_eq!(alloc.applied() + alloc.leftover, a);
                        p
                    })
                }
                Op::Draw(a) => loan.draw(cny(a), today),
                Op::Fee(a) => loan.charge_fee(cny(a), today),
            };
            match res {
                Ok(p) => journal.extend(p),
                Err(_) => prop_assert_eq!(&loan, &before_op, "an error leaves the loan unchanged"),
            }
            date = today + Duration::days(i64::from(days));
            let eod_date = date.pred_opt().unwrap();
            journal.extend(eod(&mut loan, eod_date).unwrap().postings);
            prop_assert!(loan.principal >= 0 && loan.accrued_interest >= 0 && loan.penalty >= 0 && loan.fees >= 0);
            prop_assert!(loan.dues.iter().all(|d| d.principal >= 0 && d.interest >= 0));
            prop_assert!(loan.interest_carry >= Decimal::ZERO && loan.interest_carry < Decimal::ONE);
            assert_reconciles(&loan, &journal);
        }
    }

    #[test]
    fn eod_is_idempotent_and_gaps_equal_day_by_day(opened in loan_strategy(), gap in 1i64..120, draw in 1i64..1_000_000) {
        let mut a = opened.0;
        if a.method == RepaymentMethod::Revolving {
            a.draw(cny(draw.min(a.line_limit)), a.start_date).unwrap();
        }
        let mut b = a.clone();
        let end = a.start_date + Duration::days(gap);
        let once = eod(&mut a, end).unwrap();
        let mut day_by_day = Vec::new();
        let mut t = b.start_date;
        while t <= end {
            day_by_day.extend(eod(&mut b, t).unwrap().postings);
            t = t.succ_opt().unwrap();
        }
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&once.postings, &day_by_day);
        let snapshot = a.clone();
        let twice = eod(&mut a, end).unwrap();
        prop_assert!(twice.already_run && twice.postings.is_empty());
        prop_assert_eq!(&a, &snapshot);
    }
}
