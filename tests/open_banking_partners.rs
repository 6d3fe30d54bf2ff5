//! Open banking for partners beyond account access: signed webhooks, daily quotas and embedded
//! lending, end to end against the real binary on SQLite and PostgreSQL. A partner subscribes,
//! a receiver of its own gets each consent event signed the Standard Webhooks way (checked with
//! the `webhooks` crate's receiver-side `verify`), after retries when it is down; a delivery
//! that gives up goes to the dead letters, staff replay it; an event written before a crash is
//! delivered after the restart; a partner past its daily quota gets 429 until staff lift it; a
//! lending partner applies for a loan for a consenting customer and follows it to the payout.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::openbank::*;
use common::{assert_error, database_urls, deposit, open, posted_balance, Server};
use oauth2::{AuthorizationCode, PkceCodeChallenge, TokenResponse};
use serde_json::{json, Value};

/// What a receiver got: headers of interest and the body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A partner's webhook endpoint: records every request and answers with `status`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(addr: SocketAddr) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    g.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp").parse().unwrap_or(0),
                        signature: header("webhook-signature"),
                        body: body.to_vec(),
                    });
                    StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Receiver { url, got, status, task }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until a request for an event of `event_type` answered 2xx... or `secs` pass.
    async fn wait_for(&self, event_type: &str, count: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 10 {
            let of_type: Vec<Received> =
                self.received().into_iter().filter(|r| r.json()["type"] == event_type).collect();
            if of_type.len() >= count {
                return of_type;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {count} {event_type} events within {secs} s; got {:?}", self.received())
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn assert_signed(r: &Received, secret: &str) {
    assert!(r.id.starts_with("msg_"), "{r:?}");
    assert_eq!(webhooks::verify(secret, &r.id, r.timestamp, &r.body, &r.signature, now_secs()), Ok(()), "{r:?}");
    assert!(webhooks::verify(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &r.id,
        r.timestamp,
        &r.body,
        &r.signature,
        now_secs()
    )
    .is_err());
}

async fn subscribe(server: &Server, token: &str, url: &str, events: &[&str]) -> (String, String) {
    let body = json!({"url": url, "events": events});
    let (status, created) = partner_call(server, token, "POST", "/open-banking/v1/webhooks", Some(body), false).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{created}");
    (created["id"].as_str().unwrap().to_string(), secret)
}

async fn new_consent(server: &Server, token: &str) -> String {
    let ask = json!({"permissions": ["ReadAccountsBasic", "ReadBalances"]});
    let (status, consent) =
        partner_call(server, token, "POST", "/open-banking/v1/account-access-consents", Some(ask), false).await;
    assert_eq!(status, 201, "{consent}");
    consent["consent_id"].as_str().unwrap().to_string()
}

async fn revoke(server: &Server, token: &str, consent: &str) {
    let path = format!("/open-banking/v1/account-access-consents/{consent}");
    let (status, body) = partner_call(server, token, "DELETE", &path, None, false).await;
    assert_eq!(status, 204, "{body}");
}

async fn deliveries(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let path = format!("/open-banking/v1/webhooks/deliveries{query}");
    let (status, page) = partner_call(server, token, "GET", &path, None, false).await;
    assert_eq!(status, 200, "{page}");
    page["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn partners_get_signed_events_retried_dead_lettered_and_replayed() {
    for url in database_urls().await {
        let dir = harness::temp_dir("webhooks");
        let outbox = dir.join("codes.jsonl");
        let server = Server::start(
            &url,
            &[
                "--code-outbox",
                outbox.to_str().unwrap(),
                "--webhook-retry-base-ms",
                "200",
                "--webhook-max-attempts",
                "3",
            ],
        )
        .await;
        let receiver = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
        let shop = Partner::register(&server, "Shop").await;
        let app = shop.app_token(&server).await;

        // Bad subscriptions are refused in words.
        for (body, needle) in [
            (json!({"url": "ftp://shop.example/hook", "events": ["*"]}), "scheme"),
            (json!({"url": receiver.url, "events": ["Consent Revoked"]}), "lower-case"),
            (json!({"url": receiver.url, "events": []}), "between 1 and"),
        ] {
            let (status, error) =
                partner_call(&server, &app, "POST", "/open-banking/v1/webhooks", Some(body), false).await;
            assert_error(status, &error, 422, "invalid_subscription");
            assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{error}");
        }
        let (subscription, secret) =
            subscribe(&server, &app, &receiver.url, &["consent.authorised", "consent.revoked"]).await;
        let (status, listed) = partner_call(&server, &app, "GET", "/open-banking/v1/webhooks", None, false).await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["subscriptions"][0]["id"], subscription.as_str());
        assert!(listed["subscriptions"][0].get("secret").is_none(), "the secret is shown once: {listed}");

        // The receiver is down twice, then up: the consent.authorised event arrives on the third
        // attempt, signed, with the same webhook-id every time.
        receiver.status.store(503, Ordering::SeqCst);
        let customer_id = customer(&server, 11, "13900000011").await;
        let account = open(&server, deposit(&customer_id)).await;
        let consent = new_consent(&server, &app).await;
        let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
        authorise(&server, &outbox, &shop, &consent, &challenge, ("13900000011", &customer_id), &[&account]).await;
        for _ in 0..100 {
            if receiver.received().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        receiver.status.store(200, Ordering::SeqCst);
        let got = receiver.wait_for("consent.authorised", 3, 20).await;
        assert!(got.iter().all(|r| r.id == got[0].id), "one webhook-id for every attempt: {got:?}");
        for r in &got {
            assert_signed(r, &secret);
        }
        let event = got[2].json();
        assert_eq!(event["data"], json!({"consent_id": consent, "kind": "account_access", "status": "authorised"}));
        assert!(!String::from_utf8_lossy(&got[2].body).contains(&customer_id), "no customer data in events");
        let mut delivered = Vec::new();
        for _ in 0..50 {
            delivered = deliveries(&server, &app, "?status=delivered").await;
            if !delivered.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            (delivered[0]["id"].as_str(), delivered[0]["attempts"].as_i64()),
            (Some(got[0].id.as_str()), Some(3))
        );

        // The partner revokes the consent: consent.revoked, saying who revoked it.
        revoke(&server, &app, &consent).await;
        let revoked = receiver.wait_for("consent.revoked", 1, 20).await;
        assert_eq!(revoked[0].json()["data"]["revoked_by"], "partner");
        assert_signed(&revoked[0], &secret);

        // A receiver that keeps failing: after 3 attempts the delivery is dead. Staff see it
        // (an auditor may not), the receiver recovers, staff replay it: same id, delivered.
        receiver.status.store(500, Ordering::SeqCst);
        let second = new_consent(&server, &app).await;
        revoke(&server, &app, &second).await;
        let mut dead = Vec::new();
        for _ in 0..100 {
            dead = deliveries(&server, &app, "?status=dead").await;
            if !dead.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!((dead[0]["attempts"].as_i64(), dead[0]["last_status"].as_i64()), (Some(3), Some(500)), "{dead:?}");
        let dead_id = dead[0]["id"].as_str().unwrap().to_string();
        let (_, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": "aud", "role": "auditor"}))).await;
        let auditor = issued["key"].as_str().unwrap().to_string();
        let (status, body) = server.call_as(Some(&auditor), "GET", "/v1/webhooks/deliveries?status=dead", None).await;
        assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("webhooks_admin")), "{body}");
        let (status, staff_view) = server.call("GET", "/v1/webhooks/deliveries?status=dead", None).await;
        assert_eq!(status, 200, "{staff_view}");
        assert_eq!(staff_view["deliveries"][0]["id"], dead_id.as_str());
        receiver.status.store(200, Ordering::SeqCst);
        let before = receiver.received().iter().filter(|r| r.id == dead_id).count();
        let (status, replayed) = server.call("POST", &format!("/v1/webhooks/deliveries/{dead_id}/replay"), None).await;
        assert_eq!((status, replayed["status"].as_str()), (200, Some("pending")), "{replayed}");
        let (status, body) = server.call("POST", &format!("/v1/webhooks/deliveries/{dead_id}/replay"), None).await;
        assert_error(status, &body, 409, "not_replayable");
        for _ in 0..100 {
            if receiver.received().iter().filter(|r| r.id == dead_id).count() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last = receiver.received().into_iter().rev().find(|r| r.id == dead_id).expect("the replayed delivery");
        assert_signed(&last, &secret);
        assert_eq!(last.json()["data"]["consent_id"], second.as_str());
        // The replay is in the audit trail.
        let (_, audit) =
            server.call("GET", "/v1/audit?action=POST%20/v1/webhooks/deliveries/%7Bid%7D/replay", None).await;
        let entries = audit["entries"].as_array().unwrap();
        assert!(entries.iter().any(|e| e["resource"] == dead_id.as_str()), "the replay is audited: {audit}");

        // Removing the subscription stops further events.
        let path = format!("/open-banking/v1/webhooks/{subscription}");
        let (status, removed) = partner_call(&server, &app, "DELETE", &path, None, false).await;
        assert_eq!((status, removed["status"].as_str()), (200, Some("removed")), "{removed}");
        let count = receiver.received().len();
        let third = new_consent(&server, &app).await;
        revoke(&server, &app, &third).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(receiver.received().len(), count, "no event after the subscription is removed");
        receiver.task.abort();
    }
}

#[tokio::test]
async fn an_event_written_before_a_crash_is_delivered_after_the_restart() {
    for url in database_urls().await {
        // The receiver's address is reserved, then left unanswered while the server runs.
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = reserved.local_addr().unwrap();
        drop(reserved);
        let mut server = Server::start(&url, &["--webhook-retry-base-ms", "200"]).await;
        let shop = Partner::register(&server, "Shop").await;
        let app = shop.app_token(&server).await;
        let (_, secret) = subscribe(&server, &app, &format!("http://{addr}/hook"), &["*"]).await;
        let consent = new_consent(&server, &app).await;
        revoke(&server, &app, &consent).await;
        // The event is in the outbox with the revocation; nobody answers; the server dies.
        let pending = deliveries(&server, &app, "?status=pending").await;
        assert_eq!(pending.len(), 1, "{pending:?}");
        server.kill().await;

        let receiver = Receiver::start(addr).await;
        let restarted = Server::start(&url, &["--webhook-retry-base-ms", "200"]).await;
        let got = receiver.wait_for("consent.revoked", 1, 60).await;
        assert_eq!(got[0].id, pending[0]["id"].as_str().unwrap());
        assert_signed(&got[0], &secret);
        assert_eq!(got[0].json()["data"]["consent_id"], consent.as_str());
        drop(restarted);
        receiver.task.abort();
    }
}

#[tokio::test]
async fn a_partner_past_its_daily_quota_waits_for_tomorrow_or_staff() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let key = partner_key("quota-1");
        let body = json!({"name": "Busy", "roles": ["account_information"], "redirect_uris": [REDIRECT],
            "jwks": {"keys": [key.public_jwk]}, "environment": "sandbox", "daily_quota": 3});
        let (status, partner) = server.call("POST", "/v1/open-banking/partners", Some(body.clone())).await;
        assert_eq!((status, partner["daily_quota"].as_i64()), (201, Some(3)), "{partner}");
        let busy = Partner { id: partner["id"].as_str().unwrap().to_string(), key };
        let mut bad = body.clone();
        bad["daily_quota"] = json!(0);
        let (status, error) = server.call("POST", "/v1/open-banking/partners", Some(bad)).await;
        assert_error(status, &error, 422, "invalid_partner");
        // Sandbox partners get 10,000 a day unless staff say otherwise.
        let default = Partner::register(&server, "Default").await;
        let (_, seen) = server.call("GET", &format!("/v1/open-banking/partners/{}", default.id), None).await;
        assert_eq!(seen["daily_quota"], 10_000);

        let app = busy.app_token(&server).await;
        for _ in 0..3 {
            let (status, body) = partner_call(&server, &app, "GET", "/open-banking/v1/webhooks", None, false).await;
            assert_eq!(status, 200, "{body}");
        }
        let response = server.http.get(server.url("/open-banking/v1/webhooks")).bearer_auth(&app).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429);
        let retry_after: i64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&retry_after), "until the UTC day ends: {retry_after}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");

        // Staff lift the quota; the next call goes through. Refused calls are metered apart.
        let path = format!("/v1/open-banking/partners/{}/quota", busy.id);
        let (status, changed) = server.call("PUT", &path, Some(json!({"daily_quota": null}))).await;
        assert_eq!((status, changed["daily_quota"].clone()), (200, Value::Null), "{changed}");
        let (status, _) = partner_call(&server, &app, "GET", "/open-banking/v1/webhooks", None, false).await;
        assert_eq!(status, 200);
        let (_, usage) = server.call("GET", &format!("/v1/open-banking/partners/{}/usage", busy.id), None).await;
        let row =
            usage["usage"].as_array().unwrap().iter().find(|r| r["api"] == "GET /open-banking/v1/webhooks").cloned();
        let row = row.unwrap_or_else(|| panic!("{usage}"));
        assert_eq!((row["calls"].as_i64(), row["refused"].as_i64()), (Some(5), Some(1)), "{usage}");
    }
}

