//! The SQL behind the risk platform: decisions, cases, rule sets, list entries and models.
//! Every statement is written once with `$N` placeholders and runs on both backends through
//! `storage::read!` / `storage::write!` (see `crates/storage`).

use chrono::{DateTime, Utc};
use risk::{FeatureVector, ListEntry, ListKind, ListSubject, Outcome, Resolution, RuleSet};
use serde::{Deserialize, Serialize};
use storage::{Arg, Database, Statement};
use uuid::Uuid;

use crate::error::{Result, RiskPlatformError};

/// A stored decision as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// Decision id (UUID v7).
    pub id: Uuid,
    pub event_id: String,
    pub customer_id: String,
    /// payment, transfer, login, loan_application or account_opening.
    #[schema(value_type = String, example = "transfer")]
    pub kind: risk::EventKind,
    /// allow, review or reject.
    #[schema(value_type = String, example = "review")]
    pub outcome: Outcome,
    pub score: f64,
    pub base_score: f64,
    pub model_probability: Option<f64>,
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<risk::Reason>,
    pub rule_set_version: Option<u32>,
    pub model: Option<String>,
    /// The review case opened for this decision.
    pub case_id: Option<u64>,
    /// The transfer this decision screened, if any.
    pub transfer_id: Option<Uuid>,
    pub elapsed_micros: u64,
    /// Microseconds since the Unix epoch.
    pub decided_at: i64,
    /// The features the decision was made on (what backtests replay).
    #[schema(value_type = Object)]
    pub features: FeatureVector,
}

impl DecisionView {
    pub(crate) fn new(id: Uuid, d: &risk::Decision, transfer_id: Option<Uuid>) -> Self {
        DecisionView {
            id,
            event_id: d.event_id.clone(),
            customer_id: d.customer_id.clone(),
            kind: d.kind,
            outcome: d.outcome,
            score: d.score,
            base_score: d.base_score,
            model_probability: d.model_probability,
            reasons: d.reasons.clone(),
            rule_set_version: d.rule_set_version,
            model: d.model.clone(),
            case_id: d.case_id,
            transfer_id,
            elapsed_micros: d.elapsed_micros,
            decided_at: d.decided_at.timestamp_micros(),
            features: d.features.clone(),
        }
    }
}

/// A stored review case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    pub id: u64,
    pub decision_id: Uuid,
    pub event_id: String,
    pub customer_id: String,
    /// The transfer held for this review, if the case came from transfer screening.
    pub transfer_id: Option<Uuid>,
    pub score: f64,
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<risk::Reason>,
    pub opened_at: i64,
    /// confirmed_fraud or false_positive once resolved.
    #[schema(value_type = Option<String>)]
    pub resolution: Option<Resolution>,
    pub analyst: Option<String>,
    pub note: Option<String>,
    pub resolved_at: Option<i64>,
}

/// Which cases to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    #[default]
    Open,
    Resolved,
    All,
}

/// The text a serde enum serialises to (`snake_case` variant names), as stored in the database.
pub fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The enum a stored text names.
pub fn parse_enum<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|e| RiskPlatformError::Corrupt(format!("{text:?}: {e}")))
}

pub(crate) fn micros_to_time(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| RiskPlatformError::Corrupt(format!("id {text:?}: {e}")))
}

type DecisionRow = (
    String,
    String,
    String,
    String,
    String,
    f64,
    f64,
    Option<f64>,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

const DECISION_COLUMNS: &str = "id, event_id, customer_id, kind, outcome, score, base_score, model_probability, \
    reasons, features, rule_set_version, model, case_id, transfer_id, elapsed_micros, created_at";

fn decision_from_row(r: DecisionRow) -> Result<DecisionView> {
    Ok(DecisionView {
        id: parse_uuid(&r.0)?,
        event_id: r.1,
        customer_id: r.2,
        kind: parse_enum(&r.3)?,
        outcome: parse_enum(&r.4)?,
        score: r.5,
        base_score: r.6,
        model_probability: r.7,
        reasons: serde_json::from_str(&r.8)?,
        features: serde_json::from_str(&r.9)?,
        rule_set_version: r.10.map(|v| v as u32),
        model: r.11,
        case_id: r.12.map(|v| v as u64),
        transfer_id: r.13.as_deref().and_then(|t| Uuid::parse_str(t).ok()),
        elapsed_micros: r.14 as u64,
        decided_at: r.15,
    })
}

/// Loads one stored decision.
pub async fn load_decision(db: &Database, id: Uuid) -> Result<Option<DecisionView>> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM risk_decisions WHERE id = $1");
    let row: Option<DecisionRow> =
        storage::read!(db, |conn| sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(conn).await)?;
    row.map(decision_from_row).transpose()
}

