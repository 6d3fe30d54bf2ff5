//! Ledger behaviour on the real stores: SQLite always, PostgreSQL when DATABASE_URL is set.

use std::sync::Arc;

use ledger::*;
use money::Currency;
use storage::testing;

const CNY: Currency = Currency::CNY;

fn deposit(owner: &str) -> NewAccount {
    NewAccount {
        id: None,
        currency: CNY,
        kind: AccountKind::Liability,
        owner_type: OwnerType::Customer,
        owner_id: Some(owner.to_string()),
        code: Some("deposit.current".into()),
        name: None,
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: false,
        overdraft_limit: 0,
    }
}

fn gl(code: &str, kind: AccountKind) -> NewAccount {
    NewAccount {
        id: None,
        currency: CNY,
        kind,
        owner_type: OwnerType::Bank,
        owner_id: None,
        code: Some(code.into()),
        name: None,
        debits_must_not_exceed_credits: false,
        credits_must_not_exceed_debits: false,
        overdraft_limit: 0,
    }
}

struct Bank {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    cash: AccountId,
    alice: AccountId,
    bob: AccountId,
    _db: testing::TestDb,
}

async fn bank(db: testing::TestDb) -> Bank {
    let clock = Arc::new(ManualClock::at_micros(1_700_000_000_000_000));
    let ledger = Ledger::with_clock(&db.db, clock.clone());
    let cash = ledger.open_account(gl("gl.cash", AccountKind::Asset)).await.unwrap().id;
    let alice = ledger.open_account(deposit("C1")).await.unwrap().id;
    let bob = ledger.open_account(deposit("C2")).await.unwrap().id;
    Bank { ledger, clock, cash, alice, bob, _db: db }
}

async fn fund(b: &Bank, account: AccountId, amount: i64) {
    let out = b.ledger.submit(TransferRequest::posted(TransferId::new(), b.cash, account, amount, CNY)).await.unwrap();
    assert!(matches!(out, TransferOutcome::Created { .. }), "{out:?}");
}

async fn one(b: &Bank, r: TransferRequest) -> TransferOutcome {
    b.ledger.submit_batch(&[r]).await.unwrap().pop().unwrap()
}

fn code(o: &TransferOutcome) -> Option<TransferError> {
    o.error()
}

#[tokio::test]
async fn single_phase_transfers_move_money_and_balance() {
    for db in testing::all().await {
        let b = bank(db).await;
        fund(&b, b.alice, 10_000).await;
        let out = one(&b, TransferRequest::posted(TransferId::new(), b.alice, b.bob, 2_500, CNY)).await;
        let t = out.transfer().unwrap();
        assert_eq!(t.amount, 2_500);
        assert_eq!(t.seq, 2);
        let alice = b.ledger.balance(b.alice, None).await.unwrap();
        assert_eq!((alice.posted, alice.available), (7_500, 7_500));
        assert_eq!(b.ledger.balance(b.bob, None).await.unwrap().posted, 2_500);
        assert_eq!(b.ledger.balance(b.cash, None).await.unwrap().posted, 10_000);
        let report = b.ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.entries, 2);
    }
}

#[tokio::test]
async fn retries_are_idempotent_and_conflicts_are_rejected() {
    for db in testing::all().await {
        let b = bank(db).await;
        fund(&b, b.alice, 10_000).await;
        let id = TransferId::new();
        let request = TransferRequest::posted(id, b.alice, b.bob, 1_000, CNY)
            .with_reference("invoice 7")
            .with_metadata(serde_json::json!({"b": 1, "a": [1, 2]}));
        let first = one(&b, request.clone()).await;
        assert!(matches!(first, TransferOutcome::Created { .. }));
        // Same content, other key order in metadata: the first result comes back, nothing moves.
        let retry = request.clone().with_metadata(serde_json::json!({"a": [1, 2], "b": 1}));
        let second = one(&b, retry).await;
        assert!(matches!(second, TransferOutcome::Replayed { .. }));
        assert_eq!(first.transfer(), second.transfer());
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().posted, 9_000);
        // Same id, different amount.
        let mut changed = request.clone();
        changed.amount = Some(1_001);
        assert_eq!(code(&one(&b, changed).await), Some(TransferError::IdempotencyConflict));
        // Twice in one batch: created once, replayed once.
        let id2 = TransferId::new();
        let r2 = TransferRequest::posted(id2, b.alice, b.bob, 10, CNY);
        let outs = b.ledger.submit_batch(&[r2.clone(), r2]).await.unwrap();
        assert!(matches!(outs[0], TransferOutcome::Created { .. }));
        assert!(matches!(outs[1], TransferOutcome::Replayed { .. }));
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().posted, 8_990);
    }
}

