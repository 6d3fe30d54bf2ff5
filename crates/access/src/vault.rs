//! Field encryption at rest: the [`Vault`] seals personal data with AES-256-GCM and computes the
//! keyed blind indexes that exact lookups use instead of the values.
//!
//! Envelope encryption: the *data keys* that encrypt fields are random 256-bit keys, stored in
//! table `data_keys` only wrapped by the *master key*, which never touches the database. Who
//! holds the master key is a [`KeyProvider`]: [`MasterKey`] reads it from a key file or an
//! environment variable; a KMS or HSM provider implements the same two calls (wrap, unwrap).
//!
//! * Purpose `field`: AES-256-GCM data keys. Every ciphertext names the version that sealed it
//!   (`enc:k<version>:<base64(nonce || ciphertext || tag)>`); `digibank security rotate-key`
//!   adds a version and re-encrypts rows to it ([`rotation`](Vault::begin_rotation)), older
//!   versions stay readable meanwhile.
//! * Purpose `blind_index`: one HMAC-SHA-256 key, version 1 forever. A blind index must be the
//!   same for the same value at any time, so this key is **never rotated** (rotating it would
//!   need every clear value and would break lookups during the change).
//!
//! Associated data binds a ciphertext to its column (`"customers.phone"`): a value copied into
//! another column fails its integrity check. Values are not bound to their row, so swapping two
//! rows' ciphertexts inside one column is not detected.
//!
//! Unwrapped data keys live only in memory, in ciphers that zeroize their key schedule on drop
//! (`aes-gcm`'s `zeroize` feature); the master key bytes are zeroized on drop too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use storage::Database;
use zeroize::Zeroizing;

/// Start of every ciphertext: `enc:k<key version>:<base64>`.
pub const CIPHERTEXT_PREFIX: &str = "enc:k";
/// Start of a blind index written as text (`bi:<hex>`), e.g. in stored risk events and lists.
pub const BLIND_TOKEN_PREFIX: &str = "bi:";
/// Key file created for a database without a configured key.
pub const DEFAULT_KEY_FILE: &str = "master.key";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const PURPOSE_FIELD: &str = "field";
const PURPOSE_BLIND: &str = "blind_index";

/// Why a key could not be used or a ciphertext could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key is missing, unreadable or malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The configured master key did not wrap this database's data keys.
    #[error(
        "the master key from {provider} cannot unwrap data key {purpose} v{version} of this database: \
         it is not the key this database was encrypted with"
    )]
    WrongMasterKey { provider: String, purpose: String, version: i64 },
    /// A ciphertext failed authentication (tampered, truncated, moved from another column) or
    /// is not a ciphertext at all.
    #[error("{field}: {reason}")]
    Integrity { field: String, reason: String },
    /// A ciphertext names a data key version this process has not loaded (and the database
    /// does not hold, after [`Vault::refresh`]).
    #[error("{field}: sealed with data key v{version}, which this database does not hold")]
    UnknownKeyVersion { field: String, version: u32 },
    #[error("key provider: {0}")]
    Provider(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl VaultError {
    /// Whether this error says a stored value is not what was sealed (an integrity failure of
    /// that record), as opposed to a configuration or database problem.
    pub fn is_integrity(&self) -> bool {
        matches!(self, VaultError::Integrity { .. } | VaultError::UnknownKeyVersion { .. })
    }
}

// ---- key providers -----------------------------------------------------------------------------

/// Who holds the master key: wraps and unwraps data keys. `context` names the data key
/// (`"digibank data key field v2"`) and must be bound to the wrapping (as associated data), so
/// a wrapped key cannot be swapped for another.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync {
    /// Where the master key comes from, for messages (never the key).
    fn describe(&self) -> String;
    /// A short name stored next to each wrapped key (`local`, later `kms:...`).
    fn kind(&self) -> &'static str;
    async fn wrap(&self, context: &str, data_key: &[u8]) -> Result<Vec<u8>, VaultError>;
    async fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError>;
}

