//! The service against both databases: a revolving line and an instant loan through draws,
//! ends of day, repayments and a full prepayment; every loan reconciles with its ledger accounts
//! to the fen after every step, and the ledger verifies.
// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]

use chrono::{Duration, NaiveDate};
use ledger::{AccountKind, Ledger, OwnerType, TransferId, TransferRequest};
use lending::{direct_contract, LoanId, LoanStatus, PrepayMode, Product, RepaymentMethod};
use lending_platform::{EodLimits, LendingPlatformError, LendingService};

const SIMULATION: EodLimits = EodLimits { max_gap_days: 400, max_days_ahead: 1 };
use money::{Amount, Currency};
use rust_decimal::Decimal;

use harness::test_account as account;

async fn reconciled(service: &LendingService, id: LoanId) {
    let view = service.view(id).await.unwrap();
    assert!(view.reconciled, "{:?} vs {:?}", view.ledger, view.loan);
    assert_eq!(view.ledger.principal, view.loan.principal);
    assert_eq!(view.ledger.interest_receivable, view.loan.interest_receivable());
}

#[tokio::test]
async fn loans_reconcile_with_the_ledger_through_every_operation() {
    for db in storage::testing::all().await {
        let ledger = Ledger::new(&db.db);
        // Months of business are simulated: end of day may jump that far.
        let service = LendingService::new(db.db.clone(), ledger.clone(), access::Vault::for_tests(&db.db).await)
            .with_eod_limits(SIMULATION);
        let cash = ledger.open_account(account(AccountKind::Asset, OwnerType::Bank, false)).await.unwrap().id;
        let deposit = ledger.open_account(account(AccountKind::Liability, OwnerType::Customer, true)).await.unwrap().id;
        let fund = TransferRequest::posted(TransferId::new(), cash, deposit, 500_000_00, Currency::CNY);
        ledger.submit_batch(&[fund]).await.unwrap();
        let cny = |m: i64| Amount::new(m, Currency::CNY);
        let start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();

        let sme = Product::tax_sme();
        let line =
            direct_contract(&sme, "c1", cny(300_000_00), Decimal::new(15, 5), 12, RepaymentMethod::Revolving, start)
                .unwrap();
        let line = service.open_contract(line, deposit, deposit).await.unwrap().loan.id;
        let consumer = Product::instant_consumer();
        let loan = direct_contract(
            &consumer,
            "c1",
            cny(50_000_00),
            Decimal::new(72, 3),
            12,
            RepaymentMethod::EqualInstallment,
            start,
        )
        .unwrap();
        let loan = service.open_contract(loan, deposit, deposit).await.unwrap().loan.id;
        reconciled(&service, loan).await;

        service.draw(line, cny(100_000_00), Some(start)).await.unwrap();
        reconciled(&service, line).await;
        let r = service.run_eod(start + Duration::days(9), |_, _| {}).await.unwrap();
        assert!(!r.already_run && r.loans_processed == 2 && r.interest_accrued_minor > 0, "{r:?}");
        let again = service.run_eod(start + Duration::days(9), |_, _| {}).await.unwrap();
        assert!(again.already_run);
        reconciled(&service, line).await;
        reconciled(&service, loan).await;

        // A draw beyond the line fails and changes nothing.
        let before = service.loan(line).await.unwrap();
        assert!(service.draw(line, cny(250_000_00), Some(start + Duration::days(10))).await.is_err());
        assert_eq!(service.loan(line).await.unwrap().version, before.version);

        service.repay(line, cny(20_000_00), Some(start + Duration::days(10)), None).await.unwrap();
        service.draw(line, cny(5_000_00), Some(start + Duration::days(20))).await.unwrap();
        // End of day past the first billing date: the revolving interest falls due, the instant
        // loan's first installment too.
        service.run_eod(start + Duration::days(35), |_, _| {}).await.unwrap();
        reconciled(&service, line).await;
        reconciled(&service, loan).await;
        let l = service.loan(loan).await.unwrap().loan;
        assert_eq!(l.status, LoanStatus::Overdue);
        let owed = l.penalty + l.fees + l.overdue_interest() + l.overdue_principal();
        service.repay(loan, cny(owed), Some(start + Duration::days(36)), None).await.unwrap();
        reconciled(&service, loan).await;
        // A partial prepayment recalculates the schedule; the stored one is the new one.
        let before = service.loan(loan).await.unwrap().loan.schedule;
        let out = service
            .prepay(loan, cny(5_000_00), PrepayMode::KeepTerm, Some(start + Duration::days(36)), None)
            .await
            .unwrap();
        assert_ne!(out.loan.schedule, before);
        assert_eq!(service.loan(loan).await.unwrap().loan.schedule, out.loan.schedule);
        reconciled(&service, loan).await;
        // Pay the instant loan off.
        let l = service.loan(loan).await.unwrap().loan;
        let day = start + Duration::days(37);
        let quote = l.payoff_quote(day).unwrap();
        let out = service.prepay(loan, quote, PrepayMode::KeepTerm, Some(day), None).await.unwrap();
        assert_eq!(out.loan.status, LoanStatus::PaidOff, "{:?}", out.allocation);
        reconciled(&service, loan).await;
        reconciled(&service, line).await;

        let report = ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    }
}

