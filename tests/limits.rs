//! Limits at the HTTP edge, against the real binary on SQLite and PostgreSQL (when
//! `DATABASE_URL` is set): rate limits per key, role and client IP (429 with `Retry-After` and
//! the `RateLimit-*` headers), body size limits per route (413), unknown fields (422) and the
//! security headers every response carries.

mod common;

use common::*;
use serde_json::{json, Value};

/// A config file with small rates: reads burst 3 by default, 6 for auditors, public routes 4
/// per client IP.
fn small_limits_config() -> std::path::PathBuf {
    let dir = harness::temp_dir("digibank-limits");
    let path = dir.join("digibank.toml");
    std::fs::write(
        &path,
        "[rate_limits.default]\nread = \"1/min burst 3\"\nauth = \"1/min burst 4\"\n\
         [rate_limits.roles.auditor]\nread = \"1/min burst 6\"\n",
    )
    .expect("write config");
    path
}

async fn issue(server: &Server, role: &str) -> String {
    let (status, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": role, "role": role}))).await;
    assert_eq!(status, 201, "{issued}");
    issued["key"].as_str().expect("key").to_string()
}

/// (status, headers, body) of a GET with an optional key.
async fn get(server: &Server, key: Option<&str>, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = server.http.get(server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.expect("body");
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().expect("ASCII header").to_string())
}

#[tokio::test]
async fn bursts_over_the_rate_are_refused_per_key_and_role() {
    let config = small_limits_config();
    for url in database_urls().await {
        let server = Server::start(&url, &["--config", config.to_str().unwrap()]).await;
        let (teller_a, teller_b, auditor) =
            (issue(&server, "teller").await, issue(&server, "teller").await, issue(&server, "auditor").await);

        for expected_remaining in [2, 1, 0] {
            let (status, headers, body) = get(&server, Some(&teller_a), "/v1/accounts").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("3"));
            assert_eq!(header(&headers, "ratelimit-remaining"), Some(expected_remaining.to_string()));
            assert!(header(&headers, "ratelimit-reset").is_some());
        }
        let (status, headers, body) = get(&server, Some(&teller_a), "/v1/accounts").await;
        assert_error(status, &body, 429, "rate_limited");
        assert_eq!(body["error"]["details"]["class"], "read", "{body}");
        let retry: u64 = header(&headers, "retry-after").expect("Retry-After").parse().expect("seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header(&headers, "ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(header(&headers, "ratelimit-reset"), Some(retry.to_string()));
        // Before the body is read: a throttled write is still a write of its own class.
        let (status, body) = server.call_as(Some(&teller_a), "POST", "/v1/transfers", Some(json!({}))).await;
        assert_eq!(status, 422, "writes have their own rate: {body}");

        // Another key of the same role has its own bucket.
        let (status, _, body) = get(&server, Some(&teller_b), "/v1/accounts").await;
        assert_eq!(status, 200, "{body}");

        // The auditor role's override: a burst of 6.
        for _ in 0..6 {
            let (status, headers, body) = get(&server, Some(&auditor), "/v1/accounts").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("6"));
        }
        let (status, _, body) = get(&server, Some(&auditor), "/v1/accounts").await;
        assert_error(status, &body, 429, "rate_limited");

        // Refusals are counted by class.
        let (status, metrics) = server.call("GET", "/metrics", None).await;
        assert_eq!(status, 200);
        let metrics = metrics.as_str().expect("metrics text");
        assert!(metrics.contains("digibank_http_rate_limited_total{class=\"read\"} 2"), "{metrics}");

        // Public routes: per client IP.
        for _ in 0..4 {
            let (status, _, body) = get(&server, None, "/health").await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, headers, body) = get(&server, None, "/openapi.json").await;
        assert_error(status, &body, 429, "rate_limited");
        assert_eq!(body["error"]["details"]["class"], "auth", "{body}");
        assert!(header(&headers, "retry-after").is_some());
    }
}

