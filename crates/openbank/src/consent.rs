//! Consents, the pure part: what a partner may ask for, how a consent moves through its life,
//! and whether one lets a given call through at a given time.
//!
//! The rules follow UK Open Banking (permission names, the 90-day limit, the transaction
//! window) and Berlin Group NextGenPSD2 (at most four unattended calls a day per consent;
//! a customer's newer consent for the same partner supersedes the older one).
//!
//! Invariants:
//! * a consent's expiry lies after its creation and at most [`MAX_CONSENT_DAYS`] later;
//! * the only transitions are awaiting_authorisation → authorised | rejected | expired | revoked and
//!   authorised → revoked | expired; a final status never changes again ([`ConsentStatus::can_become`]);
//! * a consent never confirmed expires [`AWAITING_AUTHORISATION_SECS`] after it was created;
//! * a call passes [`check_access`] only for the consent's own partner, while the consent is
//!   authorised and unexpired, for a permission it holds and an account the customer chose.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::OpenBankError;

/// The longest a consent may last (UK Open Banking and PSD2 RTS article 10: 90 days).
pub const MAX_CONSENT_DAYS: i64 = 90;
/// A consent the customer has not authorised within this time expires.
pub const AWAITING_AUTHORISATION_SECS: i64 = 3600;
/// Unattended calls a consent allows per day unless it asks for fewer (Berlin Group's
/// `frequencyPerDay` default).
pub const DEFAULT_FREQUENCY_PER_DAY: u32 = 4;

/// Account-information permissions, named as in UK Open Banking. A `Detail` permission implies
/// its `Basic` one. (Named `ConsentPermission` in the API document, apart from staff permissions.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum ConsentPermission {
    /// Account ids, currency and type.
    ReadAccountsBasic,
    /// Also the account's product code and name.
    ReadAccountsDetail,
    ReadBalances,
    /// Amount, direction, date and status of each transaction.
    ReadTransactionsBasic,
    /// Also the reference and the counterparty account.
    ReadTransactionsDetail,
}

/// The short name used in code.
pub type Permission = ConsentPermission;

impl ConsentPermission {
    pub const ALL: [Permission; 5] = [
        Permission::ReadAccountsBasic,
        Permission::ReadAccountsDetail,
        Permission::ReadBalances,
        Permission::ReadTransactionsBasic,
        Permission::ReadTransactionsDetail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadAccountsBasic => "ReadAccountsBasic",
            Permission::ReadAccountsDetail => "ReadAccountsDetail",
            Permission::ReadBalances => "ReadBalances",
            Permission::ReadTransactionsBasic => "ReadTransactionsBasic",
            Permission::ReadTransactionsDetail => "ReadTransactionsDetail",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What the customer is shown on the consent screen, in Chinese and English.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Permission::ReadAccountsBasic => ("查看您的账户列表", "See the list of your accounts"),
            Permission::ReadAccountsDetail => ("查看账户的产品与名称", "See your accounts' product and name"),
            Permission::ReadBalances => ("查看账户余额", "See your account balances"),
            Permission::ReadTransactionsBasic => ("查看交易金额与日期", "See the amount and date of your transactions"),
            Permission::ReadTransactionsDetail => {
                ("查看交易附言与对方账户", "See the reference and counterparty of your transactions")
            }
        }
    }

    /// The permission this one includes, if any.
    fn implies(self) -> Option<Permission> {
        match self {
            Permission::ReadAccountsDetail => Some(Permission::ReadAccountsBasic),
            Permission::ReadTransactionsDetail => Some(Permission::ReadTransactionsBasic),
            _ => None,
        }
    }
}

/// Whether `held` grants `needed` (directly, or through the `Detail` permission including it).
pub fn grants(held: &[Permission], needed: Permission) -> bool {
    held.iter().any(|&p| p == needed || p.implies() == Some(needed))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    AwaitingAuthorisation,
    Authorised,
    Rejected,
    Revoked,
    Expired,
    /// A payment consent whose payment was made (single use, as UK Open Banking).
    Consumed,
}

