//! Property tests: random sequences of transfers, holds, posts and voids keep total debits equal
//! to total credits per currency, never take a constrained account past its limit, and leave a
//! journal that verifies. Run on the real SQLite store (and PostgreSQL when configured).

use std::collections::HashMap;
use std::sync::Arc;

use ledger::*;
use money::Currency;
use proptest::prelude::*;
use storage::testing;

#[derive(Debug, Clone)]
enum Op {
    Transfer { from: usize, to: usize, amount: i64, pending: bool, linked: bool },
    Post { hold: usize, amount: Option<i64> },
    Void { hold: usize },
    Retry { index: usize },
    Advance { secs: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..6usize, 0..6usize, -5i64..4_000, any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(from, to, amount, pending, linked)| Op::Transfer { from, to, amount, pending, linked }),
        2 => (0..40usize, prop::option::of(1i64..4_000)).prop_map(|(hold, amount)| Op::Post { hold, amount }),
        1 => (0..40usize).prop_map(|hold| Op::Void { hold }),
        1 => (0..60usize).prop_map(|index| Op::Retry { index }),
        1 => (1i64..120).prop_map(|secs| Op::Advance { secs }),
    ]
}

async fn run(db: testing::TestDb, ops: Vec<Op>, batch_size: usize) -> Result<(), TestCaseError> {
    let clock = Arc::new(ManualClock::at_micros(1_700_000_000_000_000));
    let ledger = Ledger::with_clock(&db.db, clock.clone());
    let mut accounts = Vec::new();
    // Two GL accounts without limits, four deposit accounts that may not go negative (one with
    // an overdraft), in two currencies to check conservation per currency.
    for i in 0..6 {
        let currency = if i % 3 == 2 { Currency::USD } else { Currency::CNY };
        let constrained = i >= 2;
        let request = NewAccount {
            id: None,
            currency,
            kind: if constrained { AccountKind::Liability } else { AccountKind::Asset },
            owner_type: if constrained { OwnerType::Customer } else { OwnerType::Bank },
            owner_id: constrained.then(|| format!("C{i}")),
            code: None,
            name: None,
            debits_must_not_exceed_credits: constrained,
            credits_must_not_exceed_debits: false,
            overdraft_limit: if i == 3 { 500 } else { 0 },
        };
        accounts.push(ledger.open_account(request).await.unwrap());
    }
    let mut holds: Vec<TransferId> = Vec::new();
    let mut sent: Vec<TransferRequest> = Vec::new();
    let mut batch: Vec<TransferRequest> = Vec::new();
    for op in ops {
        let request = match op {
            Op::Transfer { from, to, amount, pending, linked } => {
                let a = &accounts[from];
                let mut r = TransferRequest::posted(TransferId::new(), a.id, accounts[to].id, amount, a.currency);
                if pending {
                    r.kind = TransferKind::Pending;
                    r.timeout_secs = if amount % 3 == 0 { 60 } else { 0 };
                    holds.push(r.id);
                }
                r.linked = linked;
                Some(r)
            }
            Op::Post { hold, amount } => holds.get(hold).map(|h| TransferRequest::post(TransferId::new(), *h, amount)),
            Op::Void { hold } => holds.get(hold).map(|h| TransferRequest::void(TransferId::new(), *h)),
            Op::Retry { index } => sent.get(index).cloned(),
            Op::Advance { secs } => {
                clock.advance_secs(secs);
                ledger.expire_due().await.unwrap();
                ledger.store().catch_up_index().await.unwrap();
                None
            }
        };
        if let Some(r) = request {
            sent.push(r.clone());
            batch.push(r);
        }
        if batch.len() >= batch_size {
            ledger.submit_batch(&batch).await.unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        ledger.submit_batch(&batch).await.unwrap();
    }

    let mut totals: HashMap<Currency, (i128, i128, i128, i128)> = HashMap::new();
    for a in &accounts {
        let a = ledger.account(a.id).await.unwrap();
        let b = a.balances;
        prop_assert!(b.debits_pending >= 0 && b.credits_pending >= 0);
        if a.debits_must_not_exceed_credits {
            prop_assert!(
                b.debits_posted as i128 + b.debits_pending as i128
                    <= b.credits_posted as i128 + a.overdraft_limit as i128,
                "account {} past its limit: {:?}",
                a.id,
                b
            );
        }
        let t = totals.entry(a.currency).or_default();
        t.0 += b.debits_posted as i128;
        t.1 += b.credits_posted as i128;
        t.2 += b.debits_pending as i128;
        t.3 += b.credits_pending as i128;
    }
    for (currency, (dp, cp, dpend, cpend)) in totals {
        prop_assert_eq!(dp, cp, "posted debits != credits in {}", currency);
        prop_assert_eq!(dpend, cpend, "pending debits != credits in {}", currency);
    }
    let report = ledger.verify(|_, _| {}).await.unwrap();
    prop_assert!(report.is_ok(), "{:?}", report.problems);

    // Each statement, read in small pages across index chunks and the unindexed tail, is
    // exactly the journal filtered by that account.
    let journal = ledger.store().journal_page(0, 100_000).await.unwrap();
    for a in &accounts {
        let expected: Vec<i64> = journal
            .iter()
            .filter(|t| t.debit_account_id == a.id || t.credit_account_id == a.id)
            .map(|t| t.seq)
            .collect();
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = ledger.entries(a.id, after, 3).await.unwrap();
            seen.extend(page.iter().map(|e| e.seq));
            match page.last() {
                Some(e) if page.len() == 3 => after = e.seq,
                _ => break,
            }
        }
        prop_assert_eq!(seen, expected, "statement of {}", a.id);
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_conserve_money_sqlite(
        ops in prop::collection::vec(op(), 1..80),
        batch_size in 1usize..12,
    ) {
        let rt = runtime();
        rt.block_on(async {
            // Seed every account with money first so transfers succeed often enough to matter.
            let mut seeded = vec![
                Op::Transfer { from: 0, to: 2, amount: 3_000, pending: false, linked: false },
                Op::Transfer { from: 0, to: 3, amount: 3_000, pending: false, linked: false },
                Op::Transfer { from: 1, to: 5, amount: 3_000, pending: false, linked: false },
                Op::Transfer { from: 0, to: 4, amount: 3_000, pending: false, linked: false },
            ];
            seeded.extend(ops);
            run(testing::sqlite().await, seeded, batch_size).await
        })?;
    }

    #[test]
    fn random_operations_conserve_money_postgres(
        ops in prop::collection::vec(op(), 1..60),
        batch_size in 1usize..12,
    ) {
        let rt = runtime();
        rt.block_on(async {
            match testing::postgres().await {
                Some(db) => run(db, ops, batch_size).await,
                None => Ok(()),
            }
        })?;
    }
}