/// A 256-bit master key held in this process (from a key file or an environment variable);
/// wraps data keys with AES-256-GCM.
pub struct MasterKey {
    cipher: Aes256Gcm,
    source: String,
}

impl MasterKey {
    /// A master key from 32 bytes; `source` says where it came from (for messages).
    pub fn from_bytes(bytes: &[u8], source: impl Into<String>) -> Result<Self, VaultError> {
        let source = source.into();
        if bytes.len() != 32 {
            return Err(VaultError::MasterKey(format!("{source}: a master key is 32 bytes, this is {}", bytes.len())));
        }
        Ok(MasterKey { cipher: Aes256Gcm::new_from_slice(bytes).expect("32-byte key"), source })
    }

    /// Parses a key written as 64 hex digits or as base64 (standard or URL-safe) of 32 bytes.
    pub fn parse(text: &str, source: impl Into<String>) -> Result<Self, VaultError> {
        let source = source.into();
        let text = text.trim();
        let bytes = Zeroizing::new(
            hex::decode(text)
                .ok()
                .filter(|b| b.len() == 32)
                .or_else(|| STANDARD.decode(text).ok())
                .or_else(|| URL_SAFE.decode(text).ok())
                .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
                .ok_or_else(|| VaultError::MasterKey(format!("{source}: not 64 hex digits or base64 of 32 bytes")))?,
        );
        Self::from_bytes(&bytes, source)
    }

    /// Reads a key file (hex or base64 text). On Unix a file readable by group or others is
    /// refused: the key protects every personal record.
    pub fn from_file(path: &std::path::Path) -> Result<Self, VaultError> {
        let source = format!("key file {}", path.display());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path).map_err(|e| VaultError::MasterKey(format!("{source}: {e}")))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(VaultError::MasterKey(format!(
                    "{source} is readable by others (mode {:o}); chmod 600 it",
                    meta.permissions().mode() & 0o777
                )));
            }
        }
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| VaultError::MasterKey(format!("{source}: {e}")))?);
        Self::parse(&text, source)
    }

    /// Creates a key file with a new random key (mode 0600, never overwriting: when another
    /// process created the file first, that key is read instead). Returns the key and whether
    /// this call created the file.
    pub fn create_file(path: &std::path::Path) -> Result<(Self, bool), VaultError> {
        let fail = |e: std::io::Error| VaultError::MasterKey(format!("cannot create key file {}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_ref())));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        // Written under a temporary name and linked into place, so a concurrent reader never
        // sees a half-written key and an existing key is never replaced.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        {
            use std::io::Write;
            let mut file = options.open(&tmp).map_err(fail)?;
            file.write_all(text.as_bytes()).and_then(|_| file.sync_all()).map_err(fail)?;
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok((Self::from_bytes(bytes.as_ref(), format!("key file {}", path.display()))?, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((Self::from_file(path)?, false)),
            Err(e) => Err(fail(e)),
        }
    }

    /// A random key that exists only in this process (tests).
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_bytes(bytes.as_ref(), "a random test key").expect("32 bytes")
    }
}

#[async_trait::async_trait]
impl KeyProvider for MasterKey {
    fn describe(&self) -> String {
        self.source.clone()
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    async fn wrap(&self, context: &str, data_key: &[u8]) -> Result<Vec<u8>, VaultError> {
        Ok(seal_bytes(&self.cipher, context.as_bytes(), data_key))
    }

    async fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        open_bytes(&self.cipher, context.as_bytes(), wrapped)
            .map(Zeroizing::new)
            .ok_or_else(|| VaultError::Provider(format!("{} does not unwrap {context}", self.source)))
    }
}

/// nonce || ciphertext || tag. The nonce is 96 random bits from the OS for every message.
/// Random nonces are safe while one key seals fewer than 2^32 messages (NIST SP 800-38D: the
/// chance of a repeated nonce then stays below 2^-32); a data key seals one value per field
/// write, and `rotate-key` starts a new key long before that bound.
fn seal_bytes(cipher: &Aes256Gcm, aad: &[u8], clear: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed =
        cipher.encrypt(&nonce, Payload { msg: clear, aad }).expect("AES-GCM seals any value shorter than 64 GiB");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open_bytes(cipher: &Aes256Gcm, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad }).ok()
}

