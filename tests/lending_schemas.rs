//! The lending API's documented schemas are what the server sends. A whole lending flow runs
//! over HTTP on the real binary (SQLite, and PostgreSQL when DATABASE_URL is set): applications
//! with automated and manual decisions, offer, acceptance (and its replay), repayment,
//! prepayment, a revolving line and a draw, end of day, write-off, documents and the
//! supply-chain receivable from registration to financing. Every response must match the schema
//! `/openapi.json` documents for its operation and status, with every object closed (a field the
//! schema does not name fails too) and formats (date, date-time, uuid) checked; and every lending
//! operation must have answered a success that was checked.

// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]
mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

struct Checked<'a> {
    server: &'a Server,
    doc: Value,
    /// The document's components with `additionalProperties: false` on every object schema.
    closed: Value,
    failures: Vec<String>,
    /// (method, path template) of operations that answered a checked 2xx.
    succeeded: BTreeSet<(String, String)>,
}

fn close(schema: &mut Value) {
    match schema {
        Value::Object(o) => {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("additionalProperties".into(), json!(false));
            }
            o.values_mut().for_each(close);
        }
        Value::Array(a) => a.iter_mut().for_each(close),
        _ => {}
    }
}

fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

impl<'a> Checked<'a> {
    async fn new(server: &'a Server) -> Checked<'a> {
        let (status, doc) = server.call("GET", "/openapi.json", None).await;
        assert_eq!(status, 200, "{doc}");
        let mut closed = doc["components"].clone();
        close(&mut closed);
        Checked { server, doc, closed, failures: Vec::new(), succeeded: BTreeSet::new() }
    }

    /// The operation's path template: a literal segment wins over a parameter.
    fn template(&self, method: &str, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap();
        let mut found: Vec<&String> = self.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(t, item)| matches(t, path) && item.get(method.to_lowercase()).is_some())
            .map(|(t, _)| t)
            .collect();
        found.sort_by_key(|t| t.matches('{').count());
        found.first().map(|t| t.to_string())
    }

    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, v) = self.server.call(method, path, body).await;
        let what = format!("{method} {path} -> {status}");
        let Some(template) = self.template(method, path) else {
            self.failures.push(format!("{what}: no documented operation"));
            return (status, v);
        };
        let op = &self.doc["paths"][&template][method.to_lowercase()];
        let Some(schema) =
            op["responses"].get(status.to_string()).map(|r| r.pointer("/content/application~1json/schema"))
        else {
            self.failures
                .push(format!("{what}: undocumented status {}", v.to_string().chars().take(200).collect::<String>()));
            return (status, v);
        };
        let schema = schema.cloned().unwrap_or(json!({}));
        let wrapped = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.closed,
            "allOf": [schema],
        });
        let validator = jsonschema::options().should_validate_formats(true).build(&wrapped).expect("schema compiles");
        let errors: Vec<String> =
            validator.iter_errors(&v).take(5).map(|e| format!("{e} at {}", e.instance_path())).collect();
        if errors.is_empty() {
            if (200..300).contains(&status) {
                self.succeeded.insert((method.to_string(), template));
            }
        } else {
            let text = v.to_string().chars().take(300).collect::<String>();
            self.failures.push(format!("{what} violates its schema: {} -- {text}", errors.join("; ")));
        }
        (status, v)
    }

    /// Applies as `prefix-0`, `prefix-1`, ... until one decision of each wanted outcome is found.
    async fn applications(&mut self, prefix: &str, product: &str, wanted: &[&str]) -> Vec<Value> {
        let mut found: Vec<Option<Value>> = vec![None; wanted.len()];
        for i in 0..80 {
            let body = json!({"applicant_id": format!("{prefix}-{i}"), "product_code": product});
            let (status, d) = self.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!(status, 201, "{d}");
            if let Some(slot) = wanted.iter().zip(&found).position(|(w, f)| f.is_none() && d["outcome"] == *w) {
                found[slot] = Some(d);
            }
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        found.into_iter().map(|d| d.expect("an application with each wanted outcome")).collect()
    }
}

