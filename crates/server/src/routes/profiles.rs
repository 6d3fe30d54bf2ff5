//! The customer data platform over HTTP: 360° profiles, tags with explanations, facts intake,
//! channel identities, recommendations, churn risk, segments with counts and recomputation.
//! Storage and computation live in `customer-platform`; handlers translate.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use customer::{
    AssignedTag, Catalog, Channel, CustomerFacts, CustomerId, Profile, Recommender, SegmentDefinition, SegmentEngine,
};
use customer_platform::recompute::enum_text;
use customer_platform::{recompute, ChurnScore, ComputedResult, Mode, RecomputeReport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{bounded, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

fn parse_id(id: &str) -> Result<String, ApiError> {
    let id: CustomerId =
        id.parse().map_err(|e: customer::CustomerError| ApiError::bad_request("invalid_path", e.to_string()))?;
    Ok(id.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "customer_not_found", format!("no customer {id}"))
}

fn no_facts(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "profile_not_found",
        format!("customer {id} has no facts yet: PUT /v1/customers/{id}/facts or load the demo bank"),
    )
}

/// The 360° view: five profile dimensions computed from the stored facts, plus the results of
/// the last recomputation (tier, RFM, lifecycle, churn) and linked channel identities.
#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    pub customer_id: String,
    #[schema(value_type = Object)]
    pub profile: Profile,
    /// From the last recomputation; `null` until one ran for this customer.
    #[schema(value_type = Object)]
    pub computed: Option<ComputedResult>,
    pub identities: Vec<IdentityView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct IdentityView {
    pub channel: String,
    pub external_id: String,
    pub linked_at: i64,
}

#[utoipa::path(get, path = "/v1/customers/{id}/profile", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = ProfileView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_profile(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProfileView>, ApiError> {
    let id = parse_id(&id)?;
    let facts = state.customers.facts(&id).await?.ok_or_else(|| no_facts(&id))?;
    let computed = state.customers.result(&id).await?;
    let identities = state
        .customers
        .identities(&id)
        .await?
        .into_iter()
        .map(|(channel, external_id, linked_at)| IdentityView { channel, external_id, linked_at })
        .collect();
    Ok(Json(ProfileView { customer_id: id, profile: Profile::compute(&facts.facts), computed, identities }))
}

