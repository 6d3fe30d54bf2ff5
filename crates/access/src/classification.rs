//! Data classification: one catalogue of every API field and stored column that holds personal
//! or financial data, its level, and how it is masked for a caller who may not see it in clear.
//!
//! Four levels:
//!
//! * `public`: may be shown to anyone (product codes, the health answer);
//! * `internal`: identifiers, statuses and timestamps; shown to whoever may call the route. Every
//!   API field the catalogue does not list is `internal`;
//! * `confidential`: financial data and personal data that does not identify a person on its own
//!   (amounts, scores, decisions, client addresses, usernames, pseudonymised events); shown to
//!   whoever may call the route, never written to the log;
//! * `restricted`: what identifies a person (names, ID numbers, phone numbers) and secrets
//!   (passwords, API keys, session tokens, TOTP secrets and codes, recovery codes). Personal
//!   restricted data is encrypted at rest and shown in clear only to a caller holding
//!   [`Permission::CustomersPii`]; everyone else sees the entry's [`Masking`]. Secrets are shown
//!   once, to whoever creates them, and stored only as hashes.
//!
//! The server masks JSON responses and CSV exports through [`mask`] with the caller's
//! permissions, and anything that reaches the log through [`for_log`] (the log is read with no
//! permission at all). `GET /v1/security/classification` publishes the catalogue.
//!
//! Invariant (tested): every column of every [`crate::EncryptedTable`] is listed `restricted`,
//! and every personal-looking property of the OpenAPI schemas is listed.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::ToSchema;

use crate::{Permission, PermissionSet};

/// How sensitive a piece of data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Public,
    Internal,
    Confidential,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::Internal => "internal",
            Level::Confidential => "confidential",
            Level::Restricted => "restricted",
        }
    }
}

/// Where a classified item lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// A property of an OpenAPI schema: `Schema.property`.
    Api,
    /// A stored column: `table.column`.
    Column,
}

/// What a caller without the clear permission (and the log) sees instead of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Masking {
    /// Shown as stored.
    None,
    /// ID numbers: first 3 and last 4 characters kept (`110***********1234`).
    IdNumber,
    /// Phone numbers: first 3 and last 4 digits kept (`+86 138****5678`).
    Phone,
    /// Names: first character of each word kept (`张*`, `A**** S****`).
    Name,
    /// Other identifiers: first 3 and last 2 characters kept, everything else starred.
    Partial,
    /// Replaced entirely by `***`.
    Redact,
    /// A secret: returned once in the response that creates it, stored only as a hash (or
    /// sealed), never shown again and never logged.
    Secret,
}

impl Masking {
    /// The masked form of `value`.
    pub fn apply(self, value: &str) -> String {
        match self {
            Masking::None => value.to_string(),
            Masking::IdNumber => mask_id_number(value),
            Masking::Phone => mask_phone(value),
            Masking::Name => mask_name(value),
            Masking::Partial => mask_partial(value),
            Masking::Redact | Masking::Secret => REDACTED.to_string(),
        }
    }
}

/// What [`Masking::Redact`] and [`Masking::Secret`] show.
pub const REDACTED: &str = "***";

/// One classified field or column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Classified {
    pub scope: Scope,
    /// `Schema.property` for the API, `table.column` for storage.
    #[schema(example = "CustomerView.id_number")]
    pub name: &'static str,
    pub level: Level,
    /// Whether the item is (or identifies) personal data.
    pub personal: bool,
    /// What a caller without [`Classified::clear_with`] sees; the log always sees this.
    pub masking: Masking,
    /// The permission that shows the value in clear (`customers_pii` for personal restricted
    /// data); absent when every caller of the route sees it as returned.
    pub clear_with: Option<Permission>,
    /// How the data is protected.
    pub note: &'static str,
}

const PII: Option<Permission> = Some(Permission::CustomersPii);

const fn api(name: &'static str, level: Level, personal: bool, masking: Masking, note: &'static str) -> Classified {
    let clear_with = match (level, masking) {
        (
            Level::Restricted,
            Masking::IdNumber | Masking::Phone | Masking::Name | Masking::Partial | Masking::Redact,
        ) => PII,
        _ => None,
    };
    Classified { scope: Scope::Api, name, level, personal, masking, clear_with, note }
}

const fn col(name: &'static str, level: Level, personal: bool, masking: Masking, note: &'static str) -> Classified {
    let mut c = api(name, level, personal, masking, note);
    c.scope = Scope::Column;
    c
}