/// The most recent stored decisions' replay inputs (features and non-rule score), oldest first.
pub async fn replay_events(db: &Database, limit: u32) -> Result<Vec<risk::ReplayEvent>> {
    let rows: Vec<(String, String, f64)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT event_id, features, base_score FROM risk_decisions ORDER BY created_at DESC, id DESC LIMIT $1"
    )
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await)?;
    let mut out = rows
        .into_iter()
        .map(|(event_id, f, base_score)| {
            Ok(risk::ReplayEvent { event_id, features: serde_json::from_str(&f)?, base_score })
        })
        .collect::<Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

/// One page of the decision log for the start-up replay: `(created_at, id, outcome, event)`
/// after the position `(after_at, after_id)`, in log order.
pub(crate) async fn decision_log_page(
    db: &Database,
    after_at: i64,
    after_id: &str,
    limit: i64,
) -> Result<Vec<(i64, String, String, String)>> {
    Ok(storage::read!(db, |conn| sqlx::query_as(
        "SELECT created_at, id, outcome, event FROM risk_decisions \
         WHERE created_at > $1 OR (created_at = $1 AND id > $2) ORDER BY created_at, id LIMIT $3"
    )
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await)?)
}

// ---- cases -------------------------------------------------------------------------------------

type CaseRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    f64,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

const CASE_COLUMNS: &str =
    "id, decision_id, event_id, customer_id, transfer_id, score, reasons, opened_at, resolution, analyst, note, resolved_at";

fn case_from_row(r: CaseRow) -> Result<CaseView> {
    Ok(CaseView {
        id: r.0 as u64,
        decision_id: parse_uuid(&r.1)?,
        event_id: r.2,
        customer_id: r.3,
        transfer_id: r.4.as_deref().and_then(|t| Uuid::parse_str(t).ok()),
        score: r.5,
        reasons: serde_json::from_str(&r.6)?,
        opened_at: r.7,
        resolution: r.8.as_deref().map(parse_enum).transpose()?,
        analyst: r.9,
        note: r.10,
        resolved_at: r.11,
    })
}

/// The latest decisions, newest first, before `before` (microseconds; all when `None`).
pub async fn recent_decisions(db: &Database, before: Option<i64>, limit: u32) -> Result<Vec<DecisionView>> {
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM risk_decisions WHERE created_at < $1 ORDER BY created_at DESC LIMIT $2"
    );
    let rows: Vec<DecisionRow> = storage::read!(db, |conn| sqlx::query_as(&sql)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
    rows.into_iter().map(decision_from_row).collect()
}

/// Decisions since `since` (microseconds) per event kind and outcome, as stored (snake_case).
pub async fn outcome_counts(db: &Database, since: i64) -> Result<Vec<(String, String, i64)>> {
    Ok(storage::read!(db, |conn| {
        sqlx::query_as(
        "SELECT kind, outcome, COUNT(*) FROM risk_decisions WHERE created_at >= $1 GROUP BY kind, outcome ORDER BY kind, outcome"
    )
    .bind(since)
    .fetch_all(conn)
    .await
    })?)
}

