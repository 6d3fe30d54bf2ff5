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
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
                if secured && op.get("x-required-permission").is_none() {
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
    }
}
