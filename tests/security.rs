//! The security boundary, tested as OWASP's API Security Top 10 frames it, against the real
//! binary on SQLite and PostgreSQL (when `DATABASE_URL` is set).

mod common;

use access::{Permission, PermissionSet, Role};
use common::*;
use serde_json::{json, Value};

/// The operations of the published document with the permission each needs.
fn secured_operations(doc: &Value) -> Vec<(String, String, Permission)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if let Some(p) = op.get("x-required-permission").and_then(Value::as_str) {
                let permission = Permission::parse(p).unwrap_or_else(|| panic!("unknown permission {p}"));
                out.push((method.to_uppercase(), path.clone(), permission));
            }
        }
    }
    out
}

/// API5 (broken function-level authorization), generated from the route table: every route is
/// called by every role with a garbage path and body. A role without the route's permission gets
/// 403 naming the permission and nothing else (not a 400/422 describing the input); a role with
/// it gets past the guard.
#[tokio::test]
async fn every_route_refuses_every_role_without_its_permission() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let (_, doc) = server.call_as(None, "GET", "/openapi.json", None).await;
        let operations = secured_operations(&doc);
        assert!(operations.len() > 70, "the document states the permission of every operation");
        let mut keys = Vec::new();
        for role in Role::ALL {
            let (status, issued) =
                server.call("POST", "/v1/api-keys", Some(json!({"name": role.as_str(), "role": role}))).await;
            assert_eq!(status, 201, "{issued}");
            keys.push((role.as_str().to_string(), role.permissions(), issued["key"].as_str().unwrap().to_string()));
        }
        // A custom role with every other permission, and a key without any role.
        let half: PermissionSet = Permission::ALL.into_iter().step_by(2).collect();
        let names: Vec<&str> = half.iter().map(Permission::as_str).collect();
        let (status, role) =
            server.call("POST", "/v1/roles", Some(json!({"name": "half", "permissions": names}))).await;
        assert_eq!(status, 201, "{role}");
        for (name, role, set) in [("half", Some("half"), half), ("no role", None, PermissionSet::EMPTY)] {
            let (status, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": name, "role": role}))).await;
            assert_eq!(status, 201, "{issued}");
            keys.push((name.to_string(), set, issued["key"].as_str().unwrap().to_string()));
        }
        let mut failures = Vec::new();
        for (method, path, permission) in &operations {
            let garbage_path = path.replace('{', "").replace('}', "-not-an-id");
            let body = (method != "GET" && method != "DELETE").then(|| json!({"garbage": [1, 2, 3]}));
            for (role, permissions, key) in &keys {
                let (status, answer) = server.call_as(Some(key), method, &garbage_path, body.clone()).await;
                if permissions.contains(*permission) {
                    if status == 401 || status == 403 {
                        failures.push(format!("{method} {path} as {role}: {status} {answer}"));
                    }
                } else if status != 403 || answer["error"]["details"]["permission"] != permission.as_str() {
                    failures.push(format!(
                        "{method} {path} as {role}: expected 403 naming {permission}, got {status} {answer}"
                    ));
                }
            }
            let (status, _) = server.call_as(None, method, &garbage_path, body.clone()).await;
            if status != 401 {
                failures.push(format!("{method} {path} without a key: {status}"));
            }
        }
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    }
}

/// Operations any signed-in caller may use (own sessions, sign-out) still need credentials, and
/// sign-in is the one public operation under /v1.
#[tokio::test]
async fn signed_in_routes_need_credentials_and_sign_in_is_public() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let (_, doc) = server.call_as(None, "GET", "/openapi.json", None).await;
        let mut signed = Vec::new();
        let mut token_routes = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let schemes: Vec<&str> = op
                    .get("security")
                    .and_then(Value::as_array)
                    .map(|s| {
                        s.iter().filter_map(|r| r.as_object()).flat_map(|r| r.keys()).map(String::as_str).collect()
                    })
                    .unwrap_or_default();
                let secured = !schemes.is_empty();
                if schemes.contains(&"partner_token") || schemes.contains(&"customer_token") {
                    // Open banking: a partner's or a customer's token, never a staff credential.
                    token_routes.push((method.to_uppercase(), path.clone()));
                } else if secured && op.get("x-required-permission").is_none() {
                    signed.push((method.to_uppercase(), path.clone()));
                }
                if path.starts_with("/v1/") && !secured {
                    assert_eq!(
                        (method.as_str(), path.as_str()),
                        ("post", "/v1/sessions"),
                        "unexpected public operation"
                    );
                }
            }
        }
        assert_eq!(signed.len(), 3, "{signed:?}");
        for (method, path) in &signed {
            let (status, body) = server.call_as(None, method, path, None).await;
            assert_eq!(status, 401, "{method} {path}: {body}");
            let (status, body) = server.call_as(Some("dbs_not_a_session"), method, path, None).await;
            assert_eq!(status, 401, "{method} {path}: {body}");
        }
        assert!(token_routes.len() >= 9, "{token_routes:?}");
        // A staff key is not a partner's or a customer's token.
        let admin = server.key().to_string();
        for (method, path) in &token_routes {
            for credential in [None, Some("not.a.jwt"), Some(admin.as_str())] {
                let (status, body) = server.call_as(credential, method, path, None).await;
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (401, Some("invalid_token")),
                    "{method} {path}: {body}"
                );
            }
        }
    }
}

