//! Concurrency, crash safety and tamper detection, end to end with the real binary.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn concurrent_transfers_over_http_conserve_money() {
    for db in database_urls().await {
        let server = Arc::new(Server::start(&db, &[]).await);
        let cash = open(&server, gl("gl.cash")).await;
        let mut accounts = Vec::new();
        for i in 0..4 {
            let a = open(&server, deposit(&format!("C{i}"))).await;
            let (status, _) = server.call("POST", "/v1/transfers", Some(transfer(&cash, &a, 10_000))).await;
            assert_eq!(status, 201);
            accounts.push(a);
        }
        let accounts = Arc::new(accounts);
        let mut tasks = Vec::new();
        for task in 0..24usize {
            let server = server.clone();
            let accounts = accounts.clone();
            tasks.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..40usize {
                    let from = &accounts[(task + i) % 4];
                    let to = &accounts[(task * 7 + i + 1) % 4];
                    if from == to {
                        continue;
                    }
                    let body = transfer(from, to, 700 + (i as i64 % 5) * 300);
                    let (status, response) = server.call("POST", "/v1/transfers", Some(body.clone())).await;
                    match status {
                        201 => acknowledged.push(response["id"].as_str().unwrap().to_string()),
                        422 => assert_eq!(response["error"]["code"], "insufficient_funds"),
                        other => panic!("unexpected {other}: {response}"),
                    }
                }
                acknowledged
            }));
        }
        let mut acknowledged = Vec::new();
        for t in tasks {
            acknowledged.extend(t.await.unwrap());
        }
        assert!(acknowledged.len() > 100, "too few transfers succeeded: {}", acknowledged.len());
        let mut total = 0;
        for a in accounts.iter() {
            let balance = posted_balance(&server, a).await;
            assert!(balance >= 0, "overdraft on {a}: {balance}");
            total += balance;
        }
        assert_eq!(total, 40_000, "money was created or destroyed");
        // Every acknowledged transfer is in the journal exactly once.
        let mut seen = Vec::new();
        for a in accounts.iter() {
            let (_, page) = server.call("GET", &format!("/v1/accounts/{a}/entries?limit=1000"), None).await;
            for e in page["entries"].as_array().unwrap() {
                if e["side"] == "debit" {
                    seen.push(e["transfer_id"].as_str().unwrap().to_string());
                }
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a transfer appears twice");
        assert_eq!(unique, acknowledged.iter().collect::<HashSet<_>>());
        let (ok, out) = verify(&db).await;
        assert!(ok, "{out}");
    }
}

