//! Open banking, the pure part: who a partner (third-party provider) is and may be, which scopes
//! its roles allow, and what makes a client assertion (RFC 7523 `private_key_jwt`) acceptable.
//! No I/O, no clock reads (times are passed in), no signatures checked here: the platform crate
//! verifies signatures with the partner's registered keys and then asks [`check_assertion`]
//! whether the verified claims may authenticate the client.
//!
//! Invariants:
//! * a partner registers only public keys (a JWK with private members is refused), at most
//!   [`MAX_KEYS`], each with a `kid`, of the algorithms the bank accepts ([`KeyType`]);
//! * redirect URIs are absolute `https` URLs without a fragment (plain `http` only for
//!   `localhost`, and only for sandbox partners), as OAuth 2.0 security BCP and FAPI 2.0 ask;
//! * a partner is granted only scopes its roles allow ([`PartnerRole::scope`]);
//! * a client assertion is accepted once ([`check_assertion`] requires a `jti`; the platform
//!   remembers it until the assertion expires), only for this token endpoint (`aud`), only from
//!   the client it names (`iss` = `sub` = client id), and lives at most [`MAX_ASSERTION_SECS`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod consent;

/// At most this many keys in a partner's JWKS (rotation needs two; five leaves room).
pub const MAX_KEYS: usize = 5;
/// At most this many redirect URIs per partner.
pub const MAX_REDIRECT_URIS: usize = 10;
/// The longest lifetime (`exp - iat`, or `exp - now`) a client assertion may have.
pub const MAX_ASSERTION_SECS: i64 = 300;
/// Clock skew tolerated between the partner and the bank.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenBankError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("scope {0:?} is not allowed for this partner (its roles allow: {1})")]
    InvalidScope(String, String),
}

/// What a partner is registered to do (UK OBIE / PSD2 roles, plus the bank's lending partners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PartnerRole {
    /// AISP: reads accounts, balances and transactions the customer consented to.
    AccountInformation,
    /// PISP: initiates payments the customer consented to; confirms funds.
    PaymentInitiation,
    /// Embedded lending: submits loan applications for consenting customers.
    Lending,
}

impl PartnerRole {
    pub const ALL: [PartnerRole; 3] =
        [PartnerRole::AccountInformation, PartnerRole::PaymentInitiation, PartnerRole::Lending];

    pub fn as_str(self) -> &'static str {
        match self {
            PartnerRole::AccountInformation => "account_information",
            PartnerRole::PaymentInitiation => "payment_initiation",
            PartnerRole::Lending => "lending",
        }
    }

    pub fn parse(s: &str) -> Option<PartnerRole> {
        PartnerRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The OAuth scope this role grants (the scope names of UK Open Banking).
    pub fn scope(self) -> &'static str {
        match self {
            PartnerRole::AccountInformation => "accounts",
            PartnerRole::PaymentInitiation => "payments",
            PartnerRole::Lending => "lending",
        }
    }
}

/// Sandbox partners see the demo bank's sample data and may use `http://localhost` redirects;
/// production partners reach real customers (onboarding one waits for a second person).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }

    pub fn parse(s: &str) -> Option<Environment> {
        [Environment::Sandbox, Environment::Production].into_iter().find(|e| e.as_str() == s)
    }
}

/// A suspended partner's tokens stop working at once; it cannot get new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartnerStatus {
    Active,
    Suspended,
}

impl PartnerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerStatus::Active => "active",
            PartnerStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<PartnerStatus> {
        [PartnerStatus::Active, PartnerStatus::Suspended].into_iter().find(|e| e.as_str() == s)
    }
}

/// The public key types a partner may register: Ed25519 (`OKP`, signs EdDSA) and P-256 (`EC`,
/// signs ES256), the two FAPI 2.0 allows besides PS256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    P256,
}

/// A partner's registration as staff submit it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    /// The partner's name as customers will see it on the consent screen.
    pub name: String,
    pub roles: Vec<PartnerRole>,
    /// Where the authorization server may send the customer back (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The partner's public keys as a JWK Set (`{"keys": [...]}`), used to check its client
    /// assertions (`private_key_jwt`).
    #[schema(value_type = Object)]
    pub jwks: serde_json::Value,
    pub environment: Environment,
    /// Calls a day (UTC) before the partner gets 429 `quota_exceeded`; default
    /// [`SANDBOX_DAILY_QUOTA`] for a sandbox partner, unlimited for a production one.
    #[serde(default)]
    pub daily_quota: Option<i64>,
}