#[tokio::test]
async fn bad_input_is_rejected_and_writes_nothing() {
    for db in testing::all().await {
        let b = bank(db).await;
        fund(&b, b.alice, 1_000).await;
        let usd = b
            .ledger
            .open_account(NewAccount { currency: Currency::USD, ..gl("gl.usd", AccountKind::Asset) })
            .await
            .unwrap()
            .id;
        let head_before = b.ledger.store().head().await.unwrap();
        let t = |d, c, amount| TransferRequest::posted(TransferId::new(), d, c, amount, CNY);
        let cases = vec![
            (t(AccountId::new(), b.bob, 1), TransferError::DebitAccountNotFound),
            (t(b.alice, AccountId::new(), 1), TransferError::CreditAccountNotFound),
            (t(b.alice, b.bob, 0), TransferError::AmountMustBePositive),
            (t(b.alice, b.bob, -5), TransferError::AmountMustBePositive),
            (t(b.alice, b.alice, 5), TransferError::AccountsMustBeDifferent),
            (t(b.alice, b.bob, 1_001), TransferError::InsufficientFunds),
            (t(b.alice, usd, 1), TransferError::CurrencyMismatch),
            (t(b.cash, b.bob, i64::MAX), TransferError::Overflow),
            (t(b.alice, b.bob, 1).with_reference("x".repeat(300)), TransferError::ReferenceTooLong),
            (TransferRequest { timeout_secs: 5, ..t(b.alice, b.bob, 1) }, TransferError::TimeoutNotAllowed),
            (
                TransferRequest { kind: TransferKind::ExpirePending, ..t(b.alice, b.bob, 1) },
                TransferError::KindNotSubmittable,
            ),
            (TransferRequest::post(TransferId::new(), TransferId::new(), None), TransferError::PendingTransferNotFound),
        ];
        for (request, expected) in cases {
            assert_eq!(code(&one(&b, request).await), Some(expected));
        }
        // Overflow needs the credit side near the limit: take cash -> bob max then 1 more.
        assert_eq!(b.ledger.store().head().await.unwrap(), head_before, "failed transfers wrote to the journal");
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().posted, 1_000);

        // Frozen accounts take credits but no debits; closed accounts take nothing.
        b.ledger.set_status(b.alice, AccountStatus::Frozen).await.unwrap();
        assert_eq!(code(&one(&b, t(b.alice, b.bob, 1)).await), Some(TransferError::DebitAccountFrozen));
        assert!(one(&b, t(b.cash, b.alice, 1)).await.transfer().is_some());
        b.ledger.set_status(b.alice, AccountStatus::Open).await.unwrap();
        assert!(matches!(
            b.ledger.set_status(b.alice, AccountStatus::Closed).await,
            Err(LedgerError::NonZeroBalance(_))
        ));
        let empty = b.ledger.open_account(deposit("C9")).await.unwrap().id;
        b.ledger.set_status(empty, AccountStatus::Closed).await.unwrap();
        assert_eq!(code(&one(&b, t(b.cash, empty, 1)).await), Some(TransferError::CreditAccountClosed));
        assert!(matches!(
            b.ledger.set_status(empty, AccountStatus::Open).await,
            Err(LedgerError::InvalidStatusChange { .. })
        ));
        assert!(matches!(b.ledger.submit_batch(&[]).await, Err(LedgerError::EmptyBatch)));
        let too_many = vec![t(b.alice, b.bob, 1); MAX_BATCH + 1];
        assert!(matches!(b.ledger.submit_batch(&too_many).await, Err(LedgerError::BatchTooLarge(..))));
        assert!(b.ledger.verify(|_, _| {}).await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn two_phase_holds_post_void_and_expire() {
    for db in testing::all().await {
        let b = bank(db).await;
        fund(&b, b.alice, 10_000).await;
        let hold = TransferId::new();
        let out = one(&b, TransferRequest::pending(hold, b.alice, b.bob, 6_000, CNY)).await;
        assert_eq!(out.transfer().unwrap().kind, TransferKind::Pending);
        let a = b.ledger.balance(b.alice, None).await.unwrap();
        assert_eq!((a.posted, a.available, a.balances.debits_pending), (10_000, 4_000, 6_000));
        // The hold counts against the limit.
        assert_eq!(
            code(&one(&b, TransferRequest::posted(TransferId::new(), b.alice, b.bob, 4_001, CNY)).await),
            Some(TransferError::InsufficientFunds)
        );
        assert_eq!(
            code(&one(&b, TransferRequest::post(TransferId::new(), hold, Some(6_001))).await),
            Some(TransferError::ExceedsPendingAmount)
        );
        // Partial post: 5,000 moves, 1,000 is released.
        let posted = one(&b, TransferRequest::post(TransferId::new(), hold, Some(5_000))).await;
        assert_eq!(posted.transfer().unwrap().amount, 5_000);
        let a = b.ledger.balance(b.alice, None).await.unwrap();
        assert_eq!((a.posted, a.available, a.balances.debits_pending), (5_000, 5_000, 0));
        assert_eq!(b.ledger.balance(b.bob, None).await.unwrap().posted, 5_000);
        assert_eq!(b.ledger.hold_status(hold).await.unwrap(), Some(HoldStatus::Posted));
        assert_eq!(
            code(&one(&b, TransferRequest::void(TransferId::new(), hold)).await),
            Some(TransferError::PendingTransferAlreadyPosted)
        );

        // Void releases everything.
        let hold2 = TransferId::new();
        one(&b, TransferRequest::pending(hold2, b.alice, b.bob, 1_000, CNY)).await;
        assert!(one(&b, TransferRequest::void(TransferId::new(), hold2)).await.transfer().is_some());
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().available, 5_000);
        assert_eq!(
            code(&one(&b, TransferRequest::post(TransferId::new(), hold2, None)).await),
            Some(TransferError::PendingTransferAlreadyVoided)
        );
        // Posting a transfer that is not pending.
        let plain = TransferId::new();
        one(&b, TransferRequest::posted(plain, b.alice, b.bob, 1, CNY)).await;
        assert_eq!(
            code(&one(&b, TransferRequest::post(TransferId::new(), plain, None)).await),
            Some(TransferError::PendingTransferNotPending)
        );

        // Expiry: a 60 s hold cannot be posted after 61 s, and the sweep releases it.
        let hold3 = TransferId::new();
        one(&b, TransferRequest::pending(hold3, b.alice, b.bob, 2_000, CNY).with_timeout(60)).await;
        assert_eq!(b.ledger.expire_due().await.unwrap(), 0);
        b.clock.advance_secs(61);
        assert_eq!(
            code(&one(&b, TransferRequest::post(TransferId::new(), hold3, None)).await),
            Some(TransferError::PendingTransferExpired)
        );
        assert_eq!(b.ledger.expire_due().await.unwrap(), 1);
        assert_eq!(b.ledger.hold_status(hold3).await.unwrap(), Some(HoldStatus::Expired));
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().available, 4_999);
        // Pending created and posted in the same batch.
        let hold4 = TransferId::new();
        let outs = b
            .ledger
            .submit_batch(&[
                TransferRequest::pending(hold4, b.alice, b.bob, 100, CNY),
                TransferRequest::post(TransferId::new(), hold4, None),
            ])
            .await
            .unwrap();
        assert!(outs.iter().all(|o| o.transfer().is_some()), "{outs:?}");
        assert_eq!(b.ledger.hold_status(hold4).await.unwrap(), Some(HoldStatus::Posted));
        let report = b.ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    }
}