fn analyst() -> lending::Analyst {
    lending::Analyst { id: "key-test".into(), role: "operator".into(), at: chrono::Utc::now() }
}

#[tokio::test]
async fn write_off_charges_everything_to_the_loss_allowance_once() {
    for db in storage::testing::all().await {
        let ledger = Ledger::new(&db.db);
        // Months of business are simulated: end of day may jump that far.
        let service = LendingService::new(db.db.clone(), ledger.clone(), access::Vault::for_tests(&db.db).await)
            .with_eod_limits(SIMULATION);
        let cash = ledger.open_account(account(AccountKind::Asset, OwnerType::Bank, false)).await.unwrap().id;
        let deposit = ledger.open_account(account(AccountKind::Liability, OwnerType::Customer, true)).await.unwrap().id;
        let fund = TransferRequest::posted(TransferId::new(), cash, deposit, 10_000_00, Currency::CNY);
        ledger.submit_batch(&[fund]).await.unwrap();
        let start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let contract = direct_contract(
            &Product::instant_consumer(),
            "c1",
            Amount::new(30_000_00, Currency::CNY),
            Decimal::new(12, 2),
            12,
            RepaymentMethod::EqualInstallment,
            start,
        )
        .unwrap();
        let id = service.open_contract(contract, deposit, deposit).await.unwrap().loan.id;
        let input = |date: NaiveDate| lending_platform::WriteOffInput {
            reason: "uncollectable".into(),
            force: false,
            date: Some(date),
        };
        // 60 days in: not old enough, nothing written.
        service.run_eod(start + Duration::days(60), |_, _| {}).await.unwrap();
        let before = service.loan(id).await.unwrap();
        let e = service.write_off(id, &input(start + Duration::days(61)), &analyst()).await.unwrap_err();
        assert!(matches!(
            e,
            lending_platform::LendingPlatformError::Lending(lending::LendingError::NotOverdueEnough { .. })
        ));
        assert_eq!(service.loan(id).await.unwrap().version, before.version);

        service.run_eod(start + Duration::days(150), |_, _| {}).await.unwrap();
        let l = service.loan(id).await.unwrap().loan;
        let owed = l.total_outstanding();
        assert!(l.dpd >= lending::WRITE_OFF_MIN_DPD && l.penalty > 0);
        let allowance = lending_platform::accounts::gl_account("gl.loan_loss_allowance", Currency::CNY);
        let allowance_before = ledger.balance(allowance, None).await.unwrap().posted;
        let out = service.write_off(id, &input(start + Duration::days(151)), &analyst()).await.unwrap();
        assert!(!out.already_written_off);
        assert_eq!(out.charged_off.total, owed);
        assert_eq!(out.loan.status, LoanStatus::WrittenOff);
        assert_eq!(ledger.balance(allowance, None).await.unwrap().posted, allowance_before + owed);
        reconciled(&service, id).await;
        // Again: nothing more.
        let again = service.write_off(id, &input(start + Duration::days(152)), &analyst()).await.unwrap();
        assert!(again.already_written_off && again.postings.is_empty());
        assert_eq!(ledger.balance(allowance, None).await.unwrap().posted, allowance_before + owed);
        // End of day no longer reads it; repayments are refused.
        let r = service.run_eod(start + Duration::days(200), |_, _| {}).await.unwrap();
        assert_eq!(r.loans_seen, 0);
        assert!(service.repay(id, Amount::new(1_00, Currency::CNY), None, None).await.is_err());
        reconciled(&service, id).await;
        let report = ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    }
}