use Level::{Confidential as C, Internal as I, Restricted as R};
use Masking::{IdNumber, Name, None as Clear, Partial, Phone, Redact, Secret};

const SEALED: &str = "encrypted at rest (AES-256-GCM); exact lookups use a keyed blind index";
const PII_CLEAR: &str = "in clear only with customers_pii";
const HASHED: &str = "stored only as a hash; returned once when issued";
const PSEUDONYM: &str = "ID numbers and phones replaced by their keyed blind index";
const FINANCIAL: &str = "financial data: shown to callers of the route, never logged";
const ACTOR: &str = "identifies a staff member or system; shown to callers of the route";

/// The catalogue.
pub static CATALOGUE: &[Classified] = &[
    // ---- API: customers
    api("NewCustomer.name", R, true, Name, "request only; never logged"),
    api("NewCustomer.id_number", R, true, IdNumber, "request only; never logged"),
    api("NewCustomer.phone", R, true, Phone, "request only; never logged"),
    api("CustomerView.name", R, true, Name, PII_CLEAR),
    api("CustomerView.id_number", R, true, IdNumber, PII_CLEAR),
    api("CustomerView.phone", R, true, Phone, PII_CLEAR),
    api("CustomerPatch.name", R, true, Name, "request only; never logged"),
    api("CustomerPatch.phone", R, true, Phone, "request only; never logged"),
    api("CustomerPatch.id_number", R, true, IdNumber, "request only; never logged"),
    api("IdentityView.external_id", C, true, Clear, "a channel's identifier of the person"),
    api("LinkIdentity.external_id", C, true, Clear, "a channel's identifier of the person"),
    api("Applicant.name", R, true, Name, "sealed in the stored decision"),
    api("Applicant.birth_date", R, true, Redact, "sealed in the stored decision"),
    api("ErpReceivable.core_enterprise_name", C, false, Clear, "a business, not a person"),
    api("HistoryEventView.actor_key_id", I, false, Clear, ACTOR),
    api("UserView.totp_enrolled", I, false, Clear, "whether a second factor is set"),
    api("Account.name", I, false, Clear, "an account's label"),
    api("LogInfo.name", I, false, Clear, "the name an imported process log was given"),
    api("NewAccount.name", I, false, Clear, "an account's label"),
    api("IssuedKey.name", I, false, Clear, "a key's label"),
    api("KeyView.name", I, false, Clear, "a key's label"),
    api("NewKey.name", I, false, Clear, "a key's label"),
    api("NewRole.name", I, false, Clear, "a role's name"),
    api("RoleView.name", I, false, Clear, "a role's name"),
    api("Product.name", Level::Public, false, Clear, "a product's name"),
    api("PublicProduct.name", Level::Public, false, Clear, "a product's name"),
    api("KpiView.name_zh", Level::Public, false, Clear, "an indicator's name (Chinese)"),
    api("KpiView.name_en", Level::Public, false, Clear, "an indicator's name (English)"),
    api("RecommendationView.name", Level::Public, false, Clear, "a product's name"),
    api("RuleSetInput.name", I, false, Clear, "a rule set's label"),
    api("RuleSetSummary.name", I, false, Clear, "a rule set's label"),
    api("AlertRuleView.name", I, false, Clear, "a KPI alert rule's label"),
    api("RuleRequest.name", I, false, Clear, "a KPI alert rule's label"),
    api("AlertEventView.rule_name", I, false, Clear, "a KPI alert rule's label"),
    api("AlertRuleView.kpi_name_zh", I, false, Clear, "an indicator's name"),
    api("AlertRuleView.kpi_name_en", I, false, Clear, "an indicator's name"),
    api("RingView.phones", I, false, Clear, "how many phone nodes a fraud ring has, never a number"),
    api("RingView.ips", I, false, Clear, "how many IP nodes a fraud ring has, never an address"),
    api("SegmentInput.name", I, false, Clear, "a segment's label"),
    api("SegmentView.name", I, false, Clear, "a segment's label"),
    api("TagInput.name", I, false, Clear, "a tag's label"),
    api("TagView.name", I, false, Clear, "a tag's label"),
    api("Classified.name", Level::Public, false, Clear, "a catalogue entry's name"),
    api("HistoryEventView.from", R, true, Partial, "masked by the event's field (name, phone, ID number)"),
    api("HistoryEventView.to", R, true, Partial, "masked by the event's field (name, phone, ID number)"),
    api("HistoryEventView.note", C, true, Clear, "free text of the change"),
    // ---- API: risk
    api("ListEntryView.value", R, true, Partial, "ID numbers and phones in clear only with customers_pii"),
    api("ListInput.value", R, true, Partial, "request only; never logged"),
    // ---- API: lending
    api("ApplyInput.phone", R, true, Phone, "request only; pseudonymised before it is stored"),
    api("ApplyInput.id_number", R, true, IdNumber, "request only; pseudonymised before it is stored"),
    api("ApplyInput.ip", C, true, Clear, "request only"),
    api("ApplyInput.device_fingerprint", C, true, Clear, "request only"),
    api("ApplyInput.amount", C, false, Clear, FINANCIAL),
    // ---- API: staff, keys, sessions
    api("SignInRequest.password", R, false, Secret, "request only; never stored or logged"),
    api("SignInRequest.totp", R, false, Secret, "request only; never stored or logged"),
    api("SignInRequest.recovery_code", R, false, Secret, "request only; stored only as a hash"),
    api("SignInRequest.username", C, true, Clear, ACTOR),
    api("PasswordChange.current_password", R, false, Secret, "request only; never stored or logged"),
    api("PasswordChange.new_password", R, false, Secret, "stored only as an argon2 hash"),
    api("NewUser.password", R, false, Secret, "stored only as an argon2 hash"),
    api("NewUser.username", C, true, Clear, ACTOR),
    api("NewUser.display_name", C, true, Clear, ACTOR),
    api("UserChange.display_name", C, true, Clear, ACTOR),
    api("UserView.username", C, true, Clear, ACTOR),
    api("UserView.display_name", C, true, Clear, ACTOR),
    api("Maker.name", C, true, Clear, "a held request's maker: a key's label or a user's display name"),
    api("CreatedUser.initial_password", R, false, Secret, HASHED),
    api("Enrolment.secret", R, false, Secret, "returned once at enrolment; stored sealed"),
    api("Enrolment.otpauth_uri", R, false, Secret, "carries the TOTP secret; returned once"),
    api("Enrolment.recovery_codes", R, false, Secret, HASHED),
    api("NewSession.token", R, false, Secret, HASHED),
    api("SessionView.ip", C, true, Clear, "client address; shown to the session's owner"),
    api("IssuedKey.key", R, false, Secret, HASHED),
    api("Partner.name", I, false, Clear, "a partner (business) name, shown to customers on consent screens"),
    api("NewPartner.name", I, false, Clear, "a partner (business) name"),
    api("TokenResponse.access_token", R, false, Secret, "a partner's access token: returned once, never stored"),
    api(
        "TokenResponse.refresh_token",
        R,
        false,
        Secret,
        "a partner's refresh token: returned once, stored only as a keyed hash",
    ),
    api("TokenForm.refresh_token", R, false, Secret, "a refresh token presented to rotate it"),
    api(
        "CustomerToken.access_token",
        R,
        false,
        Secret,
        "a customer's consent-dashboard token: returned once, never stored",
    ),
    api("CustomerToken.token_type", I, false, Clear, "always Bearer"),
    api("AuthorizationView.partner_name", I, false, Clear, "the partner's business name on the consent screen"),
    api("AuthorizationView.loan_product_name", I, false, Clear, "the loan product's name on the consent screen"),
    api("Consent.partner_name", I, false, Clear, "the partner's business name on the customer's dashboard"),
    api("PartnerAccount.name", C, false, Clear, "an account's name, shown to a partner the customer consented to"),
    api(
        "PhoneForm.phone",
        R,
        true,
        Phone,
        "the phone a customer enters to get a one-time code: never stored or logged",
    ),
    api("TokenForm.token", R, false, Secret, "request only (introspection); never stored or logged"),
    api("Introspection.token_type", Level::Public, false, Clear, "always Bearer"),
    api("TokenResponse.token_type", Level::Public, false, Clear, "always Bearer"),
    api("IssuedKey.allowed_ips", C, false, Clear, "network configuration"),
    api("KeyView.allowed_ips", C, false, Clear, "network configuration"),
    api("NewKey.allowed_ips", C, false, Clear, "network configuration"),
    api("AuditEntryView.actor", C, true, Clear, ACTOR),
    api("AuditEntryView.ip", C, true, Clear, "client address; shown to auditors"),
    api("SecurityAlert.subject", C, true, Clear, "an actor or a client address"),
    api("SecurityAlert.evidence", C, true, Clear, "actors and client addresses"),
    // ---- storage: customers
    col("customers.name", R, true, Name, SEALED),
    col("customers.id_number", R, true, IdNumber, SEALED),
    col("customers.phone", R, true, Phone, SEALED),
    col("customers.id_number_hash", C, true, Redact, "keyed blind index of the ID number"),
    col("customers.phone_index", C, true, Redact, "keyed blind index of the phone"),
    col("customer_history.from_value", R, true, Partial, SEALED),
    col("customer_history.to_value", R, true, Partial, SEALED),
    col("customer_history.note", R, true, Partial, SEALED),
    col("customer_identities.external_id", C, true, Clear, "a channel's identifier of the person"),
    col("customer_profiles.facts", C, true, Clear, FINANCIAL),
    // ---- storage: risk
    col("risk_list_entries.display", R, true, Partial, SEALED),
    col("risk_list_entries.value", C, true, Redact, "blind index token for ID numbers and phones"),
    col("risk_decisions.event", C, true, Clear, PSEUDONYM),
    col("risk_decisions.features", C, false, Clear, FINANCIAL),
    col("risk_cases.features", C, false, Clear, FINANCIAL),
    col("risk_cases.analyst", C, true, Clear, ACTOR),
    col("risk_cases.note", C, true, Clear, "free text of the analyst"),
    // ---- storage: lending
    col("lending_decisions.decision", R, true, Partial, SEALED),
    col("lending_review_queue.note", R, true, Partial, SEALED),
    col("lending_loans.state", C, false, Clear, FINANCIAL),
    col("lending_offers.offer", C, false, Clear, FINANCIAL),
    col("lending_contracts.contract", C, false, Clear, FINANCIAL),
    col("lending_receivables.receivable", C, false, Clear, FINANCIAL),
    col("lending_documents.entry", C, true, Clear, "registered document metadata"),
    // ---- storage: staff, keys, sessions, audit
    col("users.username", C, true, Clear, ACTOR),
    col("users.display_name", C, true, Clear, ACTOR),
    col("approvals.maker_name", C, true, Clear, "a held request's maker: a key's label or a user's display name"),
    col("users.password_hash", R, false, Secret, "argon2 hash"),
    col("users.totp_secret", R, false, Secret, "the second factor's secret"),
    col("users.totp_pending", R, false, Secret, "an enrolment's secret"),
    col("recovery_codes.code_hash", R, false, Secret, "argon2 hash"),
    col("sessions.token_hash", R, false, Secret, "SHA-256 of the token"),
    col("sessions.ip", C, true, Clear, "client address"),
    col("api_keys.secret_hash", R, false, Secret, "argon2 hash"),
    col("ob_signing_keys.private_key", R, false, Secret, "the bank's token-signing key, sealed by the vault"),
    col(
        "webhook_subscriptions.secret",
        R,
        false,
        Secret,
        "a webhook subscription's signing secret, sealed by the vault",
    ),
    col("api_keys.allowed_ips", C, false, Clear, "network configuration"),
    col("audit_log.actor", C, true, Clear, ACTOR),
    col("audit_log.ip", C, true, Clear, "client address"),
    col("security_alerts.subject", C, true, Clear, "an actor or a client address"),
    col("security_alerts.evidence", C, true, Clear, "actors and client addresses"),
    col("data_keys.wrapped_key", R, false, Secret, "data key wrapped by the master key"),
    // ---- storage: ledger
    col("accounts.owner_id", I, true, Clear, "a customer id"),
    col("transfers.amount", C, false, Clear, FINANCIAL),
];

