//! Two nodes refreshing the KPIs at the same time over one database count every journal entry
//! and every API response once; on SQLite and PostgreSQL.

#![allow(clippy::inconsistent_digit_grouping)] // amounts written as yuan_fen

use std::sync::Arc;

use kpi::{Decimal, KpiId};
use kpi_platform::KpiService;
use ledger::{AccountKind, Ledger, OwnerType, TransferId, TransferRequest};
use money::Currency;

use harness::test_account as account;

async fn value(node: &KpiService, id: KpiId) -> Option<Decimal> {
    node.current().await.unwrap().into_iter().find(|(k, _)| *k == id).map(|(_, v)| v)
}

fn pay(from: ledger::AccountId, to: ledger::AccountId, amount: i64, channel: Option<&str>) -> TransferRequest {
    let t = TransferRequest::posted(TransferId::new(), from, to, amount, Currency::CNY);
    match channel {
        Some(c) => t.with_metadata(serde_json::json!({"channel": c})),
        None => t,
    }
}

#[tokio::test]
async fn concurrent_refreshes_count_each_entry_and_response_once() {
    for db in storage::testing::all().await {
        let ledger = Ledger::new(&db.db);
        let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
        let (one, two) = (KpiService::new(db.db.clone(), clock.clone()), KpiService::new(db.db.clone(), clock));
        let cash = ledger.open_account(account(AccountKind::Asset, OwnerType::Bank, false)).await.unwrap().id;
        let alice = ledger.open_account(account(AccountKind::Liability, OwnerType::Customer, true)).await.unwrap().id;

        let mut batch = vec![pay(cash, alice, 1_000_00, Some("branch"))];
        batch.extend((0..3).map(|_| pay(alice, cash, 10_00, Some("mobile_app"))));
        batch.push(pay(alice, cash, 5_00, None));
        ledger.submit_batch(&batch).await.unwrap();
        for (node, status) in [(&one, 200), (&one, 500), (&two, 404), (&two, 201)] {
            node.record_response(status);
        }

        // Both nodes refresh four times at once.
        let (a, b) = tokio::join!(
            async {
                for _ in 0..4 {
                    one.refresh().await.unwrap();
                }
            },
            async {
                for _ in 0..4 {
                    two.refresh().await.unwrap();
                }
            }
        );
        let ((), ()) = (a, b);
        for node in [&one, &two] {
            assert_eq!(value(node, KpiId::DigitalChannelShare).await, Some(Decimal::new(75, 2)), "{}", db.backend());
            assert_eq!(value(node, KpiId::ActiveCustomers).await, Some(Decimal::ONE));
            assert_eq!(value(node, KpiId::DepositBalance).await, Some(Decimal::from(1_000_00 - 35_00)));
            assert_eq!(value(node, KpiId::ApiErrorRate).await, Some(Decimal::new(25, 2)), "one 5xx of four");
        }

        // More entries, read by the other node from where the first got to.
        ledger.submit_batch(&[pay(alice, cash, 1_00, Some("branch"))]).await.unwrap();
        two.refresh().await.unwrap();
        one.refresh().await.unwrap();
        assert_eq!(value(&one, KpiId::DigitalChannelShare).await, Some(Decimal::new(6, 1)));
        let overview = one.overview(24, 30).await.unwrap();
        let share = overview.indicators.iter().find(|s| s.definition.id == KpiId::DigitalChannelShare).unwrap();
        assert_eq!((share.hourly.len(), share.daily.len()), (1, 1), "one point per hour and day");
        assert_eq!(share.hourly[0].value, Some(Decimal::new(6, 1)));
        db.db.close().await;
    }
}
