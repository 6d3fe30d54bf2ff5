//! Maker-checker approvals: list, look at, approve (runs the held request as its maker),
//! reject. Seeing them needs `approvals_read`; deciding one also needs the permission of the
//! operation it holds, and approving needs a different identity than the maker.

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use utoipa::{IntoParams, ToSchema};

use access::approvals::{ApprovalResult, Identity};
use access::{Approval, ApprovalError, ApprovalStatus, CallerKind, RoleName};

use crate::approvals::Replay;
use crate::auth::{Caller, ClientIp};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        let (status, code) = match &e {
            ApprovalError::NotFound(_) => (StatusCode::NOT_FOUND, "approval_not_found"),
            ApprovalError::SamePerson => (StatusCode::CONFLICT, "maker_checker_same_person"),
            ApprovalError::Expired(_) => (StatusCode::CONFLICT, "approval_expired"),
            ApprovalError::AlreadyDecided { .. } => (StatusCode::CONFLICT, "approval_already_decided"),
            ApprovalError::Corrupt(_) | ApprovalError::Database(_) => return ApiError::internal(e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// `pending`, `approved`, `rejected` or `expired`; all when absent.
    pub status: Option<String>,
    /// The `id` of the last approval of the previous page (approvals come newest first).
    pub before: Option<String>,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalPage {
    pub approvals: Vec<Approval>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

/// One approval. A held request answers it with 202; approving answers it with the result of
/// the operation (secrets in it, like a new key, are shown in this answer only).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalAnswer {
    pub approval: Approval,
}

#[utoipa::path(get, path = "/v1/approvals", tag = "security", params(ApprovalQuery),
    responses((status = 200, body = ApprovalPage), (status = 422, description = "invalid_status", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_approvals(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ApprovalQuery>,
) -> Result<Json<ApprovalPage>, ApiError> {
    let limit = page_limit("limit", q.limit, 50, 500)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_status",
                format!("status must be pending, approved, rejected or expired, got {s:?}"),
            )
        })?),
    };
    let approvals = state.approvals.list(status, q.before.as_deref(), limit).await?;
    let next_before = (approvals.len() == limit as usize).then(|| approvals.last().map(|a| a.id.clone())).flatten();
    Ok(Json(ApprovalPage { approvals, next_before }))
}

#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "security", params(("id" = String, Path)),
    responses((status = 200, body = ApprovalAnswer), (status = 404, description = "approval_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_approval(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApprovalAnswer>, ApiError> {
    Ok(Json(ApprovalAnswer { approval: state.approvals.get(&id).await? }))
}

/// The maker as a caller, with the permissions their role grants now.
async fn maker(state: &AppState, approval: &Approval) -> Result<Caller, ApiError> {
    let kind = match approval.maker.kind.as_str() {
        "user" => CallerKind::User,
        _ => CallerKind::Key,
    };
    let id = uuid::Uuid::parse_str(&approval.maker.id).map_err(ApiError::internal)?;
    Ok(Caller {
        kind,
        key_id: id,
        name: approval.maker.name.clone(),
        role: RoleName(approval.maker.role.clone()),
        permissions: state.roles.permissions(&approval.maker.role).await?,
        session_id: None,
    })
}

#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "security", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Approved: the held request ran as its maker; `approval.result` is its answer \
            (status and body; a failed operation is still an approved, decided approval)", body = ApprovalAnswer),
        (status = 403, description = "forbidden: the checker lacks the permission of the held operation", body = ErrorBody),
        (status = 404, description = "approval_not_found", body = ErrorBody),
        (status = 409, description = "maker_checker_same_person: the checker is the maker (or an identity one made \
            for the other); approval_expired; approval_already_decided", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    checker: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApprovalAnswer>, ApiError> {
    let pending = state.approvals.decidable(&id).await?;
    if state.approvals.same_person(&pending, &checker).await? {
        return Err(ApprovalError::SamePerson.into());
    }
    checker.require(pending.permission)?;
    let maker = maker(&state, &pending).await?;
    let approved = state.approvals.approve(&id, &checker).await?;
    tracing::info!(approval_id = %id, route = %approved.route, by = %checker.key_id, "approval granted");

    // Replay the held request through the same routes, as its maker.
    let mut request = axum::http::Request::builder().method(approved.method.as_str()).uri(approved.path.as_str());
    let body = match &approved.body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).map_err(ApiError::internal)?;
    request.extensions_mut().insert(Replay { approval_id: id.clone(), maker, checker: Identity::of(&checker) });
    if let Some(ip) = ip {
        request.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::new(ip, 0)));
    }
    let response = crate::router(state.clone()).oneshot(request).await.map_err(ApiError::internal)?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.map_err(ApiError::internal)?;
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let mut approval = state.approvals.record_result(&id, status, &body).await?;
    // This answer (only) shows the operation's whole result, secrets included.
    approval.result = Some(ApprovalResult { status, body });
    Ok(Json(ApprovalAnswer { approval }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// Why (at most 2000 bytes).
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/v1/approvals/{id}/reject", tag = "security", params(("id" = String, Path)),
    request_body = Rejection,
    responses(
        (status = 200, description = "Rejected: the held request will never run. The maker may reject (withdraw) \
            their own request", body = ApprovalAnswer),
        (status = 403, description = "forbidden: the caller lacks the permission of the held operation", body = ErrorBody),
        (status = 404, description = "approval_not_found", body = ErrorBody),
        (status = 409, description = "approval_expired, approval_already_decided", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    checker: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Rejection>,
) -> Result<Json<ApprovalAnswer>, ApiError> {
    if body.note.as_ref().is_some_and(|n| n.len() > 2000) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_note", "note must be at most 2000 bytes"));
    }
    let pending = state.approvals.decidable(&id).await?;
    checker.require(pending.permission)?;
    let approval = state.approvals.reject(&id, &checker, body.note.as_deref()).await?;
    tracing::info!(approval_id = %id, route = %approval.route, by = %checker.key_id, "approval rejected");
    Ok(Json(ApprovalAnswer { approval }))
}
