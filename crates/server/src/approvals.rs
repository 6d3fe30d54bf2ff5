//! Maker-checker at the HTTP edge, driven by the route table.
//!
//! Routes marked [`crate::FourEyes`] in [`crate::endpoints`] get the [`hold`] middleware, which
//! runs after the guard (the maker is authenticated and holds the route's permission) and the
//! rate limit, inside the request's audit scope, and before the handler: instead of running
//! the request it stores it as a pending approval (`access::approvals`) and answers 202
//! `{"approval": {...}}`. The audit entry of that insert names the maker, the action
//! `<METHOD> <route> [approval requested]` and the approval id as resource.
//!
//! `POST /v1/approvals/{id}/approve` (see `routes::approvals`) replays the stored request
//! through the router built from the same state, with a [`Replay`] extension: the guard then
//! takes the maker as caller (checking the maker's role still grants the permission) and the
//! hold lets it through. Its entries name the maker as actor and carry
//! `(approval <id>, checker <kind> <id>)` in the action. A client cannot set an extension, so
//! only the approval route can replay.

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use access::{Caller, NewApproval};

use crate::auth::Access;
use crate::error::ApiError;
use crate::{AppState, FourEyes};

/// The header a maker states the reason in (at most 500 bytes).
pub const REASON_HEADER: &str = "x-approval-reason";

/// Marks a replayed, approved request: run it as its maker.
#[derive(Debug, Clone)]
pub struct Replay {
    pub approval_id: String,
    pub maker: Caller,
    pub checker: access::approvals::Identity,
}

/// `POST /v1/api-keys` holds when the key would have the admin role.
pub fn issues_admin_key(body: &serde_json::Value) -> bool {
    body.get("role").and_then(serde_json::Value::as_str).is_some_and(|r| r.trim() == access::Role::Admin.as_str())
}

/// `PATCH /v1/users/{id}` holds when it changes the user's role.
pub fn changes_role(body: &serde_json::Value) -> bool {
    body.get("role").is_some()
}

/// State of one route's [`hold`].
#[derive(Clone)]
pub struct HoldState {
    pub app: AppState,
    pub access: Access,
    pub four_eyes: FourEyes,
}

/// Stores a sensitive request as a pending approval instead of running it (see the module).
pub async fn hold(State(hold): State<HoldState>, request: Request, next: Next) -> Response {
    let (Access::Needs(permission), true) = (hold.access, hold.app.approvals.enabled()) else {
        return next.run(request).await;
    };
    if request.extensions().get::<Replay>().is_some() || matches!(hold.four_eyes, FourEyes::Never) {
        return next.run(request).await;
    }
    let Some(maker) = request.extensions().get::<Caller>().cloned() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let route = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let bytes = match axum::body::to_bytes(body, crate::limits::body_limit(&route)).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large")
                .into_response()
        }
    };
    let json = if bytes.is_empty() { None } else { serde_json::from_slice::<serde_json::Value>(&bytes).ok() };
    let sensitive = match hold.four_eyes {
        FourEyes::Never => false,
        FourEyes::Always => true,
        FourEyes::When(predicate) => json.as_ref().is_some_and(predicate),
    };
    // Not sensitive, or a body that is not JSON (the handler explains what is wrong with it).
    if !sensitive || (!bytes.is_empty() && json.is_none()) {
        return next.run(Request::from_parts(parts, Body::from(bytes))).await;
    }
    let reason = match parts.headers.get(REASON_HEADER).map(|v| std::str::from_utf8(v.as_bytes())) {
        None => None,
        Some(Ok(r)) if r.len() <= 500 => Some(r.trim().to_string()).filter(|r| !r.is_empty()),
        Some(_) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_reason",
                "X-Approval-Reason must be UTF-8 text of at most 500 bytes",
            )
            .into_response()
        }
    };
    let id = uuid::Uuid::now_v7();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| parts.uri.path().into());
    storage::audit::set_resource(id.to_string());
    if let Some(context) = storage::audit::current() {
        storage::audit::set_action(format!("{} [approval requested]", context.action));
    }
    let new = NewApproval {
        id,
        method: parts.method.as_str(),
        path: &path,
        route: &route,
        body: json.as_ref(),
        permission,
        maker: &maker,
        reason: reason.as_deref(),
    };
    match hold.app.approvals.request(new).await {
        Ok(approval) => {
            tracing::info!(approval_id = %approval.id, route = %route, by = %maker.key_id, "approval requested");
            (StatusCode::ACCEPTED, Json(serde_json::json!({ "approval": approval }))).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