#[tokio::test]
async fn bodies_are_bounded_per_route_and_unknown_fields_refused() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        // 64 KiB for an account; the name alone is 100 KiB.
        let mut big = deposit("c1");
        big["name"] = json!("x".repeat(100 * 1024));
        let (status, body) = server.call("POST", "/v1/accounts", Some(big)).await;
        assert_error(status, &body, 413, "payload_too_large");
        // The batch takes 8 MiB: 300 transfers with metadata are well over 64 KiB.
        let cash = open(&server, gl("gl.cash")).await;
        let acct = open(&server, deposit("c1")).await;
        let transfers: Vec<Value> = (0..300)
            .map(|_| {
                let mut t = transfer(&cash, &acct, 1);
                t["metadata"] = json!({"note": "y".repeat(300)});
                t
            })
            .collect();
        let batch = json!({ "transfers": transfers });
        assert!(batch.to_string().len() > 64 * 1024);
        let (status, body) = server.call("POST", "/v1/transfers/batch", Some(batch)).await;
        assert!(status != 413 && status < 500, "{status} {body}");

        // Mass assignment: a field the request does not take is refused and named.
        let (status, body) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "n", "role": "teller", "is_admin": true}))).await;
        assert_error(status, &body, 422, "unknown_field");
        assert_eq!(body["error"]["details"]["field"], "is_admin", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("is_admin"), "{body}");
        // Also in a request type of a domain crate.
        let mut t = transfer(&cash, &acct, 1);
        t["owner_override"] = json!("bank");
        let (status, body) = server.call("POST", "/v1/transfers", Some(t)).await;
        assert_error(status, &body, 422, "unknown_field");
        assert_eq!(body["error"]["details"]["field"], "owner_override", "{body}");
        // A nested object of a domain type is closed too, and the path says where.
        let receivable = json!({
            "id": "RCV-1", "core_enterprise_id": "CE-001", "supplier_id": "S-1001", "amount": 100,
            "issue_date": "2026-01-01", "due_date": "2026-06-30",
            "documents": [{"kind": "invoice", "content": "x", "verified": true}]
        });
        let (status, body) = server.call("POST", "/v1/lending/receivables", Some(receivable)).await;
        assert_error(status, &body, 422, "unknown_field");
        assert_eq!(body["error"]["details"]["path"], "documents[0].verified", "{body}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let key = server.key().to_string();
        let api = [
            (Some(key.as_str()), "/v1/accounts"),
            (Some(key.as_str()), "/v1/accounts/not-an-id"),
            (Some(key.as_str()), "/no/such/route"),
            (None, "/v1/accounts"),
            (None, "/health"),
            (None, "/openapi.json"),
            (Some(key.as_str()), "/metrics"),
        ];
        let pages = [
            (None, "/docs"),
            (None, "/"),
            (None, "/docs/assets/init.js"),
            (None, "/docs/assets/swagger-ui.css"),
            (None, "/cockpit/assets/app.js"),
        ];
        for (key, path) in api.iter().chain(pages.iter()) {
            let (status, headers, _) = get(&server, *key, path).await;
            let what = format!("GET {path} ({status})");
            assert_eq!(header(&headers, "x-content-type-options").as_deref(), Some("nosniff"), "{what}");
            assert_eq!(header(&headers, "x-frame-options").as_deref(), Some("DENY"), "{what}");
            assert_eq!(header(&headers, "referrer-policy").as_deref(), Some("no-referrer"), "{what}");
            assert!(header(&headers, "strict-transport-security").is_some_and(|h| h.starts_with("max-age=")), "{what}");
            let csp = header(&headers, "content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
            assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
            assert!(headers.get("server").is_none(), "{what}: a Server header");
            assert!(headers.get("x-powered-by").is_none(), "{what}");
        }
        for (key, path) in api {
            let (_, headers, _) = get(&server, key, path).await;
            assert_eq!(header(&headers, "cache-control").as_deref(), Some("no-store"), "GET {path}");
            if key.is_some() && path == "/v1/accounts" {
                assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("2000"), "GET {path}");
            }
        }
        // The explorer page: a strict CSP (no inline scripts) and revalidated, not stored.
        let (status, headers, page) = get(&server, None, "/docs").await;
        assert_eq!(status, 200);
        let csp = header(&headers, "content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(!page.as_str().unwrap().contains("<script>"), "no inline script in the explorer page");
        // Its assets keep their long cache.
        let (_, headers, _) = get(&server, None, "/docs/assets/init.js").await;
        assert!(header(&headers, "cache-control").unwrap().contains("immutable"));
        // Errors produced outside the handlers (413, 405) carry them too.
        let response = server.http.put(server.url("/health")).send().await.expect("request");
        assert_eq!(response.headers().get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"));
    }
}

/// `hsts_max_age = 0` in `[http]` turns the header off.
#[tokio::test]
async fn hsts_can_be_turned_off() {
    let url = database_urls().await.remove(0);
    let server = Server::start(&url, &["--hsts-max-age", "0"]).await;
    let (status, headers, _) = get(&server, None, "/health").await;
    assert_eq!(status, 200);
    assert!(headers.get("strict-transport-security").is_none());
    assert_eq!(header(&headers, "x-frame-options").as_deref(), Some("DENY"));
}

/// The shipped example config file is valid, rate limits and all.
#[tokio::test]
async fn the_example_config_file_starts_the_server() {
    let url = database_urls().await.remove(0);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/digibank.example.toml");
    let server = Server::start(&url, &["--config", example]).await;
    let (status, headers, _) = get(&server, Some(server.key()), "/v1/accounts").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("2000"));
}

