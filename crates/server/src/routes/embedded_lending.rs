//! Embedded lending for partners (scenario finance) under `/open-banking/v1/`: a loan
//! application consent, then one application for the consenting customer, its decision and
//! offer, the customer's acceptance (present, through the partner) and the loan paid out to the
//! account they chose. The decisions are the lending engine's own (`crates/lending-platform`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use openbank::consent::{self, NewLoanConsent};
use openbank_platform::{Consent, PartnerLoanAcceptance, PartnerLoanApplication, PartnerLoanRequest, PlatformError};

use crate::auth::PartnerCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::routes::consents::{customer_ip, customer_present};
use crate::AppState;

/// A refusal of the loan's terms as 422 `invalid_loan_request`.
fn loan_error(e: PlatformError) -> ApiError {
    match e {
        PlatformError::Domain(openbank::OpenBankError::Invalid(why)) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_loan_request", why)
        }
        other => other.into(),
    }
}

#[utoipa::path(post, path = "/open-banking/v1/loan-application-consents", tag = "open banking: lending",
    request_body = NewLoanConsent,
    responses((status = 201, description = "awaiting the customer's authorisation (scope lending in the pushed authorization request)", body = Consent),
        (status = 403, description = "insufficient_scope: the token lacks `lending`", body = ErrorBody),
        (status = 422, description = "invalid_loan_request: product, amount, currency or expiry", body = ErrorBody)),
    security(("partner_token" = ["lending"])))]
pub async fn create_loan_consent(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiJson(new): ApiJson<NewLoanConsent>,
) -> Result<(StatusCode, Json<Consent>), ApiError> {
    let (terms, expires_at) = consent::check_loan_consent(new, state.ledger.now())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_loan_request", e.to_string()))?;
    let created = state.openbank.create_loan_consent(&caller.partner, terms, expires_at).await.map_err(loan_error)?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/open-banking/v1/loan-application-consents/{id}", tag = "open banking: lending",
    params(("id" = String, Path)),
    responses((status = 200, body = Consent), (status = 404, description = "consent_not_found (also another partner's)", body = ErrorBody)),
    security(("partner_token" = ["lending"])))]
pub async fn get_loan_consent(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Consent>, ApiError> {
    Ok(Json(state.openbank.partner_consent(&caller.partner.id, &id).await?))
}

#[utoipa::path(post, path = "/open-banking/v1/loan-applications", tag = "open banking: lending",
    request_body = PartnerLoanRequest,
    params(("x-fapi-customer-ip-address" = Option<String>, Header, description = "the customer's address (used by the fraud check)")),
    responses((status = 201, description = "decided: approved (with its offer), declined or in_review", body = PartnerLoanApplication),
        (status = 200, description = "the consent's application exists: the same answer", body = PartnerLoanApplication),
        (status = 403, description = "consent_not_authorised, consent_revoked, consent_expired, consent_kind_mismatch", body = ErrorBody),
        (status = 422, description = "invalid_loan_request: above the consented amount, another currency", body = ErrorBody)),
    security(("partner_token" = ["lending"])))]
pub async fn apply(
    State(state): State<AppState>,
    caller: PartnerCaller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PartnerLoanRequest>,
) -> Result<(StatusCode, Json<PartnerLoanApplication>), ApiError> {
    let ip = customer_ip(&headers);
    let (application, created) =
        state.openbank.apply_for_loan(&caller.claims, &request, ip.as_deref()).await.map_err(loan_error)?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(application)))
}

#[utoipa::path(get, path = "/open-banking/v1/loan-applications/{id}", tag = "open banking: lending",
    params(("id" = String, Path)),
    responses((status = 200, description = "the decision (a review decided by a lending officer shows here), the offer, the loan", body = PartnerLoanApplication),
        (status = 404, description = "application_not_found (also one under another consent)", body = ErrorBody)),
    security(("partner_token" = ["lending"])))]
pub async fn get_application(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PartnerLoanApplication>, ApiError> {
    Ok(Json(state.openbank.partner_loan_application(&caller.claims, &id).await.map_err(loan_error)?))
}

#[utoipa::path(post, path = "/open-banking/v1/loan-applications/{id}/acceptance", tag = "open banking: lending",
    params(("id" = String, Path),
        ("x-fapi-customer-ip-address" = String, Header, description = "required: the customer accepts, present")),
    request_body = PartnerLoanAcceptance,
    responses((status = 201, description = "accepted: the loan is open and paid out to the consent's account", body = PartnerLoanApplication),
        (status = 403, description = "customer_not_present, consent_revoked, consent_expired", body = ErrorBody),
        (status = 404, description = "application_not_found", body = ErrorBody),
        (status = 409, description = "decision_not_approved", body = ErrorBody),
        (status = 422, description = "invalid_loan_request, amount_above_limit, term_not_offered, offer_expired", body = ErrorBody)),
    security(("partner_token" = ["lending"])))]
pub async fn accept(
    State(state): State<AppState>,
    caller: PartnerCaller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(acceptance): ApiJson<PartnerLoanAcceptance>,
) -> Result<(StatusCode, Json<PartnerLoanApplication>), ApiError> {
    let present = customer_present(&headers);
    let application =
        state.openbank.accept_loan(&caller.claims, &id, &acceptance, present).await.map_err(loan_error)?;
    Ok((StatusCode::CREATED, Json(application)))
}
