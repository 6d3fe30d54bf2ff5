//! Ledger endpoints: accounts, balances, statements and transfers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{transfer_error_status, ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::routes::risk::{screen_transfer, submit_held};
use crate::AppState;
use risk_platform::Screening;

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, description = "Opened", body = Account),
              (status = 200, description = "Already open with the same content", body = Account),
              (status = 409, description = "Id exists with other content", body = ErrorBody),
              (status = 422, description = "Invalid account", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn open_account(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewAccount>,
) -> Result<Response, ApiError> {
    let mut out = state.ledger.store().open_accounts(std::slice::from_ref(&request), state.ledger.now()).await?;
    let (account, created) = out.pop().expect("one result per request");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(account)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Return accounts with ids after this one (paging cursor).
    after: Option<Uuid>,
    /// Page size, 1..=1000 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountPage {
    pub accounts: Vec<Account>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<AccountId>,
}

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(ListQuery),
    responses((status = 200, body = AccountPage)), security(("api_key" = [])))]
pub async fn list_accounts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<AccountPage>, ApiError> {
    let limit = page_limit("limit", q.limit, 100, MAX_PAGE)?;
    let accounts = state.ledger.list_accounts(q.after.map(AccountId), limit).await?;
    let next_after = (accounts.len() == limit as usize).then(|| accounts.last().map(|a| a.id)).flatten();
    Ok(Json(AccountPage { accounts, next_after }))
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Account), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_account(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Account>, ApiError> {
    Ok(Json(state.ledger.account(AccountId(id)).await?))
}

async fn change_status(state: AppState, id: Uuid, to: AccountStatus) -> Result<Json<Account>, ApiError> {
    Ok(Json(state.ledger.set_status(AccountId(id), to).await?))
}

#[utoipa::path(post, path = "/v1/accounts/{id}/freeze", tag = "accounts", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Frozen: no debits, credits still accepted", body = Account),
              (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn freeze_account(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Account>, ApiError> {
    change_status(state, id, AccountStatus::Frozen).await
}

#[utoipa::path(post, path = "/v1/accounts/{id}/unfreeze", tag = "accounts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Account), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn unfreeze_account(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Account>, ApiError> {
    change_status(state, id, AccountStatus::Open).await
}

#[utoipa::path(post, path = "/v1/accounts/{id}/close", tag = "accounts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Account), (status = 409, description = "Non-zero balance or already closed", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn close_account(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Account>, ApiError> {
    change_status(state, id, AccountStatus::Closed).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// RFC 3339 timestamp (e.g. `2026-11-01T00:00:00Z`) or microseconds since the Unix epoch.
    as_of: Option<String>,
}

fn parse_time(text: &str) -> Result<i64, ApiError> {
    if let Ok(micros) = text.parse::<i64>() {
        return Ok(micros);
    }
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_micros()).map_err(|_| {
        ApiError::bad_request("invalid_query", format!("as_of {text:?} is neither RFC 3339 nor epoch microseconds"))
    })
}