/// API2 (broken authentication): credentials that do not work now (none, garbage, a valid key
/// with one character changed, a revoked key, an expired key, an ended or made-up session) all
/// get the same 401 body, so a refused caller cannot tell which of them once worked; none of
/// them reaches a route or changes anything.
#[tokio::test]
async fn credentials_that_do_not_work_all_get_one_answer() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let issue = |name: &'static str, expires: Option<String>| {
            let server = &server;
            async move {
                let (status, key) = server
                    .call(
                        "POST",
                        "/v1/api-keys",
                        Some(json!({"name": name, "role": "operator", "expires_at": expires})),
                    )
                    .await;
                assert_eq!(status, 201, "{key}");
                (key["id"].as_str().unwrap().to_string(), key["key"].as_str().unwrap().to_string())
            }
        };
        let (_, good) = issue("good", None).await;
        let (revoked_id, revoked) = issue("revoked", None).await;
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
        let (_, expiring) = issue("expiring", Some(soon)).await;
        assert_eq!(server.call_as(Some(&good), "GET", "/v1/accounts", None).await.0, 200);
        assert_eq!(server.call_as(Some(&expiring), "GET", "/v1/accounts", None).await.0, 200);
        let (status, _) = server.call("DELETE", &format!("/v1/api-keys/{revoked_id}"), None).await;
        assert!(status == 200 || status == 204, "revoking answered {status}");
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

        let mut tampered = good.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).unwrap();
        let (accounts_before, _) = server.call("GET", "/v1/accounts", None).await;
        assert_eq!(accounts_before, 200);
        let mut answers = Vec::new();
        for (what, key) in [
            ("no credentials", None),
            ("garbage", Some("not-a-key")),
            ("tampered key", Some(tampered.as_str())),
            ("revoked key", Some(revoked.as_str())),
            ("expired key", Some(expiring.as_str())),
            ("made-up session", Some("dbs_0123456789abcdef0123456789abcdef")),
        ] {
            for (method, path, body) in [
                ("GET", "/v1/accounts", None),
                ("POST", "/v1/accounts", Some(gl("gl.owasp"))),
                ("GET", "/v1/sessions", None),
            ] {
                let (status, body) = server.call_as(key, method, path, body).await;
                assert_eq!(status, 401, "{what}: {method} {path}: {body}");
                answers.push((what, body["error"]["code"].clone(), body["error"]["message"].clone()));
            }
        }
        // Sending nothing is told so; every credential that was sent gets the same answer.
        assert!(answers.iter().all(|(_, c, _)| c == "unauthorized"), "{answers:?}");
        let presented: Vec<_> = answers.iter().filter(|(what, _, _)| *what != "no credentials").collect();
        let (_, code, message) = presented[0];
        for (what, c, m) in &presented {
            assert_eq!((c, m), (code, message), "{what} is told something the others are not");
        }
        assert_eq!(code, "unauthorized");
        // Nothing was created by the refused requests.
        let (_, page) = server.call("GET", "/v1/accounts?limit=500", None).await;
        assert!(
            !page["accounts"].as_array().unwrap().iter().any(|a| a["code"] == "gl.owasp"),
            "a refused request opened an account"
        );
        // The good key still works: the refusals locked nothing.
        assert_eq!(server.call_as(Some(&good), "GET", "/v1/accounts", None).await.0, 200);
    }
}