/// A lending partner's consent for one customer, authorised, and its consent-bound token.
async fn lending_consent(
    server: &Server,
    outbox: &std::path::Path,
    lender: &Partner,
    app: &str,
    (seq, phone): (u32, &str),
) -> (String, String, String, String) {
    let customer_id = customer(server, seq, phone).await;
    let account = open(server, deposit(&customer_id)).await;
    let ask = json!({"loan": {"product_code": "instant_consumer", "max_amount_minor": 3_000_000, "currency": "CNY"}});
    let (status, consent) =
        partner_call(server, app, "POST", "/open-banking/v1/loan-application-consents", Some(ask), false).await;
    assert_eq!((status, consent["kind"].as_str()), (201, Some("loan_application")), "{consent}");
    let consent_id = consent["consent_id"].as_str().unwrap().to_string();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let redirect = authorise(server, outbox, lender, &consent_id, &challenge, (phone, &customer_id), &[&account]).await;
    let code = query_param(&redirect, "code").expect("a code");
    let http =
        oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap();
    let tokens = lender
        .oauth(server)
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .add_extra_param("client_assertion_type", JWT_BEARER)
        .add_extra_param("client_assertion", lender.assertion(server))
        .request_async(&http)
        .await
        .expect("the code exchanges for tokens");
    (customer_id, account, consent_id, tokens.access_token().secret().clone())
}

