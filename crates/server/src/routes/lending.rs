//! Lending over HTTP: products, applications with automated decisions, offers, acceptance with
//! disbursement through the ledger, repayments, draws, prepayments, loans with ledger balances,
//! end of day, the review queue, and the supply-chain registry (documents, receivables,
//! confirmation, financing). Storage, accounting and ledger wiring live in `lending-platform`;
//! handlers translate.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use ledger::AccountId;
use lending::{DocumentKind, LendingError, LoanId, PrepayMode, Product};
use lending_platform::{
    AcceptInput, AcceptOutcome, ApplyInput, EodReport, FinanceInput, LendingPlatformError, LoanSummary, LoanView,
    OperationOutcome, ReceivableInput, ReviewApproval, ReviewDecline, ReviewItem, WriteOffInput, WriteOffOutcome,
};
use money::{Amount, Currency};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, Permission, Role};
use crate::error::{transfer_error_status, ApiError, ErrorBody};
use crate::extract::{bounded, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

fn lending_status(e: &LendingError) -> StatusCode {
    use LendingError::*;
    match e {
        UnknownProduct(_) | UnknownDocument(_) | UnknownReceivable(_) => StatusCode::NOT_FOUND,
        DuplicateDocument(_)
        | DuplicateReceivable(_)
        | ReceivableAlreadyFinanced(_)
        | NotApproved(_)
        | LoanWrittenOff(_)
        | NotInReview(_)
        | ReviewAlreadyDecided(_)
        | EodDateInPast { .. }
        | OperationBeforeLastEod { .. } => StatusCode::CONFLICT,
        RegistryTampered { .. } | IrrNoConvergence | InvalidProduct { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<LendingPlatformError> for ApiError {
    fn from(e: LendingPlatformError) -> Self {
        match e {
            LendingPlatformError::Lending(e) => {
                let status = lending_status(&e);
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    return ApiError::internal(e);
                }
                let code = match &e {
                    LendingError::DuplicateDocument(_) => "document_already_registered",
                    other => other.code(),
                };
                ApiError::new(status, code, e.to_string())
            }
            LendingPlatformError::NotFound(what, id) => {
                ApiError::new(StatusCode::NOT_FOUND, format!("{what}_not_found"), format!("no {what} {id}"))
            }
            LendingPlatformError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m),
            LendingPlatformError::Rejected { code, message } => ApiError::new(
                transfer_error_status(code),
                code.code(),
                format!("the ledger rejected the operation: {message}"),
            ),
            LendingPlatformError::Conflict(id) => ApiError::new(
                StatusCode::CONFLICT,
                "concurrent_modification",
                format!("loan {id} was changed concurrently; retry"),
            ),
            e @ LendingPlatformError::Stale(_) => {
                ApiError::new(StatusCode::CONFLICT, "concurrent_modification", e.to_string())
            }
            LendingPlatformError::Ledger(e) => e.into(),
            LendingPlatformError::Risk(e) => e.into(),
            LendingPlatformError::EodDateOutOfRange { requested, earliest, latest } => {
                let message = LendingPlatformError::EodDateOutOfRange { requested, earliest, latest }.to_string();
                let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "eod_date_out_of_range", message);
                e.details = Some(serde_json::json!({ "requested": requested, "after": earliest, "latest": latest }));
                e
            }
            e @ LendingPlatformError::FraudCheckUnavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "fraud_check_unavailable", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

#[utoipa::path(get, path = "/v1/lending/products", tag = "lending",
    responses((status = 200, description = "Loan products with pricing grids and eligibility rules", body = Vec<Object>)),
    security(("api_key" = [])))]
pub async fn list_products(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Product>>, ApiError> {
    caller.require(Permission::LendingRead)?;
    Ok(Json(state.lending.catalog().products.clone()))
}

/// A credit decision in brief, with the full record (inputs, factors, versions) under `decision`.
#[derive(Serialize, ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub applicant_id: String,
    pub product_code: String,
    /// approve, review or decline.
    pub outcome: String,
    pub grade: Option<String>,
    pub score: Option<i32>,
    /// Approved limit in minor units.
    pub limit: Option<i64>,
    pub currency: Option<String>,
    /// Annual contractual rate (decimal string).
    pub annual_rate: Option<String>,
    /// The reasons in words.
    pub reasons: Vec<String>,
    pub reason_codes: Vec<String>,
    /// The risk engine's verdict on the application (allow, review or reject); absent when
    /// the application failed eligibility before any fraud check.
    pub fraud_verdict: Option<String>,
    /// The risk engine's `loan_application` decision (`GET /v1/risk/decisions/{id}`).
    pub risk_decision_id: Option<uuid::Uuid>,
    /// The risk review case it opened, when the engine said review.
    pub risk_case_id: Option<u64>,
    pub model_version: String,
    #[schema(value_type = Object)]
    pub decision: lending::Decision,
}

/// The decision's reasons, then the fraud check's that the decision did not already copy.
fn all_reasons(d: &lending::Decision) -> impl Iterator<Item = &lending::Reason> {
    d.reasons.iter().chain(d.fraud.reasons.iter().filter(|r| !d.reasons.contains(r)))
}

fn enum_word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn application_view(d: lending::Decision) -> ApplicationView {
    ApplicationView {
        id: d.id.0.to_string(),
        applicant_id: d.applicant_id.clone(),
        product_code: d.product_code.clone(),
        outcome: d.outcome.as_str().to_string(),
        grade: d.grade.map(|g| format!("{g:?}")),
        score: d.score,
        limit: d.limit.map(|l| l.minor),
        currency: d.limit.map(|l| l.currency.code().to_string()),
        annual_rate: d.annual_rate.map(|r| r.to_string()),
        reasons: all_reasons(&d).map(|r| r.message.clone()).collect(),
        reason_codes: all_reasons(&d).map(|r| r.code.clone()).collect(),
        fraud_verdict: d.fraud.risk_decision_id.map(|_| enum_word(&d.fraud.verdict)),
        risk_decision_id: d.fraud.risk_decision_id,
        risk_case_id: d.fraud.risk_case_id,
        model_version: format!("{} / {}", d.model_version, d.scorecard_version),
        decision: d,
    }
}

#[utoipa::path(post, path = "/v1/lending/applications", tag = "lending",
    request_body(content = Object, description = "{\"applicant_id\": \"...\", \"product_code\": \"instant_consumer|tax_sme|supply_chain\", \"kind\": \"individual|sme|...\", \"amount\": requested minor units, \"channel\": \"web|mobile|...\", \"device_fingerprint\", \"ip\", \"phone\", \"id_number\"} (all but the first two optional; device, IP and phone feed the risk engine's fraud check)"),
    responses((status = 201, body = ApplicationView), (status = 404, description = "Unknown product", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ApplyInput>,
) -> Result<(StatusCode, Json<ApplicationView>), ApiError> {
    caller.require(Permission::LendingWrite)?;
    let d = state.lending.apply(&input).await?;
    Ok((StatusCode::CREATED, Json(application_view(d))))
}

#[utoipa::path(get, path = "/v1/lending/applications/{id}", tag = "lending", params(("id" = String, Path)),
    responses((status = 200, body = ApplicationView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_application(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ApplicationView>, ApiError> {
    caller.require(Permission::LendingRead)?;
    let mut d = state.lending.decision(&id.to_string()).await?;
    if !caller.role.allows(Permission::LendingReview) {
        // The analyst and the internal note are for lending officers; the outcome and the
        // reasons stay visible.
        d.manual_review = None;
    }
    Ok(Json(application_view(d)))
}

#[utoipa::path(post, path = "/v1/lending/applications/{id}/offer", tag = "lending", params(("id" = String, Path)),
    responses((status = 201, description = "Offer with schedule previews and APR per term and method", body = Object),
              (status = 409, description = "The decision is not an approval", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn make_offer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<lending::Offer>), ApiError> {
    caller.require(Permission::LendingWrite)?;
    Ok((StatusCode::CREATED, Json(state.lending.offer(&id.to_string()).await?)))
}

#[utoipa::path(post, path = "/v1/lending/offers/{id}/accept", tag = "lending", params(("id" = String, Path)),
    request_body(content = Object, description = "{\"amount\": minor units, \"term_months\": 12, \"method\": \"equal_installment\", \"deposit_account_id\": \"...\"}"),
    responses((status = 201, description = "Contract, loan and disbursement transfers", body = Object),
              (status = 422, description = "amount_above_limit, amount_below_minimum, term_not_offered, method_not_offered, offer_expired, currency_mismatch", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn accept_offer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<AcceptInput>,
) -> Result<(StatusCode, Json<AcceptOutcome>), ApiError> {
    caller.require(Permission::LendingWrite)?;
    let out = state.lending.accept(&id.to_string(), &input).await?;
    Ok((if out.created { StatusCode::CREATED } else { StatusCode::OK }, Json(out)))
}

#[utoipa::path(get, path = "/v1/lending/loans/{id}", tag = "lending", params(("id" = String, Path)),
    responses((status = 200, description = "Loan state, schedule, ledger balances, reconciliation flag, alerts", body = Object),
              (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_loan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<LoanView>, ApiError> {
    caller.require(Permission::LendingRead)?;
    Ok(Json(state.lending.view(LoanId(id)).await?))
}

/// A payment into or a draw from a loan.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyRequest {
    /// Minor units.
    pub amount: i64,
    /// Default CNY.
    #[schema(value_type = Option<String>)]
    pub currency: Option<Currency>,
    /// Business date; default today (or the day after the last end of day if later).
    pub date: Option<NaiveDate>,
    /// Pay from this account instead of the loan's repayment account.
    #[schema(value_type = Option<String>)]
    pub from_account_id: Option<AccountId>,
    /// Prepayments: keep_term (default) or keep_installment.
    #[schema(value_type = Option<String>)]
    pub mode: Option<PrepayMode>,
}

impl MoneyRequest {
    fn amount(&self) -> Amount {
        Amount::new(self.amount, self.currency.unwrap_or(Currency::CNY))
    }
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/repayments", tag = "lending", params(("id" = String, Path)),
    request_body = MoneyRequest,
    responses((status = 200, description = "Allocation by the waterfall, postings and the loan after", body = Object),
              (status = 409, description = "loan_written_off: recoveries on written-off loans are refused", body = ErrorBody),
              (status = 422, description = "currency_mismatch, insufficient_funds, ...", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn repay(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<MoneyRequest>,
) -> Result<Json<OperationOutcome>, ApiError> {
    caller.require(Permission::LendingWrite)?;
    Ok(Json(state.lending.repay(LoanId(id), r.amount(), r.date, r.from_account_id).await?))
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/draws", tag = "lending", params(("id" = String, Path)),
    request_body = MoneyRequest,
    responses((status = 200, body = Object), (status = 422, description = "line_exceeded, wrong_loan_kind, ...", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn draw(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<MoneyRequest>,
) -> Result<Json<OperationOutcome>, ApiError> {
    caller.require(Permission::LendingWrite)?;
    Ok(Json(state.lending.draw(LoanId(id), r.amount(), r.date).await?))
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/prepayments", tag = "lending", params(("id" = String, Path)),
    request_body = MoneyRequest,
    responses((status = 200, body = Object), (status = 422, description = "prepay_too_small, prepay_while_overdue, ...", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn prepay(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<MoneyRequest>,
) -> Result<Json<OperationOutcome>, ApiError> {
    caller.require(Permission::LendingWrite)?;
    let mode = r.mode.unwrap_or(PrepayMode::KeepTerm);
    Ok(Json(state.lending.prepay(LoanId(id), r.amount(), mode, r.date, r.from_account_id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoanQuery {
    /// active, overdue, paid_off, written_off.
    status: Option<String>,
    /// current, m1, m2, m3_plus.
    bucket: Option<String>,
    applicant_id: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct LoanList {
    #[schema(value_type = Vec<Object>)]
    pub loans: Vec<LoanSummary>,
    pub next_after: Option<String>,
    /// Open loans per delinquency bucket.
    pub buckets: BTreeMap<String, i64>,
}

#[utoipa::path(get, path = "/v1/lending/loans", tag = "lending", params(LoanQuery),
    responses((status = 200, body = LoanList)), security(("api_key" = [])))]
pub async fn list_loans(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LoanQuery>,
) -> Result<Json<LoanList>, ApiError> {
    caller.require(Permission::LendingRead)?;
    let limit = bounded("limit", q.limit.unwrap_or(100), 1, 1000)?;
    let loans = state
        .lending
        .list_loans(q.status.as_deref(), q.bucket.as_deref(), q.applicant_id.as_deref(), q.after.as_deref(), limit)
        .await?;
    let next_after = (loans.len() as i64 == limit).then(|| loans.last().map(|l| l.id.clone())).flatten();
    let buckets = state.lending.store().bucket_counts().await?.into_iter().collect();
    Ok(Json(LoanList { loans, next_after, buckets }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EodRequest {
    /// The business day to close, YYYY-MM-DD.
    pub date: NaiveDate,
}

#[utoipa::path(post, path = "/v1/lending/eod", tag = "lending", request_body = EodRequest,
    responses((status = 200, description = "Report; `already_run` when the date was done before (nothing written)", body = Object),
              (status = 409, description = "eod_date_in_past", body = ErrorBody),
              (status = 422, description = "eod_date_out_of_range: after tomorrow, or more than the configured number of days (default 31) after the last end of day; `details` gives the allowed range", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn run_eod(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<EodRequest>,
) -> Result<Json<EodReport>, ApiError> {
    caller.require(Permission::LendingAdmin)?;
    Ok(Json(state.lending.run_eod(r.date, |_, _| {}).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ReviewQueue {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<ReviewItem>,
}

#[utoipa::path(get, path = "/v1/lending/review-queue", tag = "lending",
    responses((status = 200, body = ReviewQueue)), security(("api_key" = [])))]
pub async fn review_queue(State(state): State<AppState>, caller: Caller) -> Result<Json<ReviewQueue>, ApiError> {
    caller.require(Permission::LendingRead)?;
    Ok(Json(ReviewQueue { items: state.lending.review_queue(1000).await? }))
}

fn analyst(caller: &Caller) -> lending::Analyst {
    lending::Analyst { id: caller.key_id.to_string(), role: caller.role.as_str().to_string(), at: chrono::Utc::now() }
}

/// An analyst's approval of an application in manual review.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewApproveRequest {
    /// Internal note (required).
    pub note: String,
    /// Approved limit in minor units; default the proposed limit. At most the product's grid
    /// limit for the grade, at least the product minimum.
    pub limit_minor: Option<i64>,
    /// Another offered grade (AAA, AA, A, BBB, BB, B, CCC, ...); its grid rate applies.
    #[schema(value_type = Option<String>)]
    pub grade: Option<lending::RiskGrade>,
}

/// An analyst's decline of an application in manual review.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDeclineRequest {
    /// insufficient_income, high_indebtedness, adverse_credit_history, unverifiable_information,
    /// suspected_fraud, policy_exception_refused or other. The customer sees its message.
    pub reason_code: String,
    /// Internal note (required).
    pub note: String,
}

#[utoipa::path(post, path = "/v1/lending/review-queue/{decision_id}/approve", tag = "lending",
    params(("decision_id" = String, Path)), request_body = ReviewApproveRequest,
    responses((status = 200, description = "The approved application (idempotent: approving it again returns the same)", body = ApplicationView),
              (status = 404, description = "review_item_not_found", body = ErrorBody),
              (status = 409, description = "review_already_decided (it was declined)", body = ErrorBody),
              (status = 422, description = "limit_above_grid, amount_below_minimum, grade_not_offered, invalid_review", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn approve_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<ReviewApproveRequest>,
) -> Result<Json<ApplicationView>, ApiError> {
    caller.require(Permission::LendingReview)?;
    let input = ReviewApproval { note: r.note, limit_minor: r.limit_minor, grade: r.grade };
    Ok(Json(application_view(state.lending.approve_review(&id.to_string(), &input, &analyst(&caller)).await?)))
}

#[utoipa::path(post, path = "/v1/lending/review-queue/{decision_id}/decline", tag = "lending",
    params(("decision_id" = String, Path)), request_body = ReviewDeclineRequest,
    responses((status = 200, description = "The declined application with the reason the customer sees (idempotent)", body = ApplicationView),
              (status = 404, description = "review_item_not_found", body = ErrorBody),
              (status = 409, description = "review_already_decided (it was approved)", body = ErrorBody),
              (status = 422, description = "unknown_decline_reason, invalid_review", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn decline_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<ReviewDeclineRequest>,
) -> Result<Json<ApplicationView>, ApiError> {
    caller.require(Permission::LendingReview)?;
    let input = ReviewDecline { reason_code: r.reason_code, note: r.note };
    Ok(Json(application_view(state.lending.decline_review(&id.to_string(), &input, &analyst(&caller)).await?)))
}

/// A write-off request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteOffRequest {
    pub reason: String,
    /// Write off a loan less than 90 days past due (administrators only).
    #[serde(default)]
    pub force: bool,
    /// Business date; default today (or the day after the last end of day if later).
    pub date: Option<NaiveDate>,
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/write-off", tag = "lending", params(("id" = String, Path)),
    request_body = WriteOffRequest,
    responses((status = 200, description = "Amounts charged off to gl.loan_loss_allowance, postings, transfers and the written-off loan; `already_written_off` on a repeat", body = Object),
              (status = 404, description = "loan_not_found", body = ErrorBody),
              (status = 422, description = "loan_not_overdue_enough (under 90 days past due), loan_not_active (paid off), invalid_request", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn write_off(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<WriteOffRequest>,
) -> Result<Json<WriteOffOutcome>, ApiError> {
    caller.require(Permission::LendingAdmin)?;
    if r.force && caller.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin may force a write-off"));
    }
    let input = WriteOffInput { reason: r.reason, force: r.force, date: r.date };
    Ok(Json(state.lending.write_off(LoanId(id), &input, &analyst(&caller)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    /// order, invoice, delivery_receipt, contract, confirmation, financing, other.
    #[schema(value_type = String)]
    pub kind: DocumentKind,
    /// The document text (hashed with SHA-256), or
    pub content: Option<String>,
    /// its SHA-256 as lower-case hex.
    pub content_hash: Option<String>,
    pub party_id: String,
    #[serde(default)]
    pub reference: String,
}

#[utoipa::path(post, path = "/v1/lending/documents", tag = "lending", request_body = DocumentRequest,
    responses((status = 201, description = "The hash-chained registry entry", body = Object),
              (status = 409, description = "document_already_registered", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn register_document(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<DocumentRequest>,
) -> Result<(StatusCode, Json<lending::RegistryEntry>), ApiError> {
    caller.require(Permission::LendingWrite)?;
    let e = state
        .lending
        .register_document(r.kind, r.content.as_deref(), r.content_hash.as_deref(), &r.party_id, &r.reference)
        .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(post, path = "/v1/lending/receivables", tag = "lending",
    request_body(content = Object, description = "{id, core_enterprise_id, supplier_id, amount, issue_date, due_date, documents: [{kind, content}]}"),
    responses((status = 201, body = Object), (status = 409, description = "document_already_registered, duplicate_receivable", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn register_receivable(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<ReceivableInput>,
) -> Result<(StatusCode, Json<lending::Receivable>), ApiError> {
    caller.require(Permission::LendingWrite)?;
    Ok((StatusCode::CREATED, Json(state.lending.register_receivable(&r).await?)))
}

#[utoipa::path(get, path = "/v1/lending/receivables/{id}", tag = "lending", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_receivable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Permission::LendingRead)?;
    let (r, loan) = state.lending.receivable(&id).await?;
    Ok(Json(serde_json::json!({"receivable": r, "loan_id": loan})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub core_enterprise_id: String,
}

#[utoipa::path(post, path = "/v1/lending/receivables/{id}/confirm", tag = "lending", params(("id" = String, Path)),
    request_body = ConfirmRequest,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn confirm_receivable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<ConfirmRequest>,
) -> Result<Json<lending::Receivable>, ApiError> {
    caller.require(Permission::LendingWrite)?;
    Ok(Json(state.lending.confirm_receivable(&id, &r.core_enterprise_id).await?))
}

#[utoipa::path(post, path = "/v1/lending/receivables/{id}/finance", tag = "lending", params(("id" = String, Path)),
    request_body(content = Object, description = "{supplier_id, amount, deposit_account_id, repayment_account_id}"),
    responses((status = 201, description = "Receivable, contract, loan, disbursement transfers", body = Object),
              (status = 409, description = "receivable_already_financed", body = ErrorBody),
              (status = 422, description = "receivable_not_confirmed, amount_above_limit, ...", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn finance_receivable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<FinanceInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller.require(Permission::LendingWrite)?;
    let (receivable, out) = state.lending.finance_receivable(&id, &r).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"receivable": receivable, "financing": out}))))
}
