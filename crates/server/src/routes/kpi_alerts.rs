//! Threshold alerts on the KPIs (issue 14, part 4): rules (above / below a threshold, for a
//! duration), their states (normal → pending → firing → resolved, moved on by every KPI
//! refresh), the history of transitions, and silences.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use kpi::alerts::{AlertState, Comparator, Severity, MAX_FOR_SECS, MAX_RULE_NAME};
use kpi::{Decimal, KpiId, Unit};
use kpi_platform::{AlertError, AlertEvent, AlertRule, RuleSpec, Silence};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> Self {
        match e {
            AlertError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "alert_rule_not_found", e.to_string()),
            AlertError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "alert_rule_changed", e.to_string()),
            AlertError::Platform(e) => ApiError::internal(e),
        }
    }
}

fn invalid(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The longest silence.
const MAX_SILENCE_MICROS: i64 = 90 * kpi::DAY_MICROS;
/// The longest reason of a silence.
const MAX_REASON: usize = 500;

/// A rule as a person writes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    /// What the alert is called (1..=200 characters).
    #[schema(example = "不良率超过3%")]
    pub name: String,
    /// The indicator watched: an `id` of `GET /v1/kpis`.
    #[schema(example = "npl_ratio")]
    pub kpi: String,
    pub comparator: Comparator,
    /// Decimal string in the indicator's unit: fen for money, a fraction of 1 for ratios,
    /// seconds for durations.
    #[schema(example = "0.03")]
    pub threshold: String,
    /// How long the condition must hold before the alert fires, in seconds (0..=604800; 0 fires
    /// at the first refresh that sees it). Default 0.
    #[serde(default)]
    pub for_secs: i64,
    /// Default `warning`.
    pub severity: Option<Severity>,
    /// Default true. A disabled rule is not evaluated.
    pub enabled: Option<bool>,
}

/// A silence: transitions are recorded and shown but not notified until `until`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceView {
    /// Microseconds since the Unix epoch.
    pub until: i64,
    /// Who silenced it (key or user name).
    pub by: String,
    pub reason: String,
}

/// A rule with its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRuleView {
    pub id: Uuid,
    pub name: String,
    pub kpi: String,
    pub kpi_name_zh: String,
    pub kpi_name_en: String,
    /// The indicator's unit: the threshold and values are in it.
    pub unit: Unit,
    pub comparator: Comparator,
    /// Decimal string.
    pub threshold: String,
    pub for_secs: i64,
    pub severity: Severity,
    pub enabled: bool,
    pub state: AlertState,
    /// When the state was entered (microseconds since the Unix epoch).
    pub state_since: i64,
    /// The indicator's value at the last transition.
    pub last_value: Option<String>,
    /// The indicator's latest value.
    pub current_value: Option<String>,
    /// Whether a silence is in force now.
    pub silenced: bool,
    /// The last silence set (also once it has ended), until lifted.
    pub silence: Option<SilenceView>,
    /// Bumped by every change.
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}