impl ConsentStatus {
    pub const ALL: [ConsentStatus; 6] = [
        ConsentStatus::AwaitingAuthorisation,
        ConsentStatus::Authorised,
        ConsentStatus::Rejected,
        ConsentStatus::Revoked,
        ConsentStatus::Expired,
        ConsentStatus::Consumed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::AwaitingAuthorisation => "awaiting_authorisation",
            ConsentStatus::Authorised => "authorised",
            ConsentStatus::Rejected => "rejected",
            ConsentStatus::Revoked => "revoked",
            ConsentStatus::Expired => "expired",
            ConsentStatus::Consumed => "consumed",
        }
    }

    pub fn parse(s: &str) -> Option<ConsentStatus> {
        ConsentStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The lifecycle: awaiting → authorised | rejected | expired | revoked (the partner withdrew
    /// it); authorised → revoked | expired.
    pub fn can_become(self, next: ConsentStatus) -> bool {
        use ConsentStatus::*;
        matches!(
            (self, next),
            (AwaitingAuthorisation, Authorised | Rejected | Expired | Revoked)
                | (Authorised, Revoked | Expired | Consumed)
        )
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            ConsentStatus::Rejected | ConsentStatus::Revoked | ConsentStatus::Expired | ConsentStatus::Consumed
        )
    }
}

/// Why a consent was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokedBy {
    /// The customer, through the bank's consent dashboard.
    Customer,
    /// The partner, deleting its consent.
    Partner,
    /// A newer consent the customer authorised for the same partner.
    Superseded,
}

impl RevokedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokedBy::Customer => "customer",
            RevokedBy::Partner => "partner",
            RevokedBy::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<RevokedBy> {
        [RevokedBy::Customer, RevokedBy::Partner, RevokedBy::Superseded].into_iter().find(|r| r.as_str() == s)
    }
}

/// An account-access consent as a partner asks for it (`POST /open-banking/v1/account-access-consents`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountAccessConsent {
    pub permissions: Vec<Permission>,
    /// When the consent ends; at most 90 days ahead (the default).
    #[serde(default)]
    pub expiration_time: Option<DateTime<Utc>>,
    /// The oldest transaction the partner may read (default: no lower bound).
    #[serde(default)]
    pub transaction_from_time: Option<DateTime<Utc>>,
    /// The newest transaction the partner may read (default: no upper bound).
    #[serde(default)]
    pub transaction_to_time: Option<DateTime<Utc>>,
    /// Unattended calls allowed per day, 1 to 4 (default 4).
    #[serde(default)]
    pub frequency_per_day: Option<u32>,
}

/// A checked consent request, times in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentSpec {
    pub permissions: Vec<Permission>,
    pub expires_at: i64,
    pub transaction_from: Option<i64>,
    pub transaction_to: Option<i64>,
    pub frequency_per_day: u32,
}

const DAY_MICROS: i64 = 86_400_000_000;

/// Checks a consent request made at `now` (micros).
pub fn check_consent(new: NewAccountAccessConsent, now: i64) -> Result<ConsentSpec, OpenBankError> {
    let invalid = |m: String| OpenBankError::Invalid(m);
    let mut permissions = new.permissions;
    permissions.sort();
    permissions.dedup();
    if permissions.is_empty() {
        return Err(invalid(format!(
            "permissions must name at least one of {}",
            Permission::ALL.map(Permission::as_str).join(", ")
        )));
    }
    let latest = now + MAX_CONSENT_DAYS * DAY_MICROS;
    let expires_at = new.expiration_time.map_or(latest, |t| t.timestamp_micros());
    if expires_at <= now {
        return Err(invalid("expiration_time must lie in the future".into()));
    }
    if expires_at > latest {
        return Err(invalid(format!("expiration_time may be at most {MAX_CONSENT_DAYS} days ahead")));
    }
    let from = new.transaction_from_time.map(|t| t.timestamp_micros());
    let to = new.transaction_to_time.map(|t| t.timestamp_micros());
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(invalid("transaction_from_time must not be after transaction_to_time".into()));
        }
    }
    let frequency_per_day = new.frequency_per_day.unwrap_or(DEFAULT_FREQUENCY_PER_DAY);
    if !(1..=DEFAULT_FREQUENCY_PER_DAY).contains(&frequency_per_day) {
        return Err(invalid(format!("frequency_per_day must be 1 to {DEFAULT_FREQUENCY_PER_DAY}")));
    }
    Ok(ConsentSpec { permissions, expires_at, transaction_from: from, transaction_to: to, frequency_per_day })
}