#[derive(Serialize, ToSchema)]
pub struct CustomerTags {
    pub customer_id: String,
    pub count: usize,
    /// Every tag the customer carries now, with the sub-conditions and values that made it true.
    #[schema(value_type = Vec<Object>)]
    pub tags: Vec<AssignedTag>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/tags", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, description = "Tags with explanations (why the customer carries each)", body = CustomerTags),
              (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_customer_tags(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CustomerTags>, ApiError> {
    let id = parse_id(&id)?;
    let facts = state.customers.facts(&id).await?.ok_or_else(|| no_facts(&id))?;
    let tags = state.tags.read().await.evaluate_explained(&Profile::compute(&facts.facts));
    Ok(Json(CustomerTags { customer_id: id, count: tags.len(), tags }))
}

#[utoipa::path(get, path = "/v1/customers/{id}/facts", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, description = "The stored CustomerFacts (the profile's inputs)", body = Object),
              (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_facts(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CustomerFacts>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(state.customers.facts(&id).await?.ok_or_else(|| no_facts(&id))?.facts))
}

#[derive(Serialize, ToSchema)]
pub struct FactsAccepted {
    pub customer_id: String,
    /// False when the facts equal the stored ones (nothing to recompute).
    pub changed: bool,
}

#[utoipa::path(put, path = "/v1/customers/{id}/facts", tag = "customers", params(("id" = String, Path)),
    request_body(content = Object, description = "CustomerFacts: balances in fen, windows, holdings, ..."),
    responses((status = 200, body = FactsAccepted), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_facts(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(facts): ApiJson<CustomerFacts>,
) -> Result<Json<FactsAccepted>, ApiError> {
    let id = parse_id(&id)?;
    if facts.customer_id.to_string() != id {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "customer_mismatch",
            format!("facts are for {} but the path names {id}", facts.customer_id),
        ));
    }
    let record = state.customers.customer(&id).await?.ok_or_else(|| not_found(&id))?;
    super::customers::require_active(&record)?;
    let changed = state.customers.upsert_facts(&[facts]).await? == 1;
    Ok(Json(FactsAccepted { customer_id: id, changed }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIdentity {
    #[schema(value_type = String, example = "mobile_app")]
    pub channel: Channel,
    /// The customer's id in that channel (app user id, partner open id, ...).
    pub external_id: String,
}

#[utoipa::path(post, path = "/v1/customers/{id}/identities", tag = "customers", params(("id" = String, Path)),
    request_body = LinkIdentity,
    responses((status = 201, body = IdentityView), (status = 409, description = "Linked to another customer", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn link_identity(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(link): ApiJson<LinkIdentity>,
) -> Result<(StatusCode, Json<IdentityView>), ApiError> {
    let id = parse_id(&id)?;
    let external_id = link.external_id.trim();
    if external_id.is_empty() || external_id.len() > 128 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_identity",
            "external_id must be 1..=128 bytes",
        ));
    }
    let record = state.customers.customer(&id).await?.ok_or_else(|| not_found(&id))?;
    super::customers::require_active(&record)?;
    state.customers.link_identity(&id, link.channel, external_id).await?;
    let (channel, external_id, linked_at) = state
        .customers
        .identities(&id)
        .await?
        .into_iter()
        .find(|(c, e, _)| c == link.channel.as_str() && e == external_id)
        .ok_or_else(|| ApiError::internal("identity vanished after linking"))?;
    Ok((StatusCode::CREATED, Json(IdentityView { channel, external_id, linked_at })))
}

/// The newest fitted recommender, or 409 `not_trained` before the first full recomputation.
async fn current_recommender(state: &AppState) -> Result<std::sync::Arc<Recommender>, ApiError> {
    state.customers.recommender().await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_trained",
            "no recommender yet: run POST /v1/customers/recompute with mode full",
        )
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecommendationQuery {
    /// How many products, 1..=20 (default 5).
    k: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct RecommendationView {
    pub product: String,
    pub name: String,
    pub score: f64,
    /// A held product that makes this one likely ("customers holding X often take this").
    pub because_of: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Recommendations {
    pub customer_id: String,
    /// Products above the customer's risk level are never recommended (suitability).
    pub risk_level: Option<String>,
    pub recommendations: Vec<RecommendationView>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/recommendations", tag = "customers",
    params(("id" = String, Path), RecommendationQuery),
    responses((status = 200, body = Recommendations), (status = 404, body = ErrorBody),
              (status = 409, description = "No recommender fitted yet (run a full recomputation)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_recommendations(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecommendationQuery>,
) -> Result<Json<Recommendations>, ApiError> {
    let id = parse_id(&id)?;
    let k = bounded("k", q.k.unwrap_or(5), 1, 20)?;
    let facts = state.customers.facts(&id).await?.ok_or_else(|| no_facts(&id))?.facts;
    let recommender = current_recommender(&state).await?;
    let catalog = Catalog::standard();
    let recommendations = recommender
        .recommend(&facts.holdings, facts.risk_level, k)
        .into_iter()
        .map(|r| RecommendationView {
            name: catalog.products().iter().find(|p| p.code == r.product).map(|p| p.name.clone()).unwrap_or_default(),
            product: r.product,
            score: r.score,
            because_of: r.because_of,
        })
        .collect();
    Ok(Json(Recommendations {
        customer_id: id,
        risk_level: facts.risk_level.map(|r| r.as_str().to_string()),
        recommendations,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChurnQuery {
    /// How many customers, 1..=1000 (default 20).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ChurnRiskEntry {
    pub customer_id: String,
    pub tier: String,
    pub lifecycle: String,
    pub aum_minor: i64,
    #[schema(value_type = Object)]
    pub churn: Option<ChurnScore>,
    /// The top factors in words.
    pub reasons: Vec<String>,
}

#[utoipa::path(get, path = "/v1/customers/churn-risk", tag = "customers", params(ChurnQuery),
    responses((status = 200, description = "Customers with the highest churn probability and why", body = Vec<ChurnRiskEntry>)),
    security(("api_key" = [])))]
pub async fn churn_risk(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ChurnQuery>,
) -> Result<Json<Vec<ChurnRiskEntry>>, ApiError> {
    let top = state.customers.top_churn(bounded("limit", q.limit.unwrap_or(20), 1, 1000)?).await?;
    Ok(Json(
        top.into_iter()
            .map(|r| ChurnRiskEntry {
                reasons: r
                    .churn
                    .iter()
                    .flat_map(|c| &c.factors)
                    .map(|f| format!("{} = {}", customer_platform::churn::feature_label(&f.feature), f.value))
                    .collect(),
                customer_id: r.customer_id,
                tier: r.tier,
                lifecycle: r.lifecycle,
                aum_minor: r.aum_minor,
                churn: r.churn,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    pub id: String,
    pub name: String,
    pub rule: String,
    pub version: u32,
    /// Members at the last recomputation.
    pub count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentsOverview {
    /// Customers per tier (mass / wealth / sme).
    pub tiers: BTreeMap<String, u64>,
    /// Customers per named RFM segment.
    pub rfm: BTreeMap<String, u64>,
    /// Customers per lifecycle stage.
    pub lifecycle: BTreeMap<String, u64>,
    /// Defined segments (boolean rules over tags).
    pub segments: Vec<SegmentView>,
    /// Customers per tag.
    pub tags: BTreeMap<String, u64>,
}

fn strip(prefix: &str, counts: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    counts.into_iter().map(|(k, v)| (k.trim_start_matches(prefix).to_string(), v)).collect()
}

#[utoipa::path(get, path = "/v1/segments", tag = "customers",
    responses((status = 200, body = SegmentsOverview)), security(("api_key" = [])))]
pub async fn list_segments(State(state): State<AppState>) -> Result<Json<SegmentsOverview>, ApiError> {
    let c = &state.customers;
    let defined = strip("segment:", c.membership_counts("segment:").await?);
    let segments = c
        .segments()
        .await?
        .into_iter()
        .map(|(d, version)| SegmentView {
            count: defined.get(&d.id).copied().unwrap_or(0),
            id: d.id,
            name: d.name,
            rule: d.rule,
            version,
        })
        .collect();
    Ok(Json(SegmentsOverview {
        tiers: strip("tier:", c.membership_counts("tier:").await?),
        rfm: strip("rfm:", c.membership_counts("rfm:").await?),
        lifecycle: strip("lifecycle:", c.membership_counts("lifecycle:").await?),
        segments,
        tags: strip("tag:", c.membership_counts("tag:").await?),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    pub name: String,
    /// Boolean rule over tag ids, e.g. `payroll_customer and not dormant_90d`.
    pub rule: String,
}

#[utoipa::path(put, path = "/v1/segments/{id}", tag = "customers", params(("id" = String, Path)), request_body = SegmentInput,
    responses((status = 200, body = SegmentView),
              (status = 422, description = "The rule does not parse or names an unknown tag (with its position); nothing saved", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_segment(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<SegmentInput>,
) -> Result<Json<SegmentView>, ApiError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(ApiError::bad_request("invalid_path", "segment ids use lower-case letters, digits and `_`"));
    }
    let def = SegmentDefinition { id: id.clone(), name: input.name, rule: input.rule };
    SegmentEngine::new(&*state.tags.read().await).add(def.clone())?;
    let version = state.customers.put_segment(&def).await?;
    Ok(Json(SegmentView { id, name: def.name, rule: def.rule, version, count: 0 }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecomputeRequest {
    /// `incremental` (default): customers whose facts changed, or everyone if a rule changed;
    /// `full`: everyone, refitting RFM cuts and the recommender.
    #[serde(default = "incremental")]
    #[schema(value_type = String, example = "incremental")]
    pub mode: Mode,
}

fn incremental() -> Mode {
    Mode::Incremental
}

#[utoipa::path(post, path = "/v1/customers/recompute", tag = "customers", request_body = RecomputeRequest,
    responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn recompute_all(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RecomputeRequest>,
) -> Result<Json<RecomputeReport>, ApiError> {
    let tags = state.tags.read().await.clone();
    let report = recompute(&state.customers, &tags, request.mode, |_, _| {}).await?;
    tracing::info!(mode = %enum_text(&report.mode), customers = report.customers, millis = %report.millis, "customers recomputed");
    Ok(Json(report))
}