/// One transition of a rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEventView {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    pub kpi: String,
    pub from: AlertState,
    pub to: AlertState,
    /// The indicator's value that caused it (null for an edit).
    pub value: Option<String>,
    pub comparator: Comparator,
    pub threshold: String,
    pub severity: Severity,
    /// Recorded while silenced: not notified.
    pub silenced: bool,
    /// `evaluation` (a KPI refresh) or `edit` (a person changed or disabled the rule).
    pub cause: String,
    /// Microseconds since the Unix epoch.
    pub at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRuleList {
    pub rules: Vec<AlertRuleView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEventPage {
    /// Newest first.
    pub events: Vec<AlertEventView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

fn text(v: Decimal) -> String {
    v.normalize().to_string()
}

fn view(r: AlertRule, now: i64) -> AlertRuleView {
    let silenced = r.silenced_at(now);
    let d = kpi::definition(r.spec.kpi);
    AlertRuleView {
        id: r.id,
        name: r.spec.name,
        kpi: r.spec.kpi.as_str().into(),
        kpi_name_zh: d.name_zh.into(),
        kpi_name_en: d.name_en.into(),
        unit: d.unit,
        comparator: r.spec.comparator,
        threshold: text(r.spec.threshold),
        for_secs: r.spec.for_secs,
        severity: r.spec.severity,
        enabled: r.spec.enabled,
        state: r.state,
        state_since: r.state_since,
        last_value: r.last_value.map(text),
        current_value: r.current_value.map(text),
        silenced,
        silence: r.silence.map(|s| SilenceView { until: s.until, by: s.by, reason: s.reason }),
        version: r.version,
        created_at: r.created_at,
        created_by: r.created_by,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    }
}

fn event_view(e: AlertEvent) -> AlertEventView {
    AlertEventView {
        id: e.id,
        rule_id: e.rule_id,
        rule_name: e.rule_name,
        kpi: e.kpi,
        from: e.from,
        to: e.to,
        value: e.value.map(text),
        comparator: e.comparator,
        threshold: text(e.threshold),
        severity: e.severity,
        silenced: e.silenced,
        cause: e.cause.as_str().into(),
        at: e.at,
    }
}

fn spec(r: RuleRequest) -> Result<RuleSpec, ApiError> {
    let name = r.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_RULE_NAME || name.chars().any(char::is_control) {
        return Err(invalid(
            "invalid_rule",
            format!("name must be 1 to {MAX_RULE_NAME} characters without control characters"),
        ));
    }
    let kpi = KpiId::parse(&r.kpi)
        .ok_or_else(|| invalid("unknown_kpi", format!("no indicator {:?}; see GET /v1/kpis for the ids", r.kpi)))?;
    let threshold = kpi::alerts::parse_threshold(&r.threshold).ok_or_else(|| {
        invalid(
            "invalid_threshold",
            format!("threshold must be a decimal number such as \"0.03\", got {:?}", r.threshold),
        )
    })?;
    if !(0..=MAX_FOR_SECS).contains(&r.for_secs) {
        return Err(invalid(
            "invalid_rule",
            format!("for_secs must be between 0 and {MAX_FOR_SECS}, got {}", r.for_secs),
        ));
    }
    Ok(RuleSpec {
        name,
        kpi,
        comparator: r.comparator,
        threshold,
        for_secs: r.for_secs,
        severity: r.severity.unwrap_or(Severity::Warning),
        enabled: r.enabled.unwrap_or(true),
    })
}

/// Every alert rule with its state and its indicator's latest value
#[utoipa::path(get, path = "/v1/kpi-alerts/rules", tag = "kpis",
    responses((status = 200, body = AlertRuleList)), security(("api_key" = [])))]
pub async fn list_rules(State(state): State<AppState>) -> Result<Json<AlertRuleList>, ApiError> {
    let now = state.kpis.now();
    let rules = state.kpis.alerts().list().await?;
    Ok(Json(AlertRuleList { rules: rules.into_iter().map(|r| view(r, now)).collect() }))
}