fn key_context(purpose: &str, version: i64) -> String {
    format!("digibank data key {purpose} v{version}")
}

// ---- the vault ---------------------------------------------------------------------------------

/// Seals and opens fields, computes blind indexes. A cheap `Clone` handle: platforms get one at
/// construction.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    provider: Arc<dyn KeyProvider>,
    keys: RwLock<FieldKeys>,
    /// HMAC-SHA-256 state keyed with the blind index key, cloned per index.
    blind: Hmac<Sha256>,
}

struct FieldKeys {
    /// The version new ciphertexts are sealed with (the newest).
    current: u32,
    ciphers: HashMap<u32, Arc<Aes256Gcm>>,
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Whether the database holds data keys, i.e. encrypted data that needs the master key.
pub async fn has_data_keys(db: &Database) -> Result<bool, VaultError> {
    let n: i64 = storage::read!(db, |conn| sqlx::query_scalar("SELECT COUNT(*) FROM data_keys").fetch_one(conn).await)?;
    Ok(n > 0)
}

impl Vault {
    /// Opens the vault of `db`: unwraps its data keys with `provider`, creating the first field
    /// key and the blind index key when the database has none. A master key that did not wrap
    /// the stored keys is [`VaultError::WrongMasterKey`].
    pub async fn load(db: &Database, provider: Arc<dyn KeyProvider>) -> Result<Vault, VaultError> {
        for purpose in [PURPOSE_FIELD, PURPOSE_BLIND] {
            let n: i64 =
                storage::read!(db, |conn| sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE purpose = $1")
                    .bind(purpose)
                    .fetch_one(conn)
                    .await)?;
            if n == 0 {
                insert_new_key(db, provider.as_ref(), purpose, 1).await?;
            }
        }
        let blind_rows = load_keys(db, provider.as_ref(), PURPOSE_BLIND, &[]).await?;
        let blind_key = blind_rows
            .into_iter()
            .find(|(v, _)| *v == 1)
            .ok_or_else(|| VaultError::MasterKey("the blind index key v1 is missing".into()))?
            .1;
        let blind = <Hmac<Sha256> as Mac>::new_from_slice(&blind_key).expect("HMAC takes any key length");
        let vault = Vault {
            inner: Arc::new(Inner {
                db: db.clone(),
                provider,
                keys: RwLock::new(FieldKeys { current: 0, ciphers: HashMap::new() }),
                blind,
            }),
        };
        vault.refresh().await?;
        Ok(vault)
    }

    /// A vault on `db` with a random master key that exists only in this process (tests).
    pub async fn for_tests(db: &Database) -> Vault {
        Vault::load(db, Arc::new(MasterKey::random())).await.expect("test vault")
    }

    /// Loads field keys added since (by `rotate-key`, possibly in another process) and moves
    /// the current version to the newest. Cheap when nothing changed.
    pub async fn refresh(&self) -> Result<(), VaultError> {
        let known: Vec<u32> = self.inner.keys.read().expect("vault lock").ciphers.keys().copied().collect();
        let loaded = load_keys(&self.inner.db, self.inner.provider.as_ref(), PURPOSE_FIELD, &known).await?;
        let mut keys = self.inner.keys.write().expect("vault lock");
        for (version, key) in loaded {
            let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| VaultError::MasterKey("bad data key".into()))?;
            keys.ciphers.insert(version, Arc::new(cipher));
        }
        keys.current = keys.ciphers.keys().copied().max().unwrap_or(0);
        Ok(())
    }

