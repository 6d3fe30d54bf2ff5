//! Authentication and authorization at the HTTP edge.
//!
//! Every endpoint declares its [`Access`] in the route table (`crate::endpoints`). The
//! [`guard`] middleware runs before the handler and before its body or query is parsed: it
//! turns `Authorization: Bearer <api key>` into an [`access::Caller`], refuses a caller whose
//! role lacks the endpoint's permission (403 naming the permission) and hands the caller to the
//! handler through the request's extensions. A caller without the permission therefore learns
//! nothing about the endpoint's input (an invalid body from such a caller is 403, never a 422
//! naming fields). Keys, roles and permissions themselves live in the `access` crate.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use access::AccessError;
pub use access::{Caller, IssuedKey, Permission, Role};

use crate::error::ApiError;
use crate::AppState;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health, the API document and explorer).
    Public,
    /// An authenticated caller whose role grants this permission.
    Needs(Permission),
}

/// The one place access errors become HTTP: 401 for a missing or bad key, 403 for a missing
/// permission (naming it), 404 for revoking an unknown key.
impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::InvalidKey => ApiError::unauthorized(e.to_string()),
            AccessError::Forbidden { permission, .. } => {
                let mut error = ApiError::forbidden(e.to_string());
                error.details = Some(serde_json::json!({ "permission": permission.as_str() }));
                error
            }
            AccessError::KeyNotFound(_) => ApiError::not_found(e.to_string()),
            AccessError::Hash(_) | AccessError::Corrupt(_) | AccessError::Database(_) => ApiError::internal(e),
        }
    }
}

/// The bearer token of a request, or the 401 explaining what is wrong with the header.
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <api key>"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("Authorization header must be 'Bearer <api key>'"))
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let token = bearer_token(parts)?;
    Ok(state.keys.authenticate(token).await?)
}

/// State of one endpoint's [`guard`].
#[derive(Clone)]
pub struct GuardState {
    pub app: AppState,
    pub access: Access,
}

/// Authenticates and authorizes a request before anything else about it is looked at.
pub async fn guard(State(guard): State<GuardState>, request: Request, next: Next) -> Response {
    let Access::Needs(permission) = guard.access else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let caller = match authenticate(&parts, &guard.app).await {
        Ok(caller) => caller,
        Err(e) => return crate::audit::refused(&guard.app, None, &parts, e.into_response()).await,
    };
    if let Err(e) = caller.require(permission) {
        return crate::audit::refused(&guard.app, Some(&caller), &parts, ApiError::from(e).into_response()).await;
    }
    parts.extensions.insert(caller.clone());
    crate::audit::run(&guard.app, &caller, parts, body, next).await
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
