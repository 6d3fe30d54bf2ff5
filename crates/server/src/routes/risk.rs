//! Risk endpoints: decisions, rule sets (versioned, compile-checked, activated without restart,
//! backtested on stored decisions), lists with expiry, review cases, models and market risk.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use ledger::{TransferOutcome, TransferRequest};
use risk::market::{self, Portfolio, PriceHistory, StressScenario, VarConfig};
use risk::{EventKind, ListEntry, ListKind, ListSubject, RiskError, RiskEvent, Rule, RuleSet, ScoreThresholds};
use risk_platform::store::enum_text;
use risk_platform::{CaseStatus, RiskPlatformError, Screening};
pub use risk_platform::{CaseView, DecisionView, ResolvedCase};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{bounded, page_limit, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

fn unprocessable(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The one place risk errors become HTTP: bad input 422, unknown things 404, conflicts 409,
/// a saturated decision log 503 (with `Retry-After`), storage failures 500.
impl From<RiskPlatformError> for ApiError {
    fn from(e: RiskPlatformError) -> Self {
        use RiskPlatformError as E;
        match e {
            E::Engine(e) => engine_error(e),
            E::DecisionNotFound(_) | E::ModelNotFound(_) | E::ListEntryNotFound => ApiError::not_found(e.to_string()),
            E::InvalidRequest(m) => unprocessable("invalid_request", m),
            E::Rejected(view) => {
                let mut err = unprocessable("risk_rejected", E::Rejected(view.clone()).to_string());
                err.details = Some(serde_json::to_value(&*view).unwrap_or_default());
                err
            }
            E::Overloaded => {
                let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string());
                err.retry_after = Some(1);
                err
            }
            E::Ledger(e) => e.into(),
            E::Integrity { table, record, reason } => ApiError::integrity(table, &record, reason),
            E::DecisionLog(_) | E::Database(_) | E::Storage(_) | E::Corrupt(_) | E::Vault(_) => ApiError::internal(e),
        }
    }
}

impl From<RiskError> for ApiError {
    fn from(e: RiskError) -> Self {
        engine_error(e)
    }
}

/// Engine errors on bad input as precise 4xx responses.
fn engine_error(e: RiskError) -> ApiError {
    use RiskError::*;
    match e {
        MissingField { kind, field } => {
            let mut err = unprocessable("missing_field", format!("{kind} event is missing required field `{field}`"));
            err.details = Some(serde_json::json!({ "field": field, "kind": kind.as_str() }));
            err
        }
        InvalidField { field, reason } => unprocessable("invalid_field", format!("invalid field `{field}`: {reason}")),
        MalformedEvent(m) => unprocessable("invalid_event", m),
        InvalidExpression { rule, error } => {
            let mut err = unprocessable(
                "invalid_rule",
                format!("rule `{rule}`: {} at {}:{}", error.message, error.line, error.column),
            );
            err.position = Some(Box::new(crate::error::Position {
                line: error.line,
                column: error.column,
                offset: error.offset,
                end: error.end,
            }));
            err.details = Some(serde_json::json!({ "rule": rule }));
            err
        }
        InvalidRule { rule, reason } => {
            let mut err = unprocessable("invalid_rule", format!("rule `{rule}`: {reason}"));
            err.details = Some(serde_json::json!({ "rule": rule }));
            err
        }
        UnknownVersion(v) => ApiError::not_found(format!("no rule set version {v}")),
        VersionNotNewer { .. } => ApiError::new(StatusCode::CONFLICT, "version_conflict", e.to_string()),
        CaseNotFound(id) => ApiError::not_found(format!("no case {id}")),
        CaseAlreadyResolved(id) => {
            ApiError::new(StatusCode::CONFLICT, "case_already_resolved", format!("case {id} is already resolved"))
        }
        MarketData(m) => unprocessable("invalid_market_data", m),
        other @ (UnsupportedCondition(_) | Money(_)) => unprocessable("invalid_request", other.to_string()),
        Model(m) => ApiError::internal(m),
    }
}

/// Parses an event with precise errors: malformed JSON 400, unknown `kind` 422
/// `unknown_event_type`, a missing field 422 `missing_field`, anything else 422 `invalid_event`.
pub fn parse_event(body: &[u8]) -> Result<RiskEvent, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))?;
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    match value.get("kind") {
        Some(serde_json::Value::String(k)) if !kinds.contains(&k.as_str()) => {
            return Err(unprocessable(
                "unknown_event_type",
                format!("unknown event type {k:?}; expected one of {}", kinds.join(", ")),
            ));
        }
        Some(serde_json::Value::String(_)) => {}
        Some(_) => return Err(unprocessable("unknown_event_type", "`kind` must be a string")),
        None => {
            let mut e = unprocessable("missing_field", "event is missing required field `kind`");
            e.details = Some(serde_json::json!({ "field": "kind" }));
            return Err(e);
        }
    }
    let event: RiskEvent = serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        if let Some(field) = message.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            let mut err = unprocessable("missing_field", format!("event is missing required field `{field}`"));
            err.details = Some(serde_json::json!({ "field": field }));
            err
        } else {
            unprocessable("invalid_event", message)
        }
    })?;
    event.validate()?;
    Ok(event)
}

