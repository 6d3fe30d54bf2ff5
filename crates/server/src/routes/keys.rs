//! API key administration (admin role only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Caller, IssuedKey, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "security", request_body = NewKey,
    responses((status = 201, description = "The key is shown once", body = IssuedKey), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    if request.name.trim().is_empty() || request.name.len() > 100 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "name must be 1..=100 bytes"));
    }
    let key = state.keys.issue(request.name.trim(), request.role).await?;
    tracing::info!(key_id = %key.id, role = key.role.as_str(), by = %caller.key_id, "api key issued");
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "security", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.keys.revoke(id).await?;
    tracing::info!(key_id = %id, by = %caller.key_id, "api key revoked");
    Ok(StatusCode::NO_CONTENT)
}
