//! The audit trail for auditors: entries by actor, resource, action and time, a CSV export, and
//! a verification of the hash chain.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use access::classification;
use access::{AuditEntry, AuditFilter, AuditReport, PermissionSet};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiQuery};
use crate::AppState;

/// Largest CSV export in one call (continue with `after`).
const MAX_EXPORT_ROWS: u32 = 50_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An API key id or user id.
    pub actor: Option<String>,
    /// The object acted on (a customer, loan, account, transfer or decision id), or a route for
    /// actions on collections (`/v1/customers`).
    pub resource: Option<String>,
    /// `METHOD /route/{template}`, e.g. `PUT /v1/customers/{id}/kyc`.
    pub action: Option<String>,
    /// From this instant (inclusive, RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Before this instant (exclusive, RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The `id` of the last entry of the previous page.
    pub after: Option<i64>,
    /// Page size, 1..=1000 (default 100); for the CSV export 1..=50000 (default 10000).
    pub limit: Option<u32>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `key`, `user`, `system` or `anonymous`.
    pub actor_kind: String,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub resource: String,
    /// Shared by the entries of one request; returned to the client as `x-request-id`.
    pub request_id: String,
    pub step: i64,
    pub ip: Option<String>,
    /// `committed` (a change), `read` (personal data shown), `denied` (403), `unauthenticated` (401),
    /// `sign_in_failed`.
    pub outcome: String,
    /// Why, as the client stated it in the `X-Purpose` header.
    pub purpose: Option<String>,
    /// Position in the hash chain; absent until sealed (within seconds).
    pub chain_seq: Option<i64>,
}

/// The entry as a caller holding `perms` sees it, masked by the classification catalogue: the
/// JSON page and the CSV export are both made from this view, so they always agree.
fn entry_view(e: AuditEntry, perms: PermissionSet) -> AuditEntryView {
    let m = |field: &str, v: String| classification::mask(field, perms, &v).into_owned();
    AuditEntryView {
        id: e.id,
        at: DateTime::from_timestamp_micros(e.at).unwrap_or_default(),
        actor_kind: e.actor_kind,
        actor: m("AuditEntryView.actor", e.actor),
        role: e.role,
        action: e.action,
        resource: e.resource,
        request_id: e.request_id,
        step: e.step,
        ip: e.ip.map(|ip| m("AuditEntryView.ip", ip)),
        outcome: e.outcome,
        purpose: e.purpose,
        chain_seq: e.chain_seq,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

fn filter(q: AuditQuery, limit: u32) -> Result<AuditFilter, ApiError> {
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_time_window",
                "from must be before to",
            ));
        }
    }
    Ok(AuditFilter {
        actor: q.actor,
        resource: q.resource,
        action: q.action,
        from: q.from.map(|t| t.timestamp_micros()),
        to: q.to.map(|t| t.timestamp_micros()),
        after: q.after,
        limit,
    })
}

impl From<access::AuditError> for ApiError {
    fn from(e: access::AuditError) -> Self {
        ApiError::internal(e)
    }
}

#[utoipa::path(get, path = "/v1/audit", tag = "security", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_limit("limit", q.limit, 100, access::audit::MAX_AUDIT_PAGE)?;
    let entries = state.audit.query(&filter(q, limit)?).await?;
    let next_after = (entries.len() == limit as usize).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(|e| entry_view(e, caller.permissions)).collect(),
        next_after,
    }))
}

/// A CSV field: quoted when needed (RFC 4180), and a leading `= + - @` defused so a spreadsheet
/// never runs an entry as a formula.
fn csv_field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_string() };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[utoipa::path(get, path = "/v1/audit/export", tag = "security", params(AuditQuery),
    responses((status = 200, description = "CSV (RFC 4180) of the matching entries, oldest first; \
        the `x-next-after` header continues a cut-off export", content_type = "text/csv", body = String),
        (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn export_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let wanted = page_limit("limit", q.limit, 10_000, MAX_EXPORT_ROWS)?;
    let mut filter = filter(q, access::audit::MAX_AUDIT_PAGE)?;
    let mut out =
        String::from("id,at,actor_kind,actor,role,action,resource,request_id,step,ip,outcome,purpose,chain_seq\r\n");
    let mut written = 0u32;
    let mut last = None;
    while written < wanted {
        filter.limit = (wanted - written).min(access::audit::MAX_AUDIT_PAGE);
        let page = state.audit.query(&filter).await?;
        let full = page.len() == filter.limit as usize;
        for e in page.into_iter().map(|e| entry_view(e, caller.permissions)) {
            let row = [
                e.id.to_string(),
                e.at.to_rfc3339(),
                e.actor_kind,
                e.actor,
                e.role.unwrap_or_default(),
                e.action,
                e.resource,
                e.request_id,
                e.step.to_string(),
                e.ip.unwrap_or_default(),
                e.outcome,
                e.purpose.unwrap_or_default(),
                e.chain_seq.map(|s| s.to_string()).unwrap_or_default(),
            ];
            out.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
            written += 1;
            last = Some(e.id);
            filter.after = Some(e.id);
        }
        if !full {
            last = None;
            break;
        }
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"audit.csv\""),
        ],
        out,
    )
        .into_response();
    if let Some(after) = last.filter(|_| written == wanted) {
        response.headers_mut().insert("x-next-after", after.into());
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "security",
    responses((status = 200, description = "The chain was walked; `problems` is empty when it holds", body = AuditReport)),
    security(("api_key" = [])))]
pub async fn verify_audit(State(state): State<AppState>) -> Result<Json<AuditReport>, ApiError> {
    Ok(Json(state.audit.verify(|_| {}).await?))
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