/// The facts about a stored consent that decide access.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentFacts<'a> {
    pub partner_id: &'a str,
    pub status: ConsentStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub permissions: &'a [Permission],
    pub accounts: &'a [String],
}

/// The status a consent has at `now`: a stored live status past its time reads as expired.
pub fn effective_status(facts: &ConsentFacts, now: i64) -> ConsentStatus {
    match facts.status {
        ConsentStatus::AwaitingAuthorisation
            if now >= facts.expires_at || now >= facts.created_at + AWAITING_AUTHORISATION_SECS * 1_000_000 =>
        {
            ConsentStatus::Expired
        }
        ConsentStatus::Authorised if now >= facts.expires_at => ConsentStatus::Expired,
        status => status,
    }
}

/// Why a call is refused; each becomes a 403 with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("the consent has not been authorised by the customer")]
    NotAuthorised,
    #[error("the consent was rejected by the customer")]
    Rejected,
    #[error("the consent was revoked")]
    Revoked,
    #[error("the consent has expired")]
    Expired,
    #[error("the consent does not grant {0}")]
    PermissionMissing(&'static str),
    #[error("the customer did not choose this account for the consent")]
    AccountNotConsented,
    #[error("the payment consent was used for its payment already")]
    Consumed,
    #[error("this call needs a consent of another kind")]
    WrongKind,
}

impl AccessDenied {
    pub fn code(&self) -> &'static str {
        match self {
            AccessDenied::NotAuthorised => "consent_not_authorised",
            AccessDenied::Rejected => "consent_rejected",
            AccessDenied::Revoked => "consent_revoked",
            AccessDenied::Expired => "consent_expired",
            AccessDenied::PermissionMissing(_) => "permission_not_granted",
            AccessDenied::AccountNotConsented => "account_not_in_consent",
            AccessDenied::Consumed => "consent_consumed",
            AccessDenied::WrongKind => "consent_kind_mismatch",
        }
    }
}

/// Whether a call needing `permission` (and, for one account, `account`) passes this consent at
/// `now`. The caller has already made sure the consent belongs to the calling partner.
pub fn check_access(
    facts: &ConsentFacts,
    now: i64,
    permission: Permission,
    account: Option<&str>,
) -> Result<(), AccessDenied> {
    match effective_status(facts, now) {
        ConsentStatus::Authorised => {}
        ConsentStatus::AwaitingAuthorisation => return Err(AccessDenied::NotAuthorised),
        ConsentStatus::Rejected => return Err(AccessDenied::Rejected),
        ConsentStatus::Revoked => return Err(AccessDenied::Revoked),
        ConsentStatus::Expired => return Err(AccessDenied::Expired),
        ConsentStatus::Consumed => return Err(AccessDenied::Consumed),
    }
    if !grants(facts.permissions, permission) {
        return Err(AccessDenied::PermissionMissing(permission.as_str()));
    }
    if let Some(account) = account {
        if !facts.accounts.iter().any(|a| a == account) {
            return Err(AccessDenied::AccountNotConsented);
        }
    }
    Ok(())
}

/// The calendar day (UTC) a call at `now` counts against, for the unattended limit.
pub fn usage_day(now: i64) -> i64 {
    now.div_euclid(DAY_MICROS)
}

/// Clamps a requested transaction window to the consent's: `Err` when the request lies wholly
/// outside it.
pub fn transaction_window(
    consent: (Option<i64>, Option<i64>),
    requested: (Option<i64>, Option<i64>),
) -> Result<(Option<i64>, Option<i64>), OpenBankError> {
    let from = match (consent.0, requested.0) {
        (Some(c), Some(r)) => Some(c.max(r)),
        (c, r) => c.or(r),
    };
    let to = match (consent.1, requested.1) {
        (Some(c), Some(r)) => Some(c.min(r)),
        (c, r) => c.or(r),
    };
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(OpenBankError::Invalid(
                "the requested dates lie outside the consent's transaction window".into(),
            ));
        }
    }
    Ok((from, to))
}