/// A call with the customer present (their address in the FAPI header).
async fn present_call(server: &Server, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    partner_call(server, token, method, path, Some(body), true).await
}

#[tokio::test]
async fn a_lending_partner_applies_for_a_consenting_customer_and_follows_the_loan_to_payout() {
    for url in database_urls().await {
        let dir = harness::temp_dir("embedded-lending");
        let outbox = dir.join("codes.jsonl");
        let server =
            Server::start(&url, &["--code-outbox", outbox.to_str().unwrap(), "--webhook-retry-base-ms", "200"]).await;
        let receiver = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
        let lender = Partner::register_as(&server, "Scenario Finance", &["lending"]).await;
        let app = lender.app_token_for(&server, "lending").await;
        let (_, secret) =
            subscribe(&server, &app, &receiver.url, &["loan_application.decided", "loan.disbursed"]).await;

        // Bad consents: a product the bank does not have, an amount beyond the cap.
        for (loan, needle) in [
            (json!({"product_code": "mortgage", "max_amount_minor": 100, "currency": "CNY"}), "catalogue"),
            (json!({"product_code": "instant_consumer", "max_amount_minor": 0, "currency": "CNY"}), "max_amount_minor"),
        ] {
            let (status, error) = partner_call(
                &server,
                &app,
                "POST",
                "/open-banking/v1/loan-application-consents",
                Some(json!({"loan": loan})),
                false,
            )
            .await;
            assert_error(status, &error, 422, "invalid_loan_request");
            assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{error}");
        }
        // An account-information partner cannot ask for one.
        let shop = Partner::register(&server, "Shop").await;
        let shop_app = shop.app_token(&server).await;
        let (status, body) = partner_call(
            &server,
            &shop_app,
            "POST",
            "/open-banking/v1/loan-application-consents",
            Some(json!({"loan": {"product_code": "instant_consumer", "max_amount_minor": 1, "currency": "CNY"}})),
            false,
        )
        .await;
        assert_error(status, &body, 403, "insufficient_scope");

        // Customers consent and the partner applies; the simulator declines some applicants,
        // so the first one approved (or approved by a lending officer after review) goes on.
        let mut found = None;
        for seq in 40..52u32 {
            let phone = format!("139000001{seq:02}");
            let (customer_id, account, consent_id, token) =
                lending_consent(&server, &outbox, &lender, &app, (seq, &phone)).await;
            let request = json!({"amount_minor": 2_000_000, "currency": "CNY", "device_fingerprint": "dev-shop-app"});
            let (status, bad) = present_call(
                &server,
                &token,
                "POST",
                "/open-banking/v1/loan-applications",
                json!({"amount_minor": 3_000_001, "currency": "CNY"}),
            )
            .await;
            assert_error(status, &bad, 422, "invalid_loan_request");
            let (status, application) =
                present_call(&server, &token, "POST", "/open-banking/v1/loan-applications", request.clone()).await;
            assert_eq!(status, 201, "{application}");
            // Once per consent: the same application again.
            let (status, again) =
                present_call(&server, &token, "POST", "/open-banking/v1/loan-applications", request).await;
            assert_eq!((status, &again["application_id"]), (200, &application["application_id"]), "{again}");
            let id = application["application_id"].as_str().unwrap().to_string();
            match application["status"].as_str().unwrap() {
                "declined" => {
                    assert!(application.get("offer").is_none(), "{application}");
                    continue;
                }
                "in_review" => {
                    let (status, body) = server
                        .call(
                            "POST",
                            &format!("/v1/lending/review-queue/{id}/approve"),
                            Some(json!({"note": "income confirmed with the partner's payroll data"})),
                        )
                        .await;
                    assert_eq!(status, 200, "{body}");
                }
                other => assert_eq!(other, "approved", "{application}"),
            }
            found = Some((customer_id, account, consent_id, token, id));
            break;
        }
        let (_customer_id, account, consent_id, token, id) = found.expect("an applicant approved among twelve");
        let path = format!("/open-banking/v1/loan-applications/{id}");
        let (status, application) = partner_call(&server, &token, "GET", &path, None, false).await;
        assert_eq!((status, application["status"].as_str()), (200, Some("approved")), "{application}");
        let offer = application["offer"].clone();
        assert!(offer["limit_minor"].as_i64().unwrap() <= 3_000_000, "the offer stays within the consent: {offer}");
        assert!(offer.get("score").is_none() && application.get("factors").is_none(), "no scorecard: {application}");
        // Another partner's token sees nothing of it.
        let (status, body) = partner_call(&server, &shop_app, "GET", &path, None, false).await;
        assert_error(status, &body, 403, "insufficient_scope");

        // Accepting is the customer's act: without them present, refused; then accepted.
        let amount = offer["limit_minor"].as_i64().unwrap().min(2_000_000);
        let acceptance = json!({"amount_minor": amount, "term_months": offer["terms_months"][0],
            "method": offer["methods"][0]});
        let (status, body) =
            partner_call(&server, &token, "POST", &format!("{path}/acceptance"), Some(acceptance.clone()), false).await;
        assert_error(status, &body, 403, "customer_not_present");
        let before = posted_balance(&server, &account).await;
        let (status, accepted) =
            present_call(&server, &token, "POST", &format!("{path}/acceptance"), acceptance.clone()).await;
        assert_eq!((status, accepted["status"].as_str()), (201, Some("accepted")), "{accepted}");
        let loan = accepted["loan"].clone();
        assert_eq!(
            (loan["disbursed_to"].as_str(), loan["principal_minor"].as_i64()),
            (Some(account.as_str()), Some(amount))
        );
        assert!(!loan["schedule"].as_array().unwrap().is_empty(), "{loan}");
        assert!(posted_balance(&server, &account).await > before, "the loan was paid out to the chosen account");
        // Accepting again answers the same loan; the bank's own view reconciles with the ledger.
        let (status, again) = present_call(&server, &token, "POST", &format!("{path}/acceptance"), acceptance).await;
        assert_eq!((status, &again["loan"]["loan_id"]), (201, &loan["loan_id"]), "{again}");
        let (status, staff_view) =
            server.call("GET", &format!("/v1/lending/loans/{}", loan["loan_id"].as_str().unwrap()), None).await;
        assert_eq!((status, staff_view["reconciled"].as_bool()), (200, Some(true)), "{staff_view}");

        // The partner heard of the decision and the payout, signed; its calls are audited with
        // the consent as their purpose.
        let decided = receiver.wait_for("loan_application.decided", 1, 20).await;
        assert!(decided.iter().any(|r| r.json()["data"]["application_id"] == id.as_str()), "{decided:?}");
        let paid = receiver.wait_for("loan.disbursed", 1, 20).await;
        assert_eq!(paid[0].json()["data"]["loan_id"], loan["loan_id"]);
        assert_eq!(paid[0].json()["data"]["consent_id"], consent_id.as_str());
        assert_signed(&paid[0], &secret);
        let accepted_action = "POST%20/open-banking/v1/loan-applications/%7Bid%7D/acceptance";
        let (_, audit) =
            server.call("GET", &format!("/v1/audit?actor={}&action={accepted_action}", lender.id), None).await;
        let entries = audit["entries"].as_array().unwrap();
        assert!(
            entries.iter().any(|e| e["purpose"] == consent_id.as_str() && e["outcome"] == "committed"),
            "the acceptance is audited with the consent as its purpose: {audit}"
        );
        receiver.task.abort();
    }
}