/// A sandbox partner's calls a day unless staff say otherwise.
pub const SANDBOX_DAILY_QUOTA: i64 = 10_000;
/// The most a quota can be (a billion calls a day).
pub const MAX_DAILY_QUOTA: i64 = 1_000_000_000;

/// Checks a daily quota: 1 ..= [`MAX_DAILY_QUOTA`].
pub fn check_quota(quota: i64) -> Result<i64, OpenBankError> {
    if (1..=MAX_DAILY_QUOTA).contains(&quota) {
        Ok(quota)
    } else {
        Err(invalid(format!("daily_quota {quota} is not between 1 and {MAX_DAILY_QUOTA}")))
    }
}

/// A checked registration.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerSpec {
    pub name: String,
    pub roles: Vec<PartnerRole>,
    pub redirect_uris: Vec<String>,
    pub jwks: serde_json::Value,
    pub environment: Environment,
    pub daily_quota: Option<i64>,
}

fn invalid(message: impl Into<String>) -> OpenBankError {
    OpenBankError::Invalid(message.into())
}

/// Checks a registration: a name, at least one role (no repeats), well-formed redirect URIs and
/// a JWKS of public keys only.
pub fn check_partner(new: NewPartner) -> Result<PartnerSpec, OpenBankError> {
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("name must be 1 to 100 characters without control characters"));
    }
    let mut roles = new.roles;
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(invalid("roles must name at least one of account_information, payment_initiation, lending"));
    }
    if new.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid(format!("at most {MAX_REDIRECT_URIS} redirect_uris")));
    }
    for uri in &new.redirect_uris {
        check_redirect_uri(uri, new.environment)?;
    }
    check_jwks(&new.jwks)?;
    let daily_quota = match (new.daily_quota, new.environment) {
        (Some(quota), _) => Some(check_quota(quota)?),
        (None, Environment::Sandbox) => Some(SANDBOX_DAILY_QUOTA),
        (None, Environment::Production) => None,
    };
    Ok(PartnerSpec {
        name,
        roles,
        redirect_uris: new.redirect_uris,
        jwks: new.jwks,
        environment: new.environment,
        daily_quota,
    })
}

/// An absolute `https` URI without a fragment or user info; `http` only to `localhost` (or a
/// loopback address) of a sandbox partner.
pub fn check_redirect_uri(uri: &str, environment: Environment) -> Result<(), OpenBankError> {
    let bad = |why: &str| invalid(format!("redirect URI {uri:?}: {why}"));
    if uri.len() > 500 {
        return Err(bad("longer than 500 characters"));
    }
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("not an absolute URI"))?;
    if uri.contains('#') {
        return Err(bad("a fragment is not allowed"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace"));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad("user information is not allowed"));
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            authority
        }
    });
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "localhost" | "127.0.0.1" | "[::1]") => match environment {
            Environment::Sandbox => Ok(()),
            Environment::Production => Err(bad("production partners must use https")),
        },
        "http" => Err(bad("must use https (http only to localhost, for sandbox partners)")),
        _ => Err(bad("must use https")),
    }
}

/// The type of a public JWK the bank accepts, or why it does not.
pub fn key_type(jwk: &serde_json::Value) -> Result<KeyType, OpenBankError> {
    let object = jwk.as_object().ok_or_else(|| invalid("each key must be a JSON object"))?;
    let text = |name: &str| object.get(name).and_then(serde_json::Value::as_str);
    let kid = text("kid").ok_or_else(|| invalid("each key needs a kid"))?;
    if kid.is_empty() || kid.len() > 100 {
        return Err(invalid("a kid must be 1 to 100 characters"));
    }
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        if object.contains_key(private) {
            return Err(invalid(format!("key {kid:?} holds private member {private:?}: register public keys only")));
        }
    }
    if let Some(usage) = text("use") {
        if usage != "sig" {
            return Err(invalid(format!("key {kid:?} has use {usage:?}; client assertions need \"sig\"")));
        }
    }
    match (text("kty"), text("crv")) {
        (Some("OKP"), Some("Ed25519")) if text("x").is_some() => Ok(KeyType::Ed25519),
        (Some("EC"), Some("P-256")) if text("x").is_some() && text("y").is_some() => Ok(KeyType::P256),
        _ => Err(invalid(format!(
            "key {kid:?}: only Ed25519 (kty OKP, crv Ed25519, x) and P-256 (kty EC, crv P-256, x, y) keys are accepted"
        ))),
    }
}

