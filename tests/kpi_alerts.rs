//! Threshold alerts on the KPIs (issue 14, part 4), end to end against the real binary on SQLite
//! and PostgreSQL: rules made through the API move normal → pending → firing → resolved as the
//! data they watch changes (evaluated by the KPI refresh), every transition is in the history
//! and the audit trail, silences are recorded with who and why, an edit starts a rule again,
//! and who may read and change rules follows the roles. Firing and resolved transitions reach
//! the bank's webhook receiver through the durable outbox, signed; silenced ones do not.

#![allow(clippy::inconsistent_digit_grouping)] // amounts written as yuan_fen

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{json, Value};

/// One request: `webhook-id`, `webhook-timestamp`, `webhook-signature` and the body.
type Request = (String, i64, String, Vec<u8>);

/// The bank's alert receiver: keeps every request's signature headers and body, answers 204.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Request>>> = Arc::default();
        let g = got.clone();
        let app = axum::Router::new().route(
            "/alerts",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let g = g.clone();
                async move {
                    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let timestamp = header("webhook-timestamp").parse().unwrap_or(0);
                    g.lock().unwrap().push((
                        header("webhook-id"),
                        timestamp,
                        header("webhook-signature"),
                        body.to_vec(),
                    ));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Receiver { url, got }
    }

    /// The events of `event_type` received so far, once there are `count` (fails after 60 s).
    async fn wait_for(&self, event_type: &str, count: usize, secret: &str) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let got = self.got.lock().unwrap().clone();
            let now = chrono::Utc::now().timestamp();
            let events: Vec<Value> = got
                .iter()
                .filter_map(|(id, ts, signature, body)| {
                    let event: Value = serde_json::from_slice(body).ok()?;
                    (event["type"] == event_type).then(|| {
                        assert_eq!(webhooks::verify(secret, id, *ts, body, signature, now), Ok(()), "signed");
                        event
                    })
                })
                .collect();
            if events.len() >= count {
                return events;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no {count} {event_type} within 60 s: {events:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn key(server: &Server, role: &str) -> String {
    let (status, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": role, "role": role}))).await;
    assert_eq!(status, 201, "{issued}");
    issued["key"].as_str().unwrap().to_string()
}

/// Polls the rule until its state is `want`, or fails after 60 s.
async fn wait_state(server: &Server, id: &str, want: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, rule) = server.call("GET", &format!("/v1/kpi-alerts/rules/{id}"), None).await;
        assert_eq!(status, 200, "{rule}");
        if rule["state"] == want {
            return rule;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "rule not {want} within 60 s: {rule}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn events(server: &Server, id: &str) -> Vec<Value> {
    let (status, page) = server.call("GET", &format!("/v1/kpi-alerts/events?rule={id}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

fn rule(name: &str, kpi: &str, comparator: &str, threshold: &str, for_secs: i64) -> Value {
    json!({"name": name, "kpi": kpi, "comparator": comparator, "threshold": threshold, "for_secs": for_secs,
        "severity": "critical"})
}

#[tokio::test]
async fn alert_rules_follow_the_kpis_through_their_states() {
    for url in database_urls().await {
        let server = Server::start(&url, &["--kpi-refresh-secs", "1"]).await;
        let auditor = key(&server, "auditor").await;
        let operator = key(&server, "operator").await;
        let teller = key(&server, "teller").await;

        // Who may do what: auditors read, operators (and admins) change, tellers neither.
        let (status, e) = server.call_as(Some(&teller), "GET", "/v1/kpi-alerts/rules", None).await;
        assert_error(status, &e, 403, "forbidden");
        assert_eq!(server.call_as(Some(&auditor), "GET", "/v1/kpi-alerts/rules", None).await.0, 200);
        let body = rule("deposits above 1,000 yuan", "deposit_balance", "above", "100000", 0);
        let (status, e) = server.call_as(Some(&auditor), "POST", "/v1/kpi-alerts/rules", Some(body.clone())).await;
        assert_error(status, &e, 403, "forbidden");
        assert_eq!(e["error"]["details"]["permission"], "kpi_alerts_admin", "{e}");

        // Bad rules are refused, saying what is wrong.
        for (field, value, code) in [
            ("kpi", json!("nope"), "unknown_kpi"),
            ("threshold", json!("1e3"), "invalid_threshold"),
            ("threshold", json!("abc"), "invalid_threshold"),
            ("for_secs", json!(-1), "invalid_rule"),
            ("name", json!(" "), "invalid_rule"),
            ("comparator", json!("sideways"), "invalid_request"),
        ] {
            let mut bad = body.clone();
            bad[field] = value;
            let (status, e) = server.call("POST", "/v1/kpi-alerts/rules", Some(bad)).await;
            assert_error(status, &e, 422, code);
        }

        // The bank's alert receiver subscribes to firing and resolved alerts.
        let receiver = Receiver::start().await;
        let subscription = json!({"url": receiver.url, "events": ["kpi_alert.firing", "kpi_alert.resolved"]});
        let (status, subscribed) = server.call("POST", "/v1/webhooks/subscriptions", Some(subscription)).await;
        assert_eq!(status, 201, "{subscribed}");
        let secret = subscribed["secret"].as_str().unwrap().to_string();

        // A rule on the deposit balance: an empty bank is normal.
        let (status, created) = server.call_as(Some(&operator), "POST", "/v1/kpi-alerts/rules", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(created["state"], "normal");
        assert_eq!(created["unit"], "cny_minor");
        assert_eq!(created["kpi_name_zh"], "存款余额");
        assert_eq!(created["created_by"], "operator");
        // And one that must hold for 2 s before it fires.
        let (status, slow) = server
            .call("POST", "/v1/kpi-alerts/rules", Some(rule("any deposits, 2 s", "deposit_balance", "above", "0", 2)))
            .await;
        assert_eq!(status, 201, "{slow}");
        let slow = slow["id"].as_str().unwrap().to_string();

        // 2,000 yuan deposited: the first rule fires at the next refresh, the second after 2 s pending.
        let cash = open(&server, gl("gl.cash")).await;
        let acct = open(&server, deposit("C-alerts")).await;
        assert_eq!(server.call("POST", "/v1/transfers", Some(transfer(&cash, &acct, 2_000_00))).await.0, 201);
        let firing = wait_state(&server, &id, "firing").await;
        assert_eq!(firing["last_value"], "200000");
        assert_eq!(firing["current_value"], "200000");
        let history = events(&server, &id).await;
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!((history[0]["from"].as_str(), history[0]["to"].as_str()), (Some("normal"), Some("firing")));
        assert_eq!(history[0]["value"], "200000");
        assert_eq!(history[0]["cause"], "evaluation");
        assert_eq!(history[0]["silenced"], false);
        wait_state(&server, &slow, "firing").await;
        let slow_history = events(&server, &slow).await;
        let states: Vec<&str> = slow_history.iter().rev().map(|e| e["to"].as_str().unwrap()).collect();
        assert_eq!(states, ["pending", "firing"], "{slow_history:?}");
        let pending_at = slow_history[1]["at"].as_i64().unwrap();
        assert!(slow_history[0]["at"].as_i64().unwrap() - pending_at >= 2_000_000, "{slow_history:?}");
        let (_, firing_only) = server.call("GET", "/v1/kpi-alerts/events?state=firing", None).await;
        assert_eq!(firing_only["events"].as_array().unwrap().len(), 2, "{firing_only}");
        let (status, e) = server.call("GET", "/v1/kpi-alerts/events?state=loud", None).await;
        assert_error(status, &e, 422, "invalid_state");
        // Both firings reached the receiver, signed (pending was not notified).
        let fired = receiver.wait_for("kpi_alert.firing", 2, &secret).await;
        let mut fired_rules: Vec<&str> = fired.iter().map(|e| e["data"]["rule_id"].as_str().unwrap()).collect();
        fired_rules.sort();
        let mut want = vec![id.as_str(), slow.as_str()];
        want.sort();
        assert_eq!(fired_rules, want);
        let first = fired.iter().find(|e| e["data"]["rule_id"] == id.as_str()).unwrap();
        assert_eq!((first["data"]["value"].as_str(), first["data"]["to"].as_str()), (Some("200000"), Some("firing")));
        assert_eq!(first["data"]["kpi"], "deposit_balance");

        // Silenced, with who and why; a silence in the past is refused.
        let (status, e) = server
            .call("POST", &format!("/v1/kpi-alerts/rules/{id}/silence"), Some(json!({"until": 1, "reason": "x"})))
            .await;
        assert_error(status, &e, 422, "invalid_silence");
        let until = chrono::Utc::now().timestamp_micros() + 3_600_000_000;
        let (status, silenced) = server
            .call_as(
                Some(&operator),
                "POST",
                &format!("/v1/kpi-alerts/rules/{id}/silence"),
                Some(json!({"until": until, "reason": "月末资金归集,预期内"})),
            )
            .await;
        assert_eq!(status, 200, "{silenced}");
        assert_eq!(silenced["silenced"], true);
        assert_eq!(silenced["silence"]["by"], "operator");
        assert_eq!(silenced["silence"]["reason"], "月末资金归集,预期内");
        assert_eq!(silenced["silence"]["until"], until);
        assert_eq!(silenced["state"], "firing", "a silence does not change the state");

        // The money leaves: resolved (recorded while silenced).
        assert_eq!(server.call("POST", "/v1/transfers", Some(transfer(&acct, &cash, 2_000_00))).await.0, 201);
        wait_state(&server, &id, "resolved").await;
        let history = events(&server, &id).await;
        assert_eq!(history[0]["to"], "resolved");
        assert_eq!(history[0]["silenced"], true);
        assert_eq!(history[0]["value"], "0");
        // The slow rule ends too: firing → resolved. Only its end is notified (the other rule
        // was silenced).
        wait_state(&server, &slow, "resolved").await;
        let resolved = receiver.wait_for("kpi_alert.resolved", 1, &secret).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let resolved_again = receiver.wait_for("kpi_alert.resolved", 1, &secret).await;
        assert_eq!(resolved_again.len(), 1, "a silenced rule's end is not notified: {resolved_again:?}");
        assert_eq!(resolved[0]["data"]["rule_id"], slow.as_str());

        // The silence is lifted; an edit lowers the threshold below the balance (0 < 1 is false,
        // so "below 1" holds): the edit starts the rule again from normal, then it fires.
        let (status, lifted) = server.call("DELETE", &format!("/v1/kpi-alerts/rules/{id}/silence"), None).await;
        assert_eq!(status, 200, "{lifted}");
        assert_eq!(lifted["silenced"], false);
        assert!(lifted["silence"].is_null(), "{lifted}");
        let (status, edited) = server
            .call(
                "PUT",
                &format!("/v1/kpi-alerts/rules/{id}"),
                Some(rule("deposits below 1 fen", "deposit_balance", "below", "1", 0)),
            )
            .await;
        assert_eq!(status, 200, "{edited}");
        assert_eq!(edited["state"], "normal");
        assert_eq!(edited["comparator"], "below");
        wait_state(&server, &id, "firing").await;
        receiver.wait_for("kpi_alert.firing", 3, &secret).await;
        let (_, deliveries) = server.call("GET", "/v1/webhooks/deliveries?owner=bank", None).await;
        assert_eq!(deliveries["deliveries"].as_array().unwrap().len(), 4, "{deliveries}");
        let history = events(&server, &id).await;
        let kinds: Vec<(String, String)> = history
            .iter()
            .rev()
            .map(|e| (e["to"].as_str().unwrap().to_string(), e["cause"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            kinds,
            [("firing", "evaluation"), ("resolved", "evaluation"), ("normal", "edit"), ("firing", "evaluation")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        // A disabled rule is not evaluated (and starts again from normal).
        let mut off = rule("deposits below 1 fen", "deposit_balance", "below", "1", 0);
        off["enabled"] = json!(false);
        let (status, disabled) = server.call("PUT", &format!("/v1/kpi-alerts/rules/{id}"), Some(off)).await;
        assert_eq!(status, 200, "{disabled}");
        assert_eq!((disabled["state"].as_str(), disabled["enabled"].as_bool()), (Some("normal"), Some(false)));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(server.call("GET", &format!("/v1/kpi-alerts/rules/{id}"), None).await.1["state"], "normal");

        // Every change is in the audit trail: the people's edits and the evaluator's transitions.
        let (status, audit) = server.call("GET", &format!("/v1/audit?resource={id}&limit=100"), None).await;
        assert_eq!(status, 200, "{audit}");
        let actions: Vec<&str> =
            audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        for want in [
            "POST /v1/kpi-alerts/rules",
            "POST /v1/kpi-alerts/rules/{id}/silence",
            "DELETE /v1/kpi-alerts/rules/{id}/silence",
            "PUT /v1/kpi-alerts/rules/{id}",
            "kpi alert firing",
            "kpi alert resolved",
        ] {
            assert!(actions.contains(&want), "no {want} in {actions:?}");
        }
        let system = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "kpi alert firing").unwrap();
        assert_eq!(system["actor_kind"], "system");

        // Deleted: gone, its history stays.
        assert_eq!(server.call("DELETE", &format!("/v1/kpi-alerts/rules/{id}"), None).await.0, 204);
        let (status, e) = server.call("GET", &format!("/v1/kpi-alerts/rules/{id}"), None).await;
        assert_error(status, &e, 404, "alert_rule_not_found");
        let (status, e) = server.call("DELETE", &format!("/v1/kpi-alerts/rules/{id}"), None).await;
        assert_error(status, &e, 404, "alert_rule_not_found");
        assert_eq!(events(&server, &id).await.len(), 5);
        let (_, list) = server.call("GET", "/v1/kpi-alerts/rules", None).await;
        assert_eq!(list["rules"].as_array().unwrap().len(), 1, "{list}");
        // Pages of the history.
        let (_, first) = server.call("GET", "/v1/kpi-alerts/events?limit=2", None).await;
        let before = first["next_before"].as_str().unwrap();
        let (_, second) = server.call("GET", &format!("/v1/kpi-alerts/events?limit=2&before={before}"), None).await;
        assert_ne!(first["events"][0]["id"], second["events"][0]["id"]);
    }
}