#[tokio::test]
async fn concurrent_approve_and_decline_of_one_review_item_leave_one_consistent_decision() {
    for db in storage::testing::all().await {
        let ledger = Ledger::new(&db.db);
        let config = risk_platform::RiskConfig { refresh_secs: 0, ..risk_platform::RiskConfig::default() };
        let vault = access::Vault::for_tests(&db.db).await;
        let risk = std::sync::Arc::new(
            risk_platform::RiskService::load(&db.db, &ledger, config, vault.clone()).await.unwrap(),
        );
        let service = LendingService::new(db.db.clone(), ledger, vault).with_risk(risk);
        let mut review = None;
        for i in 0..300 {
            let input = lending_platform::ApplyInput {
                applicant_id: format!("R-{i}"),
                product_code: "instant_consumer".into(),
                ..Default::default()
            };
            let d = service.apply(&input).await.unwrap();
            if d.outcome == lending::Outcome::Review {
                review = Some(d);
                break;
            }
        }
        let id = review.expect("a review among 300").id.0.to_string();
        let approve = lending_platform::ReviewApproval { note: "fine".into(), ..Default::default() };
        let decline = lending_platform::ReviewDecline { reason_code: "other".into(), note: "not fine".into() };
        let who = analyst();
        let (a, b) =
            tokio::join!(service.approve_review(&id, &approve, &who), service.decline_review(&id, &decline, &who));
        assert!(a.is_ok() != b.is_ok(), "exactly one wins: {a:?} / {b:?}");
        let loser = a.as_ref().err().or(b.as_ref().err()).unwrap();
        assert!(
            matches!(
                loser,
                lending_platform::LendingPlatformError::Lending(lending::LendingError::ReviewAlreadyDecided(_))
            ),
            "{loser:?}"
        );
        let stored = service.decision(&id).await.unwrap();
        let status = service.store().review_status(&id).await.unwrap().unwrap();
        match stored.outcome {
            lending::Outcome::Approve => assert_eq!(status, "approved"),
            lending::Outcome::Decline => assert_eq!(status, "declined"),
            other => panic!("still {other:?}"),
        }
        assert_eq!(stored.manual_review.unwrap().outcome, stored.outcome);
    }
}

