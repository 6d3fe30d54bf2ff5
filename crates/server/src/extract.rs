//! Request extractors that turn axum's plain-text rejections into the JSON error format.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Json<T>` with JSON errors: malformed JSON is 400 `malformed_json`; a field the request type
/// does not have (every request type denies unknown fields, so nothing can be mass-assigned) is
/// 422 `unknown_field` naming it; other well-formed JSON of the wrong shape (missing field,
/// out-of-range number) is 422 `invalid_request` with the path of the offending field; a body
/// over the route's size limit is 413 `payload_too_large`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("malformed_json", e.body_text()),
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            match unknown_field(&text) {
                Some((path, field)) => {
                    let mut error = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unknown_field",
                        format!("unknown field `{path}`: this request does not take it"),
                    );
                    error.details = Some(serde_json::json!({ "field": field, "path": path }));
                    error
                }
                None => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", text),
            }
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large")
        }
        other => ApiError::bad_request("bad_request", other.body_text()),
    }
}

/// The path (e.g. `documents[0].colour`) and name of an unknown field in serde's message
/// (`<prefix>: <path>: unknown field `name`, expected ...`).
fn unknown_field(text: &str) -> Option<(String, String)> {
    let (before, after) = text.split_once("unknown field `")?;
    let field = after.split('`').next()?.to_string();
    let before = before.trim_end().trim_end_matches(':');
    // `Failed to deserialize the JSON body into the target type: a.b[0].x` -> `a.b[0].x`.
    let path = before.rsplit_once("target type").map(|(_, rest)| rest.trim_start_matches(':').trim()).unwrap_or("");
    let path = if path.is_empty() { field.clone() } else { path.to_string() };
    Some((path, field))
}

/// `Query<T>` with JSON errors (400 `invalid_query`).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(ApiError::bad_request("invalid_query", e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request("invalid_query", e.body_text())),
        }
    }
}

/// Path parameters with JSON errors (400 `invalid_path`), e.g. a malformed UUID.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(e) => Err(ApiError::bad_request("invalid_path", e.body_text())),
        }
    }
}

/// An optional JSON body: absent (no `Content-Type`, empty body) is `None`, anything else must
/// parse.
impl<S, T> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Ok(None);
        }
        <ApiJson<T> as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

/// A page size or similar client-chosen count: `default` when absent, 422
/// `parameter_out_of_range` naming the parameter and its allowed range when outside `1..=max`
/// (never silently clamped, so a client learns the bound instead of getting fewer rows).
pub fn page_limit(name: &str, value: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    bounded(name, value.unwrap_or(default), 1, max)
}

/// `value` if it lies in `min..=max`, else 422 `parameter_out_of_range` naming `name`.
pub fn bounded<T: PartialOrd + std::fmt::Display + serde::Serialize + Copy>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ApiError> {
    if value < min || value > max {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "parameter_out_of_range",
            format!("{name} must be between {min} and {max}, got {value}"),
        );
        e.details = Some(serde_json::json!({ "parameter": name, "min": min, "max": max }));
        return Err(e);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let top = "Failed to deserialize the JSON body into the target type: force: unknown field `force`, expected `from` or `reason` at line 1 column 10";
        assert_eq!(super::unknown_field(top), Some(("force".into(), "force".into())));
        let nested = "Failed to deserialize the JSON body into the target type: documents[0].x: unknown field `x`, expected `kind` or `content` at line 1 column 99";
        assert_eq!(super::unknown_field(nested), Some(("documents[0].x".into(), "x".into())));
        let bare = "unknown field `x`, expected `y`";
        assert_eq!(super::unknown_field(bare), Some(("x".into(), "x".into())));
        assert_eq!(super::unknown_field("missing field `name`"), None);
    }
}
