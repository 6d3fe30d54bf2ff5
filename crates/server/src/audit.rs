//! The audit trail at the HTTP edge: the [`crate::auth::guard`] runs every authorised request
//! inside an audit scope naming the caller, the route and the object, so each unit of work the
//! request commits writes its entry in its own transaction (see `storage::audit`). Reads of
//! personal data and refused requests commit nothing, so they are queued to the recorder.
//! Every response carries the request's id (`x-request-id`), the key auditors search by.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use storage::audit::AuditContext;

use crate::auth::Caller;
use crate::AppState;

/// Path parameters that name one object; the entry's resource is their value. Other parameters
/// (a risk list's value can be a phone number) never reach the trail: the route is used instead.
const IDENTIFYING_PARAMS: [&str; 3] = ["{id}", "{version}", "{decision_id}"];

/// Routes whose successful GET shows personal data: each read is an entry.
const PERSONAL_DATA_ROUTES: [&str; 6] = [
    "/v1/customers",
    "/v1/lending/applications",
    "/v1/lending/loans",
    "/v1/lending/review-queue",
    "/v1/risk/decisions",
    "/v1/risk/cases",
];

fn route(parts: &Parts) -> String {
    parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string())
}

/// The object a request acts on: the value of its identifying path parameter, else its route.
fn resource(template: &str, path: &str) -> String {
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| IDENTIFYING_PARAMS.contains(t))
        .map(|(_, value)| percent_decoded(value))
        .unwrap_or_else(|| template.to_string())
}

fn percent_decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn client_ip(parts: &Parts) -> Option<String> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

/// (kind, id, role) of a caller as the trail records it.
fn actor(caller: &Caller) -> (String, String, Option<String>) {
    let role = Some(caller.role.as_str().to_string()).filter(|r| !r.is_empty());
    (caller.kind.as_str().to_string(), caller.key_id.to_string(), role)
}

fn anonymous() -> (String, String, Option<String>) {
    ("anonymous".to_string(), "anonymous".to_string(), None)
}

/// Runs a public request that changes something (signing in) inside an audit scope with an
/// anonymous actor: a session it opens commits with its entry (whose resource names the user).
/// A refused sign-in (401, or 429 when throttled) is recorded as `sign_in_failed` with the
/// client address, which the failed-authentication alert counts.
pub async fn public(state: &AppState, parts: Parts, body: axum::body::Body, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let context = context(state, &parts, anonymous(), &request_id);
    let response = storage::audit::scope(context.clone(), next.run(Request::from_parts(parts, body))).await;
    let status = response.status().as_u16();
    if matches!(status, 401 | 429) {
        state.audit_recorder.record(context, "sign_in_failed").await;
    }
    with_request_id(response, &request_id)
}

fn context(state: &AppState, parts: &Parts, actor: (String, String, Option<String>), request_id: &str) -> AuditContext {
    let template = route(parts);
    let (actor_kind, actor, role) = actor;
    AuditContext {
        at: state.ledger.now(),
        actor_kind,
        actor,
        role,
        action: format!("{} {template}", parts.method),
        resource: resource(&template, parts.uri.path()),
        request_id: request_id.to_string(),
        ip: client_ip(parts),
        purpose: purpose(parts),
    }
}

/// The longest `X-Purpose` kept.
const MAX_PURPOSE: usize = 200;

/// The request's stated purpose (`X-Purpose`), control characters dropped, at most
/// [`MAX_PURPOSE`] characters.
fn purpose(parts: &Parts) -> Option<String> {
    let raw = parts.headers.get("x-purpose")?;
    let text = String::from_utf8_lossy(raw.as_bytes());
    let clean: String = text.chars().filter(|c| !c.is_control()).take(MAX_PURPOSE).collect();
    Some(clean.trim().to_string()).filter(|p| !p.is_empty())
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Runs an authorised request inside its audit scope; records a read of personal data.
pub async fn run(state: &AppState, caller: &Caller, parts: Parts, body: axum::body::Body, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    if !state.audit_trail {
        let response = storage::audit::unaudited(next.run(Request::from_parts(parts, body))).await;
        return with_request_id(response, &request_id);
    }
    let mut context = context(state, &parts, actor(caller), &request_id);
    if let Some(replay) = parts.extensions.get::<crate::approvals::Replay>() {
        // The maker's request, run now that a checker approved it.
        context.action = format!(
            "{} (approval {}, checker {} {})",
            context.action, replay.approval_id, replay.checker.kind, replay.checker.id
        );
    }
    let reads_personal_data = parts.method == Method::GET
        && PERSONAL_DATA_ROUTES.iter().any(|r| context.action[4..].starts_with(r))
        && !context.action.ends_with("/churn-risk");
    let scoped = context.clone();
    let response = storage::audit::scope(scoped, next.run(Request::from_parts(parts, body))).await;
    if reads_personal_data && response.status().is_success() {
        state.audit_recorder.record(context, "read").await;
    }
    with_request_id(response, &request_id)
}

/// Runs a request of a partner or a customer (open banking) inside its audit scope, `purpose`
/// the consent it uses. Every successful read is recorded: all of these show customer data.
pub async fn run_as(
    state: &AppState,
    actor: (String, String, Option<String>),
    purpose: Option<String>,
    parts: Parts,
    body: axum::body::Body,
    next: Next,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    if !state.audit_trail {
        let response = storage::audit::unaudited(next.run(Request::from_parts(parts, body))).await;
        return with_request_id(response, &request_id);
    }
    let mut context = context(state, &parts, actor, &request_id);
    if purpose.is_some() {
        context.purpose = purpose;
    }
    let reads = parts.method == Method::GET;
    let response = storage::audit::scope(context.clone(), next.run(Request::from_parts(parts, body))).await;
    if reads && response.status().is_success() {
        state.audit_recorder.record(context, "read").await;
    }
    with_request_id(response, &request_id)
}

/// Records a refused request of an identified actor that is not a staff caller (a partner
/// whose token lacks the scope).
pub async fn refused_as(
    state: &AppState,
    actor: (String, String, Option<String>),
    parts: &Parts,
    response: Response,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    state.audit_recorder.record(context(state, parts, actor, &request_id), "denied").await;
    with_request_id(response, &request_id)
}

/// Records a refused request (`denied`: authenticated without the permission;
/// `unauthenticated`: no valid credentials) and passes the refusal on.
pub async fn refused(state: &AppState, caller: Option<&Caller>, parts: &Parts, response: Response) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (actor, outcome) = match caller {
        Some(c) => (actor(c), "denied"),
        None => (anonymous(), "unauthenticated"),
    };
    state.audit_recorder.record(context(state, parts, actor, &request_id), outcome).await;
    with_request_id(response, &request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_identifying_parameters_or_the_route() {
        assert_eq!(resource("/v1/customers/{id}/kyc", "/v1/customers/C-1/kyc"), "C-1");
        assert_eq!(resource("/v1/customers", "/v1/customers"), "/v1/customers");
        assert_eq!(
            resource("/v1/risk/lists/{kind}/{subject}/{value}", "/v1/risk/lists/black/phone/13800138000"),
            "/v1/risk/lists/{kind}/{subject}/{value}",
            "list values may be personal data and never reach the trail"
        );
        assert_eq!(
            resource("/v1/lending/review-queue/{decision_id}/approve", "/v1/lending/review-queue/D%2D1/approve"),
            "D-1"
        );
    }
}
