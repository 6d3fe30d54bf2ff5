//! Maker-checker ("four eyes"): sensitive requests wait for a second identity.
//!
//! The HTTP guard turns an authorised request to a sensitive route into a pending [`Approval`]
//! (what: method, path and JSON body; who: the maker; why: the reason given) instead of running
//! it. A checker then approves or rejects it. The rules kept here:
//!
//! * only a pending approval is decided, once: the transition `pending -> approved | rejected`
//!   is one conditional `UPDATE`, so two checkers racing cannot both run the operation;
//! * a pending approval past its `expires_at` is expired: it shows as `expired` at once and is
//!   stored as such when someone tries to decide it;
//! * the checker is another identity than the maker ([`Approvals::same_person`]): not the same
//!   key or user, and not a key or user the maker made (nor one that made the maker), as
//!   `created_by` records (migration 0015);
//! * every change commits with its audit entry (`storage::write!` inside the request's scope).
//!
//! The checker's permission and the replay of the stored request are the server's business.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use storage::Database;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Caller, CallerKind, Permission};

/// Why an approval could not be requested, read or decided.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no approval {0}")]
    NotFound(String),
    #[error("the maker of a request cannot approve it: a different person must")]
    SamePerson,
    #[error("approval {0} has expired; make the request again")]
    Expired(String),
    #[error("approval {id} is {status} already")]
    AlreadyDecided { id: String, status: &'static str },
    #[error("stored approval data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The state of an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a checker (until `expires_at`).
    Pending,
    /// A checker approved it and the request ran (its answer is in `result`).
    Approved,
    Rejected,
    /// Nobody decided it in time.
    Expired,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 4] =
        [ApprovalStatus::Pending, ApprovalStatus::Approved, ApprovalStatus::Rejected, ApprovalStatus::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        ApprovalStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// An identity as approvals name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Identity {
    /// `key` or `user`.
    pub kind: String,
    pub id: String,
}

impl Identity {
    pub fn of(caller: &Caller) -> Identity {
        Identity { kind: caller.kind.as_str().to_string(), id: caller.key_id.to_string() }
    }

    /// `kind:id`, the form of `created_by`.
    pub fn tag(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

/// The maker as the approval stores it (enough to run the request on their behalf).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Maker {
    pub kind: String,
    pub id: String,
    /// The key's name or the user's display name.
    pub name: String,
    /// The maker's role when the request was made.
    pub role: String,
}

/// What the operation answered when the approved request ran.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalResult {
    /// Its HTTP status.
    pub status: u16,
    /// Its JSON body. Stored with secrets (`key`, `token`, passwords, TOTP secrets, recovery
    /// codes) blanked: only the approving answer shows them, once.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// A request that waits for (or had) a second person's decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Approval {
    pub id: String,
    pub method: String,
    /// The request path (with its query string).
    pub path: String,
    /// The route template, e.g. `/v1/risk/rule-sets/{version}/activate`.
    pub route: String,
    /// The request body (JSON), if any.
    #[schema(value_type = Option<Object>)]
    pub body: Option<serde_json::Value>,
    /// The permission the operation needs: the checker must hold it too.
    pub permission: Permission,
    pub maker: Maker,
    /// Why the maker asks (`X-Approval-Reason`).
    pub reason: Option<String>,
    pub status: ApprovalStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub checker: Option<Identity>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The checker's note (rejections).
    pub note: Option<String>,
    pub result: Option<ApprovalResult>,
}

/// What the guard stores for a held request.
pub struct NewApproval<'a> {
    pub id: Uuid,
    pub method: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub body: Option<&'a serde_json::Value>,
    pub permission: Permission,
    pub maker: &'a Caller,
    pub reason: Option<&'a str>,
}

/// Whether four eyes are required and how long a request waits for them.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalSettings {
    /// Off: sensitive requests run at once (a single-person demo, tests of other features).
    pub enabled: bool,
    /// A pending approval expires this long after it was requested (default 24 hours).
    pub expiry: Duration,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings { enabled: true, expiry: Duration::from_secs(24 * 3600) }
    }
}

/// The identity of the current audit scope as `kind:id` (what `created_by` records), when it
/// is a key or a user.
pub fn current_identity() -> Option<String> {
    storage::audit::current()
        .filter(|c| c.actor_kind == CallerKind::Key.as_str() || c.actor_kind == CallerKind::User.as_str())
        .map(|c| format!("{}:{}", c.actor_kind, c.actor))
}

#[derive(sqlx::FromRow)]
struct ApprovalRow {
    id: String,
    method: String,
    path: String,
    route: String,
    body: Option<String>,
    permission: String,
    maker_kind: String,
    maker_id: String,
    maker_name: String,
    maker_role: String,
    reason: Option<String>,
    status: String,
    created_at: i64,
    expires_at: i64,
    checker_kind: Option<String>,
    checker_id: Option<String>,
    decided_at: Option<i64>,
    note: Option<String>,
    result_status: Option<i64>,
    result_body: Option<String>,
}