/// The catalogue entry of `name` in `scope`.
pub fn lookup(scope: Scope, name: &str) -> Option<&'static Classified> {
    CATALOGUE.iter().find(|c| c.scope == scope && c.name == name)
}

/// The level of an API field: its entry's, `internal` when it is not listed.
pub fn api_level(name: &str) -> Level {
    lookup(Scope::Api, name).map_or(Level::Internal, |c| c.level)
}

/// Whether a caller holding `permissions` sees `Schema.property` in clear.
pub fn clear(name: &str, permissions: PermissionSet) -> bool {
    match lookup(Scope::Api, name) {
        Some(c) => c.clear_with.is_none_or(|p| permissions.contains(p)),
        None => true,
    }
}

/// `value` of the API field `name` (`Schema.property`) as a caller holding `permissions` sees
/// it: in clear when the field needs no permission or the caller holds it, else masked by the
/// field's rule.
pub fn mask<'a>(name: &str, permissions: PermissionSet, value: &'a str) -> Cow<'a, str> {
    match lookup(Scope::Api, name) {
        Some(c) if !c.clear_with.is_none_or(|p| permissions.contains(p)) => Cow::Owned(c.masking.apply(value)),
        _ => Cow::Borrowed(value),
    }
}

/// [`mask`] with an explicit rule (for a field whose rule depends on the record, like a history
/// event's previous value): `masking` applies unless `name`'s clear permission is held.
pub fn mask_with<'a>(name: &str, masking: Masking, permissions: PermissionSet, value: &'a str) -> Cow<'a, str> {
    if clear(name, permissions) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(masking.apply(value))
    }
}