#[utoipa::path(post, path = "/v1/risk/decisions", tag = "risk",
    request_body(content = Object, description = "A risk event: event_id, kind (payment, transfer, login, loan_application, \
        account_opening), occurred_at, customer_id, channel, and per kind amount {minor, currency}, account_id, \
        counterparty_account, card_id, device_fingerprint, ip, geo {lat, lon, country}, merchant {id, mcc, country}, id_number, phone"),
    responses((status = 200, description = "allow / review / reject with score and reasons; stored before the response", body = DecisionView),
              (status = 400, description = "Malformed JSON", body = ErrorBody),
              (status = 422, description = "unknown_event_type, missing_field, invalid_field or invalid_event", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn decide(State(state): State<AppState>, body: Bytes) -> Result<Json<DecisionView>, ApiError> {
    let event = parse_event(&body)?;
    let view = state.risk.decide(&event, None).await?;
    state.metrics.risk_decisions.with_label_values(&[view.outcome.as_str()]).inc();
    Ok(Json(view))
}

#[utoipa::path(get, path = "/v1/risk/decisions/{id}", tag = "risk", params(("id" = Uuid, Path)),
    responses((status = 200, body = DecisionView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_decision(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DecisionView>, ApiError> {
    Ok(Json(state.risk.decision(id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct RuleSetSummary {
    pub version: u32,
    pub name: String,
    pub rules: usize,
    pub active: bool,
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RuleSetList {
    pub active_version: Option<u32>,
    pub rule_sets: Vec<RuleSetSummary>,
}

#[utoipa::path(get, path = "/v1/risk/rule-sets", tag = "risk",
    responses((status = 200, body = RuleSetList)), security(("api_key" = [])))]
pub async fn list_rule_sets(State(state): State<AppState>) -> Result<Json<RuleSetList>, ApiError> {
    let rules = &state.risk.engine.rules;
    let active = rules.active_version();
    let mut out = Vec::new();
    let mut v = 1;
    let latest = rules.latest_version().unwrap_or(0);
    while v <= latest {
        if let Some(set) = rules.get(v) {
            out.push(RuleSetSummary {
                version: v,
                name: set.name,
                rules: set.rules.len(),
                active: active == Some(v),
                created_at: set.created_at.timestamp_micros(),
            });
        }
        v += 1;
    }
    Ok(Json(RuleSetList { active_version: active, rule_sets: out }))
}

#[derive(Serialize, ToSchema)]
pub struct RuleSetView {
    pub active: bool,
    #[schema(value_type = Object)]
    pub rule_set: RuleSet,
}

#[utoipa::path(get, path = "/v1/risk/rule-sets/{version}", tag = "risk", params(("version" = u32, Path)),
    responses((status = 200, body = RuleSetView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_rule_set(
    State(state): State<AppState>,
    ApiPath(version): ApiPath<u32>,
) -> Result<Json<RuleSetView>, ApiError> {
    let rules = &state.risk.engine.rules;
    let set = rules.get(version).ok_or_else(|| ApiError::not_found(format!("no rule set version {version}")))?;
    Ok(Json(RuleSetView { active: rules.active_version() == Some(version), rule_set: set }))
}

/// A new rule set version. Conditions are `{"type": "expression", "source": "..."}` in the
/// `rules` expression language over the fields listed by `GET /v1/risk/schema`, or thresholds.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSetInput {
    #[serde(default = "default_set_name")]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub thresholds: Option<ScoreThresholds>,
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Rule>,
}

fn default_set_name() -> String {
    "fraud".into()
}

#[utoipa::path(post, path = "/v1/risk/rule-sets", tag = "risk", request_body = RuleSetInput,
    responses((status = 201, description = "Stored as the next version, not active", body = RuleSetView),
              (status = 422, description = "invalid_rule: `position` and `details.rule` point at the error; nothing is stored", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_rule_set(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<RuleSetInput>,
) -> Result<(StatusCode, Json<RuleSetView>), ApiError> {
    let set = state.risk.create_rule_set(input.name, input.thresholds, input.rules, Some(caller.key_id)).await?;
    tracing::info!(version = set.version, rules = set.rules.len(), by = %caller.key_id, "risk rule set stored");
    Ok((StatusCode::CREATED, Json(RuleSetView { active: false, rule_set: set })))
}

#[utoipa::path(post, path = "/v1/risk/rule-sets/{version}/activate", tag = "risk", params(("version" = u32, Path)),
    responses((status = 200, description = "Active from the next decision on", body = RuleSetView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn activate_rule_set(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(version): ApiPath<u32>,
) -> Result<Json<RuleSetView>, ApiError> {
    let set = state.risk.activate_rule_set(version).await?;
    tracing::info!(version, by = %caller.key_id, "risk rule set activated");
    Ok(Json(RuleSetView { active: true, rule_set: set }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BacktestInput {
    /// How many of the most recent stored decisions to replay (default 10,000, at most 1,000,000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Compare against this version instead of the active one.
    #[serde(default)]
    pub against: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct BacktestView {
    #[schema(value_type = Object)]
    pub report: risk::BacktestReport,
    /// `report.changes` lists at most this many events.
    pub changes_shown: usize,
}

#[utoipa::path(post, path = "/v1/risk/rule-sets/{version}/backtest", tag = "risk", params(("version" = u32, Path)),
    request_body(content = Option<BacktestInput>),
    responses((status = 200, description = "How the stored decisions would change under this version", body = BacktestView),
              (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn backtest_rule_set(
    State(state): State<AppState>,
    ApiPath(version): ApiPath<u32>,
    body: Bytes,
) -> Result<Json<BacktestView>, ApiError> {
    // The body is optional: empty (with or without a Content-Type) means the defaults.
    let input: BacktestInput = if body.iter().all(u8::is_ascii_whitespace) {
        BacktestInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                ApiError::bad_request("malformed_json", e.to_string())
            } else {
                unprocessable("invalid_request", e.to_string())
            }
        })?
    };
    let limit = bounded("limit", input.limit.unwrap_or(10_000), 1, 1_000_000)?;
    let mut report = state.risk.backtest(version, input.against, limit).await?;
    const SHOWN: usize = 100;
    report.changes.truncate(SHOWN);
    Ok(Json(BacktestView { report, changes_shown: SHOWN }))
}

#[derive(Serialize, ToSchema)]
pub struct SchemaView {
    /// Fields a rule expression may use, with type and meaning.
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<rules::Field>,
}

#[utoipa::path(get, path = "/v1/risk/schema", tag = "risk",
    responses((status = 200, description = "Fields available to rule expressions", body = SchemaView)), security(("api_key" = [])))]
pub async fn schema() -> Result<Json<SchemaView>, ApiError> {
    Ok(Json(SchemaView { fields: risk::expression_schema().fields().to_vec() }))
}

// ---- lists ----

#[derive(Serialize, ToSchema)]
pub struct ListEntryView {
    #[schema(example = "black")]
    pub kind: String,
    #[schema(example = "device")]
    pub subject: String,
    /// ID numbers and phones are masked unless the role may see personal data.
    pub value: String,
    pub reason: String,
    pub added_at: i64,
    pub expires_at: Option<i64>,
}

/// Values of sensitive subjects are masked by the classification catalogue.
fn entry_view(e: &ListEntry, perms: access::PermissionSet) -> ListEntryView {
    let sensitive = matches!(e.subject, ListSubject::IdNumber | ListSubject::Phone);
    ListEntryView {
        kind: enum_text(&e.kind),
        subject: enum_text(&e.subject),
        // ID numbers and phones are matched by their blind index; `display` holds the value.
        value: match e.display.as_deref().unwrap_or(&e.value) {
            v if sensitive => access::classification::mask("ListEntryView.value", perms, v).into_owned(),
            v => v.to_string(),
        },
        reason: e.reason.clone(),
        added_at: e.added_at.timestamp_micros(),
        expires_at: e.expires_at.map(|t| t.timestamp_micros()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// black, white or watch.
    kind: Option<String>,
    /// device, ip, id_number, account, phone or customer.
    subject: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ListEntries {
    pub count: usize,
    pub entries: Vec<ListEntryView>,
}

#[utoipa::path(get, path = "/v1/risk/lists", tag = "risk", params(ListQuery),
    responses((status = 200, description = "Live (unexpired) entries", body = ListEntries)), security(("api_key" = [])))]
pub async fn list_entries(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ListEntries>, ApiError> {
    let kind: Option<ListKind> = q.kind.as_deref().map(parse_param("kind")).transpose()?;
    let subject: Option<ListSubject> = q.subject.as_deref().map(parse_param("subject")).transpose()?;
    let now = state.risk.now();
    let perms = caller.permissions;
    let entries: Vec<ListEntryView> = state
        .risk
        .engine
        .lists
        .entries()
        .iter()
        .filter(|e| e.is_live(now) && kind.is_none_or(|k| e.kind == k) && subject.is_none_or(|s| e.subject == s))
        .map(|e| entry_view(e, perms))
        .collect();
    Ok(Json(ListEntries { count: entries.len(), entries }))
}

fn parse_param<T: serde::de::DeserializeOwned>(name: &'static str) -> impl Fn(&str) -> Result<T, ApiError> {
    move |text| {
        serde_json::from_value(serde_json::Value::String(text.to_string()))
            .map_err(|e| unprocessable("invalid_request", format!("{name}: {e}")))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    #[schema(value_type = String, example = "black")]
    pub kind: ListKind,
    #[schema(value_type = String, example = "device")]
    pub subject: ListSubject,
    pub value: String,
    pub reason: String,
    /// RFC 3339 expiry; or use `ttl_secs`. Neither = never expires.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

#[utoipa::path(post, path = "/v1/risk/lists", tag = "risk", request_body = ListInput,
    responses((status = 201, description = "Added or replaced", body = ListEntryView), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add_list_entry(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ListInput>,
) -> Result<(StatusCode, Json<ListEntryView>), ApiError> {
    if input.value.trim().is_empty() || input.value.len() > 256 {
        return Err(unprocessable("invalid_request", "value must be 1..=256 bytes"));
    }
    let now = state.risk.now();
    let expires_at = match (input.expires_at, input.ttl_secs) {
        (Some(_), Some(_)) => return Err(unprocessable("invalid_request", "give expires_at or ttl_secs, not both")),
        (Some(t), None) => Some(t),
        (None, Some(s)) => Some(now + chrono::Duration::seconds(bounded("ttl_secs", s, 1, 10 * 365 * 86_400)? as i64)),
        (None, None) => None,
    };
    if expires_at.is_some_and(|t| t <= now) {
        return Err(unprocessable("invalid_request", "expires_at must be in the future"));
    }
    let entry = ListEntry {
        kind: input.kind,
        subject: input.subject,
        value: input.value.trim().to_string(),
        display: None,
        reason: input.reason,
        added_at: now,
        expires_at,
    };
    let entry = state.risk.add_list_entry(entry).await?;
    Ok((StatusCode::CREATED, Json(entry_view(&entry, caller.permissions))))
}

#[utoipa::path(delete, path = "/v1/risk/lists/{kind}/{subject}/{value}", tag = "risk",
    params(("kind" = String, Path, description = "black, white or watch"),
           ("subject" = String, Path, description = "device, ip, id_number, account, phone or customer"),
           ("value" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_list_entry(
    State(state): State<AppState>,
    ApiPath((kind, subject, value)): ApiPath<(ListKind, ListSubject, String)>,
) -> Result<StatusCode, ApiError> {
    state.risk.delete_list_entry(kind, subject, &value).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- cases ----

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// open (default), resolved or all.
    #[param(value_type = Option<String>)]
    status: Option<CaseStatus>,
    /// Paging cursor: cases with ids after this one.
    after: Option<u64>,
    /// Page size 1..=1000 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct CaseList {
    pub cases: Vec<CaseView>,
    pub next_after: Option<u64>,
}

#[utoipa::path(get, path = "/v1/risk/cases", tag = "risk", params(CaseQuery),
    responses((status = 200, body = CaseList)), security(("api_key" = [])))]
pub async fn list_cases(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CaseQuery>,
) -> Result<Json<CaseList>, ApiError> {
    let limit = page_limit("limit", q.limit, 100, 1000)?;
    let cases = state.risk.cases(q.status.unwrap_or_default(), q.after.unwrap_or(0), limit).await?;
    let next_after = (cases.len() == limit as usize).then(|| cases.last().map(|c| c.id)).flatten();
    Ok(Json(CaseList { cases, next_after }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveInput {
    /// confirmed_fraud or false_positive.
    #[schema(value_type = String, example = "false_positive")]
    pub resolution: risk::Resolution,
    #[serde(default)]
    pub note: String,
}

#[utoipa::path(post, path = "/v1/risk/cases/{id}/resolve", tag = "risk", params(("id" = u64, Path)), request_body = ResolveInput,
    responses((status = 200, description = "Resolved; the resolution is a training label; a held transfer is posted or voided", body = ResolvedCase),
              (status = 404, body = ErrorBody), (status = 409, description = "case_already_resolved", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn resolve_case(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(input): ApiJson<ResolveInput>,
) -> Result<Json<ResolvedCase>, ApiError> {
    let resolved = state.risk.resolve_case(id, input.resolution, &caller.name, &input.note).await?;
    tracing::info!(case = id, by = %caller.key_id, "risk case resolved through the API");
    Ok(Json(resolved))
}

// ---- models ----

#[derive(Serialize, ToSchema)]
pub struct ModelView {
    pub active: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<ml::BinaryMetrics>,
    pub features: Vec<String>,
}

#[utoipa::path(get, path = "/v1/risk/model", tag = "risk",
    responses((status = 200, description = "The active model and its held-out metrics", body = ModelView)), security(("api_key" = [])))]
pub async fn get_model(State(state): State<AppState>) -> Result<Json<ModelView>, ApiError> {
    let m = state.risk.engine.model();
    Ok(Json(ModelView {
        active: m.as_ref().map(|m| format!("{}@{}", m.name, m.version)),
        metrics: m.as_ref().and_then(|m| m.metrics.clone()),
        features: m.map(|m| m.feature_names.clone()).unwrap_or_default(),
    }))
}

#[utoipa::path(post, path = "/v1/risk/model/reload", tag = "risk",
    responses((status = 200, description = "Loaded the latest stored artefact (e.g. after `digibank risk train`)", body = ModelView),
              (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn reload_model(State(state): State<AppState>) -> Result<Json<ModelView>, ApiError> {
    state.risk.reload_model().await?;
    get_model(State(state)).await
}

// ---- market risk ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VarInput {
    #[schema(value_type = Object)]
    pub portfolio: Portfolio,
    #[schema(value_type = Object)]
    pub history: PriceHistory,
    /// Default 0.99.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Default 1.
    #[serde(default)]
    pub horizon_days: Option<u32>,
    /// Stress scenarios applied to the latest prices.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub scenarios: Vec<StressScenario>,
    /// Record the historical VaR as the treasury positions' figure (the KPI `treasury_var_99`
    /// shows the latest one-day 99% one); needs risk admin. Default false: a what-if
    /// calculation stores nothing.
    #[serde(default)]
    pub record: bool,
}

#[derive(Serialize, ToSchema)]
pub struct VarView {
    #[schema(value_type = Object)]
    pub historical: market::VarReport,
    #[schema(value_type = Object)]
    pub parametric: market::VarReport,
    #[schema(value_type = Vec<Object>)]
    pub stress: Vec<market::StressResult>,
    /// The id of the stored report, when the request asked to `record` it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
}

#[utoipa::path(post, path = "/v1/risk/market/var", tag = "risk", request_body = VarInput,
    responses((status = 200, description = "Historical and parametric VaR / expected shortfall, stress results", body = VarView),
              (status = 422, description = "invalid_market_data", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn market_var(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<VarInput>,
) -> Result<Json<VarView>, ApiError> {
    if input.record {
        // Computing is a read; recording the treasury's figure is risk administration.
        caller.require(Permission::RiskAdmin)?;
    }
    let confidence = input.confidence.unwrap_or(0.99);
    if !(confidence > 0.5 && confidence < 1.0) {
        return Err(unprocessable("invalid_market_data", "confidence must be between 0.5 and 1 (exclusive)"));
    }
    let cfg = VarConfig {
        confidence,
        horizon_days: bounded("horizon_days", input.horizon_days.unwrap_or(1), 1, 250)?,
        ..VarConfig::default()
    };
    let historical = market::historical_var(&input.portfolio, &input.history, &cfg)?;
    let parametric = market::parametric_var(&input.portfolio, &input.history, &cfg)?;
    let latest: HashMap<String, f64> = input
        .history
        .instruments
        .iter()
        .cloned()
        .zip(input.history.prices.last().cloned().unwrap_or_default())
        .collect();
    let stress = input
        .scenarios
        .iter()
        .map(|s| market::stress_test(&input.portfolio, &latest, s, cfg.rounding))
        .collect::<Result<Vec<_>, _>>()?;
    let recorded = if input.record { Some(state.risk.record_var(&historical).await?) } else { None };
    Ok(Json(VarView { historical, parametric, stress, recorded }))
}

// ---- transfer screening ----

/// Screens a transfer whose `metadata.channel` is configured for screening (see
/// [`risk_platform::RiskService::screen_transfer`]) and counts the decision.
pub async fn screen_transfer(state: &AppState, request: &TransferRequest) -> Result<Screening, ApiError> {
    let screening = state.risk.screen_transfer(request).await;
    let outcome = match &screening {
        Ok(Screening::Allowed(v) | Screening::Review(v)) => Some(v.outcome),
        Err(RiskPlatformError::Rejected(v)) => Some(v.outcome),
        _ => None,
    };
    if let Some(o) = outcome {
        state.metrics.risk_decisions.with_label_values(&[o.as_str()]).inc();
    }
    Ok(screening?)
}

#[derive(Serialize, ToSchema)]
pub struct HeldForReview {
    /// Always `held_for_review`.
    pub status: String,
    /// The pending (two-phase) transfer holding the funds until the case is resolved.
    #[schema(value_type = Object)]
    pub transfer: ledger::Transfer,
    pub decision: DecisionView,
}

/// Submits a transfer the engine sent to review as a pending hold (202), or passes the
/// ledger's failure through.
pub async fn submit_held(
    state: &AppState,
    request: TransferRequest,
    decision: DecisionView,
) -> Result<Response, ApiError> {
    let outcome = state.risk.hold_for_review(request).await?;
    state.metrics.count_outcomes([&outcome]);
    Ok(match outcome {
        TransferOutcome::Created { transfer } | TransferOutcome::Replayed { transfer } => {
            (StatusCode::ACCEPTED, Json(HeldForReview { status: "held_for_review".into(), transfer, decision }))
                .into_response()
        }
        TransferOutcome::Failed { code, message, .. } => {
            ApiError::new(crate::error::transfer_error_status(code), code.code(), message).into_response()
        }
    })
}
