//! The API contract: the OpenAPI document the server publishes is what the server does.
//!
//! Against the real binary with a small demo bank (SQLite, and PostgreSQL when DATABASE_URL is
//! set), every operation in `/openapi.json` gets generated requests: a valid one (parameters and
//! body generated from the document's schemas, ids taken from the demo bank), one without a key,
//! one with a key whose role lacks permissions, malformed / mistyped / empty bodies, a body sent
//! as text, unparseable and unknown path ids, and out-of-range query numbers. The test fails on
//! a status the operation does not document, a JSON response that violates the schema
//! documented for its status, and any 5xx.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::{json, Value};

struct Contract {
    doc: Value,
    failures: Vec<String>,
    calls: usize,
}

/// Follows a `$ref` into the document's components.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}")))
        }
        None => schema,
    }
}

fn schema_type(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

/// A value that satisfies `schema` (as far as the document says), preferring examples.
fn generate(doc: &Value, schema: &Value, ids: &HashMap<String, Value>, depth: usize) -> Value {
    let schema = resolve(doc, schema);
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(v) = schema.get("enum").and_then(|e| e.as_array()).and_then(|e| e.first()) {
        return v.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(|v| v.as_array())
            .and_then(|v| v.iter().find(|s| schema_type(resolve(doc, s)) != Some("null")).or(v.first()))
        {
            return generate(doc, first, ids, depth);
        }
    }
    if let Some(all) = schema.get("allOf").and_then(|v| v.as_array()) {
        let mut out = serde_json::Map::new();
        for s in all {
            if let Value::Object(o) = generate(doc, s, ids, depth) {
                out.extend(o);
            }
        }
        return Value::Object(out);
    }
    match schema_type(schema) {
        Some("object") | None if schema.get("properties").is_some() => {
            let mut out = serde_json::Map::new();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(|r| r.as_array())
                .map_or(Vec::new(), |r| r.iter().filter_map(Value::as_str).collect());
            if depth < 6 {
                for (name, prop) in schema["properties"].as_object().unwrap() {
                    if required.contains(&name.as_str()) {
                        let value = ids.get(name).cloned().unwrap_or_else(|| generate(doc, prop, ids, depth + 1));
                        out.insert(name.clone(), value);
                    }
                }
            }
            Value::Object(out)
        }
        Some("object") => json!({}),
        Some("array") => match schema.get("items") {
            Some(items) if depth < 6 => json!([generate(doc, items, ids, depth + 1)]),
            _ => json!([]),
        },
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("uuid") => json!(uuid::Uuid::now_v7().to_string()),
            Some("date") => json!(chrono::Utc::now().date_naive().to_string()),
            Some("date-time") => json!(chrono::Utc::now().to_rfc3339()),
            _ => json!("contract-test"),
        },
        Some("integer") => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1).max(1)),
        Some("number") => json!(1.0),
        Some("boolean") => json!(false),
        _ => json!({}),
    }
}

