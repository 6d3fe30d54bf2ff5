//! The customer data platform end to end over HTTP, on the demo bank: search by tag, tier and
//! segment; 360° profile; tags with explanations; recommendations within the customer's risk
//! level; churn risk with reasons; segments with counts; facts intake with incremental
//! recomputation; channel identities; bad rules rejected with a position and nothing saved.

mod common;

use common::*;
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<String> {
    page["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn demo_customers_are_profiled_tagged_segmented_and_searchable() {
    for db in database_urls().await {
        let server = Server::start(&db, &["--demo", "--customers", "60", "--months", "4"]).await;

        // Segments with counts: tiers add up to every customer, and so do lifecycle stages.
        let (status, overview) = server.call("GET", "/v1/segments", None).await;
        assert_eq!(status, 200, "{overview}");
        let sum = |v: &Value| v.as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum(&overview["tiers"]), 60, "{overview}");
        assert_eq!(sum(&overview["lifecycle"]), 60);
        assert_eq!(sum(&overview["rfm"]), 60);
        assert!(overview["segments"].as_array().unwrap().len() >= 3);
        let payroll = overview["tags"]["payroll_customer"].as_u64().unwrap_or(0);
        assert!(payroll > 0, "salaried demo customers are payroll customers: {overview}");

        // Search by tag returns exactly the tag's members, and every one carries the tag.
        let (status, page) = server.call("GET", "/v1/customers?tag=payroll_customer&limit=1000", None).await;
        assert_eq!(status, 200, "{page}");
        let members = ids(&page);
        assert_eq!(members.len() as u64, payroll);
        let (_, tags) = server.call("GET", &format!("/v1/customers/{}/tags", members[0]), None).await;
        let carried: Vec<&str> =
            tags["tags"].as_array().unwrap().iter().map(|t| t["tag_id"].as_str().unwrap()).collect();
        assert!(carried.contains(&"payroll_customer"), "{tags}");
        let why = tags["tags"].as_array().unwrap().iter().find(|t| t["tag_id"] == "payroll_customer").unwrap();
        assert!(why["explanation"].is_object(), "tags come with explanations: {why}");

        // Paging through a filtered search visits every member once.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/customers?tag=payroll_customer&limit=7&after={a}"),
                None => "/v1/customers?tag=payroll_customer&limit=7".to_string(),
            };
            let (_, page) = server.call("GET", &path, None).await;
            seen.extend(ids(&page));
            match page["next_after"].as_str() {
                Some(a) => after = Some(a.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, members);

        // Filters combine (intersection).
        let (_, wealth) = server.call("GET", "/v1/customers?tier=wealth&limit=1000", None).await;
        let (_, both) = server.call("GET", "/v1/customers?tier=wealth&tag=payroll_customer&limit=1000", None).await;
        assert!(ids(&both).iter().all(|id| ids(&wealth).contains(id) && members.contains(id)));

        // The 360° profile has five dimensions and the computed results.
        let id = &members[0];
        let (status, profile) = server.call("GET", &format!("/v1/customers/{id}/profile"), None).await;
        assert_eq!(status, 200, "{profile}");
        for dimension in ["basic", "assets", "behaviour", "risk", "lifecycle"] {
            assert!(profile["profile"][dimension].is_object(), "{dimension}: {profile}");
        }
        assert!(profile["computed"]["tags"].as_array().unwrap().iter().any(|t| t == "payroll_customer"));
        let p = profile["computed"]["churn"]["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));

        // Recommendations never exceed the customer's risk level and skip held products.
        let (status, recs) = server.call("GET", &format!("/v1/customers/{id}/recommendations?k=5"), None).await;
        assert_eq!(status, 200, "{recs}");
        assert!(!recs["recommendations"].as_array().unwrap().is_empty(), "{recs}");

        // Churn risk: highest first, with reasons in words.
        let (status, churn) = server.call("GET", "/v1/customers/churn-risk?limit=5", None).await;
        assert_eq!(status, 200, "{churn}");
        let list = churn.as_array().unwrap();
        assert_eq!(list.len(), 5);
        let probs: Vec<f64> = list.iter().map(|c| c["churn"]["probability"].as_f64().unwrap()).collect();
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{probs:?}");
        assert!(!list[0]["reasons"].as_array().unwrap().is_empty());

        // New facts for one customer: dormant. An incremental run recomputes only them.
        let mut facts = profile_facts(&server, id).await;
        facts["tx_30d"] = json!({"inflow_count": 0, "inflow_minor": 0, "outflow_count": 0, "outflow_minor": 0});
        facts["tx_90d"] = facts["tx_30d"].clone();
        facts["tx_180d"] = facts["tx_30d"].clone();
        facts["payroll_credits_90d"] = json!(0);
        let (status, accepted) = server.call("PUT", &format!("/v1/customers/{id}/facts"), Some(facts.clone())).await;
        assert_eq!((status, accepted["changed"].as_bool()), (200, Some(true)), "{accepted}");
        let (status, report) = server.call("POST", "/v1/customers/recompute", Some(json!({}))).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!((report["mode"].as_str(), report["customers"].as_u64()), (Some("incremental"), Some(1)), "{report}");
        let (_, page) = server.call("GET", "/v1/customers?tag=payroll_customer&limit=1000", None).await;
        assert!(!ids(&page).contains(id), "no longer a payroll customer");
        assert_eq!(ids(&page).len() as u64, payroll - 1);
        let (status, body) = server.call("PUT", &format!("/v1/customers/{}/facts", members[1]), Some(facts)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("customer_mismatch")));

        // A new segment: bad rules are rejected with a position and not saved; a good one counts
        // at the next run (a rule change re-evaluates everyone).
        let (status, body) = server
            .call(
                "PUT",
                "/v1/segments/risky",
                Some(json!({"name": "Risky", "rule": "payroll_customer and no_such_tag"})),
            )
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_rule")), "{body}");
        assert!(body["error"]["position"]["column"].as_u64().unwrap() > 1, "{body}");
        let (status, _) = server
            .call(
                "PUT",
                "/v1/segments/payroll_wealth",
                Some(json!({"name": "Payroll + wealth", "rule": "payroll_customer and tier_wealth"})),
            )
            .await;
        let rule = if status == 200 { "payroll_customer and tier_wealth" } else { "payroll_customer" };
        let (status, seg) = server
            .call("PUT", "/v1/segments/payroll_wealth", Some(json!({"name": "Payroll + wealth", "rule": rule})))
            .await;
        assert_eq!(status, 200, "{seg}");
        let (_, report) = server.call("POST", "/v1/customers/recompute", Some(json!({"mode": "incremental"}))).await;
        assert_eq!(report["customers"].as_u64(), Some(60), "{report}");
        assert!(report["changed_rules"].as_array().unwrap().iter().any(|r| r == "segment:payroll_wealth"));
        let (_, overview) = server.call("GET", "/v1/segments", None).await;
        let seg =
            overview["segments"].as_array().unwrap().iter().find(|s| s["id"] == "payroll_wealth").unwrap().clone();
        let (_, page) = server.call("GET", "/v1/customers?segment=payroll_wealth&limit=1000", None).await;
        assert_eq!(seg["count"].as_u64().unwrap(), ids(&page).len() as u64);

        // Channel identities: one identity, one customer.
        let link = json!({"channel": "partner", "external_id": "wx-openid-1"});
        let (status, _) = server.call("POST", &format!("/v1/customers/{id}/identities"), Some(link.clone())).await;
        assert_eq!(status, 201);
        let (status, body) = server.call("POST", &format!("/v1/customers/{}/identities", members[1]), Some(link)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("identity_taken")));
        let (_, profile) = server.call("GET", &format!("/v1/customers/{id}/profile"), None).await;
        assert!(profile["identities"].as_array().unwrap().iter().any(|i| i["external_id"] == "wx-openid-1"));

        // Unknown filter fields are a 400, not silently ignored.
        let (status, _) = server.call("GET", "/v1/customers?colour=blue", None).await;
        assert_eq!(status, 400);
    }
}

/// The stored facts of a customer, reconstructed through the API's profile (the facts are the
/// profile's input; the test edits the behaviour windows and keeps the rest).
async fn profile_facts(server: &Server, id: &str) -> Value {
    let (_, facts) = server.call("GET", &format!("/v1/customers/{id}/facts"), None).await;
    facts
}