// ---- payment consents (UK Open Banking domestic payments) ----------------------------------

/// What a consent is for; its scope is the OAuth scope that authorises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    AccountAccess,
    DomesticPayment,
    /// Embedded lending: the partner may apply for one loan for the customer and follow it;
    /// the loan is paid out to the account the customer chose.
    LoanApplication,
}

impl ConsentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentKind::AccountAccess => "account_access",
            ConsentKind::DomesticPayment => "domestic_payment",
            ConsentKind::LoanApplication => "loan_application",
        }
    }

    pub fn parse(s: &str) -> Option<ConsentKind> {
        [ConsentKind::AccountAccess, ConsentKind::DomesticPayment, ConsentKind::LoanApplication]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The kind a consent-bound token of `scope` is for.
    pub fn of_scope(scope: &str) -> ConsentKind {
        let has = |s: &str| scope.split(' ').any(|x| x == s);
        if has("payments") {
            ConsentKind::DomesticPayment
        } else if has("lending") {
            ConsentKind::LoanApplication
        } else {
            ConsentKind::AccountAccess
        }
    }

    /// Whether the customer chooses exactly one account (the one paid from, or paid out to).
    pub fn one_account(self) -> bool {
        matches!(self, ConsentKind::DomesticPayment | ConsentKind::LoanApplication)
    }

    pub fn scope(self) -> &'static str {
        match self {
            ConsentKind::AccountAccess => "accounts",
            ConsentKind::DomesticPayment => "payments",
            ConsentKind::LoanApplication => "lending",
        }
    }
}

// ---- loan application consents (embedded lending) -----------------------------------------

/// What a customer lets a lending partner do: apply once for a loan of this product, up to
/// this amount, for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoanTerms {
    /// A product of the catalogue (`GET /open-banking/v1/products`), e.g. `instant_consumer`.
    pub product_code: String,
    /// The most the customer may borrow through the partner, in minor units.
    pub max_amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A loan application consent as the partner asks for it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLoanConsent {
    pub loan: LoanTerms,
    /// When the consent ends (default and at most 30 days ahead: an application, its offer
    /// and its acceptance take days, not months).
    #[serde(default)]
    pub expiration_time: Option<DateTime<Utc>>,
}

/// The longest a loan application consent lasts.
pub const MAX_LOAN_CONSENT_DAYS: i64 = 30;
/// The most a customer may borrow through a partner: 5,000,000.00 in minor units.
pub const MAX_LOAN_MINOR: i64 = 500_000_000;

/// Checks a loan consent request at `now`: a product code, a positive amount up to
/// [`MAX_LOAN_MINOR`], a currency, an expiry within [`MAX_LOAN_CONSENT_DAYS`].
pub fn check_loan_consent(new: NewLoanConsent, now: i64) -> Result<(LoanTerms, i64), OpenBankError> {
    let invalid = |m: String| OpenBankError::Invalid(m);
    let mut terms = new.loan;
    if terms.product_code.is_empty()
        || terms.product_code.len() > 40
        || !terms.product_code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    {
        return Err(invalid("product_code must be a product of the catalogue, such as instant_consumer".into()));
    }
    if terms.max_amount_minor <= 0 || terms.max_amount_minor > MAX_LOAN_MINOR {
        return Err(invalid(format!("max_amount_minor must be 1 to {MAX_LOAN_MINOR} (minor units)")));
    }
    terms.currency = terms.currency.trim().to_ascii_uppercase();
    if terms.currency.len() != 3 || !terms.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("currency must be an ISO 4217 code such as CNY".into()));
    }
    let latest = now + MAX_LOAN_CONSENT_DAYS * DAY_MICROS;
    let expires_at = new.expiration_time.map_or(latest, |t| t.timestamp_micros());
    if expires_at <= now || expires_at > latest {
        return Err(invalid(format!(
            "expiration_time must lie in the future, at most {MAX_LOAN_CONSENT_DAYS} days ahead"
        )));
    }
    Ok((terms, expires_at))
}