    /// Re-reads the keys every `every` for as long as the process runs, so a server follows a
    /// `rotate-key` run elsewhere (new writes use the new version within that interval).
    pub fn spawn_refresher(&self, every: std::time::Duration) {
        let vault = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = vault.refresh().await {
                    tracing::warn!(error = %e, "reloading data keys failed; will retry");
                }
            }
        });
    }

    /// The data key version new ciphertexts are sealed with.
    pub fn current_version(&self) -> u32 {
        self.inner.keys.read().expect("vault lock").current
    }

    /// Where the master key comes from (for messages).
    pub fn provider_description(&self) -> String {
        self.inner.provider.describe()
    }

    /// Seals `clear` for `field` (`"<table>.<column>"`, bound as associated data) with the
    /// current data key.
    pub fn seal(&self, field: &str, clear: &str) -> String {
        let keys = self.inner.keys.read().expect("vault lock");
        let version = keys.current;
        let cipher = keys.ciphers.get(&version).expect("the current data key is loaded");
        let blob = seal_bytes(cipher, field.as_bytes(), clear.as_bytes());
        format!("{CIPHERTEXT_PREFIX}{version}:{}", STANDARD.encode(blob))
    }

    /// [`Vault::seal`] of an optional value (`None` stays `None`).
    pub fn seal_opt(&self, field: &str, clear: Option<&str>) -> Option<String> {
        clear.map(|c| self.seal(field, c))
    }

    /// Opens a ciphertext of `field`. Anything that is not a ciphertext sealed for this field
    /// with a known key and unchanged since is an error, never garbage.
    pub fn open(&self, field: &str, text: &str) -> Result<String, VaultError> {
        let integrity = |reason: &str| VaultError::Integrity { field: field.to_string(), reason: reason.to_string() };
        let (version, body) = parse_ciphertext(text).ok_or_else(|| integrity("is not a ciphertext"))?;
        let cipher = self
            .inner
            .keys
            .read()
            .expect("vault lock")
            .ciphers
            .get(&version)
            .cloned()
            .ok_or_else(|| VaultError::UnknownKeyVersion { field: field.to_string(), version })?;
        let blob = STANDARD.decode(body).map_err(|_| integrity("ciphertext is not valid base64"))?;
        let clear = open_bytes(&cipher, field.as_bytes(), &blob)
            .ok_or_else(|| integrity("ciphertext failed its integrity check (changed, truncated or moved)"))?;
        String::from_utf8(clear).map_err(|_| integrity("sealed value is not UTF-8"))
    }

    /// [`Vault::open`] of an optional value.
    pub fn open_opt(&self, field: &str, text: Option<&str>) -> Result<Option<String>, VaultError> {
        text.map(|t| self.open(field, t)).transpose()
    }

    /// Runs `f` (which opens ciphertexts); when it meets a key version this process has not
    /// loaded yet (another process just rotated), reloads the keys once and runs it again.
    pub async fn with_fresh_keys<T>(&self, f: impl Fn(&Vault) -> Result<T, VaultError>) -> Result<T, VaultError> {
        match f(self) {
            Err(VaultError::UnknownKeyVersion { .. }) => {
                self.refresh().await?;
                f(self)
            }
            other => other,
        }
    }

    /// The keyed blind index of `value` in `domain` (`"phone"`, `"id_number"`,
    /// `"id_document"`): HMAC-SHA-256(blind index key, domain || 0 || SHA-256(value)). Hashing
    /// the value first lets the start-up step turn SHA-256 digests stored by older versions
    /// into this index without the clear values; without the key neither can be brute-forced.
    pub fn blind_index(&self, domain: &str, value: &str) -> Vec<u8> {
        self.blind_index_of_digest(domain, &Sha256::digest(value.as_bytes()))
    }

    /// The blind index from the SHA-256 digest of the value (see [`Vault::blind_index`]).
    pub fn blind_index_of_digest(&self, domain: &str, digest: &[u8]) -> Vec<u8> {
        let mut mac = self.inner.blind.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(digest);
        mac.finalize().into_bytes().to_vec()
    }

    /// The blind index as text, `bi:<hex>` (for JSON documents and text keys).
    pub fn blind_token(&self, domain: &str, value: &str) -> String {
        format!("{BLIND_TOKEN_PREFIX}{}", hex::encode(self.blind_index(domain, value)))
    }

    /// [`Vault::blind_token`] from the SHA-256 digest of the value.
    pub fn blind_token_of_digest(&self, domain: &str, digest: &[u8]) -> String {
        format!("{BLIND_TOKEN_PREFIX}{}", hex::encode(self.blind_index_of_digest(domain, digest)))
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    // ---- rotation ------------------------------------------------------------------------------

    /// Starts a rotation, or returns the unfinished one: adds field key version N+1, makes it
    /// current, and records the rotation in `key_rotations` (which a restarted `rotate-key` or
    /// `serve` resumes). Returns the version rows are re-encrypted to.
    pub async fn begin_rotation(&self) -> Result<u32, VaultError> {
        if let Some(v) = self.pending_rotation().await? {
            self.refresh().await?;
            return Ok(v);
        }
        let next: i64 = storage::read!(&self.inner.db, |conn| sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM data_keys WHERE purpose = 'field'"
        )
        .fetch_one(conn)
        .await)?;
        insert_new_key(&self.inner.db, self.inner.provider.as_ref(), PURPOSE_FIELD, next).await?;
        storage::write!(&self.inner.db, |conn| sqlx::query(
            "INSERT INTO key_rotations (version, started_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING"
        )
        .bind(next)
        .bind(now_micros())
        .execute(conn)
        .await
        .map(|_| ()))?;
        self.refresh().await?;
        Ok(next as u32)
    }

    /// The version of an unfinished rotation, if any.
    pub async fn pending_rotation(&self) -> Result<Option<u32>, VaultError> {
        let v: Option<i64> = storage::read!(&self.inner.db, |conn| sqlx::query_scalar(
            "SELECT MAX(version) FROM key_rotations WHERE finished_at IS NULL"
        )
        .fetch_one(conn)
        .await)?;
        Ok(v.map(|v| v as u32))
    }

    /// Rows of `tables` sealed under a version older than `version` (or not sealed yet).
    pub async fn rows_to_rotate(&self, tables: &[EncryptedTable], version: u32) -> Result<i64, VaultError> {
        let mut total = 0;
        for t in tables {
            let sql = format!("SELECT COUNT(*) FROM {} WHERE key_version < $1", t.table);
            let n: i64 = storage::read!(&self.inner.db, |conn| sqlx::query_scalar(&sql)
                .bind(i64::from(version))
                .fetch_one(conn)
                .await)?;
            total += n;
        }
        Ok(total)
    }

    /// Re-encrypts up to `limit` rows of `table` sealed under a version older than `version`;
    /// returns how many rows it read (0 = the table is done). Each row is rewritten only if its
    /// ciphertexts are still the ones read (a concurrent writer wins; the row comes back in a
    /// later page if the writer used an old key), so reads and writes go on meanwhile.
    pub async fn rotate_page(&self, table: &EncryptedTable, version: u32, limit: i64) -> Result<u64, VaultError> {
        let mut columns: Vec<&str> = table.key.iter().map(|(c, _)| *c).collect();
        columns.extend(table.columns.iter().copied());
        let sql = format!(
            "SELECT {} FROM {} WHERE key_version < $1 ORDER BY key_version LIMIT $2",
            columns.join(", "),
            table.table
        );
        let rows: Vec<(Vec<KeyValue>, Vec<Option<String>>)> = storage::read!(&self.inner.db, |conn| {
            use sqlx::Row;
            let rows = sqlx::query(&sql).bind(i64::from(version)).bind(limit).fetch_all(conn).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut key = Vec::with_capacity(table.key.len());
                for (i, (_, kind)) in table.key.iter().enumerate() {
                    key.push(match kind {
                        KeyType::Text => KeyValue::Text(row.try_get::<String, _>(i)?),
                        KeyType::Int => KeyValue::Int(row.try_get::<i64, _>(i)?),
                    });
                }
                let mut values = Vec::with_capacity(table.columns.len());
                for i in 0..table.columns.len() {
                    values.push(row.try_get::<Option<String>, _>(table.key.len() + i)?);
                }
                out.push((key, values));
            }
            Ok::<_, sqlx::Error>(out)
        })?;
        let read = rows.len() as u64;
        let mut rewritten = 0i64;
        for (key, old) in rows {
            let resealed = self
                .with_fresh_keys(|v| {
                    table
                        .columns
                        .iter()
                        .zip(&old)
                        .map(|(col, text)| {
                            let field = format!("{}.{col}", table.table);
                            Ok(match text {
                                Some(t) => Some(v.seal(&field, &v.open(&field, t)?)),
                                None => None,
                            })
                        })
                        .collect::<Result<Vec<_>, VaultError>>()
                })
                .await
                .map_err(|e| match e {
                    VaultError::Integrity { field, reason } => {
                        VaultError::Integrity { field: format!("{field} of row {}", describe_key(&key)), reason }
                    }
                    other => other,
                })?;
            let mut sets: Vec<String> =
                table.columns.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
            let n = table.columns.len();
            sets.push(format!("key_version = ${}", n + 1));
            let mut conds: Vec<String> =
                table.key.iter().enumerate().map(|(i, (c, _))| format!("{c} = ${}", n + 2 + i)).collect();
            let m = n + 2 + table.key.len();
            conds.extend(table.columns.iter().enumerate().map(|(i, c)| format!("COALESCE({c}, '') = ${}", m + i)));
            let sql = format!("UPDATE {} SET {} WHERE {}", table.table, sets.join(", "), conds.join(" AND "));
            let current = i64::from(self.current_version());
            let changed = storage::write!(&self.inner.db, |conn| {
                let mut q = sqlx::query(&sql);
                for v in &resealed {
                    q = q.bind(v.clone());
                }
                q = q.bind(current);
                for k in &key {
                    q = match k {
                        KeyValue::Text(s) => q.bind(s.clone()),
                        KeyValue::Int(i) => q.bind(*i),
                    };
                }
                for v in &old {
                    q = q.bind(v.clone().unwrap_or_default());
                }
                q.execute(conn).await.map(|r| r.rows_affected())
            })?;
            rewritten += changed as i64;
        }
        if rewritten > 0 {
            storage::write!(&self.inner.db, |conn| sqlx::query(
                "UPDATE key_rotations SET rows_done = rows_done + $1 WHERE version = $2"
            )
            .bind(rewritten)
            .bind(i64::from(version))
            .execute(conn)
            .await
            .map(|_| ()))?;
        }
        Ok(read)
    }

    /// Ends a rotation once no row of `tables` is sealed under an older key: records the end
    /// and retires the older field keys (kept wrapped, never used to seal again). Returns
    /// `false` (and changes nothing) while rows remain.
    pub async fn finish_rotation(&self, tables: &[EncryptedTable], version: u32) -> Result<bool, VaultError> {
        if self.rows_to_rotate(tables, version).await? > 0 {
            return Ok(false);
        }
        let now = now_micros();
        storage::transaction!(&self.inner.db, |tx| async {
            sqlx::query("UPDATE key_rotations SET finished_at = $1 WHERE version = $2 AND finished_at IS NULL")
                .bind(now)
                .bind(i64::from(version))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE data_keys SET retired_at = $1 WHERE purpose = 'field' AND version < $2 AND retired_at IS NULL",
            )
            .bind(now)
            .bind(i64::from(version))
            .execute(&mut *tx)
            .await?;
            Ok::<(), VaultError>(())
        }
        .await)?;
        Ok(true)
    }

    /// `(version, created_at, retired_at)` of every field key, and the rotation in progress.
    pub async fn status(&self) -> Result<KeyStatus, VaultError> {
        let keys: Vec<(i64, i64, Option<i64>)> = storage::read!(&self.inner.db, |conn| sqlx::query_as(
            "SELECT version, created_at, retired_at FROM data_keys WHERE purpose = 'field' ORDER BY version"
        )
        .fetch_all(conn)
        .await)?;
        let rotation: Option<(i64, i64, i64)> = storage::read!(&self.inner.db, |conn| {
            sqlx::query_as(
            "SELECT version, started_at, rows_done FROM key_rotations WHERE finished_at IS NULL ORDER BY version DESC LIMIT 1"
        )
        .fetch_optional(conn)
        .await
        })?;
        Ok(KeyStatus { field_keys: keys, rotation, provider: self.provider_description() })
    }
}

