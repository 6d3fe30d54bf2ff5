//! Consents as a running system: a partner asks for one, the customer authorises it through the
//! bank (pushed authorization request, a one-time code to the customer's phone, the accounts
//! they choose), the partner exchanges the authorization code (PKCE) for tokens bound to the
//! consent, refresh tokens rotate, and every call is checked against the live consent.
//!
//! * Every status change commits with its audit entry (the entry of the request, or of the
//!   housekeeping loop for expiries); a refused request writes nothing.
//! * Secrets (authorization codes, the customer's authorisation session, one-time codes,
//!   refresh tokens) are stored only as keyed hashes (the vault's blind tokens).
//! * A grant is what one authorization code started; its id is the authorization request's id.
//!   Refresh tokens rotate; presenting a spent one revokes the grant (RFC 9700 section 4.14),
//!   and so every access token of the chain at its next use, since consent-bound calls read
//!   the grant along with the consent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use openbank::consent::{
    self, AccessDenied, AuthorizationParams, ConsentFacts, ConsentKind, ConsentSpec, ConsentStatus, LoanTerms,
    PaymentTerms, Permission, RevokedBy,
};
use openbank::OpenBankError;
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::notify::CodeMessage;
use crate::{AccessClaims, OpenBanking, Partner, PlatformError, TokenResponse};

/// How long a pushed authorization request, and the customer's session it starts, lasts.
pub const AUTHORIZATION_SECS: i64 = 600;
/// The prefix of a `request_uri` (RFC 9126).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// An authorization code is exchanged within this time, once.
pub const CODE_SECS: i64 = 60;
/// A one-time code lives this long and allows this many tries; at most this many are sent per
/// authorisation or sign-in.
pub const OTP_SECS: i64 = 300;
pub const OTP_ATTEMPTS: i64 = 5;
pub const OTP_PER_SUBJECT: i64 = 3;
/// A customer's dashboard token lives this long.
pub const CUSTOMER_TOKEN_SECS: i64 = 900;
/// A refresh token lives at most this long (and never past its consent).
pub const REFRESH_TOKEN_SECS: i64 = 90 * 86_400;

const MICROS: i64 = 1_000_000;
const KIND_ACCOUNT_ACCESS: &str = "account_access";

/// A consent: account access, or one domestic payment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Consent {
    pub consent_id: String,
    pub kind: ConsentKind,
    /// The payment's terms (payment consents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiation: Option<PaymentTerms>,
    /// The loan the partner may apply for (loan application consents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loan: Option<LoanTerms>,
    pub partner_id: String,
    /// The partner's name (for the customer's dashboard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_name: Option<String>,
    pub permissions: Vec<Permission>,
    /// The status now (a consent past its time reads as `expired` even before the
    /// housekeeping loop stores it).
    pub status: ConsentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<RevokedBy>,
    /// The consent that replaced this one, when `revoked_by` is `superseded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// The accounts the customer chose (empty until authorised).
    pub accounts: Vec<String>,
    pub expiration_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_from_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_to_time: Option<DateTime<Utc>>,
    /// Unattended calls allowed per day.
    pub frequency_per_day: u32,
    pub creation_time: DateTime<Utc>,
    pub status_update_time: DateTime<Utc>,
    /// The customer (staff and the customer see it; partners never do).
    #[serde(skip)]
    pub customer_id: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConsentRow {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) payment: Option<String>,
    pub(crate) loan: Option<String>,
    pub(crate) partner_id: String,
    pub(crate) permissions: String,
    pub(crate) status: String,
    pub(crate) revoked_by: Option<String>,
    pub(crate) superseded_by: Option<String>,
    pub(crate) customer_id: Option<String>,
    pub(crate) accounts: String,
    pub(crate) expires_at: i64,
    pub(crate) transaction_from: Option<i64>,
    pub(crate) transaction_to: Option<i64>,
    pub(crate) frequency_per_day: i64,
    pub(crate) created_at: i64,
    pub(crate) status_updated_at: i64,
}

pub(crate) const CONSENT_COLUMNS: &str =
    "id, kind, payment, loan, partner_id, permissions, status, revoked_by, superseded_by, customer_id, accounts, \
     expires_at, transaction_from, transaction_to, frequency_per_day, created_at, status_updated_at";

pub(crate) fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl ConsentRow {
    pub(crate) fn kind(&self) -> Result<ConsentKind, PlatformError> {
        ConsentKind::parse(&self.kind).ok_or_else(|| PlatformError::Corrupt(format!("consent {} kind", self.id)))
    }

    pub(crate) fn terms(&self) -> Result<Option<PaymentTerms>, PlatformError> {
        self.payment
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| PlatformError::Corrupt(format!("consent {} payment", self.id)))
    }

    pub(crate) fn loan_terms(&self) -> Result<Option<LoanTerms>, PlatformError> {
        self.loan
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| PlatformError::Corrupt(format!("consent {} loan", self.id)))
    }

    pub(crate) fn status(&self) -> Result<ConsentStatus, PlatformError> {
        ConsentStatus::parse(&self.status).ok_or_else(|| PlatformError::Corrupt(format!("consent {} status", self.id)))
    }

    pub(crate) fn permissions(&self) -> Result<Vec<Permission>, PlatformError> {
        self.permissions
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                Permission::parse(p).ok_or_else(|| PlatformError::Corrupt(format!("consent {} permission", self.id)))
            })
            .collect()
    }

    pub(crate) fn consent(self, now: i64) -> Result<Consent, PlatformError> {
        let kind = self.kind()?;
        let initiation = self.terms()?;
        let loan = self.loan_terms()?;
        let permissions = self.permissions()?;
        let status = ConsentStatus::parse(&self.status)
            .ok_or_else(|| PlatformError::Corrupt(format!("consent {} status", self.id)))?;
        let accounts = split_list(&self.accounts);
        let facts = ConsentFacts {
            partner_id: &self.partner_id,
            status,
            created_at: self.created_at,
            expires_at: self.expires_at,
            permissions: &permissions,
            accounts: &accounts,
        };
        let status = consent::effective_status(&facts, now);
        Ok(Consent {
            consent_id: self.id,
            kind,
            initiation,
            loan,
            partner_id: self.partner_id,
            partner_name: None,
            permissions,
            status,
            revoked_by: self.revoked_by.as_deref().and_then(RevokedBy::parse),
            superseded_by: self.superseded_by,
            accounts,
            expiration_time: time(self.expires_at),
            transaction_from_time: self.transaction_from.map(time),
            transaction_to_time: self.transaction_to.map(time),
            frequency_per_day: u32::try_from(self.frequency_per_day).unwrap_or(0),
            creation_time: time(self.created_at),
            status_update_time: time(self.status_updated_at),
            customer_id: self.customer_id,
        })
    }
}

