//! Field encryption of the customer platform on SQLite and PostgreSQL: a database written
//! before encryption is sealed in place (idempotently), a key rotation interrupted half-way
//! resumes after a "restart" (a new vault on the same database) and leaves every record
//! readable under the new key.

use std::sync::Arc;

use access::{MasterKey, Vault};
use customer::{synthetic, Channel, CustomerId, CustomerKind, KycStatus};
use customer_platform::{CustomerStore, NewCustomerRecord, PlatformError};
use sha2::Digest;

fn person(i: usize) -> NewCustomerRecord {
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let facts = synthetic::population(i + 1, 5, as_of).pop().unwrap();
    let (name, id_number, phone) = synthetic::identity(i, &facts);
    NewCustomerRecord {
        id: CustomerId::new(),
        kind: facts.kind,
        name,
        id_document_type: if facts.kind.is_business() { "uscc" } else { "resident_id" },
        id_number,
        phone: Some(phone),
        kyc_status: KycStatus::Verified,
    }
}

const KEY: [u8; 32] = [42; 32];

async fn vault(db: &storage::Database) -> Vault {
    Vault::load(db, Arc::new(MasterKey::from_bytes(&KEY, "test key").unwrap())).await.unwrap()
}

#[tokio::test]
async fn a_clear_database_is_sealed_in_place_once() {
    for db in storage::testing::all().await {
        // Rows as the previous version wrote them: clear values, unkeyed SHA-256, no key version.
        let people: Vec<NewCustomerRecord> = (0..12).map(person).collect();
        for p in &people {
            let hash = sha2::Sha256::digest(format!("{}:{}", p.id_document_type, p.id_number).as_bytes()).to_vec();
            storage::write!(&db.db, |conn| sqlx::query(
                "INSERT INTO customers (id, kind, name, id_document_type, id_number, id_number_hash, phone, kyc_status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'verified', 0)"
            )
            .bind(p.id.to_string())
            .bind(p.kind.as_str())
            .bind(&p.name)
            .bind(p.id_document_type)
            .bind(&p.id_number)
            .bind(hash)
            .bind(&p.phone)
            .execute(conn)
            .await
            .map(|_| ()))
            .unwrap();
        }
        storage::write!(&db.db, |conn| sqlx::query(
            "INSERT INTO customer_history (customer_id, event, from_value, to_value, actor_key_id, actor_role, at) \
             VALUES ($1, 'phone_changed', '+8613900000001', $2, 'k', 'admin', 0)"
        )
        .bind(people[0].id.to_string())
        .bind(&people[0].phone)
        .execute(conn)
        .await
        .map(|_| ()))
        .unwrap();

        let vault = vault(&db.db).await;
        let mut pages = 0;
        let sealed = customer_platform::encryption::encrypt_existing(&db.db, &vault, |_| pages += 1).await.unwrap();
        assert_eq!(sealed, 13, "{}", db.backend());
        assert_eq!(customer_platform::encryption::encrypt_existing(&db.db, &vault, |_| {}).await.unwrap(), 0);

        let rows: Vec<(String, String, Option<String>)> =
            storage::read!(&db.db, |conn| sqlx::query_as("SELECT name, id_number, phone FROM customers")
                .fetch_all(conn)
                .await)
            .unwrap();
        for (name, number, phone) in rows {
            assert!(access::vault::is_ciphertext(&name) && access::vault::is_ciphertext(&number));
            assert!(access::vault::is_ciphertext(phone.as_deref().unwrap()));
        }
        let store = CustomerStore::new(db.db.clone(), vault.clone());
        let p = &people[4];
        let stored = store.customer(&p.id.to_string()).await.unwrap().unwrap();
        assert_eq!((stored.name.as_str(), stored.id_number.as_str()), (p.name.as_str(), p.id_number.as_str()));
        // The blind indexes were written: duplicate documents and phone search work.
        let again = NewCustomerRecord { id: CustomerId::new(), ..p.clone() };
        assert!(
            matches!(store.register(&again).await, Err(PlatformError::CustomerExists(id)) if id == p.id.to_string())
        );
        let by_phone = store.customers_by_phone(p.phone.as_deref().unwrap()).await.unwrap();
        assert_eq!(by_phone.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![p.id.to_string()]);
        let history = store.history(&people[0].id.to_string()).await.unwrap();
        assert_eq!(history[0].from_value.as_deref(), Some("+8613900000001"));
        let _ = (Channel::MobileApp, CustomerKind::Individual);
    }
}

#[tokio::test]
async fn an_interrupted_rotation_resumes_after_a_restart() {
    for db in storage::testing::all().await {
        let first = vault(&db.db).await;
        let store = CustomerStore::new(db.db.clone(), first.clone());
        let mut ids = Vec::new();
        for i in 0..30 {
            ids.push(store.register(&person(i)).await.unwrap().id);
        }
        let tables = customer_platform::encryption::encrypted_tables();
        let version = first.begin_rotation().await.unwrap();
        assert_eq!(version, 2);
        // Reads and writes go on: old ciphertexts open, new ones use v2.
        assert!(store.customer(&ids[0]).await.unwrap().is_some());
        let extra = store.register(&person(30)).await.unwrap();
        assert_eq!(first.rotate_page(&tables[0], version, 10).await.unwrap(), 10);
        assert_eq!(first.rows_to_rotate(tables, version).await.unwrap(), 20);
        assert!(!first.finish_rotation(tables, version).await.unwrap(), "rows remain under v1");
        drop((first, store));

        // "Restart": a new vault on the same database finds the rotation and finishes it.
        let second = vault(&db.db).await;
        assert_eq!(second.pending_rotation().await.unwrap(), Some(2));
        assert_eq!(second.begin_rotation().await.unwrap(), 2, "resumed, not a new key");
        for table in tables {
            while second.rotate_page(table, version, 7).await.unwrap() > 0 {}
        }
        assert!(second.finish_rotation(tables, version).await.unwrap());
        assert_eq!(second.pending_rotation().await.unwrap(), None);
        let old: i64 = storage::read!(&db.db, |conn| sqlx::query_scalar(
            "SELECT COUNT(*) FROM customers WHERE key_version <> 2 OR name NOT LIKE 'enc:k2:%'"
        )
        .fetch_one(conn)
        .await)
        .unwrap();
        assert_eq!(old, 0);
        let store = CustomerStore::new(db.db.clone(), second);
        for id in ids.iter().chain([&extra.id]) {
            assert!(store.customer(id).await.unwrap().is_some(), "{id}");
        }
        let status = store.vault().status().await.unwrap();
        assert!(status.field_keys[0].2.is_some(), "v1 retired: {status:?}");
    }
}