/// Cases by status, oldest first, after `after`.
pub async fn list_cases(db: &Database, status: CaseStatus, after: u64, limit: u32) -> Result<Vec<CaseView>> {
    let filter = match status {
        CaseStatus::Open => "resolved_at IS NULL AND",
        CaseStatus::Resolved => "resolved_at IS NOT NULL AND",
        CaseStatus::All => "",
    };
    let sql = format!("SELECT {CASE_COLUMNS} FROM risk_cases WHERE {filter} id > $1 ORDER BY id LIMIT $2");
    let rows: Vec<CaseRow> = storage::read!(db, |conn| sqlx::query_as(&sql)
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
    rows.into_iter().map(case_from_row).collect()
}

/// One case.
pub async fn load_case(db: &Database, id: u64) -> Result<Option<CaseView>> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM risk_cases WHERE id = $1");
    let row: Option<CaseRow> =
        storage::read!(db, |conn| sqlx::query_as(&sql).bind(id as i64).fetch_optional(conn).await)?;
    row.map(case_from_row).transpose()
}

/// Closes case `id` if it is still open: exactly one row must change, so a case another
/// resolver closed first rolls back the whole unit of work this statement is part of.
pub(crate) fn close_case_statement(id: u64, resolution: Resolution, analyst: &str, note: &str, at: i64) -> Statement {
    Statement::new(
        "UPDATE risk_cases SET resolution = $1, analyst = $2, note = $3, resolved_at = $4 \
         WHERE id = $5 AND resolved_at IS NULL",
        vec![
            Arg::Text(enum_text(&resolution)),
            Arg::Text(analyst.to_string()),
            Arg::Text(note.to_string()),
            Arg::Int(at),
            Arg::Int(id as i64),
        ],
    )
    .expecting(1)
}

/// The highest case id ever opened (0 when none), so new cases continue after it.
pub(crate) async fn max_case_id(db: &Database) -> Result<u64> {
    let (max,): (Option<i64>,) =
        storage::read!(db, |conn| sqlx::query_as("SELECT MAX(id) FROM risk_cases").fetch_one(conn).await)?;
    Ok(max.unwrap_or(0).max(0) as u64)
}

/// Customers with a case resolved as confirmed fraud.
pub(crate) async fn confirmed_fraud_customers(db: &Database) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT DISTINCT customer_id FROM risk_cases WHERE resolution = 'confirmed_fraud'"
    )
    .fetch_all(conn)
    .await)?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

/// Features and labels of every resolved case (confirmed fraud = positive).
pub async fn case_labels(db: &Database) -> Result<Vec<(FeatureVector, bool)>> {
    let rows: Vec<(String, String)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT features, resolution FROM risk_cases WHERE resolution IS NOT NULL ORDER BY id"
    )
    .fetch_all(conn)
    .await)?;
    rows.into_iter().map(|(f, r)| Ok((serde_json::from_str(&f)?, r == "confirmed_fraud"))).collect()
}

// ---- lists -------------------------------------------------------------------------------------

/// The sealed column of `risk_list_entries`.
pub(crate) const F_DISPLAY: &str = "risk_list_entries.display";

/// The tables of this platform with sealed columns, for `rotate-key`.
pub const ENCRYPTED_TABLES: &[access::EncryptedTable] = &[access::EncryptedTable {
    table: "risk_list_entries",
    key: &[("kind", access::KeyType::Text), ("subject", access::KeyType::Text), ("value", access::KeyType::Text)],
    columns: &["display"],
}];

/// Every stored list entry that has not expired at `now` (`display` opened).
pub async fn load_list_entries(db: &Database, vault: &access::Vault, now: DateTime<Utc>) -> Result<Vec<ListEntry>> {
    type Row = (String, String, String, Option<String>, String, i64, Option<i64>);
    let rows: Vec<Row> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT kind, subject, value, display, reason, added_at, expires_at FROM risk_list_entries \
         WHERE expires_at IS NULL OR expires_at > $1 ORDER BY subject, value, kind"
    )
    .bind(now.timestamp_micros())
    .fetch_all(conn)
    .await)?;
    let mut out = Vec::with_capacity(rows.len());
    for (kind, subject, value, display, reason, added, expires) in rows {
        let display = vault.with_fresh_keys(|v| v.open_opt(F_DISPLAY, display.as_deref())).await.map_err(|e| {
            if e.is_integrity() {
                RiskPlatformError::Integrity {
                    table: "risk_list_entries",
                    record: format!("{kind}/{subject}/{value}"),
                    reason: e.to_string(),
                }
            } else {
                RiskPlatformError::Vault(e)
            }
        })?;
        out.push(ListEntry {
            kind: parse_enum(&kind)?,
            subject: parse_enum(&subject)?,
            value,
            display,
            reason,
            added_at: micros_to_time(added),
            expires_at: expires.map(micros_to_time),
        });
    }
    Ok(out)
}

