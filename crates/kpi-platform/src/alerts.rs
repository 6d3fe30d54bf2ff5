//! Threshold alerts on the indicators (migration `0030_kpi_alerts.sql`): the rules people keep,
//! their states moved on by every KPI refresh ([`evaluate`], the state machine of
//! `kpi::alerts`), the history of transitions, and silences.
//!
//! Invariants:
//! * a rule's state changes only together with the event that records it (one transaction), and
//!   only from the version it was read at: two nodes evaluating the same refresh record a
//!   transition once (the second finds the version moved on and skips it);
//! * every change commits with its audit entry: a person's edit inside the request's audit
//!   scope, a transition inside a `system` scope naming the rule;
//! * a transition to `firing` or `resolved` of a rule that is not silenced is enqueued in the
//!   webhook outbox (`crates/webhooks`, owner `bank`, event `kpi_alert.firing` /
//!   `kpi_alert.resolved`) inside the same transaction, so it is notified if and only if it is
//!   stored; the outbox delivers it with signatures and retries.

use std::collections::HashMap;
use std::str::FromStr;

use kpi::alerts::{AlertState, Comparator, Condition, Severity, Status};
use kpi::{Decimal, KpiId};
use storage::audit::AuditContext;
use storage::{Arg, Database, Statement, UnitOfWorkError};
use uuid::Uuid;

use crate::{KpiPlatformError, Result};

/// What a person sets on a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub kpi: KpiId,
    pub comparator: Comparator,
    /// In the indicator's unit.
    pub threshold: Decimal,
    /// How long the condition must hold before the alert fires (0: at once).
    pub for_secs: i64,
    pub severity: Severity,
    pub enabled: bool,
}

impl RuleSpec {
    fn condition(&self) -> Condition {
        Condition { comparator: self.comparator, threshold: self.threshold, for_micros: self.for_secs * 1_000_000 }
    }

    /// Whether a change from `self` to `other` changes what is watched (and so restarts the state).
    fn same_condition(&self, other: &RuleSpec) -> bool {
        self.kpi == other.kpi && self.condition() == other.condition() && self.enabled == other.enabled
    }
}

/// A silence: the rule's transitions are recorded but not notified until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub until: i64,
    pub by: String,
    pub reason: String,
}

/// A stored rule with its state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub id: Uuid,
    pub spec: RuleSpec,
    pub state: AlertState,
    /// When the state was entered.
    pub state_since: i64,
    /// The indicator's value at the last transition.
    pub last_value: Option<Decimal>,
    /// The indicator's latest value (filled in by [`Alerts::list`] and [`Alerts::get`]).
    pub current_value: Option<Decimal>,
    /// The silence, also when it has ended (see [`AlertRule::silenced_at`]).
    pub silence: Option<Silence>,
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}

impl AlertRule {
    /// Whether the rule is silenced at `now`.
    pub fn silenced_at(&self, now: i64) -> bool {
        self.silence.as_ref().is_some_and(|s| s.until > now)
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A KPI refresh evaluated the rule.
    Evaluation,
    /// A person changed the condition or disabled the rule: it starts again from normal.
    Edit,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Evaluation => "evaluation",
            Cause::Edit => "edit",
        }
    }

    fn parse(s: &str) -> Option<Cause> {
        [Cause::Evaluation, Cause::Edit].into_iter().find(|c| c.as_str() == s)
    }
}

/// One transition of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    pub kpi: String,
    pub from: AlertState,
    pub to: AlertState,
    pub value: Option<Decimal>,
    pub comparator: Comparator,
    pub threshold: Decimal,
    pub severity: Severity,
    pub silenced: bool,
    pub cause: Cause,
    pub at: i64,
}

/// Errors of the alert store.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("no KPI alert rule {0}")]
    NotFound(Uuid),
    #[error("KPI alert rule {0} was changed by someone else meanwhile; read it again")]
    Conflict(Uuid),
    #[error(transparent)]
    Platform(#[from] KpiPlatformError),
}

impl From<sqlx::Error> for AlertError {
    fn from(e: sqlx::Error) -> Self {
        AlertError::Platform(e.into())
    }
}

impl From<UnitOfWorkError> for AlertError {
    fn from(e: UnitOfWorkError) -> Self {
        AlertError::Platform(e.into())
    }
}

