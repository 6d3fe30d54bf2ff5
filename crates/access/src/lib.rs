//! # access
//!
//! Who may do what, independent of HTTP:
//!
//! * [`Permission`]s, the [`Role`]s that bundle them (least privilege: pick the smallest role
//!   that works) and the authenticated [`Caller`];
//! * [`KeyStore`]: API keys (`dbk_<id>_<secret>`), stored only as argon2 hashes, verified once
//!   per process and then cached under the key's SHA-256, revocable across nodes;
//! * [`vault`]: field encryption at rest. [`Vault`] seals personal data with AES-256-GCM under
//!   data keys wrapped by a master key ([`KeyProvider`], [`MasterKey`]), computes the keyed
//!   blind indexes exact lookups use, and rotates data keys;
//! * [`audit`]: the tamper-evident audit trail (entries written with each change by
//!   `storage::audit`, hash-chained by the sealer, verified, queried).
//!
//! The server turns a bearer token into a [`Caller`] with [`KeyStore::authenticate`] and asks
//! [`Caller::require`] for the one permission a route needs.

pub mod alerts;
pub mod audit;
mod keys;
mod roles;
pub mod vault;

pub use alerts::{AlertError, AlertSettings, SecurityAlert, SecurityAlerts};
pub use audit::{AuditEntry, AuditError, AuditFilter, AuditRecorder, AuditReport, AuditTrail};
pub use keys::{IssuedKey, KeyStore, KEY_RECHECK};
pub use roles::{Caller, Permission, Role};
pub use vault::{EncryptedTable, KeyProvider, KeyType, MasterKey, Vault, VaultError};

/// Why access was refused or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("invalid or revoked API key")]
    InvalidKey,
    #[error("role {} lacks permission {permission}", role.as_str())]
    Forbidden { role: Role, permission: Permission },
    #[error("no active API key {0}")]
    KeyNotFound(uuid::Uuid),
    #[error("key hashing failed: {0}")]
    Hash(String),
    #[error("stored key data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}
