//! # access
//!
//! Who may do what, independent of HTTP:
//!
//! * [`Permission`]s, the [`Role`]s that bundle them (least privilege: pick the smallest role
//!   that works) and the authenticated [`Caller`];
//! * [`Roles`]: roles as data (built-ins plus roles created from permissions), cached for
//!   [`ROLE_RECHECK`];
//! * [`KeyStore`]: API keys (`dbk_<id>_<secret>`), stored only as argon2 hashes, verified once
//!   per process and then cached under the key's SHA-256, revocable across nodes, with optional
//!   expiry and IP allow-list;
//! * [`UserStore`]: staff users (password + TOTP, recovery codes), sessions, lockout;
//! * [`vault`]: field encryption at rest. [`Vault`] seals personal data with AES-256-GCM under
//!   data keys wrapped by a master key ([`KeyProvider`], [`MasterKey`]), computes the keyed
//!   blind indexes exact lookups use, and rotates data keys;
//! * [`classification`]: the data classification catalogue (four levels, one masking rule per
//!   field and column) that drives masking in responses, exports and logs;
//! * [`approvals`]: maker-checker (four eyes): sensitive requests held until a second identity
//!   with the same permission approves them;
//! * [`audit`]: the tamper-evident audit trail (entries written with each change by
//!   `storage::audit`, hash-chained by the sealer, verified, queried).
//!
//! The server turns a bearer token into a [`Caller`] with [`KeyStore::authenticate`] (API keys)
//! or [`UserStore::authenticate`] (session tokens) and asks
//! [`Caller::require`] for the one permission a route needs.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod classification;
mod keys;
mod role_store;
mod roles;
mod users;
pub mod vault;

pub use alerts::{AlertError, AlertSettings, SecurityAlert, SecurityAlerts};
pub use approvals::{Approval, ApprovalError, ApprovalSettings, ApprovalStatus, Approvals, NewApproval};
pub use audit::{AuditEntry, AuditError, AuditFilter, AuditRecorder, AuditReport, AuditTrail};
pub use keys::{parse_allowed_ips, IssuedKey, KeyStore, KeyView, KEY_RECHECK, LAST_USED_EVERY};
pub use role_store::{parse_permissions, valid_role_name, RoleView, Roles, ROLE_RECHECK};
pub use roles::{Caller, CallerKind, Permission, PermissionSet, Role, RoleName};
pub use users::{
    CreatedUser, Credentials, Enrolment, NewSession, SessionView, SignIn, UserSettings, UserStore, UserView,
    TOTP_ISSUER,
};
pub use vault::{EncryptedTable, KeyProvider, KeyType, MasterKey, Vault, VaultError};

/// Why access was refused or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("invalid, expired or revoked API key or session; sign in again or use a valid key")]
    InvalidKey,
    #[error("role {role:?} lacks permission {permission}")]
    Forbidden { role: String, permission: Permission },
    #[error("the API key has expired")]
    KeyExpired,
    #[error("the API key may not be used from this address")]
    IpNotAllowed,
    /// Unknown user, wrong password, wrong or missing second factor, disabled user: one answer.
    #[error("invalid username, password or second factor")]
    InvalidCredentials,
    #[error("the user is locked after too many failed sign-ins; an admin can unlock it")]
    UserLocked,
    #[error("too many failed sign-ins from this address; try again later")]
    TooManyAttempts,
    #[error("the session has ended (signed out, idle or too old); sign in again")]
    SessionExpired,
    #[error("no user {0}")]
    UserNotFound(uuid::Uuid),
    #[error("username {0:?} is taken")]
    UsernameTaken(String),
    #[error("unknown permission {0:?}")]
    UnknownPermission(String),
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    #[error("role {0:?} exists already")]
    RoleExists(String),
    #[error("role {0:?} is built in: it cannot be deleted (and admin cannot be changed)")]
    BuiltinRole(String),
    #[error("role {role:?} is used by {keys} API key(s) and {users} user(s)")]
    RoleInUse { role: String, keys: i64, users: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error("no active API key {0}")]
    KeyNotFound(uuid::Uuid),
    #[error("key hashing failed: {0}")]
    Hash(String),
    #[error("stored key data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}