impl Contract {
    /// Checks one response against the operation's documented responses.
    fn check(&mut self, what: &str, op: &Value, status: u16, content_type: &str, body: &str) {
        self.calls += 1;
        if status >= 500 {
            self.failures.push(format!("{what}: {status} {body}"));
            return;
        }
        let responses = &op["responses"];
        let Some(documented) = responses.get(status.to_string()).or_else(|| responses.get("default")) else {
            self.failures.push(format!(
                "{what}: undocumented status {status} (documented: {:?}) {}",
                responses.as_object().map(|r| r.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                body.chars().take(200).collect::<String>()
            ));
            return;
        };
        let documented = resolve(&self.doc, documented);
        let Some(schema) = documented.pointer("/content/application~1json/schema") else { return };
        if !content_type.starts_with("application/json") {
            self.failures.push(format!("{what}: {status} documented as JSON, served as {content_type:?}"));
            return;
        }
        let Ok(instance) = serde_json::from_str::<Value>(body) else {
            self.failures.push(format!("{what}: {status} body is not JSON"));
            return;
        };
        let wrapped = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::validator_for(&wrapped).expect("the documented schema compiles");
        let errors: Vec<String> =
            validator.iter_errors(&instance).take(3).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if !errors.is_empty() {
            let text = body.chars().take(300).collect::<String>();
            self.failures.push(format!("{what}: {status} violates its schema: {} -- {text}", errors.join("; ")));
        }
    }
}

async fn send(
    server: &Server,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<(&str, String)>,
) -> (u16, String, String) {
    let mut request = server.http.request(method.parse().unwrap(), server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, content_type, response.text().await.unwrap_or_default())
}

/// Ids of real things in the demo bank, by path-parameter or field name.
async fn demo_ids(server: &Server) -> HashMap<String, Value> {
    let mut ids = HashMap::new();
    let first =
        |v: &Value, list: &str, field: &str| v[list].as_array().and_then(|a| a.first()).map(|x| x[field].clone());
    let (_, accounts) = server.call("GET", "/v1/accounts?limit=5", None).await;
    if let Some(id) = first(&accounts, "accounts", "id") {
        ids.insert("account".into(), id.clone());
        let (_, entries) = server.call("GET", &format!("/v1/accounts/{}/entries", id.as_str().unwrap()), None).await;
        if let Some(t) = first(&entries, "entries", "transfer_id") {
            ids.insert("transfer".into(), t);
        }
    }
    let (_, customers) = server.call("GET", "/v1/customers?limit=5", None).await;
    if let Some(id) = first(&customers, "customers", "id") {
        ids.insert("customer".into(), id);
    }
    let (_, loans) = server.call("GET", "/v1/lending/loans?limit=5", None).await;
    if let Some(id) = first(&loans, "loans", "id") {
        ids.insert("loan".into(), id);
    }
    let (_, queue) = server.call("GET", "/v1/lending/review-queue", None).await;
    if let Some(id) = first(&queue, "items", "decision_id") {
        ids.insert("review".into(), id);
    }
    let event = json!({"event_id": "contract-1", "kind": "login", "occurred_at": "2026-11-20T10:00:00Z",
                       "customer_id": "C-contract", "channel": "web", "device_fingerprint": "dev-contract"});
    let (_, decision) = server.call("POST", "/v1/risk/decisions", Some(event)).await;
    ids.insert("decision".into(), decision["id"].clone());
    let application = json!({"applicant_id": "CONTRACT-1", "product_code": "instant_consumer"});
    let (_, app) = server.call("POST", "/v1/lending/applications", Some(application)).await;
    ids.insert("application".into(), app["id"].clone());
    ids.insert("tag".into(), json!("kind_individual"));
    ids.insert("segment".into(), json!("digital_sme"));
    ids.insert("version".into(), json!(1));
    ids.insert("kind".into(), json!("black"));
    ids.insert("subject".into(), json!("device"));
    ids.insert("value".into(), json!("dev-contract"));
    ids.insert("product_code".into(), json!("instant_consumer"));
    ids.insert("currency".into(), json!("CNY"));
    ids
}

/// The id a path parameter gets in a valid request.
fn path_value(path: &str, name: &str, ids: &HashMap<String, Value>) -> Option<String> {
    let family = if name != "id" {
        name.trim_end_matches("_id")
    } else if path.starts_with("/v1/accounts") {
        "account"
    } else if path.starts_with("/v1/transfers") {
        "transfer"
    } else if path.starts_with("/v1/customers") {
        "customer"
    } else if path.starts_with("/v1/lending/loans") {
        "loan"
    } else if path.starts_with("/v1/lending/applications") {
        "application"
    } else if path.starts_with("/v1/risk/decisions") {
        "decision"
    } else if path.starts_with("/v1/tags") {
        "tag"
    } else if path.starts_with("/v1/segments") {
        "segment"
    } else {
        return None;
    };
    let family = if family == "decision" && path.contains("review-queue") { "review" } else { family };
    ids.get(family).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

fn fill_path(path: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(&value(&rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_operation_answers_only_what_the_document_says() {
    for db in database_urls().await {
        let server = Server::start(&db, &["--demo", "--customers", "20"]).await;
        let key = server.key().to_string();
        let (_, monitoring) = server
            .call("POST", "/v1/api-keys", Some(json!({"name": "contract-monitoring", "role": "monitoring"})))
            .await;
        let monitoring = monitoring["key"].as_str().unwrap().to_string();
        let (status, doc) = server.call("GET", "/openapi.json", None).await;
        assert_eq!(status, 200, "{doc}");
        let ids = demo_ids(&server).await;
        let mut contract = Contract { doc: doc.clone(), failures: Vec::new(), calls: 0 };

        // Reads first, then writes, deletes last: the demo bank's ids stay usable.
        let mut ops: Vec<(String, String, Value)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        let rank = |m: &str| ["GET", "PUT", "PATCH", "POST", "DELETE"].iter().position(|x| *x == m).unwrap_or(9);
        ops.sort_by_key(|(m, p, _)| (rank(m), p.clone()));
        assert!(ops.len() >= 70, "the document lists {} operations", ops.len());

        for (method, path, op) in &ops {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let secured = op.get("security").and_then(|s| s.as_array()).is_some_and(|s| !s.is_empty());
            let path_value_of = |name: &str| -> String {
                path_value(path, name, &ids).unwrap_or_else(|| {
                    let schema =
                        params.iter().find(|p| p["name"] == name).map(|p| p["schema"].clone()).unwrap_or_default();
                    match generate(&doc, &schema, &ids, 0) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    }
                })
            };
            let valid_path = fill_path(path, path_value_of);
            let query: Vec<String> = params
                .iter()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| {
                    format!(
                        "{}={}",
                        p["name"].as_str().unwrap(),
                        generate(&doc, &p["schema"], &ids, 0).to_string().trim_matches('"')
                    )
                })
                .collect();
            let url = if query.is_empty() { valid_path.clone() } else { format!("{valid_path}?{}", query.join("&")) };
            let body_schema = op.pointer("/requestBody/content/application~1json/schema").cloned();
            let body = body_schema.as_ref().map(|s| generate(&doc, s, &ids, 0).to_string());
            let json_body = |b: &str| Some(("application/json", b.to_string()));

            let what = |variant: &str| format!("{method} {path} [{variant}]");
            let (s, ct, text) = send(&server, Some(&key), method, &url, body.as_deref().and_then(json_body)).await;
            contract.check(&what("valid"), op, s, &ct, &text);
            if secured {
                let (s, ct, text) = send(&server, None, method, &url, body.as_deref().and_then(json_body)).await;
                if s != 401 {
                    contract.failures.push(format!("{}: {s} without a key", what("no key")));
                }
                contract.check(&what("no key"), op, s, &ct, &text);
                let (s, ct, text) =
                    send(&server, Some(&monitoring), method, &url, body.as_deref().and_then(json_body)).await;
                contract.check(&what("monitoring role"), op, s, &ct, &text);
            }
            if body_schema.is_some() {
                for (variant, content_type, text) in [
                    ("malformed json", "application/json", "{\"unterminated"),
                    ("json array", "application/json", "[1, 2]"),
                    ("empty object", "application/json", "{}"),
                    ("text body", "text/plain", "{}"),
                ] {
                    let (s, ct, body) =
                        send(&server, Some(&key), method, &url, Some((content_type, text.into()))).await;
                    contract.check(&what(variant), op, s, &ct, &body);
                }
            }
            if path.contains('{') {
                for (variant, bad) in
                    [("unparseable id", "not%20an%20id"), ("unknown id", "0190f0b5-0000-7000-8000-000000000000")]
                {
                    let bad_path = fill_path(path, |_| bad.to_string());
                    let (s, ct, text) =
                        send(&server, Some(&key), method, &bad_path, body.as_deref().and_then(json_body)).await;
                    contract.check(&what(variant), op, s, &ct, &text);
                }
            }
            for p in params.iter().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap();
                for bad in ["not-a-number", "-1", "99999999999"] {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    let (s, ct, text) =
                        send(&server, Some(&key), method, &format!("{url}{sep}{name}={bad}"), None).await;
                    contract.check(&what(&format!("query {name}={bad}")), op, s, &ct, &text);
                }
            }
        }
        assert!(contract.calls > 300, "{} calls", contract.calls);
        assert!(
            contract.failures.is_empty(),
            "{} of {} responses break the contract:\n{}",
            contract.failures.len(),
            contract.calls,
            contract.failures.join("\n")
        );
    }
}