#[utoipa::path(get, path = "/v1/accounts/{id}/balance", tag = "accounts", params(("id" = Uuid, Path), BalanceQuery),
    responses((status = 200, body = BalanceView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn balance(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<BalanceQuery>,
) -> Result<Json<BalanceView>, ApiError> {
    let as_of = q.as_of.as_deref().map(parse_time).transpose()?;
    Ok(Json(state.ledger.balance(AccountId(id), as_of).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    /// Journal position to continue after (paging cursor; 0 or absent = from the start).
    after: Option<i64>,
    /// Page size, 1..=1000 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct EntryPage {
    pub entries: Vec<Entry>,
    pub next_after: Option<i64>,
}

#[utoipa::path(get, path = "/v1/accounts/{id}/entries", tag = "accounts", params(("id" = Uuid, Path), EntriesQuery),
    responses((status = 200, body = EntryPage), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn entries(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<EntriesQuery>,
) -> Result<Json<EntryPage>, ApiError> {
    let limit = page_limit("limit", q.limit, 100, MAX_PAGE)?;
    let entries = state.ledger.entries(AccountId(id), q.after.unwrap_or(0), limit).await?;
    let next_after = (entries.len() == limit as usize).then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(Json(EntryPage { entries, next_after }))
}

/// Turns one outcome into a response: 201 created, 200 replayed, 4xx failed.
fn outcome_response(outcome: TransferOutcome) -> Response {
    match outcome {
        TransferOutcome::Created { transfer } => (StatusCode::CREATED, Json(transfer)).into_response(),
        TransferOutcome::Replayed { transfer } => (StatusCode::OK, Json(transfer)).into_response(),
        TransferOutcome::Failed { code, message, .. } => {
            ApiError::new(transfer_error_status(code), code.code(), message).into_response()
        }
    }
}

#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = TransferRequest,
    responses((status = 201, description = "Committed", body = Transfer),
              (status = 200, description = "Replay of an earlier identical request", body = Transfer),
              (status = 202, description = "Screened by the risk engine and sent to review: held as a pending transfer until the case is resolved", body = crate::routes::risk::HeldForReview),
              (status = 409, description = "Same id with different content", body = ErrorBody),
              (status = 422, description = "Rejected, e.g. insufficient_funds, or risk_rejected when `metadata.channel` is screened", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_transfer(
    State(state): State<AppState>,
    ApiJson(mut request): ApiJson<TransferRequest>,
) -> Result<Response, ApiError> {
    request.linked = false;
    // Risk screening for configured channels: reject -> 422 risk_rejected, nothing written;
    // review -> the transfer is held as a pending transfer until the case is resolved.
    if let Screening::Review(decision) = screen_transfer(&state, &request).await? {
        return submit_held(&state, request, *decision).await;
    }
    let outcome = state.ledger.submit(request).await?;
    state.metrics.count_outcomes([&outcome]);
    Ok(outcome_response(outcome))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// At most 8190 transfers, applied in order in one database transaction.
    pub transfers: Vec<TransferRequest>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per submitted transfer, in order.
    pub results: Vec<TransferOutcome>,
    pub created: usize,
    pub replayed: usize,
    pub failed: usize,
}

#[utoipa::path(post, path = "/v1/transfers/batch", tag = "transfers", request_body = BatchRequest,
    responses((status = 200, description = "Per-transfer results", body = BatchResponse),
              (status = 413, description = "More than 8190 transfers", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_batch(
    State(state): State<AppState>,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let results = state.ledger.submit_batch(&batch.transfers).await?;
    state.metrics.count_outcomes(&results);
    let created = results.iter().filter(|r| matches!(r, TransferOutcome::Created { .. })).count();
    let replayed = results.iter().filter(|r| matches!(r, TransferOutcome::Replayed { .. })).count();
    let failed = results.len() - created - replayed;
    Ok(Json(BatchResponse { results, created, replayed, failed }))
}

#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", params(("id" = Uuid, Path)),
    responses((status = 200, body = Transfer), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_transfer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Transfer>, ApiError> {
    Ok(Json(state.ledger.transfer(TransferId(id)).await?))
}

/// Second phase of a two-phase transfer.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// Id of the resolving entry. Defaults to one derived from the pending id, so a retried
    /// post or void is idempotent even without it.
    #[serde(default)]
    pub id: Option<TransferId>,
    /// For post: minor units to post (at most the held amount); absent = all.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

async fn resolve(
    state: AppState,
    pending: Uuid,
    body: Option<ResolveRequest>,
    kind: TransferKind,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let id = body.id.unwrap_or_else(|| TransferId(Uuid::new_v5(&pending, kind.as_str().as_bytes())));
    let request = TransferRequest {
        kind,
        amount: body.amount,
        reference: body.reference,
        metadata: body.metadata,
        ..TransferRequest::post(id, TransferId(pending), None)
    };
    let outcome = state.ledger.submit(request).await?;
    state.metrics.count_outcomes([&outcome]);
    Ok(outcome_response(outcome))
}

#[utoipa::path(post, path = "/v1/transfers/{id}/post", tag = "transfers", params(("id" = Uuid, Path, description = "Pending transfer id")),
    request_body(content = Option<ResolveRequest>),
    responses((status = 201, body = Transfer), (status = 200, description = "Replay", body = Transfer), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post_pending(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<ResolveRequest>>,
) -> Result<Response, ApiError> {
    resolve(state, id, body.map(|b| b.0), TransferKind::PostPending).await
}

#[utoipa::path(post, path = "/v1/transfers/{id}/void", tag = "transfers", params(("id" = Uuid, Path, description = "Pending transfer id")),
    request_body(content = Option<ResolveRequest>),
    responses((status = 201, body = Transfer), (status = 200, description = "Replay", body = Transfer), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn void_pending(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<ResolveRequest>>,
) -> Result<Response, ApiError> {
    resolve(state, id, body.map(|b| b.0), TransferKind::VoidPending).await
}
