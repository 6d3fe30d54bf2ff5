//! API keys.
//!
//! A key looks like `dbk_<key id>_<secret>`. Only an argon2 hash of the whole key is stored;
//! the id part lets the store find the row without scanning. argon2 is deliberately slow, so a
//! successful verification is remembered in memory under the SHA-256 of the key (never the key
//! itself) and later requests cost one hash lookup. Revoking a key clears that memory; a key
//! revoked through another node stops working here within [`KEY_RECHECK`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use storage::Database;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{AccessError, Caller, CallerKind, RoleName, Roles};

/// Issued key metadata (the secret itself is shown once, at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedKey {
    pub id: Uuid,
    pub name: String,
    /// The role's name (empty: no role, the key may do nothing).
    pub role: String,
    /// After this instant the key is refused (401); none = until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    /// CIDRs the key may be used from; empty = anywhere.
    pub allowed_ips: Vec<String>,
    /// The full key. Store it now: the server keeps only a hash.
    pub key: String,
}

/// A key as listings show it (never the secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was last used, to the minute (written at most once a minute per node).
    pub last_used_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<String>,
}

/// What a verified key carries between requests.
#[derive(Debug, Clone)]
struct KeyEntry {
    id: Uuid,
    name: String,
    role: String,
    expires_at: Option<i64>,
    allowed: Vec<IpNet>,
}

/// Parses an allow-list (CIDRs or single addresses).
pub fn parse_allowed_ips(list: &[String]) -> Result<Vec<IpNet>, AccessError> {
    list.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| AccessError::Invalid(format!("{s:?} is not an IP address or CIDR")))
        })
        .collect()
}

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

type KeyRow = (String, String, String, Option<i64>, Option<String>);

/// SHA-256 of a whole API key.
type KeyPrint = [u8; 32];
type VerificationLock = Arc<tokio::sync::Mutex<()>>;

/// How long a verified key is used without asking the database whether it was revoked.
pub const KEY_RECHECK: Duration = Duration::from_secs(30);

/// `last_used_at` is written at most this often per key and node.
pub const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// API keys stored in `api_keys`, with the verification cache.
#[derive(Clone)]
pub struct KeyStore {
    db: Database,
    /// Keys verified by this process, under the SHA-256 of the key. An entry is trusted for
    /// [`KEY_RECHECK`]; after that one cheap query (no argon2) confirms the key was not revoked,
    /// possibly on another node sharing the database.
    verified: Arc<RwLock<HashMap<KeyPrint, (KeyEntry, Instant)>>>,
    /// When this process last wrote each key's `last_used_at`.
    last_used: Arc<Mutex<HashMap<Uuid, Instant>>>,
    /// Role name -> permissions, rechecked every few seconds.
    roles: Roles,
    /// One argon2 verification per key at a time: a burst of first requests with the same key
    /// (a partner app starting 200 connections) waits for one verification instead of running
    /// 200 of them on the blocking pool.
    in_flight: Arc<Mutex<HashMap<KeyPrint, VerificationLock>>>,
    /// The time source of `created_at` / `revoked_at`.
    clock: Arc<dyn clock::Clock>,
}

fn fingerprint(token: &str) -> KeyPrint {
    Sha256::digest(token.as_bytes()).into()
}

impl KeyStore {
    pub fn new(db: Database) -> Self {
        let roles = Roles::new(db.clone());
        Self::with_roles(db, roles)
    }

    /// A key store sharing `roles` (and its cache) with the user store.
    pub fn with_roles(db: Database, roles: Roles) -> Self {
        KeyStore {
            db,
            verified: Default::default(),
            in_flight: Default::default(),
            last_used: Default::default(),
            roles,
            clock: Arc::new(clock::SystemClock),
        }
    }

    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// Creates a key with role `role` (which must exist) and returns it (the only time it exists
    /// in clear).
    pub async fn issue(&self, name: &str, role: &str) -> Result<IssuedKey, AccessError> {
        self.issue_with(name, role, None, &[]).await
    }