#[tokio::test]
async fn sigkill_during_batch_load_loses_nothing_acknowledged() {
    for db in database_urls().await {
        let mut server = Server::start(&db, &[]).await;
        let key = server.key().to_string();
        let cash = open(&server, gl("gl.cash")).await;
        let mut accounts = Vec::new();
        for i in 0..20 {
            accounts.push(open(&server, deposit(&format!("K{i}"))).await);
        }
        let base = server.base.clone();
        // A loader keeps sending batches of 500 deposits and records what was acknowledged.
        let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
        let loader = {
            let accounts = accounts.clone();
            let cash = cash.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for round in 0..10_000 {
                    let transfers: Vec<Value> = (0..500)
                        .map(|i| transfer(&cash, &accounts[(round + i) % accounts.len()], 1 + i as i64))
                        .collect();
                    let ids: Vec<String> = transfers.iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
                    let sent = http
                        .post(format!("{base}/v1/transfers/batch"))
                        .bearer_auth(&key)
                        .json(&json!({"transfers": transfers}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().as_u16() == 200 => {
                            let body: Value = match r.json().await {
                                Ok(b) => b,
                                Err(_) => return,
                            };
                            assert_eq!(body["created"], 500);
                            if ack_tx.send(ids).is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            })
        };
        // Let some batches through, then kill the server in the middle of the load.
        let mut acknowledged: Vec<Vec<String>> = Vec::new();
        while acknowledged.len() < 8 {
            acknowledged.push(ack_rx.recv().await.expect("loader acknowledged batches"));
        }
        server.kill().await;
        let _ = loader.await;
        while let Ok(ids) = ack_rx.try_recv() {
            acknowledged.push(ids);
        }

        // Restart on the same database: everything acknowledged is there, and verify passes.
        // (Thousands of reads as fast as one key can send them: over the default read rate.)
        let server = Server::start(&db, &["--rate-limits", "off"]).await;
        let (status, _) = server.call_as(Some(&key), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200, "the admin key survives a restart");
        let server = Server { key: Some(key.clone()), ..server };
        for batch in &acknowledged {
            for id in batch {
                let (status, t) = server.call("GET", &format!("/v1/transfers/{id}"), None).await;
                assert_eq!(status, 200, "acknowledged transfer {id} lost: {t}");
            }
        }
        let (ok, out) = verify(&db).await;
        assert!(ok, "verify after crash: {out}");
        // No half-applied batch: the journal holds only whole batches of 500, and money is
        // conserved between the bank's cash account and its customers.
        let entries = journal_entries(&server).await;
        assert_eq!(entries % 500, 0, "a batch was partly applied: {entries} entries");
        assert!(entries as usize >= acknowledged.len() * 500);
        let mut customer_total = 0;
        for a in &accounts {
            customer_total += posted_balance(&server, a).await;
        }
        let (_, cash_balance) = server.call("GET", &format!("/v1/accounts/{cash}/balance"), None).await;
        assert_eq!(cash_balance["posted"].as_i64().unwrap(), customer_total);
    }
}

#[tokio::test]
async fn editing_the_database_file_makes_verify_fail_and_name_the_entry() {
    let dir = std::env::temp_dir().join(format!("digibank-tamper-{}", uuid::Uuid::now_v7().simple()));
    let db = format!("sqlite://{}/bank.db", dir.display());
    let out = tokio::process::Command::new(BIN)
        .args(["demo", "--customers", "20", "--months", "1", "--database-url", &db])
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, report) = verify(&db).await;
    assert!(ok, "{report}");
    assert!(report.contains("OK: hash chain intact"));

    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
    let (id,): (uuid::Uuid,) =
        sqlx::query_as("SELECT id FROM transfers WHERE seq = 42").fetch_one(&mut conn).await.unwrap();
    sqlx::query("UPDATE transfers SET amount = amount + 100 WHERE seq = 42").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let (ok, report) = verify(&db).await;
    assert!(!ok, "verify passed on a tampered journal");
    assert!(report.contains(r#""problem":"hash_mismatch","seq":42"#), "{report}");
    assert!(report.contains(&id.to_string()), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Case resolution is one transaction: a server killed while analysts resolve cases leaves
/// every case either resolved with its held transfer posted (false positive) or voided
/// (confirmed fraud), or still open with the funds still held; never one without the other.
#[tokio::test]
async fn sigkill_during_case_resolution_leaves_no_half_resolved_case() {
    for db in database_urls().await {
        let mut server = Server::start(&db, &[]).await;
        let key = server.key().to_string();
        let rule = json!({"id": "review_all", "condition": {"type": "expression", "source": "event_amount > 0"},
                          "action": "review", "reason_code": "REVIEW_ALL", "explanation": "every transfer is reviewed"});
        let (_, set) = server.call("POST", "/v1/risk/rule-sets", Some(json!({"rules": [rule]}))).await;
        let version = set["rule_set"]["version"].as_u64().unwrap();
        assert_eq!(server.call("POST", &format!("/v1/risk/rule-sets/{version}/activate"), None).await.0, 200);
        let cash = open(&server, gl("gl.cash")).await;
        let alice = open(&server, deposit("alice")).await;
        let bob = open(&server, deposit("bob")).await;
        assert_eq!(server.call("POST", "/v1/transfers", Some(transfer(&cash, &alice, 10_000_000))).await.0, 201);
        // Sixty transfers held for review, each with its case.
        let mut held = Vec::new();
        for i in 0..60 {
            let mut t = transfer(&alice, &bob, 1_000 + i);
            t["metadata"] = json!({"channel": "mobile", "customer_id": "C-alice"});
            let (status, body) = server.call("POST", "/v1/transfers", Some(t.clone())).await;
            assert_eq!(status, 202, "{body}");
            held.push((body["decision"]["case_id"].as_u64().unwrap(), t["id"].as_str().unwrap().to_string()));
        }
        // Analysts resolve all of them at once; the server is killed in the middle.
        let base = server.base.clone();
        let resolvers: Vec<_> = held
            .iter()
            .enumerate()
            .map(|(i, (case, _))| {
                let (base, key, case) = (base.clone(), key.clone(), *case);
                let verdict = if i % 2 == 0 { "confirmed_fraud" } else { "false_positive" };
                tokio::spawn(async move {
                    reqwest::Client::new()
                        .post(format!("{base}/v1/risk/cases/{case}/resolve"))
                        .bearer_auth(key)
                        .json(&json!({"resolution": verdict}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        server.kill().await;
        for r in resolvers {
            let _ = r.await;
        }

        // After a restart: each case and its hold agree.
        let server = Server::start(&db, &[]).await;
        let (_, cases) = server.call_as(Some(&key), "GET", "/v1/risk/cases?status=all&limit=1000", None).await;
        let cases = cases["cases"].as_array().unwrap().clone();
        let (mut resolved, mut open) = (0, 0);
        for (case, transfer_id) in &held {
            let c = cases.iter().find(|c| c["id"] == *case).expect("case stored before the kill");
            let held_id = uuid::Uuid::parse_str(transfer_id).unwrap();
            let exists = |kind: &str| {
                let id = uuid::Uuid::new_v5(&held_id, kind.as_bytes());
                let server = &server;
                let key = key.clone();
                async move { server.call_as(Some(&key), "GET", &format!("/v1/transfers/{id}"), None).await.0 == 200 }
            };
            let (posted, voided) = (exists("post_pending").await, exists("void_pending").await);
            match c["resolution"].as_str() {
                Some("false_positive") => assert!(posted && !voided, "case {case}: resolved but not posted"),
                Some("confirmed_fraud") => assert!(voided && !posted, "case {case}: resolved but not voided"),
                None => assert!(!posted && !voided, "case {case}: open but its hold moved"),
                other => panic!("case {case}: resolution {other:?}"),
            }
            if c["resolution"].is_null() {
                open += 1;
            } else {
                resolved += 1;
            }
        }
        assert_eq!(resolved + open, held.len());
        eprintln!(
            "{}: {resolved} cases resolved before the kill, {open} still open",
            db.split(':').next().unwrap_or_default()
        );
        drop(server);
        let (ok, out) = verify(&db).await;
        assert!(ok, "{out}");
    }
}
