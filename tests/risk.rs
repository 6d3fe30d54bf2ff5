//! The risk engine over HTTP, against the real binary on SQLite (and PostgreSQL when
//! DATABASE_URL is set): decisions with reasons, precise 4xx on bad input, rule sets that are
//! compile-checked, activated without restart and backtested, lists with expiry, review cases,
//! and transfer screening that writes nothing on reject.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn event(id: &str, kind: &str, extra: Value) -> Value {
    let mut e = json!({
        "event_id": id, "kind": kind, "occurred_at": "2026-11-20T10:00:00Z",
        "customer_id": "C-test-1", "channel": "mobile",
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn transfer_event(id: &str, yuan: i64, device: &str) -> Value {
    event(
        id,
        "transfer",
        json!({"amount": {"minor": yuan * 100, "currency": "CNY"}, "account_id": "A1", "counterparty_account": "A2",
               "device_fingerprint": device, "ip": "10.1.2.3"}),
    )
}

fn rule(id: &str, source: &str, action: &str) -> Value {
    json!({"id": id, "condition": {"type": "expression", "source": source}, "action": action,
           "reason_code": id.to_uppercase(), "explanation": format!("rule {id}")})
}

async fn decide(server: &Server, body: Value) -> Value {
    let (status, d) = server.call("POST", "/v1/risk/decisions", Some(body)).await;
    assert_eq!(status, 200, "{d}");
    d
}

fn codes(d: &Value) -> Vec<String> {
    d["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn decisions_rule_sets_lists_cases_and_screening() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let key = server.key().to_string();

        // No rule set, no model: a small login is allowed.
        let d =
            decide(&server, event("e-login", "login", json!({"device_fingerprint": "dev-1", "ip": "10.0.0.9"}))).await;
        assert_eq!(d["outcome"], "allow", "{d}");
        assert_eq!(d["rule_set_version"], Value::Null);
        let (status, stored) =
            server.call("GET", &format!("/v1/risk/decisions/{}", d["id"].as_str().unwrap()), None).await;
        assert_eq!((status, &stored["outcome"]), (200, &json!("allow")), "{stored}");

        // Bad input: precise 4xx codes.
        let (status, body) = server.call("POST", "/v1/risk/decisions", Some(event("e-x", "wire", json!({})))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("unknown_event_type")), "{body}");
        let mut missing = transfer_event("e-m", 10, "dev-1");
        missing.as_object_mut().unwrap().remove("counterparty_account");
        let (status, body) = server.call("POST", "/v1/risk/decisions", Some(missing)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("missing_field")), "{body}");
        assert_eq!(body["error"]["details"]["field"], "counterparty_account");
        let mut no_customer = event("e-c", "login", json!({"ip": "10.0.0.1"}));
        no_customer.as_object_mut().unwrap().remove("customer_id");
        let (status, body) = server.call("POST", "/v1/risk/decisions", Some(no_customer)).await;
        assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("customer_id")), "{body}");
        let (status, body) = server.call("POST", "/v1/risk/decisions", Some(Value::String("{".into()))).await;
        assert_eq!(status, 422, "{body}"); // a JSON string, not an event object
        assert_eq!(body["error"]["code"], "missing_field");

        // A rule that does not type-check: 422 with its position; nothing stored or activated.
        let bad = json!({"rules": [rule("ok", "event_amount > 1", "score"), rule("broken", "event_amount >= \"big\"", "reject")]});
        let (status, body) = server.call("POST", "/v1/risk/rule-sets", Some(bad)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_rule")), "{body}");
        assert_eq!(body["error"]["details"]["rule"], "broken");
        assert_eq!(body["error"]["position"]["line"], 1);
        assert!(body["error"]["position"]["column"].as_u64().unwrap() > 1, "{body}");
        let unknown = json!({"rules": [rule("u", "velocity_customer_count_2h > 3", "review")]});
        let (status, body) = server.call("POST", "/v1/risk/rule-sets", Some(unknown)).await;
        assert_eq!(status, 422);
        assert!(body["error"]["message"].as_str().unwrap().contains("velocity_customer_count_2h"), "{body}");
        let (_, sets) = server.call("GET", "/v1/risk/rule-sets", None).await;
        assert_eq!(sets["rule_sets"].as_array().unwrap().len(), 0, "{sets}");
        assert_eq!(sets["active_version"], Value::Null);

        // v1 rejects big transfers; it only applies once activated, with no restart.
        let v1 =
            json!({"rules": [rule("big_transfer", "event_kind == \"transfer\" and event_amount >= 10000", "reject")]});
        let (status, created) = server.call("POST", "/v1/risk/rule-sets", Some(v1)).await;
        assert_eq!((status, created["rule_set"]["version"].as_u64()), (201, Some(1)), "{created}");
        assert_eq!(decide(&server, transfer_event("e-big-1", 20_000, "dev-1")).await["outcome"], "allow");
        let (status, _) = server.call("POST", "/v1/risk/rule-sets/1/activate", None).await;
        assert_eq!(status, 200);
        let d = decide(&server, transfer_event("e-big-2", 20_000, "dev-1")).await;
        assert_eq!((d["outcome"].as_str(), d["rule_set_version"].as_u64()), (Some("reject"), Some(1)), "{d}");
        assert_eq!(codes(&d), vec!["BIG_TRANSFER"]);
        assert_eq!(d["reasons"][0]["explanation"], "rule big_transfer");
        assert_eq!(decide(&server, transfer_event("e-small", 50, "dev-1")).await["outcome"], "allow");

        // v2 only reviews them: the backtest over stored decisions says what would change.
        let v2 = json!({"rules": [rule("big_transfer_review", "event_kind == \"transfer\" and event_amount >= 10000", "review")]});
        assert_eq!(server.call("POST", "/v1/risk/rule-sets", Some(v2)).await.0, 201);
        let (status, bt) = server.call("POST", "/v1/risk/rule-sets/2/backtest", None).await;
        assert_eq!(status, 200, "{bt}");
        let report = &bt["report"];
        assert_eq!((report["before_version"].as_u64(), report["after_version"].as_u64()), (Some(1), Some(2)));
        assert_eq!(report["before"]["reject"], 2, "{report}");
        assert_eq!(report["after"]["review"], 2, "{report}");
        assert_eq!(report["transitions"]["reject->review"], 2, "{report}");
        assert_eq!(report["rule_hits_after"]["big_transfer_review"], 2);
        assert_eq!(server.call("POST", "/v1/risk/rule-sets/9/backtest", None).await.0, 404);
        let (status, bt) = server.call("POST", "/v1/risk/rule-sets/2/backtest", Some(json!({"limit": 2}))).await;
        assert_eq!((status, bt["report"]["events"].as_u64()), (200, Some(2)), "{bt}");

        // Lists with expiry: a black-listed device rejects until the entry expires.
        let entry =
            json!({"kind": "black", "subject": "device", "value": "dev-evil", "reason": "chargebacks", "ttl_secs": 2});
        let (status, body) = server.call("POST", "/v1/risk/lists", Some(entry)).await;
        assert_eq!(status, 201, "{body}");
        let d = decide(&server, transfer_event("e-evil-1", 5, "dev-evil")).await;
        assert_eq!(d["outcome"], "reject", "{d}");
        assert!(codes(&d).contains(&"LIST_BLACK_DEVICE".to_string()), "{d}");
        assert_eq!(server.call("GET", "/v1/risk/lists?kind=black", None).await.1["count"], 1);
        tokio::time::sleep(Duration::from_millis(2_300)).await;
        assert_eq!(decide(&server, transfer_event("e-evil-2", 5, "dev-evil")).await["outcome"], "allow");
        assert_eq!(server.call("GET", "/v1/risk/lists?kind=black", None).await.1["count"], 0);
        let watch = json!({"kind": "watch", "subject": "ip", "value": "10.9.9.9", "reason": "tor exit"});
        assert_eq!(server.call("POST", "/v1/risk/lists", Some(watch)).await.0, 201);

        // Review cases: v2 active, a big transfer opens a case; the analyst resolves it once.
        assert_eq!(server.call("POST", "/v1/risk/rule-sets/2/activate", None).await.0, 200);
        let d = decide(&server, transfer_event("e-review", 30_000, "dev-1")).await;
        assert_eq!(d["outcome"], "review", "{d}");
        let case = d["case_id"].as_u64().expect("a case");
        let (_, open) = server.call("GET", "/v1/risk/cases?status=open", None).await;
        assert!(open["cases"].as_array().unwrap().iter().any(|c| c["id"] == case), "{open}");
        let resolve = json!({"resolution": "false_positive", "note": "customer called"});
        let (status, r) = server.call("POST", &format!("/v1/risk/cases/{case}/resolve"), Some(resolve.clone())).await;
        assert_eq!((status, r["case"]["resolution"].as_str()), (200, Some("false_positive")), "{r}");
        let (status, r) = server.call("POST", &format!("/v1/risk/cases/{case}/resolve"), Some(resolve.clone())).await;
        assert_eq!((status, r["error"]["code"].as_str()), (409, Some("case_already_resolved")));
        assert_eq!(server.call("POST", "/v1/risk/cases/999999/resolve", Some(resolve)).await.0, 404);
        let (_, open) = server.call("GET", "/v1/risk/cases?status=open", None).await;
        assert!(!open["cases"].as_array().unwrap().iter().any(|c| c["id"] == case));

        // Transfer screening: reject writes nothing; review holds the money until resolved.
        let clearing = open_account(&server, gl("gl.clearing")).await;
        let alice = open_account(&server, deposit("alice")).await;
        let bob = open_account(&server, deposit("bob")).await;
        assert_eq!(server.call("POST", "/v1/transfers", Some(transfer(&clearing, &alice, 10_000_000))).await.0, 201);
        assert_eq!(server.call("POST", "/v1/risk/rule-sets/1/activate", None).await.0, 200);
        let mut big = transfer(&alice, &bob, 2_000_000);
        big["metadata"] = json!({"channel": "mobile", "customer_id": "C-alice", "device_fingerprint": "dev-alice"});
        let (status, body) = server.call("POST", "/v1/transfers", Some(big.clone())).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("risk_rejected")), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("BIG_TRANSFER"), "{body}");
        assert_eq!(body["error"]["details"]["outcome"], "reject");
        assert_eq!(posted_balance(&server, &alice).await, 10_000_000);
        assert_eq!(posted_balance(&server, &bob).await, 0);
        assert_eq!(server.call("GET", &format!("/v1/transfers/{}", big["id"].as_str().unwrap()), None).await.0, 404);
        // Unscreened channel (branch) and no channel: straight to the ledger.
        let mut branch = transfer(&alice, &bob, 2_000_000);
        branch["metadata"] = json!({"channel": "branch"});
        assert_eq!(server.call("POST", "/v1/transfers", Some(branch)).await.0, 201);
        // Review: held as a pending transfer, posted when the case is a false positive.
        assert_eq!(server.call("POST", "/v1/risk/rule-sets/2/activate", None).await.0, 200);
        let mut held = transfer(&alice, &bob, 3_000_000);
        held["metadata"] = json!({"channel": "web", "customer_id": "C-alice"});
        let (status, body) = server.call("POST", "/v1/transfers", Some(held)).await;
        assert_eq!((status, body["status"].as_str()), (202, Some("held_for_review")), "{body}");
        assert_eq!(body["transfer"]["kind"], "pending");
        assert_eq!(posted_balance(&server, &bob).await, 2_000_000);
        let case = body["decision"]["case_id"].as_u64().expect("case");
        let resolve = json!({"resolution": "false_positive"});
        let (status, r) = server.call("POST", &format!("/v1/risk/cases/{case}/resolve"), Some(resolve)).await;
        assert_eq!((status, r["transfer_action"].as_str()), (200, Some("posted")), "{r}");
        assert_eq!(posted_balance(&server, &bob).await, 5_000_000);

        // Least privilege: a teller may ask for decisions but not change rules or resolve cases.
        let (_, teller) = server.call("POST", "/v1/api-keys", Some(json!({"name": "app", "role": "teller"}))).await;
        let teller = teller["key"].as_str().unwrap().to_string();
        let (status, _) =
            server.call_as(Some(&teller), "POST", "/v1/risk/decisions", Some(transfer_event("e-t", 5, "d"))).await;
        assert_eq!(status, 200);
        let v3 = json!({"rules": [rule("x", "true", "reject")]});
        assert_eq!(server.call_as(Some(&teller), "POST", "/v1/risk/rule-sets", Some(v3)).await.0, 403);

        // Market risk.
        let var = json!({
            "portfolio": {"currency": "CNY", "positions": [{"instrument": "BOND", "quantity": 1000.0, "modified_duration": 5.0},
                                                           {"instrument": "EQ", "quantity": 200.0}]},
            "history": {"instruments": ["BOND", "EQ"], "prices": (0..60).map(|d| json!([100.0 + (d % 5) as f64 * 0.3, 50.0 + (d % 7) as f64]))
                .collect::<Vec<_>>()},
            "scenarios": [{"name": "equity crash", "shocks": [{"instrument": "EQ", "type": "relative", "change": -0.3}]}]
        });
        let (status, v) = server.call("POST", "/v1/risk/market/var", Some(var)).await;
        assert_eq!(status, 200, "{v}");
        assert!(v["historical"]["value_at_risk"]["minor"].as_i64().unwrap() > 0, "{v}");
        assert!(v["stress"][0]["pnl"]["minor"].as_i64().unwrap() < 0, "{v}");

        // After a restart: rule sets, the active version and lists are still there.
        drop(server);
        let server = Server::start(&db, &[]).await;
        let (_, sets) = server.call_as(Some(&key), "GET", "/v1/risk/rule-sets", None).await;
        assert_eq!(sets["active_version"], 2, "{sets}");
        assert_eq!(sets["rule_sets"].as_array().unwrap().len(), 2);
        let (_, lists) = server.call_as(Some(&key), "GET", "/v1/risk/lists?subject=ip", None).await;
        assert_eq!(lists["count"], 1, "{lists}");
        let (status, d) = server
            .call_as(Some(&key), "POST", "/v1/risk/decisions", Some(transfer_event("e-after", 30_000, "dev-2")))
            .await;
        assert_eq!((status, d["outcome"].as_str()), (200, Some("review")), "{d}");
        assert!(d["case_id"].as_u64().unwrap() > case, "case ids continue after a restart: {d}");
    }
}