/// A JWK Set of 1 to [`MAX_KEYS`] acceptable public keys with distinct `kid`s.
pub fn check_jwks(jwks: &serde_json::Value) -> Result<(), OpenBankError> {
    let keys = jwks
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| invalid("jwks must be a JWK Set: {\"keys\": [...]}"))?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(invalid(format!("jwks must hold 1 to {MAX_KEYS} keys")));
    }
    let mut kids = std::collections::HashSet::new();
    for key in keys {
        key_type(key)?;
        if !kids.insert(key["kid"].as_str().unwrap_or_default()) {
            return Err(invalid("two keys share a kid"));
        }
    }
    Ok(())
}

/// The scopes granted for a request: the requested ones (space-separated), each allowed by one
/// of the partner's roles; no scope requested means every scope the roles allow.
pub fn grant_scopes(requested: Option<&str>, roles: &[PartnerRole]) -> Result<Vec<String>, OpenBankError> {
    let allowed: Vec<&str> = roles.iter().map(|r| r.scope()).collect();
    let requested: Vec<&str> = requested.map(|s| s.split_whitespace().collect()).unwrap_or_default();
    if requested.is_empty() {
        return Ok(allowed.iter().map(|s| s.to_string()).collect());
    }
    let mut granted = Vec::new();
    for scope in requested {
        if !allowed.contains(&scope) {
            return Err(OpenBankError::InvalidScope(scope.to_string(), allowed.join(" ")));
        }
        if !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_string());
        }
    }
    Ok(granted)
}

/// The claims of a client assertion whose signature the platform has verified.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// One audience or several.
    pub aud: Option<serde_json::Value>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
}

