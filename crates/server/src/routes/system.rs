//! Health, metrics, the OpenAPI document and the API explorer (Swagger UI, vendored into the
//! binary from `assets/swagger-ui/`, so it works with no internet access).

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::routes::web::{self, embedded_asset, Asset};

use crate::error::ApiError;
use crate::extract::ApiPath;
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
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (accounts, entries) = state.ledger.store().counts().await?;
    let kpis = state.kpis.current().await?;
    let body = state.metrics.render(accounts, entries, &kpis);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// This API's OpenAPI 3.1 document, served without a key
///
/// Public, like `/health`, so that the explorer at `/docs` (Swagger UI) can load it before a key
/// is entered. The operations it describes still need `Authorization: Bearer <api key>`.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "This API's OpenAPI 3.1 document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::ApiDoc::openapi())
}

/// Everything served under `/docs/assets/`: Swagger UI as vendored from `swagger-ui-dist` (see
/// `assets/swagger-ui/README.md`) and our own start-up script and page style.
const ASSETS: &[Asset] = &[
    embedded_asset!("swagger-ui", "swagger-ui-bundle.js", "application/javascript; charset=utf-8"),
    embedded_asset!("swagger-ui", "swagger-ui.css", "text/css; charset=utf-8"),
    embedded_asset!("swagger-ui", "favicon-32x32.png", "image/png"),
    embedded_asset!("swagger-ui", "init.js", "application/javascript; charset=utf-8"),
    embedded_asset!("swagger-ui", "digibank.css", "text/css; charset=utf-8"),
];

static DOCS_PAGE: LazyLock<String> =
    LazyLock::new(|| web::versioned_page(include_str!("../../assets/swagger-ui/index.html"), ASSETS));

/// Only this server's own files and `/openapi.json`: the browser enforces that the explorer loads
/// and sends nothing elsewhere. (Swagger UI sets inline styles, and shows images as `data:`.)
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The API explorer (`GET /docs`): Swagger UI on `/openapi.json`. The Authorize
/// button takes an API key (the `api_key` bearer scheme) and every operation can be tried out.
pub async fn docs() -> Response {
    web::page(StatusCode::OK, DOCS_CSP, DOCS_PAGE.clone())
}

/// A file of the explorer (`GET /docs/assets/{file}`); an unknown name is the API's JSON 404.
pub async fn docs_asset(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    web::asset(ASSETS, &file, "explorer")
}