const COLUMNS: &str = "id, method, path, route, body, permission, maker_kind, maker_id, maker_name, maker_role, \
    reason, status, created_at, expires_at, checker_kind, checker_id, decided_at, note, result_status, result_body";

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn json(text: Option<String>) -> Result<Option<serde_json::Value>, ApprovalError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| ApprovalError::Corrupt(e.to_string()))).transpose()
}

/// Fields of an operation's answer that are never stored.
const SECRET_FIELDS: [&str; 7] =
    ["key", "token", "password", "initial_password", "secret", "otpauth_uri", "recovery_codes"];

/// The answer with secret fields (at any depth) replaced by `"[shown once]"`.
pub fn without_secrets(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = if SECRET_FIELDS.contains(&k.as_str()) && !v.is_null() {
                    serde_json::Value::String("[shown once]".into())
                } else {
                    without_secrets(v)
                };
                (k.clone(), v)
            })
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(without_secrets).collect(),
        other => other.clone(),
    }
}

/// The approvals table.
#[derive(Clone)]
pub struct Approvals {
    db: Database,
    clock: Arc<dyn clock::Clock>,
    settings: ApprovalSettings,
}

impl Approvals {
    pub fn new(db: Database, clock: Arc<dyn clock::Clock>, settings: ApprovalSettings) -> Self {
        Approvals { db, clock, settings }
    }

    pub fn settings(&self) -> ApprovalSettings {
        self.settings
    }

    /// Whether sensitive requests wait for a second person.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    fn view(&self, r: ApprovalRow) -> Result<Approval, ApprovalError> {
        let now = self.clock.now_micros();
        let stored =
            ApprovalStatus::parse(&r.status).ok_or_else(|| ApprovalError::Corrupt(format!("status {:?}", r.status)))?;
        let status =
            if stored == ApprovalStatus::Pending && r.expires_at <= now { ApprovalStatus::Expired } else { stored };
        let permission = Permission::parse(&r.permission)
            .ok_or_else(|| ApprovalError::Corrupt(format!("permission {:?}", r.permission)))?;
        let result = match (r.result_status, json(r.result_body)?) {
            (Some(status), body) => Some(ApprovalResult {
                status: u16::try_from(status).unwrap_or_default(),
                body: body.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Approval {
            id: r.id,
            method: r.method,
            path: r.path,
            route: r.route,
            body: json(r.body)?,
            permission,
            maker: Maker { kind: r.maker_kind, id: r.maker_id, name: r.maker_name, role: r.maker_role },
            reason: r.reason,
            status,
            created_at: time(r.created_at),
            expires_at: time(r.expires_at),
            checker: r.checker_kind.zip(r.checker_id).map(|(kind, id)| Identity { kind, id }),
            decided_at: r.decided_at.map(time),
            note: r.note,
            result,
        })
    }

    /// Stores a held request as pending (with its audit entry, inside the request's scope).
    pub async fn request(&self, new: NewApproval<'_>) -> Result<Approval, ApprovalError> {
        let now = self.clock.now_micros();
        let expires = now.saturating_add(i64::try_from(self.settings.expiry.as_micros()).unwrap_or(i64::MAX));
        let id = new.id.to_string();
        let body = new.body.map(serde_json::Value::to_string);
        let maker = Identity::of(new.maker);
        storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO approvals (id, method, path, route, body, permission, maker_kind, maker_id, maker_name, \
             maker_role, reason, status, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13)"
        )
        .bind(&id)
        .bind(new.method)
        .bind(new.path)
        .bind(new.route)
        .bind(&body)
        .bind(new.permission.as_str())
        .bind(&maker.kind)
        .bind(&maker.id)
        .bind(&new.maker.name)
        .bind(new.maker.role.as_str())
        .bind(new.reason)
        .bind(now)
        .bind(expires)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        self.get(&id).await
    }

