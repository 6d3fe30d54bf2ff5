//! Authentication and authorization at the HTTP edge.
//!
//! Every endpoint declares its [`Access`] in the route table (`crate::endpoints`). The
//! [`guard`] middleware runs before the handler and before its body or query is parsed: it
//! turns `Authorization: Bearer <api key>` into an [`access::Caller`], refuses a caller whose
//! role lacks the endpoint's permission (403 naming the permission) and hands the caller to the
//! handler through the request's extensions. A caller without the permission therefore learns
//! nothing about the endpoint's input (an invalid body from such a caller is 403, never a 422
//! naming fields). Keys, roles and permissions themselves live in the `access` crate.
//!
//! Credentials: `Authorization: Bearer dbk_...` (an API key, checked against its expiry and IP
//! allow-list with the client address from `ConnectInfo`), `Authorization: Bearer dbs_...` (a
//! staff session) or the session cookie [`SESSION_COOKIE`] (the web cockpit).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use access::AccessError;
pub use access::{Caller, CallerKind, IssuedKey, Permission, Role};

use crate::error::ApiError;
use crate::AppState;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health, the API document and explorer).
    Public,
    /// An authenticated caller whose role grants this permission.
    Needs(Permission),
    /// Any authenticated caller, whatever its role (its own sessions, signing out).
    Signed,
    /// A partner's open-banking access token (`/open-banking/v1/...`) with this scope.
    Partner(&'static str),
    /// A customer's consent-dashboard token (`/open-banking/customer/...`).
    Customer,
}

/// The partner behind an open-banking request, as its access token proved.
#[derive(Debug, Clone)]
pub struct PartnerCaller {
    pub claims: openbank_platform::AccessClaims,
    pub partner: openbank_platform::Partner,
}

/// The customer behind a consent-dashboard request.
#[derive(Debug, Clone)]
pub struct CustomerCaller(pub String);

/// The bearer token of a request, or the 401 of RFC 6750.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid_token("missing Authorization: Bearer <access token>"))
}

fn invalid_token(message: &str) -> ApiError {
    let mut error = ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_token", message);
    error.www_authenticate = Some("Bearer error=\"invalid_token\"".into());
    error
}

/// Authenticates a partner's access token (our signature, unexpired, partner active) and
/// checks its scope; runs the request in an audit scope naming the partner, with the consent
/// the token is bound to as its purpose.
/// `Access::Partner(ANY_SCOPE)`: any of the partner's tokens will do (its own webhooks).
pub const ANY_SCOPE: &str = "*";

async fn partner_guard(state: &AppState, scope: &'static str, request: Request, next: Next) -> Response {
    // FAPI: the partner's `x-fapi-interaction-id` is echoed (one is made when it sends none or
    // an unusable one), on refusals too, so both sides can correlate a call.
    let interaction = request
        .headers()
        .get("x-fapi-interaction-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 100 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = partner_guarded(state, scope, request, next).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&interaction) {
        response.headers_mut().insert("x-fapi-interaction-id", value);
    }
    response
}

async fn partner_guarded(state: &AppState, scope: &'static str, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let verified = match bearer(&parts) {
        Ok(token) => state.openbank.verify(token).await.map_err(|e| match e {
            openbank_platform::PlatformError::InvalidToken => invalid_token(&e.to_string()),
            other => ApiError::from(other),
        }),
        Err(e) => Err(e),
    };
    let (claims, partner) = match verified {
        Ok(v) => v,
        Err(e) => return crate::audit::refused(state, None, &parts, e.into_response()).await,
    };
    let actor = ("partner".to_string(), partner.id.clone(), None);
    if scope != ANY_SCOPE && !claims.scope.split(' ').any(|s| s == scope) {
        let mut error = ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this call needs an access token with scope {scope:?}; the token has {:?}", claims.scope),
        );
        error.www_authenticate = Some(format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"").into());
        return crate::audit::refused_as(state, actor, &parts, error.into_response()).await;
    }
    let purpose = claims.consent_id.clone();
    let partner_id = partner.id.clone();
    let api = format!(
        "{} {}",
        parts.method,
        parts.extensions.get::<axum::extract::MatchedPath>().map_or("(no route)", |p| p.as_str())
    );
    if let Err(e) = state.openbank.check_quota(&partner_id, partner.daily_quota).await {
        state.openbank.record_call(&partner_id, &api, true);
        return crate::audit::refused_as(state, actor, &parts, ApiError::from(e).into_response()).await;
    }
    parts.extensions.insert(PartnerCaller { claims, partner });
    let response = crate::audit::run_as(state, actor, purpose, parts, body, next).await;
    // Metering: every call of an authenticated partner, refused or not.
    state.openbank.record_call(&partner_id, &api, !response.status().is_success());
    response
}

/// Authenticates a customer's dashboard token.
async fn customer_guard(state: &AppState, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let customer = bearer(&parts)
        .and_then(|token| state.openbank.verify_customer_token(token).map_err(|e| invalid_token(&e.to_string())));
    let customer = match customer {
        Ok(c) => c,
        Err(e) => return crate::audit::refused(state, None, &parts, e.into_response()).await,
    };
    let actor = ("customer".to_string(), customer.clone(), None);
    parts.extensions.insert(CustomerCaller(customer));
    crate::audit::run_as(state, actor, None, parts, body, next).await
}