    /// [`KeyStore::issue`] with an expiry and an IP allow-list.
    pub async fn issue_with(
        &self,
        name: &str,
        role: &str,
        expires_at: Option<DateTime<Utc>>,
        allowed_ips: &[String],
    ) -> Result<IssuedKey, AccessError> {
        if !role.is_empty() {
            self.roles.check(role).await?;
        }
        let allowed = parse_allowed_ips(allowed_ips)?;
        let allowed_text =
            (!allowed.is_empty()).then(|| allowed.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
        let id = Uuid::now_v7();
        let mut secret = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut secret);
        let key = format!("dbk_{}_{}", id.simple(), hex::encode(secret));
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(key.as_bytes(), &salt)
            .map_err(|e| AccessError::Hash(e.to_string()))?
            .to_string();
        let now = self.clock.now_micros();
        // The issuing entry names the key: whoever issued it owns it (the alerts follow owners).
        storage::audit::set_resource(id.to_string());
        let created_by = crate::approvals::current_identity();
        storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO api_keys (id, name, role, secret_hash, created_at, expires_at, allowed_ips, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(id)
        .bind(name)
        .bind(role)
        .bind(&hash)
        .bind(now)
        .bind(expires_at.map(|t| t.timestamp_micros()))
        .bind(&allowed_text)
        .bind(&created_by)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(IssuedKey {
            id,
            name: name.to_string(),
            role: role.to_string(),
            expires_at,
            allowed_ips: allowed.iter().map(ToString::to_string).collect(),
            key,
        })
    }

    /// Active (not revoked) keys, newest first.
    pub async fn list(&self) -> Result<Vec<KeyView>, AccessError> {
        type Row = (Uuid, String, String, i64, Option<i64>, Option<i64>, Option<String>);
        let rows: Vec<Row> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT id, name, role, created_at, expires_at, last_used_at, allowed_ips FROM api_keys \
             WHERE revoked_at IS NULL ORDER BY created_at DESC"
        )
        .fetch_all(conn)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, role, created, expires, used, ips)| KeyView {
                id,
                name,
                role,
                created_at: micros_to_time(created),
                expires_at: expires.map(micros_to_time),
                last_used_at: used.map(micros_to_time),
                allowed_ips: ips.map(|t| t.split(',').map(str::to_string).collect()).unwrap_or_default(),
            })
            .collect())
    }

    /// Revokes a key; [`AccessError::KeyNotFound`] when no active key has that id. Every key
    /// verified by this process is re-checked from then on.
    pub async fn revoke(&self, id: Uuid) -> Result<(), AccessError> {
        let now = self.clock.now_micros();
        let changed = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
        )
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        self.verified.write().expect("key cache lock").clear();
        if changed == 1 {
            Ok(())
        } else {
            Err(AccessError::KeyNotFound(id))
        }
    }

    /// On first start there is no admin key: make one and return it so the caller can print it once.
    pub async fn ensure_admin_key(&self) -> Result<Option<IssuedKey>, AccessError> {
        let (count,): (i64,) = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL"
        )
        .fetch_one(conn)
        .await)?;
        if count > 0 {
            return Ok(None);
        }
        self.issue("initial admin", "admin").await.map(Some)
    }

    /// The key's row if it exists and is not revoked: (name, role, argon2 hash, expiry, allow-list).
    async fn active_key_row(&self, id: Uuid) -> Result<Option<KeyRow>, AccessError> {
        Ok(storage::read!(&self.db, |conn| {
            sqlx::query_as(
            "SELECT name, role, secret_hash, expires_at, allowed_ips FROM api_keys WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .fetch_optional(conn)
        .await
        })?)
    }

    /// The caller a bearer token belongs to, or [`AccessError::InvalidKey`]; an expired key is
    /// [`AccessError::KeyExpired`], a key used from outside its allow-list
    /// [`AccessError::IpNotAllowed`] (`ip` is the client address, when known).
    pub async fn authenticate(&self, token: &str, ip: Option<IpAddr>) -> Result<Caller, AccessError> {
        let entry = self.verified_entry(token).await?;
        if entry.expires_at.is_some_and(|t| t <= self.clock.now_micros()) {
            return Err(AccessError::KeyExpired);
        }
        if !entry.allowed.is_empty() && !ip.is_some_and(|ip| entry.allowed.iter().any(|net| net.contains(&ip))) {
            return Err(AccessError::IpNotAllowed);
        }
        self.note_use(entry.id);
        let permissions = self.roles.permissions(&entry.role).await?;
        Ok(Caller {
            kind: CallerKind::Key,
            key_id: entry.id,
            name: entry.name,
            role: RoleName(entry.role),
            permissions,
            session_id: None,
        })
    }

    /// Writes `last_used_at` in the background, at most once per [`LAST_USED_EVERY`] per key.
    fn note_use(&self, id: Uuid) {
        {
            let mut last = self.last_used.lock().expect("key cache lock");
            match last.get(&id) {
                Some(at) if at.elapsed() < LAST_USED_EVERY => return,
                _ => last.insert(id, Instant::now()),
            };
        }
        let (db, now) = (self.db.clone(), self.clock.now_micros());
        tokio::spawn(async move {
            let result =
                storage::write!(&db, |conn| sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected()));
            if let Err(e) = result {
                tracing::warn!(key_id = %id, error = %e, "could not record the key's last use");
            }
        });
    }

    async fn verified_entry(&self, token: &str) -> Result<KeyEntry, AccessError> {
        let print = fingerprint(token);
        if let Some((entry, checked)) = self.cached(&print) {
            if checked.elapsed() < KEY_RECHECK {
                return Ok(entry);
            }
            // Same key bytes as verified before: only revocation can have changed (and the
            // role, which is read from the row again).
            if let Some(row) = self.active_key_row(entry.id).await? {
                let entry = KeyEntry { role: row.1, ..entry };
                self.remember(print, entry.clone());
                return Ok(entry);
            }
            self.verified.write().expect("key cache lock").remove(&print);
            return Err(AccessError::InvalidKey);
        }
        let id_part =
            token.strip_prefix("dbk_").and_then(|rest| rest.split('_').next()).ok_or(AccessError::InvalidKey)?;
        let id = Uuid::parse_str(id_part).map_err(|_| AccessError::InvalidKey)?;
        let lock = self.in_flight.lock().expect("key cache lock").entry(print).or_default().clone();
        let _turn = lock.lock().await;
        // Whoever held the lock before may have verified this very key.
        if let Some((entry, _)) = self.cached(&print) {
            return Ok(entry);
        }
        let result = self.verify(token, id).await;
        if let Ok(entry) = &result {
            self.remember(print, entry.clone());
        }
        self.in_flight.lock().expect("key cache lock").remove(&print);
        result
    }

    fn cached(&self, print: &KeyPrint) -> Option<(KeyEntry, Instant)> {
        self.verified.read().expect("key cache lock").get(print).cloned()
    }

    fn remember(&self, print: KeyPrint, entry: KeyEntry) {
        self.verified.write().expect("key cache lock").insert(print, (entry, Instant::now()));
    }

    /// Looks the key's row up and checks the token against its argon2 hash.
    async fn verify(&self, token: &str, id: Uuid) -> Result<KeyEntry, AccessError> {
        let (name, role, hash, expires_at, allowed_ips) =
            self.active_key_row(id).await?.ok_or(AccessError::InvalidKey)?;
        let token_owned = token.to_string();
        let verified = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| Argon2::default().verify_password(token_owned.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .map_err(|e| AccessError::Hash(e.to_string()))?;
        if !verified {
            return Err(AccessError::InvalidKey);
        }
        let allowed = allowed_ips
            .map(|t| parse_allowed_ips(&t.split(',').map(str::to_string).collect::<Vec<_>>()))
            .transpose()
            .map_err(|e| AccessError::Corrupt(format!("key {id}: {e}")))?
            .unwrap_or_default();
        Ok(KeyEntry { id, name, role, expires_at, allowed })
    }
}
