//! Open banking, part 3: customer consent, end to end against the real binary on SQLite and
//! PostgreSQL. A partner asks for a consent, pushes its authorization request (RFC 9126), the
//! customer authorises on the bank's consent screen with a one-time code sent to their phone
//! (read from the sandbox's code outbox) and chooses accounts, the partner exchanges the code
//! with PKCE through the `oauth2` client library, reads what the consent covers and nothing
//! else, and loses access the moment the consent is revoked, superseded or expired.

mod common;

use common::openbank::*;
use common::{assert_error, database_urls, deposit, gl, open, transfer, Server};
use oauth2::basic::BasicErrorResponseType;
use oauth2::{AuthorizationCode, PkceCodeChallenge, RefreshToken, RequestTokenError, TokenResponse};
use serde_json::{json, Value};

fn invalid_grant<T: std::fmt::Debug>(
    result: Result<T, RequestTokenError<impl std::error::Error, oauth2::basic::BasicErrorResponse>>,
) {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant, "{e:?}")
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn customers_authorise_consents_that_partners_use_only_as_granted() {
    for url in database_urls().await {
        let dir = harness::temp_dir("consents");
        let outbox = dir.join("codes.jsonl");
        let server = Server::start(&url, &["--code-outbox", outbox.to_str().unwrap()]).await;
        let http =
            oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap();

        // Customer A with two accounts (one funded), customer B with one.
        let alice = customer(&server, 1, "13900000001").await;
        let bob = customer(&server, 2, "13900000002").await;
        let a1 = open(&server, deposit(&alice)).await;
        let a2 = open(&server, deposit(&alice)).await;
        let b1 = open(&server, deposit(&bob)).await;
        let cash = open(&server, gl("cash")).await;
        let mut funding = transfer(&cash, &a1, 12_345);
        funding["reference"] = json!("salary");
        let (status, _) = server.call("POST", "/v1/transfers", Some(funding)).await;
        assert_eq!(status, 201);
        let shop = Partner::register(&server, "Shop").await;
        let other = Partner::register(&server, "Other").await;

        // The partner asks for a consent; without the customer's authorisation it reads nothing.
        let app = shop.app_token(&server).await;
        let ask = json!({"permissions": ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"]});
        let (status, consent) =
            partner_call(&server, &app, "POST", "/open-banking/v1/account-access-consents", Some(ask.clone()), false)
                .await;
        assert_eq!((status, consent["status"].as_str()), (201, Some("awaiting_authorisation")), "{consent}");
        let c1 = consent["consent_id"].as_str().unwrap().to_string();
        let (status, body) = partner_call(&server, &app, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_error(status, &body, 403, "consent_not_authorised");
        let (status, body) = partner_call(
            &server,
            &app,
            "POST",
            "/open-banking/v1/account-access-consents",
            Some(json!({"permissions": ["ReadBalances"], "expiration_time": "2099-01-01T00:00:00Z"})),
            false,
        )
        .await;
        assert_error(status, &body, 422, "invalid_consent");
        // Another partner cannot see it.
        let other_app = other.app_token(&server).await;
        let (status, body) = partner_call(
            &server,
            &other_app,
            "GET",
            &format!("/open-banking/v1/account-access-consents/{c1}"),
            None,
            false,
        )
        .await;
        assert_error(status, &body, 404, "consent_not_found");

        // A request that cannot be trusted gets an error page, never a redirect.
        let page = server
            .http
            .get(server.url("/open-banking/oauth2/authorize"))
            .query(&[("client_id", shop.id.as_str()), ("request_uri", "urn:ietf:params:oauth:request_uri:nope")])
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 400);
        assert!(page.headers().get("location").is_none());
        // PAR refuses an unregistered redirect URI, a missing PKCE challenge and another's consent.
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        for (name, value, needle) in
            [("redirect_uri", "https://evil.example/cb", "not registered"), ("code_challenge_method", "plain", "S256")]
        {
            let mut form = vec![
                ("client_assertion_type", JWT_BEARER.to_string()),
                ("client_assertion", shop.assertion(&server)),
                ("response_type", "code".into()),
                ("redirect_uri", REDIRECT.into()),
                ("code_challenge", challenge.as_str().to_string()),
                ("code_challenge_method", "S256".into()),
                ("consent_id", c1.clone()),
            ];
            form.retain(|(k, _)| *k != name);
            form.push((name, value.to_string()));
            let response = server.http.post(server.url("/open-banking/oauth2/par")).form(&form).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 400);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{body}");
            assert!(body["error_description"].as_str().unwrap().contains(needle), "{body}");
        }

        // The customer authorises, choosing one account; a wrong code and a foreign account fail.
        let form = [
            ("client_assertion_type", JWT_BEARER.to_string()),
            ("client_assertion", shop.assertion(&server)),
            ("response_type", "code".into()),
            ("redirect_uri", REDIRECT.into()),
            ("code_challenge", challenge.as_str().to_string()),
            ("code_challenge_method", "S256".into()),
            ("consent_id", c1.clone()),
            ("state", "s-42".into()),
        ];
        let pushed: Value = server
            .http
            .post(server.url("/open-banking/oauth2/par"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = pushed["request_uri"].as_str().unwrap().rsplit(':').next().unwrap().to_string();
        let base = format!("/open-banking/authorizations/{id}");
        let (status, view) = server.call_as(None, "GET", &base, None).await;
        assert_eq!((status, view["partner_name"].as_str()), (200, Some("Shop")), "{view}");
        let (status, sent) = public_post(&server, &format!("{base}/code"), json!({"phone": "13900000009"})).await;
        assert_eq!((status, sent.get("sent_to")), (202, None), "an unknown number learns nothing: {sent}");
        let (status, _) = public_post(&server, &format!("{base}/code"), json!({"phone": "13900000001"})).await;
        assert_eq!(status, 202);
        let (status, body) = public_post(&server, &format!("{base}/verify"), json!({"code": "000000x"})).await;
        assert_error(status, &body, 422, "invalid_code");
        let code = code_from_outbox(&outbox, &alice, "authorise");
        let (status, verified) = public_post(&server, &format!("{base}/verify"), json!({"code": code})).await;
        assert_eq!(status, 200, "{verified}");
        let choices: Vec<&str> =
            verified["accounts"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap()).collect();
        assert!(choices.contains(&a1.as_str()) && choices.contains(&a2.as_str()) && !choices.contains(&b1.as_str()));
        let session = verified["session"].as_str().unwrap();
        for (decision, needle) in [
            (json!({"session": session, "decision": "authorise", "accounts": [b1]}), "not one of yours"),
            (json!({"session": "guessed", "decision": "authorise", "accounts": [a1]}), "session"),
        ] {
            let (status, body) = public_post(&server, &format!("{base}/decision"), decision).await;
            assert_error(status, &body, 400, "authorization_failed");
            assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{body}");
        }
        let (status, redirect) = public_post(
            &server,
            &format!("{base}/decision"),
            json!({"session": session, "decision": "authorise", "accounts": [a1]}),
        )
        .await;
        assert_eq!(status, 200, "{redirect}");
        let redirect = redirect["redirect_to"].as_str().unwrap();
        assert!(redirect.starts_with(REDIRECT), "{redirect}");
        assert_eq!(query_param(redirect, "state").as_deref(), Some("s-42"));
        assert!(query_param(redirect, "iss").is_some(), "RFC 9207 issuer in {redirect}");
        let code = query_param(redirect, "code").unwrap();

        // The code with PKCE, through the OAuth client library: a wrong verifier, another
        // partner, then the right exchange.
        let wrong = PkceCodeChallenge::new_random_sha256().1;
        invalid_grant(
            shop.oauth(&server)
                .exchange_code(AuthorizationCode::new(code.clone()))
                .set_pkce_verifier(wrong)
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", shop.assertion(&server))
                .request_async(&http)
                .await,
        );
        let tokens = shop
            .oauth(&server)
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(verifier)
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await
            .expect("the code exchanges for tokens");
        let access = tokens.access_token().secret().clone();
        let refresh = tokens.refresh_token().expect("a refresh token").secret().clone();
        let (_, consent) =
            partner_call(&server, &app, "GET", &format!("/open-banking/v1/account-access-consents/{c1}"), None, false)
                .await;
        assert_eq!((consent["status"].as_str(), consent["accounts"].clone()), (Some("authorised"), json!([a1])));
        assert!(consent.get("customer_id").is_none(), "partners never see the customer id: {consent}");

        // Only what the customer chose, only what the consent grants.
        let (status, accounts) = partner_call(&server, &access, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_eq!(status, 200, "{accounts}");
        assert_eq!(accounts["accounts"].as_array().unwrap().len(), 1);
        let echoed = server
            .http
            .get(server.url("/open-banking/v1/accounts"))
            .bearer_auth(&access)
            .header("x-fapi-customer-ip-address", "198.51.100.7")
            .header("x-fapi-interaction-id", "93bac548-d2de-4546-b106-880a5018460d")
            .send()
            .await
            .unwrap();
        assert_eq!(
            echoed.headers().get("x-fapi-interaction-id").and_then(|v| v.to_str().ok()),
            Some("93bac548-d2de-4546-b106-880a5018460d")
        );
        assert_eq!(accounts["accounts"][0]["account_id"], a1.as_str());
        assert_eq!(accounts["accounts"][0]["product"], "deposit.current");
        let (status, balance) =
            partner_call(&server, &access, "GET", &format!("/open-banking/v1/accounts/{a1}/balances"), None, true)
                .await;
        assert_eq!((status, balance["booked_minor"].as_i64()), (200, Some(12_345)), "{balance}");
        let (status, history) =
            partner_call(&server, &access, "GET", &format!("/open-banking/v1/accounts/{a1}/transactions"), None, true)
                .await;
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["transactions"][0]["credit_debit"], "credit");
        assert_eq!(history["transactions"][0]["reference"], "salary");
        for account in [&a2, &b1] {
            let (status, body) = partner_call(
                &server,
                &access,
                "GET",
                &format!("/open-banking/v1/accounts/{account}/balances"),
                None,
                true,
            )
            .await;
            assert_error(status, &body, 403, "account_not_in_consent");
        }
        // The app token (client credentials) carries no consent.
        let (status, body) =
            partner_call(&server, &app, "GET", &format!("/open-banking/v1/accounts/{a1}/balances"), None, true).await;
        assert_error(status, &body, 403, "consent_not_authorised");

        // Without the customer present: four calls a day, then 429.
        for _ in 0..4 {
            let (status, body) =
                partner_call(&server, &access, "GET", &format!("/open-banking/v1/accounts/{a1}/balances"), None, false)
                    .await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) =
            partner_call(&server, &access, "GET", &format!("/open-banking/v1/accounts/{a1}/balances"), None, false)
                .await;
        assert_error(status, &body, 429, "access_exceeded");
        let (status, _) =
            partner_call(&server, &access, "GET", &format!("/open-banking/v1/accounts/{a1}/balances"), None, true)
                .await;
        assert_eq!(status, 200, "with the customer present there is no daily limit");

        // Another partner cannot use this one's refresh token.
        invalid_grant(
            other
                .oauth(&server)
                .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", other.assertion(&server))
                .request_async(&http)
                .await,
        );
        // Refresh tokens rotate; presenting a spent one revokes the whole chain.
        let rotated = shop
            .oauth(&server)
            .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await
            .expect("the refresh token rotates");
        let second = rotated.access_token().secret().clone();
        assert_ne!(rotated.refresh_token().unwrap().secret(), &refresh);
        let (status, _) = partner_call(&server, &second, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_eq!(status, 200);
        invalid_grant(
            shop.oauth(&server)
                .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", shop.assertion(&server))
                .request_async(&http)
                .await,
        );
        for token in [&access, &second] {
            let (status, body) = partner_call(&server, token, "GET", "/open-banking/v1/accounts", None, true).await;
            assert_error(status, &body, 401, "invalid_token");
        }
        // Introspection agrees: the revoked chain's tokens are inactive.
        let form = [
            ("client_assertion_type", JWT_BEARER.to_string()),
            ("client_assertion", assertion(&shop.key, &shop.id, &server.url("/open-banking/oauth2/token"), 60)),
            ("token", second.clone()),
        ];
        let seen: Value = server
            .http
            .post(server.url("/open-banking/oauth2/introspect"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(seen, json!({"active": false}));

        // A new consent of the same partner for the same customer supersedes the old one.
        let (_, consent) =
            partner_call(&server, &app, "POST", "/open-banking/v1/account-access-consents", Some(ask.clone()), false)
                .await;
        let c2 = consent["consent_id"].as_str().unwrap().to_string();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect =
            authorise(&server, &outbox, &shop, &c2, &challenge, ("+86 139 0000 0001", &alice), &[&a1, &a2]).await;
        let code = query_param(&redirect, "code").unwrap();
        let tokens = shop
            .oauth(&server)
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(verifier)
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await
            .expect("tokens for the second consent");
        let access2 = tokens.access_token().secret().clone();
        let (_, old) =
            partner_call(&server, &app, "GET", &format!("/open-banking/v1/account-access-consents/{c1}"), None, false)
                .await;
        assert_eq!(
            (old["status"].as_str(), old["revoked_by"].as_str(), old["superseded_by"].as_str()),
            (Some("revoked"), Some("superseded"), Some(c2.as_str())),
            "{old}"
        );
        let (status, accounts) = partner_call(&server, &access2, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_eq!((status, accounts["accounts"].as_array().map(Vec::len)), (200, Some(2)), "{accounts}");
        // A code used twice revokes what it issued.
        let replayed = shop
            .oauth(&server)
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeChallenge::new_random_sha256().1)
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await;
        invalid_grant(replayed);
        let (status, body) = partner_call(&server, &access2, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_error(status, &body, 401, "invalid_token");

        // A third consent, and the customer revokes it from their dashboard: the partner's
        // next call gets 403 consent_revoked.
        let (_, consent) =
            partner_call(&server, &app, "POST", "/open-banking/v1/account-access-consents", Some(ask.clone()), false)
                .await;
        let c3 = consent["consent_id"].as_str().unwrap().to_string();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = authorise(&server, &outbox, &shop, &c3, &challenge, ("13900000001", &alice), &[&a1]).await;
        let tokens = shop
            .oauth(&server)
            .exchange_code(AuthorizationCode::new(query_param(&redirect, "code").unwrap()))
            .set_pkce_verifier(verifier)
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await
            .expect("tokens for the third consent");
        let access3 = tokens.access_token().secret().clone();
        let sign_in = |phone: &'static str, who: String| {
            let server = &server;
            let outbox = outbox.clone();
            async move {
                let (status, sent) =
                    public_post(server, "/open-banking/customer/sign-in", json!({"phone": phone})).await;
                assert_eq!(status, 202, "{sent}");
                let challenge = sent["challenge_id"].as_str().unwrap().to_string();
                let code = code_from_outbox(&outbox, &who, "sign_in");
                let (status, token) = public_post(
                    server,
                    &format!("/open-banking/customer/sign-in/{challenge}/verify"),
                    json!({"code": code}),
                )
                .await;
                assert_eq!(status, 200, "{token}");
                token["access_token"].as_str().unwrap().to_string()
            }
        };
        let alice_token = sign_in("13900000001", alice.clone()).await;
        let bob_token = sign_in("13900000002", bob.clone()).await;
        let (status, mine) =
            partner_call(&server, &alice_token, "GET", "/open-banking/customer/consents", None, false).await;
        assert_eq!(status, 200, "{mine}");
        let listed: Vec<(&str, &str)> = mine["consents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["consent_id"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        assert_eq!(listed.len(), 3, "{mine}");
        assert!(listed.contains(&(c3.as_str(), "authorised")) && listed.contains(&(c1.as_str(), "revoked")));
        assert_eq!(mine["consents"][0]["partner_name"], "Shop");
        let (_, bobs) = partner_call(&server, &bob_token, "GET", "/open-banking/customer/consents", None, false).await;
        assert_eq!(bobs["consents"], json!([]));
        let revoke = format!("/open-banking/customer/consents/{c3}/revoke");
        let (status, body) = partner_call(&server, &bob_token, "POST", &revoke, None, false).await;
        assert_error(status, &body, 404, "consent_not_found");
        let (status, body) = partner_call(&server, &access3, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_eq!(status, 200, "still live: {body}");
        let (status, revoked) = partner_call(&server, &alice_token, "POST", &revoke, None, false).await;
        assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")), "{revoked}");
        let (status, body) =
            partner_call(&server, &access3, "GET", &format!("/open-banking/v1/accounts/{a1}/balances"), None, true)
                .await;
        assert_error(status, &body, 403, "consent_revoked");
        let (status, body) = partner_call(&server, &alice_token, "POST", &revoke, None, false).await;
        assert_error(status, &body, 409, "consent_status_conflict");

        // Metering: staff read the partner's calls per API and day, refused ones apart.
        let (status, usage) =
            server.call("GET", &format!("/v1/open-banking/partners/{}/usage?days=7", shop.id), None).await;
        assert_eq!(status, 200, "{usage}");
        let row = |api: &str| usage["usage"].as_array().unwrap().iter().find(|r| r["api"] == api).cloned();
        let balances = row("GET /open-banking/v1/accounts/{id}/balances").expect("balance reads metered");
        assert!(balances["calls"].as_i64().unwrap() >= 9 && balances["refused"].as_i64().unwrap() >= 3, "{balances}");
        let (status, body) = server.call("GET", "/v1/open-banking/partners/nope/usage", None).await;
        assert_error(status, &body, 404, "partner_not_found");

        // Every change is in the audit trail with the consent as its purpose.
        let (_, trail) = server.call("GET", &format!("/v1/audit?resource={c3}&limit=100"), None).await;
        let entries = trail["entries"].as_array().unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
        for expected in [
            "POST /open-banking/v1/account-access-consents",
            "POST /open-banking/authorizations/{id}/decision",
            "POST /open-banking/customer/consents/{id}/revoke",
        ] {
            assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
        }
        let decided =
            entries.iter().find(|e| e["action"] == "POST /open-banking/authorizations/{id}/decision").unwrap();
        assert_eq!(
            (decided["actor_kind"].as_str(), decided["actor"].as_str()),
            (Some("customer"), Some(alice.as_str()))
        );
        let (_, reads) = server.call("GET", "/v1/audit?limit=500", None).await;
        let read_with_purpose = reads["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "read" && e["actor_kind"] == "partner" && e["purpose"] == c1.as_str());
        assert!(read_with_purpose, "partner reads are recorded with the consent id as purpose");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn an_expired_consent_stops_access_at_once() {
    for url in database_urls().await {
        let dir = harness::temp_dir("consent-expiry");
        let outbox = dir.join("codes.jsonl");
        let server = Server::start(&url, &["--code-outbox", outbox.to_str().unwrap()]).await;
        let http =
            oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap();
        let carol = customer(&server, 3, "13900000003").await;
        let c1 = open(&server, deposit(&carol)).await;
        let shop = Partner::register(&server, "Shop").await;
        let app = shop.app_token(&server).await;
        let expires = chrono::Utc::now() + chrono::Duration::seconds(6);
        let ask = json!({"permissions": ["ReadBalances"], "expiration_time": expires.to_rfc3339()});
        let (status, consent) =
            partner_call(&server, &app, "POST", "/open-banking/v1/account-access-consents", Some(ask), false).await;
        assert_eq!(status, 201, "{consent}");
        let id = consent["consent_id"].as_str().unwrap().to_string();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = authorise(&server, &outbox, &shop, &id, &challenge, ("13900000003", &carol), &[&c1]).await;
        let tokens = shop
            .oauth(&server)
            .exchange_code(AuthorizationCode::new(query_param(&redirect, "code").unwrap()))
            .set_pkce_verifier(verifier)
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await
            .expect("tokens");
        let access = tokens.access_token().secret().clone();
        let path = format!("/open-banking/v1/accounts/{c1}/balances");
        let (status, body) = partner_call(&server, &access, "GET", &path, None, true).await;
        assert_eq!(status, 200, "{body}");
        // Permissions are what the consent says: no account list without ReadAccountsBasic.
        let (status, body) = partner_call(&server, &access, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_error(status, &body, 403, "permission_not_granted");
        let wait = expires - chrono::Utc::now() + chrono::Duration::milliseconds(300);
        tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
        let (status, body) = partner_call(&server, &access, "GET", &path, None, true).await;
        assert_error(status, &body, 403, "consent_expired");
        let (_, consent) =
            partner_call(&server, &app, "GET", &format!("/open-banking/v1/account-access-consents/{id}"), None, false)
                .await;
        assert_eq!(consent["status"], "expired", "{consent}");
        let refreshed = shop
            .oauth(&server)
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await;
        invalid_grant(refreshed);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn a_payment_is_made_once_through_risk_screening_and_the_ledger() {
    for url in database_urls().await {
        let dir = harness::temp_dir("payments");
        let outbox = dir.join("codes.jsonl");
        let server =
            Server::start(&url, &["--code-outbox", outbox.to_str().unwrap(), "--screen-channels", "open_banking"])
                .await;
        let http =
            oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap();
        let dave = customer(&server, 4, "13900000004").await;
        let payer = open(&server, deposit(&dave)).await;
        let merchant = open(&server, gl("merchant.settlement")).await;
        let cash = open(&server, gl("cash")).await;
        let (status, _) = server.call("POST", "/v1/transfers", Some(transfer(&cash, &payer, 100_000))).await;
        assert_eq!(status, 201);
        let shop = Partner::register_as(&server, "Pay Shop", &["payment_initiation"]).await;
        let other = Partner::register_as(&server, "Other Shop", &["payment_initiation"]).await;
        let app = shop.app_token_for(&server, "payments").await;

        let ask = json!({"initiation": {"instructed_amount_minor": 50_000, "currency": "CNY",
            "creditor_account_id": merchant, "reference": "order 42"}});
        let (status, consent) =
            partner_call(&server, &app, "POST", "/open-banking/v1/domestic-payment-consents", Some(ask), false).await;
        assert_eq!((status, consent["kind"].as_str()), (201, Some("domestic_payment")), "{consent}");
        let id = consent["consent_id"].as_str().unwrap().to_string();
        let (status, body) = partner_call(&server, &app, "POST", "/open-banking/v1/domestic-payment-consents",
            Some(json!({"initiation": {"instructed_amount_minor": 0, "currency": "CNY", "creditor_account_id": merchant}})), false).await;
        assert_error(status, &body, 422, "invalid_payment");

        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = authorise(&server, &outbox, &shop, &id, &challenge, ("13900000004", &dave), &[&payer]).await;
        let tokens = shop
            .oauth(&server)
            .exchange_code(AuthorizationCode::new(query_param(&redirect, "code").unwrap()))
            .set_pkce_verifier(verifier)
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", shop.assertion(&server))
            .request_async(&http)
            .await
            .expect("tokens for the payment consent");
        let access = tokens.access_token().secret().clone();
        // A payment token reads no accounts.
        let (status, body) = partner_call(&server, &access, "GET", "/open-banking/v1/accounts", None, true).await;
        assert_error(status, &body, 403, "insufficient_scope");
        let (status, funds) = partner_call(
            &server,
            &access,
            "GET",
            &format!("/open-banking/v1/domestic-payment-consents/{id}/funds-confirmation"),
            None,
            true,
        )
        .await;
        assert_eq!((status, funds["funds_available"].as_bool()), (200, Some(true)), "{funds}");

        let pay = |key: &'static str, amount: i64| {
            let request = server
                .http
                .post(server.url("/open-banking/v1/domestic-payments"))
                .bearer_auth(&access)
                .header("x-idempotency-key", key)
                .json(&json!({"consent_id": id, "instructed_amount_minor": amount, "currency": "CNY"}));
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            }
        };
        let (status, body) = pay("k-1", 60_000).await;
        assert_error(status, &body, 422, "invalid_payment");
        let (status, payment) = pay("k-1", 40_000).await;
        assert_eq!((status, payment["status"].as_str()), (201, Some("accepted_settlement_completed")), "{payment}");
        assert!(payment["risk_decision_id"].is_string(), "screened on channel open_banking: {payment}");
        let (status, again) = pay("k-1", 40_000).await;
        assert_eq!((status, again["payment_id"].clone()), (200, payment["payment_id"].clone()), "{again}");
        let (status, body) = pay("k-1", 30_000).await;
        assert_error(status, &body, 409, "idempotency_conflict");
        let (status, body) = pay("k-2", 40_000).await;
        assert_error(status, &body, 403, "consent_consumed");
        assert_eq!(common::posted_balance(&server, &payer).await, 60_000);
        // The ledger transfer is the payment, with the consent as its purpose in the trail.
        let payment_id = payment["payment_id"].as_str().unwrap();
        let (status, transfer) = server.call("GET", &format!("/v1/transfers/{payment_id}"), None).await;
        assert_eq!((status, transfer["amount"].as_i64()), (200, Some(40_000)), "{transfer}");
        let (status, seen) = partner_call(
            &server,
            &access,
            "GET",
            &format!("/open-banking/v1/domestic-payments/{payment_id}"),
            None,
            false,
        )
        .await;
        assert_eq!((status, seen["status"].as_str()), (200, Some("accepted_settlement_completed")), "{seen}");
        let other_app = other.app_token_for(&server, "payments").await;
        let (status, body) = partner_call(
            &server,
            &other_app,
            "GET",
            &format!("/open-banking/v1/domestic-payments/{payment_id}"),
            None,
            false,
        )
        .await;
        assert_error(status, &body, 404, "payment_not_found");
        let (_, trail) = server.call("GET", &format!("/v1/audit?resource={payment_id}&limit=10"), None).await;
        let entry = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "POST /open-banking/v1/domestic-payments");
        assert_eq!(entry.map(|e| e["purpose"].clone()), Some(json!(id)), "{trail}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