/// Whether a loan of `amount` in `currency` stays within the consent's terms.
pub fn check_loan_amount(terms: &LoanTerms, amount: i64, currency: &str) -> Result<(), OpenBankError> {
    if currency != terms.currency {
        return Err(OpenBankError::Invalid(format!("the consent is for {}, not {currency}", terms.currency)));
    }
    if amount <= 0 || amount > terms.max_amount_minor {
        return Err(OpenBankError::Invalid(format!(
            "the amount must be 1 to {} (minor units), the most the customer consented to",
            terms.max_amount_minor
        )));
    }
    Ok(())
}

/// The payment a customer is asked to authorise: amount, currency, creditor, reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentTerms {
    /// The most the payment may be, in minor units (fen for CNY).
    pub instructed_amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The ledger account paid to.
    pub creditor_account_id: String,
    /// Shown to the customer and carried on the transfer.
    #[serde(default)]
    pub reference: Option<String>,
}

/// A domestic payment consent as the partner asks for it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPaymentConsent {
    pub initiation: PaymentTerms,
    /// When the consent ends unused (default and at most 90 days ahead).
    #[serde(default)]
    pub expiration_time: Option<DateTime<Utc>>,
}

/// The largest single payment a partner may initiate: 1,000,000.00 in minor units.
pub const MAX_PAYMENT_MINOR: i64 = 100_000_000;

/// Checks a payment consent request at `now`: a positive amount up to [`MAX_PAYMENT_MINOR`], a
/// three-letter currency, a creditor, a short reference, an expiry within 90 days.
pub fn check_payment_consent(new: NewPaymentConsent, now: i64) -> Result<(PaymentTerms, i64), OpenBankError> {
    let invalid = |m: &str| OpenBankError::Invalid(m.to_string());
    let mut terms = new.initiation;
    if terms.instructed_amount_minor <= 0 || terms.instructed_amount_minor > MAX_PAYMENT_MINOR {
        return Err(OpenBankError::Invalid(format!(
            "instructed_amount_minor must be 1 to {MAX_PAYMENT_MINOR} (minor units)"
        )));
    }
    terms.currency = terms.currency.trim().to_ascii_uppercase();
    if terms.currency.len() != 3 || !terms.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("currency must be an ISO 4217 code such as CNY"));
    }
    if terms.creditor_account_id.trim().is_empty() || terms.creditor_account_id.len() > 64 {
        return Err(invalid("creditor_account_id is required"));
    }
    if terms.reference.as_ref().is_some_and(|r| r.chars().count() > 140 || r.chars().any(char::is_control)) {
        return Err(invalid("reference must be at most 140 characters without control characters"));
    }
    let latest = now + MAX_CONSENT_DAYS * DAY_MICROS;
    let expires_at = new.expiration_time.map_or(latest, |t| t.timestamp_micros());
    if expires_at <= now || expires_at > latest {
        return Err(OpenBankError::Invalid(format!(
            "expiration_time must lie in the future, at most {MAX_CONSENT_DAYS} days ahead"
        )));
    }
    Ok((terms, expires_at))
}

/// Whether a payment of `amount` in `currency` stays within the consent's terms.
pub fn check_payment_amount(terms: &PaymentTerms, amount: i64, currency: &str) -> Result<(), OpenBankError> {
    if currency != terms.currency {
        return Err(OpenBankError::Invalid(format!("the consent is for {}, not {currency}", terms.currency)));
    }
    if amount <= 0 {
        return Err(OpenBankError::Invalid("the amount must be positive".into()));
    }
    if amount > terms.instructed_amount_minor {
        return Err(OpenBankError::Invalid(format!(
            "the amount {amount} exceeds the {} the customer consented to",
            terms.instructed_amount_minor
        )));
    }
    Ok(())
}

/// A payment consent lets a payment through while authorised and unexpired (once).
pub fn check_payment_access(facts: &ConsentFacts, now: i64) -> Result<(), AccessDenied> {
    match effective_status(facts, now) {
        ConsentStatus::Authorised => Ok(()),
        ConsentStatus::AwaitingAuthorisation => Err(AccessDenied::NotAuthorised),
        ConsentStatus::Rejected => Err(AccessDenied::Rejected),
        ConsentStatus::Revoked => Err(AccessDenied::Revoked),
        ConsentStatus::Expired => Err(AccessDenied::Expired),
        ConsentStatus::Consumed => Err(AccessDenied::Consumed),
    }
}