/// What `digibank security status` prints.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    /// `(version, created_at, retired_at)` of each field data key.
    pub field_keys: Vec<(i64, i64, Option<i64>)>,
    /// `(version, started_at, rows_done)` of the unfinished rotation.
    pub rotation: Option<(i64, i64, i64)>,
    pub provider: String,
}

/// A table with sealed columns, as its platform declares it: the primary key columns and the
/// sealed ones (their field name for associated data is `"<table>.<column>"`). Every such
/// table has a `key_version` column: the data key version of its sealed columns, `NULL` for a
/// row not sealed yet.
#[derive(Debug, Clone, Copy)]
pub struct EncryptedTable {
    pub table: &'static str,
    pub key: &'static [(&'static str, KeyType)],
    pub columns: &'static [&'static str],
}

/// Type of a primary key column of an [`EncryptedTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Text,
    Int,
}

#[derive(Debug, Clone)]
enum KeyValue {
    Text(String),
    Int(i64),
}

fn describe_key(key: &[KeyValue]) -> String {
    key.iter()
        .map(|k| match k {
            KeyValue::Text(s) => s.clone(),
            KeyValue::Int(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `(version, base64 body)` of `enc:k<version>:<body>`.
fn parse_ciphertext(text: &str) -> Option<(u32, &str)> {
    let rest = text.strip_prefix(CIPHERTEXT_PREFIX)?;
    let (version, body) = rest.split_once(':')?;
    Some((version.parse().ok()?, body))
}

/// Whether `text` looks like a ciphertext of this module (says nothing about its integrity).
pub fn is_ciphertext(text: &str) -> bool {
    parse_ciphertext(text).is_some()
}

async fn insert_new_key(
    db: &Database,
    provider: &dyn KeyProvider,
    purpose: &str,
    version: i64,
) -> Result<(), VaultError> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    let wrapped = provider.wrap(&key_context(purpose, version), key.as_ref()).await?;
    // Two processes creating the first keys at once: the first insert wins, the other reads it.
    storage::write!(db, |conn| sqlx::query(
        "INSERT INTO data_keys (purpose, version, wrapped_key, provider, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (purpose, version) DO NOTHING"
    )
    .bind(purpose)
    .bind(version)
    .bind(STANDARD.encode(&wrapped))
    .bind(provider.kind())
    .bind(now_micros())
    .execute(conn)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Unwraps the keys of `purpose` except the versions in `skip`.
async fn load_keys(
    db: &Database,
    provider: &dyn KeyProvider,
    purpose: &str,
    skip: &[u32],
) -> Result<Vec<(u32, Zeroizing<Vec<u8>>)>, VaultError> {
    let rows: Vec<(i64, String)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT version, wrapped_key FROM data_keys WHERE purpose = $1 ORDER BY version"
    )
    .bind(purpose)
    .fetch_all(conn)
    .await)?;
    let mut out = Vec::new();
    for (version, wrapped) in rows.into_iter().filter(|(v, _)| !skip.contains(&(*v as u32))) {
        let wrong = || VaultError::WrongMasterKey { provider: provider.describe(), purpose: purpose.into(), version };
        let blob = STANDARD.decode(&wrapped).map_err(|_| wrong())?;
        let key = provider.unwrap(&key_context(purpose, version), &blob).await.map_err(|e| match e {
            VaultError::Provider(_) => wrong(),
            other => other,
        })?;
        if key.len() != 32 {
            return Err(wrong());
        }
        out.push((version as u32, key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn vault() -> (storage::testing::TestDb, Vault) {
        let db = storage::testing::sqlite().await;
        let vault = Vault::for_tests(&db.db).await;
        (db, vault)
    }

    #[tokio::test]
    async fn seal_open_round_trip_with_fresh_nonces() {
        let (_db, v) = vault().await;
        let a = v.seal("customers.phone", "+8613800000001");
        let b = v.seal("customers.phone", "+8613800000001");
        assert_ne!(a, b, "a fresh nonce per seal");
        assert!(a.starts_with("enc:k1:"), "{a}");
        assert!(!a.contains("13800000001"));
        assert_eq!(v.open("customers.phone", &a).unwrap(), "+8613800000001");
    }

    #[tokio::test]
    async fn tampering_and_moving_are_integrity_errors() {
        let (_db, v) = vault().await;
        let sealed = v.seal("customers.name", "张伟");
        // Another column: the associated data differs.
        assert!(matches!(v.open("customers.phone", &sealed), Err(VaultError::Integrity { .. })));
        // One flipped bit in the body.
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut blob = STANDARD.decode(body).unwrap();
        blob[NONCE_LEN + 1] ^= 1;
        let tampered = format!("{head}:{}", STANDARD.encode(blob));
        let err = v.open("customers.name", &tampered).unwrap_err();
        assert!(err.is_integrity() && err.to_string().contains("customers.name"), "{err}");
        assert!(v.open("customers.name", "张伟").unwrap_err().is_integrity());
        assert!(v.open("customers.name", "enc:k1:AAAA").unwrap_err().is_integrity());
        assert!(matches!(v.open("customers.name", "enc:k9:AAAA"), Err(VaultError::UnknownKeyVersion { .. })));
    }

    #[tokio::test]
    async fn blind_index_is_keyed_stable_and_domain_separated() {
        let (db, v) = vault().await;
        let a = v.blind_index("phone", "+8613800000001");
        assert_eq!(a, v.blind_index("phone", "+8613800000001"));
        assert_ne!(a, v.blind_index("id_number", "+8613800000001"));
        assert_ne!(a, Sha256::digest(b"+8613800000001").to_vec(), "not the unkeyed digest");
        assert_eq!(a, v.blind_index_of_digest("phone", &Sha256::digest(b"+8613800000001")));
        // Another master key on another database: another blind index key.
        let other = Vault::for_tests(&storage::testing::sqlite().await.db).await;
        assert_ne!(a, other.blind_index("phone", "+8613800000001"));
        drop(db);
    }

    #[tokio::test]
    async fn the_wrong_master_key_is_refused_and_the_right_one_reopens() {
        let db = storage::testing::sqlite().await;
        let dir = std::env::temp_dir().join(format!("digibank-key-{}", uuid::Uuid::now_v7().simple()));
        let path = dir.join(DEFAULT_KEY_FILE);
        let (key, created) = MasterKey::create_file(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let vault = Vault::load(&db.db, Arc::new(key)).await.unwrap();
        let sealed = vault.seal("customers.name", "李娜");
        let again = Vault::load(&db.db, Arc::new(MasterKey::from_file(&path).unwrap())).await.unwrap();
        assert_eq!(again.open("customers.name", &sealed).unwrap(), "李娜");
        let (_, created) = MasterKey::create_file(&path).unwrap();
        assert!(!created, "an existing key file is never replaced");
        let err = Vault::load(&db.db, Arc::new(MasterKey::random())).await.err().unwrap();
        assert!(matches!(err, VaultError::WrongMasterKey { .. }), "{err}");
        assert!(MasterKey::parse(&"ab".repeat(32), "test").is_ok());
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 32]), "test").is_ok());
        assert!(MasterKey::parse("tooshort", "test").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn rotation_adds_a_version_and_old_ciphertexts_stay_readable() {
        let (_db, v) = vault().await;
        let old = v.seal("customers.name", "王芳");
        assert_eq!(v.begin_rotation().await.unwrap(), 2);
        assert_eq!(v.begin_rotation().await.unwrap(), 2, "an unfinished rotation is resumed, not doubled");
        assert_eq!(v.current_version(), 2);
        assert!(v.seal("customers.name", "x").starts_with("enc:k2:"));
        assert_eq!(v.open("customers.name", &old).unwrap(), "王芳");
        assert!(v.finish_rotation(&[], 2).await.unwrap());
        assert_eq!(v.pending_rotation().await.unwrap(), None);
        assert_eq!(v.begin_rotation().await.unwrap(), 3);
    }
}
