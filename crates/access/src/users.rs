//! Staff users: people who sign in with a username, a password (argon2) and a TOTP second
//! factor (RFC 6238, with one-time recovery codes), and the sessions they get.
//!
//! * **Enrolment**: an admin creates the user (no second factor yet). The first sign-in with
//!   username and password alone answers the TOTP secret (and its `otpauth://` URI) and ten
//!   recovery codes, once; signing in with the password and a first code from the
//!   authenticator confirms the secret and opens the first session. Until confirmed, every
//!   password-only sign-in starts enrolment again with a new secret and new codes.
//! * **Sign-in** answers the same [`AccessError::InvalidCredentials`] for an unknown user, a
//!   wrong password, a wrong or missing code and a disabled user (an unknown user still costs
//!   one argon2 verification). Failures are counted per user (`failed_attempts`; the user is
//!   locked after [`UserSettings::max_failures`] until an admin unlocks it) and per client
//!   address in memory ([`UserSettings::ip_max_failures`] per [`UserSettings::ip_window`]).
//! * **Sessions**: the token `dbs_<64 hex>` is shown once; only its SHA-256 is stored (it is
//!   256 random bits, so a fast hash is enough). Each request reads the session row (so a
//!   sign-out, a disabled user or a reset second factor ends it at once on every node) and
//!   writes `last_seen_at` only when it is older than a tenth of the idle timeout (at most a
//!   minute). A session ends after [`UserSettings::session_idle`] without use or
//!   [`UserSettings::session_max`] after sign-in, whichever comes first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use rand::{Rng, RngCore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use storage::Database;
use totp_rs::{Algorithm, TOTP};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{AccessError, Caller, CallerKind, RoleName, Roles};

/// Session and sign-in settings.
#[derive(Debug, Clone, Copy)]
pub struct UserSettings {
    /// A session unused this long ends (default 30 minutes).
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not (default 12 hours).
    pub session_max: Duration,
    /// Failed sign-ins in a row that lock the user (default 5).
    pub max_failures: u32,
    /// Failed sign-ins from one address within [`UserSettings::ip_window`] after which that
    /// address is refused with [`AccessError::TooManyAttempts`] (default 20).
    pub ip_max_failures: u32,
    pub ip_window: Duration,
}

impl Default for UserSettings {
    fn default() -> Self {
        UserSettings {
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            max_failures: 5,
            ip_max_failures: 20,
            ip_window: Duration::from_secs(15 * 60),
        }
    }
}

/// The issuer named in `otpauth://` URIs.
pub const TOTP_ISSUER: &str = "digibank";
const RECOVERY_CODES: usize = 10;
const MIN_PASSWORD: usize = 12;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    /// The role's name; none = the user may do nothing but sign in and out.
    pub role: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// Locked after too many failed sign-ins, until an admin unlocks it.
    pub locked: bool,
    /// Whether the second factor is set up (false until the first code confirms it).
    pub totp_enrolled: bool,
    pub created_at: DateTime<Utc>,
}

/// A new user and, when none was given, the generated initial password (shown once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<String>,
}

/// The second factor to set up, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Enrolment {
    /// The TOTP secret, base32 (SHA-1, 6 digits, 30 s).
    pub secret: String,
    /// The same as an `otpauth://totp/...` URI for authenticator apps (QR code).
    pub otpauth_uri: String,
    /// One-time codes that stand in for a TOTP code. Store them now.
    pub recovery_codes: Vec<String>,
}

/// A session just opened; the token is shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewSession {
    pub session_id: Uuid,
    /// `dbs_...`: send as `Authorization: Bearer <token>` (or use the cookie).
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_secs: u64,
    pub user: UserView,
}

/// What a sign-in achieved.
#[derive(Debug, Clone)]
pub enum SignIn {
    Session(NewSession),
    /// Password right, no second factor yet: set it up, then sign in with its first code.
    EnrolmentRequired(Enrolment),
}

/// A session as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    /// The session of this request.
    pub current: bool,
}

/// The credentials of one sign-in.
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub totp: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
}

type UserRow =
    (Uuid, String, String, Option<String>, String, Option<String>, Option<String>, String, i64, Option<i64>, i64);
const USER_COLUMNS: &str = "id, username, display_name, role, password_hash, totp_secret, totp_pending, status, \
                            failed_attempts, locked_at, created_at";

