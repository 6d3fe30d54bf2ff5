//! The HTTP API end to end: the real server binary on SQLite (and PostgreSQL when configured).

mod common;

use common::*;
use serde_json::{json, Value};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn auth_roles_and_system_endpoints() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let (status, health) = server.call_as(None, "GET", "/health", None).await;
        assert_eq!(status, 200);
        assert_eq!(health["status"], "ok");
        for path in ["/v1/accounts", "/metrics"] {
            let (status, body) = server.call_as(None, "GET", path, None).await;
            assert_eq!(status, 401, "{path} without a key");
            assert_eq!(code(&body), "unauthorized");
        }
        let (status, _) = server.call_as(Some("dbk_nope_nope"), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 401);

        // Least privilege: an auditor reads but cannot write or issue keys.
        let (status, key) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "audit team", "role": "auditor"}))).await;
        assert_eq!(status, 201, "{key}");
        let auditor = key["key"].as_str().unwrap().to_string();
        assert_eq!(server.call_as(Some(&auditor), "GET", "/v1/accounts", None).await.0, 200);
        let (status, body) = server.call_as(Some(&auditor), "POST", "/v1/accounts", Some(gl("gl.x"))).await;
        assert_eq!((status, code(&body)), (403, "forbidden"));
        let (status, _) =
            server.call_as(Some(&auditor), "POST", "/v1/api-keys", Some(json!({"name": "x", "role": "admin"}))).await;
        assert_eq!(status, 403);
        // A burst of first requests with a fresh key: one argon2 verification, every request served.
        let (_, burst_key) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "partner app", "role": "auditor"}))).await;
        let burst_key = burst_key["key"].as_str().unwrap().to_string();
        let burst = (0..32).map(|_| server.call_as(Some(&burst_key), "GET", "/v1/accounts", None));
        let statuses: Vec<u16> = futures::future::join_all(burst).await.into_iter().map(|(s, _)| s).collect();
        assert_eq!(statuses, vec![200; 32]);
        let wrong = format!("{}x", &burst_key[..burst_key.len() - 1]);
        assert_eq!(server.call_as(Some(&wrong), "GET", "/v1/accounts", None).await.0, 401);
        // Revoked keys stop working at once.
        let (status, _) = server.call("DELETE", &format!("/v1/api-keys/{}", key["id"].as_str().unwrap()), None).await;
        assert_eq!(status, 204);
        assert_eq!(server.call_as(Some(&auditor), "GET", "/v1/accounts", None).await.0, 401);

        let (status, spec) = server.call("GET", "/openapi.json", None).await;
        assert_eq!(status, 200);
        for path in ["/v1/accounts", "/v1/transfers", "/v1/transfers/batch", "/v1/transfers/{id}/post"] {
            assert!(spec["paths"][path].is_object(), "openapi lacks {path}");
        }
        server.call("GET", "/v1/accounts", None).await;
        let (status, metrics) = server.call("GET", "/metrics", None).await;
        assert_eq!(status, 200);
        let text = metrics.as_str().unwrap();
        assert!(text.contains("digibank_http_requests_total{method=\"GET\",route=\"/v1/accounts\",status=\"200\"}"));
        assert!(text.contains("digibank_ledger_accounts 0"));
        let (status, body) = server.call("GET", "/v1/nothing-here", None).await;
        assert_eq!((status, code(&body)), (404, "not_found"));
    }
}