#[tokio::test]
async fn linked_chains_succeed_or_fail_together() {
    for db in testing::all().await {
        let b = bank(db).await;
        fund(&b, b.alice, 1_000).await;
        let ok = TransferRequest::posted(TransferId::new(), b.alice, b.bob, 600, CNY).linked();
        let too_much = TransferRequest::posted(TransferId::new(), b.alice, b.bob, 600, CNY);
        let independent = TransferRequest::posted(TransferId::new(), b.cash, b.bob, 1, CNY);
        let outs = b.ledger.submit_batch(&[ok, too_much, independent]).await.unwrap();
        assert_eq!(code(&outs[0]), Some(TransferError::LinkedEventFailed));
        assert_eq!(code(&outs[1]), Some(TransferError::InsufficientFunds));
        assert!(outs[2].transfer().is_some());
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().posted, 1_000);
        assert_eq!(b.ledger.balance(b.bob, None).await.unwrap().posted, 1);
        // A chain left open at the end of the batch fails entirely.
        let outs = b
            .ledger
            .submit_batch(&[
                TransferRequest::posted(TransferId::new(), b.alice, b.bob, 1, CNY).linked(),
                TransferRequest::posted(TransferId::new(), b.alice, b.bob, 1, CNY).linked(),
            ])
            .await
            .unwrap();
        assert_eq!(code(&outs[0]), Some(TransferError::LinkedEventFailed));
        assert_eq!(code(&outs[1]), Some(TransferError::LinkedEventChainOpen));
        // A good chain commits all its members with consecutive sequence numbers.
        let outs = b
            .ledger
            .submit_batch(&[
                TransferRequest::posted(TransferId::new(), b.alice, b.bob, 100, CNY).linked(),
                TransferRequest::posted(TransferId::new(), b.bob, b.alice, 50, CNY),
            ])
            .await
            .unwrap();
        let seqs: Vec<i64> = outs.iter().map(|o| o.transfer().unwrap().seq).collect();
        assert_eq!(seqs[1], seqs[0] + 1);
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().posted, 950);
    }
}

