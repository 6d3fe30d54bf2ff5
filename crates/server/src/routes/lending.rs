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
use lending::{DocumentKind, LendingError, LoanId, PrepayMode, Product, Receivable};
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
            LendingPlatformError::Integrity { table, record, reason } => ApiError::integrity(table, &record, reason),
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
    responses((status = 200, description = "Loan products with pricing grids and eligibility rules", body = Vec<Product>)),
    security(("api_key" = [])))]
pub async fn list_products(State(state): State<AppState>) -> Result<Json<Vec<Product>>, ApiError> {
    Ok(Json(state.lending.catalog().products.clone()))
}

/// A credit decision in brief, with the full record (inputs, factors, versions) under `decision`.
#[derive(Serialize, ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub applicant_id: String,
    pub product_code: String,
    /// approve, review or decline.
    #[schema(value_type = lending::Outcome)]
    pub outcome: String,
    #[schema(value_type = Option<lending::RiskGrade>)]
    pub grade: Option<String>,
    pub score: Option<i32>,
    /// Approved limit in minor units.
    pub limit: Option<i64>,
    #[schema(value_type = Option<Currency>)]
    pub currency: Option<String>,
    /// Annual contractual rate (decimal string).
    #[schema(example = "0.0500")]
    pub annual_rate: Option<String>,
    /// The reasons in words.
    pub reasons: Vec<String>,
    pub reason_codes: Vec<String>,
    /// The risk engine's verdict on the application (allow, review or reject); absent when
    /// the application failed eligibility before any fraud check.
    #[schema(value_type = Option<lending::FraudVerdict>)]
    pub fraud_verdict: Option<String>,
    /// The risk engine's `loan_application` decision (`GET /v1/risk/decisions/{id}`).
    pub risk_decision_id: Option<uuid::Uuid>,
    /// The risk review case it opened, when the engine said review.
    pub risk_case_id: Option<u64>,
    /// Decision pipeline and scorecard versions, e.g. `lending-decision-1 / consumer-v1`.
    pub model_version: String,
    /// The full decision record: inputs, factors, versions, the fraud check and, for lending
    /// officers, the manual review.
    pub decision: lending::Decision,
}

/// The decision's reasons, then the fraud check's that the decision did not already copy.
fn all_reasons(d: &lending::Decision) -> impl Iterator<Item = &lending::Reason> {
    d.reasons.iter().chain(d.fraud.reasons.iter().filter(|r| !d.reasons.contains(r)))
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
        fraud_verdict: d.fraud.risk_decision_id.map(|_| risk_platform::store::enum_text(&d.fraud.verdict)),
        risk_decision_id: d.fraud.risk_decision_id,
        risk_case_id: d.fraud.risk_case_id,
        model_version: format!("{} / {}", d.model_version, d.scorecard_version),
        decision: d,
    }
}

