//! Process intelligence (issue 15): the bank's process event log and imported logs, exported
//! as OCEL 2.0 or XES, imported from CSV or XES, and mined (directly-follows graph, variants,
//! bottlenecks, rework, SLA, value stream). Handlers translate; the work is in
//! `process_platform` and the pure `process` crate.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use process::csv_import::CsvMapping;
use process::mining::{Analysis, Dfg, SlaSpec};
use process::{Filter, Process, ProcessError};
use process_platform::{LogInfo, LogSource, ProcessPlatformError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{bounded, page_limit, ApiQuery};
use crate::AppState;

impl From<ProcessPlatformError> for ApiError {
    fn from(e: ProcessPlatformError) -> Self {
        match e {
            ProcessPlatformError::Process(ProcessError::Malformed { line, message }) => {
                let mut err =
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "malformed_log", format!("line {line}: {message}"));
                err.details = Some(serde_json::json!({ "line": line }));
                err
            }
            ProcessPlatformError::Process(e @ ProcessError::Invalid(_)) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_log", e.to_string())
            }
            ProcessPlatformError::Process(e @ ProcessError::TooLarge { .. }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "work_budget_exceeded", e.to_string())
            }
            ProcessPlatformError::NotFound(what, id) => ApiError::not_found(format!("{what} {id} not found")),
            other => ApiError::internal(other),
        }
    }
}

/// Which log, and which of its cases.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// One of the bank's processes: `loan_origination` (default), `customer_onboarding`,
    /// `risk_case`, `transfer_hold`.
    pub process: Option<String>,
    /// An imported log's id instead of a process of the bank.
    pub log: Option<String>,
    /// Cases with an event of this product.
    pub product: Option<String>,
    /// Cases with an event from this channel.
    pub channel: Option<String>,
    /// Cases with an event of this outcome (`approve`, `review`, `decline`, `approved`, ...).
    pub outcome: Option<String>,
    /// Cases one of whose events this resource (`system`, `customer`, a staff id) performed.
    pub resource: Option<String>,
    /// Cases that started at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Cases that started before this time (RFC 3339).
    pub to: Option<String>,
    /// `ocel` (default) or `xes` (export only).
    pub format: Option<String>,
    /// Entries per list (variants, bottlenecks, breaches): 1..=200, default 20 (analysis only).
    pub limit: Option<u32>,
    /// Service level in minutes from the case's start to its decision: 1..=43200 (analysis
    /// only; default: the process's own, 10 minutes for loan origination).
    pub sla_minutes: Option<u32>,
}

fn time(name: &str, value: &Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v).map(|t| t.timestamp_micros()).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_parameter",
                    format!("{name} must be an RFC 3339 date-time, got {v:?}"),
                )
            })
        })
        .transpose()
}

fn source_and_filter(q: &LogQuery) -> Result<(LogSource, Filter), ApiError> {
    let source = match (&q.process, &q.log) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameter",
                "give either process or log, not both",
            ))
        }
        (_, Some(log)) => LogSource::Imported(log.clone()),
        (p, None) => {
            let name = p.as_deref().unwrap_or("loan_origination");
            LogSource::Live(Process::parse(name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_process",
                    format!("unknown process {name:?}: one of {}", Process::ALL.map(Process::as_str).join(", ")),
                )
            })?)
        }
    };
    let filter = Filter {
        product: q.product.clone(),
        channel: q.channel.clone(),
        outcome: q.outcome.clone(),
        resource: q.resource.clone(),
        from: time("from", &q.from)?,
        to: time("to", &q.to)?,
    };
    if let (Some(f), Some(t)) = (filter.from, filter.to) {
        if f >= t {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameter", "from must be before to"));
        }
    }
    Ok((source, filter))
}

/// Events logged per process of the bank.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessCount {
    pub process: String,
    pub events: i64,
}

/// The logs there are to analyse.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogOverview {
    pub processes: Vec<ProcessCount>,
    /// Logs imported from other systems, newest first.
    pub imported: Vec<LogInfo>,
}

/// The logs: the bank's processes with their event counts, and the imported logs
#[utoipa::path(get, path = "/v1/process/logs", tag = "process",
    responses((status = 200, body = LogOverview)), security(("api_key" = [])))]
pub async fn list_logs(State(state): State<AppState>) -> Result<Json<LogOverview>, ApiError> {
    let counts = state.process.store().counts().await?;
    let processes = Process::ALL
        .iter()
        .map(|p| ProcessCount {
            process: p.as_str().to_string(),
            events: counts.iter().find(|(n, _)| n == p.as_str()).map_or(0, |(_, c)| *c),
        })
        .collect();
    Ok(Json(LogOverview { processes, imported: state.process.store().logs().await? }))
}

/// How to read an imported file.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// A name for the log (1..200 characters).
    pub name: String,
    /// `csv` or `xes`.
    pub format: String,
    /// CSV: the column of the case id.
    pub case: Option<String>,
    /// CSV: the column of the activity.
    pub activity: Option<String>,
    /// CSV: the column of the (completion) timestamp: RFC 3339 or `YYYY-MM-DD HH:MM:SS` (UTC).
    pub timestamp: Option<String>,
    /// CSV: the column of the start timestamp (gives the service time).
    pub start_timestamp: Option<String>,
    pub resource: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub outcome: Option<String>,
    /// CSV: the column of an amount in minor units.
    pub amount_minor: Option<String>,
    /// CSV: the column of a cost in minor units.
    pub cost_minor: Option<String>,
}

