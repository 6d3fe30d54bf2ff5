//! Web pages compiled into the binary (the cockpit, the API explorer, the open-banking consent
//! screen): their files, a page that links them under a version, and the answers with the
//! headers they need. One place, so every page gets the same caching and nosniff rules.

use std::hash::{Hash, Hasher};

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// One file of a page, compiled into the binary.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// An [`Asset`] from `crates/server/assets/<dir>/<name>`.
macro_rules! embedded_asset {
    ($dir:literal, $name:literal, $content_type:literal) => {
        $crate::routes::web::Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/", $dir, "/", $name)),
        }
    };
}
pub(crate) use embedded_asset;

/// The page `template` with `__ASSET_VERSION__` replaced by a hash of all `assets`: the page
/// links them as `?v=<hash>`, so they can be cached for a year (a binary with other files links
/// other URLs) while the page itself is revalidated each time.
pub fn versioned_page(template: &str, assets: &[Asset]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for asset in assets {
        (asset.name, asset.body).hash(&mut hasher);
    }
    template.replace("__ASSET_VERSION__", &format!("{:016x}", hasher.finish()))
}

/// An HTML page under its content security policy, revalidated on every load.
pub fn page(status: axum::http::StatusCode, csp: &'static str, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The asset called `file` (cached for a year: its URL carries the version), or the API's JSON
/// 404 naming `what` it is not.
pub fn asset(assets: &'static [Asset], file: &str, what: &str) -> Result<Response, ApiError> {
    let asset = assets
        .iter()
        .find(|a| a.name == file)
        .ok_or_else(|| ApiError::not_found(format!("no such {what} asset: {file}")))?;
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