#[tokio::test]
async fn balance_as_of_and_statement_pages() {
    for db in testing::all().await {
        let b = bank(db).await;
        let t0 = b.ledger.now();
        fund(&b, b.alice, 1_000).await;
        b.clock.advance_secs(3600);
        let t1 = b.ledger.now();
        one(&b, TransferRequest::posted(TransferId::new(), b.alice, b.bob, 300, CNY)).await;
        // Index what exists so far: later reads combine the per-account index and the tail.
        let indexed = b.ledger.store().catch_up_index().await.unwrap();
        assert_eq!(indexed, if b.ledger.store().backend() == "sqlite" { 2 } else { 0 });
        let hold = TransferId::new();
        one(&b, TransferRequest::pending(hold, b.alice, b.bob, 200, CNY)).await;
        b.clock.advance_secs(3600);
        one(&b, TransferRequest::post(TransferId::new(), hold, Some(150))).await;

        assert_eq!(b.ledger.balance(b.alice, Some(t0 - 1)).await.unwrap().posted, 0);
        assert_eq!(b.ledger.balance(b.alice, Some(t0)).await.unwrap().posted, 1_000);
        let at_t1 = b.ledger.balance(b.alice, Some(t1)).await.unwrap();
        assert_eq!((at_t1.posted, at_t1.available), (700, 500));
        let now = b.ledger.balance(b.alice, Some(b.ledger.now())).await.unwrap();
        assert_eq!(now.balances, b.ledger.balance(b.alice, None).await.unwrap().balances);
        assert_eq!(now.posted, 550);

        let page1 = b.ledger.entries(b.alice, 0, 2).await.unwrap();
        assert_eq!(page1.len(), 2);
        assert_eq!(page1[0].side, EntrySide::Credit);
        assert_eq!(page1[1].side, EntrySide::Debit);
        let page2 = b.ledger.entries(b.alice, page1[1].seq, 10).await.unwrap();
        assert_eq!(page2.len(), 2);
        assert!(page2[0].seq > page1[1].seq);
        let all = b.ledger.entries(b.alice, 0, 100).await.unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        // A commit through another connection makes the journal writer forget its in-memory
        // tail, so this build takes the path that re-reads the journal.
        b.ledger.set_status(b.cash, AccountStatus::Frozen).await.unwrap();
        b.ledger.set_status(b.cash, AccountStatus::Open).await.unwrap();
        one(&b, TransferRequest::posted(TransferId::new(), b.cash, b.alice, 1, CNY)).await;
        b.ledger.store().catch_up_index().await.unwrap();
        let all = b.ledger.entries(b.alice, 0, 100).await.unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        b.ledger.store().catch_up_index().await.unwrap();
        assert_eq!(b.ledger.entries(b.alice, 0, 100).await.unwrap(), all);
        assert_eq!(b.ledger.entries(b.bob, 0, 100).await.unwrap().len(), 3);
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().posted, 551);
        assert!(matches!(b.ledger.entries(AccountId::new(), 0, 10).await, Err(LedgerError::AccountNotFound(_))));
    }
}