/// Whether verified claims may authenticate `client_id` at the token endpoint `audience`
/// (accepting the issuer URL too, as FAPI 2.0 recommends) at `now` (seconds). `Ok` gives the
/// `jti` and when it stops mattering (the assertion's expiry), for replay protection.
pub fn check_assertion(
    claims: &AssertionClaims,
    client_id: &str,
    audiences: &[&str],
    now: i64,
) -> Result<(String, i64), OpenBankError> {
    let reject = |why: &str| Err(OpenBankError::InvalidClient(format!("client assertion {why}")));
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return reject("must have iss and sub equal to the client id");
    }
    let aud_ok = match &claims.aud {
        Some(serde_json::Value::String(a)) => audiences.contains(&a.as_str()),
        Some(serde_json::Value::Array(list)) => {
            list.iter().filter_map(serde_json::Value::as_str).any(|a| audiences.contains(&a))
        }
        _ => false,
    };
    if !aud_ok {
        return reject("has the wrong aud: it must name this token endpoint or the issuer");
    }
    let Some(exp) = claims.exp else { return reject("has no exp") };
    if exp + LEEWAY_SECS <= now {
        return reject("has expired");
    }
    let lifetime = exp - claims.iat.unwrap_or(now).min(now);
    if lifetime > MAX_ASSERTION_SECS + LEEWAY_SECS {
        return reject(&format!("lives longer than {MAX_ASSERTION_SECS} s"));
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) || claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return reject("is not valid yet");
    }
    let jti = claims.jti.as_deref().filter(|j| !j.is_empty() && j.len() <= 200);
    let Some(jti) = jti else { return reject("needs a jti of 1 to 200 characters") };
    Ok((jti.to_string(), exp + LEEWAY_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ed_key(kid: &str) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": kid})
    }

    fn partner() -> NewPartner {
        NewPartner {
            name: " Shop ".into(),
            roles: vec![
                PartnerRole::PaymentInitiation,
                PartnerRole::AccountInformation,
                PartnerRole::PaymentInitiation,
            ],
            redirect_uris: vec!["https://shop.example/cb".into()],
            jwks: json!({"keys": [ed_key("k1")]}),
            environment: Environment::Production,
            daily_quota: None,
        }
    }

    #[test]
    fn registrations_are_checked() {
        let spec = check_partner(partner()).unwrap();
        assert_eq!(spec.name, "Shop");
        assert_eq!(spec.roles, vec![PartnerRole::AccountInformation, PartnerRole::PaymentInitiation]);
        for (change, needle) in [
            (Box::new(|p: &mut NewPartner| p.roles.clear()) as Box<dyn Fn(&mut NewPartner)>, "roles"),
            (Box::new(|p: &mut NewPartner| p.name = "  ".into()), "name"),
            (Box::new(|p: &mut NewPartner| p.jwks = json!({"keys": []})), "1 to 5 keys"),
            (Box::new(|p: &mut NewPartner| p.jwks = json!([ed_key("a")])), "JWK Set"),
            (Box::new(|p: &mut NewPartner| p.jwks = json!({"keys": [ed_key("a"), ed_key("a")]})), "share a kid"),
            (
                Box::new(|p: &mut NewPartner| {
                    let mut k = ed_key("a");
                    k["d"] = json!("secret");
                    p.jwks = json!({"keys": [k]});
                }),
                "private member",
            ),
            (
                Box::new(|p: &mut NewPartner| {
                    p.jwks = json!({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "kid": "r"}]})
                }),
                "only Ed25519",
            ),
            (Box::new(|p: &mut NewPartner| p.redirect_uris = vec!["http://shop.example/cb".into()]), "https"),
            (Box::new(|p: &mut NewPartner| p.redirect_uris = vec!["http://localhost:8080/cb".into()]), "production"),
            (Box::new(|p: &mut NewPartner| p.redirect_uris = vec!["https://shop.example/cb#x".into()]), "fragment"),
            (
                Box::new(|p: &mut NewPartner| p.redirect_uris = vec!["https://a@shop.example/".into()]),
                "user information",
            ),
            (Box::new(|p: &mut NewPartner| p.redirect_uris = vec!["shop.example/cb".into()]), "absolute"),
        ] {
            let mut p = partner();
            change(&mut p);
            let err = check_partner(p).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        let mut sandbox = partner();
        sandbox.environment = Environment::Sandbox;
        sandbox.redirect_uris = vec!["http://localhost:8080/cb".into(), "http://127.0.0.1/cb".into()];
        assert!(check_partner(sandbox).is_ok());
    }

    #[test]
    fn scopes_follow_roles() {
        let roles = [PartnerRole::AccountInformation, PartnerRole::Lending];
        assert_eq!(grant_scopes(None, &roles).unwrap(), vec!["accounts", "lending"]);
        assert_eq!(grant_scopes(Some("lending accounts lending"), &roles).unwrap(), vec!["lending", "accounts"]);
        assert!(
            matches!(grant_scopes(Some("payments"), &roles), Err(OpenBankError::InvalidScope(s, _)) if s == "payments")
        );
    }

    #[test]
    fn assertions_must_name_the_client_the_endpoint_and_a_short_life() {
        let now = 1_000_000;
        let good = AssertionClaims {
            iss: Some("c1".into()),
            sub: Some("c1".into()),
            aud: Some(json!("https://bank/token")),
            exp: Some(now + 60),
            iat: Some(now),
            nbf: None,
            jti: Some("j1".into()),
        };
        let aud = ["https://bank/token", "https://bank"];
        assert_eq!(check_assertion(&good, "c1", &aud, now).unwrap(), ("j1".to_string(), now + 60 + LEEWAY_SECS));
        let mut list = good.clone();
        list.aud = Some(json!(["x", "https://bank"]));
        assert!(check_assertion(&list, "c1", &aud, now).is_ok());
        type Change<'a> = Box<dyn Fn(&mut AssertionClaims) + 'a>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.sub = Some("c2".into())), "iss and sub"),
            (Box::new(|c| c.aud = Some(json!("https://other/token"))), "aud"),
            (Box::new(|c| c.exp = None), "no exp"),
            (Box::new(|c| c.exp = Some(now - LEEWAY_SECS)), "expired"),
            (Box::new(|c| c.exp = Some(now + 3600)), "longer than"),
            (Box::new(|c| c.iat = Some(now + 120)), "not valid yet"),
            (Box::new(|c| c.jti = None), "jti"),
        ];
        for (change, needle) in cases {
            let mut c = good.clone();
            change(&mut c);
            let err = check_assertion(&c, "c1", &aud, now).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        assert!(check_assertion(&good, "c2", &aud, now).is_err(), "another client's assertion");
    }
}