/// A permission as the customer reads it on the consent screen.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PermissionText {
    pub permission: Permission,
    pub zh: String,
    pub en: String,
}

/// What the customer sees when a partner sends them to the bank to authorise a consent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorizationView {
    /// The authorisation's id (the tail of the `request_uri`).
    pub authorization_id: String,
    pub partner_name: String,
    pub consent_id: String,
    /// `account_access`, `domestic_payment` or `loan_application`: what the screen asks.
    pub kind: ConsentKind,
    pub permissions: Vec<PermissionText>,
    /// The payment the customer is asked to authorise (payment consents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiation: Option<PaymentTerms>,
    /// The loan the partner may apply for (loan application consents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loan: Option<LoanTerms>,
    pub expiration_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_from_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_to_time: Option<DateTime<Utc>>,
    /// `pushed` (waiting for the customer), `authenticated` (code entered), `authorised`,
    /// `rejected`.
    pub status: String,
    /// When this authorisation session ends.
    pub expires_at: DateTime<Utc>,
}

/// An account the customer may choose for a consent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountChoice {
    pub account_id: String,
    pub currency: String,
    /// The product code (`deposit.current`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

/// The answer to a pushed authorization request (RFC 9126 section 2.2).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushedAuthorization {
    pub request_uri: String,
    pub expires_in: i64,
}

/// The customer's decision on a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDecision {
    Authorise,
    Reject,
}

/// What a consent lets one call do, once [`OpenBanking::use_consent`] passed it.
#[derive(Debug, Clone)]
pub struct ConsentAccess {
    pub consent_id: String,
    pub customer_id: String,
    pub permissions: Vec<Permission>,
    pub accounts: Vec<String>,
    pub transaction_window: (Option<i64>, Option<i64>),
}

/// The claims of a customer's dashboard token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CustomerClaims {
    iss: String,
    aud: String,
    sub: String,
    iat: i64,
    exp: i64,
}

/// A started customer sign-in (the code went to their phone).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeSent {
    /// The sign-in challenge to answer (sign-in only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
    /// Where the code went, masked (`139****0001`); absent when no customer has that number
    /// (the answer does not say whether one does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<String>,
    pub expires_in: i64,
}

/// A customer's dashboard token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rngs::OsRng.gen();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn invalid_grant(why: &str) -> PlatformError {
    PlatformError::InvalidGrant(why.to_string())
}

fn authorization_failed(why: impl Into<String>) -> PlatformError {
    PlatformError::Authorization(why.into())
}

#[derive(sqlx::FromRow)]
struct AuthorizationRow {
    id: String,
    partner_id: String,
    consent_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    status: String,
    customer_id: Option<String>,
    session_hash: Option<String>,
    code_expires_at: Option<i64>,
    code_used_at: Option<i64>,
    expires_at: i64,
}

const AUTHORIZATION_COLUMNS: &str = "id, partner_id, consent_id, redirect_uri, scope, state, code_challenge, status, \
     customer_id, session_hash, code_expires_at, code_used_at, expires_at";

impl OpenBanking {
    fn hash(&self, domain: &str, secret: &str) -> String {
        self.vault.blind_token(domain, secret)
    }

    // ---- consents (partner side) ------------------------------------------------------------