struct User {
    id: Uuid,
    username: String,
    display_name: String,
    role: Option<String>,
    password_hash: String,
    totp_secret: Option<String>,
    totp_pending: Option<String>,
    status: String,
    locked_at: Option<i64>,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.0,
            username: r.1,
            display_name: r.2,
            role: r.3,
            password_hash: r.4,
            totp_secret: r.5,
            totp_pending: r.6,
            status: r.7,
            locked_at: r.9,
            created_at: r.10,
        }
    }
}

impl User {
    fn view(&self) -> UserView {
        UserView {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role.clone(),
            status: self.status.clone(),
            locked: self.locked_at.is_some(),
            totp_enrolled: self.totp_secret.is_some(),
            created_at: micros_to_time(self.created_at),
        }
    }
}

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Recovery codes are compared without dashes and case.
fn normalize_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

fn totp_for(secret_base32: &str) -> Result<TOTP, AccessError> {
    let bytes = base32_decode(secret_base32).ok_or_else(|| AccessError::Corrupt("stored TOTP secret".into()))?;
    Ok(TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, bytes))
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    totp_rs::Secret::Encoded(text.to_string()).to_bytes().ok()
}

fn hash_password(password: &str) -> Result<String, AccessError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hash(e.to_string()))
}

/// Checks `password` against an argon2 hash on the blocking pool.
async fn password_matches(hash: String, password: &str) -> Result<bool, AccessError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| AccessError::Hash(e.to_string()))?
    .map_err(|e| AccessError::Corrupt(format!("stored password hash: {e}")))
}

fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Staff users, their second factor and sessions.
#[derive(Clone)]
pub struct UserStore {
    db: Database,
    roles: Roles,
    settings: UserSettings,
    clock: Arc<dyn clock::Clock>,
    /// Recent failed sign-ins per client address (this node only).
    ip_failures: Arc<Mutex<HashMap<IpAddr, VecDeque<Instant>>>>,
    /// Verified when the username is unknown, so that costs as much as a wrong password.
    dummy_hash: Arc<String>,
}

impl UserStore {
    pub fn new(db: Database, roles: Roles) -> Self {
        let dummy_hash = hash_password("not a password of anyone").unwrap_or_default();
        UserStore {
            db,
            roles,
            settings: UserSettings::default(),
            clock: Arc::new(clock::SystemClock),
            ip_failures: Default::default(),
            dummy_hash: Arc::new(dummy_hash),
        }
    }

