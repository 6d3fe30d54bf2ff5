//! The platform against real databases: SQLite always, PostgreSQL when DATABASE_URL is set.

use chrono::NaiveDate;
use customer::{synthetic, Profile, SegmentDefinition, SegmentEngine, TagRegistry};
use customer::{CustomerStatus, KycStatus};
use customer_platform::recompute::enum_text;
use customer_platform::{churn, recompute, CustomerStore, Mode, PlatformError};

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recomputation_matches_direct_evaluation_and_stays_incremental() {
    for db in storage::testing::all().await {
        let store = CustomerStore::new(db.db.clone(), access::Vault::for_tests(&db.db).await);
        let tags = TagRegistry::with_builtins().unwrap();
        let population = synthetic::population(1_200, 11, as_of());
        assert_eq!(store.upsert_facts(&population).await.unwrap(), 1_200);
        assert_eq!(store.upsert_facts(&population).await.unwrap(), 0, "unchanged facts are not dirty");
        let segment = SegmentDefinition {
            id: "wealthy_payroll".into(),
            name: "Wealthy payroll customers".into(),
            rule: "payroll_customer and aum_ge_500k".into(),
        };
        store.put_segment(&segment).await.unwrap();
        let training = churn::train(3_000, 1, as_of()).unwrap();
        store.put_model("churn", &training.artefact.to_json().unwrap()).await.unwrap();

        let report = recompute(&store, &tags, Mode::Incremental, |_, _| {}).await.unwrap();
        assert_eq!(report.mode, Mode::Full, "the first run is always full ({})", db.backend());
        assert_eq!(report.customers, 1_200);

        // Bitmap membership equals evaluating the rules directly.
        let mut engine = SegmentEngine::new(&tags);
        engine.add(segment.clone()).unwrap();
        let profiles: Vec<Profile> = population.iter().map(Profile::compute).collect();
        for tag in ["payroll_customer", "dormant_90d", "aum_ge_500k"] {
            let direct = profiles.iter().filter(|p| tags.evaluate(p).iter().any(|t| t.tag_id == tag)).count();
            assert_eq!(store.members(&format!("tag:{tag}")).await.unwrap().len() as usize, direct, "{tag}");
        }
        let direct_segment =
            profiles.iter().filter(|p| !engine.memberships(&tags.evaluate(p)).is_empty()).count() as u64;
        let counts = store.membership_counts("segment:").await.unwrap();
        assert_eq!(counts.get("segment:wealthy_payroll").copied().unwrap_or(0), direct_segment);
        let tiers = store.membership_counts("tier:").await.unwrap();
        assert_eq!(tiers.values().sum::<u64>(), 1_200);

        // One customer changes: only they are recomputed, and their bits move.
        let mut changed = population[5].clone();
        changed.tx_30d = Default::default();
        changed.tx_90d = Default::default();
        changed.last_transaction_on = Some(as_of() - chrono::Duration::days(120));
        assert_eq!(store.upsert_facts(std::slice::from_ref(&changed)).await.unwrap(), 1);
        let report = recompute(&store, &tags, Mode::Incremental, |_, _| {}).await.unwrap();
        assert_eq!((report.mode, report.customers), (Mode::Incremental, 1));
        let id = changed.customer_id.to_string();
        let result = store.result(&id).await.unwrap().unwrap();
        let expected = Profile::compute(&changed);
        assert_eq!(result.lifecycle, expected.lifecycle.stage.as_str());
        let ordinal = store.facts(&id).await.unwrap().unwrap().ordinal;
        for tag in tags.evaluate(&expected) {
            assert!(store.members(&format!("tag:{}", tag.tag_id)).await.unwrap().contains(ordinal));
        }
        let stage = store.members(&format!("lifecycle:{}", result.lifecycle)).await.unwrap();
        assert!(stage.contains(ordinal));
        assert_eq!(store.membership_counts("tier:").await.unwrap().values().sum::<u64>(), 1_200);
        assert!(result.churn.is_some());
        assert_eq!(
            result.rfm_segment,
            enum_text(&serde_json::from_value::<customer::RfmSegment>(serde_json::json!(result.rfm_segment)).unwrap())
        );

        // Nothing dirty: an incremental run does nothing.
        let report = recompute(&store, &tags, Mode::Incremental, |_, _| {}).await.unwrap();
        assert_eq!(report.customers, 0);

        // Top churn risk is ordered.
        let top = store.top_churn(10).await.unwrap();
        assert!(top
            .windows(2)
            .all(|w| w[0].churn.as_ref().unwrap().probability >= w[1].churn.as_ref().unwrap().probability));
    }
}