/// One alert rule
#[utoipa::path(get, path = "/v1/kpi-alerts/rules/{id}", tag = "kpis", params(("id" = Uuid, Path)),
    responses((status = 200, body = AlertRuleView), (status = 404, description = "alert_rule_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_rule(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AlertRuleView>, ApiError> {
    Ok(Json(view(state.kpis.alerts().get(id).await?, state.kpis.now())))
}

/// Creates an alert rule (state normal; the next KPI refresh evaluates it)
#[utoipa::path(post, path = "/v1/kpi-alerts/rules", tag = "kpis", request_body = RuleRequest,
    responses((status = 201, body = AlertRuleView),
        (status = 422, description = "invalid_rule, unknown_kpi, invalid_threshold, invalid_request", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<RuleRequest>,
) -> Result<(StatusCode, Json<AlertRuleView>), ApiError> {
    let now = state.kpis.now();
    let rule = state.kpis.alerts().create(spec(r)?, &caller.name, now).await?;
    tracing::info!(rule = %rule.id, kpi = rule.spec.kpi.as_str(), by = %caller.key_id, "KPI alert rule created");
    Ok((StatusCode::CREATED, Json(view(rule, now))))
}

/// Replaces an alert rule's settings
///
/// A change of the indicator, comparator, threshold, duration or `enabled` starts the alert
/// again from normal (a transition with cause `edit` when it was not normal); the next KPI
/// refresh evaluates the new condition.
#[utoipa::path(put, path = "/v1/kpi-alerts/rules/{id}", tag = "kpis", params(("id" = Uuid, Path)), request_body = RuleRequest,
    responses((status = 200, body = AlertRuleView), (status = 404, description = "alert_rule_not_found", body = ErrorBody),
        (status = 409, description = "alert_rule_changed", body = ErrorBody),
        (status = 422, description = "invalid_rule, unknown_kpi, invalid_threshold, invalid_request", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<RuleRequest>,
) -> Result<Json<AlertRuleView>, ApiError> {
    let now = state.kpis.now();
    let rule = state.kpis.alerts().update(id, spec(r)?, &caller.name, now).await?;
    tracing::info!(rule = %id, by = %caller.key_id, "KPI alert rule changed");
    Ok(Json(view(rule, now)))
}

/// Deletes an alert rule (its history stays)
#[utoipa::path(delete, path = "/v1/kpi-alerts/rules/{id}", tag = "kpis", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "alert_rule_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.kpis.alerts().delete(id).await?;
    tracing::info!(rule = %id, by = %caller.key_id, "KPI alert rule deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// Until when (microseconds since the Unix epoch): in the future, at most 90 days ahead.
    pub until: i64,
    /// Why (1..=500 characters).
    pub reason: String,
}

/// Silences an alert rule until a time: its transitions are still recorded, not notified
#[utoipa::path(post, path = "/v1/kpi-alerts/rules/{id}/silence", tag = "kpis", params(("id" = Uuid, Path)),
    request_body = SilenceRequest,
    responses((status = 200, body = AlertRuleView), (status = 404, description = "alert_rule_not_found", body = ErrorBody),
        (status = 422, description = "invalid_silence, invalid_request", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn silence_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<SilenceRequest>,
) -> Result<Json<AlertRuleView>, ApiError> {
    let now = state.kpis.now();
    if r.until <= now || r.until > now + MAX_SILENCE_MICROS {
        return Err(invalid("invalid_silence", "until must be in the future and at most 90 days ahead"));
    }
    let reason = r.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(invalid("invalid_silence", format!("reason must be 1 to {MAX_REASON} characters")));
    }
    let silence = Silence { until: r.until, by: caller.name.clone(), reason };
    let rule = state.kpis.alerts().silence(id, Some(silence), &caller.name, now).await?;
    tracing::info!(rule = %id, until = r.until, by = %caller.key_id, "KPI alert rule silenced");
    Ok(Json(view(rule, now)))
}

/// Lifts an alert rule's silence
#[utoipa::path(delete, path = "/v1/kpi-alerts/rules/{id}/silence", tag = "kpis", params(("id" = Uuid, Path)),
    responses((status = 200, body = AlertRuleView), (status = 404, description = "alert_rule_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn unsilence_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AlertRuleView>, ApiError> {
    let now = state.kpis.now();
    let rule = state.kpis.alerts().silence(id, None, &caller.name, now).await?;
    tracing::info!(rule = %id, by = %caller.key_id, "KPI alert rule silence lifted");
    Ok(Json(view(rule, now)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only this rule's transitions.
    pub rule: Option<Uuid>,
    /// Only transitions into this state: `normal`, `pending`, `firing` or `resolved`.
    pub state: Option<String>,
    /// The `id` of the last event of the previous page.
    pub before: Option<Uuid>,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
}

/// The history of alert transitions, newest first
#[utoipa::path(get, path = "/v1/kpi-alerts/events", tag = "kpis", params(EventQuery),
    responses((status = 200, body = AlertEventPage), (status = 422, description = "invalid_state, parameter_out_of_range", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<AlertEventPage>, ApiError> {
    let limit = page_limit("limit", q.limit, 50, 500)?;
    let to = match q.state.as_deref() {
        None => None,
        Some(s) => Some(AlertState::parse(s).ok_or_else(|| {
            invalid("invalid_state", format!("state must be normal, pending, firing or resolved, got {s:?}"))
        })?),
    };
    let events = state.kpis.alerts().events(q.rule, to, q.before, limit).await?;
    let next_before = (events.len() == limit as usize).then(|| events.last().map(|e| e.id)).flatten();
    Ok(Json(AlertEventPage { events: events.into_iter().map(event_view).collect(), next_before }))
}