#[tokio::test]
async fn account_opening_is_idempotent_on_id() {
    for db in testing::all().await {
        let b = bank(db).await;
        let id = AccountId::new();
        let request = NewAccount { id: Some(id), ..deposit("C7") };
        let first = b.ledger.open_account(request.clone()).await.unwrap();
        let again = b.ledger.open_account(request.clone()).await.unwrap();
        assert_eq!(first, again);
        let other = NewAccount { overdraft_limit: 5, ..request };
        assert!(matches!(b.ledger.open_account(other).await, Err(LedgerError::AccountConflict(_))));
        let bad = NewAccount { overdraft_limit: -1, ..deposit("C8") };
        assert!(matches!(b.ledger.open_account(bad).await, Err(LedgerError::InvalidAccount(_))));
        let no_owner = NewAccount { owner_id: None, ..deposit("x") };
        assert!(matches!(b.ledger.open_account(no_owner).await, Err(LedgerError::InvalidAccount(_))));
    }
}

#[tokio::test]
async fn concurrent_single_transfers_conserve_money() {
    for db in testing::all().await {
        let b = Arc::new(bank(db).await);
        let accounts = [b.alice, b.bob];
        for a in accounts {
            fund(&b, a, 5_000).await;
        }
        let mut tasks = Vec::new();
        for task in 0..16 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                let mut created = Vec::new();
                for i in 0..50 {
                    let (d, c) = if (task + i) % 2 == 0 { (b.alice, b.bob) } else { (b.bob, b.alice) };
                    let id = TransferId::new();
                    if let TransferOutcome::Created { transfer } =
                        b.ledger.submit(TransferRequest::posted(id, d, c, 97, CNY)).await.unwrap()
                    {
                        created.push(transfer.id);
                    }
                }
                created
            }));
        }
        let mut created = Vec::new();
        for t in tasks {
            created.extend(t.await.unwrap());
        }
        for id in &created {
            b.ledger.transfer(*id).await.unwrap();
        }
        let alice = b.ledger.balance(b.alice, None).await.unwrap().posted;
        let bob = b.ledger.balance(b.bob, None).await.unwrap().posted;
        assert_eq!(alice + bob, 10_000);
        assert!(alice >= 0 && bob >= 0);
        let report = b.ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.entries as usize, created.len() + 2);
    }
}

#[tokio::test]
async fn tampering_with_an_entry_is_detected_and_named() {
    let db = testing::sqlite().await;
    let url = db.url.clone();
    let b = bank(db).await;
    fund(&b, b.alice, 1_000).await;
    let victim = one(&b, TransferRequest::posted(TransferId::new(), b.alice, b.bob, 100, CNY)).await;
    one(&b, TransferRequest::posted(TransferId::new(), b.alice, b.bob, 100, CNY)).await;
    let victim = victim.transfer().unwrap().clone();
    // Someone edits the amount directly in the database file.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE transfers SET amount = 1 WHERE seq = ?").bind(victim.seq).execute(&mut conn).await.unwrap();
    }
    let report = b.ledger.verify(|_, _| {}).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.problems[0], Problem::HashMismatch { seq: victim.seq, transfer_id: victim.id });
    assert!(report.problems.iter().any(|p| matches!(p, Problem::BalanceMismatch { .. })));
}

