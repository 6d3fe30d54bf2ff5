//! API key administration (`keys_admin`, the admin role by default). Keys are for systems;
//! people sign in (see `routes::users`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Caller, IssuedKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// The role's name (built-in or created with `POST /v1/roles`). Omitted: no role, the key
    /// may do nothing until given one (least privilege).
    #[serde(default)]
    pub role: Option<String>,
    /// When the key stops working (then 401 `unauthorized`, as for any key that does not work); omitted = until revoked.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// CIDRs (or single addresses) the key may be used from; omitted or empty = anywhere.
    /// From elsewhere: 403 `ip_not_allowed`.
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<access::KeyView>,
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "security", request_body = NewKey,
    responses((status = 201, description = "The key is shown once", body = IssuedKey),
        (status = 403, body = ErrorBody),
        (status = 422, description = "invalid_request, unknown_role: a role that does not exist", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    if request.name.trim().is_empty() || request.name.len() > 100 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "name must be 1..=100 bytes"));
    }
    if request.allowed_ips.as_ref().is_some_and(|l| l.len() > 100) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "at most 100 allowed_ips"));
    }
    let role = request.role.as_deref().map(str::trim).unwrap_or_default();
    let key = state
        .keys
        .issue_with(request.name.trim(), role, request.expires_at, request.allowed_ips.as_deref().unwrap_or_default())
        .await?;
    tracing::info!(key_id = %key.id, role = key.role.as_str(), by = %caller.key_id, "api key issued");
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "security",
    responses((status = 200, description = "Active keys (never their secrets), newest first", body = KeyList)),
    security(("api_key" = [])))]
pub async fn list_keys(State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList { keys: state.keys.list().await? }))
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