#[utoipa::path(post, path = "/v1/lending/applications", tag = "lending",
    request_body(content = ApplyInput, description = "The application: applicant and product required; device, IP and phone feed the risk engine's fraud check"),
    responses((status = 201, description = "The automated decision: approve, review (in the review queue) or decline", body = ApplicationView),
              (status = 404, description = "unknown_product: no product with this `product_code`", body = ErrorBody),
              (status = 422, description = "invalid_request: well-formed JSON of the wrong shape, `applicant_id` not 1..100 characters, `amount` not positive or `ip` not an IP address; data_source_error: the applicant's external data could not be read; missing_field, invalid_field: the risk engine refused the application's event (e.g. an empty `id_number`)", body = ErrorBody),
              (status = 503, description = "fraud_check_unavailable: this process runs no risk engine, and no application is decided without its fraud check; overloaded: the risk engine's decision log is full (see `Retry-After`); unavailable: the database is unreachable", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn apply(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ApplyInput>,
) -> Result<(StatusCode, Json<ApplicationView>), ApiError> {
    let d = state.lending.apply(&input).await?;
    Ok((StatusCode::CREATED, Json(application_view(d))))
}

#[utoipa::path(get, path = "/v1/lending/applications/{id}", tag = "lending",
    params(("id" = Uuid, Path, description = "The application (decision) id")),
    responses((status = 200, description = "The decision; `decision.manual_review` only for roles that may review", body = ApplicationView),
              (status = 404, description = "application_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_application(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ApplicationView>, ApiError> {
    let mut d = state.lending.decision(&id.to_string()).await?;
    if !caller.allows(Permission::LendingReview) {
        // The analyst and the internal note are for lending officers; the outcome and the
        // reasons stay visible.
        d.manual_review = None;
    }
    Ok(Json(application_view(d)))
}

#[utoipa::path(post, path = "/v1/lending/applications/{id}/offer", tag = "lending",
    params(("id" = Uuid, Path, description = "The application (decision) id")),
    responses((status = 201, description = "Offer with schedule previews and APR per term and method (idempotent: the same offer again)", body = lending::Offer),
              (status = 404, description = "application_not_found, unknown_product", body = ErrorBody),
              (status = 409, description = "decision_not_approved: the decision is a decline or still in review", body = ErrorBody),
              (status = 422, description = "invalid_schedule, overflow: no schedule preview can be built for a term of the offer", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn make_offer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<lending::Offer>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.lending.offer(&id.to_string()).await?)))
}

#[utoipa::path(post, path = "/v1/lending/offers/{id}/accept", tag = "lending",
    params(("id" = Uuid, Path, description = "The offer id")),
    request_body = AcceptInput,
    responses((status = 201, description = "Contract, loan and disbursement transfers", body = AcceptOutcome),
              (status = 200, description = "The same acceptance again: the stored loan with `created` false and no transfers", body = AcceptOutcome),
              (status = 404, description = "offer_not_found; account_not_found: the deposit account does not exist", body = ErrorBody),
              (status = 409, description = "concurrent_modification, idempotency_conflict: the loan was opened concurrently; retry", body = ErrorBody),
              (status = 422, description = "invalid_request; offer_expired, currency_mismatch, amount_must_be_positive, amount_above_limit, amount_below_minimum, term_not_offered, method_not_offered, invalid_schedule; or the ledger refused the disbursement (e.g. credit_account_closed)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn accept_offer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<AcceptInput>,
) -> Result<(StatusCode, Json<AcceptOutcome>), ApiError> {
    let out = state.lending.accept(&id.to_string(), &input).await?;
    Ok((if out.created { StatusCode::CREATED } else { StatusCode::OK }, Json(out)))
}

#[utoipa::path(get, path = "/v1/lending/loans/{id}", tag = "lending", params(("id" = Uuid, Path, description = "The loan id")),
    responses((status = 200, description = "Loan state, schedule, ledger balances, reconciliation flag, alerts", body = LoanView),
              (status = 404, description = "loan_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_loan(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<LoanView>, ApiError> {
    Ok(Json(state.lending.view(LoanId(id)).await?))
}

/// A payment into or a draw from a loan.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyRequest {
    /// Minor units.
    #[schema(example = 10000)]
    pub amount: i64,
    /// Default CNY.
    pub currency: Option<Currency>,
    /// Business date; default today (or the day after the last end of day if later).
    pub date: Option<NaiveDate>,
    /// Repayments and prepayments: pay from this account instead of the loan's repayment account.
    pub from_account_id: Option<AccountId>,
    /// Prepayments: keep_term (default) or keep_installment.
    pub mode: Option<PrepayMode>,
}

impl MoneyRequest {
    fn amount(&self) -> Amount {
        Amount::new(self.amount, self.currency.unwrap_or(Currency::CNY))
    }
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/repayments", tag = "lending", params(("id" = Uuid, Path, description = "The loan id")),
    request_body = MoneyRequest,
    responses((status = 200, description = "Allocation by the waterfall, postings and the loan after", body = OperationOutcome),
              (status = 404, description = "loan_not_found; debit_account_not_found: `from_account_id` does not exist", body = ErrorBody),
              (status = 409, description = "loan_written_off: recoveries on written-off loans are refused; operation_before_last_eod: `date` is not after the loan's last end of day; concurrent_modification: the loan changed meanwhile, retry", body = ErrorBody),
              (status = 422, description = "invalid_request; amount_must_be_positive, currency_mismatch, loan_not_active (paid off), before_loan_start; or the ledger refused the payment: insufficient_funds, debit_account_frozen, debit_account_closed, ...", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn repay(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<MoneyRequest>,
) -> Result<Json<OperationOutcome>, ApiError> {
    Ok(Json(state.lending.repay(LoanId(id), r.amount(), r.date, r.from_account_id).await?))
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/draws", tag = "lending", params(("id" = Uuid, Path, description = "The loan id")),
    request_body = MoneyRequest,
    responses((status = 200, description = "Postings, transfers and the line after the draw (no `allocation`)", body = OperationOutcome),
              (status = 404, description = "loan_not_found", body = ErrorBody),
              (status = 409, description = "loan_written_off; operation_before_last_eod: `date` is not after the loan's last end of day; concurrent_modification: the loan changed meanwhile, retry", body = ErrorBody),
              (status = 422, description = "invalid_request; wrong_loan_kind (not a revolving line), line_exceeded, loan_not_active (paid off or matured), amount_must_be_positive, currency_mismatch, before_loan_start; or the ledger refused the draw (e.g. credit_account_closed)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn draw(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<MoneyRequest>,
) -> Result<Json<OperationOutcome>, ApiError> {
    Ok(Json(state.lending.draw(LoanId(id), r.amount(), r.date).await?))
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/prepayments", tag = "lending", params(("id" = Uuid, Path, description = "The loan id")),
    request_body = MoneyRequest,
    responses((status = 200, description = "Allocation, postings and the loan after, rescheduled by `mode` (or paid off)", body = OperationOutcome),
              (status = 404, description = "loan_not_found; debit_account_not_found: `from_account_id` does not exist", body = ErrorBody),
              (status = 409, description = "loan_written_off; operation_before_last_eod: `date` is not after the loan's last end of day; concurrent_modification: the loan changed meanwhile, retry", body = ErrorBody),
              (status = 422, description = "invalid_request; prepay_too_small, prepay_while_overdue, loan_not_active, amount_must_be_positive, currency_mismatch, before_loan_start, invalid_schedule; or the ledger refused the payment: insufficient_funds, debit_account_frozen, ...", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn prepay(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<MoneyRequest>,
) -> Result<Json<OperationOutcome>, ApiError> {
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
    pub loans: Vec<LoanSummary>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
    /// Open loans per delinquency bucket.
    pub buckets: BTreeMap<String, i64>,
}

#[utoipa::path(get, path = "/v1/lending/loans", tag = "lending", params(LoanQuery),
    responses((status = 200, description = "A page of loans (by id) and the open loans per delinquency bucket", body = LoanList)),
    security(("api_key" = [])))]
pub async fn list_loans(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LoanQuery>,
) -> Result<Json<LoanList>, ApiError> {
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
    responses((status = 200, description = "Report; `already_run` when the date was done before (nothing written)", body = EodReport),
              (status = 409, description = "eod_date_in_past: the date is before the last end of day", body = ErrorBody),
              (status = 422, description = "invalid_request; eod_date_out_of_range: after tomorrow, or more than the configured number of days (default 31) after the last end of day; `details` gives the allowed range", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn run_eod(
    State(state): State<AppState>,
    ApiJson(r): ApiJson<EodRequest>,
) -> Result<Json<EodReport>, ApiError> {
    Ok(Json(state.lending.run_eod(r.date, |_, _| {}).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ReviewQueue {
    /// Open items, oldest first (at most 1000).
    pub items: Vec<ReviewItem>,
}

#[utoipa::path(get, path = "/v1/lending/review-queue", tag = "lending",
    responses((status = 200, description = "Applications waiting for an analyst", body = ReviewQueue)),
    security(("api_key" = [])))]
pub async fn review_queue(State(state): State<AppState>) -> Result<Json<ReviewQueue>, ApiError> {
    Ok(Json(ReviewQueue { items: state.lending.review_queue(1000).await? }))
}

fn analyst(state: &AppState, caller: &Caller) -> lending::Analyst {
    lending::Analyst { id: caller.key_id.to_string(), role: caller.role.as_str().to_string(), at: state.lending.now() }
}

/// An analyst's approval of an application in manual review.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewApproveRequest {
    /// Internal note (required, 1..2000 characters).
    #[schema(example = "income confirmed by the employer; approved at a lower limit")]
    pub note: String,
    /// Approved limit in minor units; default the proposed limit. At most the product's grid
    /// limit for the grade, at least the product minimum.
    #[schema(example = 2000000)]
    pub limit_minor: Option<i64>,
    /// Another offered grade (AAA, AA, A, BBB, BB, B, CCC, ...); its grid rate applies.
    pub grade: Option<lending::RiskGrade>,
}

/// An analyst's decline of an application in manual review.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDeclineRequest {
    /// insufficient_income, high_indebtedness, adverse_credit_history, unverifiable_information,
    /// suspected_fraud, policy_exception_refused or other. The customer sees its message.
    #[schema(example = "insufficient_income")]
    pub reason_code: String,
    /// Internal note (required, 1..2000 characters).
    #[schema(example = "declared income not supported by the social-security base")]
    pub note: String,
}

#[utoipa::path(post, path = "/v1/lending/review-queue/{decision_id}/approve", tag = "lending",
    params(("decision_id" = Uuid, Path, description = "The application (decision) id of the review item")), request_body = ReviewApproveRequest,
    responses((status = 200, description = "The approved application (idempotent: approving it again returns the same)", body = ApplicationView),
              (status = 404, description = "review_item_not_found: the application never went to review", body = ErrorBody),
              (status = 409, description = "review_already_decided (it was declined); not_in_review", body = ErrorBody),
              (status = 422, description = "invalid_request; limit_above_grid, amount_below_minimum, grade_not_offered, invalid_review (note not 1..2000 characters, or no limit to keep)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn approve_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<ReviewApproveRequest>,
) -> Result<Json<ApplicationView>, ApiError> {
    let input = ReviewApproval { note: r.note, limit_minor: r.limit_minor, grade: r.grade };
    Ok(Json(application_view(state.lending.approve_review(&id.to_string(), &input, &analyst(&state, &caller)).await?)))
}

#[utoipa::path(post, path = "/v1/lending/review-queue/{decision_id}/decline", tag = "lending",
    params(("decision_id" = Uuid, Path, description = "The application (decision) id of the review item")), request_body = ReviewDeclineRequest,
    responses((status = 200, description = "The declined application with the reason the customer sees (idempotent)", body = ApplicationView),
              (status = 404, description = "review_item_not_found: the application never went to review", body = ErrorBody),
              (status = 409, description = "review_already_decided (it was approved); not_in_review", body = ErrorBody),
              (status = 422, description = "invalid_request; unknown_decline_reason, invalid_review (note not 1..2000 characters)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn decline_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<ReviewDeclineRequest>,
) -> Result<Json<ApplicationView>, ApiError> {
    let input = ReviewDecline { reason_code: r.reason_code, note: r.note };
    Ok(Json(application_view(state.lending.decline_review(&id.to_string(), &input, &analyst(&state, &caller)).await?)))
}

/// A write-off request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteOffRequest {
    /// Why the loan is written off (1..500 characters).
    #[schema(example = "uncollectable: borrower insolvent")]
    pub reason: String,
    /// Write off a loan less than 90 days past due (administrators only).
    #[serde(default)]
    pub force: bool,
    /// Business date; default today (or the day after the last end of day if later).
    pub date: Option<NaiveDate>,
}

#[utoipa::path(post, path = "/v1/lending/loans/{id}/write-off", tag = "lending", params(("id" = Uuid, Path, description = "The loan id")),
    request_body = WriteOffRequest,
    responses((status = 200, description = "Amounts charged off to gl.loan_loss_allowance, postings, transfers and the written-off loan; `already_written_off` on a repeat", body = WriteOffOutcome),
              (status = 403, description = "forbidden: the key's role lacks the permission, or `force` by a role other than admin", body = ErrorBody),
              (status = 404, description = "loan_not_found", body = ErrorBody),
              (status = 409, description = "operation_before_last_eod: `date` is not after the loan's last end of day; concurrent_modification: the loan changed meanwhile, retry", body = ErrorBody),
              (status = 422, description = "invalid_request (e.g. `reason` not 1..500 characters); loan_not_overdue_enough (under 90 days past due), loan_not_active (paid off), before_loan_start", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn write_off(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<WriteOffRequest>,
) -> Result<Json<WriteOffOutcome>, ApiError> {
    if r.force && caller.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin may force a write-off"));
    }
    let input = WriteOffInput { reason: r.reason, force: r.force, date: r.date };
    Ok(Json(state.lending.write_off(LoanId(id), &input, &analyst(&state, &caller)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    pub kind: DocumentKind,
    /// The document text (hashed with SHA-256), or
    #[schema(example = "purchase order PO-2026-0001: 1,000 units, CE-001 from S-1001")]
    pub content: Option<String>,
    /// its SHA-256 as lower-case hex. One of `content` and `content_hash` is required.
    #[schema(pattern = "^[0-9a-f]{64}$", example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub content_hash: Option<String>,
    /// Who registers it (supplier, core enterprise, bank).
    #[schema(example = "S-1001")]
    pub party_id: String,
    /// Business reference, e.g. the receivable id.
    #[serde(default)]
    #[schema(example = "RCV-2026-0001")]
    pub reference: String,
}

#[utoipa::path(post, path = "/v1/lending/documents", tag = "lending", request_body = DocumentRequest,
    responses((status = 201, description = "The hash-chained registry entry", body = lending::RegistryEntry),
              (status = 404, description = "unknown_document: `content_hash` is not a lower-case SHA-256 hex digest", body = ErrorBody),
              (status = 409, description = "document_already_registered: a document with this hash is in the registry", body = ErrorBody),
              (status = 422, description = "invalid_request: well-formed JSON of the wrong shape, or neither `content` nor `content_hash`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn register_document(
    State(state): State<AppState>,
    ApiJson(r): ApiJson<DocumentRequest>,
) -> Result<(StatusCode, Json<lending::RegistryEntry>), ApiError> {
    let e = state
        .lending
        .register_document(r.kind, r.content.as_deref(), r.content_hash.as_deref(), &r.party_id, &r.reference)
        .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(post, path = "/v1/lending/receivables", tag = "lending",
    request_body = ReceivableInput,
    responses((status = 201, description = "The receivable, its documents in the registry", body = Receivable),
              (status = 409, description = "duplicate_receivable: a receivable with this id exists; document_already_registered: one of its documents is in the registry", body = ErrorBody),
              (status = 422, description = "invalid_request; amount_must_be_positive", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn register_receivable(
    State(state): State<AppState>,
    ApiJson(r): ApiJson<ReceivableInput>,
) -> Result<(StatusCode, Json<lending::Receivable>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.lending.register_receivable(&r).await?)))
}

/// A receivable with the loan that financed it.
#[derive(Serialize, ToSchema)]
pub struct ReceivableView {
    pub receivable: Receivable,
    /// The supply-chain loan financing it (`GET /v1/lending/loans/{id}`); null until financed.
    pub loan_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/lending/receivables/{id}", tag = "lending",
    params(("id" = String, Path, description = "The receivable id", example = "RCV-2026-0001")),
    responses((status = 200, description = "The receivable and the loan financing it", body = ReceivableView),
              (status = 404, description = "receivable_not_found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_receivable(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReceivableView>, ApiError> {
    let (receivable, loan_id) = state.lending.receivable(&id).await?;
    Ok(Json(ReceivableView { receivable, loan_id }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The receivable's core enterprise (the payer).
    #[schema(example = "CE-001")]
    pub core_enterprise_id: String,
}

#[utoipa::path(post, path = "/v1/lending/receivables/{id}/confirm", tag = "lending",
    params(("id" = String, Path, description = "The receivable id", example = "RCV-2026-0001")),
    request_body = ConfirmRequest,
    responses((status = 200, description = "The confirmed receivable (idempotent: confirming it again changes nothing)", body = Receivable),
              (status = 404, description = "receivable_not_found", body = ErrorBody),
              (status = 422, description = "invalid_request; receivable_wrong_party: not this receivable's core enterprise", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn confirm_receivable(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<ConfirmRequest>,
) -> Result<Json<lending::Receivable>, ApiError> {
    Ok(Json(state.lending.confirm_receivable(&id, &r.core_enterprise_id).await?))
}

/// A financed receivable and the supply-chain loan that finances it.
#[derive(Serialize, ToSchema)]
pub struct FinancingView {
    pub receivable: Receivable,
    /// Contract, loan and the disbursement transfers.
    pub financing: AcceptOutcome,
}

#[utoipa::path(post, path = "/v1/lending/receivables/{id}/finance", tag = "lending",
    params(("id" = String, Path, description = "The receivable id", example = "RCV-2026-0001")),
    request_body = FinanceInput,
    responses((status = 201, description = "Receivable, contract, loan, disbursement transfers", body = FinancingView),
              (status = 404, description = "receivable_not_found; account_not_found: the deposit or repayment account does not exist", body = ErrorBody),
              (status = 409, description = "receivable_already_financed; concurrent_modification, idempotency_conflict: financed concurrently, retry", body = ErrorBody),
              (status = 422, description = "invalid_request; receivable_wrong_party (not its supplier), receivable_not_confirmed, receivable_matured, currency_mismatch, amount_must_be_positive, amount_above_limit (above the receivable × advance ratio), invalid_schedule; or the ledger refused the disbursement", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn finance_receivable(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<FinanceInput>,
) -> Result<(StatusCode, Json<FinancingView>), ApiError> {
    let (receivable, financing) = state.lending.finance_receivable(&id, &r).await?;
    Ok((StatusCode::CREATED, Json(FinancingView { receivable, financing })))
}