async fn open_account(server: &Server, body: Value) -> String {
    open(server, body).await
}

/// A restart keeps what the engine learned (velocity counters and the relationship graph are
/// replayed from the decision log), and a running server picks up a model, rule set or list
/// entry stored by another process without a restart.
#[tokio::test]
async fn engine_state_survives_restart_and_follows_other_nodes() {
    for db in database_urls().await {
        let mut first = Server::start(&db, &["--risk-refresh-secs", "1"]).await;
        let key = first.key().to_string();
        for i in 0..3 {
            decide(&first, transfer_event(&format!("r-t{i}"), 100, "dev-r")).await;
        }
        // A black-listed ID number gets an account opening rejected, which flags its customer
        // in the graph; a later customer on the same device sees that.
        let (status, _) = first
            .call(
                "POST",
                "/v1/risk/lists",
                Some(
                    json!({"kind": "black", "subject": "id_number", "value": "110105194912310029", "reason": "fraud"}),
                ),
            )
            .await;
        assert_eq!(status, 201);
        let mut opening = event(
            "r-open",
            "account_opening",
            json!({"id_number": "110105194912310029", "phone": "+8613800000001", "device_fingerprint": "dev-ring"}),
        );
        opening["customer_id"] = json!("C-ring-1");
        assert_eq!(decide(&first, opening).await["outcome"], "reject");
        first.kill().await;

        let mut second = Server::start(&db, &["--risk-refresh-secs", "1"]).await;
        second.key = Some(key.clone());
        let d = decide(&second, transfer_event("r-t3", 100, "dev-r")).await;
        assert_eq!(d["features"]["velocity.customer.count.1h"], 4.0, "{d}");
        assert_eq!(d["features"]["velocity.device.count.24h"], 4.0, "{d}");
        let mut login = event("r-login", "login", json!({"device_fingerprint": "dev-ring", "phone": "+8613800000001"}));
        login["customer_id"] = json!("C-ring-2");
        let d = decide(&second, login).await;
        assert_eq!(d["features"]["graph.device.shared_flagged"], 1.0, "{d}");
        assert_eq!(d["features"]["graph.phone.shared_flagged"], 1.0, "{d}");
        assert!(codes(&d).contains(&"GRAPH_SHARED_DEVICE_FLAGGED".to_string()), "{d}");

        // Another node (a third server on the same database) activates a rule set and lists a
        // device; the second server follows within its refresh interval.
        let mut third = Server::start(&db, &["--risk-refresh-secs", "1"]).await;
        third.key = Some(key.clone());
        let set = json!({"rules": [rule("tiny", "event_kind == \"transfer\" and event_amount >= 1", "review")]});
        assert_eq!(third.call("POST", "/v1/risk/rule-sets", Some(set)).await.0, 201);
        assert_eq!(third.call("POST", "/v1/risk/rule-sets/1/activate", None).await.0, 200);
        let (status, _) = third
            .call(
                "POST",
                "/v1/risk/lists",
                Some(json!({"kind": "watch", "subject": "device", "value": "dev-watch", "reason": "review me"})),
            )
            .await;
        assert_eq!(status, 201);
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let d = decide(&second, transfer_event("r-t4", 100, "dev-watch")).await;
        assert_eq!(d["rule_set_version"], 1, "{d}");
        assert!(codes(&d).contains(&"LIST_WATCH_DEVICE".to_string()), "{d}");
        // Deleting the entry on the third server is seen as well.
        let (status, _) = third.call("DELETE", "/v1/risk/lists/watch/device/dev-watch", None).await;
        assert_eq!(status, 204);
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let d = decide(&second, transfer_event("r-t5", 100, "dev-watch")).await;
        assert!(!codes(&d).contains(&"LIST_WATCH_DEVICE".to_string()), "{d}");
        second.kill().await;
        third.kill().await;
    }
}

/// Over capacity the server sheds decisions early and cheaply: 503 `overloaded` with
/// `Retry-After`, while every accepted decision is answered normally.
#[tokio::test]
async fn overload_is_shed_with_503_and_retry_after() {
    for db in database_urls().await {
        let server = Server::start(&db, &["--risk-max-in-flight", "1"]).await;
        let requests = (0..64).map(|i| {
            let request = server
                .http
                .post(server.url("/v1/risk/decisions"))
                .bearer_auth(server.key())
                .json(&transfer_event(&format!("burst-{i}"), 100, "dev-burst"));
            async move { request.send().await.expect("request") }
        });
        let responses = futures::future::join_all(requests).await;
        let (mut ok, mut shed) = (0, 0);
        for r in responses {
            match r.status().as_u16() {
                200 => ok += 1,
                503 => {
                    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "overloaded", "{body}");
                    shed += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
        assert!(ok > 0 && shed > 0, "{ok} accepted, {shed} shed");
    }
}
