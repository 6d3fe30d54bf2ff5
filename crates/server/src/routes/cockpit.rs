//! The operations cockpit, the staff web app at `/` (issue 14): a page and its scripts and
//! styles embedded in the binary from `assets/cockpit/` (Apache ECharts vendored from the npm
//! registry), so `serve` shows it with no internet access. The app itself reads the API.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::Response;

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::routes::web::{self, embedded_asset, Asset};

/// Everything served under `/cockpit/assets/`.
const ASSETS: &[Asset] = &[
    embedded_asset!("cockpit", "app.js", "application/javascript; charset=utf-8"),
    embedded_asset!("cockpit", "alerts.js", "application/javascript; charset=utf-8"),
    embedded_asset!("cockpit", "risk.js", "application/javascript; charset=utf-8"),
    embedded_asset!("cockpit", "lending.js", "application/javascript; charset=utf-8"),
    embedded_asset!("cockpit", "customers.js", "application/javascript; charset=utf-8"),
    embedded_asset!("cockpit", "ledger.js", "application/javascript; charset=utf-8"),
    embedded_asset!("cockpit", "app.css", "text/css; charset=utf-8"),
    embedded_asset!("cockpit", "echarts.min.js", "application/javascript; charset=utf-8"),
];

static PAGE: LazyLock<String> =
    LazyLock::new(|| web::versioned_page(include_str!("../../assets/cockpit/index.html"), ASSETS));

/// Only this server: the browser enforces that the cockpit loads and sends nothing elsewhere.
/// (ECharts sets inline styles on the elements it draws in.)
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The cockpit (`GET /`).
pub async fn page() -> Response {
    web::page(StatusCode::OK, CSP, PAGE.clone())
}

/// A file of the cockpit (`GET /cockpit/assets/{file}`); an unknown name is the API's JSON 404.
pub async fn asset(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    web::asset(ASSETS, &file, "cockpit")
}