// ---- PKCE (RFC 7636) and authorization requests -------------------------------------------

/// A PKCE code verifier or challenge: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The `S256` challenge of a verifier: BASE64URL(SHA-256(verifier)) without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is well-formed and its `S256` challenge is `challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    // Both are public values by the time the verifier is sent; no constant-time need.
    is_pkce_string(verifier) && pkce_challenge(verifier) == challenge
}

/// A pushed authorization request (RFC 9126) as the partner sends it, after client
/// authentication.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationParams<'a> {
    pub response_type: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub state: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub consent_id: Option<&'a str>,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationSpec {
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub consent_id: String,
}

/// Checks an authorization request of a partner with these registered redirect URIs and roles
/// (FAPI 2.0: `response_type=code`, PKCE with `S256`, an exactly registered redirect URI).
pub fn check_authorization(
    params: &AuthorizationParams,
    registered: &[String],
    roles: &[crate::PartnerRole],
) -> Result<AuthorizationSpec, OpenBankError> {
    let invalid = |m: &str| OpenBankError::Invalid(m.to_string());
    if params.response_type != Some("code") {
        return Err(invalid("response_type must be code"));
    }
    let redirect_uri = params.redirect_uri.ok_or_else(|| invalid("redirect_uri is required"))?;
    if !registered.iter().any(|r| r == redirect_uri) {
        return Err(invalid("redirect_uri is not registered for this client"));
    }
    if params.code_challenge_method != Some("S256") {
        return Err(invalid("code_challenge_method must be S256"));
    }
    let challenge = params.code_challenge.ok_or_else(|| invalid("code_challenge is required"))?;
    if !is_pkce_string(challenge) {
        return Err(invalid("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]"));
    }
    let scopes = crate::grant_scopes(Some(params.scope.unwrap_or("accounts")), roles)?;
    if scopes != ["accounts"] && scopes != ["payments"] && scopes != ["lending"] {
        return Err(invalid(
            "scope must be accounts (an account-access consent), payments (a domestic payment consent) or \
             lending (a loan application consent)",
        ));
    }
    let consent_id = params.consent_id.filter(|c| !c.is_empty() && c.len() <= 64);
    let consent_id = consent_id.ok_or_else(|| invalid("consent_id is required (the consent to authorise)"))?;
    let state = params.state.map(str::to_string);
    if state.as_ref().is_some_and(|s| s.len() > 500) {
        return Err(invalid("state is longer than 500 characters"));
    }
    Ok(AuthorizationSpec {
        redirect_uri: redirect_uri.to_string(),
        scope: scopes.join(" "),
        state,
        code_challenge: challenge.to_string(),
        consent_id: consent_id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn facts<'a>(status: ConsentStatus, permissions: &'a [Permission], accounts: &'a [String]) -> ConsentFacts<'a> {
        ConsentFacts {
            partner_id: "p",
            status,
            created_at: NOW,
            expires_at: NOW + 10 * DAY_MICROS,
            permissions,
            accounts,
        }
    }

    #[test]
    fn consent_requests_are_checked() {
        let new = |days: Option<i64>| NewAccountAccessConsent {
            permissions: vec![Permission::ReadBalances, Permission::ReadAccountsBasic, Permission::ReadBalances],
            expiration_time: days.map(|d| DateTime::from_timestamp_micros(NOW + d * DAY_MICROS).unwrap()),
            transaction_from_time: None,
            transaction_to_time: None,
            frequency_per_day: None,
        };
        let spec = check_consent(new(None), NOW).unwrap();
        assert_eq!(spec.permissions, vec![Permission::ReadAccountsBasic, Permission::ReadBalances]);
        assert_eq!(spec.expires_at, NOW + 90 * DAY_MICROS);
        assert_eq!(spec.frequency_per_day, 4);
        assert!(check_consent(new(Some(91)), NOW).unwrap_err().to_string().contains("90 days"));
        assert!(check_consent(new(Some(-1)), NOW).unwrap_err().to_string().contains("future"));
        let mut none = new(None);
        none.permissions.clear();
        assert!(check_consent(none, NOW).unwrap_err().to_string().contains("ReadAccountsBasic"));
        let mut window = new(None);
        window.transaction_from_time = DateTime::from_timestamp_micros(NOW);
        window.transaction_to_time = DateTime::from_timestamp_micros(NOW - 1);
        assert!(check_consent(window, NOW).is_err());
        let mut often = new(None);
        often.frequency_per_day = Some(5);
        assert!(check_consent(often, NOW).is_err());
    }

    #[test]
    fn access_needs_a_live_consent_the_permission_and_a_chosen_account() {
        let perms = [Permission::ReadAccountsDetail, Permission::ReadBalances];
        let accounts = ["a1".to_string()];
        let live = facts(ConsentStatus::Authorised, &perms, &accounts);
        assert_eq!(check_access(&live, NOW, Permission::ReadAccountsBasic, None), Ok(()));
        assert_eq!(check_access(&live, NOW, Permission::ReadBalances, Some("a1")), Ok(()));
        assert_eq!(
            check_access(&live, NOW, Permission::ReadBalances, Some("a2")),
            Err(AccessDenied::AccountNotConsented)
        );
        assert_eq!(
            check_access(&live, NOW, Permission::ReadTransactionsBasic, Some("a1")),
            Err(AccessDenied::PermissionMissing("ReadTransactionsBasic"))
        );
        assert_eq!(
            check_access(&live, NOW + 10 * DAY_MICROS, Permission::ReadBalances, None),
            Err(AccessDenied::Expired)
        );
        for (status, denied) in [
            (ConsentStatus::AwaitingAuthorisation, AccessDenied::NotAuthorised),
            (ConsentStatus::Rejected, AccessDenied::Rejected),
            (ConsentStatus::Revoked, AccessDenied::Revoked),
            (ConsentStatus::Expired, AccessDenied::Expired),
        ] {
            let f = facts(status, &perms, &accounts);
            assert_eq!(check_access(&f, NOW, Permission::ReadBalances, Some("a1")), Err(denied));
        }
        let waiting = facts(ConsentStatus::AwaitingAuthorisation, &perms, &accounts);
        assert_eq!(effective_status(&waiting, NOW + AWAITING_AUTHORISATION_SECS * 1_000_000), ConsentStatus::Expired);
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", challenge));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn authorization_requests_follow_fapi() {
        let registered = vec!["https://shop.example/cb".to_string()];
        let roles = [crate::PartnerRole::AccountInformation];
        let good = AuthorizationParams {
            response_type: Some("code"),
            redirect_uri: Some("https://shop.example/cb"),
            scope: Some("accounts"),
            state: Some("xyz"),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            code_challenge_method: Some("S256"),
            consent_id: Some("c1"),
        };
        assert!(check_authorization(&good, &registered, &roles).is_ok());
        let cases: [(AuthorizationParams, &str); 5] = [
            (AuthorizationParams { redirect_uri: Some("https://evil.example/cb"), ..good.clone() }, "not registered"),
            (AuthorizationParams { code_challenge_method: Some("plain"), ..good.clone() }, "S256"),
            (AuthorizationParams { response_type: Some("token"), ..good.clone() }, "response_type"),
            (AuthorizationParams { consent_id: None, ..good.clone() }, "consent_id"),
            (AuthorizationParams { scope: Some("payments"), ..good.clone() }, "payments"),
        ];
        for (params, needle) in cases {
            let err = check_authorization(&params, &registered, &roles).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn payment_consents_are_checked_and_used_within_their_terms() {
        let terms = |amount: i64| PaymentTerms {
            instructed_amount_minor: amount,
            currency: "cny".into(),
            creditor_account_id: "acc-1".into(),
            reference: Some("order 42".into()),
        };
        let (checked, expires) =
            check_payment_consent(NewPaymentConsent { initiation: terms(50_000), expiration_time: None }, NOW).unwrap();
        assert_eq!((checked.currency.as_str(), expires), ("CNY", NOW + 90 * DAY_MICROS));
        for bad in [0, -1, MAX_PAYMENT_MINOR + 1] {
            assert!(check_payment_consent(NewPaymentConsent { initiation: terms(bad), expiration_time: None }, NOW)
                .is_err());
        }
        assert!(check_payment_amount(&checked, 50_000, "CNY").is_ok());
        assert!(check_payment_amount(&checked, 1, "CNY").is_ok());
        assert!(check_payment_amount(&checked, 50_001, "CNY").unwrap_err().to_string().contains("exceeds"));
        assert!(check_payment_amount(&checked, 100, "USD").is_err());
        let f = facts(ConsentStatus::Consumed, &[], &[]);
        assert_eq!(check_payment_access(&f, NOW), Err(AccessDenied::Consumed));
        assert!(ConsentStatus::Authorised.can_become(ConsentStatus::Consumed));
        assert!(!ConsentStatus::Consumed.can_become(ConsentStatus::Authorised));
    }

    fn any_status() -> impl Strategy<Value = ConsentStatus> {
        prop::sample::select(ConsentStatus::ALL.to_vec())
    }

    proptest! {
        /// A final status never changes, and nothing goes back to awaiting authorisation.
        #[test]
        fn final_statuses_are_final(from in any_status(), to in any_status()) {
            if from.is_final() || to == ConsentStatus::AwaitingAuthorisation {
                prop_assert!(!from.can_become(to));
            }
        }

        /// Access passes only while the effective status is authorised.
        #[test]
        fn access_only_while_authorised(status in any_status(), offset_days in -5i64..15) {
            let perms = [Permission::ReadBalances];
            let accounts = ["a".to_string()];
            let f = facts(status, &perms, &accounts);
            let now = NOW + offset_days * DAY_MICROS;
            let allowed = check_access(&f, now, Permission::ReadBalances, Some("a")).is_ok();
            prop_assert_eq!(allowed, effective_status(&f, now) == ConsentStatus::Authorised);
            prop_assert!(!allowed || now < f.expires_at);
        }

        /// A clamped window never reaches outside the consent's.
        #[test]
        fn windows_stay_inside_the_consent(cf in proptest::option::of(0i64..100), ct in proptest::option::of(100i64..200),
                                          rf in proptest::option::of(0i64..300), rt in proptest::option::of(0i64..300)) {
            if let Ok((f, t)) = transaction_window((cf, ct), (rf, rt)) {
                if let Some(cf) = cf { prop_assert!(f.unwrap() >= cf); }
                if let Some(ct) = ct { prop_assert!(t.unwrap() <= ct); }
            }
        }
    }

    #[test]
    fn a_loan_consent_names_a_product_an_amount_and_a_near_expiry() {
        let terms = |code: &str, amount: i64, currency: &str| LoanTerms {
            product_code: code.into(),
            max_amount_minor: amount,
            currency: currency.into(),
        };
        let ok = check_loan_consent(
            NewLoanConsent { loan: terms("instant_consumer", 5_000_000, "cny"), expiration_time: None },
            NOW,
        )
        .unwrap();
        assert_eq!((ok.0.currency.as_str(), ok.1), ("CNY", NOW + MAX_LOAN_CONSENT_DAYS * DAY_MICROS));
        for bad in [
            terms("Instant Loan", 1, "CNY"),
            terms("instant_consumer", 0, "CNY"),
            terms("instant_consumer", MAX_LOAN_MINOR + 1, "CNY"),
            terms("instant_consumer", 1, "yuan"),
        ] {
            assert!(check_loan_consent(NewLoanConsent { loan: bad, expiration_time: None }, NOW).is_err());
        }
        let late = DateTime::from_timestamp_micros(NOW + 31 * DAY_MICROS).unwrap();
        assert!(check_loan_consent(
            NewLoanConsent { loan: terms("instant_consumer", 1, "CNY"), expiration_time: Some(late) },
            NOW
        )
        .is_err());
        let granted = terms("instant_consumer", 5_000_000, "CNY");
        assert!(check_loan_amount(&granted, 5_000_000, "CNY").is_ok());
        assert!(check_loan_amount(&granted, 5_000_001, "CNY").is_err());
        assert!(check_loan_amount(&granted, 100, "USD").is_err());
        assert_eq!(ConsentKind::of_scope("lending"), ConsentKind::LoanApplication);
        assert_eq!(ConsentKind::of_scope("accounts"), ConsentKind::AccountAccess);
    }
}
