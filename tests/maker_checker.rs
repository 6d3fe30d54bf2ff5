//! Maker-checker (four eyes), end to end against the real binary on SQLite and PostgreSQL: a
//! sensitive request is held as a pending approval (202, nothing changed), its maker cannot
//! approve it, a second identity without the permission cannot either, one with it approves and
//! the request runs as its maker; rejections and expiry; each step in the audit trail.

mod common;

use std::time::Duration;

use common::{assert_error, database_urls, Server};
use serde_json::{json, Value};

async fn key(server: &Server, as_key: &str, role: &str) -> String {
    let (status, issued) =
        server.call_as(Some(as_key), "POST", "/v1/api-keys", Some(json!({"name": role, "role": role}))).await;
    assert_eq!(status, 201, "{issued}");
    issued["key"].as_str().unwrap().to_string()
}

async fn audit(server: &Server, query: &str) -> Vec<Value> {
    let (status, page) = server.call("GET", &format!("/v1/audit?{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().clone()
}

async fn active_version(server: &Server) -> Value {
    let (status, sets) = server.call("GET", "/v1/risk/rule-sets", None).await;
    assert_eq!(status, 200, "{sets}");
    sets["active_version"].clone()
}

async fn rule_set(server: &Server) -> u64 {
    let rules = json!({"rules": [{"id": "big", "condition": {"type": "expression",
        "source": "event_kind == \"transfer\" and event_amount >= 10000"}, "action": "reject",
        "reason_code": "BIG", "explanation": "big"}]});
    let (status, created) = server.call("POST", "/v1/risk/rule-sets", Some(rules)).await;
    assert_eq!(status, 201, "{created}");
    created["rule_set"]["version"].as_u64().unwrap()
}

/// The maker asks; the request is held with its reason.
async fn request_activation(server: &Server, maker: &str, version: u64) -> String {
    let response = server
        .http
        .post(server.url(&format!("/v1/risk/rule-sets/{version}/activate")))
        .bearer_auth(maker)
        .header("x-approval-reason", "quarterly rule review")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let held: Value = response.json().await.unwrap();
    let approval = &held["approval"];
    assert_eq!(approval["status"], "pending", "{held}");
    assert_eq!(approval["route"], "/v1/risk/rule-sets/{version}/activate");
    assert_eq!(approval["permission"], "risk_admin");
    assert_eq!(approval["reason"], "quarterly rule review");
    assert_eq!(approval["maker"]["kind"], "key");
    approval["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn sensitive_requests_wait_for_a_second_person() {
    for url in database_urls().await {
        let server = Server::start(&url, &["--four-eyes", "on"]).await;
        let admin = server.key().to_string();
        // Two people with risk_admin (operators), one without it (a teller). Operator keys are
        // not admin keys, so issuing them is not held.
        let maker = key(&server, &admin, "operator").await;
        let checker = key(&server, &admin, "operator").await;
        let teller = key(&server, &admin, "teller").await;
        let version = rule_set(&server).await;

        // Held: 202, nothing changed yet.
        let id = request_activation(&server, &maker, version).await;
        assert_eq!(active_version(&server).await, Value::Null);
        let (status, pending) = server.call_as(Some(&checker), "GET", "/v1/approvals?status=pending", None).await;
        assert_eq!(status, 200, "{pending}");
        assert_eq!(pending["approvals"].as_array().unwrap().len(), 1, "{pending}");

        // The maker cannot approve; a caller without the permission cannot; a teller cannot
        // even see approvals.
        let approve = format!("/v1/approvals/{id}/approve");
        let (status, body) = server.call_as(Some(&maker), "POST", &approve, None).await;
        assert_error(status, &body, 409, "maker_checker_same_person");
        let auditor = key(&server, &admin, "auditor").await;
        let (status, body) = server.call_as(Some(&auditor), "POST", &approve, None).await;
        assert_eq!((status, &body["error"]["details"]["permission"]), (403, &json!("risk_admin")), "{body}");
        let (status, body) = server.call_as(Some(&teller), "GET", &format!("/v1/approvals/{id}"), None).await;
        assert_eq!((status, &body["error"]["details"]["permission"]), (403, &json!("approvals_read")), "{body}");
        assert_eq!(active_version(&server).await, Value::Null);

        // A second person approves: the activation runs as the maker.
        let (status, body) = server.call_as(Some(&checker), "POST", &approve, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["approval"]["status"], "approved", "{body}");
        assert_eq!(body["approval"]["result"]["status"], 200, "{body}");
        assert_eq!(active_version(&server).await, json!(version));
        let (status, body) = server.call_as(Some(&checker), "POST", &approve, None).await;
        assert_error(status, &body, 409, "approval_already_decided");

        // The trail: requested (maker), approved and result (checker) under the approval id;
        // the activation itself under the rule set's version, naming the maker, approval and checker.
        let steps = audit(&server, &format!("resource={id}")).await;
        let maker_id = maker.split('_').nth(1).unwrap();
        let checker_id = checker.split('_').nth(1).unwrap();
        let uuid = |s: &str| uuid::Uuid::parse_str(s).unwrap().to_string();
        assert!(
            steps.iter().any(|e| e["actor"] == uuid(maker_id)
                && e["action"] == "POST /v1/risk/rule-sets/{version}/activate [approval requested]"),
            "{steps:?}"
        );
        assert!(
            steps.iter().any(|e| e["actor"] == uuid(checker_id) && e["action"] == "POST /v1/approvals/{id}/approve"),
            "{steps:?}"
        );
        let executed = audit(&server, &format!("resource={version}")).await;
        assert!(
            executed.iter().any(|e| e["actor"] == uuid(maker_id)
                && e["action"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("(approval {id}, checker key {}", uuid(checker_id)))),
            "{executed:?}"
        );

        // Rejected: nothing runs, the decision is final; the maker may withdraw their own.
        let v2 = rule_set(&server).await;
        let id = request_activation(&server, &maker, v2).await;
        let reject = format!("/v1/approvals/{id}/reject");
        let (status, body) =
            server.call_as(Some(&checker), "POST", &reject, Some(json!({"note": "not this quarter"}))).await;
        assert_eq!((status, &body["approval"]["status"]), (200, &json!("rejected")), "{body}");
        assert_eq!(body["approval"]["note"], "not this quarter");
        let (status, body) = server.call_as(Some(&checker), "POST", &format!("/v1/approvals/{id}/approve"), None).await;
        assert_error(status, &body, 409, "approval_already_decided");
        assert_eq!(active_version(&server).await, json!(version));
        let steps = audit(&server, &format!("resource={id}")).await;
        assert!(steps.iter().any(|e| e["action"] == "POST /v1/approvals/{id}/reject"), "{steps:?}");
        let id = request_activation(&server, &maker, v2).await;
        let (status, body) =
            server.call_as(Some(&maker), "POST", &format!("/v1/approvals/{id}/reject"), Some(json!({}))).await;
        assert_eq!((status, &body["approval"]["status"]), (200, &json!("rejected")), "{body}");

        // Admin keys are held; other keys are not. A key the maker made is the maker: the
        // operators' keys were made by the admin, so they cannot approve the admin's request.
        let (status, held) =
            server.call_as(Some(&admin), "POST", "/v1/api-keys", Some(json!({"name": "a2", "role": "admin"}))).await;
        assert_eq!(status, 202, "{held}");
        let key_approval = held["approval"]["id"].as_str().unwrap().to_string();
        let (status, body) =
            server.call_as(Some(&maker), "POST", &format!("/v1/approvals/{key_approval}/approve"), None).await;
        assert_error(status, &body, 409, "maker_checker_same_person");
        let v3 = rule_set(&server).await;
        let id = request_activation(&server, &admin, v3).await;
        let (status, body) = server.call_as(Some(&checker), "POST", &format!("/v1/approvals/{id}/approve"), None).await;
        assert_error(status, &body, 409, "maker_checker_same_person");
    }
}

#[tokio::test]
async fn pending_approvals_expire() {
    for url in database_urls().await {
        let server = Server::start(&url, &["--four-eyes", "on", "--approval-expiry-secs", "1"]).await;
        let admin = server.key().to_string();
        let maker = key(&server, &admin, "operator").await;
        let checker = key(&server, &admin, "operator").await;
        let version = rule_set(&server).await;
        let id = request_activation(&server, &maker, version).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (status, body) = server.call_as(Some(&checker), "GET", &format!("/v1/approvals/{id}"), None).await;
        assert_eq!((status, &body["approval"]["status"]), (200, &json!("expired")), "{body}");
        let (status, body) = server.call_as(Some(&checker), "POST", &format!("/v1/approvals/{id}/approve"), None).await;
        assert_error(status, &body, 409, "approval_expired");
        assert_eq!(active_version(&server).await, Value::Null);
        let (_, page) = server.call_as(Some(&checker), "GET", "/v1/approvals?status=expired", None).await;
        assert_eq!(page["approvals"][0]["id"], json!(id), "{page}");
        let (_, page) = server.call_as(Some(&checker), "GET", "/v1/approvals?status=pending", None).await;
        assert_eq!(page["approvals"].as_array().unwrap().len(), 0, "{page}");
        // The expiry is stored with its entry.
        let steps = audit(&server, &format!("resource={id}")).await;
        assert!(steps.iter().any(|e| e["action"] == "POST /v1/approvals/{id}/approve"), "{steps:?}");
    }
}

#[tokio::test]
async fn four_eyes_off_runs_sensitive_requests_at_once() {
    for url in database_urls().await {
        let server = Server::start(&url, &["--four-eyes", "off"]).await;
        let version = rule_set(&server).await;
        let (status, body) = server.call("POST", &format!("/v1/risk/rule-sets/{version}/activate"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(active_version(&server).await, json!(version));
    }
}