/// `value` of `name` as the log may show it: masked by the field's rule whatever the level
/// (the log is read by people holding no permission), redacted when the field is not listed
/// but the caller asks anyway.
pub fn for_log(scope: Scope, name: &str, value: &str) -> String {
    match lookup(scope, name) {
        Some(c) if c.level >= Level::Confidential && c.masking == Masking::None => REDACTED.to_string(),
        Some(c) => c.masking.apply(value),
        None => REDACTED.to_string(),
    }
}

// The personal-data masks are the customer domain's (one definition for the domain's own
// debug output and for every role-based view).
pub use customer::validate::{mask_id_number, mask_name, mask_phone};

/// First 3 and last 2 characters kept; 5 characters or fewer are fully starred.
pub fn mask_partial(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for c in CATALOGUE {
            assert!(seen.insert((c.scope, c.name)), "{} listed twice", c.name);
            assert_eq!(c.name.split('.').count(), 2, "{}", c.name);
            if c.level == Level::Restricted && c.personal {
                assert_eq!(c.clear_with, Some(Permission::CustomersPii), "{}", c.name);
                assert_ne!(c.masking, Masking::None, "{}", c.name);
            }
            if c.masking == Masking::Secret {
                assert_eq!(c.level, Level::Restricted, "{}", c.name);
            }
        }
    }

    #[test]
    fn masking_follows_the_role() {
        let auditor = Role::Auditor.permissions();
        let admin = Role::Admin.permissions();
        assert_eq!(mask("CustomerView.id_number", auditor, "110105194912311234"), "110***********1234");
        assert_eq!(mask("CustomerView.id_number", admin, "110105194912311234"), "110105194912311234");
        assert_eq!(mask("CustomerView.phone", auditor, "+8613812345678"), "+86 138****5678");
        assert_eq!(mask("CustomerView.name", auditor, "张三"), "张*");
        assert_eq!(mask("CustomerView.kyc_status", auditor, "verified"), "verified");
        assert_eq!(mask("AuditEntryView.ip", auditor, "10.0.0.1"), "10.0.0.1");
        assert_eq!(mask_with("HistoryEventView.from", Masking::Phone, auditor, "13812345678"), "138****5678");
        assert_eq!(for_log(Scope::Api, "CustomerView.phone", "13812345678"), "138****5678");
        assert_eq!(for_log(Scope::Api, "IssuedKey.key", "dbk_x_y"), REDACTED);
        assert_eq!(for_log(Scope::Api, "AuditEntryView.ip", "10.0.0.1"), REDACTED);
        assert_eq!(api_level("CustomerView.kyc_status"), Level::Internal);
    }

    #[test]
    fn masks() {
        assert_eq!(mask_id_number("110105194912311234"), "110***********1234");
        assert_eq!(mask_id_number("12345678"), "12****78");
        assert_eq!(mask_phone("+8613812345678"), "+86 138****5678");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("Alice  Smith"), "A**** S****");
        assert_eq!(mask_partial("13812345678"), "138******78");
        assert_eq!(mask_partial("abc"), "***");
    }

    /// Every listed column exists in the migrations (of both backends).
    #[test]
    fn listed_columns_exist() {
        for dialect in ["sqlite", "postgres"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(dialect);
            let mut sql = String::new();
            let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            for f in files {
                sql.push_str(&std::fs::read_to_string(f).unwrap().to_lowercase());
            }
            for c in CATALOGUE.iter().filter(|c| c.scope == Scope::Column) {
                let (table, column) = c.name.split_once('.').unwrap();
                let created = sql.find(&format!("create table {table} (")).map(|at| {
                    let body = &sql[at..];
                    body[..body.find("\n);").unwrap_or(body.len())].to_string()
                });
                let in_create = created.is_some_and(|body| {
                    body.lines().skip(1).any(|l| l.trim_start().starts_with(&format!("{column} ")))
                });
                let added = sql.contains(&format!("alter table {table} add column {column} "));
                assert!(in_create || added, "{dialect}: no column {}", c.name);
            }
        }
    }
}
