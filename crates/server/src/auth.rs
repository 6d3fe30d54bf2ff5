//! API keys and role-based permissions.
//!
//! A key looks like `dbk_<key id>_<secret>`. Only an argon2 hash of the whole key is stored;
//! the id part lets the server find the row without scanning. argon2 is deliberately slow, so a
//! successful verification is remembered in memory under the SHA-256 of the key (never the key
//! itself) and later requests cost one hash lookup. Revoking a key clears that memory; a key
//! revoked through another node stops working here within [`KEY_RECHECK`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use storage::Database;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

/// What a caller may do. Routes ask for exactly one permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    AccountsRead,
    AccountsWrite,
    TransfersRead,
    TransfersWrite,
    MetricsRead,
    KeysAdmin,
    TagsRead,
    TagsWrite,
    CustomersRead,
    CustomersWrite,
    /// See names, ID numbers and phone numbers in clear; everyone else sees them masked.
    CustomersPii,
    /// Change KYC status, correct identity documents, close customers, merge records.
    CustomersAdmin,
    /// Ask the risk engine for a decision (channel applications, tellers).
    RiskDecide,
    /// Read decisions, rule sets, lists, cases and models; market risk figures.
    RiskRead,
    /// Create and activate rule sets, backtest, edit lists, reload models.
    RiskAdmin,
    /// Resolve review cases (confirm fraud / false positive).
    CasesResolve,
    /// Products, applications, offers, loans, overdue lists, the review queue, receivables.
    LendingRead,
    /// Apply, accept (disburse), repay, draw, prepay; register documents and receivables, finance.
    LendingWrite,
    /// Run end of day; write off loans.
    LendingAdmin,
    /// Approve or decline applications in the manual review queue (lending officers).
    LendingReview,
}

/// Roles bundle permissions; least privilege means picking the smallest role that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including issuing and revoking keys.
    Admin,
    /// Back-office operations: open/freeze/close accounts, move money, read everything.
    Operator,
    /// Channel applications that move money for customers: transfers and reads, no account admin.
    Teller,
    /// Read-only access to accounts, transfers and metrics.
    Auditor,
    /// Prometheus scraping only.
    Monitoring,
}

impl Role {
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Operator => p != KeysAdmin,
            Role::Teller => matches!(
                p,
                AccountsRead
                    | TransfersRead
                    | TransfersWrite
                    | CustomersRead
                    | CustomersWrite
                    | RiskDecide
                    | LendingRead
                    | LendingWrite
            ),
            Role::Auditor => {
                matches!(
                    p,
                    AccountsRead | TransfersRead | MetricsRead | TagsRead | CustomersRead | RiskRead | LendingRead
                )
            }
            Role::Monitoring => p == MetricsRead,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Teller => "teller",
            Role::Auditor => "auditor",
            Role::Monitoring => "monitoring",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Operator, Role::Teller, Role::Auditor, Role::Monitoring]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub name: String,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("role {} lacks permission {:?}", self.role.as_str(), p)))
        }
    }
}

/// Issued key metadata (the secret itself is shown once, at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedKey {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// The full key. Store it now: the server keeps only a hash.
    pub key: String,
}

/// SHA-256 of a whole API key.
type KeyPrint = [u8; 32];
type VerificationLock = Arc<tokio::sync::Mutex<()>>;

/// Keys verified by this process, under the SHA-256 of the key. An entry is trusted for
/// [`KEY_RECHECK`]; after that one cheap query (no argon2) confirms the key was not revoked,
/// possibly on another node sharing the database.
#[derive(Clone, Default)]
pub struct KeyCache {
    verified: Arc<RwLock<HashMap<KeyPrint, (Caller, Instant)>>>,
    /// One argon2 verification per key at a time: a burst of first requests with the same key
    /// (a partner app starting 200 connections) waits for one verification instead of running
    /// 200 of them on the blocking pool.
    in_flight: Arc<Mutex<HashMap<KeyPrint, VerificationLock>>>,
}

/// How long a verified key is used without asking the database whether it was revoked.
pub const KEY_RECHECK: Duration = Duration::from_secs(30);

impl KeyCache {
    pub fn clear(&self) {
        self.verified.write().expect("key cache lock").clear();
    }

    fn get(&self, print: &[u8; 32]) -> Option<(Caller, Instant)> {
        self.verified.read().expect("key cache lock").get(print).cloned()
    }

    fn insert(&self, print: [u8; 32], caller: Caller) {
        self.verified.write().expect("key cache lock").insert(print, (caller, Instant::now()));
    }

    fn forget(&self, print: &[u8; 32]) {
        self.verified.write().expect("key cache lock").remove(print);
    }