/// End of day while repayments land on the same loans: whichever commits first, the other
/// notices (the end of day re-reads its page, a repayment answers `Conflict`), no loan is
/// skipped or accrued twice, every loan reconciles with its ledger accounts, and the ledger
/// verifies.
#[tokio::test]
async fn end_of_day_alongside_repayments_keeps_every_loan_reconciled() {
    for db in storage::testing::all().await {
        let ledger = Ledger::new(&db.db);
        // Months of business are simulated: end of day may jump that far.
        let service = LendingService::new(db.db.clone(), ledger.clone(), access::Vault::for_tests(&db.db).await)
            .with_eod_limits(SIMULATION);
        let cash = ledger.open_account(account(AccountKind::Asset, OwnerType::Bank, false)).await.unwrap().id;
        let deposit = ledger.open_account(account(AccountKind::Liability, OwnerType::Customer, true)).await.unwrap().id;
        let fund = TransferRequest::posted(TransferId::new(), cash, deposit, 10_000_000_00, Currency::CNY);
        ledger.submit_batch(&[fund]).await.unwrap();
        let cny = |m: i64| Amount::new(m, Currency::CNY);
        let start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let consumer = Product::instant_consumer();
        let mut ids = Vec::new();
        for i in 0..90 {
            let c = direct_contract(
                &consumer,
                &format!("c{i}"),
                cny(10_000_00 + i * 100_00),
                Decimal::new(72, 3),
                12,
                RepaymentMethod::EqualInstallment,
                start,
            )
            .unwrap();
            ids.push(service.open_contract(c, deposit, deposit).await.unwrap().loan.id);
        }
        let date = start + Duration::days(20);
        service.run_eod(date - Duration::days(1), |_, _| {}).await.unwrap();
        let repayments = async {
            let mut outcomes = Vec::new();
            for id in ids.iter().step_by(2) {
                outcomes.push(service.repay(*id, cny(50_00), Some(date), None).await);
                tokio::task::yield_now().await;
            }
            outcomes
        };
        let (eod, repaid) = tokio::join!(service.run_eod(date, |_, _| {}), repayments);
        let booked = repaid.iter().filter(|r| r.is_ok()).count();
        let raced =
            repaid.iter().filter(|r| matches!(r, Err(lending_platform::LendingPlatformError::Conflict(_)))).count();
        eprintln!("{} backend: {booked} repayments booked, {raced} told to retry", db.backend());
        let eod = eod.unwrap();
        assert_eq!(eod.loans_failed, 0, "{eod:?}");
        for r in &repaid {
            // Refused once the day is closed, or told to retry when the end of day took the
            // loan's version first.
            match r {
                Ok(_)
                | Err(lending_platform::LendingPlatformError::Conflict(_))
                | Err(lending_platform::LendingPlatformError::Lending(
                    lending::LendingError::OperationBeforeLastEod { .. },
                )) => {}
                Err(e) => panic!("repayment failed otherwise: {e:?}"),
            }
        }
        for id in &ids {
            reconciled(&service, *id).await;
            assert_eq!(service.loan(*id).await.unwrap().loan.last_eod, Some(date), "no loan skipped");
        }
        let report = ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    }
}

#[tokio::test]
async fn end_of_day_dates_are_bounded_before_any_work() {
    for db in storage::testing::all().await {
        let service = LendingService::new(db.db.clone(), Ledger::new(&db.db), access::Vault::for_tests(&db.db).await);
        let today = chrono::Utc::now().date_naive();
        let out_of_range = |r: Result<lending_platform::EodReport, LendingPlatformError>| match r {
            Err(LendingPlatformError::EodDateOutOfRange { latest, .. }) => latest,
            other => panic!("expected eod_date_out_of_range, got {other:?}"),
        };
        // Far in the future (the 6505-01-01 of the issue): refused at once, nothing recorded.
        let far = NaiveDate::from_ymd_opt(6505, 1, 1).unwrap();
        assert_eq!(out_of_range(service.run_eod(far, |_, _| {}).await), today + Duration::days(1));
        assert_eq!(
            out_of_range(service.run_eod(today + Duration::days(2), |_, _| {}).await),
            today + Duration::days(1)
        );
        // A first run 40 days ago, then at most 31 days after it.
        let first = today - Duration::days(40);
        assert!(!service.run_eod(first, |_, _| {}).await.unwrap().already_run);
        let latest = out_of_range(service.run_eod(today, |_, _| {}).await);
        assert_eq!(latest, first + Duration::days(31));
        assert!(!service.run_eod(latest, |_, _| {}).await.unwrap().already_run);
        assert!(!service.run_eod(today, |_, _| {}).await.unwrap().already_run);
    }
}