#[tokio::test]
async fn lending_responses_match_their_documented_schemas() {
    for db in database_urls().await {
        let server =
            Server::start(&db, &["--lending-eod-max-days-ahead", "60", "--lending-eod-max-gap-days", "45"]).await;
        let mut api = Checked::new(&server).await;
        let cash = open(&server, gl("gl.cash")).await;
        let deposit = funded_deposit(&server, "borrower-1", &cash, 10_000_00).await;
        let today = chrono::Utc::now().date_naive();

        api.call("GET", "/v1/lending/products", None).await;
        let (status, _) = api
            .call("POST", "/v1/lending/applications", Some(json!({"applicant_id": "X", "product_code": "none"})))
            .await;
        assert_eq!(status, 404);

        // Automated and manual decisions.
        let decisions = api.applications("APP", "instant_consumer", &["approve", "review", "review"]).await;
        let (approved, to_approve, to_decline) = (
            decisions[0]["id"].as_str().unwrap(),
            decisions[1]["id"].as_str().unwrap(),
            decisions[2]["id"].as_str().unwrap(),
        );
        api.call("GET", &format!("/v1/lending/applications/{approved}"), None).await;
        api.call("GET", "/v1/lending/review-queue", None).await;
        let approve = json!({"note": "income confirmed by the employer"});
        let decline = json!({"reason_code": "insufficient_income", "note": "income not supported"});
        let (status, _) =
            api.call("POST", &format!("/v1/lending/review-queue/{to_approve}/approve"), Some(approve.clone())).await;
        assert_eq!(status, 200);
        let (status, _) =
            api.call("POST", &format!("/v1/lending/review-queue/{to_decline}/decline"), Some(decline.clone())).await;
        assert_eq!(status, 200);
        let (status, _) =
            api.call("POST", &format!("/v1/lending/review-queue/{to_approve}/decline"), Some(decline)).await;
        assert_eq!(status, 409);
        // A reviewed application as a lending officer sees it: with its manual review.
        let (_, reviewed) = api.call("GET", &format!("/v1/lending/applications/{to_approve}"), None).await;
        assert!(reviewed["decision"]["manual_review"].is_object(), "{reviewed}");

        // Offer, acceptance and its replay, a loan with repayment and prepayment.
        let (status, offer) = api.call("POST", &format!("/v1/lending/applications/{approved}/offer"), None).await;
        assert_eq!(status, 201, "{offer}");
        let (status, _) = api.call("POST", &format!("/v1/lending/applications/{to_decline}/offer"), None).await;
        assert_eq!(status, 409);
        let offer_id = offer["id"].as_str().unwrap();
        let amount = offer["limit"]["minor"].as_i64().unwrap().min(20_000_00);
        let accept = json!({"amount": amount, "term_months": offer["terms_months"][0], "method": "equal_installment",
                            "deposit_account_id": deposit});
        let accept_path = format!("/v1/lending/offers/{offer_id}/accept");
        let (status, out) = api.call("POST", &accept_path, Some(accept.clone())).await;
        assert_eq!(status, 201, "{out}");
        let (status, _) = api.call("POST", &accept_path, Some(accept)).await;
        assert_eq!(status, 200);
        let loan_id = out["loan"]["id"].as_str().unwrap().to_string();
        api.call("GET", &format!("/v1/lending/loans/{loan_id}"), None).await;
        api.call("GET", "/v1/lending/loans?limit=10", None).await;
        let (status, r) =
            api.call("POST", &format!("/v1/lending/loans/{loan_id}/repayments"), Some(json!({"amount": 100_00}))).await;
        assert_eq!(status, 200, "{r}");
        let prepay = json!({"amount": 2_000_00, "mode": "keep_installment"});
        let (status, p) = api.call("POST", &format!("/v1/lending/loans/{loan_id}/prepayments"), Some(prepay)).await;
        assert_eq!(status, 200, "{p}");

        // A revolving line: accepted undrawn, then a draw (an outcome without allocation).
        let sme = api.applications("SME", "tax_sme", &["approve"]).await;
        let sme_id = sme[0]["id"].as_str().unwrap();
        let (status, line_offer) = api.call("POST", &format!("/v1/lending/applications/{sme_id}/offer"), None).await;
        assert_eq!(status, 201, "{line_offer}");
        let accept = json!({"amount": line_offer["limit"]["minor"], "term_months": 12, "method": "revolving",
                            "deposit_account_id": deposit});
        let (status, line) = api
            .call("POST", &format!("/v1/lending/offers/{}/accept", line_offer["id"].as_str().unwrap()), Some(accept))
            .await;
        assert_eq!(status, 201, "{line}");
        let line_id = line["loan"]["id"].as_str().unwrap();
        let (status, d) =
            api.call("POST", &format!("/v1/lending/loans/{line_id}/draws"), Some(json!({"amount": 1_000_00}))).await;
        assert_eq!(status, 200, "{d}");
        assert!(d.get("allocation").is_none(), "{d}");

        // End of day, and again (already run).
        for _ in 0..2 {
            let (status, r) = api.call("POST", "/v1/lending/eod", Some(json!({"date": today.to_string()}))).await;
            assert_eq!(status, 200, "{r}");
        }

        // Write-off (forced by the admin), its replay, and a repayment it refuses.
        let write_off = json!({"reason": "borrower insolvent", "force": true});
        for _ in 0..2 {
            let (status, w) =
                api.call("POST", &format!("/v1/lending/loans/{loan_id}/write-off"), Some(write_off.clone())).await;
            assert_eq!(status, 200, "{w}");
        }
        let (status, _) =
            api.call("POST", &format!("/v1/lending/loans/{loan_id}/repayments"), Some(json!({"amount": 100_00}))).await;
        assert_eq!(status, 409);

        // Documents.
        let doc = json!({"kind": "invoice", "content": "invoice INV-1", "party_id": "S-1", "reference": "R-1"});
        for want in [201, 409] {
            let (status, _) = api.call("POST", "/v1/lending/documents", Some(doc.clone())).await;
            assert_eq!(status, want);
        }
        let (status, _) = api
            .call(
                "POST",
                "/v1/lending/documents",
                Some(json!({"kind": "other", "content_hash": "abc", "party_id": "S-1"})),
            )
            .await;
        assert_eq!(status, 404);

        // A receivable from registration to financing.
        let core = funded_deposit(&server, "CE-1", &cash, 0).await;
        let supplier = funded_deposit(&server, "S-1", &cash, 0).await;
        let receivable = json!({
            "id": "R-1", "core_enterprise_id": "CE-1", "supplier_id": "S-1", "amount": 500_000_00,
            "issue_date": today.to_string(), "due_date": (today + chrono::Duration::days(120)).to_string(),
            "documents": [{"kind": "order", "content": "order PO-1"}, {"kind": "delivery_receipt", "content": "receipt GR-1"}]
        });
        let (status, _) = api.call("POST", "/v1/lending/receivables", Some(receivable)).await;
        assert_eq!(status, 201);
        let (_, before) = api.call("GET", "/v1/lending/receivables/R-1", None).await;
        assert!(before["loan_id"].is_null(), "{before}");
        let (status, _) =
            api.call("POST", "/v1/lending/receivables/R-1/confirm", Some(json!({"core_enterprise_id": "CE-1"}))).await;
        assert_eq!(status, 200);
        let finance = json!({"supplier_id": "S-1", "amount": 300_000_00, "deposit_account_id": supplier,
                             "repayment_account_id": core});
        for want in [201, 409] {
            let (status, f) = api.call("POST", "/v1/lending/receivables/R-1/finance", Some(finance.clone())).await;
            assert_eq!(status, want, "{f}");
        }
        let (_, after) = api.call("GET", "/v1/lending/receivables/R-1", None).await;
        assert!(after["loan_id"].is_string(), "{after}");

        // The cockpit's aggregates over what this flow made.
        let (_, funnel) = api.call("GET", "/v1/lending/funnel?days=30", None).await;
        assert!(funnel["applied"].as_i64().unwrap() >= 2 && funnel["disbursed"].as_i64().unwrap() >= 1, "{funnel}");
        let (_, portfolio) = api.call("GET", "/v1/lending/portfolio", None).await;
        assert!(!portfolio["cells"].as_array().unwrap().is_empty(), "{portfolio}");

        assert!(
            api.failures.is_empty(),
            "{} responses break their schema:\n{}",
            api.failures.len(),
            api.failures.join("\n")
        );
        let documented: BTreeSet<(String, String)> = api.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.starts_with("/v1/lending"))
            .flat_map(|(path, item)| item.as_object().unwrap().keys().map(|m| (m.to_uppercase(), path.clone())))
            .collect();
        let unchecked: Vec<_> = documented.difference(&api.succeeded).collect();
        assert!(unchecked.is_empty(), "lending operations without a checked success: {unchecked:?}");
    }
}
