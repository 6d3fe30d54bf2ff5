//! Staff identities end to end (security issue 12, part 3), against the real binary on SQLite
//! and PostgreSQL (when `DATABASE_URL` is set): users created by the CLI and the API, sign-in
//! with password and TOTP (enrolment at the first sign-in), sessions by bearer token and
//! cookie, sign-out, idle expiry, one answer for every wrong credential, lockout and unlock,
//! recovery codes, roles as data (a custom role, a role change reaching live sessions), and
//! API keys with expiry, an IP allow-list and `last_used_at`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// The current TOTP code of a base32 secret.
fn code(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string()).to_bytes().expect("base32 secret");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes);
    totp.generate(chrono::Utc::now().timestamp() as u64)
}

/// A code that is not the current one (nor its neighbours).
fn wrong_code(secret: &str) -> String {
    let right = code(secret);
    (0..10).map(|d| format!("{d}{d}{d}{d}{d}{d}")).find(|c| *c != right).unwrap()
}

/// Signs in; returns (status, body, Set-Cookie header).
async fn sign_in(server: &Server, body: Value) -> (u16, Value, Option<String>) {
    let response = server.http.post(server.url("/v1/sessions")).json(&body).send().await.expect("sign in");
    let status = response.status().as_u16();
    let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, response.json().await.unwrap_or(Value::Null), cookie)
}