    /// Stores a partner's consent request, awaiting the customer's authorisation.
    pub async fn create_consent(&self, partner: &Partner, spec: ConsentSpec) -> Result<Consent, PlatformError> {
        let id = format!("aac-{}", Uuid::now_v7().simple());
        let now = self.clock.now_micros();
        storage::audit::set_resource(id.clone());
        storage::audit::set_purpose(id.clone());
        let permissions: Vec<&str> = spec.permissions.iter().map(|p| p.as_str()).collect();
        storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO ob_consents (id, partner_id, kind, permissions, status, expires_at, transaction_from, \
             transaction_to, frequency_per_day, created_at, status_updated_at) \
             VALUES ($1, $2, $3, $4, 'awaiting_authorisation', $5, $6, $7, $8, $9, $9)"
        )
        .bind(&id)
        .bind(&partner.id)
        .bind(KIND_ACCOUNT_ACCESS)
        .bind(permissions.join(","))
        .bind(spec.expires_at)
        .bind(spec.transaction_from)
        .bind(spec.transaction_to)
        .bind(i64::from(spec.frequency_per_day))
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        self.consent(&id).await
    }

    /// A consent by id, with its status as of now.
    pub async fn consent(&self, id: &str) -> Result<Consent, PlatformError> {
        let row: Option<ConsentRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {CONSENT_COLUMNS} FROM ob_consents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| PlatformError::ConsentNotFound(id.to_string()))?.consent(self.clock.now_micros())
    }

    /// A partner's own consent; another partner's is "not found".
    pub async fn partner_consent(&self, partner_id: &str, id: &str) -> Result<Consent, PlatformError> {
        match self.consent(id).await {
            Ok(c) if c.partner_id == partner_id => Ok(c),
            Ok(_) => Err(PlatformError::ConsentNotFound(id.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Revokes a consent (by its partner or its customer): the partner's next call is refused
    /// with `consent_revoked` (every consent-bound call reads the consent) and its refresh
    /// tokens stop working. A consent already final is a conflict and writes nothing.
    pub async fn revoke_consent(&self, consent: &Consent, by: RevokedBy) -> Result<Consent, PlatformError> {
        if !consent.status.can_become(ConsentStatus::Revoked) {
            return Err(PlatformError::ConsentState(format!(
                "consent {} is {} and cannot be revoked",
                consent.consent_id,
                consent.status.as_str()
            )));
        }
        let now = self.clock.now_micros();
        storage::audit::set_resource(consent.consent_id.clone());
        storage::audit::set_purpose(consent.consent_id.clone());
        let id = consent.consent_id.clone();
        let event = crate::consent_event(consent, "consent.revoked", Some(by.as_str()), now);
        let changed: u64 = storage::transaction!(&self.db, |tx| async {
            let changed = sqlx::query(
                "UPDATE ob_consents SET status = 'revoked', revoked_by = $1, status_updated_at = $2 \
                 WHERE id = $3 AND status IN ('authorised', 'awaiting_authorisation') AND expires_at > $2",
            )
            .bind(by.as_str())
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed > 0 {
                event.query().execute(&mut *tx).await?;
            }
            Ok::<u64, PlatformError>(changed)
        }
        .await)?;
        if changed == 0 {
            // Its status moved on between the read and the write (expired, or revoked twice).
            let now_consent = self.consent(&id).await?;
            return Err(PlatformError::ConsentState(format!(
                "consent {id} is {} and cannot be revoked",
                now_consent.status.as_str()
            )));
        }
        self.consent(&id).await
    }

    /// A customer's consents, newest first (at most 200), with the partners' names.
    pub async fn customer_consents(&self, customer_id: &str) -> Result<Vec<Consent>, PlatformError> {
        let rows: Vec<(ConsentRow, String)> = {
            let rows: Vec<ConsentRowWithName> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
                "SELECT {}, p.name AS partner_name FROM ob_consents c JOIN ob_partners p ON p.id = c.partner_id \
                 WHERE c.customer_id = $1 ORDER BY c.created_at DESC LIMIT 200",
                CONSENT_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ")
            ))
            .bind(customer_id)
            .fetch_all(conn)
            .await)?;
            rows.into_iter().map(|r| (r.row, r.partner_name)).collect()
        };
        let now = self.clock.now_micros();
        rows.into_iter()
            .map(|(row, name)| {
                let mut c = row.consent(now)?;
                c.partner_name = Some(name);
                Ok(c)
            })
            .collect()
    }

    /// Checks one call of a consent-bound token: the token's grant not revoked, the consent
    /// its partner's, live, granting `permission` (and `account`, when the call names one).
    /// Without the customer present (`customer_present` false) the call also counts against
    /// the consent's unattended calls of the day; over the limit is
    /// [`PlatformError::AccessExceeded`].
    pub async fn use_consent(
        &self,
        claims: &AccessClaims,
        permission: Permission,
        account: Option<&str>,
        customer_present: bool,
    ) -> Result<ConsentAccess, PlatformError> {
        let (row, grant_revoked) = self.bound_consent(claims, ConsentKind::AccountAccess).await?;
        let now = self.clock.now_micros();
        let permissions = row.permissions()?;
        let accounts = split_list(&row.accounts);
        let status = ConsentStatus::parse(&row.status)
            .ok_or_else(|| PlatformError::Corrupt(format!("consent {} status", row.id)))?;
        let facts = ConsentFacts {
            partner_id: &row.partner_id,
            status,
            created_at: row.created_at,
            expires_at: row.expires_at,
            permissions: &permissions,
            accounts: &accounts,
        };
        // The consent's own refusal first: a revoked consent answers consent_revoked.
        consent::check_access(&facts, now, permission, account).map_err(PlatformError::Denied)?;
        if grant_revoked {
            // The token's chain was revoked (a reused refresh token or code).
            return Err(PlatformError::InvalidToken);
        }
        if !customer_present {
            let limit = row.frequency_per_day;
            let day = consent::usage_day(now);
            // Bookkeeping, not a change of its own: the call is recorded as a read.
            let counted: Result<u64, sqlx::Error> = storage::audit::unaudited(async {
                storage::write!(&self.db, |conn| sqlx::query(
                    "INSERT INTO ob_consent_usage (consent_id, day, calls) VALUES ($1, $2, 1) \
                     ON CONFLICT (consent_id, day) DO UPDATE SET calls = ob_consent_usage.calls + 1 \
                     WHERE ob_consent_usage.calls < $3"
                )
                .bind(&row.id)
                .bind(day)
                .bind(limit)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))
            })
            .await;
            if counted? == 0 {
                return Err(PlatformError::AccessExceeded(limit));
            }
        }
        Ok(ConsentAccess {
            consent_id: row.id,
            customer_id: row.customer_id.unwrap_or_default(),
            permissions,
            accounts,
            transaction_window: (row.transaction_from, row.transaction_to),
        })
    }

    /// The consent a token is bound to, of `kind`, with whether its grant (refresh chain) was
    /// revoked: one read, made by every consent-bound call. A client-credentials token is bound
    /// to none and reaches no customer data; a consent of another partner (or none) makes the
    /// token invalid.
    pub(crate) async fn bound_consent(
        &self,
        claims: &AccessClaims,
        kind: ConsentKind,
    ) -> Result<(ConsentRow, bool), PlatformError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {}, g.revoked_at AS grant_revoked_at FROM ob_consents c JOIN ob_grants g ON g.id = $2 \
                 WHERE c.id = $1 AND g.consent_id = c.id",
                CONSENT_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ")
            )
        });
        let (Some(consent_id), Some(grant_id)) = (claims.consent_id.as_deref(), claims.grant_id.as_deref()) else {
            return Err(PlatformError::Denied(AccessDenied::NotAuthorised));
        };
        let found: Option<ConsentRowWithGrant> = storage::read!(&self.db, |conn| sqlx::query_as(SQL.as_str())
            .bind(consent_id)
            .bind(grant_id)
            .fetch_optional(conn)
            .await)?;
        let found = found.filter(|f| f.row.partner_id == claims.client_id).ok_or(PlatformError::InvalidToken)?;
        if found.row.kind()? != kind {
            return Err(PlatformError::Denied(AccessDenied::WrongKind));
        }
        Ok((found.row, found.grant_revoked_at.is_some()))
    }

    /// Whether a consent-bound token is still good beyond its signature and expiry: its grant
    /// not revoked and its consent authorised now (for introspection).
    pub async fn bound_token_live(&self, claims: &AccessClaims) -> Result<bool, PlatformError> {
        if claims.consent_id.is_none() {
            return Ok(true);
        }
        match self.bound_consent(claims, ConsentKind::of_scope(&claims.scope)).await {
            Ok((row, false)) => Ok(row.consent(self.clock.now_micros())?.status == ConsentStatus::Authorised),
            Ok((_, true)) | Err(PlatformError::InvalidToken | PlatformError::Denied(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores the expiry of consents past their time (authorised ones past their expiration,
    /// and ones never authorised within the hour); access stopped already, since calls read
    /// the status as of now. Returns the expired consents' ids.
    pub async fn expire_consents(&self) -> Result<Vec<String>, PlatformError> {
        let now = self.clock.now_micros();
        let unconfirmed_before = now - consent::AWAITING_AUTHORISATION_SECS * MICROS;
        let due: Vec<(String, String, String)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT id, partner_id, kind FROM ob_consents WHERE (status = 'authorised' AND expires_at <= $1) \
             OR (status = 'awaiting_authorisation' AND (expires_at <= $1 OR created_at <= $2)) LIMIT 1000"
        )
        .bind(now)
        .bind(unconfirmed_before)
        .fetch_all(conn)
        .await)?;
        let mut expired = Vec::new();
        for (id, partner_id, kind) in due {
            storage::audit::set_resource(id.clone());
            let event = crate::partner_event(
                &partner_id,
                "consent.expired",
                serde_json::json!({"consent_id": id, "kind": kind, "status": "expired"}),
                now,
            );
            let changed: u64 = storage::transaction!(&self.db, |tx| async {
                let changed = sqlx::query(
                    "UPDATE ob_consents SET status = 'expired', status_updated_at = $1 WHERE id = $2 \
                     AND ((status = 'authorised' AND expires_at <= $1) \
                     OR (status = 'awaiting_authorisation' AND (expires_at <= $1 OR created_at <= $3)))",
                )
                .bind(now)
                .bind(&id)
                .bind(unconfirmed_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed > 0 {
                    event.query().execute(&mut *tx).await?;
                }
                Ok::<u64, PlatformError>(changed)
            }
            .await)?;
            if changed > 0 {
                expired.push(id);
            }
        }
        Ok(expired)
    }

    // ---- the authorization-code flow ------------------------------------------------------

    /// A pushed authorization request (RFC 9126): the partner, authenticated by its client
    /// assertion, names the consent to authorise, its redirect URI and its PKCE challenge, and
    /// gets a `request_uri` to send the customer to.
    pub async fn push_authorization(
        &self,
        client_id: Option<&str>,
        assertion: &str,
        params: &AuthorizationParams<'_>,
    ) -> Result<PushedAuthorization, PlatformError> {
        let (partner, jti, until) = self.verify_assertion(client_id, assertion).await?;
        let spec = consent::check_authorization(params, &partner.redirect_uris, &partner.roles)?;
        let consent = match self.partner_consent(&partner.id, &spec.consent_id).await {
            Ok(c) => c,
            Err(PlatformError::ConsentNotFound(_)) => {
                return Err(PlatformError::Domain(OpenBankError::Invalid(format!(
                    "consent_id {:?} is not a consent of this client",
                    spec.consent_id
                ))))
            }
            Err(e) => return Err(e),
        };
        if consent.kind.scope() != spec.scope {
            return Err(PlatformError::Domain(OpenBankError::Invalid(format!(
                "consent {} is a {} consent: ask for scope {}",
                consent.consent_id,
                consent.kind.as_str(),
                consent.kind.scope()
            ))));
        }
        if consent.status != ConsentStatus::AwaitingAuthorisation {
            return Err(PlatformError::Domain(OpenBankError::Invalid(format!(
                "consent {} is {}, not awaiting authorisation",
                consent.consent_id,
                consent.status.as_str()
            ))));
        }
        let id = random_secret();
        let now = self.clock.now_micros();
        storage::audit::set_resource(consent.consent_id.clone());
        storage::audit::set_purpose(consent.consent_id.clone());
        let spend = self.spend_statement(&partner.id, &jti, until);
        storage::transaction!(&self.db, |tx| {
            async {
            let spent = spend.query().execute(&mut *tx).await?.rows_affected();
            if spent == 0 {
                return Err(replayed());
            }
            sqlx::query(
                "INSERT INTO ob_authorizations (id, partner_id, consent_id, redirect_uri, scope, state, code_challenge, \
                 status, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pushed', $8, $9)",
            )
            .bind(&id)
            .bind(&partner.id)
            .bind(&consent.consent_id)
            .bind(&spec.redirect_uri)
            .bind(&spec.scope)
            .bind(&spec.state)
            .bind(&spec.code_challenge)
            .bind(now + AUTHORIZATION_SECS * MICROS)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ok::<(), PlatformError>(())
        }
        .await
        })?;
        Ok(PushedAuthorization { request_uri: format!("{REQUEST_URI_PREFIX}{id}"), expires_in: AUTHORIZATION_SECS })
    }

    async fn authorization_row(&self, id: &str) -> Result<AuthorizationRow, PlatformError> {
        let row: Option<AuthorizationRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {AUTHORIZATION_COLUMNS} FROM ob_authorizations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        let row = row.ok_or_else(|| authorization_failed("no such authorization request (or it has expired)"))?;
        if row.expires_at <= self.clock.now_micros() {
            return Err(authorization_failed(
                "the authorization request has expired; go back to the partner and start again",
            ));
        }
        Ok(row)
    }

    /// The authorization request a `request_uri` names, for the consent screen. `client_id`
    /// must be the partner that pushed it.
    pub async fn authorization(&self, client_id: &str, request_uri: &str) -> Result<AuthorizationView, PlatformError> {
        let id = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .ok_or_else(|| authorization_failed(format!("request_uri must start with {REQUEST_URI_PREFIX}")))?;
        let row = self.authorization_row(id).await?;
        if row.partner_id != client_id {
            return Err(authorization_failed("client_id does not match the authorization request"));
        }
        self.authorization_view(row).await
    }

    /// The consent screen's view of an authorization by its id.
    pub async fn authorization_by_id(&self, id: &str) -> Result<AuthorizationView, PlatformError> {
        let row = self.authorization_row(id).await?;
        self.authorization_view(row).await
    }

    async fn authorization_view(&self, row: AuthorizationRow) -> Result<AuthorizationView, PlatformError> {
        let consent = self.consent(&row.consent_id).await?;
        let partner = self.partner(&row.partner_id).await?;
        Ok(AuthorizationView {
            authorization_id: row.id,
            partner_name: partner.name,
            consent_id: consent.consent_id,
            kind: consent.kind,
            initiation: consent.initiation,
            loan: consent.loan,
            permissions: consent
                .permissions
                .iter()
                .map(|&p| {
                    let (zh, en) = p.describe();
                    PermissionText { permission: p, zh: zh.into(), en: en.into() }
                })
                .collect(),
            expiration_time: consent.expiration_time,
            transaction_from_time: consent.transaction_from_time,
            transaction_to_time: consent.transaction_to_time,
            status: row.status,
            expires_at: time(row.expires_at),
        })
    }

    /// Sends a one-time code for `purpose`/`subject` to the customer's phone through the
    /// notifier, storing only its keyed hash. At most [`OTP_PER_SUBJECT`] per subject.
    async fn send_code(
        &self,
        purpose: &str,
        subject: &str,
        customer_id: &str,
        phone: &str,
        partner_name: Option<String>,
    ) -> Result<String, PlatformError> {
        let (sent,): (i64,) = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT COUNT(*) FROM ob_otp_challenges WHERE subject = $1 AND purpose = $2"
        )
        .bind(subject)
        .bind(purpose)
        .fetch_one(conn)
        .await)?;
        if sent >= OTP_PER_SUBJECT {
            return Err(PlatformError::TooManyAttempts(format!(
                "at most {OTP_PER_SUBJECT} codes are sent; start again"
            )));
        }
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let id = Uuid::now_v7().to_string();
        let now = self.clock.now_micros();
        let message = CodeMessage {
            customer_id: customer_id.to_string(),
            phone: phone.to_string(),
            purpose: purpose.to_string(),
            partner_name,
            code: code.clone(),
            expires_in_secs: OTP_SECS,
        };
        storage::write!(&self.db, |conn| {
            sqlx::query(
            "INSERT INTO ob_otp_challenges (id, purpose, subject, customer_id, code_hash, attempts, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)"
        )
        .bind(&id)
        .bind(purpose)
        .bind(subject)
        .bind(customer_id)
        .bind(self.hash("ob.otp", &format!("{id}:{code}")))
        .bind(now + OTP_SECS * MICROS)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
        })?;
        self.notifier.deliver(&message).await.map_err(PlatformError::Notifier)?;
        Ok(id)
    }

    /// Checks the latest code of `purpose`/`subject`; a wrong code spends an attempt. Returns
    /// the customer it was sent to.
    async fn check_code(&self, purpose: &str, subject: &str, code: &str) -> Result<String, PlatformError> {
        let latest: Option<(String, String, String, i64, i64, Option<i64>)> = storage::read!(&self.db, |conn| {
            sqlx::query_as(
                "SELECT id, customer_id, code_hash, attempts, expires_at, verified_at FROM ob_otp_challenges \
             WHERE subject = $1 AND purpose = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(subject)
            .bind(purpose)
            .fetch_optional(conn)
            .await
        })?;
        let wrong = || PlatformError::InvalidCode("the code is wrong or has expired".into());
        let Some((id, customer_id, hash, attempts, expires_at, verified_at)) = latest else { return Err(wrong()) };
        if verified_at.is_some() || expires_at <= self.clock.now_micros() {
            return Err(wrong());
        }
        if attempts >= OTP_ATTEMPTS {
            return Err(PlatformError::TooManyAttempts("too many wrong codes; ask for a new one".into()));
        }
        let now = self.clock.now_micros();
        let matches = self.hash("ob.otp", &format!("{id}:{}", code.trim())) == hash;
        if !matches {
            // The failed try is bookkeeping; the audit trail records the refused request.
            let spent: Result<u64, sqlx::Error> = storage::audit::unaudited(async {
                storage::write!(&self.db, |conn| sqlx::query(
                    "UPDATE ob_otp_challenges SET attempts = attempts + 1 WHERE id = $1"
                )
                .bind(&id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))
            })
            .await;
            spent?;
            return Err(wrong());
        }
        let used = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE ob_otp_challenges SET verified_at = $1 WHERE id = $2 AND verified_at IS NULL"
        )
        .bind(now)
        .bind(&id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if used == 0 {
            return Err(wrong());
        }
        Ok(customer_id)
    }

    /// Step 1 of the consent screen: the customer gave their phone number; `customer` is the
    /// one active customer with that number, when there is one. The answer does not tell
    /// whether there is.
    pub async fn start_authentication(
        &self,
        authorization_id: &str,
        customer: Option<(String, String)>,
    ) -> Result<CodeSent, PlatformError> {
        let row = self.authorization_row(authorization_id).await?;
        if row.status != "pushed" {
            return Err(authorization_failed(format!("this authorization is {} already", row.status)));
        }
        let Some((customer_id, phone)) = customer else {
            return Ok(CodeSent { challenge_id: None, sent_to: None, expires_in: OTP_SECS });
        };
        let partner = self.partner(&row.partner_id).await?;
        storage::audit::set_resource(row.consent_id.clone());
        self.send_code("authorise", authorization_id, &customer_id, &phone, Some(partner.name)).await?;
        Ok(CodeSent { challenge_id: None, sent_to: Some(customer::mask_phone(&phone)), expires_in: OTP_SECS })
    }

    /// Step 2: the customer entered the code. Returns the session secret the decision needs
    /// (only the customer's browser has it, not the partner) and the accounts to choose from.
    pub async fn verify_authentication(
        &self,
        authorization_id: &str,
        code: &str,
    ) -> Result<(String, String), PlatformError> {
        let row = self.authorization_row(authorization_id).await?;
        if row.status != "pushed" {
            return Err(authorization_failed(format!("this authorization is {} already", row.status)));
        }
        let customer_id = self.check_code("authorise", authorization_id, code).await?;
        let session = random_secret();
        storage::audit::set_actor("customer", customer_id.clone());
        storage::audit::set_resource(row.consent_id.clone());
        storage::audit::set_purpose(row.consent_id.clone());
        let changed = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE ob_authorizations SET status = 'authenticated', customer_id = $1, session_hash = $2 \
             WHERE id = $3 AND status = 'pushed'"
        )
        .bind(&customer_id)
        .bind(self.hash("ob.session", &session))
        .bind(authorization_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(authorization_failed("this authorization moved on"));
        }
        Ok((session, customer_id))
    }

    /// The customer's accounts a consent may cover: their open accounts in the ledger, without
    /// a loan's internal sub-ledgers (its interest, fee and penalty receivables; the loan shows
    /// as its principal account).
    pub async fn account_choices(&self, customer_id: &str) -> Result<Vec<AccountChoice>, PlatformError> {
        let accounts = self.ledger.customer_accounts(&[customer_id.to_string()]).await?;
        Ok(accounts
            .into_iter()
            .filter(|a| a.status != ledger::AccountStatus::Closed)
            .filter(|a| !a.code.as_deref().is_some_and(|c| c.ends_with("_receivable")))
            .map(|a| AccountChoice {
                account_id: a.id.0.to_string(),
                currency: a.currency.to_string(),
                product: a.code,
            })
            .collect())
    }

    /// Step 2 for a customer who already entered the code: their accounts, with the session.
    pub async fn session_customer(&self, authorization_id: &str, session: &str) -> Result<String, PlatformError> {
        let row = self.authorization_row(authorization_id).await?;
        match (&row.session_hash, &row.customer_id) {
            (Some(hash), Some(customer)) if *hash == self.hash("ob.session", session) => Ok(customer.clone()),
            _ => Err(authorization_failed("the authorisation session is not valid; enter the code again")),
        }
    }

    /// Step 3: the customer authorises (with the accounts they chose) or rejects. Returns where
    /// to send the customer's browser: the partner's redirect URI with the code (or
    /// `error=access_denied`), the state and the issuer (RFC 9207).
    pub async fn decide(
        &self,
        authorization_id: &str,
        session: &str,
        decision: ConsentDecision,
        accounts: &[String],
    ) -> Result<String, PlatformError> {
        let customer_id = self.session_customer(authorization_id, session).await?;
        let row = self.authorization_row(authorization_id).await?;
        if row.status != "authenticated" {
            return Err(authorization_failed(format!("this authorization is {} already", row.status)));
        }
        let now = self.clock.now_micros();
        storage::audit::set_actor("customer", customer_id.clone());
        storage::audit::set_resource(row.consent_id.clone());
        storage::audit::set_purpose(row.consent_id.clone());
        let issuer = self.issuer();
        let mut redirect = url_with_query(&row.redirect_uri);
        if decision == ConsentDecision::Reject {
            let event = crate::partner_event(
                &row.partner_id,
                "consent.rejected",
                serde_json::json!({"consent_id": row.consent_id, "status": "rejected"}),
                now,
            );
            let changed: u64 = storage::transaction!(&self.db, |tx| async {
                let changed = sqlx::query(
                    "UPDATE ob_consents SET status = 'rejected', customer_id = $1, status_updated_at = $2 \
                     WHERE id = $3 AND status = 'awaiting_authorisation'",
                )
                .bind(&customer_id)
                .bind(now)
                .bind(&row.consent_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query("UPDATE ob_authorizations SET status = 'rejected' WHERE id = $1")
                    .bind(authorization_id)
                    .execute(&mut *tx)
                    .await?;
                if changed > 0 {
                    event.query().execute(&mut *tx).await?;
                }
                Ok::<u64, PlatformError>(changed)
            }
            .await)?;
            if changed == 0 {
                return Err(authorization_failed("the consent is no longer awaiting authorisation"));
            }
            redirect.push_str("error=access_denied&error_description=the+customer+rejected+the+consent");
            append_state_and_issuer(&mut redirect, row.state.as_deref(), &issuer);
            return Ok(redirect);
        }
        let consent = self.consent(&row.consent_id).await?;
        if consent.status != ConsentStatus::AwaitingAuthorisation {
            return Err(authorization_failed(format!("the consent is {}", consent.status.as_str())));
        }
        let mut chosen: Vec<String> = accounts.to_vec();
        chosen.sort();
        chosen.dedup();
        if chosen.is_empty() {
            return Err(authorization_failed("choose at least one account"));
        }
        if consent.kind.one_account() && chosen.len() != 1 {
            return Err(authorization_failed(match consent.kind {
                ConsentKind::LoanApplication => "choose the one account the loan is paid out to",
                _ => "choose the one account the payment is made from",
            }));
        }
        let own: Vec<String> = self.account_choices(&customer_id).await?.into_iter().map(|a| a.account_id).collect();
        if let Some(foreign) = chosen.iter().find(|a| !own.contains(a)) {
            return Err(authorization_failed(format!("account {foreign} is not one of yours")));
        }
        let code = random_secret();
        let code_hash = self.hash("ob.code", &code);
        let consent_id = row.consent_id.clone();
        let partner_id = row.partner_id.clone();
        let authorised = crate::consent_event(&consent, "consent.authorised", None, now);
        storage::transaction!(&self.db, |tx| {
            async {
            let changed = sqlx::query(
                "UPDATE ob_consents SET status = 'authorised', customer_id = $1, accounts = $2, status_updated_at = $3 \
                 WHERE id = $4 AND status = 'awaiting_authorisation'",
            )
            .bind(&customer_id)
            .bind(chosen.join(","))
            .bind(now)
            .bind(&consent_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                return Err(authorization_failed("the consent is no longer awaiting authorisation"));
            }
            // Berlin Group: a newer account-access consent of the same partner for the same
            // customer supersedes the older one; its tokens stop with it (calls read the
            // consent). Payment consents are single payments and supersede nothing.
            sqlx::query(
                "UPDATE ob_consents SET status = 'revoked', revoked_by = 'superseded', superseded_by = $1, \
                 status_updated_at = $2 WHERE partner_id = $3 AND customer_id = $4 AND kind = $5 \
                 AND $5 = 'account_access' AND status = 'authorised' AND id <> $1",
            )
            .bind(&consent_id)
            .bind(now)
            .bind(&partner_id)
            .bind(&customer_id)
            .bind(consent.kind.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE ob_authorizations SET status = 'authorised', code_hash = $1, code_expires_at = $2 WHERE id = $3",
            )
            .bind(&code_hash)
            .bind(now + CODE_SECS * MICROS)
            .bind(authorization_id)
            .execute(&mut *tx)
            .await?;
            authorised.query().execute(&mut *tx).await?;
            Ok::<(), PlatformError>(())
        }
        .await
        })?;
        redirect.push_str("code=");
        redirect.push_str(&code);
        append_state_and_issuer(&mut redirect, row.state.as_deref(), &issuer);
        Ok(redirect)
    }

    /// The authorization-code grant: the partner (authenticated) exchanges the code, with the
    /// same redirect URI and the PKCE verifier, for an access token bound to the consent and a
    /// refresh token. A code used twice revokes what the first use issued.
    pub async fn exchange_code(
        &self,
        client_id: Option<&str>,
        assertion: &str,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, PlatformError> {
        let (partner, jti, until) = self.verify_assertion(client_id, assertion).await?;
        let hash = self.hash("ob.code", code);
        let row: Option<AuthorizationRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {AUTHORIZATION_COLUMNS} FROM ob_authorizations WHERE code_hash = $1"
        ))
        .bind(&hash)
        .fetch_optional(conn)
        .await)?;
        let row = row
            .filter(|r| r.partner_id == partner.id)
            .ok_or_else(|| invalid_grant("the authorization code is invalid"))?;
        let now = self.clock.now_micros();
        if row.code_used_at.is_some() {
            // RFC 6749 section 4.1.2: a code used twice revokes the tokens issued with it.
            storage::audit::set_resource(row.consent_id.clone());
            storage::write!(&self.db, |conn| sqlx::query(
                "UPDATE ob_grants SET revoked_at = $1, revoked_reason = 'authorization code reused' \
                 WHERE id = $2 AND revoked_at IS NULL"
            )
            .bind(now)
            .bind(&row.id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
            return Err(invalid_grant("the authorization code was used before; the tokens issued with it are revoked"));
        }
        if row.code_expires_at.is_none_or(|t| t <= now) {
            return Err(invalid_grant("the authorization code has expired"));
        }
        if redirect_uri != Some(row.redirect_uri.as_str()) {
            return Err(invalid_grant("redirect_uri does not match the authorization request"));
        }
        if !verifier.is_some_and(|v| consent::pkce_matches(v, &row.code_challenge)) {
            return Err(invalid_grant("code_verifier does not match the code_challenge (PKCE S256)"));
        }
        let consent = self.consent(&row.consent_id).await?;
        if consent.status != ConsentStatus::Authorised {
            return Err(invalid_grant("the consent is no longer authorised"));
        }
        let refresh = random_secret();
        let refresh_until = (now + REFRESH_TOKEN_SECS * MICROS).min(consent.expiration_time.timestamp_micros());
        storage::audit::set_resource(row.consent_id.clone());
        storage::audit::set_purpose(row.consent_id.clone());
        let spend = self.spend_statement(&partner.id, &jti, until);
        storage::transaction!(&self.db, |tx| async {
            let spent = spend.query().execute(&mut *tx).await?.rows_affected();
            if spent == 0 {
                return Err(replayed());
            }
            let used =
                sqlx::query("UPDATE ob_authorizations SET code_used_at = $1 WHERE id = $2 AND code_used_at IS NULL")
                    .bind(now)
                    .bind(&row.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if used == 0 {
                return Err(invalid_grant("the authorization code was used before"));
            }
            sqlx::query(
                "INSERT INTO ob_grants (id, partner_id, consent_id, scope, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&row.id)
            .bind(&partner.id)
            .bind(&row.consent_id)
            .bind(&row.scope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO ob_refresh_tokens (token_hash, grant_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(self.hash("ob.refresh", &refresh))
            .bind(&row.id)
            .bind(refresh_until)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ok::<(), PlatformError>(())
        }
        .await)?;
        let mut response = self.issue_bound(&partner, row.scope, &row.consent_id, &row.id)?;
        response.refresh_token = Some(refresh);
        Ok(response)
    }

    /// The refresh-token grant: rotates the token. A spent token presented again revokes the
    /// whole grant (every refresh and access token descended from the same code).
    pub async fn refresh(
        &self,
        client_id: Option<&str>,
        assertion: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, PlatformError> {
        let (partner, jti, until) = self.verify_assertion(client_id, assertion).await?;
        let hash = self.hash("ob.refresh", refresh_token);
        let found: Option<RefreshRow> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT t.grant_id, t.expires_at, t.used_at, g.partner_id, g.consent_id, g.scope, g.revoked_at \
             FROM ob_refresh_tokens t JOIN ob_grants g ON g.id = t.grant_id WHERE t.token_hash = $1"
        )
        .bind(&hash)
        .fetch_optional(conn)
        .await)?;
        let Some(RefreshRow {
            grant_id,
            expires_at,
            used_at,
            partner_id: grant_partner,
            consent_id,
            scope,
            revoked_at,
        }) = found
        else {
            return Err(invalid_grant("the refresh token is invalid"));
        };
        if grant_partner != partner.id {
            return Err(invalid_grant("the refresh token is invalid"));
        }
        let now = self.clock.now_micros();
        if revoked_at.is_some() {
            return Err(invalid_grant("the refresh token was revoked"));
        }
        if used_at.is_some() {
            self.revoke_grant(&grant_id, &consent_id, "refresh token reused").await?;
            return Err(invalid_grant("the refresh token was used before: the whole chain is revoked"));
        }
        if expires_at <= now {
            return Err(invalid_grant("the refresh token has expired"));
        }
        let consent = self.consent(&consent_id).await?;
        if consent.status != ConsentStatus::Authorised {
            return Err(invalid_grant(&format!("the consent is {}", consent.status.as_str())));
        }
        let next = random_secret();
        storage::audit::set_resource(consent_id.clone());
        storage::audit::set_purpose(consent_id.clone());
        let spend = self.spend_statement(&partner.id, &jti, until);
        let rotated: bool = storage::transaction!(&self.db, |tx| async {
            let spent = spend.query().execute(&mut *tx).await?.rows_affected();
            if spent == 0 {
                return Err(replayed());
            }
            let used =
                sqlx::query("UPDATE ob_refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
                    .bind(now)
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if used == 0 {
                return Ok::<bool, PlatformError>(false);
            }
            sqlx::query(
                "INSERT INTO ob_refresh_tokens (token_hash, grant_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(self.hash("ob.refresh", &next))
            .bind(&grant_id)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ok(true)
        }
        .await)?;
        if !rotated {
            // Another request spent it first: a reuse.
            self.revoke_grant(&grant_id, &consent_id, "refresh token reused").await?;
            return Err(invalid_grant("the refresh token was used before: the whole chain is revoked"));
        }
        let mut response = self.issue_bound(&partner, scope, &consent_id, &grant_id)?;
        response.refresh_token = Some(next);
        Ok(response)
    }

    async fn revoke_grant(&self, grant_id: &str, consent_id: &str, reason: &str) -> Result<(), PlatformError> {
        let now = self.clock.now_micros();
        storage::audit::set_resource(consent_id.to_string());
        storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE ob_grants SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL"
        )
        .bind(now)
        .bind(reason)
        .bind(grant_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    // ---- the customer's consent dashboard -------------------------------------------------

    /// Starts a customer's sign-in to their consent dashboard: a code to the phone of the one
    /// active customer with that number (`customer`), when there is one.
    pub async fn start_customer_sign_in(&self, customer: Option<(String, String)>) -> Result<CodeSent, PlatformError> {
        let challenge = Uuid::now_v7().to_string();
        let Some((customer_id, phone)) = customer else {
            return Ok(CodeSent { challenge_id: Some(challenge), sent_to: None, expires_in: OTP_SECS });
        };
        storage::audit::set_resource(customer_id.clone());
        self.send_code("sign_in", &challenge, &customer_id, &phone, None).await?;
        Ok(CodeSent {
            challenge_id: Some(challenge),
            sent_to: Some(customer::mask_phone(&phone)),
            expires_in: OTP_SECS,
        })
    }

    /// Finishes the sign-in: the right code gives a short-lived customer token.
    pub async fn finish_customer_sign_in(
        &self,
        challenge_id: &str,
        code: &str,
    ) -> Result<CustomerToken, PlatformError> {
        let customer_id = self.check_code("sign_in", challenge_id, code).await?;
        let key = self.current_key()?;
        let now = self.clock.now_micros().div_euclid(MICROS);
        let issuer = self.issuer();
        let claims = CustomerClaims {
            aud: format!("{issuer}/customer"),
            iss: issuer,
            sub: customer_id,
            iat: now,
            exp: now + CUSTOMER_TOKEN_SECS,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| PlatformError::Corrupt(format!("signing: {e}")))?;
        Ok(CustomerToken { access_token, token_type: "Bearer".into(), expires_in: CUSTOMER_TOKEN_SECS })
    }

    /// The customer a dashboard token names, or [`PlatformError::InvalidToken`].
    pub fn verify_customer_token(&self, token: &str) -> Result<String, PlatformError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| PlatformError::InvalidToken)?;
        let key = self.key_by_kid(header.kid.as_deref()).ok_or(PlatformError::InvalidToken)?;
        let issuer = self.issuer();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[format!("{issuer}/customer")]);
        validation.set_issuer(&[issuer]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<CustomerClaims>(token, &key.decoding, &validation)
            .map_err(|_| PlatformError::InvalidToken)?
            .claims;
        if claims.exp <= self.clock.now_micros().div_euclid(MICROS) {
            return Err(PlatformError::InvalidToken);
        }
        Ok(claims.sub)
    }
}

/// A refresh token with its grant.
#[derive(sqlx::FromRow)]
struct RefreshRow {
    grant_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    partner_id: String,
    consent_id: String,
    scope: String,
    revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ConsentRowWithName {
    #[sqlx(flatten)]
    row: ConsentRow,
    partner_name: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConsentRowWithGrant {
    #[sqlx(flatten)]
    pub(crate) row: ConsentRow,
    pub(crate) grant_revoked_at: Option<i64>,
}

pub(crate) fn replayed() -> PlatformError {
    PlatformError::Domain(OpenBankError::InvalidClient("client assertion was used before (jti replayed)".into()))
}

/// The redirect URI ready for one more query parameter.
fn url_with_query(uri: &str) -> String {
    let mut url = uri.to_string();
    url.push(if uri.contains('?') { '&' } else { '?' });
    url
}

/// Everything but RFC 3986's unreserved characters is escaped in a query value.
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn append_state_and_issuer(url: &mut String, state: Option<&str>, issuer: &str) {
    use percent_encoding::utf8_percent_encode;
    if let Some(state) = state {
        url.push_str("&state=");
        url.push_str(&utf8_percent_encode(state, QUERY_VALUE).to_string());
    }
    url.push_str("&iss=");
    url.push_str(&utf8_percent_encode(issuer, QUERY_VALUE).to_string());
}