/// `[rate_limits.keys."<id>"]` gives one key its own rate; other keys of its role keep theirs.
#[tokio::test]
async fn a_key_override_applies_to_that_key_only() {
    for url in database_urls().await {
        let mut server = Server::start(&url, &[]).await;
        let admin = server.key().to_string();
        let (status, issued) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "batch job", "role": "operator"}))).await;
        assert_eq!(status, 201, "{issued}");
        let (id, throttled) = (issued["id"].as_str().unwrap().to_string(), issued["key"].as_str().unwrap().to_string());
        let other = issue(&server, "operator").await;
        server.kill().await;

        let config = harness::temp_dir("digibank-limits").join("digibank.toml");
        std::fs::write(&config, format!("[rate_limits.keys.\"{id}\"]\nread = \"1/min burst 2\"\n")).unwrap();
        let server = Server::start(&url, &["--config", config.to_str().unwrap()]).await;
        let server = Server { key: Some(admin), ..server };
        for _ in 0..2 {
            let (status, headers, body) = get(&server, Some(&throttled), "/v1/accounts").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("2"));
        }
        let (status, _, body) = get(&server, Some(&throttled), "/v1/accounts").await;
        assert_error(status, &body, 429, "rate_limited");
        for _ in 0..3 {
            let (status, headers, body) = get(&server, Some(&other), "/v1/accounts").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("2000"));
        }
        // Its writes keep the default rate.
        let (status, body) = server.call_as(Some(&throttled), "POST", "/v1/accounts", Some(gl("gl.cash"))).await;
        assert_eq!(status, 201, "{body}");
    }
}

/// A config file naming an unknown role stops the server at start-up, saying why.
#[tokio::test]
async fn an_invalid_rate_limit_config_stops_start_up() {
    let config = harness::temp_dir("digibank-limits").join("digibank.toml");
    std::fs::write(&config, "[rate_limits.roles.\"Branch Boss\"]\nread = \"10/s\"\n").unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "serve", "--addr", "127.0.0.1:0"])
        .output()
        .await
        .expect("run digibank");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rate_limits.roles.Branch Boss") && stderr.contains("a role name is"), "{stderr}");
}
