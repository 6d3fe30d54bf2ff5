//! Authentication at the HTTP edge: the `Authorization: Bearer <api key>` header becomes an
//! [`access::Caller`]; keys, roles and permissions themselves live in the `access` crate.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use access::AccessError;
pub use access::{Caller, IssuedKey, Permission, Role};

use crate::error::ApiError;
use crate::AppState;

/// The one place access errors become HTTP: 401 for a missing or bad key, 403 for a missing
/// permission, 404 for revoking an unknown key.
impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::InvalidKey => ApiError::unauthorized(e.to_string()),
            AccessError::Forbidden { .. } => ApiError::forbidden(e.to_string()),
            AccessError::KeyNotFound(_) => ApiError::not_found(e.to_string()),
            AccessError::Hash(_) | AccessError::Corrupt(_) | AccessError::Database(_) => ApiError::internal(e),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <api key>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization header must be 'Bearer <api key>'"))?;
        Ok(state.keys.authenticate(token).await?)
    }
}