/// Import a log of another system (CSV with a column mapping, or XES)
///
/// The body is the file (UTF-8, at most 8 MiB, at most 200,000 events). It is read whole
/// before anything is stored, and stored in one transaction: a malformed file is 422
/// `malformed_log` naming the line, and nothing is imported.
#[utoipa::path(post, path = "/v1/process/logs", tag = "process", params(ImportQuery),
    request_body(content = String, content_type = "text/plain", description = "The CSV (with a header row) or XES file"),
    responses((status = 201, body = LogInfo), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn import_log(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<LogInfo>), ApiError> {
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "malformed_log", format!("the file is not UTF-8: {e}"))
    })?;
    let info = match q.format.as_str() {
        "xes" => state.process.import_xes(&q.name, text).await?,
        "csv" => {
            let required = |name: &str, v: Option<String>| {
                v.ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_parameter",
                        format!("a CSV import needs the {name} column"),
                    )
                })
            };
            let mapping = CsvMapping {
                case: required("case", q.case)?,
                activity: required("activity", q.activity)?,
                timestamp: required("timestamp", q.timestamp)?,
                start_timestamp: q.start_timestamp,
                resource: q.resource,
                product: q.product,
                channel: q.channel,
                outcome: q.outcome,
                amount_minor: q.amount_minor,
                cost_minor: q.cost_minor,
            };
            state.process.import_csv(&q.name, text, &mapping).await?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameter",
                format!("format must be csv or xes, got {other:?}"),
            ))
        }
    };
    storage::audit::set_resource(&info.id);
    Ok((StatusCode::CREATED, Json(info)))
}

/// Export a log as OCEL 2.0 JSON or XES
///
/// For other process-mining tools. Cases are filtered like every analysis; a log above the
/// work budget (1,000,000 events) is 422 `work_budget_exceeded`: narrow the window.
#[utoipa::path(get, path = "/v1/process/export", tag = "process", params(LogQuery),
    responses((status = 200, description = "OCEL 2.0 JSON (`application/json`) or XES (`application/xml`)", body = Object),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn export(State(state): State<AppState>, ApiQuery(q): ApiQuery<LogQuery>) -> Result<Response, ApiError> {
    let (source, filter) = source_and_filter(&q)?;
    match q.format.as_deref().unwrap_or("ocel") {
        "ocel" => Ok(Json(state.process.export_ocel(&source, &filter).await?).into_response()),
        "xes" => {
            let xml = state.process.export_xes(&source, &filter).await?;
            Ok(([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response())
        }
        other => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_parameter",
            format!("format must be ocel or xes, got {other:?}"),
        )),
    }
}

/// The directly-follows graph
///
/// Activities with their frequency, waiting and service times (mean, median, p95, in
/// microseconds), and edges `from → to` with their frequency and the time between the two.
#[utoipa::path(get, path = "/v1/process/dfg", tag = "process", params(LogQuery),
    responses((status = 200, body = Dfg), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn dfg(State(state): State<AppState>, ApiQuery(q): ApiQuery<LogQuery>) -> Result<Json<Dfg>, ApiError> {
    let (source, filter) = source_and_filter(&q)?;
    Ok(Json(state.process.dfg(&source, &filter).await?))
}

/// Variants, bottlenecks, rework, SLA breaches and value-stream figures
///
/// Bottlenecks rank activities by the waiting before them (mean waiting × frequency); rework
/// lists activities cases repeated; the SLA counts the cases decided later than the service
/// level; the value stream gives lead time, value-added time and process cycle efficiency.
#[utoipa::path(get, path = "/v1/process/analysis", tag = "process", params(LogQuery),
    responses((status = 200, body = Analysis), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn analysis(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<Analysis>, ApiError> {
    let (source, filter) = source_and_filter(&q)?;
    let limit = page_limit("limit", q.limit, 20, 200)?;
    let sla = match q.sla_minutes {
        None => None,
        Some(m) => {
            let minutes = i64::from(bounded("sla_minutes", m, 1, 43_200)?);
            let base = match &source {
                LogSource::Live(p) => process_platform::default_sla(*p),
                LogSource::Imported(_) => None,
            };
            base.map(|s| SlaSpec { limit_micros: minutes * 60_000_000, ..s })
        }
    };
    Ok(Json(state.process.analyse(&source, &filter, sla, limit as usize).await?))
}

/// One case's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseEvents {
    pub process: String,
    pub case_id: String,
    pub events: Vec<CaseEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseEvent {
    pub activity: String,
    /// UTC microseconds.
    pub at: i64,
    pub resource: String,
    pub attributes: process::Attributes,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// The process (default `loan_origination`).
    pub process: Option<String>,
}

/// The events of one case of the bank's log, in order
#[utoipa::path(get, path = "/v1/process/cases/{id}", tag = "process", params(("id" = String, Path), CaseQuery),
    responses((status = 200, body = CaseEvents), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn case_events(
    State(state): State<AppState>,
    crate::extract::ApiPath(id): crate::extract::ApiPath<String>,
    ApiQuery(q): ApiQuery<CaseQuery>,
) -> Result<Json<CaseEvents>, ApiError> {
    let query = LogQuery { process: q.process, ..LogQuery::default() };
    let (LogSource::Live(p), _) = source_and_filter(&query)? else {
        return Err(ApiError::internal("a process query named a log"));
    };
    let events = state.process.store().case_events(p.as_str(), &id).await?;
    if events.is_empty() {
        return Err(ApiError::not_found(format!("no {} case {id}", p.as_str())));
    }
    Ok(Json(CaseEvents {
        process: p.as_str().to_string(),
        case_id: id,
        events: events
            .into_iter()
            .map(|e| CaseEvent { activity: e.activity, at: e.at, resource: e.resource, attributes: e.attributes })
            .collect(),
    }))
}
