//! Security alerts (issue 12, part 7), end to end against the real binary on SQLite and
//! PostgreSQL: a key reading many customers' personal data and a burst of failed
//! authentications are alerted within seconds (the detectors tick every second here), an
//! auditor sees the alert with its evidence, an admin acknowledges it once, and the alert
//! reaches a webhook signed with HMAC-SHA-256.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{assert_error, database_urls, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::Mutex;

const SECRET: &str = "webhook-shared-secret";

/// Issues a key with `role`: (its id, the key).
async fn key(server: &Server, role: &str) -> (String, String) {
    let (status, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": role, "role": role}))).await;
    assert_eq!(status, 201, "{issued}");
    (issued["id"].as_str().unwrap().to_string(), issued["key"].as_str().unwrap().to_string())
}

/// A valid resident ID number (checksum computed).
fn resident_id(i: u32) -> String {
    let body = format!("110105199002{:02}{:03}", 1 + i % 28, i % 1000);
    let body = &body[..17];
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// Polls the alerts until one with `rule` (and `subject`, when given) appears.
async fn wait_for_alert(server: &Server, auditor: &str, rule: &str, subject: Option<&str>) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, page) = server.call_as(Some(auditor), "GET", "/v1/security/alerts", None).await;
        assert_eq!(status, 200, "{page}");
        if let Some(alert) = page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["rule"] == rule && subject.is_none_or(|s| a["subject"] == s))
        {
            return (alert.clone(), started.elapsed());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no {rule} alert within 30 s: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each delivery's signature header and body.
type Deliveries = Arc<Mutex<Vec<(Option<String>, Bytes)>>>;

/// A webhook receiver on a free port that keeps each delivery.
async fn webhook() -> (String, Deliveries) {
    let received: Deliveries = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let signature = headers.get("x-digibank-signature").map(|v| v.to_str().unwrap_or_default().to_string());
                sink.lock().await.push((signature, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn bulk_reads_and_failed_sign_ins_are_alerted_acknowledged_and_delivered() {
    for url in database_urls().await {
        let (hook, received) = webhook().await;
        let server = Server::start(
            &url,
            &[
                "--alert-bulk-reads",
                "5",
                "--alert-failed-auth",
                "8",
                "--alert-tick-secs",
                "1",
                "--alert-webhook",
                &hook,
                "--alert-webhook-secret",
                SECRET,
            ],
        )
        .await;
        let (teller_id, teller) = key(&server, "teller").await;
        let (_, auditor) = key(&server, "auditor").await;

        // The teller registers eight people, then reads every one of them.
        let mut ids = Vec::new();
        for i in 0..8 {
            let person = json!({"kind": "individual", "name": format!("客户{i}"), "id_number": resident_id(i),
                "phone": format!("1381234{i:04}")});
            let (status, customer) = server.call_as(Some(&teller), "POST", "/v1/customers", Some(person)).await;
            assert_eq!(status, 201, "{customer}");
            ids.push(customer["id"].as_str().unwrap().to_string());
        }
        for id in &ids {
            let (status, _) = server.call_as(Some(&teller), "GET", &format!("/v1/customers/{id}"), None).await;
            assert_eq!(status, 200);
        }
        let (alert, after) = wait_for_alert(&server, &auditor, "bulk_personal_data_read", Some(&teller_id)).await;
        assert!(after < Duration::from_secs(10), "alerted after {after:?}");
        assert_eq!(alert["severity"], "high");
        assert_eq!(alert["status"], "open");
        let evidence: Value = serde_json::from_str(alert["evidence"].as_str().unwrap()).unwrap();
        assert_eq!(evidence["records_read"], 8, "{evidence}");
        assert_eq!(evidence["threshold"], 5);
        let text = alert.to_string();
        for i in 0..8 {
            assert!(!text.contains(&resident_id(i)), "no personal data in an alert: {text}");
        }

        // The pattern goes on; it is alerted once per window.
        for id in &ids {
            server.call_as(Some(&teller), "GET", &format!("/v1/customers/{id}"), None).await;
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let (_, page) = server.call_as(Some(&auditor), "GET", "/v1/security/alerts?status=open", None).await;
        let bulk = page["alerts"].as_array().unwrap().iter().filter(|a| a["rule"] == "bulk_personal_data_read").count();
        assert_eq!(bulk, 1, "{page}");

        // Someone guesses keys: a burst of failed authentications from one address.
        for _ in 0..10 {
            let (status, _) = server.call_as(Some("dbk_guessed-key"), "GET", "/v1/accounts", None).await;
            assert_eq!(status, 401);
        }
        let (burst, after) = wait_for_alert(&server, &auditor, "failed_auth_burst", None).await;
        assert!(after < Duration::from_secs(10), "alerted after {after:?}");
        assert_eq!(burst["subject"], "127.0.0.1", "{burst}");

        // An auditor reads alerts but may not acknowledge them; an admin acknowledges once.
        let id = alert["id"].as_str().unwrap();
        let path = format!("/v1/security/alerts/{id}/acknowledge");
        let (status, body) = server.call_as(Some(&auditor), "POST", &path, Some(json!({"note": "looking"}))).await;
        assert_error(status, &body, 403, "forbidden");
        let (status, acknowledged) =
            server.call("POST", &path, Some(json!({"note": "teller was reconciling a branch list"}))).await;
        assert_eq!(status, 200, "{acknowledged}");
        assert_eq!(acknowledged["status"], "acknowledged");
        assert!(acknowledged["acknowledged_by"].is_string());
        let (status, body) = server.call("POST", &path, Some(json!({}))).await;
        assert_error(status, &body, 409, "alert_already_acknowledged");
        let (status, body) = server.call("GET", "/v1/security/alerts/no-such-alert", None).await;
        assert_error(status, &body, 404, "alert_not_found");
        let (status, body) = server.call("GET", "/v1/security/alerts?status=closed", None).await;
        assert_error(status, &body, 422, "invalid_status");
        let (status, page) = server.call("GET", "/v1/security/alerts?status=acknowledged", None).await;
        assert_eq!(status, 200);
        assert_eq!(page["alerts"].as_array().unwrap().len(), 1, "{page}");

        // The acknowledgement is itself in the audit trail.
        let (status, trail) = server.call("GET", &format!("/v1/audit?resource={id}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(trail["entries"][0]["action"], "POST /v1/security/alerts/{id}/acknowledge", "{trail}");

        // Both alerts reach the webhook, each signed over its exact body.
        let started = Instant::now();
        loop {
            let deliveries = received.lock().await.clone();
            let rules: Vec<String> = deliveries
                .iter()
                .map(|(_, body)| serde_json::from_slice::<Value>(body).unwrap()["rule"].as_str().unwrap().to_string())
                .collect();
            if rules.iter().any(|r| r == "bulk_personal_data_read") && rules.iter().any(|r| r == "failed_auth_burst") {
                for (signature, body) in &deliveries {
                    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                    mac.update(body);
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    assert_eq!(signature.as_deref(), Some(expected.as_str()));
                }
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "webhook deliveries: {rules:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (_, delivered) = server.call("GET", &format!("/v1/security/alerts/{id}"), None).await;
        assert_eq!(delivered["webhook_status"], "delivered", "{delivered}");
    }
}

/// The current TOTP code of a base32 secret.
fn code(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string()).to_bytes().expect("base32 secret");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes);
    totp.generate(chrono::Utc::now().timestamp() as u64)
}

/// Signs a new user in (enrolling the second factor); returns the session token.
async fn signed_in(server: &Server, username: &str, password: &str) -> String {
    let sign_in = |body: Value| async move {
        let response = server.http.post(server.url("/v1/sessions")).json(&body).send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    let (status, answer) = sign_in(json!({"username": username, "password": password})).await;
    assert_eq!(status, 200, "{answer}");
    let secret = answer["enrolment"]["secret"].as_str().unwrap().to_string();
    let (status, answer) = sign_in(json!({"username": username, "password": password, "totp": code(&secret)})).await;
    assert_eq!(status, 201, "{answer}");
    answer["session"]["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_key_used_after_its_owner_was_disabled_and_failed_sign_ins_are_alerted() {
    for url in database_urls().await {
        let server = Server::start(&url, &["--alert-failed-auth", "4", "--alert-tick-secs", "1"]).await;
        let (_, auditor) = key(&server, "auditor").await;

        // A person (a key administrator) issues a key for a branch system, then leaves the bank.
        let (status, created) = server
            .call("POST", "/v1/users", Some(json!({"username": "wang", "display_name": "Wang", "role": "admin"})))
            .await;
        assert_eq!(status, 201, "{created}");
        let user_id = created["user"]["id"].as_str().unwrap().to_string();
        let password = created["initial_password"].as_str().unwrap().to_string();
        let session = signed_in(&server, "wang", &password).await;
        let (status, issued) = server
            .call_as(Some(&session), "POST", "/v1/api-keys", Some(json!({"name": "branch-teller", "role": "teller"})))
            .await;
        assert_eq!(status, 201, "{issued}");
        let (branch_id, branch_key) =
            (issued["id"].as_str().unwrap().to_string(), issued["key"].as_str().unwrap().to_string());
        let (status, _) = server.call_as(Some(&branch_key), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (_, page) = server.call_as(Some(&auditor), "GET", "/v1/security/alerts", None).await;
        assert!(!page.to_string().contains("key_of_disabled_owner"), "no alert while the owner is active: {page}");

        let (status, body) = server.call("POST", &format!("/v1/users/{user_id}/disable"), None).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let person =
            json!({"kind": "individual", "name": "李四", "id_number": resident_id(77), "phone": "13900000077"});
        let (status, body) = server.call_as(Some(&branch_key), "POST", "/v1/customers", Some(person)).await;
        assert_eq!(status, 201, "the key itself still works: the alert is what tells the bank: {body}");
        let (alert, after) = wait_for_alert(&server, &auditor, "key_of_disabled_owner", Some(&branch_id)).await;
        assert!(after < Duration::from_secs(10), "alerted after {after:?}");
        let evidence: Value = serde_json::from_str(alert["evidence"].as_str().unwrap()).unwrap();
        assert_eq!(evidence["owner"], user_id.as_str(), "{evidence}");
        assert_eq!(evidence["recorded_uses"], 1, "only the use after the disabling counts: {evidence}");

        // Failed sign-ins (wrong passwords) are recorded with the address and alerted.
        for _ in 0..6 {
            let response = server
                .http
                .post(server.url("/v1/sessions"))
                .json(&json!({"username": "nobody", "password": "guess-guess-guess"}))
                .send()
                .await
                .unwrap();
            assert!(matches!(response.status().as_u16(), 401 | 429), "{}", response.status());
        }
        // Refusals reach the trail through the recorder's queue: within moments.
        let started = Instant::now();
        let (trail, failed) = loop {
            let (status, trail) = server.call("GET", "/v1/audit?action=POST%20/v1/sessions", None).await;
            assert_eq!(status, 200);
            let failed: Vec<Value> = trail["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["outcome"] == "sign_in_failed")
                .cloned()
                .collect();
            if failed.len() >= 6 || started.elapsed() > Duration::from_secs(10) {
                break (trail, failed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(failed.len(), 6, "{trail}");
        assert_eq!(failed[0]["ip"], "127.0.0.1");
        assert!(!trail.to_string().contains("guess-guess-guess"), "no password in the trail");
        let (burst, _) = wait_for_alert(&server, &auditor, "failed_auth_burst", Some("127.0.0.1")).await;
        let evidence: Value = serde_json::from_str(burst["evidence"].as_str().unwrap()).unwrap();
        assert!(evidence["failures"].as_i64().unwrap() >= 5, "{evidence}");
    }
}