/// The explorer at `/docs` (and `/`) is Swagger UI served from the binary: the page, its assets
/// and the OpenAPI document load without a key and from this server only.
#[tokio::test]
async fn api_explorer_is_vendored_swagger_ui() {
    let db = database_urls().await.remove(0);
    let server = Server::start(&db, &[]).await;
    let get = |path: &str| server.http.get(server.url(path)).send();
    let header = |response: &reqwest::Response, name: &str| {
        response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    };

    // `/` is the cockpit (tests/cockpit_browser.rs).
    for path in ["/docs"] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(header(&response, "content-type").starts_with("text/html"), "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("<title>digibank API</title>"), "{path}: {page}");
        assert!(page.contains("/docs/assets/swagger-ui-bundle.js"), "{path}: {page}");
        assert!(page.contains("/docs/assets/swagger-ui.css"), "{path}: {page}");
        // Every URL the page links is this server's, and is served.
        for scheme in ["http://", "https://"] {
            for (at, _) in page.match_indices(scheme) {
                assert!(page[at..].starts_with(&server.base), "{path} names another host: {}", &page[at..]);
            }
        }
        for attribute in ["src=\"", "href=\""] {
            for piece in page.split(attribute).skip(1) {
                let link = &piece[..piece.find('"').unwrap()];
                assert!(link.starts_with("/docs/assets/"), "{path} links {link}");
                assert_eq!(get(link).await.unwrap().status(), 200, "{link}");
            }
        }
    }

    // The start-up script points Swagger UI at this server's document and names no other host.
    let response = get("/docs/assets/init.js").await.unwrap();
    assert!(header(&response, "content-type").starts_with("application/javascript"));
    let init = response.text().await.unwrap();
    assert!(init.contains("\"/openapi.json\"") && init.contains("persistAuthorization: true"), "{init}");
    assert!(!init.contains("http://") && !init.contains("https://"), "{init}");

    for (file, content_type) in [("swagger-ui-bundle.js", "application/javascript"), ("swagger-ui.css", "text/css")] {
        let response = get(&format!("/docs/assets/{file}")).await.unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert!(header(&response, "content-type").starts_with(content_type), "{file}");
        assert!(header(&response, "cache-control").contains("max-age=31536000"), "{file}");
        let body = response.bytes().await.unwrap();
        assert!(body.len() > 100_000, "{file} is only {} bytes", body.len());
    }
    let bundle = get("/docs/assets/swagger-ui-bundle.js").await.unwrap().text().await.unwrap();
    assert!(bundle.contains("SwaggerUIBundle"));

    // An unknown asset is the API's JSON 404.
    let (status, body) = server.call_as(None, "GET", "/docs/assets/nope.js", None).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");

    // The document loads without a key, declares the bearer scheme the Authorize button uses,
    // and does not ask for a key to read itself.
    let (status, spec) = server.call_as(None, "GET", "/openapi.json", None).await;
    assert_eq!(status, 200, "{spec}");
    assert_eq!(spec["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    assert!(spec["paths"]["/openapi.json"]["get"]["security"].is_null());
    assert_eq!(spec["paths"]["/v1/accounts"]["get"]["security"][0]["api_key"], json!([]));
    // "Try it out" builds requests from the parameters: a query parameter declared as a path
    // one is a required field that has nowhere to go, and the operation cannot be tried.
    let mut misplaced = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if parameter["in"] == "path" && !path.contains(&format!("{{{name}}}")) {
                    misplaced.push(format!("{method} {path} {name}"));
                }
            }
        }
    }
    assert!(misplaced.is_empty(), "query parameters declared in the path: {misplaced:?}");
    let limit = spec["paths"]["/v1/accounts"]["get"]["parameters"].as_array().unwrap();
    assert!(limit.iter().any(|p| p["name"] == "limit" && p["in"] == "query"), "{limit:?}");
}