#[tokio::test]
async fn a_rotated_signing_key_is_published_before_it_signs() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let (status, before) = server.call("GET", "/v1/open-banking/signing-keys", None).await;
        assert_eq!(status, 200, "{before}");
        assert_eq!(before["keys"].as_array().unwrap().len(), 1, "{before}");
        assert_eq!(before["keys"][0]["status"], "signing");
        let old_kid = before["keys"][0]["kid"].as_str().unwrap().to_string();

        let (status, after) = server.call("POST", "/v1/open-banking/signing-keys/rotate", None).await;
        assert_eq!(status, 201, "{after}");
        let statuses: Vec<(&str, &str)> = after["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["kid"].as_str().unwrap(), k["status"].as_str().unwrap()))
            .collect();
        assert_eq!(statuses.len(), 2, "{after}");
        assert_eq!(statuses[1], (old_kid.as_str(), "signing"), "the old key signs for ten more minutes: {after}");
        assert_eq!(statuses[0].1, "next", "{after}");
        // Both are published at once, so verifiers know the new key before it signs.
        let (_, jwks) = server.call_as(None, "GET", "/.well-known/jwks.json", None).await;
        let published: Vec<&str> =
            jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert!(published.contains(&old_kid.as_str()) && published.contains(&statuses[0].0), "{jwks}");
        // Tokens are still signed with the old key.
        let partner = Partner::register(&server, "Shop").await;
        let token = partner.app_token(&server).await;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(old_kid.as_str()));
        // An auditor may look, not rotate.
        let (_, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": "aud", "role": "auditor"}))).await;
        let auditor = issued["key"].as_str().unwrap().to_string();
        let (status, _) = server.call_as(Some(&auditor), "GET", "/v1/open-banking/signing-keys", None).await;
        assert_eq!(status, 200);
        let (status, body) = server.call_as(Some(&auditor), "POST", "/v1/open-banking/signing-keys/rotate", None).await;
        assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("partners_admin")), "{body}");
    }
}
