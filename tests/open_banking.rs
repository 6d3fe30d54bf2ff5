//! Open banking, part 1 (partners) and part 2 (the OAuth 2.0 token service), end to end against
//! the real binary on SQLite and PostgreSQL. The partner side uses the `oauth2` client library
//! for the client credentials grant, with its client assertion (`private_key_jwt`) signed by a
//! key only the partner holds.

mod common;

use common::openbank::{assertion, partner_key, PartnerKey, JWT_BEARER};
use common::{assert_error, database_urls, Server};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, Scope, TokenResponse, TokenUrl};
use serde_json::{json, Value};

async fn register(server: &Server, as_key: Option<&str>, body: Value) -> (u16, Value) {
    server.call_as(as_key.or(Some(server.key())), "POST", "/v1/open-banking/partners", Some(body)).await
}

/// The token endpoint with a hand-built form (for the error cases a client library will not send).
async fn token_form(server: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    let response = server.http.post(server.url("/open-banking/oauth2/token")).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn oauth_error(status: u16, body: &Value, want_status: u16, want: &str) {
    assert_eq!((status, body["error"].as_str()), (want_status, Some(want)), "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
}

#[tokio::test]
async fn partners_get_scoped_tokens_with_private_key_jwt() {
    for url in database_urls().await {
        let server = Server::start(&url, &["--four-eyes", "on"]).await;
        let key = partner_key("shop-2026");
        let sandbox = json!({"name": "Demo Shop", "roles": ["account_information", "payment_initiation"],
            "redirect_uris": ["http://localhost:8080/callback"], "jwks": {"keys": [key.public_jwk]},
            "environment": "sandbox"});

        // Staff: an operator onboards, an auditor only reads; a bad registration is refused.
        let (_, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": "ops", "role": "operator"}))).await;
        let operator = issued["key"].as_str().unwrap().to_string();
        let (_, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": "aud", "role": "auditor"}))).await;
        let auditor = issued["key"].as_str().unwrap().to_string();
        let (status, body) = register(&server, Some(&auditor), sandbox.clone()).await;
        assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("partners_admin")), "{body}");
        let mut leaky = sandbox.clone();
        leaky["jwks"]["keys"][0]["d"] = json!("c2VjcmV0");
        let (status, body) = register(&server, Some(&operator), leaky).await;
        assert_error(status, &body, 422, "invalid_partner");
        assert!(body["error"]["message"].as_str().unwrap().contains("private member"), "{body}");
        let (status, partner) = register(&server, Some(&operator), sandbox.clone()).await;
        assert_eq!(status, 201, "{partner}");
        assert_eq!(partner["status"], "active");
        let client_id = partner["id"].as_str().unwrap().to_string();
        let (status, page) = server.call_as(Some(&auditor), "GET", "/v1/open-banking/partners", None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["partners"][0]["id"], client_id.as_str());
        // A production partner waits for a second person.
        let mut production = sandbox.clone();
        production["environment"] = json!("production");
        production["redirect_uris"] = json!(["https://shop.example/callback"]);
        let (status, held) = register(&server, Some(&operator), production).await;
        assert_eq!((status, held["approval"]["status"].as_str()), (202, Some("pending")), "{held}");

        // Open data: the product catalogue needs no token and shows price ranges, not scorecards.
        let (status, catalogue) = server.call_as(None, "GET", "/open-banking/v1/products", None).await;
        assert_eq!(status, 200, "{catalogue}");
        let consumer =
            catalogue["products"].as_array().unwrap().iter().find(|p| p["code"] == "instant_consumer").unwrap();
        assert!(consumer["min_rate"].as_str().unwrap() <= consumer["max_rate"].as_str().unwrap(), "{consumer}");
        assert!(consumer.get("pricing").is_none() && consumer.get("eligibility").is_none(), "{consumer}");

        // Discovery says where the token endpoint is and how to authenticate.
        let (status, meta) = server.call_as(None, "GET", "/.well-known/openid-configuration", None).await;
        assert_eq!(status, 200, "{meta}");
        assert_eq!(meta["token_endpoint_auth_methods_supported"], json!(["private_key_jwt"]));
        let token_endpoint = meta["token_endpoint"].as_str().unwrap().to_string();
        assert_eq!(token_endpoint, server.url("/open-banking/oauth2/token"));

        // The client credentials grant through a real OAuth 2.0 client library.
        let client = BasicClient::new(ClientId::new(client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::new(token_endpoint.clone()).unwrap());
        let http =
            oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap();
        let signed = assertion(&key, &client_id, &token_endpoint, 60);
        let token = client
            .exchange_client_credentials()
            .add_scope(Scope::new("accounts".into()))
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", signed.clone())
            .request_async(&http)
            .await
            .expect("token");
        assert_eq!(token.scopes().unwrap()[0].as_str(), "accounts");
        assert!(token.expires_in().unwrap().as_secs() <= 300);
        let access = token.access_token().secret().clone();

        // The token verifies with the bank's published keys and names the partner.
        let (_, jwks) = server.call_as(None, "GET", "/.well-known/jwks.json", None).await;
        let header = jsonwebtoken::decode_header(&access).unwrap();
        let published = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == json!(header.kid)).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(published.clone()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&[format!("{}/open-banking", meta["issuer"].as_str().unwrap())]);
        let claims =
            jsonwebtoken::decode::<Value>(&access, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation)
                .expect("the access token verifies with the published key")
                .claims;
        assert_eq!(
            (claims["client_id"].as_str(), claims["scope"].as_str()),
            (Some(client_id.as_str()), Some("accounts"))
        );

        // RFC 6749 errors.
        let replay = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &signed),
        ];
        let (status, body) = token_form(&server, &replay).await;
        oauth_error(status, &body, 401, "invalid_client");
        assert!(body["error_description"].as_str().unwrap().contains("used before"), "{body}");
        let stranger = partner_key("shop-2026");
        for (what, jwt) in [
            ("a key the partner never registered", assertion(&stranger, &client_id, &token_endpoint, 60)),
            ("expired", assertion(&key, &client_id, &token_endpoint, -120)),
            ("another audience", assertion(&key, &client_id, "https://elsewhere.example/token", 60)),
            ("too long a life", assertion(&key, &client_id, &token_endpoint, 3600)),
            ("not a JWT", "garbage".to_string()),
        ] {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &jwt),
            ];
            let (status, body) = token_form(&server, &form).await;
            assert_eq!(body["error"], "invalid_client", "{what}: {body}");
            assert_eq!(status, 401, "{what}");
        }
        let fresh = assertion(&key, &client_id, &token_endpoint, 60);
        let form = [("grant_type", "password"), ("client_assertion_type", JWT_BEARER), ("client_assertion", &fresh)];
        let (status, body) = token_form(&server, &form).await;
        oauth_error(status, &body, 400, "unsupported_grant_type");
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "lending"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &fresh),
        ];
        let (status, body) = token_form(&server, &form).await;
        oauth_error(status, &body, 400, "invalid_scope");
        let response = server
            .http
            .post(server.url("/open-banking/oauth2/token"))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");

        // Introspection: the partner sees its own token active; another partner learns nothing.
        let introspect = |key: &PartnerKey, id: &str, token: &str| {
            let form = vec![
                ("client_assertion_type".to_string(), JWT_BEARER.to_string()),
                ("client_assertion".to_string(), assertion(key, id, &token_endpoint, 60)),
                ("token".to_string(), token.to_string()),
            ];
            let request = server.http.post(server.url("/open-banking/oauth2/introspect")).form(&form);
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            }
        };
        let (status, seen) = introspect(&key, &client_id, &access).await;
        assert_eq!((status, seen["active"].as_bool()), (200, Some(true)), "{seen}");
        assert_eq!(seen["scope"], "accounts");
        let other_key = partner_key("other-1");
        let mut other = sandbox.clone();
        other["name"] = json!("Other App");
        other["jwks"] = json!({"keys": [other_key.public_jwk]});
        let (_, other) = register(&server, Some(&operator), other).await;
        let other_id = other["id"].as_str().unwrap().to_string();
        let (status, seen) = introspect(&other_key, &other_id, &access).await;
        assert_eq!((status, seen), (200, json!({"active": false})));
        let mut tampered = access.clone();
        tampered.pop();
        tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
        let (_, seen) = introspect(&key, &client_id, &tampered).await;
        assert_eq!(seen, json!({"active": false}));

        // Suspending a partner stops it at once: no new token, its live token is inactive.
        let (status, suspended) = server
            .call_as(Some(&operator), "POST", &format!("/v1/open-banking/partners/{client_id}/suspend"), None)
            .await;
        assert_eq!((status, suspended["status"].as_str()), (200, Some("suspended")), "{suspended}");
        let (status, body) = server
            .call_as(Some(&operator), "POST", &format!("/v1/open-banking/partners/{client_id}/suspend"), None)
            .await;
        assert_error(status, &body, 409, "partner_status_unchanged");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion(&key, &client_id, &token_endpoint, 60)),
        ];
        let (status, body) = token_form(&server, &form).await;
        oauth_error(status, &body, 401, "invalid_client");
        let (_, seen) = introspect(&other_key, &other_id, &access).await;
        assert_eq!(seen, json!({"active": false}));
        let (status, _) = server
            .call_as(Some(&operator), "POST", &format!("/v1/open-banking/partners/{client_id}/activate"), None)
            .await;
        assert_eq!(status, 200);
        let (_, seen) = introspect(&key, &client_id, &access).await;
        assert_eq!(seen["active"], true, "reactivated: the unexpired token works again");

        // Every step is in the audit trail, tokens under the partner's id.
        let (_, trail) = server.call("GET", &format!("/v1/audit?resource={client_id}&limit=100"), None).await;
        let actions: Vec<&str> =
            trail["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        // Only requests that went through: the replay and the refused scope left no entry.
        let tokens = actions.iter().filter(|a| **a == "POST /open-banking/oauth2/token").count();
        assert_eq!(tokens, 1, "{actions:?}");
        for expected in [
            "POST /v1/open-banking/partners",
            "POST /open-banking/oauth2/token",
            "POST /v1/open-banking/partners/{id}/suspend",
            "POST /v1/open-banking/partners/{id}/activate",
        ] {
            assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
        }
    }
}