/// Stores (or replaces) a list entry; `display` is sealed.
pub async fn store_list_entry(db: &Database, vault: &access::Vault, e: &ListEntry) -> Result<()> {
    let display = vault.seal_opt(F_DISPLAY, e.display.as_deref());
    storage::write!(db, |conn| sqlx::query(
        "INSERT INTO risk_list_entries (kind, subject, value, reason, added_at, expires_at, display, key_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kind, subject, value) DO UPDATE SET \
         reason = excluded.reason, added_at = excluded.added_at, expires_at = excluded.expires_at, \
         display = excluded.display, key_version = excluded.key_version"
    )
    .bind(enum_text(&e.kind))
    .bind(enum_text(&e.subject))
    .bind(&e.value)
    .bind(&e.reason)
    .bind(e.added_at.timestamp_micros())
    .bind(e.expires_at.map(|t| t.timestamp_micros()))
    .bind(display)
    .bind(i64::from(vault.current_version()))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a list entry; returns whether it existed.
pub async fn delete_list_entry(db: &Database, kind: ListKind, subject: ListSubject, value: &str) -> Result<bool> {
    let done = storage::write!(db, |conn| sqlx::query(
        "DELETE FROM risk_list_entries WHERE kind = $1 AND subject = $2 AND value = $3"
    )
    .bind(enum_text(&kind))
    .bind(enum_text(&subject))
    .bind(value)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// What changes when list entries are added, replaced or deleted; checked before reloading them.
pub(crate) async fn list_fingerprint(db: &Database) -> Result<(i64, i64, i64)> {
    Ok(storage::read!(db, |conn| {
        sqlx::query_as(
        "SELECT COUNT(*), COALESCE(MAX(added_at), 0), CAST(COALESCE(SUM(added_at % 1000003), 0) AS BIGINT) FROM risk_list_entries"
    )
    .fetch_one(conn)
    .await
    })?)
}

// ---- models ------------------------------------------------------------------------------------

/// Stores a model artefact (name + version unique).
pub async fn store_model(db: &Database, artefact: &ml::ModelArtefact, at: DateTime<Utc>) -> Result<()> {
    let json = artefact.to_json().map_err(|e| RiskPlatformError::InvalidRequest(e.to_string()))?;
    let kind = match &artefact.model {
        ml::AnyModel::Logistic(_) => "logistic",
        ml::AnyModel::Scorecard(_) => "scorecard",
        ml::AnyModel::Gbdt(_) => "gbdt",
    };
    let metrics = artefact.metrics.as_ref().and_then(|m| serde_json::to_string(m).ok());
    storage::write!(db, |conn| sqlx::query(
        "INSERT INTO risk_models (name, version, kind, artefact, metrics, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(&artefact.name)
    .bind(i64::from(artefact.version))
    .bind(kind)
    .bind(&json)
    .bind(metrics)
    .bind(at.timestamp_micros())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The highest stored version number of a model name (0 when none).
pub async fn latest_model_version(db: &Database, name: &str) -> Result<u32> {
    let (max,): (Option<i64>,) =
        storage::read!(db, |conn| sqlx::query_as("SELECT MAX(version) FROM risk_models WHERE name = $1")
            .bind(name)
            .fetch_one(conn)
            .await)?;
    Ok(max.unwrap_or(0) as u32)
}

/// The latest stored version of a model, if any.
pub async fn latest_model(db: &Database, name: &str) -> Result<Option<ml::ModelArtefact>> {
    let row: Option<(String,)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT artefact FROM risk_models WHERE name = $1 ORDER BY version DESC LIMIT 1"
    )
    .bind(name)
    .fetch_optional(conn)
    .await)?;
    row.map(|(json,)| {
        ml::ModelArtefact::from_json(&json).map_err(|e| RiskPlatformError::Corrupt(format!("model {name}: {e}")))
    })
    .transpose()
}

// ---- rule sets ---------------------------------------------------------------------------------

/// Stores a new rule set version (not active). `created_by` is the API key that made it.
pub async fn store_rule_set(db: &Database, set: &RuleSet, created_by: Option<Uuid>) -> Result<()> {
    let body = serde_json::to_string(set)?;
    storage::write!(db, |conn| sqlx::query(
        "INSERT INTO risk_rule_sets (version, name, body, created_by, created_at) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(i64::from(set.version))
    .bind(&set.name)
    .bind(&body)
    .bind(created_by)
    .bind(set.created_at.timestamp_micros())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many rule set versions are stored.
pub async fn rule_set_count(db: &Database) -> Result<i64> {
    let (n,): (i64,) =
        storage::read!(db, |conn| sqlx::query_as("SELECT COUNT(*) FROM risk_rule_sets").fetch_one(conn).await)?;
    Ok(n)
}

/// Marks a version as activated at `at`.
pub async fn mark_activated(db: &Database, version: u32, at: DateTime<Utc>) -> Result<()> {
    storage::write!(db, |conn| sqlx::query("UPDATE risk_rule_sets SET activated_at = $1 WHERE version = $2")
        .bind(at.timestamp_micros())
        .bind(i64::from(version))
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Stored rule sets with a version above `known`, in version order.
pub(crate) async fn rule_sets_after(db: &Database, known: u32) -> Result<Vec<RuleSet>> {
    let rows: Vec<(i64, String)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT version, body FROM risk_rule_sets WHERE version > $1 ORDER BY version"
    )
    .bind(i64::from(known))
    .fetch_all(conn)
    .await)?;
    rows.into_iter()
        .map(|(version, body)| {
            serde_json::from_str(&body).map_err(|e| RiskPlatformError::Corrupt(format!("rule set {version}: {e}")))
        })
        .collect()
}

/// The version activated last (by time, then version), if any.
pub(crate) async fn active_rule_set_version(db: &Database) -> Result<Option<u32>> {
    let row: Option<(i64,)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT version FROM risk_rule_sets WHERE activated_at IS NOT NULL \
         ORDER BY activated_at DESC, version DESC LIMIT 1"
    )
    .fetch_optional(conn)
    .await)?;
    Ok(row.map(|(v,)| v as u32))
}

/// Records a VaR figure as the treasury's (`risk_var_reports`, migration 0020): the KPI system
/// shows the latest one-day 99% historical VaR. Returns the report's id.
pub async fn store_var_report(db: &Database, report: &risk::market::VarReport, at: DateTime<Utc>) -> Result<String> {
    let id = Uuid::now_v7().to_string();
    // Basis points: 0.99 → 9900 (the KPI picks the 99% figure by an exact integer).
    let confidence_bp = (report.confidence * 10_000.0).round() as i64;
    storage::write!(db, |conn| sqlx::query(
        "INSERT INTO risk_var_reports (id, method, confidence_bp, horizon_days, currency, portfolio_value, \
         value_at_risk, expected_shortfall, observations, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(&id)
    .bind(enum_text(&report.method))
    .bind(confidence_bp)
    .bind(i64::from(report.horizon_days))
    .bind(report.value_at_risk.currency.code())
    .bind(report.portfolio_value.minor)
    .bind(report.value_at_risk.minor)
    .bind(report.expected_shortfall.minor)
    .bind(i64::try_from(report.observations).unwrap_or(i64::MAX))
    .bind(at.timestamp_micros())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(id)
}
