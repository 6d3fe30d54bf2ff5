//! Case resolution is one unit of work: closing the case and posting or voiding the transfer it
//! held commit together. Raced by many resolvers with conflicting verdicts, exactly one wins and
//! the money ends where its verdict says; on both databases.

use std::sync::Arc;

use ledger::{AccountKind, HoldStatus, Ledger, OwnerType, TransferId, TransferRequest};
use money::Currency;
use risk::{ConditionSpec, Resolution, Rule, RuleAction};
use risk_platform::{RiskConfig, RiskPlatformError, RiskService, Screening};

use harness::test_account as account;

fn review_everything() -> Rule {
    serde_json::from_value(serde_json::json!({
        "id": "review_all", "condition": {"type": "expression", "source": "event_amount > 0"},
        "action": "review", "reason_code": "REVIEW_ALL", "explanation": "every transfer is reviewed"
    }))
    .unwrap()
}

#[tokio::test]
async fn concurrent_resolvers_commit_exactly_one_verdict_with_its_money_movement() {
    for db in storage::testing::all().await {
        let ledger = Ledger::new(&db.db);
        let config = RiskConfig { refresh_secs: 0, graph_history_days: 0, ..RiskConfig::default() };
        let service =
            Arc::new(RiskService::load(&db.db, &ledger, config, access::Vault::for_tests(&db.db).await).await.unwrap());
        let rule = review_everything();
        assert!(matches!(rule.condition, ConditionSpec::Expression { .. }) && rule.action == RuleAction::Review);
        let set = service.create_rule_set("fraud".into(), None, vec![rule], None).await.unwrap();
        service.activate_rule_set(set.version).await.unwrap();

        let cash = ledger.open_account(account(AccountKind::Asset, OwnerType::Bank, false)).await.unwrap().id;
        let alice = ledger.open_account(account(AccountKind::Liability, OwnerType::Customer, true)).await.unwrap().id;
        let bob = ledger.open_account(account(AccountKind::Liability, OwnerType::Customer, true)).await.unwrap().id;
        ledger
            .submit_batch(&[TransferRequest::posted(TransferId::new(), cash, alice, 1_000_000, Currency::CNY)])
            .await
            .unwrap();

        for round in 0..6 {
            let mut request = TransferRequest::posted(TransferId::new(), alice, bob, 1_000, Currency::CNY);
            request.metadata = Some(serde_json::json!({"channel": "mobile", "customer_id": format!("C-{round}")}));
            let Screening::Review(decision) = service.screen_transfer(&request).await.unwrap() else {
                panic!("the rule reviews every transfer")
            };
            let held = request.id;
            service.hold_for_review(request).await.unwrap();
            let case = decision.case_id.expect("a review opens a case");

            // Eight analysts at once, half saying fraud, half false positive.
            let resolvers = (0..8).map(|i| {
                let service = Arc::clone(&service);
                let verdict = if i % 2 == 0 { Resolution::ConfirmedFraud } else { Resolution::FalsePositive };
                tokio::spawn(async move {
                    (verdict, service.resolve_case(case, verdict, &format!("analyst-{i}"), "").await)
                })
            });
            let mut winners = Vec::new();
            for r in futures_join(resolvers).await {
                match r {
                    (verdict, Ok(resolved)) => winners.push((verdict, resolved)),
                    (_, Err(RiskPlatformError::Engine(risk::RiskError::CaseAlreadyResolved(c)))) => assert_eq!(c, case),
                    (_, Err(e)) => panic!("{}: unexpected error {e}", db.backend()),
                }
            }
            assert_eq!(winners.len(), 1, "{}: exactly one resolver commits", db.backend());
            let (verdict, resolved) = &winners[0];
            assert_eq!(resolved.case.resolution, Some(*verdict));
            let stored = risk_platform::store::load_case(&db.db, case).await.unwrap().unwrap();
            assert_eq!(stored.resolution, Some(*verdict), "the stored verdict is the winner's");
            let hold = ledger.hold_status(held).await.unwrap().expect("hold");
            let expected = if *verdict == Resolution::ConfirmedFraud { "voided" } else { "posted" };
            assert_eq!(resolved.transfer_action.as_deref(), Some(expected));
            let want = if *verdict == Resolution::ConfirmedFraud { HoldStatus::Voided } else { HoldStatus::Posted };
            assert_eq!(hold, want, "{}: the hold follows the winning verdict", db.backend());
        }
        let report = ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

async fn futures_join<T: Send + 'static>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Beyond `max_in_flight` decisions are shed at once, before deciding: nothing of a shed
/// decision is stored or counted, every accepted one is stored.
#[tokio::test]
async fn decisions_beyond_the_in_flight_limit_are_shed_and_leave_no_trace() {
    for db in storage::testing::all().await {
        let ledger = Ledger::new(&db.db);
        let config = RiskConfig { refresh_secs: 0, graph_history_days: 0, max_in_flight: 2, ..RiskConfig::default() };
        let service =
            Arc::new(RiskService::load(&db.db, &ledger, config, access::Vault::for_tests(&db.db).await).await.unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let service = Arc::clone(&service);
                tokio::spawn(async move {
                    let mut event = risk::RiskEvent::new(
                        format!("shed-{i}"),
                        risk::EventKind::Login,
                        chrono::Utc::now(),
                        "C-shed".to_string(),
                        risk::Channel::Web,
                    );
                    event.device_fingerprint = Some("dev-shed".into());
                    service.decide(&event, None).await
                })
            })
            .collect();
        let (mut accepted, mut shed) = (Vec::new(), 0);
        for t in futures_join(tasks.into_iter()).await {
            match t {
                Ok(view) => accepted.push(view.id),
                Err(RiskPlatformError::Overloaded) => shed += 1,
                Err(e) => panic!("{}: {e}", db.backend()),
            }
        }
        assert!(shed > 0 && !accepted.is_empty(), "{}: {} accepted, {shed} shed", db.backend(), accepted.len());
        for id in &accepted {
            service.decision(*id).await.expect("every accepted decision is stored");
        }
        let stored = risk_platform::store::replay_events(&db.db, 1000).await.unwrap();
        assert_eq!(stored.len(), accepted.len(), "{}: shed decisions leave no row", db.backend());
    }
}