const RULE_COLUMNS: &str = "id, name, kpi, comparator, threshold, for_secs, severity, enabled, state, state_since, \
    last_value, silenced_until, silenced_by, silence_reason, version, created_at, created_by, updated_at, updated_by";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: String,
    name: String,
    kpi: String,
    comparator: String,
    threshold: String,
    for_secs: i64,
    severity: String,
    enabled: i64,
    state: String,
    state_since: i64,
    last_value: Option<String>,
    silenced_until: Option<i64>,
    silenced_by: Option<String>,
    silence_reason: Option<String>,
    version: i64,
    created_at: i64,
    created_by: String,
    updated_at: i64,
    updated_by: String,
}

fn corrupt(what: &str, value: &str) -> KpiPlatformError {
    KpiPlatformError::Corrupt(format!("kpi alert {what}: {value:?}"))
}

fn decimal(what: &str, text: &str) -> Result<Decimal> {
    Decimal::from_str(text).map_err(|_| corrupt(what, text))
}

fn uuid(what: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| corrupt(what, text))
}

fn rule_from_row(r: RuleRow) -> Result<AlertRule> {
    let silence = r.silenced_until.map(|until| Silence {
        until,
        by: r.silenced_by.unwrap_or_default(),
        reason: r.silence_reason.unwrap_or_default(),
    });
    Ok(AlertRule {
        id: uuid("id", &r.id)?,
        spec: RuleSpec {
            name: r.name,
            kpi: KpiId::parse(&r.kpi).ok_or_else(|| corrupt("kpi", &r.kpi))?,
            comparator: Comparator::parse(&r.comparator).ok_or_else(|| corrupt("comparator", &r.comparator))?,
            threshold: decimal("threshold", &r.threshold)?,
            for_secs: r.for_secs,
            severity: Severity::parse(&r.severity).ok_or_else(|| corrupt("severity", &r.severity))?,
            enabled: r.enabled != 0,
        },
        state: AlertState::parse(&r.state).ok_or_else(|| corrupt("state", &r.state))?,
        state_since: r.state_since,
        last_value: r.last_value.as_deref().map(|v| decimal("last_value", v)).transpose()?,
        current_value: None,
        silence,
        version: r.version,
        created_at: r.created_at,
        created_by: r.created_by,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    })
}

type EventRow =
    (String, String, String, String, String, String, Option<String>, String, String, String, i64, String, i64);

const EVENT_COLUMNS: &str =
    "id, rule_id, rule_name, kpi, from_state, to_state, value, comparator, threshold, severity, silenced, cause, at";

fn event_from_row(r: EventRow) -> Result<AlertEvent> {
    Ok(AlertEvent {
        id: uuid("event id", &r.0)?,
        rule_id: uuid("event rule", &r.1)?,
        rule_name: r.2,
        kpi: r.3,
        from: AlertState::parse(&r.4).ok_or_else(|| corrupt("from_state", &r.4))?,
        to: AlertState::parse(&r.5).ok_or_else(|| corrupt("to_state", &r.5))?,
        value: r.6.as_deref().map(|v| decimal("event value", v)).transpose()?,
        comparator: Comparator::parse(&r.7).ok_or_else(|| corrupt("event comparator", &r.7))?,
        threshold: decimal("event threshold", &r.8)?,
        severity: Severity::parse(&r.9).ok_or_else(|| corrupt("event severity", &r.9))?,
        silenced: r.10 != 0,
        cause: Cause::parse(&r.11).ok_or_else(|| corrupt("cause", &r.11))?,
        at: r.12,
    })
}

fn text(v: Decimal) -> String {
    v.normalize().to_string()
}

/// The statements that record `event` of `rule` (as it was read) and move the rule to it.
fn transition(rule: &AlertRule, event: &AlertEvent, by: Option<&str>) -> Vec<Statement> {
    let mut out = vec![
        Statement::new(
            "UPDATE kpi_alert_rules SET state = $1, state_since = $2, last_value = $3, version = version + 1, \
             updated_at = CASE WHEN $4 = '' THEN updated_at ELSE $2 END, \
             updated_by = CASE WHEN $4 = '' THEN updated_by ELSE $4 END \
             WHERE id = $5 AND version = $6",
            vec![
                Arg::Text(event.to.as_str().into()),
                Arg::Int(event.at),
                Arg::OptText(event.value.map(text)),
                Arg::Text(by.unwrap_or_default().to_string()),
                Arg::Text(rule.id.to_string()),
                Arg::Int(rule.version),
            ],
        )
        .expecting(1),
        insert_event(event),
    ];
    out.extend(notification(rule, event));
    out
}