    fn verification_lock(&self, print: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        self.in_flight.lock().expect("key cache lock").entry(print).or_default().clone()
    }

    fn verification_done(&self, print: &[u8; 32]) {
        self.in_flight.lock().expect("key cache lock").remove(print);
    }
}

fn fingerprint(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Creates a key with `role` and returns it (the only time it exists in clear).
pub async fn issue_key(db: &Database, name: &str, role: Role) -> Result<IssuedKey, ApiError> {
    let id = Uuid::now_v7();
    let mut secret = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut secret);
    let key = format!("dbk_{}_{}", id.simple(), hex::encode(secret));
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default().hash_password(key.as_bytes(), &salt).map_err(ApiError::internal)?.to_string();
    let now = chrono::Utc::now().timestamp_micros();
    match db {
        Database::Sqlite(db) => {
            let mut conn = db.writer.lock().await;
            sqlx::query("INSERT INTO api_keys (id, name, role, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(name)
                .bind(role.as_str())
                .bind(&hash)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(ApiError::internal)?;
        }
        Database::Postgres(pool) => {
            sqlx::query("INSERT INTO api_keys (id, name, role, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(name)
                .bind(role.as_str())
                .bind(&hash)
                .bind(now)
                .execute(pool)
                .await
                .map_err(ApiError::internal)?;
        }
    }
    Ok(IssuedKey { id, name: name.to_string(), role, key })
}

/// Revokes a key; returns false when no active key has that id.
pub async fn revoke_key(db: &Database, id: Uuid) -> Result<bool, ApiError> {
    let now = chrono::Utc::now().timestamp_micros();
    let affected = match db {
        Database::Sqlite(db) => {
            let mut conn = db.writer.lock().await;
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
        }
        Database::Postgres(pool) => {
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        }
    }
    .map_err(ApiError::internal)?;
    Ok(affected == 1)
}

/// On first start there is no admin key: make one and return it so the caller can print it once.
pub async fn ensure_admin_key(db: &Database) -> Result<Option<IssuedKey>, ApiError> {
    let sql = "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL";
    let (count,): (i64,) = match db {
        Database::Sqlite(db) => sqlx::query_as(sql).fetch_one(&db.readers).await,
        Database::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
    }
    .map_err(ApiError::internal)?;
    if count > 0 {
        return Ok(None);
    }
    issue_key(db, "initial admin", Role::Admin).await.map(Some)
}

/// The key's row if it exists and is not revoked: (name, role, argon2 hash).
async fn active_key_row(db: &Database, id: Uuid) -> Result<Option<(String, String, String)>, ApiError> {
    storage::read!(db, |conn| sqlx::query_as(
        "SELECT name, role, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL"
    )
    .bind(id)
    .fetch_optional(conn)
    .await)
    .map_err(ApiError::internal)
}

async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let print = fingerprint(token);
    let invalid = || ApiError::unauthorized("invalid or revoked API key");
    if let Some((caller, checked)) = state.keys.get(&print) {
        if checked.elapsed() < KEY_RECHECK {
            return Ok(caller);
        }
        // Same key bytes as verified before: only revocation can have changed.
        if active_key_row(&state.db, caller.key_id).await?.is_some() {
            state.keys.insert(print, caller.clone());
            return Ok(caller);
        }
        state.keys.forget(&print);
        return Err(invalid());
    }
    let id_part = token.strip_prefix("dbk_").and_then(|rest| rest.split('_').next()).ok_or_else(invalid)?;
    let id = Uuid::parse_str(id_part).map_err(|_| invalid())?;
    let lock = state.keys.verification_lock(print);
    let _turn = lock.lock().await;
    // Whoever held the lock before may have verified this very key.
    if let Some((caller, _)) = state.keys.get(&print) {
        return Ok(caller);
    }
    let result = verify_key(state, token, id).await;
    if let Ok(caller) = &result {
        state.keys.insert(print, caller.clone());
    }
    state.keys.verification_done(&print);
    result
}

/// Looks the key's row up and checks the token against its argon2 hash.
async fn verify_key(state: &AppState, token: &str, id: Uuid) -> Result<Caller, ApiError> {
    let invalid = || ApiError::unauthorized("invalid or revoked API key");
    let (name, role, hash) = active_key_row(&state.db, id).await?.ok_or_else(invalid)?;
    let token_owned = token.to_string();
    let verified = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(token_owned.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .map_err(ApiError::internal)?;
    if !verified {
        return Err(invalid());
    }
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal(format!("key {id} has unknown role {role}")))?;
    Ok(Caller { key_id: id, name, role })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <api key>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization header must be 'Bearer <api key>'"))?;
        authenticate(state, token).await
    }
}