impl<S: Send + Sync> FromRequestParts<S> for PartnerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<PartnerCaller>().cloned().ok_or_else(|| invalid_token("no partner token"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CustomerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<CustomerCaller>().cloned().ok_or_else(|| invalid_token("no customer token"))
    }
}

/// The name of the session cookie set at sign-in (HttpOnly, Secure, SameSite=Strict).
pub const SESSION_COOKIE: &str = "digibank_session";

/// The one place access errors become HTTP: 401 for a missing or bad key, session or
/// credentials, 403 for a missing permission (naming it), 404 for an unknown key or user,
/// 409 for conflicts, 422 for invalid input, 423 for a locked user, 429 for a throttled address.
impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        use axum::http::StatusCode as S;
        let (status, code) = match &e {
            AccessError::IpNotAllowed => (S::FORBIDDEN, "ip_not_allowed"),
            AccessError::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            AccessError::UserLocked => (S::LOCKED, "user_locked"),
            AccessError::TooManyAttempts => {
                let mut error = ApiError::new(S::TOO_MANY_REQUESTS, "too_many_attempts", e.to_string());
                error.retry_after = Some(60);
                return error;
            }
            AccessError::UserNotFound(_) => (S::NOT_FOUND, "user_not_found"),
            AccessError::UsernameTaken(_) => (S::CONFLICT, "username_taken"),
            AccessError::UnknownPermission(_) => (S::UNPROCESSABLE_ENTITY, "unknown_permission"),
            AccessError::UnknownRole(_) => (S::UNPROCESSABLE_ENTITY, "unknown_role"),
            AccessError::RoleExists(_) => (S::CONFLICT, "role_exists"),
            AccessError::BuiltinRole(_) => (S::CONFLICT, "builtin_role"),
            AccessError::RoleInUse { .. } => (S::CONFLICT, "role_in_use"),
            AccessError::Invalid(_) => (S::UNPROCESSABLE_ENTITY, "invalid_request"),
            _ => (S::OK, ""),
        };
        if !code.is_empty() {
            return ApiError::new(status, code, e.to_string());
        }
        match e {
            // An unknown, tampered, revoked or expired key and an ended session get one answer:
            // a refused caller learns nothing about which credentials once worked.
            AccessError::InvalidKey | AccessError::KeyExpired | AccessError::SessionExpired => {
                ApiError::unauthorized(AccessError::InvalidKey.to_string())
            }
            AccessError::Forbidden { permission, .. } => {
                let mut error = ApiError::forbidden(e.to_string());
                error.details = Some(serde_json::json!({ "permission": permission.as_str() }));
                error
            }
            AccessError::KeyNotFound(_) => ApiError::not_found(e.to_string()),
            _ => ApiError::internal(e),
        }
    }
}

/// The credential of a request: the bearer token, else the session cookie, else the 401
/// explaining what is missing.
fn credential(parts: &Parts) -> Result<&str, ApiError> {
    if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        return header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization header must be 'Bearer <api key or session token>'"));
    }
    session_cookie(parts).ok_or_else(|| {
        ApiError::unauthorized("missing Authorization: Bearer <api key or session token> (or session cookie)")
    })
}

/// The session token in the request's `Cookie` header.
pub fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// The client's address (from `ConnectInfo`; none when served without it, e.g. in-process).
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let token = credential(parts)?;
    if token.starts_with("dbs_") {
        Ok(state.users.authenticate(token).await?)
    } else {
        Ok(state.keys.authenticate(token, client_ip(parts)).await?)
    }
}

/// State of one endpoint's [`guard`].
#[derive(Clone)]
pub struct GuardState {
    pub app: AppState,
    pub access: Access,
}

/// Authenticates and authorizes a request before anything else about it is looked at.
pub async fn guard(State(guard): State<GuardState>, request: Request, next: Next) -> Response {
    let permission = match guard.access {
        Access::Public if matches!(*request.method(), Method::GET | Method::HEAD) => return next.run(request).await,
        Access::Public => {
            let (parts, body) = request.into_parts();
            return crate::audit::public(&guard.app, parts, body, next).await;
        }
        Access::Needs(permission) => Some(permission),
        Access::Signed => None,
        Access::Partner(scope) => return partner_guard(&guard.app, scope, request, next).await,
        Access::Customer => return customer_guard(&guard.app, request, next).await,
    };
    let (mut parts, body) = request.into_parts();
    // An approved request replayed by `POST /v1/approvals/{id}/approve` runs as its maker.
    let replayed = parts.extensions.get::<crate::approvals::Replay>().map(|r| r.maker.clone());
    let authenticated = match replayed {
        Some(maker) => Ok(maker),
        None => authenticate(&parts, &guard.app).await,
    };
    let caller = match authenticated {
        Ok(caller) => caller,
        Err(e) => return crate::audit::refused(&guard.app, None, &parts, e.into_response()).await,
    };
    if let Some(Err(e)) = permission.map(|p| caller.require(p)) {
        return crate::audit::refused(&guard.app, Some(&caller), &parts, ApiError::from(e).into_response()).await;
    }
    parts.extensions.insert(caller.clone());
    crate::audit::run(&guard.app, &caller, parts, body, next).await
}

/// The client's address, when the server was started with `ConnectInfo`.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// The caller the [`guard`] authenticated; on an endpoint without a guard, authenticates.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        authenticate(parts, state).await
    }
}