    /// One approval.
    pub async fn get(&self, id: &str) -> Result<Approval, ApprovalError> {
        let row: Option<ApprovalRow> =
            storage::read!(&self.db, |conn| sqlx::query_as(&format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"))
                .bind(id)
                .fetch_optional(conn)
                .await)?;
        self.view(row.ok_or_else(|| ApprovalError::NotFound(id.to_string()))?)
    }

    /// Approvals newest first, `limit` at a time after `before` (an id), optionally of one
    /// status (a pending approval past its expiry counts as expired).
    pub async fn list(
        &self,
        status: Option<ApprovalStatus>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Approval>, ApprovalError> {
        let now = self.clock.now_micros();
        // Every variant uses `$1` (now), so the binds stay the same.
        let filter = match status {
            None => "$1 = $1",
            Some(ApprovalStatus::Pending) => "status = 'pending' AND expires_at > $1",
            Some(ApprovalStatus::Expired) => "(status = 'expired' OR (status = 'pending' AND expires_at <= $1))",
            Some(ApprovalStatus::Approved) => "status = 'approved' AND $1 = $1",
            Some(ApprovalStatus::Rejected) => "status = 'rejected' AND $1 = $1",
        };
        let rows: Vec<ApprovalRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE {filter} AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(now)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(|r| self.view(r)).collect()
    }

    /// The approval, if it can still be decided: pending (else [`ApprovalError::AlreadyDecided`])
    /// and not expired (else it is stored as expired, with its entry, and
    /// [`ApprovalError::Expired`]).
    pub async fn decidable(&self, id: &str) -> Result<Approval, ApprovalError> {
        let approval = self.get(id).await?;
        match approval.status {
            ApprovalStatus::Pending => Ok(approval),
            ApprovalStatus::Expired => {
                let now = self.clock.now_micros();
                storage::write!(&self.db, |conn| sqlx::query(
                    "UPDATE approvals SET status = 'expired', decided_at = $1 WHERE id = $2 AND status = 'pending'"
                )
                .bind(now)
                .bind(id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))?;
                Err(ApprovalError::Expired(approval.id))
            }
            decided => Err(ApprovalError::AlreadyDecided { id: approval.id, status: decided.as_str() }),
        }
    }

    /// Whether `checker` is the maker of `approval` in another guise: the same key or user, or
    /// a key or user one of them made for the other.
    pub async fn same_person(&self, approval: &Approval, checker: &Caller) -> Result<bool, ApprovalError> {
        let (maker, checker_id) =
            (Identity { kind: approval.maker.kind.clone(), id: approval.maker.id.clone() }, Identity::of(checker));
        if maker == checker_id {
            return Ok(true);
        }
        Ok(self.created_by(&checker_id).await?.as_deref() == Some(maker.tag().as_str())
            || self.created_by(&maker).await?.as_deref() == Some(checker_id.tag().as_str()))
    }

    async fn created_by(&self, identity: &Identity) -> Result<Option<String>, ApprovalError> {
        let Ok(id) = Uuid::parse_str(&identity.id) else { return Ok(None) };
        let sql = match identity.kind.as_str() {
            "key" => "SELECT created_by FROM api_keys WHERE id = $1",
            "user" => "SELECT created_by FROM users WHERE id = $1",
            _ => return Ok(None),
        };
        let row: Option<(Option<String>,)> =
            storage::read!(&self.db, |conn| sqlx::query_as(sql).bind(id).fetch_optional(conn).await)?;
        Ok(row.and_then(|r| r.0))
    }

    /// Marks a decidable approval approved by `checker` (one conditional update: a concurrent
    /// decision or the expiry makes it fail with the matching error).
    pub async fn approve(&self, id: &str, checker: &Caller) -> Result<Approval, ApprovalError> {
        self.decide(id, checker, ApprovalStatus::Approved, None).await
    }

    /// Marks a decidable approval rejected by `checker`, with a note.
    pub async fn reject(&self, id: &str, checker: &Caller, note: Option<&str>) -> Result<Approval, ApprovalError> {
        self.decide(id, checker, ApprovalStatus::Rejected, note).await
    }

    async fn decide(
        &self,
        id: &str,
        checker: &Caller,
        status: ApprovalStatus,
        note: Option<&str>,
    ) -> Result<Approval, ApprovalError> {
        let now = self.clock.now_micros();
        let who = Identity::of(checker);
        let changed = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE approvals SET status = $1, checker_kind = $2, checker_id = $3, decided_at = $4, note = $5 \
             WHERE id = $6 AND status = 'pending' AND expires_at > $4"
        )
        .bind(status.as_str())
        .bind(&who.kind)
        .bind(&who.id)
        .bind(now)
        .bind(note)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            // Decided or expired meanwhile: say which.
            self.decidable(id).await?;
        }
        self.get(id).await
    }

    /// Stores what the approved request answered (secrets blanked).
    pub async fn record_result(
        &self,
        id: &str,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<Approval, ApprovalError> {
        let stored = without_secrets(body).to_string();
        storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE approvals SET result_status = $1, result_body = $2 WHERE id = $3"
        )
        .bind(i64::from(status))
        .bind(&stored)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        self.get(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_secrets_are_blanked() {
        for s in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        let answer = serde_json::json!({"id": "k", "key": "dbk_secret", "nested": [{"token": "dbs_x", "name": "n"}]});
        let stored = without_secrets(&answer);
        assert_eq!(stored["key"], "[shown once]");
        assert_eq!(stored["nested"][0]["token"], "[shown once]");
        assert_eq!(stored["nested"][0]["name"], "n");
        assert_eq!(stored["id"], "k");
    }
}
