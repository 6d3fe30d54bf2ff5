//! Open banking as a running system: the partner registry, the bank's token-signing keys and
//! the OAuth 2.0 token service (client credentials with `private_key_jwt`, RFC 7523).
//!
//! * Partners are rows of `ob_partners`; every change commits with its audit entry.
//! * The bank signs access tokens with Ed25519 (EdDSA) keys of `ob_signing_keys`, private keys
//!   sealed by the vault; the public halves are published as a JWK Set. A node creates the first
//!   key when there is none; every node reads the keys from the table, so tokens issued by one
//!   node verify on all.
//! * A client assertion is used once: its `jti` is stored until it expires
//!   (`ob_assertion_jtis`, primary key partner + jti), so a replay fails even on another node.
//! * An access token is a short-lived JWT bound to its partner; verifying one also reads the
//!   partner's status, so suspending a partner stops its tokens at once.

use std::sync::{Arc, RwLock};

mod consents;
mod lending;
pub mod notify;
mod payments;
mod usage;

pub use consents::*;
pub use lending::{
    PartnerInstallment, PartnerLoan, PartnerLoanAcceptance, PartnerLoanApplication, PartnerLoanRequest, PartnerOffer,
};
pub use payments::*;
pub use usage::{UsageRow, MAX_USAGE_DAYS};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use openbank::{Environment, OpenBankError, PartnerRole, PartnerSpec, PartnerStatus};
use serde::{Deserialize, Serialize};
use storage::Database;
use utoipa::ToSchema;
use uuid::Uuid;

/// Lifetime of an access token (FAPI 2.0 leaves it to the bank; short keeps revocation simple).
pub const ACCESS_TOKEN_SECS: i64 = 300;
/// A new signing key is published this long before it signs, so verifiers that cache the JWKS
/// know it before they see a token it signed.
pub const KEY_PUBLISH_AHEAD_SECS: i64 = 600;
/// Signing keys are replaced after this many days (the housekeeping loop adds the next one).
pub const KEY_ROTATION_DAYS: i64 = 90;

