//! The audit trail (issue 12, part 5), end to end against the real binary on SQLite and
//! PostgreSQL: every change commits with its entry (who, what, which object, request id), reads
//! of personal data and refusals are recorded, a refused change leaves no entry, auditors query
//! and export it, a server killed in the middle of a load leaves no change without its entry,
//! and `digibank audit verify` names an entry edited or deleted behind the server's back.

mod common;

use std::time::Duration;

use common::{database_urls, deposit, gl, open, transfer, Server, BIN};
use serde_json::{json, Value};

async fn audit(server: &Server, query: &str) -> Vec<Value> {
    let (status, page) = server.call("GET", &format!("/v1/audit?{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().clone()
}

async fn key(server: &Server, role: &str) -> String {
    let (status, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": role, "role": role}))).await;
    assert_eq!(status, 201, "{issued}");
    issued["key"].as_str().unwrap().to_string()
}

/// Runs `digibank audit verify` and returns (success, stdout).
async fn audit_verify(url: &str) -> (bool, String) {
    let out = tokio::process::Command::new(BIN)
        .args(["audit", "verify", "--database-url", url])
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("run audit verify");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// Runs SQL on the test database behind the server's back (as someone with database access).
async fn tamper(url: &str, statements: &[&str]) {
    use sqlx::Connection;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await.unwrap();
        for s in statements {
            sqlx::query(s).execute(&mut conn).await.unwrap();
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        for s in statements {
            sqlx::query(s).execute(&mut conn).await.unwrap();
        }
    }
}

#[tokio::test]
async fn changes_reads_and_refusals_are_audited_and_tampering_is_named() {
    for url in database_urls().await {
        let mut server = Server::start(&url, &[]).await;
        let teller = key(&server, "teller").await;
        let auditor = key(&server, "auditor").await;
        let operator = key(&server, "operator").await;

        // A change: its entry names the caller, the action, the new customer and the request.
        let person =
            json!({"kind": "individual", "name": "张三丰", "id_number": "11010519491231002X", "phone": "13812345678"});
        let response = server
            .http
            .post(server.url("/v1/customers"))
            .bearer_auth(&teller)
            .header("x-purpose", "account opening\t")
            .json(&person)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
        let customer: Value = response.json().await.unwrap();
        let id = customer["id"].as_str().unwrap().to_string();
        let entries = audit(&server, &format!("resource={id}")).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        let created = &entries[0];
        assert_eq!(created["action"], "POST /v1/customers");
        assert_eq!(created["outcome"], "committed");
        assert_eq!(created["actor_kind"], "key");
        assert_eq!(created["role"], "teller");
        assert_eq!(created["request_id"], request_id.as_str());
        assert_eq!(created["purpose"], "account opening", "the stated purpose, control characters dropped");
        let teller_id = created["actor"].as_str().unwrap().to_string();

        // A refused change leaves nothing; an allowed one leaves its entry.
        let (status, _) = server.call("PATCH", &format!("/v1/customers/{id}"), Some(json!({"phone": "12345"}))).await;
        assert_eq!(status, 422);
        let (status, _) = server
            .call("PUT", &format!("/v1/customers/{id}/kyc"), Some(json!({"status": "pending", "note": "docs in"})))
            .await;
        assert_eq!(status, 200);
        // A read of personal data is an entry; so is a request refused for lack of permission.
        let (status, _) = server.call_as(Some(&teller), "GET", &format!("/v1/customers/{id}"), None).await;
        assert_eq!(status, 200);
        let (status, _) = server.call_as(Some(&teller), "DELETE", &format!("/v1/customers/{id}"), None).await;
        assert_eq!(status, 403);
        let (status, _) = server.call_as(Some("dbk_not_a_key"), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 401);
        tokio::time::sleep(Duration::from_millis(700)).await; // reads and refusals are queued
        let entries = audit(&server, &format!("resource={id}")).await;
        let seen: Vec<(&str, &str)> =
            entries.iter().map(|e| (e["action"].as_str().unwrap(), e["outcome"].as_str().unwrap())).collect();
        assert_eq!(
            seen,
            vec![
                ("POST /v1/customers", "committed"),
                ("PUT /v1/customers/{id}/kyc", "committed"),
                ("GET /v1/customers/{id}", "read"),
                ("DELETE /v1/customers/{id}", "denied"),
            ],
            "{entries:?}"
        );
        let by_teller = audit(&server, &format!("actor={teller_id}&limit=2")).await;
        assert_eq!(by_teller.len(), 2);
        let next = audit(&server, &format!("actor={teller_id}&after={}", by_teller[1]["id"])).await;
        assert!(next.iter().all(|e| e["actor"] == teller_id.as_str()) && !next.is_empty());
        let anonymous = audit(&server, "actor=anonymous").await;
        assert_eq!(anonymous.last().unwrap()["outcome"], "unauthenticated");

        // Money moves are audited too, with the transfer as the resource.
        let cash = open(&server, gl("cash.vault")).await;
        let account = open(&server, deposit(&id)).await;
        let t = transfer(&cash, &account, 10_000);
        let (status, _) = server.call("POST", "/v1/transfers", Some(t.clone())).await;
        assert_eq!(status, 201);
        let entries = audit(&server, &format!("resource={}", t["id"].as_str().unwrap())).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["action"], "POST /v1/transfers");

        // Who may read the trail: auditors and admins; operators do not audit themselves.
        let (status, body) = server.call_as(Some(&operator), "GET", "/v1/audit", None).await;
        assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("audit_read")));
        let (status, _) = server.call_as(Some(&teller), "GET", "/v1/audit/export", None).await;
        assert_eq!(status, 403);
        let response = server
            .http
            .get(server.url(&format!("/v1/audit/export?resource={id}")))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = response.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("id,at,actor_kind,actor,role,action,resource"), "{csv}");
        assert_eq!(lines.len(), 5, "{csv}");
        let (status, body) = server.call("GET", "/v1/audit?limit=1001", None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("parameter_out_of_range")));

        // The sealer chains everything within seconds; the chain verifies.
        let mut sealed = false;
        for _ in 0..50 {
            let (status, report) = server.call_as(Some(&auditor), "GET", "/v1/audit/verify", None).await;
            assert_eq!(status, 200, "{report}");
            assert_eq!(report["problems"], json!([]), "{report}");
            if report["unsealed"] == 0 {
                sealed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(sealed, "entries are sealed within seconds");
        let entries = audit(&server, &format!("resource={id}")).await;
        assert!(entries.iter().all(|e| e["chain_seq"].is_i64()), "{entries:?}");
        server.kill().await;

        let (ok, out) = audit_verify(&url).await;
        assert!(ok, "{out}");
        assert!(out.contains("OK"), "{out}");

        // Someone with database access drops the guards and edits one entry, deletes another.
        let edited = entries[1]["id"].as_i64().unwrap();
        let deleted = entries[2]["id"].as_i64().unwrap();
        let (drop_guards, edit, delete) = if url.starts_with("sqlite") {
            (
                vec!["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
                format!("UPDATE audit_log SET actor = 'someone-else' WHERE id = {edited}"),
                format!("DELETE FROM audit_log WHERE id = {deleted}"),
            )
        } else {
            (
                vec!["DROP TRIGGER audit_log_append_only ON audit_log"],
                format!("UPDATE audit_log SET actor = 'someone-else' WHERE id = {edited}"),
                format!("DELETE FROM audit_log WHERE id = {deleted}"),
            )
        };
        // The guards hold while they are in place.
        let refused = if url.starts_with("sqlite") {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(&edit).execute(&mut conn).await.is_err()
        } else {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(&edit).execute(&mut conn).await.is_err()
        };
        assert!(refused, "audit_log refuses updates");
        let mut all = drop_guards;
        all.push(&edit);
        all.push(&delete);
        tamper(&url, &all).await;
        let (ok, out) = audit_verify(&url).await;
        assert!(!ok, "{out}");
        assert!(out.contains(&format!("audit entry {edited} ")) && out.contains("edited"), "{out}");
        assert!(out.contains(&format!("audit entry {deleted} ")) && out.contains("deleted"), "{out}");
    }
}

/// A server killed in the middle of a transfer load: every transfer that reached the journal has
/// its entry, and no entry describes a transfer that is not there.
#[tokio::test]
async fn a_killed_server_leaves_no_change_without_its_entry() {
    for url in database_urls().await {
        let mut server = Server::start(&url, &[]).await;
        let cash = open(&server, gl("cash.vault")).await;
        let account = open(&server, deposit("c-audit")).await;
        let mut load = Vec::new();
        for _ in 0..8 {
            let http = server.http.clone();
            let (base, key) = (server.base.clone(), server.key().to_string());
            let (cash, account) = (cash.clone(), account.clone());
            load.push(tokio::spawn(async move {
                for _ in 0..400 {
                    let sent = http
                        .post(format!("{base}/v1/transfers"))
                        .bearer_auth(&key)
                        .json(&transfer(&cash, &account, 100))
                        .send()
                        .await;
                    if sent.is_err() {
                        break;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill().await;
        for task in load {
            let _ = task.await;
        }
        let admin = server.key().to_string();
        let mut server = Server::start(&url, &[]).await;
        server.key = Some(admin);
        let mut in_journal: Vec<String> = Vec::new();
        let mut after = 0;
        loop {
            let path = format!("/v1/accounts/{account}/entries?limit=1000&after={after}");
            let (status, page) = server.call("GET", &path, None).await;
            assert_eq!(status, 200, "{page}");
            in_journal.extend(
                page["entries"].as_array().unwrap().iter().map(|e| e["transfer_id"].as_str().unwrap().to_string()),
            );
            match page["next_after"].as_i64() {
                Some(next) => after = next,
                None => break,
            }
        }
        assert!(!in_journal.is_empty(), "some transfers committed before the kill");
        let mut audited = Vec::new();
        let mut after = 0;
        loop {
            let entries = audit(&server, &format!("action=POST%20/v1/transfers&limit=1000&after={after}")).await;
            let Some(last) = entries.last() else { break };
            after = last["id"].as_i64().unwrap();
            audited.extend(entries.iter().map(|e| e["resource"].as_str().unwrap().to_string()));
        }
        in_journal.sort();
        audited.sort();
        assert_eq!(in_journal, audited, "each committed transfer has exactly one entry");
    }
}
