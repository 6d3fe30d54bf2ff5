//! Security alerts raised by the detectors over the audit trail: list, look at, acknowledge.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use access::{AlertError, SecurityAlert};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> Self {
        match e {
            AlertError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "alert_not_found", e.to_string()),
            AlertError::AlreadyAcknowledged(_) => {
                ApiError::new(StatusCode::CONFLICT, "alert_already_acknowledged", e.to_string())
            }
            AlertError::Audit(_) | AlertError::Database(_) => ApiError::internal(e),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `open` or `acknowledged`; all when absent.
    pub status: Option<String>,
    /// The `id` of the last alert of the previous page (alerts come newest first).
    pub before: Option<String>,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    pub alerts: Vec<SecurityAlert>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

#[utoipa::path(get, path = "/v1/security/alerts", tag = "security", params(AlertQuery),
    responses((status = 200, body = AlertPage), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> Result<Json<AlertPage>, ApiError> {
    let limit = page_limit("limit", q.limit, 50, 500)?;
    if let Some(status) = q.status.as_deref().filter(|s| !matches!(*s, "open" | "acknowledged")) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_status",
            format!("status must be open or acknowledged, got {status:?}"),
        ));
    }
    let alerts = state.alerts.list(q.status.as_deref(), q.before.as_deref(), limit).await?;
    let next_before = (alerts.len() == limit as usize).then(|| alerts.last().map(|a| a.id.clone())).flatten();
    Ok(Json(AlertPage { alerts, next_before }))
}

#[utoipa::path(get, path = "/v1/security/alerts/{id}", tag = "security", params(("id" = String, Path)),
    responses((status = 200, body = SecurityAlert), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_alert(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SecurityAlert>, ApiError> {
    Ok(Json(state.alerts.get(&id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// What was found and done (at most 2000 bytes).
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/v1/security/alerts/{id}/acknowledge", tag = "security", params(("id" = String, Path)),
    request_body = Acknowledgement,
    responses((status = 200, body = SecurityAlert), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn acknowledge_alert(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Acknowledgement>,
) -> Result<Json<SecurityAlert>, ApiError> {
    if body.note.as_ref().is_some_and(|n| n.len() > 2000) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_note", "note must be at most 2000 bytes"));
    }
    let by = caller.key_id.to_string();
    Ok(Json(state.alerts.acknowledge(&id, &by, body.note.as_deref()).await?))
}