/// A token-signing key as staff see it (never its private half).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SigningKeyInfo {
    pub kid: String,
    pub alg: String,
    /// `next` (published, signs from `signs_from`), `signing`, `verifying` (an older key kept
    /// until the tokens it signed have expired) or `retired` (no longer published).
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub signs_from: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which of the published keys (newest first, by creation) signs at `now`: the newest one
/// published at least [`KEY_PUBLISH_AHEAD_SECS`] ago, or the oldest when none is that old (a
/// fresh bank's only key).
fn signing_index(created_at: &[i64], now: i64) -> Option<usize> {
    created_at
        .iter()
        .position(|&c| c <= now - KEY_PUBLISH_AHEAD_SECS * 1_000_000)
        .or_else(|| created_at.len().checked_sub(1))
}
/// The vault field of a signing key's private half.
const F_SIGNING_KEY: &str = "ob_signing_keys.private_key";
/// `client_assertion_type` of RFC 7523.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The tables of this platform with sealed columns, for `rotate-key`.
pub const ENCRYPTED_TABLES: &[access::EncryptedTable] = &[access::EncryptedTable {
    table: "ob_signing_keys",
    key: &[("kid", access::KeyType::Text)],
    columns: &["private_key"],
}];

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(transparent)]
    Domain(#[from] OpenBankError),
    #[error("no partner {0}")]
    NotFound(String),
    #[error("partner {0} is {1} already")]
    SameStatus(String, &'static str),
    /// The token is missing, malformed, not ours, expired, or its partner is suspended: one answer.
    #[error("the access token is invalid or expired")]
    InvalidToken,
    /// The partner made its daily quota of calls; `retry_after` seconds until the UTC day ends.
    #[error("the daily quota of {limit} calls is used up; it renews at 00:00 UTC")]
    QuotaExceeded { limit: i64, retry_after: i64 },
    /// Embedded lending: the lending engine's own refusal (offer expired, amount above the
    /// limit, ...), answered as the bank's lending API answers it.
    #[error(transparent)]
    Lending(#[from] lending_platform::LendingPlatformError),
    #[error("no loan application {0} under this consent")]
    ApplicationNotFound(String),
    /// Accepting a loan is the customer's act: the partner relays it while they are present.
    #[error("accepting a loan needs the customer present (send x-fapi-customer-ip-address)")]
    CustomerNotPresent,
    /// The token endpoint's `invalid_grant`: a code or refresh token that is unknown, spent,
    /// expired, another client's, or whose consent is no longer authorised.
    #[error("{0}")]
    InvalidGrant(String),
    #[error("no consent {0}")]
    ConsentNotFound(String),
    /// The consent's status does not allow the change.
    #[error("{0}")]
    ConsentState(String),
    /// The consent does not let this call through.
    #[error(transparent)]
    Denied(#[from] openbank::consent::AccessDenied),
    /// The consent's unattended calls of the day are used up.
    #[error("this consent allows {0} calls a day without the customer present; send x-fapi-customer-ip-address when the customer is present")]
    AccessExceeded(i64),
    /// The customer's authorisation cannot go on (expired, wrong step, foreign account).
    #[error("{0}")]
    Authorization(String),
    #[error("{0}")]
    InvalidCode(String),
    #[error("{0}")]
    TooManyAttempts(String),
    /// The one-time code could not be delivered.
    #[error("the one-time code could not be sent: {0}")]
    Notifier(String),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    /// The same idempotency key with another request.
    #[error("this x-idempotency-key was used with another request")]
    IdempotencyConflict,
    /// The risk engine refused the payment (its decision id); nothing was written.
    #[error("the payment was rejected by risk screening (decision {0})")]
    RiskRejected(String),
    #[error("risk screening failed: {0}")]
    Risk(String),
    /// The ledger refused the transfer (its code and message), e.g. insufficient funds.
    #[error("{1}")]
    PaymentFailed(String, String),
    #[error("no payment {0}")]
    PaymentNotFound(String),
    #[error("stored open-banking data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Vault(#[from] access::VaultError),
}

/// A registered partner as staff see it (its client id is its id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Partner {
    /// The OAuth `client_id`.
    pub id: String,
    pub name: String,
    pub roles: Vec<PartnerRole>,
    pub redirect_uris: Vec<String>,
    #[schema(value_type = Object)]
    pub jwks: serde_json::Value,
    pub environment: Environment,
    pub status: PartnerStatus,
    /// Calls a day (UTC) before 429 `quota_exceeded`; none: unlimited.
    pub daily_quota: Option<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(sqlx::FromRow)]
struct PartnerRow {
    id: String,
    name: String,
    roles: String,
    redirect_uris: String,
    jwks: String,
    environment: String,
    status: String,
    daily_quota: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const PARTNER_COLUMNS: &str =
    "id, name, roles, redirect_uris, jwks, environment, status, daily_quota, created_at, updated_at";

/// The webhook event of `partner_id` (`webhooks` owner `partner:<id>`), to run in the
/// transaction of the change it announces. Payloads carry ids and statuses only.
pub(crate) fn partner_event(
    partner_id: &str,
    event_type: &str,
    data: serde_json::Value,
    now: i64,
) -> storage::Statement {
    webhooks::event_statement(&format!("partner:{partner_id}"), event_type, data, now)
}

/// A consent's status change as its partner's webhook event.
pub(crate) fn consent_event(
    consent: &consents::Consent,
    event_type: &str,
    revoked_by: Option<&str>,
    now: i64,
) -> storage::Statement {
    let status = event_type.strip_prefix("consent.").unwrap_or(event_type);
    let mut data =
        serde_json::json!({"consent_id": consent.consent_id, "kind": consent.kind.as_str(), "status": status});
    if let Some(by) = revoked_by {
        data["revoked_by"] = serde_json::json!(by);
    }
    partner_event(&consent.partner_id, event_type, data, now)
}

fn micros_to_time(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl PartnerRow {
    fn partner(self) -> Result<Partner, PlatformError> {
        let corrupt = |what: &str| PlatformError::Corrupt(format!("partner {}: {what}", self.id));
        let roles = self
            .roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(|r| PartnerRole::parse(r).ok_or_else(|| corrupt("role")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Partner {
            roles,
            redirect_uris: serde_json::from_str(&self.redirect_uris).map_err(|_| corrupt("redirect_uris"))?,
            jwks: serde_json::from_str(&self.jwks).map_err(|_| corrupt("jwks"))?,
            environment: Environment::parse(&self.environment).ok_or_else(|| corrupt("environment"))?,
            status: PartnerStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            daily_quota: self.daily_quota,
            created_at: micros_to_time(self.created_at),
            updated_at: micros_to_time(self.updated_at),
            id: self.id,
            name: self.name,
        })
    }
}

/// One of the bank's token-signing keys, loaded.
struct SigningKey {
    kid: String,
    created_at: i64,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_jwk: serde_json::Value,
}

/// The claims of the bank's access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The partner (client id).
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The consent the token is bound to (authorization-code and refresh grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    /// The grant (refresh-token chain) the token belongs to; revoking it stops the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// What the token endpoint answers (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    pub scope: String,
    /// For the authorization-code and refresh grants: the next refresh token (it rotates on
    /// every use; a spent one presented again revokes the chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// The registry, the signing keys and the token service.
#[derive(Clone)]
pub struct OpenBanking {
    db: Database,
    vault: access::Vault,
    clock: Arc<dyn clock::Clock>,
    keys: Arc<RwLock<Vec<Arc<SigningKey>>>>,
    /// Where this server is reached (`iss` of its tokens, base of its endpoints).
    issuer: Arc<RwLock<String>>,
    ledger: ledger::Ledger,
    notifier: Arc<dyn notify::CodeNotifier>,
    /// Screens payments (channel `open_banking`); none in tools that make no payments.
    risk: Option<Arc<risk_platform::RiskService>>,
    /// Decides embedded loan applications; none in tools that lend nothing.
    lending: Option<lending_platform::LendingService>,
    /// Each partner's calls today as this node knows them, for the daily quota.
    quota_counts: Arc<std::sync::Mutex<std::collections::HashMap<String, usage::QuotaCount>>>,
    /// Partner calls counted since the last flush ([`OpenBanking::flush_usage`]).
    usage: Arc<std::sync::Mutex<usage::PendingUsage>>,
}

impl OpenBanking {
    /// The service over `db`; call [`OpenBanking::load_keys`] before issuing tokens.
    pub fn new(db: Database, vault: access::Vault, ledger: ledger::Ledger, issuer: impl Into<String>) -> Self {
        OpenBanking {
            db,
            vault,
            clock: ledger.clock(),
            keys: Arc::new(RwLock::new(Vec::new())),
            issuer: Arc::new(RwLock::new(issuer.into().trim_end_matches('/').to_string())),
            ledger,
            notifier: Arc::new(notify::NoNotifier),
            risk: None,
            lending: None,
            usage: Arc::default(),
            quota_counts: Arc::default(),
        }
    }

    /// Delivers customers' one-time codes through `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn notify::CodeNotifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// The ledger the partner APIs read.
    pub fn ledger(&self) -> &ledger::Ledger {
        &self.ledger
    }

    /// Stores consent expiries, flushes usage, forgets spent client assertions and rotates and
    /// retires signing keys once a minute, until the database closes.
    pub fn spawn_housekeeping(&self) {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if service.db.is_closed() {
                    break;
                }
                let context = storage::audit::AuditContext {
                    at: service.clock.now_micros(),
                    actor_kind: "system".into(),
                    actor: "open-banking housekeeping".into(),
                    role: None,
                    action: "expire consents".into(),
                    resource: "ob_consents".into(),
                    request_id: Uuid::new_v4().to_string(),
                    ip: None,
                    purpose: None,
                };
                match storage::audit::scope(context, service.expire_consents()).await {
                    Ok(ids) if !ids.is_empty() => tracing::info!(expired = ids.len(), "consents expired"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "consent expiry failed"),
                }
                if let Err(e) = service.flush_usage().await {
                    tracing::warn!(error = %e, "storing partner usage failed");
                }
                if let Err(e) = service.purge_used_assertions().await {
                    tracing::warn!(error = %e, "purging spent client assertions failed");
                }
                let context = storage::audit::AuditContext {
                    at: service.clock.now_micros(),
                    actor_kind: "system".into(),
                    actor: "open-banking housekeeping".into(),
                    role: None,
                    action: "rotate token-signing keys".into(),
                    resource: "ob_signing_keys".into(),
                    request_id: Uuid::new_v4().to_string(),
                    ip: None,
                    purpose: None,
                };
                match storage::audit::scope(context, service.maintain_signing_keys()).await {
                    Ok(retired) if !retired.is_empty() => tracing::info!(?retired, "token-signing keys retired"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "token-signing key housekeeping failed"),
                }
            }
        });
    }

    pub fn issuer(&self) -> String {
        self.issuer.read().expect("issuer lock").clone()
    }

    /// Sets the issuer URL (`serve` does once it knows its address, unless configured).
    pub fn set_issuer(&self, issuer: &str) {
        *self.issuer.write().expect("issuer lock") = issuer.trim_end_matches('/').to_string();
    }

    /// The token endpoint's URL, the audience client assertions must name.
    pub fn token_endpoint(&self) -> String {
        format!("{}/open-banking/oauth2/token", self.issuer())
    }

    fn now_secs(&self) -> i64 {
        self.clock.now_micros().div_euclid(1_000_000)
    }

    // ---- partners -------------------------------------------------------------------------

    /// Registers a partner (its id is its new client id).
    pub async fn register(&self, spec: PartnerSpec) -> Result<Partner, PlatformError> {
        let id = Uuid::now_v7().to_string();
        let now = self.clock.now_micros();
        storage::audit::set_resource(id.clone());
        let roles: Vec<&str> = spec.roles.iter().map(|r| r.as_str()).collect();
        let redirect_uris =
            serde_json::to_string(&spec.redirect_uris).map_err(|e| PlatformError::Corrupt(e.to_string()))?;
        let jwks = serde_json::to_string(&spec.jwks).map_err(|e| PlatformError::Corrupt(e.to_string()))?;
        storage::write!(&self.db, |conn| {
            sqlx::query(
                "INSERT INTO ob_partners (id, name, roles, redirect_uris, jwks, environment, status, daily_quota, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $8)",
            )
            .bind(&id)
            .bind(&spec.name)
            .bind(roles.join(","))
            .bind(&redirect_uris)
            .bind(&jwks)
            .bind(spec.environment.as_str())
            .bind(spec.daily_quota)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.partner(&id).await
    }

    pub async fn partner(&self, id: &str) -> Result<Partner, PlatformError> {
        let row: Option<PartnerRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {PARTNER_COLUMNS} FROM ob_partners WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| PlatformError::NotFound(id.to_string()))?.partner()
    }

    /// Partners in registration order, `limit` at a time after `after` (an id).
    pub async fn partners(&self, after: Option<&str>, limit: u32) -> Result<Vec<Partner>, PlatformError> {
        let rows: Vec<PartnerRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {PARTNER_COLUMNS} FROM ob_partners WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(PartnerRow::partner).collect()
    }

    /// Sets (or, with `None`, lifts) a partner's daily quota; it applies from the next call.
    pub async fn set_quota(&self, id: &str, quota: Option<i64>) -> Result<Partner, PlatformError> {
        if let Some(quota) = quota {
            openbank::check_quota(quota)?;
        }
        self.partner(id).await?;
        storage::audit::set_resource(id.to_string());
        let now = self.clock.now_micros();
        storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE ob_partners SET daily_quota = $1, updated_at = $2 WHERE id = $3"
        )
        .bind(quota)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        self.partner(id).await
    }

    /// Suspends or reactivates a partner; a suspended partner's tokens stop at their next use.
    pub async fn set_status(&self, id: &str, status: PartnerStatus) -> Result<Partner, PlatformError> {
        // Refused before writing, so a refused change leaves no audit entry.
        if self.partner(id).await?.status == status {
            return Err(PlatformError::SameStatus(id.to_string(), status.as_str()));
        }
        let now = self.clock.now_micros();
        let changed = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE ob_partners SET status = $1, updated_at = $2 WHERE id = $3 AND status <> $1"
        )
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(PlatformError::SameStatus(id.to_string(), status.as_str()));
        }
        self.partner(id).await
    }

    // ---- signing keys ---------------------------------------------------------------------

    /// Loads the signing keys, creating the first one when the table has none.
    pub async fn load_keys(&self) -> Result<(), PlatformError> {
        if self.read_keys().await?.is_empty() {
            self.add_signing_key().await?;
        }
        let keys = self.read_keys().await?;
        *self.keys.write().expect("keys lock") = keys;
        Ok(())
    }

    async fn read_keys(&self) -> Result<Vec<Arc<SigningKey>>, PlatformError> {
        let rows: Vec<(String, String, String, i64)> = storage::read!(&self.db, |conn| {
            sqlx::query_as(
                "SELECT kid, private_key, public_jwk, created_at FROM ob_signing_keys WHERE retired_at IS NULL \
             ORDER BY created_at DESC, kid DESC",
            )
            .fetch_all(conn)
            .await
        })?;
        let mut keys = Vec::with_capacity(rows.len());
        for (kid, sealed, public, created_at) in rows {
            let der = URL_SAFE_NO_PAD
                .decode(self.vault.open(F_SIGNING_KEY, &sealed)?)
                .map_err(|_| PlatformError::Corrupt(format!("signing key {kid}")))?;
            let public_jwk: serde_json::Value =
                serde_json::from_str(&public).map_err(|_| PlatformError::Corrupt(format!("signing key {kid}")))?;
            let x = public_jwk["x"].as_str().unwrap_or_default();
            let decoding =
                DecodingKey::from_ed_components(x).map_err(|_| PlatformError::Corrupt(format!("signing key {kid}")))?;
            keys.push(Arc::new(SigningKey {
                kid,
                created_at,
                encoding: EncodingKey::from_ed_der(&der),
                decoding,
                public_jwk,
            }));
        }
        Ok(keys)
    }

    /// Creates a new Ed25519 signing key; it signs from the next [`OpenBanking::load_keys`] on,
    /// while older keys still verify the tokens they signed.
    pub async fn add_signing_key(&self) -> Result<String, PlatformError> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing.to_pkcs8_der().map_err(|e| PlatformError::Corrupt(e.to_string()))?;
        let kid = Uuid::now_v7().simple().to_string();
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let public =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"});
        let version = i64::from(self.vault.current_version());
        let sealed = self.vault.seal(F_SIGNING_KEY, &URL_SAFE_NO_PAD.encode(der.as_bytes()));
        let now = self.clock.now_micros();
        storage::write!(&self.db, |conn| {
            sqlx::query(
                "INSERT INTO ob_signing_keys (kid, alg, private_key, public_jwk, created_at, key_version) \
                 VALUES ($1, 'EdDSA', $2, $3, $4, $5)",
            )
            .bind(&kid)
            .bind(&sealed)
            .bind(public.to_string())
            .bind(now)
            .bind(version)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(kid)
    }

    /// The bank's public signing keys as a JWK Set (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> =
            self.keys.read().expect("keys lock").iter().map(|k| k.public_jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }

    // ---- tokens ---------------------------------------------------------------------------

    /// The client credentials grant: authenticates the partner by its client assertion and
    /// issues an access token for the granted scopes.
    pub async fn client_credentials(
        &self,
        client_id: Option<&str>,
        assertion: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, PlatformError> {
        let (partner, jti, until) = self.verify_assertion(client_id, assertion).await?;
        // Refused before the assertion is spent: a refused request writes nothing, so the
        // audit trail records only requests that went through.
        let scopes = openbank::grant_scopes(scope, &partner.roles)?;
        self.spend_assertion(&partner, &jti, until).await?;
        self.issue(&partner, scopes.join(" "), None, None)
    }

    /// Checks a client assertion (`private_key_jwt`) and spends it: signed by one of the
    /// partner's registered keys, with acceptable claims, not seen before; the partner active.
    pub async fn authenticate(&self, client_id: Option<&str>, assertion: &str) -> Result<Partner, PlatformError> {
        let (partner, jti, until) = self.verify_assertion(client_id, assertion).await?;
        self.spend_assertion(&partner, &jti, until).await?;
        Ok(partner)
    }

    /// Checks a client assertion without spending it: the partner, the assertion's `jti` and
    /// until when it must be remembered. The caller spends it ([`OpenBanking::spend_assertion`],
    /// or an INSERT into `ob_assertion_jtis` in its own transaction) once nothing else can
    /// refuse the request.
    async fn verify_assertion(
        &self,
        client_id: Option<&str>,
        assertion: &str,
    ) -> Result<(Partner, String, i64), PlatformError> {
        let invalid = |why: &str| PlatformError::Domain(OpenBankError::InvalidClient(why.to_string()));
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid("client assertion is not a JWT"))?;
        // The client is named by the assertion (`sub`); a client_id sent too must agree.
        // Read unverified only to find out which client it names; the signature is then checked
        // with that client's registered keys.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<openbank::AssertionClaims>(assertion)
            .map_err(|_| invalid("client assertion is not a JWT"))?;
        let claimed = unverified.claims.sub.clone().unwrap_or_default();
        if client_id.is_some_and(|c| c != claimed) {
            return Err(invalid("client_id does not match the client assertion's sub"));
        }
        let partner = match self.partner(&claimed).await {
            Ok(p) => p,
            Err(PlatformError::NotFound(_)) => return Err(invalid("unknown client")),
            Err(e) => return Err(e),
        };
        if partner.status != PartnerStatus::Active {
            return Err(invalid("the client is suspended"));
        }
        let keys = partner.jwks["keys"].as_array().cloned().unwrap_or_default();
        let candidates: Vec<&serde_json::Value> =
            keys.iter().filter(|k| header.kid.as_deref().is_none_or(|kid| k["kid"].as_str() == Some(kid))).collect();
        let mut verified = None;
        for key in candidates {
            let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(key.clone()) else { continue };
            let Ok(decoding) = DecodingKey::from_jwk(&jwk) else { continue };
            let algorithm = match openbank::key_type(key) {
                Ok(openbank::KeyType::Ed25519) => Algorithm::EdDSA,
                Ok(openbank::KeyType::P256) => Algorithm::ES256,
                Err(_) => continue,
            };
            if header.alg != algorithm {
                continue;
            }
            let mut validation = Validation::new(algorithm);
            // The claims are judged by `openbank::check_assertion`, with the bank's clock.
            validation.validate_exp = false;
            validation.validate_aud = false;
            validation.required_spec_claims.clear();
            if let Ok(data) = jsonwebtoken::decode::<openbank::AssertionClaims>(assertion, &decoding, &validation) {
                verified = Some(data.claims);
                break;
            }
        }
        let claims =
            verified.ok_or_else(|| invalid("client assertion signature does not verify with a registered key"))?;
        let issuer = self.issuer();
        let endpoint = self.token_endpoint();
        let par_endpoint = format!("{issuer}/open-banking/oauth2/par");
        let now = self.now_secs();
        let (jti, until) = openbank::check_assertion(&claims, &partner.id, &[&endpoint, &issuer, &par_endpoint], now)?;
        let (seen,): (i64,) = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT COUNT(*) FROM ob_assertion_jtis WHERE partner_id = $1 AND jti = $2"
        )
        .bind(&partner.id)
        .bind(&jti)
        .fetch_one(conn)
        .await)?;
        if seen > 0 {
            return Err(invalid("client assertion was used before (jti replayed)"));
        }
        Ok((partner, jti, until))
    }

    /// Remembers a client assertion's `jti` so it is used once, even on another node (the
    /// primary key settles a race). The entry this write commits with names the partner.
    async fn spend_assertion(&self, partner: &Partner, jti: &str, until: i64) -> Result<(), PlatformError> {
        storage::audit::set_resource(partner.id.clone());
        let spend = self.spend_statement(&partner.id, jti, until);
        let inserted = storage::write!(&self.db, |conn| spend.query().execute(conn).await.map(|r| r.rows_affected()))?;
        if inserted == 0 {
            return Err(consents::replayed());
        }
        Ok(())
    }

    /// The INSERT that spends a client assertion's `jti`: it changes no row when the `jti` was
    /// spent already. Run on its own, or in the transaction of the change the assertion
    /// authenticates, so a refused request spends nothing.
    pub(crate) fn spend_statement(&self, partner_id: &str, jti: &str, until: i64) -> storage::Statement {
        storage::Statement::new(
            "INSERT INTO ob_assertion_jtis (partner_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (partner_id, jti) DO NOTHING",
            vec![
                storage::Arg::Text(partner_id.to_string()),
                storage::Arg::Text(jti.to_string()),
                storage::Arg::Int(until),
            ],
        )
    }

    fn current_key(&self) -> Result<Arc<SigningKey>, PlatformError> {
        let keys = self.keys.read().expect("keys lock");
        let created: Vec<i64> = keys.iter().map(|k| k.created_at).collect();
        let key = signing_index(&created, self.clock.now_micros()).and_then(|i| keys.get(i)).cloned();
        key.ok_or_else(|| PlatformError::Corrupt("no signing key loaded".into()))
    }

    /// The signing keys, newest first, with what each does now.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>, PlatformError> {
        let rows: Vec<(String, String, i64, Option<i64>)> = storage::read!(&self.db, |conn| {
            sqlx::query_as(
            "SELECT kid, alg, created_at, retired_at FROM ob_signing_keys ORDER BY created_at DESC, kid DESC LIMIT 50"
        )
        .fetch_all(conn)
        .await
        })?;
        let now = self.clock.now_micros();
        let live: Vec<i64> = rows.iter().filter(|r| r.3.is_none()).map(|r| r.2).collect();
        let signing = signing_index(&live, now);
        let mut live_seen = 0;
        Ok(rows
            .into_iter()
            .map(|(kid, alg, created_at, retired_at)| {
                let status = match retired_at {
                    Some(_) => "retired",
                    None => {
                        let i = live_seen;
                        live_seen += 1;
                        match signing {
                            Some(s) if i == s => "signing",
                            Some(s) if i < s => "next",
                            _ => "verifying",
                        }
                    }
                };
                SigningKeyInfo {
                    kid,
                    alg,
                    status: status.into(),
                    created_at: micros_to_time(created_at),
                    signs_from: micros_to_time(created_at + KEY_PUBLISH_AHEAD_SECS * 1_000_000),
                    retired_at: retired_at.map(micros_to_time),
                }
            })
            .collect())
    }

    /// Starts a rotation: a new key, published now, signing once [`KEY_PUBLISH_AHEAD_SECS`]
    /// have passed; the key it replaces verifies until its last token expires, then retires.
    pub async fn rotate_signing_key(&self) -> Result<String, PlatformError> {
        let kid = self.add_signing_key().await?;
        self.load_keys().await?;
        Ok(kid)
    }

    /// The housekeeping of the keys: a new key when the newest is [`KEY_ROTATION_DAYS`] old;
    /// keys older than the signing one retired once every token they signed has expired; the
    /// loaded set refreshed (keys another node added). Returns the keys retired.
    pub async fn maintain_signing_keys(&self) -> Result<Vec<String>, PlatformError> {
        let now = self.clock.now_micros();
        let newest = self.keys.read().expect("keys lock").first().map(|k| k.created_at);
        if newest.is_some_and(|c| c <= now - KEY_ROTATION_DAYS * 86_400_000_000) {
            let kid = self.add_signing_key().await?;
            tracing::info!(kid = %kid, "token-signing key rotated (published now, signs in 10 minutes)");
        }
        self.load_keys().await?;
        let (signing_since, older): (Option<i64>, Vec<String>) = {
            let keys = self.keys.read().expect("keys lock");
            let created: Vec<i64> = keys.iter().map(|k| k.created_at).collect();
            match signing_index(&created, now) {
                Some(i) => (
                    Some(keys[i].created_at + KEY_PUBLISH_AHEAD_SECS * 1_000_000),
                    keys[i + 1..].iter().map(|k| k.kid.clone()).collect(),
                ),
                None => (None, Vec::new()),
            }
        };
        // A token lives ACCESS_TOKEN_SECS: a minute more and the replaced keys signed none alive.
        let Some(since) = signing_since else { return Ok(Vec::new()) };
        if older.is_empty() || now < since + (ACCESS_TOKEN_SECS + 60) * 1_000_000 {
            return Ok(Vec::new());
        }
        for kid in &older {
            storage::audit::set_resource(kid.clone());
            storage::write!(&self.db, |conn| sqlx::query(
                "UPDATE ob_signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL"
            )
            .bind(now)
            .bind(kid)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        }
        self.load_keys().await?;
        Ok(older)
    }

    fn key_by_kid(&self, kid: Option<&str>) -> Option<Arc<SigningKey>> {
        let keys = self.keys.read().expect("keys lock");
        keys.iter().find(|k| kid == Some(k.kid.as_str())).cloned()
    }

    /// An access token bound to a consent and its grant.
    fn issue_bound(
        &self,
        partner: &Partner,
        scope: String,
        consent_id: &str,
        grant_id: &str,
    ) -> Result<TokenResponse, PlatformError> {
        self.issue(partner, scope, Some(consent_id.to_string()), Some(grant_id.to_string()))
    }

    fn issue(
        &self,
        partner: &Partner,
        scope: String,
        consent_id: Option<String>,
        grant_id: Option<String>,
    ) -> Result<TokenResponse, PlatformError> {
        let key = self.current_key()?;
        let now = self.now_secs();
        let issuer = self.issuer();
        let claims = AccessClaims {
            aud: format!("{issuer}/open-banking"),
            iss: issuer,
            sub: partner.id.clone(),
            client_id: partner.id.clone(),
            scope: scope.clone(),
            iat: now,
            exp: now + ACCESS_TOKEN_SECS,
            jti: Uuid::now_v7().to_string(),
            consent_id,
            grant_id,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        let access_token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| PlatformError::Corrupt(format!("signing: {e}")))?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ACCESS_TOKEN_SECS,
            scope,
            refresh_token: None,
        })
    }

    /// Verifies an access token: our signature, not expired, for this issuer, its partner
    /// still active. Every failure is [`PlatformError::InvalidToken`].
    pub async fn verify(&self, token: &str) -> Result<(AccessClaims, Partner), PlatformError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| PlatformError::InvalidToken)?;
        let key = self.key_by_kid(header.kid.as_deref()).ok_or(PlatformError::InvalidToken)?;
        let issuer = self.issuer();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[format!("{issuer}/open-banking")]);
        validation.set_issuer(&[issuer]);
        validation.leeway = 0;
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|_| PlatformError::InvalidToken)?
            .claims;
        // Expiry by the bank's clock (tests move it).
        if claims.exp <= self.now_secs() {
            return Err(PlatformError::InvalidToken);
        }
        let partner = match self.partner(&claims.client_id).await {
            Ok(p) if p.status == PartnerStatus::Active => p,
            Ok(_) | Err(PlatformError::NotFound(_)) => return Err(PlatformError::InvalidToken),
            Err(e) => return Err(e),
        };
        Ok((claims, partner))
    }

    /// Forgets assertion ids that expired (they can no longer be replayed anyway).
    pub async fn purge_used_assertions(&self) -> Result<u64, PlatformError> {
        let now = self.now_secs();
        let purged: Result<u64, sqlx::Error> = storage::audit::unaudited(async {
            storage::write!(&self.db, |conn| sqlx::query("DELETE FROM ob_assertion_jtis WHERE expires_at < $1")
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))
        })
        .await;
        Ok(purged?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn a_new_key_signs_only_after_it_was_published_ten_minutes() {
        let now = 1_000_000 * MIN;
        // A fresh bank: its only key signs at once.
        assert_eq!(signing_index(&[now], now), Some(0));
        // Newest first: a key added a minute ago waits; the older one signs.
        assert_eq!(signing_index(&[now - MIN, now - 90 * 1440 * MIN], now), Some(1));
        // Ten minutes on, the new one signs.
        assert_eq!(signing_index(&[now - 10 * MIN, now - 90 * 1440 * MIN], now), Some(0));
        assert_eq!(signing_index(&[], now), None);
    }
}
