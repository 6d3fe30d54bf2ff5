//! Health, metrics, the OpenAPI document and the API explorer page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub database: &'static str,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, description = "Database unreachable")))]
pub async fn health(State(state): State<AppState>) -> Response {
    let database = state.ledger.store().backend();
    match state.ledger.store().head().await {
        Ok(_) => Json(Health { status: "ok", database, version: env!("CARGO_PKG_VERSION") }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health { status: "unavailable", database, version: env!("CARGO_PKG_VERSION") }),
            )
                .into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")), security(("api_key" = [])))]
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Permission::MetricsRead)?;
    let (accounts, entries) = state.ledger.store().counts().await?;
    let body = state.metrics.render(accounts, entries);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "This API's OpenAPI 3.1 document")), security(("api_key" = [])))]
pub async fn openapi(_caller: Caller) -> Json<utoipa::openapi::OpenApi> {
    Json(crate::ApiDoc::openapi())
}

/// The explorer is a static page (no data, no third-party assets): it asks for an API key,
/// fetches `/openapi.json` with it and lets the user try every operation.
pub async fn explorer() -> Html<&'static str> {
    Html(include_str!("../../assets/explorer.html"))
}
