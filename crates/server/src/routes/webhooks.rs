//! Webhooks at the edge: partners subscribe to their events under `/open-banking/v1/webhooks`;
//! staff manage the bank's own channels and look after every delivery (dead letters, replay)
//! under `/v1/webhooks`. Delivery itself runs in `crates/webhooks`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use webhooks::{Delivery, Subscription, WebhookError, BANK_OWNER};

use crate::auth::PartnerCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::InvalidSubscription(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_subscription", e.to_string())
            }
            WebhookError::SubscriptionNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "subscription_not_found", e.to_string())
            }
            WebhookError::DeliveryNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "delivery_not_found", e.to_string())
            }
            WebhookError::NotReplayable(_) => ApiError::new(StatusCode::CONFLICT, "not_replayable", e.to_string()),
            WebhookError::Database(_) | WebhookError::Vault(_) => ApiError::internal(e),
        }
    }
}

/// The owner name of a partner's subscriptions.
pub fn partner_owner(partner_id: &str) -> String {
    format!("partner:{partner_id}")
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are POSTed (`https`; plain `http` only for sandbox partners).
    pub url: String,
    /// Event types, or `["*"]` for all. Partners: `consent.authorised`, `consent.rejected`,
    /// `consent.revoked`, `consent.expired`, `payment.completed`, `payment.pending`,
    /// `loan_application.decided`, `loan.disbursed`.
    pub events: Vec<String>,
}

/// A new subscription and its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// `whsec_...`: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `dead`.
    pub status: Option<String>,
    pub subscription: Option<String>,
    /// Staff only: `bank` or `partner:<client id>`.
    pub owner: Option<String>,
    /// The `id` of the last delivery of the previous page.
    pub before: Option<String>,
    /// Page size, 1..=200 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

fn checked_status(status: Option<&str>) -> Result<Option<&str>, ApiError> {
    match status {
        None | Some("pending" | "delivered" | "dead") => Ok(status),
        Some(other) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            format!("status {other:?} is not pending, delivered or dead"),
        )),
    }
}

async fn page(state: &AppState, owner: Option<&str>, q: &DeliveryQuery) -> Result<DeliveryPage, ApiError> {
    let limit = page_limit("limit", q.limit, 50, 200)?;
    let status = checked_status(q.status.as_deref())?;
    let deliveries =
        state.webhooks.deliveries(owner, q.subscription.as_deref(), status, q.before.as_deref(), limit).await?;
    let next_before = (deliveries.len() == limit as usize).then(|| deliveries.last().map(|d| d.id.clone())).flatten();
    Ok(DeliveryPage { deliveries, next_before })
}

// ---- partners -----------------------------------------------------------------------------

#[utoipa::path(post, path = "/open-banking/v1/webhooks", tag = "open banking: webhooks", request_body = NewSubscription,
    responses((status = 201, body = CreatedSubscription),
        (status = 422, description = "invalid_subscription: a bad URL or event type, or too many subscriptions", body = ErrorBody)),
    security(("partner_token" = [])))]
pub async fn partner_subscribe(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiJson(new): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<CreatedSubscription>), ApiError> {
    let sandbox = caller.partner.environment == openbank::Environment::Sandbox;
    let (subscription, secret) =
        state.webhooks.subscribe(&partner_owner(&caller.partner.id), &new.url, &new.events, sandbox).await?;
    Ok((StatusCode::CREATED, Json(CreatedSubscription { subscription, secret })))
}

#[utoipa::path(get, path = "/open-banking/v1/webhooks", tag = "open banking: webhooks",
    responses((status = 200, body = SubscriptionList)), security(("partner_token" = [])))]
pub async fn partner_subscriptions(
    State(state): State<AppState>,
    caller: PartnerCaller,
) -> Result<Json<SubscriptionList>, ApiError> {
    Ok(Json(SubscriptionList {
        subscriptions: state.webhooks.subscriptions(&partner_owner(&caller.partner.id)).await?,
    }))
}

#[utoipa::path(delete, path = "/open-banking/v1/webhooks/{id}", tag = "open banking: webhooks",
    params(("id" = String, Path)),
    responses((status = 200, description = "removed; its pending deliveries are dropped", body = Subscription),
        (status = 404, body = ErrorBody)),
    security(("partner_token" = [])))]
pub async fn partner_unsubscribe(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(state.webhooks.remove(&partner_owner(&caller.partner.id), &id).await?))
}

#[utoipa::path(get, path = "/open-banking/v1/webhooks/deliveries", tag = "open banking: webhooks",
    params(DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 422, body = ErrorBody)),
    security(("partner_token" = [])))]
pub async fn partner_deliveries(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    if q.owner.is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "owner is for staff; a partner sees its own deliveries",
        ));
    }
    Ok(Json(page(&state, Some(&partner_owner(&caller.partner.id)), &q).await?))
}

// ---- staff --------------------------------------------------------------------------------

#[utoipa::path(post, path = "/v1/webhooks/subscriptions", tag = "webhooks", request_body = NewSubscription,
    responses((status = 201, body = CreatedSubscription), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn bank_subscribe(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<CreatedSubscription>), ApiError> {
    // The bank's own receivers (alerting, chat bridges) may sit on its internal network.
    let (subscription, secret) = state.webhooks.subscribe(BANK_OWNER, &new.url, &new.events, true).await?;
    Ok((StatusCode::CREATED, Json(CreatedSubscription { subscription, secret })))
}

#[utoipa::path(get, path = "/v1/webhooks/subscriptions", tag = "webhooks",
    responses((status = 200, body = SubscriptionList)), security(("api_key" = [])))]
pub async fn bank_subscriptions(State(state): State<AppState>) -> Result<Json<SubscriptionList>, ApiError> {
    Ok(Json(SubscriptionList { subscriptions: state.webhooks.subscriptions(BANK_OWNER).await? }))
}

#[utoipa::path(delete, path = "/v1/webhooks/subscriptions/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn bank_unsubscribe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(state.webhooks.remove(BANK_OWNER, &id).await?))
}

#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "webhooks", params(DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let owner = q.owner.clone();
    Ok(Json(page(&state, owner.as_deref(), &q).await?))
}

#[utoipa::path(get, path = "/v1/webhooks/deliveries/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Delivery), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_delivery(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(state.webhooks.delivery(&id).await?.0))
}

#[utoipa::path(post, path = "/v1/webhooks/deliveries/{id}/replay", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "queued again, due now, same webhook-id and body", body = Delivery),
        (status = 404, body = ErrorBody),
        (status = 409, description = "not_replayable: pending already, or its subscription was removed", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn replay_delivery(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(state.webhooks.replay(&id).await?))
}
