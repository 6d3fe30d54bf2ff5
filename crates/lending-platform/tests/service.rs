//! The service against both databases: a revolving line and an instant loan through draws,
//! ends of day, repayments and a full prepayment; every loan reconciles with its ledger accounts
//! to the fen after every step, and the ledger verifies.
// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]

use chrono::{Duration, NaiveDate};
use ledger::{AccountId, AccountKind, Ledger, NewAccount, OwnerType, TransferId, TransferRequest};
use lending::{direct_contract, LoanId, LoanStatus, PrepayMode, Product, RepaymentMethod};
use lending_platform::LendingService;
use money::{Amount, Currency};
use rust_decimal::Decimal;

fn account(kind: AccountKind, owner: OwnerType, limited: bool) -> NewAccount {
    NewAccount {
        id: Some(AccountId(uuid::Uuid::now_v7())),
        currency: Currency::CNY,
        kind,
        owner_type: owner,
        owner_id: (owner == OwnerType::Customer).then(|| "c1".to_string()),
        code: None,
        name: None,
        debits_must_not_exceed_credits: limited,
        credits_must_not_exceed_debits: false,
        overdraft_limit: 0,
    }
}

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
        let service = LendingService::new(db.db.clone(), ledger.clone());
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
