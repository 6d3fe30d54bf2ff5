//! Security alerts: detectors over the audit trail, stored alerts with their evidence, a person's
//! acknowledgement, and delivery to a webhook with retries.
//!
//! Each detector is one aggregate query over a sliding window of `audit_log` (indexed on `at`),
//! run every [`AlertSettings::tick`] (15 s by default, so a pattern is alerted well within the
//! five minutes the bank asks for). An alert has a dedupe key (rule, subject and the window it
//! fell in), so several nodes running the detectors, or a pattern that goes on, raise it once per
//! window. Evidence holds counts, ids and times, never personal data: the trail has none.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, FixedOffset, TimeZone, Timelike, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use storage::{Arg, Database, Statement};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::AuditError;

/// What the detectors look for. Defaults suit a mid-sized bank; every one is configurable.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// One actor reading more than this many customers' (or loans', decisions') personal data...
    pub bulk_read_threshold: i64,
    /// ...within this window.
    pub bulk_read_window: Duration,
    /// More than this many failed authentications from one address (or for one user)...
    pub failed_auth_threshold: i64,
    /// ...within this window.
    pub failed_auth_window: Duration,
    /// Working hours in the bank's time zone, `[start, end)` hours, Monday to Friday; admin
    /// changes outside them are alerted.
    pub working_hours: (u32, u32),
    /// The bank's offset from UTC in hours (China Standard Time: 8).
    pub utc_offset_hours: i32,
    /// How often the detectors run.
    pub tick: Duration,
    /// Where alerts are POSTed (JSON), if anywhere.
    pub webhook_url: Option<String>,
    /// When set, each delivery carries `X-Digibank-Signature: sha256=<HMAC-SHA-256 of the body>`.
    pub webhook_secret: Option<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            bulk_read_threshold: 100,
            bulk_read_window: Duration::from_secs(600),
            failed_auth_threshold: 20,
            failed_auth_window: Duration::from_secs(300),
            working_hours: (8, 20),
            utc_offset_hours: 8,
            tick: Duration::from_secs(15),
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

/// A stored alert.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct SecurityAlert {
    pub id: String,
    /// `bulk_personal_data_read`, `failed_auth_burst`, `admin_off_hours`, `admin_new_ip`,
    /// `closed_customer_read`, `key_of_disabled_owner`.
    pub rule: String,
    /// The actor (key or user id) or client address the alert is about.
    pub subject: String,
    /// `high` or `medium`.
    pub severity: String,
    /// What happened, in words.
    pub summary: String,
    /// The evidence as JSON: counts, window, the audit entry ids involved.
    pub evidence: String,
    /// Micros since the epoch.
    pub raised_at: i64,
    /// When the pattern began (the first entry involved), micros.
    pub first_seen_at: i64,
    /// `open` or `acknowledged`.
    pub status: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub note: Option<String>,
    /// `none` (no webhook), `pending`, `delivered` or `failed` (gave up after 10 attempts).
    pub webhook_status: String,
    pub webhook_attempts: i64,
}

const ALERT_COLUMNS: &str = "id, rule, subject, severity, summary, evidence, raised_at, first_seen_at, status, \
    acknowledged_by, acknowledged_at, note, webhook_status, webhook_attempts";

/// Webhook attempts before an alert's delivery is marked `failed`.
const MAX_WEBHOOK_ATTEMPTS: i64 = 10;

struct Candidate {
    rule: &'static str,
    subject: String,
    window_key: String,
    severity: &'static str,
    summary: String,
    evidence: serde_json::Value,
    first_seen_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("no security alert {0}")]
    NotFound(String),
    #[error("security alert {0} is already acknowledged")]
    AlreadyAcknowledged(String),
}

impl From<storage::UnitOfWorkError> for AlertError {
    fn from(e: storage::UnitOfWorkError) -> Self {
        AlertError::Audit(e.into())
    }
}

/// The detectors, the alert store and the webhook sender.
#[derive(Clone)]
pub struct SecurityAlerts {
    db: Database,
    clock: Arc<dyn clock::Clock>,
    settings: Arc<AlertSettings>,
}

fn micros(d: Duration) -> i64 {
    d.as_micros() as i64
}

impl SecurityAlerts {
    pub fn new(db: Database, clock: Arc<dyn clock::Clock>, settings: AlertSettings) -> Self {
        SecurityAlerts { db, clock, settings: Arc::new(settings) }
    }

