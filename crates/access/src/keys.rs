//! API keys.
//!
//! A key looks like `dbk_<key id>_<secret>`. Only an argon2 hash of the whole key is stored;
//! the id part lets the store find the row without scanning. argon2 is deliberately slow, so a
//! successful verification is remembered in memory under the SHA-256 of the key (never the key
//! itself) and later requests cost one hash lookup. Revoking a key clears that memory; a key
//! revoked through another node stops working here within [`KEY_RECHECK`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use storage::Database;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{AccessError, Caller, Role};

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

/// How long a verified key is used without asking the database whether it was revoked.
pub const KEY_RECHECK: Duration = Duration::from_secs(30);

/// API keys stored in `api_keys`, with the verification cache.
#[derive(Clone)]
pub struct KeyStore {
    db: Database,
    /// Keys verified by this process, under the SHA-256 of the key. An entry is trusted for
    /// [`KEY_RECHECK`]; after that one cheap query (no argon2) confirms the key was not revoked,
    /// possibly on another node sharing the database.
    verified: Arc<RwLock<HashMap<KeyPrint, (Caller, Instant)>>>,
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
        KeyStore {
            db,
            verified: Default::default(),
            in_flight: Default::default(),
            clock: Arc::new(clock::SystemClock),
        }
    }

    /// Creates a key with `role` and returns it (the only time it exists in clear).
    pub async fn issue(&self, name: &str, role: Role) -> Result<IssuedKey, AccessError> {
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
        storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO api_keys (id, name, role, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(id)
        .bind(name)
        .bind(role.as_str())
        .bind(&hash)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(IssuedKey { id, name: name.to_string(), role, key })
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
        self.issue("initial admin", Role::Admin).await.map(Some)
    }

    /// The key's row if it exists and is not revoked: (name, role, argon2 hash).
    async fn active_key_row(&self, id: Uuid) -> Result<Option<(String, String, String)>, AccessError> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT name, role, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .fetch_optional(conn)
        .await)?)
    }

    /// The caller a bearer token belongs to, or [`AccessError::InvalidKey`].
    pub async fn authenticate(&self, token: &str) -> Result<Caller, AccessError> {
        let print = fingerprint(token);
        if let Some((caller, checked)) = self.cached(&print) {
            if checked.elapsed() < KEY_RECHECK {
                return Ok(caller);
            }
            // Same key bytes as verified before: only revocation can have changed.
            if self.active_key_row(caller.key_id).await?.is_some() {
                self.remember(print, caller.clone());
                return Ok(caller);
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
        if let Some((caller, _)) = self.cached(&print) {
            return Ok(caller);
        }
        let result = self.verify(token, id).await;
        if let Ok(caller) = &result {
            self.remember(print, caller.clone());
        }
        self.in_flight.lock().expect("key cache lock").remove(&print);
        result
    }

    fn cached(&self, print: &KeyPrint) -> Option<(Caller, Instant)> {
        self.verified.read().expect("key cache lock").get(print).cloned()
    }

    fn remember(&self, print: KeyPrint, caller: Caller) {
        self.verified.write().expect("key cache lock").insert(print, (caller, Instant::now()));
    }

    /// Looks the key's row up and checks the token against its argon2 hash.
    async fn verify(&self, token: &str, id: Uuid) -> Result<Caller, AccessError> {
        let (name, role, hash) = self.active_key_row(id).await?.ok_or(AccessError::InvalidKey)?;
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
        let role =
            Role::parse(&role).ok_or_else(|| AccessError::Corrupt(format!("key {id} has unknown role {role}")))?;
        Ok(Caller { key_id: id, name, role })
    }
}
