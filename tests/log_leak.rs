//! No personal data or secret in the server's log: the real binary runs at `debug` (with sqlx
//! statement logging at `trace`, what an operator chasing a problem might set) through a full
//! API walk-through (customers with ID numbers and phones, a search by phone, a risk decision
//! and a list entry with a phone, a loan application, an API key, a staff user with password and
//! TOTP, failed sign-ins), then every line it wrote is searched for the ID numbers, phone
//! numbers, API keys, passwords, TOTP secret and codes, recovery codes and session tokens.
//! Runs on SQLite and PostgreSQL (when `DATABASE_URL` is set).

mod common;

use common::*;
use serde_json::{json, Value};

/// A valid resident ID number (checksum computed).
fn resident_id(i: u32) -> String {
    let body = format!("310104198807{:02}{:03}", 1 + i % 28, 100 + i % 900);
    let body = &body[..17];
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// The current TOTP code of a base32 secret.
fn totp_code(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string()).to_bytes().expect("base32 secret");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes);
    totp.generate(chrono::Utc::now().timestamp() as u64)
}

async fn sign_in(server: &Server, body: Value) -> (u16, Value) {
    server.call_as(None, "POST", "/v1/sessions", Some(body)).await
}

/// Whether `code` (digits) occurs in `line` as a number of its own (not inside a longer number
/// nor as the fraction of a timestamp).
fn has_number(line: &str, code: &str) -> bool {
    line.match_indices(code).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.') && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn a_full_walk_through_logs_no_personal_data_or_secret() {
    for url in database_urls().await {
        let server = Server::start_logged(&url, &[], "debug,sqlx=trace").await;
        let admin = server.key().to_string();
        // Secrets and personal data that must never reach the log.
        let mut secrets: Vec<String> = vec![admin.clone()];
        let mut codes: Vec<String> = Vec::new();

        // Customers with ID numbers and phones; read, listed, searched by phone, changed.
        let mut customers = Vec::new();
        for i in 0..3 {
            let (id_number, phone) = (resident_id(i), format!("1391234{:04}", 5670 + i));
            let body = json!({"kind": "individual", "name": format!("测试{i}"), "id_number": id_number,
                              "phone": format!("+86{phone}")});
            let (status, c) = server.call("POST", "/v1/customers", Some(body)).await;
            assert_eq!(status, 201, "{c}");
            let id = c["id"].as_str().unwrap().to_string();
            secrets.extend([id_number.clone(), phone.clone()]);
            let (status, _) = server.call("GET", &format!("/v1/customers/{id}"), None).await;
            assert_eq!(status, 200);
            let (status, found) = server.call("GET", &format!("/v1/customers?phone=%2B86{phone}"), None).await;
            assert_eq!((status, found["customers"].as_array().map(Vec::len)), (200, Some(1)), "{found}");
            customers.push((id, id_number, phone));
        }
        let new_phone = "13987654321".to_string();
        secrets.push(new_phone.clone());
        let (status, c) =
            server.call("PATCH", &format!("/v1/customers/{}", customers[0].0), Some(json!({"phone": new_phone}))).await;
        assert_eq!(status, 200, "{c}");
        let (status, _) = server.call("GET", &format!("/v1/customers/{}/history", customers[0].0), None).await;
        assert_eq!(status, 200);
        // A refused duplicate and an invalid ID number (errors go to the client, not the log).
        let dup = json!({"kind": "individual", "name": "重复", "id_number": customers[1].1});
        assert_eq!(server.call("POST", "/v1/customers", Some(dup)).await.0, 409);
        let bad_id = format!("{}0", &customers[2].1[..17]);
        let bad_id = if bad_id == customers[2].1 { format!("{}1", &customers[2].1[..17]) } else { bad_id };
        secrets.push(bad_id.clone());
        let bad = json!({"kind": "individual", "name": "坏", "id_number": bad_id, "phone": "+8613900000000"});
        assert_eq!(server.call("POST", "/v1/customers", Some(bad)).await.0, 422);

        // Risk: a decision and a list entry carrying a phone and an ID number.
        let (_, _, phone) = &customers[1];
        let event = json!({"event_id": "e-log-1", "kind": "login", "occurred_at": "2026-11-20T10:00:00Z",
                           "customer_id": customers[1].0, "channel": "mobile", "ip": "10.0.0.9",
                           "phone": format!("+86{phone}"), "id_number": customers[1].1});
        let (status, d) = server.call("POST", "/v1/risk/decisions", Some(event)).await;
        assert_eq!(status, 200, "{d}");
        let listed = "13911112222".to_string();
        secrets.push(listed.clone());
        let entry = json!({"kind": "black", "subject": "phone", "value": listed, "reason": "log leak test"});
        let (status, e) = server.call("POST", "/v1/risk/lists", Some(entry)).await;
        assert_eq!(status, 201, "{e}");
        let (status, _) = server.call("GET", "/v1/risk/lists?subject=phone", None).await;
        assert_eq!(status, 200);
        let (status, e) = server.call("DELETE", &format!("/v1/risk/lists/black/phone/{listed}"), None).await;
        assert!(status == 200 || status == 204, "{status} {e}");

        // Lending: an application with phone and ID number.
        let (id, id_number, phone) = &customers[2];
        let application = json!({"applicant_id": id, "product_code": "instant_consumer", "phone": format!("+86{phone}"),
                                 "id_number": id_number, "ip": "10.0.0.7", "device_fingerprint": "dev-log"});
        let (status, a) = server.call("POST", "/v1/lending/applications", Some(application)).await;
        assert_eq!(status, 201, "{a}");

        // An API key, used.
        let (status, issued) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "log test", "role": "teller"}))).await;
        assert_eq!(status, 201, "{issued}");
        let teller = issued["key"].as_str().unwrap().to_string();
        secrets.push(teller.clone());
        let (status, _) =
            server.call_as(Some(&teller), "GET", &format!("/v1/customers/{}", customers[0].0), None).await;
        assert_eq!(status, 200);
        let (status, _) = server.call_as(Some(&teller), "GET", "/v1/audit", None).await;
        assert_eq!(status, 403);
        let (status, _) = server.call_as(Some(&format!("{teller}x")), "GET", "/v1/customers", None).await;
        assert_eq!(status, 401);

        // A staff user: password, enrolment, TOTP sign-in, failed sign-ins, a password change.
        let password = "correct horse battery staple 7";
        secrets.push(password.to_string());
        let body = json!({"username": "leaktest", "role": "auditor", "password": password});
        let (status, user) = server.call("POST", "/v1/users", Some(body)).await;
        assert_eq!(status, 201, "{user}");
        let (status, answer) = sign_in(&server, json!({"username": "leaktest", "password": password})).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("enrolment_required")), "{answer}");
        let secret = answer["enrolment"]["secret"].as_str().unwrap().to_string();
        secrets.push(secret.clone());
        for c in answer["enrolment"]["recovery_codes"].as_array().unwrap() {
            secrets.push(c.as_str().unwrap().to_string());
        }
        let code = totp_code(&secret);
        codes.push(code.clone());
        let (status, answer) =
            sign_in(&server, json!({"username": "leaktest", "password": password, "totp": code})).await;
        assert_eq!(status, 201, "{answer}");
        let token = answer["session"]["token"].as_str().unwrap().to_string();
        secrets.push(token.clone());
        let wrong_password = "not the password at all";
        secrets.push(wrong_password.to_string());
        let (status, _) =
            sign_in(&server, json!({"username": "leaktest", "password": wrong_password, "totp": totp_code(&secret)}))
                .await;
        assert_eq!(status, 401);
        let wrong_code = (0..10).map(|d| format!("{d}{d}{d}{d}{d}{d}")).find(|c| *c != code).unwrap();
        codes.push(wrong_code.clone());
        let (status, _) =
            sign_in(&server, json!({"username": "leaktest", "password": password, "totp": wrong_code})).await;
        assert_eq!(status, 401);
        let (status, _) = server.call_as(Some(&token), "GET", "/v1/sessions", None).await;
        assert_eq!(status, 200);
        let (status, _) = server.call_as(Some(&token), "GET", "/v1/audit/export", None).await;
        assert_eq!(status, 200);
        let new_password = "another long passphrase 8";
        secrets.push(new_password.to_string());
        let change = json!({"current_password": password, "new_password": new_password});
        let (status, body) = server.call_as(Some(&token), "POST", "/v1/sessions/current/password", Some(change)).await;
        assert!(status == 200 || status == 204, "{status} {body}");

        // Let the sealer, the alert detectors and the decision log write what they write.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let output = server.output();
        assert!(output.iter().any(|l| l.contains("DEBUG")), "the log was captured at debug");
        let mut leaks = Vec::new();
        for line in &output {
            // The one deliberate display: the admin key printed once on stdout at first start.
            if line.starts_with(harness::ADMIN_KEY) {
                continue;
            }
            for s in &secrets {
                if line.contains(s.as_str()) {
                    leaks.push(format!("{s:?} in: {line}"));
                }
            }
            for c in &codes {
                if has_number(line, c) {
                    leaks.push(format!("TOTP code {c} in: {line}"));
                }
            }
            if line.contains("dbk_") || line.contains("dbs_") {
                leaks.push(format!("a credential prefix in: {line}"));
            }
        }
        assert!(leaks.is_empty(), "{} leaks in {} log lines:\n{}", leaks.len(), output.len(), leaks.join("\n"));
    }
}
