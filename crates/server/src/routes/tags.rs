//! Customer tag rules: list, inspect with history, add or change (versioned, compile-checked,
//! persisted), and evaluate against a customer's facts with explanations.
//!
//! The rules themselves live in the `customer` crate's [`TagRegistry`]; this module persists
//! API-made versions in `tag_rules` and replays them over the built-ins at start-up.
//! (When the customer store lands, this persistence moves behind its storage trait.)

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use customer::tags::TagVersion;
use customer::{AssignedTag, CustomerError, CustomerFacts, Dimension, Profile, TagDefinition};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, Position};
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

impl From<CustomerError> for ApiError {
    fn from(e: CustomerError) -> Self {
        match e {
            CustomerError::InvalidRule { id, source } => {
                let mut error = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_rule",
                    format!("rule of tag `{id}`: {} at {}:{}", source.message, source.line, source.column),
                );
                error.position = Some(Box::new(Position {
                    line: source.line,
                    column: source.column,
                    offset: source.offset,
                    end: source.end,
                }));
                error
            }
            CustomerError::UnknownTag(id) => ApiError::not_found(format!("no tag `{id}`")),
            other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", other.to_string()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TagView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "assets_liabilities")]
    pub dimension: Dimension,
    /// Rule source in the `rules` expression language over the profile fields.
    pub rule: String,
    pub version: u32,
}

impl From<&TagVersion> for TagView {
    fn from(v: &TagVersion) -> Self {
        TagView {
            id: v.definition.id.clone(),
            name: v.definition.name.clone(),
            dimension: v.definition.dimension,
            rule: v.definition.rule.clone(),
            version: v.version,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TagList {
    pub count: usize,
    pub tags: Vec<TagView>,
}

#[utoipa::path(get, path = "/v1/tags", tag = "customers",
    responses((status = 200, description = "Current version of every tag", body = TagList)), security(("api_key" = [])))]
pub async fn list_tags(State(state): State<AppState>) -> Result<Json<TagList>, ApiError> {
    let registry = state.tags.read().await;
    let tags: Vec<TagView> = registry.current().map(TagView::from).collect();
    Ok(Json(TagList { count: tags.len(), tags }))
}

#[derive(Serialize, ToSchema)]
pub struct TagDetail {
    pub current: TagView,
    /// Every version, oldest first.
    pub history: Vec<TagView>,
}

#[utoipa::path(get, path = "/v1/tags/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = TagDetail), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_tag(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<TagDetail>, ApiError> {
    let registry = state.tags.read().await;
    let history = registry.history(&id).ok_or_else(|| ApiError::not_found(format!("no tag `{id}`")))?;
    let history: Vec<TagView> = history.iter().map(TagView::from).collect();
    let current = registry.get(&id).map(TagView::from).expect("a tag with history has a current version");
    Ok(Json(TagDetail { current, history }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    pub name: String,
    #[schema(value_type = String, example = "transactions")]
    pub dimension: Dimension,
    #[schema(example = "sum_inflow_90d >= 100000 and days_since_last_login <= 30")]
    pub rule: String,
}

#[utoipa::path(put, path = "/v1/tags/{id}", tag = "customers", params(("id" = String, Path)), request_body = TagInput,
    responses((status = 201, description = "New tag at version 1", body = TagView),
              (status = 200, description = "New version of an existing tag", body = TagView),
              (status = 422, description = "Rule does not parse or type-check; `position` points at the error", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_tag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TagInput>,
) -> Result<(StatusCode, Json<TagView>), ApiError> {
    if input.name.trim().is_empty() || input.name.len() > 200 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "name must be 1..=200 bytes"));
    }
    let def = TagDefinition {
        id: id.clone(),
        name: input.name.trim().to_string(),
        dimension: input.dimension,
        rule: input.rule,
    };
    let (version, created) = state.tags.save(def, Some(caller.key_id)).await?;
    tracing::info!(tag = %id, version = version.version, by = %caller.key_id, "tag rule saved");
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(TagView::from(&version))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// A customer's facts as of a business date (money in fen).
    #[schema(value_type = Object)]
    pub facts: CustomerFacts,
    /// Include, per tag, the sub-conditions and field values that made it true.
    #[serde(default)]
    pub explain: bool,
}

#[derive(Serialize, ToSchema)]
pub struct EvaluateResponse {
    #[schema(value_type = String)]
    pub lifecycle: String,
    pub count: usize,
    #[schema(value_type = Vec<Object>)]
    pub tags: Vec<AssignedTag>,
}

#[utoipa::path(post, path = "/v1/tags/evaluate", tag = "customers", request_body = EvaluateRequest,
    responses((status = 200, description = "Tags the customer carries, with the rule version of each", body = EvaluateResponse),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn evaluate_tags(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<EvaluateRequest>,
) -> Result<Json<EvaluateResponse>, ApiError> {
    let profile = Profile::compute(&request.facts);
    let registry = state.tags.read().await;
    let tags = if request.explain { registry.evaluate_explained(&profile) } else { registry.evaluate(&profile) };
    let lifecycle = serde_json::to_value(profile.lifecycle.stage)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Ok(Json(EvaluateResponse { lifecycle, count: tags.len(), tags }))
}
