//! A partner's side of open banking for the tests: its key pair, its client assertions, its
//! registration and tokens, and the customer's side of the consent screen.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use std::path::Path;

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, PkceCodeChallenge, RedirectUrl, TokenUrl};
use serde_json::{json, Value};

use super::Server;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A partner's key pair: the private half stays here, the public half is registered.
pub struct PartnerKey {
    pub kid: String,
    pub signing: jsonwebtoken::EncodingKey,
    pub public_jwk: Value,
}

pub fn partner_key(kid: &str) -> PartnerKey {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key.to_pkcs8_der().unwrap();
    PartnerKey {
        kid: kid.to_string(),
        signing: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())}),
    }
}

/// A client assertion: `iss` = `sub` = client id, for `aud`, living `life` seconds.
pub fn assertion(key: &PartnerKey, client_id: &str, aud: &str, life: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + life,
        "jti": uuid::Uuid::now_v7().to_string()});
    jsonwebtoken::encode(&header, &claims, &key.signing).unwrap()
}

pub const REDIRECT: &str = "http://localhost:8080/callback";

pub struct Partner {
    pub id: String,
    pub key: PartnerKey,
}

impl Partner {
    pub async fn register(server: &Server, name: &str) -> Partner {
        Partner::register_as(server, name, &["account_information"]).await
    }

    pub async fn register_as(server: &Server, name: &str, roles: &[&str]) -> Partner {
        let key = partner_key(&format!("{name}-1"));
        let body = json!({"name": name, "roles": roles, "redirect_uris": [REDIRECT],
            "jwks": {"keys": [key.public_jwk]}, "environment": "sandbox"});
        let (status, partner) = server.call("POST", "/v1/open-banking/partners", Some(body)).await;
        assert_eq!(status, 201, "{partner}");
        Partner { id: partner["id"].as_str().unwrap().to_string(), key }
    }

    pub fn assertion(&self, server: &Server) -> String {
        assertion(&self.key, &self.id, &server.url("/open-banking/oauth2/token"), 60)
    }

    /// A client-credentials token with scope `accounts` (for managing consents).
    pub async fn app_token(&self, server: &Server) -> String {
        self.app_token_for(server, "accounts").await
    }

    pub async fn app_token_for(&self, server: &Server, scope: &str) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &self.assertion(server)),
        ];
        let response = server.http.post(server.url("/open-banking/oauth2/token")).form(&form).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().expect("token").to_string()
    }

    pub fn oauth(
        &self,
        server: &Server,
    ) -> oauth2::Client<
        oauth2::basic::BasicErrorResponse,
        oauth2::basic::BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        oauth2::StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        BasicClient::new(ClientId::new(self.id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::new(server.url("/open-banking/oauth2/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap())
    }
}

/// A partner's call with a bearer token; `present` sends the customer's address header.
pub async fn partner_call(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    present: bool,
) -> (u16, Value) {
    let mut request = server.http.request(method.parse().unwrap(), server.url(path)).bearer_auth(token);
    if present {
        request = request.header("x-fapi-customer-ip-address", "198.51.100.7");
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn public_post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    server.call_as(None, "POST", path, Some(body)).await
}

/// The latest code the outbox holds for this customer and purpose.
pub fn code_from_outbox(outbox: &Path, customer: &str, purpose: &str) -> String {
    let text = std::fs::read_to_string(outbox).expect("the code outbox exists");
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["customer_id"] == customer && m["purpose"] == purpose)
        .and_then(|m| m["code"].as_str().map(str::to_string))
        .expect("a code for the customer")
}

pub fn resident_id(seq: u32) -> String {
    let first17 = format!("110105199001{:02}{:03}", 1 + seq % 28, 100 + seq);
    format!("{first17}{}", customer::validate::resident_id_check(&first17))
}

pub async fn customer(server: &Server, seq: u32, phone: &str) -> String {
    let body =
        json!({"kind": "individual", "name": format!("客户{seq}"), "id_number": resident_id(seq), "phone": phone});
    let (status, created) = server.call("POST", "/v1/customers", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

/// Runs the consent screen as the customer would: phone, code, accounts, decision. Returns the
/// redirect (with the code).
pub async fn authorise(
    server: &Server,
    outbox: &Path,
    partner: &Partner,
    consent_id: &str,
    challenge: &PkceCodeChallenge,
    (phone, customer_id): (&str, &str),
    accounts: &[&str],
) -> String {
    let scope = match consent_id.get(..3) {
        Some("pc-") => "payments",
        Some("lc-") => "lending",
        _ => "accounts",
    };
    let form = [
        ("client_id", partner.id.as_str()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &assertion(&partner.key, &partner.id, &server.url("/open-banking/oauth2/par"), 60)),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "s-42"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("consent_id", consent_id),
    ];
    let response = server.http.post(server.url("/open-banking/oauth2/par")).form(&form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let pushed: Value = response.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let page = server
        .http
        .get(server.url("/open-banking/oauth2/authorize"))
        .query(&[("client_id", partner.id.as_str()), ("request_uri", request_uri)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let id = request_uri.rsplit(':').next().unwrap();
    assert!(page.text().await.unwrap().contains(id), "the consent screen names its authorization");
    let base = format!("/open-banking/authorizations/{id}");
    let (status, sent) = public_post(server, &format!("{base}/code"), json!({"phone": phone})).await;
    assert_eq!((status, sent["sent_to"].is_string()), (202, true), "{sent}");
    let code = code_from_outbox(outbox, customer_id, "authorise");
    let (status, verified) = public_post(server, &format!("{base}/verify"), json!({"code": code})).await;
    assert_eq!(status, 200, "{verified}");
    let session = verified["session"].as_str().unwrap();
    let decision = json!({"session": session, "decision": "authorise", "accounts": accounts});
    let (status, redirect) = public_post(server, &format!("{base}/decision"), decision).await;
    assert_eq!(status, 200, "{redirect}");
    redirect["redirect_to"].as_str().unwrap().to_string()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}