fn insert_event(e: &AlertEvent) -> Statement {
    Statement::new(
        format!("INSERT INTO kpi_alert_events ({EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
        vec![
            Arg::Text(e.id.to_string()),
            Arg::Text(e.rule_id.to_string()),
            Arg::Text(e.rule_name.clone()),
            Arg::Text(e.kpi.clone()),
            Arg::Text(e.from.as_str().into()),
            Arg::Text(e.to.as_str().into()),
            Arg::OptText(e.value.map(text)),
            Arg::Text(e.comparator.as_str().into()),
            Arg::Text(text(e.threshold)),
            Arg::Text(e.severity.as_str().into()),
            Arg::Int(i64::from(e.silenced)),
            Arg::Text(e.cause.as_str().into()),
            Arg::Int(e.at),
        ],
    )
    .expecting(1)
}

/// The notification of a transition, run in the transaction that stores it: a rule that is
/// not silenced notifies when it starts and stops firing (an evaluation's `firing` and
/// `resolved`), as the bank's webhook event `kpi_alert.firing` / `kpi_alert.resolved` in the
/// durable outbox (`crates/webhooks`: one delivery per subscription of the bank that wants it,
/// signed, retried with backoff, dead letters, replay). An event exists if and only if its
/// transition was committed.
fn notification(rule: &AlertRule, event: &AlertEvent) -> Vec<Statement> {
    if !notifies(event) {
        return Vec::new();
    }
    vec![webhooks::event_statement(
        webhooks::BANK_OWNER,
        &event_type(event),
        notification_payload(rule, event),
        event.at,
    )]
}

/// The webhook event type of a transition: `kpi_alert.<state>`.
pub fn event_type(event: &AlertEvent) -> String {
    format!("kpi_alert.{}", event.to.as_str())
}

/// Whether `event` is one that is notified.
pub fn notifies(event: &AlertEvent) -> bool {
    !event.silenced && event.cause == Cause::Evaluation && matches!(event.to, AlertState::Firing | AlertState::Resolved)
}

/// The `data` of the webhook event announcing `event` of `rule`: ids, the condition and the
/// values, no personal data.
pub fn notification_payload(rule: &AlertRule, event: &AlertEvent) -> serde_json::Value {
    serde_json::json!({
        "alert_event_id": event.id.to_string(),
        "rule_id": rule.id.to_string(),
        "rule_name": rule.spec.name,
        "kpi": event.kpi,
        "severity": event.severity.as_str(),
        "comparator": event.comparator.as_str(),
        "threshold": text(event.threshold),
        "value": event.value.map(text),
        "from": event.from.as_str(),
        "to": event.to.as_str(),
        "at": event.at,
    })
}

/// The alert rules and their history.
#[derive(Clone)]
pub struct Alerts {
    db: Database,
}

impl Alerts {
    pub fn new(db: Database) -> Self {
        Alerts { db }
    }

    async fn rows(&self, id: Option<Uuid>) -> Result<Vec<AlertRule>> {
        let rows: Vec<RuleRow> = match id {
            Some(id) => storage::read!(&self.db, |conn| sqlx::query_as(&format!(
                "SELECT {RULE_COLUMNS} FROM kpi_alert_rules WHERE id = $1"
            ))
            .bind(id.to_string())
            .fetch_all(conn)
            .await)?,
            None => storage::read!(&self.db, |conn| sqlx::query_as(&format!(
                "SELECT {RULE_COLUMNS} FROM kpi_alert_rules ORDER BY created_at, id"
            ))
            .fetch_all(conn)
            .await)?,
        };
        rows.into_iter().map(rule_from_row).collect()
    }

    async fn with_values(&self, mut rules: Vec<AlertRule>) -> Result<Vec<AlertRule>> {
        let current: HashMap<KpiId, Decimal> = crate::series::current(&self.db).await?.into_iter().collect();
        for r in &mut rules {
            r.current_value = current.get(&r.spec.kpi).copied();
        }
        Ok(rules)
    }

    /// Every rule (oldest first) with its indicator's latest value.
    pub async fn list(&self) -> Result<Vec<AlertRule>> {
        let rules = self.rows(None).await?;
        self.with_values(rules).await
    }

    pub async fn get(&self, id: Uuid) -> Result<AlertRule, AlertError> {
        let rules = self.rows(Some(id)).await?;
        self.with_values(rules).await?.pop().ok_or(AlertError::NotFound(id))
    }

    /// Stores a new rule, in state normal.
    pub async fn create(&self, spec: RuleSpec, by: &str, now: i64) -> Result<AlertRule, AlertError> {
        let id = Uuid::now_v7();
        storage::audit::set_resource(id.to_string());
        let statement = Statement::new(
            format!(
                "INSERT INTO kpi_alert_rules ({RULE_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, 'normal', $9, NULL, NULL, NULL, NULL, 1, $9, $10, $9, $10)"
            ),
            vec![
                Arg::Text(id.to_string()),
                Arg::Text(spec.name.clone()),
                Arg::Text(spec.kpi.as_str().into()),
                Arg::Text(spec.comparator.as_str().into()),
                Arg::Text(text(spec.threshold)),
                Arg::Int(spec.for_secs),
                Arg::Text(spec.severity.as_str().into()),
                Arg::Int(i64::from(spec.enabled)),
                Arg::Int(now),
                Arg::Text(by.into()),
            ],
        )
        .expecting(1);
        storage::execute_all(&self.db, &[statement]).await?;
        self.get(id).await
    }

    /// Replaces a rule's settings. A change of what is watched (indicator, comparator,
    /// threshold, duration) or of `enabled` starts it again from normal, recorded as an `edit`
    /// transition when it was not normal.
    pub async fn update(&self, id: Uuid, spec: RuleSpec, by: &str, now: i64) -> Result<AlertRule, AlertError> {
        let old = self.get(id).await?;
        let mut statements = vec![Statement::new(
            "UPDATE kpi_alert_rules SET name = $1, kpi = $2, comparator = $3, threshold = $4, for_secs = $5, \
             severity = $6, enabled = $7, updated_at = $8, updated_by = $9, version = version + 1 \
             WHERE id = $10 AND version = $11",
            vec![
                Arg::Text(spec.name.clone()),
                Arg::Text(spec.kpi.as_str().into()),
                Arg::Text(spec.comparator.as_str().into()),
                Arg::Text(text(spec.threshold)),
                Arg::Int(spec.for_secs),
                Arg::Text(spec.severity.as_str().into()),
                Arg::Int(i64::from(spec.enabled)),
                Arg::Int(now),
                Arg::Text(by.into()),
                Arg::Text(id.to_string()),
                Arg::Int(old.version),
            ],
        )
        .expecting(1)];
        if !old.spec.same_condition(&spec) && old.state != AlertState::Normal {
            let event = AlertEvent {
                id: Uuid::now_v7(),
                rule_id: id,
                rule_name: spec.name.clone(),
                kpi: spec.kpi.as_str().into(),
                from: old.state,
                to: AlertState::Normal,
                value: None,
                comparator: spec.comparator,
                threshold: spec.threshold,
                severity: spec.severity,
                silenced: old.silenced_at(now),
                cause: Cause::Edit,
                at: now,
            };
            let edited = AlertRule { version: old.version + 1, ..old.clone() };
            statements.extend(transition(&edited, &event, Some(by)));
        }
        self.commit(id, &statements).await?;
        self.get(id).await
    }

    /// Deletes a rule; its history stays.
    pub async fn delete(&self, id: Uuid) -> Result<(), AlertError> {
        let statement =
            Statement::new("DELETE FROM kpi_alert_rules WHERE id = $1", vec![Arg::Text(id.to_string())]).expecting(1);
        match storage::execute_all(&self.db, &[statement]).await {
            Err(UnitOfWorkError::Conflict(_)) => Err(AlertError::NotFound(id)),
            other => Ok(other?),
        }
    }

    /// Silences a rule until `silence.until` (replacing a silence it had), or lifts its silence
    /// (`None`, by `lifted_by`).
    pub async fn silence(
        &self,
        id: Uuid,
        silence: Option<Silence>,
        lifted_by: &str,
        now: i64,
    ) -> Result<AlertRule, AlertError> {
        let old = self.get(id).await?;
        let (id_text, version) = (Arg::Text(id.to_string()), Arg::Int(old.version));
        let statement = match silence {
            Some(s) => Statement::new(
                "UPDATE kpi_alert_rules SET silenced_until = $1, silenced_by = $2, silence_reason = $3, \
                 updated_at = $4, updated_by = $2, version = version + 1 WHERE id = $5 AND version = $6",
                vec![Arg::Int(s.until), Arg::Text(s.by), Arg::Text(s.reason), Arg::Int(now), id_text, version],
            ),
            None => Statement::new(
                "UPDATE kpi_alert_rules SET silenced_until = NULL, silenced_by = NULL, silence_reason = NULL, \
                 updated_at = $1, updated_by = $2, version = version + 1 WHERE id = $3 AND version = $4",
                vec![Arg::Int(now), Arg::Text(lifted_by.into()), id_text, version],
            ),
        }
        .expecting(1);
        self.commit(id, &[statement]).await?;
        self.get(id).await
    }

    async fn commit(&self, id: Uuid, statements: &[Statement]) -> Result<(), AlertError> {
        match storage::execute_all(&self.db, statements).await {
            Err(UnitOfWorkError::Conflict(_)) => Err(AlertError::Conflict(id)),
            other => Ok(other?),
        }
    }

    /// The history, newest first: transitions of `rule` (all rules when `None`) into `state`
    /// (any when `None`), older than the event `before`.
    pub async fn events(
        &self,
        rule: Option<Uuid>,
        state: Option<AlertState>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AlertEvent>> {
        let rows: Vec<EventRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM kpi_alert_events \
             WHERE ($1 = '' OR rule_id = $1) AND ($2 = '' OR to_state = $2) AND ($3 = '' OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(rule.map(|r| r.to_string()).unwrap_or_default())
        .bind(state.map(|s| s.as_str()).unwrap_or_default())
        .bind(before.map(|b| b.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(event_from_row).collect()
    }

    /// Moves every enabled rule on from the `readings` computed at `now`. Each transition
    /// commits alone with its event, its notification and a `system` audit entry; a transition
    /// another node stored first is skipped. Returns the transitions stored.
    pub async fn evaluate(&self, readings: &[(KpiId, Option<Decimal>)], now: i64) -> Result<Vec<AlertEvent>> {
        let values: HashMap<KpiId, Option<Decimal>> = readings.iter().copied().collect();
        let mut stored = Vec::new();
        for rule in self.rows(None).await? {
            if !rule.spec.enabled {
                continue;
            }
            let Some(value) = values.get(&rule.spec.kpi).copied() else { continue };
            let status = Status { state: rule.state, since: rule.state_since };
            let Some(next) = kpi::alerts::evaluate(&rule.spec.condition(), status, value, now) else { continue };
            let event = AlertEvent {
                id: Uuid::now_v7(),
                rule_id: rule.id,
                rule_name: rule.spec.name.clone(),
                kpi: rule.spec.kpi.as_str().into(),
                from: rule.state,
                to: next.state,
                value,
                comparator: rule.spec.comparator,
                threshold: rule.spec.threshold,
                severity: rule.spec.severity,
                silenced: rule.silenced_at(now),
                cause: Cause::Evaluation,
                at: next.since,
            };
            let context = AuditContext {
                at: now,
                actor_kind: "system".into(),
                actor: "kpi alert evaluator".into(),
                role: None,
                action: format!("kpi alert {}", event.to.as_str()),
                resource: rule.id.to_string(),
                request_id: Uuid::new_v4().to_string(),
                ip: None,
                purpose: None,
            };
            let statements = transition(&rule, &event, None);
            match storage::audit::scope(context, storage::execute_all(&self.db, &statements)).await {
                Ok(()) => {
                    tracing::info!(rule = %rule.id, kpi = %event.kpi, from = event.from.as_str(), to = event.to.as_str(), "KPI alert");
                    stored.push(event);
                }
                // Another node moved this rule on first (or a person edited it meanwhile).
                Err(UnitOfWorkError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(to: AlertState, silenced: bool, cause: Cause) -> AlertEvent {
        AlertEvent {
            id: Uuid::now_v7(),
            rule_id: Uuid::now_v7(),
            rule_name: "r".into(),
            kpi: "npl_ratio".into(),
            from: AlertState::Normal,
            to,
            value: Some(Decimal::new(5, 2)),
            comparator: Comparator::Above,
            threshold: Decimal::new(3, 2),
            severity: Severity::Critical,
            silenced,
            cause,
            at: 1,
        }
    }

    #[test]
    fn only_unsilenced_evaluated_firing_and_resolved_are_notified() {
        assert!(notifies(&event(AlertState::Firing, false, Cause::Evaluation)));
        assert!(notifies(&event(AlertState::Resolved, false, Cause::Evaluation)));
        assert!(!notifies(&event(AlertState::Pending, false, Cause::Evaluation)));
        assert!(!notifies(&event(AlertState::Normal, false, Cause::Evaluation)));
        assert!(!notifies(&event(AlertState::Firing, true, Cause::Evaluation)));
        assert!(!notifies(&event(AlertState::Normal, false, Cause::Edit)));
    }
}
