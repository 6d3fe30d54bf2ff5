//! Customer tag rules over HTTP: versioned, compile-checked with error positions, persisted
//! across restarts, and evaluated with explanations.

mod common;

use common::*;
use serde_json::{json, Value};

fn sample_facts() -> Value {
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let population = customer::synthetic::population(50, 7, as_of);
    let payroll = population.iter().find(|f| f.payroll_credits_90d >= 2).expect("a payroll customer");
    serde_json::to_value(payroll).unwrap()
}

#[tokio::test]
async fn tag_rules_are_versioned_checked_persisted_and_explained() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let key = server.key().to_string();
        let (status, list) = server.call("GET", "/v1/tags", None).await;
        assert_eq!(status, 200);
        assert!(list["count"].as_u64().unwrap() >= 200, "built-in tags: {}", list["count"]);

        // A rule that does not type-check: 422, the position of the error, nothing saved.
        let bad = json!({"name": "Broken", "dimension": "transactions", "rule": "payroll_credits_90d >= \"many\""});
        let (status, body) = server.call("PUT", "/v1/tags/broken_rule", Some(bad)).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "invalid_rule");
        assert_eq!(body["error"]["position"]["line"], 1);
        assert!(body["error"]["position"]["column"].as_u64().unwrap() > 1, "{body}");
        let unknown_field = json!({"name": "Broken", "dimension": "transactions", "rule": "salary_level > 3"});
        let (status, body) = server.call("PUT", "/v1/tags/broken_rule", Some(unknown_field)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_rule")));
        assert!(body["error"]["message"].as_str().unwrap().contains("salary_level"), "{body}");
        assert_eq!(server.call("GET", "/v1/tags/broken_rule", None).await.0, 404);

        // Add, then change: versions 1 and 2, history kept.
        let v1 = json!({"name": "Paid twice", "dimension": "transactions", "rule": "payroll_credits_90d >= 2"});
        let (status, tag) = server.call("PUT", "/v1/tags/paid_twice", Some(v1)).await;
        assert_eq!((status, tag["version"].as_u64()), (201, Some(1)), "{tag}");
        let v2 = json!({"name": "Paid at least once", "dimension": "transactions", "rule": "payroll_credits_90d >= 1"});
        let (status, tag) = server.call("PUT", "/v1/tags/paid_twice", Some(v2)).await;
        assert_eq!((status, tag["version"].as_u64()), (200, Some(2)), "{tag}");

        // Evaluation names the version that assigned each tag and explains it.
        let (status, result) =
            server.call("POST", "/v1/tags/evaluate", Some(json!({"facts": sample_facts(), "explain": true}))).await;
        assert_eq!(status, 200, "{result}");
        let tags = result["tags"].as_array().unwrap();
        let mine = tags.iter().find(|t| t["tag_id"] == "paid_twice").expect("custom tag assigned");
        assert_eq!(mine["version"], 2);
        assert!(mine["explanation"].is_object(), "{mine}");
        assert!(tags.iter().any(|t| t["tag_id"] == "payroll_customer"));

        // Least privilege: a teller cannot change rules.
        let (_, teller) = server.call("POST", "/v1/api-keys", Some(json!({"name": "app", "role": "teller"}))).await;
        let teller_key = teller["key"].as_str().unwrap().to_string();
        let v3 = json!({"name": "x", "dimension": "transactions", "rule": "true"});
        assert_eq!(server.call_as(Some(&teller_key), "PUT", "/v1/tags/paid_twice", Some(v3)).await.0, 403);

        // The rules survive a restart with their history.
        drop(server);
        let server = Server::start(&db, &[]).await;
        let (status, detail) = server.call_as(Some(&key), "GET", "/v1/tags/paid_twice", None).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["current"]["version"], 2);
        assert_eq!(detail["current"]["rule"], "payroll_credits_90d >= 1");
        assert_eq!(detail["history"].as_array().unwrap().len(), 2);
    }
}