#[tokio::test]
async fn verify_on_a_live_ledger_reads_one_snapshot() {
    for db in testing::all().await {
        let b = Arc::new(bank(db).await);
        fund(&b, b.alice, 1_000_000).await;
        let writer = {
            let b = b.clone();
            tokio::spawn(async move {
                for _ in 0..60 {
                    let batch: Vec<TransferRequest> = (0..50)
                        .map(|i| TransferRequest::posted(TransferId::new(), b.alice, b.bob, 1 + i, CNY))
                        .collect();
                    b.ledger.submit_batch(&batch).await.unwrap();
                }
            })
        };
        for _ in 0..10 {
            let report = b.ledger.verify(|_, _| {}).await.unwrap();
            assert!(report.is_ok(), "false alarm while writing: {:?}", report.problems);
        }
        writer.await.unwrap();
        assert!(b.ledger.verify(|_, _| {}).await.unwrap().is_ok());
    }
}

/// Another domain's writes (any table; a customer-platform one here) along with a batch commit with it, see its outcomes, and a row
/// expectation that fails rolls back the transfers too.
#[tokio::test]
async fn writes_along_with_a_batch_commit_or_roll_back_together() {
    use storage::{Arg, Statement};
    let key = |name: &str| {
        Statement::new(
            "INSERT INTO customer_computed_rules (rule_id, version) VALUES ($1, $2)",
            vec![Arg::Text(name.to_string()), Arg::Int(1)],
        )
    };
    for db in testing::all().await {
        let b = bank(db).await;
        fund(&b, b.alice, 10_000).await;
        let created = TransferId::new();
        let refused = TransferRequest::posted(TransferId::new(), b.alice, b.bob, 1_000_000, CNY);
        let along: AlongWithBatch = Box::new(move |outcomes: &[TransferOutcome]| {
            outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o, TransferOutcome::Created { .. }))
                .map(|(i, _)| key(&format!("along-{i}")).expecting(1))
                .collect()
        });
        let outs = b
            .ledger
            .submit_batch_with(vec![TransferRequest::posted(created, b.alice, b.bob, 100, CNY), refused], along)
            .await
            .unwrap();
        assert!(matches!(outs[0], TransferOutcome::Created { .. }));
        assert_eq!(code(&outs[1]), Some(TransferError::InsufficientFunds));
        let names: Vec<(String,)> = storage::read!(&b._db.db, |c| sqlx::query_as(
            "SELECT rule_id FROM customer_computed_rules ORDER BY rule_id"
        )
        .fetch_all(c)
        .await)
        .unwrap();
        assert_eq!(names, vec![("along-0".to_string(),)]);

        // An update that must change one row and changes none: the transfer is not written either.
        let rolled_back = TransferId::new();
        let along: AlongWithBatch = Box::new(|_: &[TransferOutcome]| {
            vec![Statement::new(
                "UPDATE customer_computed_rules SET version = 2 WHERE rule_id = $1",
                vec![Arg::Text("nope".into())],
            )
            .expecting(1)]
        });
        let err = b
            .ledger
            .submit_batch_with(vec![TransferRequest::posted(rolled_back, b.alice, b.bob, 100, CNY)], along)
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::AlongConflict(_)), "{err:?}");
        assert!(matches!(b.ledger.transfer(rolled_back).await, Err(LedgerError::TransferNotFound(_))));
        assert_eq!(b.ledger.balance(b.bob, None).await.unwrap().posted, 100);
        // The writer is still usable and its cached balances are right after the rollback.
        let again = one(&b, TransferRequest::posted(TransferId::new(), b.alice, b.bob, 50, CNY)).await;
        assert!(matches!(again, TransferOutcome::Created { .. }));
        assert_eq!(b.ledger.balance(b.alice, None).await.unwrap().posted, 10_000 - 150);
        let report = b.ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    }
}