    pub fn settings(&self) -> &AlertSettings {
        &self.settings
    }

    /// Runs every detector once over the windows ending now; returns the alerts newly raised.
    pub async fn detect(&self) -> Result<Vec<SecurityAlert>, AlertError> {
        let now = self.clock.now_micros();
        let mut candidates = Vec::new();
        candidates.extend(self.bulk_reads(now).await?);
        candidates.extend(self.failed_auth(now).await?);
        candidates.extend(self.admin_off_hours(now).await?);
        candidates.extend(self.admin_new_ip(now).await?);
        candidates.extend(self.closed_customer_reads(now).await?);
        candidates.extend(self.keys_of_disabled_owners(now).await?);
        let mut raised = Vec::new();
        for c in candidates {
            if let Some(alert) = self.raise(c, now).await? {
                tracing::warn!(alert = %alert.id, rule = %alert.rule, subject = %alert.subject, "security alert");
                raised.push(alert);
            }
        }
        Ok(raised)
    }

    async fn bulk_reads(&self, now: i64) -> Result<Vec<Candidate>, AlertError> {
        let window = micros(self.settings.bulk_read_window);
        // Reads of one object (the resource is its id; list pages name the route, `/...`).
        let rows: Vec<(String, i64, i64, i64)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT actor, COUNT(DISTINCT resource), MIN(at), MAX(id) FROM audit_log \
             WHERE outcome = 'read' AND at >= $1 AND resource NOT LIKE '/%' \
             GROUP BY actor HAVING COUNT(DISTINCT resource) > $2"
        )
        .bind(now - window)
        .bind(self.settings.bulk_read_threshold)
        .fetch_all(conn)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(actor, objects, first, last_entry)| Candidate {
                rule: "bulk_personal_data_read",
                window_key: format!("{}", now / window.max(1)),
                severity: "high",
                summary: format!(
                    "{actor} read the personal data of {objects} records within {} minutes (threshold {})",
                    window / 60_000_000,
                    self.settings.bulk_read_threshold
                ),
                evidence: serde_json::json!({
                    "records_read": objects, "window_minutes": window / 60_000_000,
                    "threshold": self.settings.bulk_read_threshold, "last_entry_id": last_entry,
                }),
                subject: actor,
                first_seen_at: first,
            })
            .collect())
    }

    async fn failed_auth(&self, now: i64) -> Result<Vec<Candidate>, AlertError> {
        let window = micros(self.settings.failed_auth_window);
        let rows: Vec<(String, i64, i64, i64)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT COALESCE(ip, actor), COUNT(*), MIN(at), MAX(id) FROM audit_log \
             WHERE outcome IN ('unauthenticated', 'sign_in_failed') AND at >= $1 \
             GROUP BY COALESCE(ip, actor) HAVING COUNT(*) > $2"
        )
        .bind(now - window)
        .bind(self.settings.failed_auth_threshold)
        .fetch_all(conn)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(source, failures, first, last_entry)| Candidate {
                rule: "failed_auth_burst",
                window_key: format!("{}", now / window.max(1)),
                severity: "high",
                summary: format!(
                    "{failures} failed authentications from {source} within {} minutes (threshold {})",
                    window / 60_000_000,
                    self.settings.failed_auth_threshold
                ),
                evidence: serde_json::json!({
                    "failures": failures, "window_minutes": window / 60_000_000, "last_entry_id": last_entry,
                }),
                subject: source,
                first_seen_at: first,
            })
            .collect())
    }

    /// Whether `at` (micros) falls outside working hours in the bank's time zone.
    pub fn off_hours(&self, at: i64) -> bool {
        off_hours(&self.settings, at)
    }

    /// Recent admin entries (changes only) with their time, actor and address.
    async fn recent_admin_changes(&self, now: i64) -> Result<Vec<(i64, i64, String, Option<String>)>, AlertError> {
        let since = now - micros(self.settings.tick) * 4 - 60_000_000;
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT id, at, actor, ip FROM audit_log WHERE role = 'admin' AND outcome = 'committed' \
             AND actor_kind <> 'system' AND at >= $1 ORDER BY id LIMIT 10000"
        )
        .bind(since)
        .fetch_all(conn)
        .await)?)
    }

    async fn admin_off_hours(&self, now: i64) -> Result<Vec<Candidate>, AlertError> {
        let offset = self.settings.utc_offset_hours;
        let mut out: Vec<Candidate> = Vec::new();
        for (id, at, actor, _) in self.recent_admin_changes(now).await? {
            if !self.off_hours(at) {
                continue;
            }
            // One alert per admin per local day.
            let day = (at + i64::from(offset) * 3_600_000_000) / 86_400_000_000;
            if out.iter().any(|c| c.subject == actor) {
                continue;
            }
            out.push(Candidate {
                rule: "admin_off_hours",
                window_key: day.to_string(),
                severity: "medium",
                summary: format!(
                    "admin {actor} made changes outside working hours ({:02}:00-{:02}:00 UTC{offset:+}, Monday to Friday)",
                    self.settings.working_hours.0, self.settings.working_hours.1
                ),
                evidence: serde_json::json!({ "first_entry_id": id }),
                subject: actor,
                first_seen_at: at,
            });
        }
        Ok(out)
    }

    async fn admin_new_ip(&self, now: i64) -> Result<Vec<Candidate>, AlertError> {
        let mut out: Vec<Candidate> = Vec::new();
        for (id, at, actor, ip) in self.recent_admin_changes(now).await? {
            let Some(ip) = ip else { continue };
            if out.iter().any(|c| c.subject == actor && c.window_key == ip) {
                continue;
            }
            // Known actor (some earlier entry), never from this address before this entry.
            let (earlier, from_here): (i64, i64) = storage::read!(&self.db, |conn| sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN ip = $2 THEN 1 ELSE 0 END), 0) FROM \
                 (SELECT ip FROM audit_log WHERE actor = $1 AND id < $3 ORDER BY id DESC LIMIT 10000) recent"
            )
            .bind(&actor)
            .bind(&ip)
            .bind(id)
            .fetch_one(conn)
            .await)?;
            if earlier > 0 && from_here == 0 {
                out.push(Candidate {
                    rule: "admin_new_ip",
                    severity: "high",
                    summary: format!("admin {actor} made a change from {ip}, an address never seen for them"),
                    evidence: serde_json::json!({ "entry_id": id, "ip": ip, "earlier_entries": earlier }),
                    window_key: ip,
                    subject: actor,
                    first_seen_at: at,
                });
            }
        }
        Ok(out)
    }

    async fn closed_customer_reads(&self, now: i64) -> Result<Vec<Candidate>, AlertError> {
        let since = now - micros(self.settings.tick) * 4 - 60_000_000;
        // The one detector that looks beyond the trail: which customers are closed.
        let rows: Vec<(String, String, i64, i64)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT a.actor, a.resource, MIN(a.at), MIN(a.id) FROM audit_log a \
             JOIN customers c ON c.id = a.resource AND c.status = 'closed' \
             WHERE a.outcome = 'read' AND a.at >= $1 GROUP BY a.actor, a.resource LIMIT 1000"
        )
        .bind(since)
        .fetch_all(conn)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(actor, customer, at, id)| Candidate {
                rule: "closed_customer_read",
                severity: "medium",
                summary: format!("{actor} read the closed customer {customer}"),
                evidence: serde_json::json!({ "customer": customer, "entry_id": id }),
                window_key: customer,
                subject: actor,
                first_seen_at: at,
            })
            .collect())
    }

    /// A key used after the person who issued it was disabled. The trail knows the owner (the
    /// issuing entry names the key) and the disabling (its entry names the user; a later enable
    /// clears it); a use is any entry of the key after that (changes, reads of personal data,
    /// refusals) or a `last_used_at` after it (other reads, written at most once a minute).
    async fn keys_of_disabled_owners(&self, _now: i64) -> Result<Vec<Candidate>, AlertError> {
        let owned: Vec<(String, String, i64)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT issued.resource, issued.actor, MAX(off.at) FROM audit_log issued \
             JOIN audit_log off ON off.resource = issued.actor AND off.action = 'POST /v1/users/{id}/disable' \
                  AND off.outcome = 'committed' \
             WHERE issued.action = 'POST /v1/api-keys' AND issued.outcome = 'committed' \
               AND issued.actor_kind = 'user' \
               AND NOT EXISTS (SELECT 1 FROM audit_log back WHERE back.resource = issued.actor \
                  AND back.action = 'POST /v1/users/{id}/enable' AND back.outcome = 'committed' \
                  AND back.at > off.at) \
             GROUP BY issued.resource, issued.actor LIMIT 1000"
        )
        .fetch_all(conn)
        .await)?;
        let mut candidates = Vec::new();
        for (key, owner, disabled_at) in owned {
            let Ok(key_id) = Uuid::parse_str(&key) else { continue };
            let (uses, first, last_entry): (i64, Option<i64>, Option<i64>) =
                storage::read!(&self.db, |conn| sqlx::query_as(
                    "SELECT COUNT(*), MIN(at), MAX(id) FROM audit_log WHERE actor = $1 AND at > $2"
                )
                .bind(&key)
                .bind(disabled_at)
                .fetch_one(conn)
                .await)?;
            let last_used: Option<Option<i64>> =
                storage::read!(&self.db, |conn| sqlx::query_scalar("SELECT last_used_at FROM api_keys WHERE id = $1")
                    .bind(key_id)
                    .fetch_optional(conn)
                    .await)?;
            let used_after = last_used.flatten().filter(|at| *at > disabled_at);
            let Some(first_seen) = [first, used_after].into_iter().flatten().min() else { continue };
            candidates.push(Candidate {
                rule: "key_of_disabled_owner",
                severity: "high",
                summary: format!("the API key {key} was used after its owner {owner} was disabled"),
                evidence: serde_json::json!({
                    "key": key, "owner": owner, "recorded_uses": uses, "last_entry_id": last_entry,
                    "last_used_at_micros": used_after, "owner_disabled_at_micros": disabled_at,
                }),
                // Once per key and disabling.
                window_key: format!("{owner}:{disabled_at}"),
                subject: key,
                first_seen_at: first_seen,
            });
        }
        Ok(candidates)
    }

    async fn raise(&self, c: Candidate, now: i64) -> Result<Option<SecurityAlert>, AlertError> {
        let id = Uuid::now_v7().to_string();
        let dedupe = format!("{}:{}:{}", c.rule, c.subject, c.window_key);
        let webhook = if self.settings.webhook_url.is_some() { "pending" } else { "none" };
        let insert = Statement::new(
            "INSERT INTO security_alerts (id, rule, subject, dedupe_key, severity, summary, evidence, raised_at, \
             first_seen_at, status, webhook_status, webhook_attempts, webhook_next_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, 0, $8) ON CONFLICT (dedupe_key) DO NOTHING",
            vec![
                Arg::Text(id.clone()),
                Arg::Text(c.rule.into()),
                Arg::Text(c.subject),
                Arg::Text(dedupe),
                Arg::Text(c.severity.into()),
                Arg::Text(c.summary),
                Arg::Text(c.evidence.to_string()),
                Arg::Int(now),
                Arg::Int(c.first_seen_at),
                Arg::Text(webhook.into()),
            ],
        );
        let changed: u64 = storage::audit::unaudited(async {
            storage::write!(&self.db, |conn| insert.query().execute(conn).await.map(|r| r.rows_affected()))
        })
        .await?;
        if changed == 0 {
            return Ok(None);
        }
        self.get(&id).await.map(Some)
    }

    pub async fn get(&self, id: &str) -> Result<SecurityAlert, AlertError> {
        let row: Option<SecurityAlert> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {ALERT_COLUMNS} FROM security_alerts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| AlertError::NotFound(id.to_string()))
    }

    /// Alerts, newest first; `status` filters (`open`, `acknowledged`); `before` pages by id.
    pub async fn list(
        &self,
        status: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecurityAlert>, AlertError> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {ALERT_COLUMNS} FROM security_alerts WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(status)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?)
    }

    /// A person acknowledges an alert (with an optional note); audited like every change.
    pub async fn acknowledge(&self, id: &str, by: &str, note: Option<&str>) -> Result<SecurityAlert, AlertError> {
        let now = self.clock.now_micros();
        let changed: u64 = storage::write!(&self.db, |conn| {
            sqlx::query(
            "UPDATE security_alerts SET status = 'acknowledged', acknowledged_by = $1, acknowledged_at = $2, note = $3 \
             WHERE id = $4 AND status = 'open'"
        )
        .bind(by)
        .bind(now)
        .bind(note)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
        })?;
        if changed == 0 {
            let existing = self.get(id).await?;
            return Err(AlertError::AlreadyAcknowledged(existing.id));
        }
        self.get(id).await
    }

    /// Delivers pending alerts to the webhook once; failures are retried with backoff.
    pub async fn deliver_pending(&self, http: &reqwest::Client) -> Result<usize, AlertError> {
        let Some(url) = self.settings.webhook_url.clone() else { return Ok(0) };
        let now = self.clock.now_micros();
        let due: Vec<SecurityAlert> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {ALERT_COLUMNS} FROM security_alerts WHERE webhook_status = 'pending' AND webhook_next_at <= $1 \
             ORDER BY id LIMIT 100"
        ))
        .bind(now)
        .fetch_all(conn)
        .await)?;
        let mut delivered = 0;
        for alert in due {
            let body = serde_json::json!({
                "id": alert.id, "rule": alert.rule, "subject": alert.subject, "severity": alert.severity,
                "summary": alert.summary,
                "evidence": serde_json::from_str::<serde_json::Value>(&alert.evidence).unwrap_or_default(),
                "raised_at": Utc.timestamp_micros(alert.raised_at).single().map(|t| t.to_rfc3339()),
            })
            .to_string();
            let mut request = http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(Duration::from_secs(5));
            if let Some(secret) = &self.settings.webhook_secret {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
                mac.update(body.as_bytes());
                request = request
                    .header("X-Digibank-Signature", format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
            }
            let ok = matches!(request.body(body).send().await, Ok(r) if r.status().is_success());
            let attempts = alert.webhook_attempts + 1;
            let (status, next) = if ok {
                delivered += 1;
                ("delivered", None)
            } else if attempts >= MAX_WEBHOOK_ATTEMPTS {
                tracing::error!(alert = %alert.id, attempts, "security alert webhook gave up");
                ("failed", None)
            } else {
                // 10 s, 20 s, 40 s ... at most an hour.
                let backoff = (10_000_000i64 << (attempts - 1).min(10)).min(3_600_000_000);
                ("pending", Some(now + backoff))
            };
            // No next attempt is a NULL literal: a NULL bound as text would not fit PostgreSQL's bigint.
            let update = match next {
                Some(next) => Statement::new(
                    "UPDATE security_alerts SET webhook_status = $1, webhook_attempts = $2, webhook_next_at = $3 \
                     WHERE id = $4",
                    vec![Arg::Text(status.into()), Arg::Int(attempts), Arg::Int(next), Arg::Text(alert.id)],
                ),
                None => Statement::new(
                    "UPDATE security_alerts SET webhook_status = $1, webhook_attempts = $2, webhook_next_at = NULL \
                     WHERE id = $3",
                    vec![Arg::Text(status.into()), Arg::Int(attempts), Arg::Text(alert.id)],
                ),
            };
            storage::audit::unaudited(storage::execute_all(&self.db, &[update])).await?;
        }
        Ok(delivered)
    }

    /// Runs the detectors every tick and the webhook sender every few seconds, for as long as
    /// the server runs.
    pub fn spawn(&self) {
        let alerts = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(alerts.settings.tick);
            loop {
                tick.tick().await;
                if let Err(e) = alerts.detect().await {
                    tracing::warn!(error = %e, "security alert detectors failed; retrying");
                }
            }
        });
        if self.settings.webhook_url.is_some() {
            let alerts = self.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut tick = tokio::time::interval(Duration::from_secs(2));
                loop {
                    tick.tick().await;
                    if let Err(e) = alerts.deliver_pending(&http).await {
                        tracing::warn!(error = %e, "security alert delivery failed; retrying");
                    }
                }
            });
        }
    }
}

/// Whether `at` (micros) falls outside the working hours of `settings`.
pub fn off_hours(settings: &AlertSettings, at: i64) -> bool {
    let Some(offset) = FixedOffset::east_opt(settings.utc_offset_hours * 3600) else { return false };
    let Some(utc) = Utc.timestamp_micros(at).single() else { return false };
    let local = utc.with_timezone(&offset);
    let (start, end) = settings.working_hours;
    local.weekday().number_from_monday() > 5 || local.hour() < start || local.hour() >= end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_hours_are_local_weekdays() {
        let settings = AlertSettings::default();
        let off = |at: &str| off_hours(&settings, chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_micros());
        // 2026-12-03 is a Thursday. 10:00 in Beijing is 02:00 UTC.
        assert!(!off("2026-12-03T02:00:00Z"));
        assert!(off("2026-12-03T13:00:00Z"), "21:00 in Beijing");
        assert!(off("2026-12-05T02:00:00Z"), "Saturday");
        assert!(off("2026-12-02T23:30:00Z"), "07:30 in Beijing");
    }
}