#[tokio::test]
async fn transfers_balances_statements_and_holds() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let cash = open(&server, gl("gl.cash")).await;
        let alice = open(&server, deposit("C1")).await;
        let bob = open(&server, deposit("C2")).await;

        let deposit_tx = transfer(&cash, &alice, 100_000);
        let (status, t) = server.call("POST", "/v1/transfers", Some(deposit_tx.clone())).await;
        assert_eq!(status, 201, "{t}");
        assert_eq!(t["seq"], 1);
        assert_eq!(t["hash"].as_str().unwrap().len(), 64);
        // A retry returns the first result with 200.
        let (status, again) = server.call("POST", "/v1/transfers", Some(deposit_tx)).await;
        assert_eq!(status, 200);
        assert_eq!(again, t);
        assert_eq!(posted_balance(&server, &alice).await, 100_000);

        // Two-phase: hold 30,000, post 20,000 of it; retrying the post is idempotent.
        let mut hold = transfer(&alice, &bob, 30_000);
        hold["kind"] = json!("pending");
        let (status, h) = server.call("POST", "/v1/transfers", Some(hold)).await;
        assert_eq!(status, 201, "{h}");
        let hold_id = h["id"].as_str().unwrap();
        let (_, b) = server.call("GET", &format!("/v1/accounts/{alice}/balance"), None).await;
        assert_eq!((b["posted"].as_i64(), b["available"].as_i64()), (Some(100_000), Some(70_000)));
        let (status, p) =
            server.call("POST", &format!("/v1/transfers/{hold_id}/post"), Some(json!({"amount": 20_000}))).await;
        assert_eq!(status, 201, "{p}");
        let (status, p2) =
            server.call("POST", &format!("/v1/transfers/{hold_id}/post"), Some(json!({"amount": 20_000}))).await;
        assert_eq!((status, &p2), (200, &p));
        let (status, body) = server.call("POST", &format!("/v1/transfers/{hold_id}/void"), None).await;
        assert_eq!((status, code(&body)), (409, "pending_transfer_already_posted"));
        assert_eq!(posted_balance(&server, &alice).await, 80_000);
        assert_eq!(posted_balance(&server, &bob).await, 20_000);

        // Void with no body.
        let mut hold = transfer(&alice, &bob, 5_000);
        hold["kind"] = json!("pending");
        let (_, h) = server.call("POST", "/v1/transfers", Some(hold)).await;
        let (status, _) = server.call("POST", &format!("/v1/transfers/{}/void", h["id"].as_str().unwrap()), None).await;
        assert_eq!(status, 201);

        // Batch with one result per transfer.
        let batch = json!({"transfers": [transfer(&alice, &bob, 1_000), transfer(&alice, &bob, 10_000_000), transfer(&bob, &alice, 500)]});
        let (status, r) = server.call("POST", "/v1/transfers/batch", Some(batch)).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!((r["created"].as_i64(), r["failed"].as_i64()), (Some(2), Some(1)));
        assert_eq!(r["results"][1]["status"], "failed");
        assert_eq!(r["results"][1]["code"], "insufficient_funds");
        assert_eq!(posted_balance(&server, &alice).await, 79_500);

        // Statement pages and balance as of the first transfer.
        let (status, page) = server.call("GET", &format!("/v1/accounts/{alice}/entries?limit=2"), None).await;
        assert_eq!(status, 200);
        assert_eq!(page["entries"].as_array().unwrap().len(), 2);
        assert_eq!(page["entries"][0]["side"], "credit");
        let next = page["next_after"].as_i64().unwrap();
        let (_, rest) = server.call("GET", &format!("/v1/accounts/{alice}/entries?after={next}&limit=100"), None).await;
        assert_eq!(rest["entries"].as_array().unwrap().len(), 5);
        assert!(rest["next_after"].is_null());
        let (status, b) =
            server.call("GET", &format!("/v1/accounts/{alice}/balance?as_of={}", t["created_at"]), None).await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["posted"], 100_000);
        let (status, b) =
            server.call("GET", &format!("/v1/accounts/{alice}/balance?as_of=2000-01-01T00:00:00Z"), None).await;
        assert_eq!((status, b["posted"].as_i64()), (200, Some(0)));
        let (status, t2) = server.call("GET", &format!("/v1/transfers/{}", t["id"].as_str().unwrap()), None).await;
        assert_eq!((status, &t2), (200, &t));
        let (ok, out) = verify(&db).await;
        assert!(ok, "{out}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let cash = open(&server, gl("gl.cash")).await;
        let alice = open(&server, deposit("C1")).await;
        let bob = open(&server, deposit("C2")).await;
        let usd = open(&server, json!({"currency": "USD", "kind": "asset", "owner_type": "bank"})).await;
        let frozen = open(&server, deposit("C3")).await;
        let closed = open(&server, deposit("C4")).await;
        server.call("POST", "/v1/transfers", Some(transfer(&cash, &alice, 1_000))).await;
        server.call("POST", "/v1/transfers", Some(transfer(&cash, &frozen, 1_000))).await;
        assert_eq!(server.call("POST", &format!("/v1/accounts/{frozen}/freeze"), None).await.0, 200);
        assert_eq!(server.call("POST", &format!("/v1/accounts/{closed}/close"), None).await.0, 200);
        let (status, body) = server.call("POST", &format!("/v1/accounts/{alice}/close"), None).await;
        assert_eq!((status, code(&body)), (409, "non_zero_balance"));
        let existing = transfer(&alice, &bob, 10);
        server.call("POST", "/v1/transfers", Some(existing.clone())).await;
        let entries_before = journal_entries(&server).await;

        let unknown = uuid::Uuid::now_v7().to_string();
        let mut conflicting = existing.clone();
        conflicting["amount"] = json!(11);
        let cases: Vec<(Value, u16, &str)> = vec![
            (transfer(&unknown, &bob, 1), 404, "debit_account_not_found"),
            (transfer(&alice, &unknown, 1), 404, "credit_account_not_found"),
            (transfer(&alice, &usd, 1), 422, "currency_mismatch"),
            (transfer(&alice, &bob, 0), 400, "amount_must_be_positive"),
            (transfer(&alice, &bob, -100), 400, "amount_must_be_positive"),
            (transfer(&alice, &bob, 1_000_000), 422, "insufficient_funds"),
            (transfer(&frozen, &bob, 1), 422, "debit_account_frozen"),
            (transfer(&alice, &closed, 1), 422, "credit_account_closed"),
            (transfer(&cash, &bob, i64::MAX), 422, "overflow"),
            (conflicting, 409, "idempotency_conflict"),
        ];
        for (body, expected_status, expected_code) in cases {
            let (status, response) = server.call("POST", "/v1/transfers", Some(body.clone())).await;
            assert_eq!((status, code(&response)), (expected_status, expected_code), "{body}");
            assert!(response["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        // Amount beyond i64, wrong types, unknown fields: well-formed JSON of the wrong shape.
        let raw = format!(
            r#"{{"id":"{}","debit_account_id":"{alice}","credit_account_id":"{bob}","amount":99999999999999999999,"currency":"CNY"}}"#,
            uuid::Uuid::now_v7()
        );
        let post_raw = |body: String| {
            server
                .http
                .post(server.url("/v1/transfers"))
                .bearer_auth(server.key())
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let response = post_raw(raw).await.unwrap();
        assert_eq!(response.status().as_u16(), 422);
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "invalid_request");
        assert!(body["error"]["message"].as_str().unwrap().contains("amount"), "{body}");
        let response = post_raw("{not json".into()).await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(code(&response.json::<Value>().await.unwrap()), "malformed_json");
        let mut unknown_field = transfer(&alice, &bob, 1);
        unknown_field["colour"] = json!("red");
        let (status, body) = server.call("POST", "/v1/transfers", Some(unknown_field)).await;
        assert_eq!((status, code(&body)), (422, "unknown_field"));
        let (status, body) = server.call("GET", "/v1/accounts/not-a-uuid", None).await;
        assert_eq!((status, code(&body)), (400, "invalid_path"));
        let (status, body) = server.call("GET", &format!("/v1/accounts/{alice}/balance?as_of=yesterday"), None).await;
        assert_eq!((status, code(&body)), (400, "invalid_query"));
        let (status, body) = server.call("GET", &format!("/v1/accounts/{unknown}"), None).await;
        assert_eq!((status, code(&body)), (404, "account_not_found"));
        let (status, body) = server
            .call("POST", "/v1/accounts", Some(json!({"currency": "cny", "kind": "asset", "owner_type": "bank"})))
            .await;
        assert_eq!((status, code(&body)), (422, "invalid_request"));
        let (status, body) = server
            .call(
                "POST",
                "/v1/accounts",
                Some(json!({"currency": "CNY", "kind": "liability", "owner_type": "customer"})),
            )
            .await;
        assert_eq!((status, code(&body)), (422, "invalid_account"));
        // Oversized batch: rejected whole.
        let big: Vec<Value> = (0..8191).map(|_| transfer(&alice, &bob, 1)).collect();
        let (status, body) = server.call("POST", "/v1/transfers/batch", Some(json!({"transfers": big}))).await;
        assert_eq!((status, code(&body)), (413, "batch_too_large"));
        let (status, body) = server.call("POST", "/v1/transfers/batch", Some(json!({"transfers": []}))).await;
        assert_eq!((status, code(&body)), (400, "empty_batch"));

        // Nothing was written by any of the above.
        let entries_after = journal_entries(&server).await;
        assert_eq!(entries_before, entries_after);
        assert_eq!(posted_balance(&server, &alice).await, 990);
        assert_eq!(posted_balance(&server, &bob).await, 10);
        let (ok, out) = verify(&db).await;
        assert!(ok, "{out}");
    }
}
