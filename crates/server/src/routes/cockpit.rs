//! The operations cockpit, the staff web app at `/` (issue 14): a page and its scripts and
//! styles embedded in the binary from `assets/cockpit/` (Apache ECharts vendored from the npm
//! registry), so `serve` shows it with no internet access. The app itself reads the API.

use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::ApiPath;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/cockpit/", $name)),
        }
    };
}

/// Everything served under `/cockpit/assets/`.
const ASSETS: &[Asset] = &[
    asset!("app.js", "application/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("echarts.min.js", "application/javascript; charset=utf-8"),
];

/// The page links every asset with `?v=<hash of all assets>`: cached for a year, replaced with
/// a new binary.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for asset in ASSETS {
        (asset.name, asset.body).hash(&mut hasher);
    }
    let version = format!("{:016x}", hasher.finish());
    include_str!("../../assets/cockpit/index.html").replace("__ASSET_VERSION__", &version)
});

/// Only this server: the browser enforces that the cockpit loads and sends nothing elsewhere.
/// (ECharts sets inline styles on the elements it draws in.)
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The cockpit (`GET /`).
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// A file of the cockpit (`GET /cockpit/assets/{file}`); an unknown name is the API's JSON 404.
pub async fn asset(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == file)
        .ok_or_else(|| ApiError::not_found(format!("no such cockpit asset: {file}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response())
}
