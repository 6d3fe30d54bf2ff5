//! Field encryption at rest (issue 12), end to end against the real binary on SQLite and
//! PostgreSQL: after the demo bank is loaded no ID number and no phone number is stored in
//! clear (the raw SQLite file and WAL bytes; every text and bytea column of every PostgreSQL
//! table), the API still shows them to the PII role, phone search works through the blind
//! index, a tampered ciphertext is a 500 `record_integrity_failed` naming the record,
//! `security rotate-key` re-encrypts while the server serves, and a database with encrypted
//! data refuses to start without its key.

mod common;

use std::time::Duration;

use common::{database_urls, Server, BIN};
use serde_json::json;

/// The demo's customers as the PII role sees them: (id, ID number, phone, kind).
async fn demo_people(server: &Server) -> Vec<(String, String, String, String)> {
    let (status, page) = server.call("GET", "/v1/customers?limit=1000", None).await;
    assert_eq!(status, 200, "{page}");
    page["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["id_number"].as_str().unwrap().to_string(),
                c["phone"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The needles: every ID number, and every phone's 11 national digits (so `+86` or not).
fn needles(people: &[(String, String, String, String)], extra: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = people
        .iter()
        .flat_map(|(_, number, phone, _)| [number.clone(), phone.trim_start_matches("+86").to_string()])
        .collect();
    out.extend(extra.iter().map(|s| s.to_string()));
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every needle absent from the SQLite database file and its WAL.
fn assert_sqlite_clean(path: &str, needles: &[String]) {
    for file in [path.to_string(), format!("{path}-wal")] {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        for n in needles {
            assert!(!find(&bytes, n.as_bytes()), "{n} found in clear in {file}");
        }
    }
}

/// Every needle absent from every text-like and bytea column of every table of the schema.
async fn assert_postgres_clean(url: &str, needles: &[String]) {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() ORDER BY table_name, column_name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(columns.iter().any(|(t, _, _)| t == "customers"), "{columns:?}");
    let mut checked = 0;
    for (table, column, kind) in columns {
        let bytes: Vec<Vec<u8>> = match kind.as_str() {
            "bytea" => sqlx::query(&format!("SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.get::<Vec<u8>, _>(0))
                .collect(),
            "text" | "character varying" | "json" | "jsonb" => {
                sqlx::query(&format!("SELECT \"{column}\"::text FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.get::<String, _>(0).into_bytes())
                    .collect()
            }
            _ => continue,
        };
        for value in &bytes {
            for n in needles {
                assert!(!find(value, n.as_bytes()), "{n} found in clear in {table}.{column}");
            }
        }
        checked += bytes.len();
    }
    assert!(checked > 1000, "only {checked} values checked");
}

fn sqlite_path(url: &str) -> Option<String> {
    url.strip_prefix("sqlite://").map(str::to_string)
}

/// Runs `digibank <args> --database-url <url>` to completion: (success, stdout + stderr).
fn run(url: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args).args(["--database-url", url]).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run digibank");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn personal_data_is_encrypted_at_rest_and_stays_usable() {
    for url in database_urls().await {
        let mut server = Server::start(&url, &["--demo", "--customers", "40", "--months", "2"]).await;
        let people = demo_people(&server).await;
        assert!(people.len() >= 30, "{people:?}");
        // The demo key was generated next to the SQLite file, readable by its owner only.
        if let Some(path) = sqlite_path(&url) {
            let key = std::path::Path::new(&path).with_file_name("master.key");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
            }
        }

        // Risk events and list entries with an ID number and a phone are pseudonymised.
        let (status, _) = server
            .call(
                "POST",
                "/v1/risk/lists",
                Some(json!({"kind": "watch", "subject": "phone", "value": "+8613700000077", "reason": "test"})),
            )
            .await;
        assert_eq!(status, 201);
        let (_, lists) = server.call("GET", "/v1/risk/lists?subject=phone", None).await;
        assert_eq!(lists["entries"][0]["value"], "+8613700000077", "the PII role sees the value: {lists}");
        let event = json!({"event_id": "enc-1", "kind": "account_opening", "occurred_at": "2026-03-01T10:00:00Z",
            "customer_id": "C-enc", "channel": "mobile", "id_number": "110105194912310029", "phone": "+8613700000077"});
        let (status, d) = server.call("POST", "/v1/risk/decisions", Some(event)).await;
        assert_eq!(status, 200, "{d}");
        assert!(d["reasons"].to_string().contains("LIST_WATCH_PHONE"), "the blind index matches: {d}");

        // Search by phone goes through the blind index.
        let (id, number, phone, _) = people.iter().find(|p| p.3 == "individual").unwrap().clone();
        let (status, found) = server.call("GET", &format!("/v1/customers?phone={}", &phone[3..]), None).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["customers"][0]["id"], id.as_str(), "{found}");
        assert_eq!(found["customers"][0]["id_number"], number.as_str());

        // A duplicate document is still found (keyed blind index of the document).
        let (status, dup) = server
            .call("POST", "/v1/customers", Some(json!({"kind": "individual", "name": "重复", "id_number": number})))
            .await;
        assert_eq!(status, 409, "{dup}");
        assert!(dup["error"]["message"].as_str().unwrap().contains(&id), "{dup}");

        let extra = ["13700000077", "110105194912310029"];
        let all = needles(&people, &extra);
        server.kill().await;
        match sqlite_path(&url) {
            Some(path) => assert_sqlite_clean(&path, &all),
            None => assert_postgres_clean(&url, &all).await,
        }
    }
}

#[tokio::test]
async fn tampering_rotation_and_a_missing_key() {
    for url in database_urls().await {
        let first = Server::start(&url, &[]).await;
        let admin = first.key().to_string();
        let mut ids = Vec::new();
        for i in 0..25 {
            let number = resident_id(i);
            let body = json!({"kind": "individual", "name": format!("测试{i}"), "id_number": number,
                              "phone": format!("+86137{:08}", 5000 + i)});
            let (status, c) = first.call("POST", "/v1/customers", Some(body)).await;
            assert_eq!(status, 201, "{c}");
            ids.push(c["id"].as_str().unwrap().to_string());
        }
        let patch = json!({"phone": "+8613712340000", "note": "moved"});
        assert_eq!(first.call("PATCH", &format!("/v1/customers/{}", ids[0]), Some(patch)).await.0, 200);

        // Rotate the data key while the server serves.
        let (ok, out) = run(&url, &["security", "rotate-key"], &[]);
        assert!(ok, "{out}");
        assert!(out.contains("data key v2 is current"), "{out}");
        for id in &ids {
            let (status, c) = first.call("GET", &format!("/v1/customers/{id}"), None).await;
            assert_eq!(status, 200, "{c}");
        }
        let (status, history) = first.call("GET", &format!("/v1/customers/{}/history", ids[0]), None).await;
        assert_eq!(status, 200);
        assert_eq!(history["events"][0]["to"], "+8613712340000", "{history}");
        let (ok, out) = run(&url, &["security", "status"], &[]);
        assert!(ok && out.contains("data key v1: created") && out.contains("retired"), "{out}");
        assert!(out.contains("no rotation in progress"), "{out}");
        // New writes use the new key once the server reloaded it (every 5 s, or at once when it
        // meets a ciphertext of an unknown version).
        tokio::time::sleep(Duration::from_secs(6)).await;
        let (status, _) = first
            .call(
                "POST",
                "/v1/customers",
                Some(json!({"kind": "individual", "name": "新", "id_number": resident_id(99)})),
            )
            .await;
        assert_eq!(status, 201);
        let stored = raw_name(&url, &ids[1]).await;
        assert!(stored.starts_with("enc:k2:"), "{stored}");

        // A tampered ciphertext: 500 record_integrity_failed naming the record, no garbage.
        let tampered = flip(&stored);
        set_raw_name(&url, &ids[1], &tampered).await;
        let (status, body) = first.call("GET", &format!("/v1/customers/{}", ids[1]), None).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "record_integrity_failed", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(&ids[1]), "{body}");
        assert!(!body.to_string().contains("测试1"), "{body}");
        // Moving another record's ciphertext into this column is caught too (other column).
        let phone = raw_column(&url, &ids[2], "phone").await;
        set_raw_name(&url, &ids[1], &phone).await;
        let (status, body) = first.call("GET", &format!("/v1/customers/{}", ids[1]), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (500, Some("record_integrity_failed")), "{body}");
        let (status, _) = first.call("GET", &format!("/v1/customers/{}", ids[2]), None).await;
        assert_eq!(status, 200, "other records are unaffected");
        drop(first);

        // Without its key, a database holding encrypted data refuses to start, naming the setting.
        if let Some(path) = sqlite_path(&url) {
            let key = std::path::Path::new(&path).with_file_name("master.key");
            let moved = key.with_file_name("moved.key");
            std::fs::rename(&key, &moved).unwrap();
            let (ok, out) = run(&url, &["serve", "--addr", "127.0.0.1:0"], &[]);
            assert!(!ok, "{out}");
            assert!(out.contains("DIGIBANK_MASTER_KEY_FILE") && out.contains("--master-key-file"), "{out}");
            // The wrong key is refused as such.
            let (ok, out) =
                run(&url, &["serve", "--addr", "127.0.0.1:0"], &[("DIGIBANK_MASTER_KEY", &"11".repeat(32))]);
            assert!(!ok && out.contains("not the key this database was encrypted with"), "{out}");
            // The key given explicitly works.
            let mut again = Server::start(&url, &["--master-key-file", moved.to_str().unwrap()]).await;
            again.key = Some(admin.clone());
            let (status, _) = again.call("GET", &format!("/v1/customers/{}", ids[3]), None).await;
            assert_eq!(status, 200);
            again.kill().await;
        }
    }
}

/// A valid resident ID number (checksum computed).
fn resident_id(i: u32) -> String {
    let body = format!("110105199001{:02}{:03}", 1 + i % 28, i % 1000);
    let body = &body[..17];
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// One base64 character of the body changed.
fn flip(sealed: &str) -> String {
    let (head, body) = sealed.rsplit_once(':').unwrap();
    let mut chars: Vec<char> = body.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    format!("{head}:{}", chars.into_iter().collect::<String>())
}

async fn raw_column(url: &str, id: &str, column: &str) -> String {
    let db = storage::Database::connect(url).await.unwrap();
    let sql = format!("SELECT {column} FROM customers WHERE id = $1");
    let v: String = storage::read!(&db, |conn| sqlx::query_scalar(&sql).bind(id).fetch_one(conn).await).unwrap();
    db.close().await;
    v
}

async fn raw_name(url: &str, id: &str) -> String {
    raw_column(url, id, "name").await
}

async fn set_raw_name(url: &str, id: &str, value: &str) {
    let db = storage::Database::connect(url).await.unwrap();
    storage::write!(&db, |conn| sqlx::query("UPDATE customers SET name = $1 WHERE id = $2")
        .bind(value)
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ()))
    .unwrap();
    db.close().await;
}