#[tokio::test]
async fn one_customer_per_identity_document_and_per_channel_identity() {
    for db in storage::testing::all().await {
        let store = CustomerStore::new(db.db.clone(), access::Vault::for_tests(&db.db).await);
        let f = &synthetic::population(1, 1, as_of())[0];
        let (name, number, phone) = synthetic::identity(0, f);
        let record = customer_platform::NewCustomerRecord {
            id: customer::CustomerId::new(),
            kind: customer::CustomerKind::Individual,
            name,
            id_document_type: "resident_id",
            id_number: number,
            phone: Some(phone),
            kyc_status: KycStatus::Verified,
        };
        let first = store.register(&record).await.unwrap();
        let again = customer_platform::NewCustomerRecord { id: customer::CustomerId::new(), ..record.clone() };
        match store.register(&again).await {
            Err(PlatformError::CustomerExists(id)) => assert_eq!(id, first.id),
            other => panic!("expected CustomerExists, got {other:?}"),
        }
        store.link_identity(&first.id, customer::Channel::MobileApp, "app-1").await.unwrap();
        store.link_identity(&first.id, customer::Channel::MobileApp, "app-1").await.unwrap();
        assert!(matches!(
            store.link_identity("C-other", customer::Channel::MobileApp, "app-1").await,
            Err(PlatformError::IdentityTaken { .. })
        ));
        assert_eq!(store.identities(&first.id).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_and_merged_customers_leave_memberships_and_recomputation() {
    for db in storage::testing::all().await {
        // Closure asks the ledger and lending for open products, through their ports.
        let ledger = ledger::Ledger::new(&db.db);
        let vault = access::Vault::for_tests(&db.db).await;
        let lending = lending_platform::LendingService::new(db.db.clone(), ledger.clone(), vault.clone());
        let products: Vec<std::sync::Arc<dyn customer_platform::OpenProducts>> =
            vec![std::sync::Arc::new(ledger), std::sync::Arc::new(lending)];
        let store = CustomerStore::new(db.db.clone(), vault).with_open_products(products);
        let tags = TagRegistry::with_builtins().unwrap();
        let population = synthetic::population(200, 3, as_of());
        store.upsert_facts(&population).await.unwrap();
        let mut ids = Vec::new();
        for (i, f) in population.iter().filter(|f| !f.kind.is_business()).take(3).enumerate() {
            let (_, number, _) = synthetic::identity(i, f);
            let record = customer_platform::NewCustomerRecord {
                id: f.customer_id,
                kind: customer::CustomerKind::Individual,
                name: "Same Name".into(),
                id_document_type: "resident_id",
                id_number: number,
                phone: None,
                kyc_status: if i == 2 { KycStatus::Verified } else { KycStatus::NotStarted },
            };
            ids.push(store.register(&record).await.unwrap().id);
        }
        recompute(&store, &tags, Mode::Full, |_, _| {}).await.unwrap();
        let tier_total = || async { store.membership_counts("tier:").await.unwrap().values().sum::<u64>() };
        assert_eq!(tier_total().await, 200);
        let actor = customer_platform::Actor { key_id: "test".into(), role: "admin".into() };

        // An active loan blocks closure (and nothing is written); a paid-off one does not.
        let applicant = ids[0].clone();
        storage::write!(&db.db, |conn| sqlx::query(
            "INSERT INTO lending_loans (id, contract_id, applicant_id, product_code, status, bucket, dpd, \
             customer_account, repayment_account, version, state, created_at, updated_at) \
             VALUES ('L-1', 'K-1', $1, 'instant_consumer', 'active', 'current', 0, 'a', 'b', 1, '{}', 0, 0)"
        )
        .bind(&applicant)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
        .unwrap();
        match store.close_customer(&ids[0], None, &actor).await {
            Err(PlatformError::OpenProducts { accounts: 0, loans, .. }) => assert_eq!(loans, ["L-1"]),
            other => panic!("expected OpenProducts, got {other:?}"),
        }
        assert_eq!(store.customer(&ids[0]).await.unwrap().unwrap().status, CustomerStatus::Active);
        assert_eq!(tier_total().await, 200);
        assert!(store.history(&ids[0]).await.unwrap().is_empty());
        storage::write!(&db.db, |conn| sqlx::query("UPDATE lending_loans SET status = 'paid_off'")
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
        .unwrap();

        let closed = store.close_customer(&ids[0], Some("moved abroad"), &actor).await.unwrap();
        assert_eq!((closed.status.as_str(), closed.closed_at.is_some()), ("closed", true));
        let ordinal = store.facts(&ids[0]).await.unwrap().unwrap().ordinal;
        assert_eq!(tier_total().await, 199, "{}", db.backend());
        assert!(store.result(&ids[0]).await.unwrap().is_none());
        assert!(!store.members("lifecycle:new").await.unwrap().contains(ordinal));

        // Without a reason, records with different documents are not merged; nothing changes.
        assert!(matches!(
            store.merge_customers(&ids[1], &ids[2], None, &actor).await,
            Err(PlatformError::MergeConflict(_))
        ));
        assert_eq!(store.customer(&ids[2]).await.unwrap().unwrap().status, CustomerStatus::Active);
        let outcome = store.merge_customers(&ids[1], &ids[2], Some("duplicate"), &actor).await.unwrap();
        assert_eq!(outcome.survivor.kyc_status, KycStatus::Verified);
        assert_eq!(outcome.absorbed.merged_into.as_deref(), Some(ids[1].as_str()));
        assert_eq!(tier_total().await, 198);
        // The survivor is dirty; the retired records stay out of every later run.
        let report = recompute(&store, &tags, Mode::Incremental, |_, _| {}).await.unwrap();
        assert_eq!((report.mode, report.customers), (Mode::Incremental, 1));
        let report = recompute(&store, &tags, Mode::Full, |_, _| {}).await.unwrap();
        assert_eq!(report.customers, 198);
        assert_eq!(tier_total().await, 198);
        assert!(matches!(
            store.close_customer(&ids[2], None, &actor).await,
            Err(PlatformError::Inactive { merged_into: Some(_), .. })
        ));
        let history = store.history(&ids[1]).await.unwrap();
        let events: Vec<&str> = history.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["merged_in", "kyc_changed"]);
    }
}