/// Enrols the user's second factor (first sign-in) and returns (secret, recovery codes).
async fn enrol(server: &Server, username: &str, password: &str) -> (String, Vec<String>) {
    let (status, answer, cookie) = sign_in(server, json!({"username": username, "password": password})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "enrolment_required", "{answer}");
    assert!(cookie.is_none(), "no session before the second factor is confirmed");
    let e = &answer["enrolment"];
    let secret = e["secret"].as_str().unwrap().to_string();
    assert!(e["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with(&format!("otpauth://totp/digibank:{username}?secret={secret}")));
    let codes: Vec<String> =
        e["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// Signs in with password and TOTP; returns the session token.
async fn session(server: &Server, username: &str, password: &str, secret: &str) -> String {
    let (status, answer, _) =
        sign_in(server, json!({"username": username, "password": password, "totp": code(secret)})).await;
    assert_eq!(status, 201, "{answer}");
    answer["session"]["token"].as_str().unwrap().to_string()
}

async fn with_cookie(server: &Server, token: &str, method: &str, path: &str) -> (u16, Value) {
    let response = server
        .http
        .request(method.parse().unwrap(), server.url(path))
        .header("cookie", format!("theme=dark; digibank_session={token}"))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs `digibank users create` with the password on standard input.
async fn cli_create_user(url: &str, username: &str, role: &str, password: &str) -> String {
    let mut child = tokio::process::Command::new(BIN)
        .args(["users", "create", "--database-url", url, "--username", username, "--role", role, "--password-stdin"])
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run users create");
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "users create failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn people_sign_in_with_password_and_totp_and_sessions_end() {
    for url in database_urls().await {
        let printed = cli_create_user(&url, "alice", "teller", "correct horse battery").await;
        assert!(printed.contains("user alice created"), "{printed}");
        assert!(!printed.contains("initial password"), "a given password is not printed: {printed}");
        let server = Server::start(&url, &["--session-idle-secs", "3", "--sign-in-max-failures", "3"]).await;
        let pw = "correct horse battery";

        // Enrolment at the first sign-in, confirmed by the first code.
        let (secret, recovery) = enrol(&server, "alice", pw).await;
        let (status, answer, cookie) =
            sign_in(&server, json!({"username": "alice", "password": pw, "totp": code(&secret)})).await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["session"]["user"]["totp_enrolled"], true);
        let token = answer["session"]["token"].as_str().unwrap().to_string();
        assert!(token.starts_with("dbs_"));
        let cookie = cookie.expect("a session cookie");
        for attribute in ["digibank_session=dbs_", "HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }

        // The session works as a bearer token and as a cookie, with the teller's permissions.
        let (status, body) = server.call_as(Some(&token), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = with_cookie(&server, &token, "GET", "/v1/accounts").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.call_as(Some(&token), "POST", "/v1/users", Some(json!({"username": "x"}))).await;
        assert_error(status, &body, 403, "forbidden");
        assert_eq!(body["error"]["details"]["permission"], "users_admin");
        let (status, sessions) = server.call_as(Some(&token), "GET", "/v1/sessions", None).await;
        assert_eq!(status, 200, "{sessions}");
        assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(sessions["sessions"][0]["current"], true);

        // Wrong password, wrong code, unknown user, missing code: one identical answer.
        let wrong_password =
            sign_in(&server, json!({"username": "alice", "password": "not the password", "totp": code(&secret)})).await;
        let wrong_totp =
            sign_in(&server, json!({"username": "alice", "password": pw, "totp": wrong_code(&secret)})).await;
        let unknown = sign_in(&server, json!({"username": "nobody", "password": pw, "totp": code(&secret)})).await;
        assert_error(wrong_password.0, &wrong_password.1, 401, "invalid_credentials");
        assert_eq!((wrong_password.0, &wrong_password.1), (wrong_totp.0, &wrong_totp.1));
        assert_eq!((wrong_password.0, &wrong_password.1), (unknown.0, &unknown.1));

        // A recovery code works once (and resets the failure count).
        let (status, answer, _) =
            sign_in(&server, json!({"username": "alice", "password": pw, "recovery_code": recovery[0].to_uppercase()}))
                .await;
        assert_eq!(status, 201, "{answer}");
        let (status, answer, _) =
            sign_in(&server, json!({"username": "alice", "password": pw, "recovery_code": recovery[0]})).await;
        assert_error(status, &answer, 401, "invalid_credentials");

        // Sign-out ends the session (and clears the cookie).
        let response = server.http.delete(server.url("/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 204);
        assert!(response.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        let (status, body) = server.call_as(Some(&token), "GET", "/v1/accounts", None).await;
        assert_error(status, &body, 401, "unauthorized");

        // Idle expiry (3 s here).
        let token = session(&server, "alice", pw, &secret).await;
        let (status, _) = server.call_as(Some(&token), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let (status, body) = with_cookie(&server, &token, "GET", "/v1/accounts").await;
        assert_error(status, &body, 401, "unauthorized");

        // Lockout after 3 failures, even with the right credentials afterwards; admin unlock.
        for _ in 0..3 {
            let (status, body, _) =
                sign_in(&server, json!({"username": "alice", "password": "wrong wrong wrong", "totp": code(&secret)}))
                    .await;
            assert_error(status, &body, 401, "invalid_credentials");
        }
        let (status, body, _) =
            sign_in(&server, json!({"username": "alice", "password": pw, "totp": code(&secret)})).await;
        assert_error(status, &body, 423, "user_locked");
        let (_, users) = server.call("GET", "/v1/users", None).await;
        let alice = users["users"].as_array().unwrap().iter().find(|u| u["username"] == "alice").unwrap().clone();
        assert_eq!(alice["locked"], true, "{alice}");
        let id = alice["id"].as_str().unwrap();
        let (status, body) = server.call("POST", &format!("/v1/users/{id}/unlock"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["locked"], false);
        let token = session(&server, "alice", pw, &secret).await;

        // Disabling ends the session at once; the user cannot sign in.
        let (status, body) = server.call("POST", &format!("/v1/users/{id}/disable"), None).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("disabled")), "{body}");
        let (status, body) = server.call_as(Some(&token), "GET", "/v1/accounts", None).await;
        assert_error(status, &body, 401, "unauthorized");
        let (status, body, _) =
            sign_in(&server, json!({"username": "alice", "password": pw, "totp": code(&secret)})).await;
        assert_error(status, &body, 401, "invalid_credentials");
        let (status, _) = server.call("POST", &format!("/v1/users/{id}/enable"), None).await;
        assert_eq!(status, 200);

        // Resetting the second factor makes the next sign-in enrol again.
        let (status, body) = server.call("POST", &format!("/v1/users/{id}/reset-totp"), None).await;
        assert_eq!((status, body["totp_enrolled"].as_bool()), (200, Some(false)), "{body}");
        let (new_secret, _) = enrol(&server, "alice", pw).await;
        assert_ne!(new_secret, secret);
        session(&server, "alice", pw, &new_secret).await;
    }
}

#[tokio::test]
async fn roles_are_data_and_changes_reach_live_sessions() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let (status, roles) = server.call("GET", "/v1/roles", None).await;
        assert_eq!(status, 200, "{roles}");
        let names: Vec<&str> = roles["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["admin", "auditor", "monitoring", "operator", "teller"]);
        let monitoring = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == "monitoring").unwrap();
        assert_eq!(monitoring["permissions"], json!(["metrics_read"]));

        let (status, body) = server
            .call("POST", "/v1/roles", Some(json!({"name": "viewer", "permissions": ["accounts_read", "nope"]})))
            .await;
        assert_error(status, &body, 422, "unknown_permission");
        let (status, body) =
            server.call("POST", "/v1/roles", Some(json!({"name": "viewer", "permissions": ["accounts_read"]}))).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = server.call("POST", "/v1/roles", Some(json!({"name": "viewer", "permissions": []}))).await;
        assert_error(status, &body, 409, "role_exists");

        // A user with the custom role: reads accounts, 403 naming the permission it lacks.
        let (status, created) = server
            .call("POST", "/v1/users", Some(json!({"username": "Bob", "display_name": "Bob Li", "role": "viewer"})))
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["user"]["username"], "bob");
        let password = created["initial_password"].as_str().expect("a generated password").to_string();
        let (status, body) = server.call("POST", "/v1/users", Some(json!({"username": "bob"}))).await;
        assert_error(status, &body, 409, "username_taken");
        let (secret, _) = enrol(&server, "bob", &password).await;
        let token = session(&server, "bob", &password, &secret).await;
        let (status, _) = server.call_as(Some(&token), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200);
        let (status, body) = server.call_as(Some(&token), "POST", "/v1/accounts", Some(deposit("c-1"))).await;
        assert_error(status, &body, 403, "forbidden");
        assert_eq!(body["error"]["details"]["permission"], "accounts_write");

        // Bob replaces the generated password; his other sessions end, this one stays.
        let other = session(&server, "bob", &password, &secret).await;
        let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
        let (status, body) = server
            .call_as(
                Some(&token),
                "POST",
                "/v1/sessions/current/password",
                Some(change("wrong password", "a new password 1")),
            )
            .await;
        assert_error(status, &body, 401, "invalid_credentials");
        let (status, body) = server
            .call_as(Some(&token), "POST", "/v1/sessions/current/password", Some(change(&password, "short")))
            .await;
        assert_error(status, &body, 422, "invalid_request");
        let (status, body) = server
            .call_as(Some(&token), "POST", "/v1/sessions/current/password", Some(change(&password, "a new password 1")))
            .await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = server.call_as(Some(&other), "GET", "/v1/accounts", None).await;
        assert_error(status, &body, 401, "unauthorized");
        let (status, _) = server.call_as(Some(&token), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200);
        let (status, body, _) =
            sign_in(&server, json!({"username": "bob", "password": password, "totp": code(&secret)})).await;
        assert_error(status, &body, 401, "invalid_credentials");
        let password = "a new password 1".to_string();
        session(&server, "bob", &password, &secret).await;

        // A key with the custom role, and one with no role at all.
        let (status, key) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "viewer-app", "role": "viewer"}))).await;
        assert_eq!(status, 201, "{key}");
        let viewer_key = key["key"].as_str().unwrap().to_string();
        let (status, key) = server.call("POST", "/v1/api-keys", Some(json!({"name": "no-role"}))).await;
        assert_eq!(status, 201, "{key}");
        let (status, body) = server.call_as(key["key"].as_str(), "GET", "/v1/accounts", None).await;
        assert_error(status, &body, 403, "forbidden");
        let (status, body) = server.call("POST", "/v1/api-keys", Some(json!({"name": "x", "role": "ghost"}))).await;
        assert_error(status, &body, 422, "unknown_role");

        // A role change reaches the live session and the cached key within seconds.
        let (status, body) = server
            .call("PUT", "/v1/roles/viewer", Some(json!({"permissions": ["accounts_read", "accounts_write"]})))
            .await;
        assert_eq!(status, 200, "{body}");
        let mut allowed = false;
        for _ in 0..40 {
            let (session_status, _) = server.call_as(Some(&token), "POST", "/v1/accounts", Some(deposit("c-2"))).await;
            let (key_status, _) = server.call_as(Some(&viewer_key), "POST", "/v1/accounts", Some(deposit("c-3"))).await;
            if session_status == 201 && key_status == 201 {
                allowed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(allowed, "the role change reached the session and the key");

        let (status, body) = server.call("DELETE", "/v1/roles/teller", None).await;
        assert_error(status, &body, 409, "builtin_role");
        let (status, body) = server.call("PUT", "/v1/roles/admin", Some(json!({"permissions": []}))).await;
        assert_error(status, &body, 409, "builtin_role");
        let (status, body) = server.call("DELETE", "/v1/roles/viewer", None).await;
        assert_error(status, &body, 409, "role_in_use");
        let (status, body) = server.call("DELETE", "/v1/roles/ghost", None).await;
        assert_error(status, &body, 404, "role_not_found");
    }
}

#[tokio::test]
async fn api_keys_expire_follow_their_allow_list_and_record_last_use() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
        let (status, key) = server
            .call("POST", "/v1/api-keys", Some(json!({"name": "short", "role": "auditor", "expires_at": soon})))
            .await;
        assert_eq!(status, 201, "{key}");
        let short = key["key"].as_str().unwrap().to_string();
        let (status, _) = server.call_as(Some(&short), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200);

        let (status, key) = server
            .call(
                "POST",
                "/v1/api-keys",
                Some(json!({"name": "far", "role": "auditor", "allowed_ips": ["10.0.0.0/8"]})),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        let (status, body) = server.call_as(key["key"].as_str(), "GET", "/v1/accounts", None).await;
        assert_error(status, &body, 403, "ip_not_allowed");
        let (status, key) = server
            .call(
                "POST",
                "/v1/api-keys",
                Some(json!({"name": "local", "role": "auditor", "allowed_ips": ["127.0.0.0/8", "::1"]})),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        assert_eq!(key["allowed_ips"], json!(["127.0.0.0/8", "::1/128"]));
        let (status, _) = server.call_as(key["key"].as_str(), "GET", "/v1/accounts", None).await;
        assert_eq!(status, 200);
        let (status, body) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "bad", "allowed_ips": ["10.0.0.0/33"]}))).await;
        assert_error(status, &body, 422, "invalid_request");

        tokio::time::sleep(Duration::from_millis(2500)).await;
        let (status, body) = server.call_as(Some(&short), "GET", "/v1/accounts", None).await;
        assert_error(status, &body, 401, "unauthorized");

        // last_used_at is written in the background, once a minute at most.
        let mut seen = false;
        for _ in 0..20 {
            let (status, keys) = server.call("GET", "/v1/api-keys", None).await;
            assert_eq!(status, 200, "{keys}");
            let local = keys["keys"].as_array().unwrap().iter().find(|k| k["name"] == "local").unwrap();
            if !local["last_used_at"].is_null() {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "last_used_at recorded");
    }
}