    pub fn with_settings(mut self, settings: UserSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn settings(&self) -> UserSettings {
        self.settings
    }

    async fn find(&self, column: &str, value: impl ToString) -> Result<Option<User>, AccessError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1");
        let row: Option<UserRow> = match column {
            "id" => {
                let id = Uuid::parse_str(&value.to_string()).map_err(|_| AccessError::Invalid("bad id".into()))?;
                storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?
            }
            _ => {
                let value = value.to_string();
                storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(&value).fetch_optional(conn).await)?
            }
        };
        Ok(row.map(User::from))
    }

    async fn by_id(&self, id: Uuid) -> Result<User, AccessError> {
        self.find("id", id).await?.ok_or(AccessError::UserNotFound(id))
    }

    /// Creates a user with `role` (none = no permissions) and `password` (none = a generated
    /// one, returned once). The second factor is set up at the first sign-in.
    pub async fn create(
        &self,
        username: &str,
        display_name: Option<&str>,
        role: Option<&str>,
        password: Option<&str>,
    ) -> Result<CreatedUser, AccessError> {
        let username = username.trim().to_ascii_lowercase();
        if !valid_username(&username) {
            return Err(AccessError::Invalid("username must be 1..=64 of a-z, 0-9, '.', '_' and '-'".into()));
        }
        let role = role.map(str::trim).filter(|r| !r.is_empty());
        if let Some(role) = role {
            self.roles.check(role).await?;
        }
        let (password, generated) = match password {
            Some(p) => (p.to_string(), false),
            None => (random_password(), true),
        };
        if password.chars().count() < MIN_PASSWORD {
            return Err(AccessError::Invalid(format!("password must have at least {MIN_PASSWORD} characters")));
        }
        let hash = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|e| AccessError::Hash(e.to_string()))??
        };
        let display_name = display_name.map(str::trim).filter(|d| !d.is_empty()).unwrap_or(&username).to_string();
        if display_name.len() > 100 {
            return Err(AccessError::Invalid("display_name must be at most 100 bytes".into()));
        }
        let (id, now) = (Uuid::now_v7(), self.clock.now_micros());
        // The creating entry names the new user.
        storage::audit::set_resource(id.to_string());
        let created_by = crate::approvals::current_identity();
        let inserted = storage::write!(&self.db, |conn| {
            sqlx::query(
            "INSERT INTO users (id, username, display_name, role, password_hash, status, failed_attempts, created_at, updated_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, 'active', 0, $6, $6, $7) ON CONFLICT (username) DO NOTHING"
        )
        .bind(id)
        .bind(&username)
        .bind(&display_name)
        .bind(role)
        .bind(&hash)
        .bind(now)
        .bind(&created_by)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
        })?;
        if inserted == 0 {
            return Err(AccessError::UsernameTaken(username));
        }
        let user = self.by_id(id).await?.view();
        Ok(CreatedUser { user, initial_password: generated.then_some(password) })
    }

    /// Every user, by username.
    pub async fn list(&self) -> Result<Vec<UserView>, AccessError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> = storage::read!(&self.db, |conn| sqlx::query_as(&sql).fetch_all(conn).await)?;
        Ok(rows.into_iter().map(|r| User::from(r).view()).collect())
    }

    pub async fn get(&self, id: Uuid) -> Result<UserView, AccessError> {
        Ok(self.by_id(id).await?.view())
    }

    async fn set(&self, id: Uuid, assignments: &str) -> Result<(), AccessError> {
        let sql = format!("UPDATE users SET {assignments}, updated_at = $1 WHERE id = $2");
        let now = self.clock.now_micros();
        let changed = storage::write!(&self.db, |conn| sqlx::query(&sql)
            .bind(now)
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(AccessError::UserNotFound(id));
        }
        Ok(())
    }

    async fn end_sessions(&self, user: Uuid) -> Result<(), AccessError> {
        let now = self.clock.now_micros();
        storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL"
        )
        .bind(now)
        .bind(user)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Lifts a lockout and clears the failure count.
    pub async fn unlock(&self, id: Uuid) -> Result<UserView, AccessError> {
        self.set(id, "locked_at = NULL, failed_attempts = 0").await?;
        self.get(id).await
    }

    /// Disables (or re-enables) a user; disabling ends every session at once.
    pub async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<UserView, AccessError> {
        self.set(id, if disabled { "status = 'disabled'" } else { "status = 'active'" }).await?;
        if disabled {
            self.end_sessions(id).await?;
        }
        self.get(id).await
    }

    /// Forgets the second factor and the recovery codes and ends the user's sessions: the next
    /// sign-in enrols again.
    pub async fn reset_totp(&self, id: Uuid) -> Result<UserView, AccessError> {
        self.set(id, "totp_secret = NULL, totp_pending = NULL").await?;
        storage::write!(&self.db, |conn| sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        self.end_sessions(id).await?;
        self.get(id).await
    }

    /// Changes a user's role (empty or none = no role) and display name.
    pub async fn update(
        &self,
        id: Uuid,
        role: Option<Option<&str>>,
        display_name: Option<&str>,
    ) -> Result<UserView, AccessError> {
        let user = self.by_id(id).await?;
        let role = match role {
            Some(r) => r.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string),
            None => user.role.clone(),
        };
        if let Some(role) = &role {
            self.roles.check(role).await?;
        }
        let display_name = display_name.map(str::trim).filter(|d| !d.is_empty()).unwrap_or(&user.display_name);
        if display_name.len() > 100 {
            return Err(AccessError::Invalid("display_name must be at most 100 bytes".into()));
        }
        let now = self.clock.now_micros();
        storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE users SET role = $1, display_name = $2, updated_at = $3 WHERE id = $4"
        )
        .bind(&role)
        .bind(display_name)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        self.get(id).await
    }

    /// Changes the signed-in user's own password: `current` must be right (a wrong one counts as
    /// a failed sign-in). The user's other sessions end.
    pub async fn change_password(
        &self,
        id: Uuid,
        session: Uuid,
        current: &str,
        new: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), AccessError> {
        self.check_ip(ip)?;
        let user = self.by_id(id).await?;
        if !password_matches(user.password_hash.clone(), current).await? {
            return Err(self.fail(Some(id), ip).await);
        }
        if new.chars().count() < MIN_PASSWORD || new == current {
            return Err(AccessError::Invalid(format!(
                "the new password must have at least {MIN_PASSWORD} characters and differ from the current one"
            )));
        }
        let new = new.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&new))
            .await
            .map_err(|e| AccessError::Hash(e.to_string()))??;
        let now = self.clock.now_micros();
        // The new password and the end of the other sessions commit together.
        storage::transaction!(&self.db, |tx| async {
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(&hash)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND id <> $3 AND ended_at IS NULL")
                .bind(now)
                .bind(id)
                .bind(session)
                .execute(&mut *tx)
                .await?;
            Ok::<(), AccessError>(())
        }
        .await)?;
        tracing::info!(user_id = %id, "password changed");
        Ok(())
    }

    /// Refuses an address with too many recent failures.
    fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), AccessError> {
        let Some(ip) = ip else { return Ok(()) };
        let mut map = self.ip_failures.lock().expect("sign-in throttle lock");
        if let Some(times) = map.get_mut(&ip) {
            while times.front().is_some_and(|t| t.elapsed() > self.settings.ip_window) {
                times.pop_front();
            }
            if times.len() >= self.settings.ip_max_failures as usize {
                return Err(AccessError::TooManyAttempts);
            }
        }
        Ok(())
    }

    fn note_ip_failure(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            let mut map = self.ip_failures.lock().expect("sign-in throttle lock");
            if map.len() > 100_000 {
                map.clear(); // bounded memory under a spray from many addresses
            }
            map.entry(ip).or_default().push_back(Instant::now());
        }
    }

    /// Counts a failure against the user (locking it at the limit) and the address.
    async fn fail(&self, user: Option<Uuid>, ip: Option<IpAddr>) -> AccessError {
        self.note_ip_failure(ip);
        if let Some(id) = user {
            let now = self.clock.now_micros();
            let max = i64::from(self.settings.max_failures.max(1));
            // Bookkeeping of a refusal: the refusal itself is the audit entry (`sign_in_failed`).
            let result = storage::audit::unaudited(async {
                storage::write!(&self.db, |conn| sqlx::query(
                    "UPDATE users SET failed_attempts = failed_attempts + 1, \
                     locked_at = CASE WHEN failed_attempts + 1 >= $1 THEN $2 ELSE locked_at END WHERE id = $3"
                )
                .bind(max)
                .bind(now)
                .bind(id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))
            })
            .await;
            if let Err(e) = result {
                return e.into();
            }
            tracing::info!(user_id = %id, "failed sign-in");
        }
        AccessError::InvalidCredentials
    }

    /// Signs a user in. See the module documentation for the enrolment flow.
    pub async fn sign_in(&self, c: Credentials<'_>, ip: Option<IpAddr>) -> Result<SignIn, AccessError> {
        self.check_ip(ip)?;
        let username = c.username.trim().to_ascii_lowercase();
        let user = if valid_username(&username) { self.find("username", &username).await? } else { None };
        let Some(user) = user else {
            let _ = password_matches(self.dummy_hash.to_string(), c.password).await;
            return Err(self.fail(None, ip).await);
        };
        if user.locked_at.is_some() {
            return Err(AccessError::UserLocked);
        }
        let password_ok = password_matches(user.password_hash.clone(), c.password).await?;
        if !password_ok || user.status != "active" {
            return Err(self.fail(Some(user.id), ip).await);
        }
        // From here the sign-in's audit entries (an anonymous request) name the user.
        storage::audit::set_resource(user.id.to_string());
        let totp = c.totp.map(str::trim).filter(|t| !t.is_empty());
        let now_secs = u64::try_from(self.clock.now_micros() / 1_000_000).unwrap_or_default();
        match &user.totp_secret {
            None => {
                // Enrolment: a code confirms the pending secret; no code starts (again).
                match (totp, &user.totp_pending) {
                    (Some(code), Some(pending)) if totp_for(pending)?.check(code, now_secs) => {
                        self.set(user.id, "totp_secret = totp_pending, totp_pending = NULL").await?;
                        tracing::info!(user_id = %user.id, "second factor enrolled");
                    }
                    (Some(_), _) => return Err(self.fail(Some(user.id), ip).await),
                    (None, _) => return Ok(SignIn::EnrolmentRequired(self.start_enrolment(&user).await?)),
                }
            }
            Some(secret) => {
                let ok = if let Some(code) = totp {
                    totp_for(secret)?.check(code, now_secs)
                } else if let Some(code) = c.recovery_code.map(normalize_code).filter(|c| !c.is_empty()) {
                    self.use_recovery_code(user.id, &code).await?
                } else {
                    false
                };
                if !ok {
                    return Err(self.fail(Some(user.id), ip).await);
                }
            }
        }
        self.set(user.id, "failed_attempts = 0").await?;
        let session = self.open_session(&user, ip).await?;
        tracing::info!(user_id = %user.id, session_id = %session.session_id, "signed in");
        Ok(SignIn::Session(session))
    }

    async fn use_recovery_code(&self, user: Uuid, code: &str) -> Result<bool, AccessError> {
        let now = self.clock.now_micros();
        let used = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL"
        )
        .bind(now)
        .bind(user)
        .bind(sha256_hex(code))
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if used == 1 {
            tracing::info!(user_id = %user, "recovery code used");
        }
        Ok(used == 1)
    }

    /// A new pending secret and new recovery codes (replacing earlier ones).
    async fn start_enrolment(&self, user: &User) -> Result<Enrolment, AccessError> {
        let mut secret = [0u8; 20];
        rand::thread_rng().fill_bytes(&mut secret);
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, secret.to_vec());
        let secret = totp.get_secret_base32();
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let mut bytes = [0u8; 10];
                rand::thread_rng().fill_bytes(&mut bytes);
                let h = hex::encode(bytes);
                format!("{}-{}-{}-{}", &h[0..5], &h[5..10], &h[10..15], &h[15..20])
            })
            .collect();
        let hashes: Vec<String> = codes.iter().map(|c| sha256_hex(&normalize_code(c))).collect();
        let (id, now) = (user.id, self.clock.now_micros());
        storage::transaction!(&self.db, |tx| async {
            sqlx::query("UPDATE users SET totp_pending = $1, failed_attempts = 0, updated_at = $2 WHERE id = $3")
                .bind(&secret)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            for hash in &hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(id)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok::<_, AccessError>(())
        }
        .await)?;
        let otpauth_uri = format!(
            "otpauth://totp/{TOTP_ISSUER}:{user}?secret={secret}&issuer={TOTP_ISSUER}&algorithm=SHA1&digits=6&period=30",
            user = user.username
        );
        tracing::info!(user_id = %user.id, "second factor enrolment started");
        Ok(Enrolment { secret, otpauth_uri, recovery_codes: codes })
    }

    async fn open_session(&self, user: &User, ip: Option<IpAddr>) -> Result<NewSession, AccessError> {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let token = format!("dbs_{}", hex::encode(secret));
        let (id, now) = (Uuid::now_v7(), self.clock.now_micros());
        let max = i64::try_from(self.settings.session_max.as_micros()).unwrap_or(i64::MAX);
        let expires = now.saturating_add(max);
        storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at, ip) \
             VALUES ($1, $2, $3, $4, $4, $5, $6)"
        )
        .bind(id)
        .bind(user.id)
        .bind(sha256_hex(&token))
        .bind(now)
        .bind(expires)
        .bind(ip.map(|ip| ip.to_string()))
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(NewSession {
            session_id: id,
            token,
            expires_at: micros_to_time(expires),
            idle_timeout_secs: self.settings.session_idle.as_secs(),
            user: self.get(user.id).await?,
        })
    }

    /// The signed-in user a session token belongs to. [`AccessError::SessionExpired`] for a
    /// session that ended (signed out, idle, too old, user disabled).
    pub async fn authenticate(&self, token: &str) -> Result<Caller, AccessError> {
        type Row = (Uuid, Uuid, i64, i64, Option<i64>, String, Option<String>, String);
        let row: Option<Row> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT s.id, s.user_id, s.last_seen_at, s.expires_at, s.ended_at, u.display_name, u.role, u.status \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
        )
        .bind(sha256_hex(token))
        .fetch_optional(conn)
        .await)?;
        let Some((session, user, last_seen, expires, ended, name, role, status)) = row else {
            return Err(AccessError::InvalidKey);
        };
        let now = self.clock.now_micros();
        let idle = i64::try_from(self.settings.session_idle.as_micros()).unwrap_or(i64::MAX);
        if ended.is_some() || status != "active" {
            return Err(AccessError::SessionExpired);
        }
        if now >= expires || now.saturating_sub(last_seen) > idle {
            storage::write!(&self.db, |conn| sqlx::query(
                "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL"
            )
            .bind(now)
            .bind(session)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
            return Err(AccessError::SessionExpired);
        }
        // `last_seen_at` moves in steps of a tenth of the idle timeout (at most a minute).
        if now - last_seen > (idle / 10).min(60_000_000) {
            storage::write!(&self.db, |conn| sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now)
                .bind(session)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))?;
        }
        let role = role.unwrap_or_default();
        let permissions = self.roles.permissions(&role).await?;
        Ok(Caller {
            kind: CallerKind::User,
            key_id: user,
            name,
            role: RoleName(role),
            permissions,
            session_id: Some(session),
        })
    }

    /// Ends one session (sign-out).
    pub async fn end_session(&self, session: Uuid) -> Result<(), AccessError> {
        let now = self.clock.now_micros();
        storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL"
        )
        .bind(now)
        .bind(session)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A user's live sessions, newest first; `current` marks `current`.
    pub async fn sessions(&self, user: Uuid, current: Option<Uuid>) -> Result<Vec<SessionView>, AccessError> {
        let now = self.clock.now_micros();
        let idle = i64::try_from(self.settings.session_idle.as_micros()).unwrap_or(i64::MAX);
        let rows: Vec<(Uuid, i64, i64, i64, Option<String>)> = storage::read!(&self.db, |conn| {
            sqlx::query_as(
            "SELECT id, created_at, last_seen_at, expires_at, ip FROM sessions \
             WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at >= $3 ORDER BY created_at DESC"
        )
        .bind(user)
        .bind(now)
        .bind(now.saturating_sub(idle))
        .fetch_all(conn)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, created, seen, expires, ip)| SessionView {
                id,
                created_at: micros_to_time(created),
                last_seen_at: micros_to_time(seen),
                expires_at: micros_to_time(expires),
                ip,
                current: Some(id) == current,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_compare_without_dashes_and_case() {
        assert_eq!(normalize_code("AB12c-3d4e5 "), "ab12c3d4e5");
        assert!(valid_username("li.wei_2") && !valid_username("Li Wei") && !valid_username(""));
    }

    #[tokio::test]
    async fn sign_in_enrols_totp_then_needs_it_and_locks_after_failures() {
        for test_db in storage::testing::all().await {
            let db = test_db.db.clone();
            let roles = Roles::new(db.clone());
            roles.ensure_builtin().await.unwrap();
            let users = UserStore::new(db.clone(), roles)
                .with_settings(UserSettings { max_failures: 3, ..UserSettings::default() });
            let created = users.create("wang", None, Some("teller"), Some("correct horse battery")).await.unwrap();
            assert!(created.initial_password.is_none());
            let creds = |password, totp| Credentials { username: "wang", password, totp, recovery_code: None };
            let SignIn::EnrolmentRequired(e) = users.sign_in(creds("correct horse battery", None), None).await.unwrap()
            else {
                panic!("first sign-in enrols")
            };
            let code = totp_for(&e.secret).unwrap().generate(Utc::now().timestamp() as u64);
            let SignIn::Session(s) = users.sign_in(creds("correct horse battery", Some(&code)), None).await.unwrap()
            else {
                panic!("a code confirms enrolment")
            };
            let caller = users.authenticate(&s.token).await.unwrap();
            assert!(caller.allows(crate::Permission::TransfersWrite));
            assert_eq!(caller.role, crate::Role::Teller);
            for _ in 0..3 {
                let e = users.sign_in(creds("wrong password!", Some(&code)), None).await.unwrap_err();
                assert!(matches!(e, AccessError::InvalidCredentials));
            }
            let locked = users.sign_in(creds("correct horse battery", Some(&code)), None).await.unwrap_err();
            assert!(matches!(locked, AccessError::UserLocked), "{locked}");
            users.unlock(created.user.id).await.unwrap();
            users.end_session(s.session_id).await.unwrap();
            assert!(matches!(users.authenticate(&s.token).await, Err(AccessError::SessionExpired)));
        }
    }
}
