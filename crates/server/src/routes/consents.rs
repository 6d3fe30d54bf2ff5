//! Customer consent at the edge: partners create account-access consents and read the accounts
//! a live consent covers (`/open-banking/v1/...`, partner tokens); the customer authorises on
//! the bank's consent screen (`/open-banking/oauth2/authorize` and the JSON steps under
//! `/open-banking/authorizations/{id}`); customers list and revoke their consents
//! (`/open-banking/customer/...`, customer tokens).
//!
//! A partner's call is checked by the guard (token, scope), then here against its consent
//! (status, permission, the account the customer chose, the unattended limit) through
//! `OpenBanking::use_consent`, and recorded in the audit trail with the consent id as its
//! purpose.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openbank::consent::{self, NewAccountAccessConsent, NewPaymentConsent, Permission, RevokedBy};
use openbank_platform::{
    AccountChoice, AuthorizationView, CodeSent, Consent, ConsentAccess, ConsentDecision, CustomerToken, PlatformError,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{CustomerCaller, PartnerCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::routes::web::{self, embedded_asset, Asset};
use crate::AppState;

/// Whether the customer takes part in this call (FAPI `x-fapi-customer-ip-address`, Berlin
/// Group `PSU-IP-Address`): such calls do not count against the unattended limit.
pub(crate) fn customer_present(headers: &HeaderMap) -> bool {
    ["x-fapi-customer-ip-address", "psu-ip-address"]
        .iter()
        .any(|h| headers.get(*h).and_then(|v| v.to_str().ok()).is_some_and(|v| !v.trim().is_empty()))
}

/// The customer's address when they take part in the call and it is an IP address.
pub(crate) fn customer_ip(headers: &HeaderMap) -> Option<String> {
    ["x-fapi-customer-ip-address", "psu-ip-address"].iter().find_map(|h| {
        let value = headers.get(*h)?.to_str().ok()?.trim();
        value.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
    })
}

fn micros_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v).map(|t| t.timestamp_micros()).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request",
                    format!("{name} must be an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z"),
                )
            })
        })
        .transpose()
}

// ---- consents (partner) ---------------------------------------------------------------------

#[utoipa::path(post, path = "/open-banking/v1/account-access-consents", tag = "open banking: accounts",
    request_body = NewAccountAccessConsent,
    responses((status = 201, description = "awaiting the customer's authorisation", body = Consent),
        (status = 401, description = "invalid_token", body = ErrorBody),
        (status = 403, description = "insufficient_scope: the token lacks `accounts`", body = ErrorBody),
        (status = 422, description = "invalid_consent: no permission, expiry in the past or beyond 90 days, an inverted window", body = ErrorBody)),
    security(("partner_token" = ["accounts"])))]
pub async fn create_consent(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiJson(new): ApiJson<NewAccountAccessConsent>,
) -> Result<(StatusCode, Json<Consent>), ApiError> {
    let spec = consent::check_consent(new, state.ledger.now())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_consent", e.to_string()))?;
    Ok((StatusCode::CREATED, Json(state.openbank.create_consent(&caller.partner, spec).await?)))
}

#[utoipa::path(get, path = "/open-banking/v1/account-access-consents/{id}", tag = "open banking: accounts",
    params(("id" = String, Path)),
    responses((status = 200, body = Consent), (status = 404, description = "consent_not_found (also another partner's)", body = ErrorBody)),
    security(("partner_token" = ["accounts"])))]
pub async fn get_consent(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Consent>, ApiError> {
    Ok(Json(state.openbank.partner_consent(&caller.partner.id, &id).await?))
}

#[utoipa::path(delete, path = "/open-banking/v1/account-access-consents/{id}", tag = "open banking: accounts",
    params(("id" = String, Path)),
    responses((status = 204, description = "revoked: its tokens stop at once"),
        (status = 404, body = ErrorBody), (status = 409, description = "consent_status_conflict: already final", body = ErrorBody)),
    security(("partner_token" = ["accounts"])))]
pub async fn delete_consent(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let consent = state.openbank.partner_consent(&caller.partner.id, &id).await?;
    state.openbank.revoke_consent(&consent, RevokedBy::Partner).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- account information (partner, consent-bound token) -------------------------------------

/// An account as a partner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerAccount {
    pub account_id: String,
    pub currency: String,
    /// `open`, `frozen` or `closed`.
    pub status: String,
    /// The product code (`deposit.current`); with `ReadAccountsDetail` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// With `ReadAccountsDetail` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerAccounts {
    pub accounts: Vec<PartnerAccount>,
}

async fn partner_account(
    state: &AppState,
    access: &ConsentAccess,
    id: &str,
) -> Result<(PartnerAccount, ledger::Account), ApiError> {
    let parsed = id.parse::<uuid::Uuid>().map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "account_not_in_consent",
            "the customer did not choose this account for the consent",
        )
    })?;
    let account = state.ledger.account(ledger::AccountId(parsed)).await?;
    let detail = consent::grants(&access.permissions, Permission::ReadAccountsDetail);
    Ok((
        PartnerAccount {
            account_id: id.to_string(),
            currency: account.currency.to_string(),
            status: account.status.as_str().to_string(),
            product: detail.then(|| account.code.clone()).flatten(),
            name: detail.then(|| account.name.clone()).flatten(),
        },
        account,
    ))
}

#[utoipa::path(get, path = "/open-banking/v1/accounts", tag = "open banking: accounts",
    params(("x-fapi-customer-ip-address" = Option<String>, Header, description = "the customer's address when they take part in the call (then it does not count against the consent's unattended calls a day)")),
    responses((status = 200, body = PartnerAccounts),
        (status = 401, description = "invalid_token (also a revoked token chain)", body = ErrorBody),
        (status = 403, description = "consent_not_authorised, consent_rejected, consent_revoked, consent_expired, permission_not_granted", body = ErrorBody),
        (status = 429, description = "access_exceeded: the unattended calls of the day are used up", body = ErrorBody)),
    security(("partner_token" = ["accounts"])))]
pub async fn list_accounts(
    State(state): State<AppState>,
    caller: PartnerCaller,
    headers: HeaderMap,
) -> Result<Json<PartnerAccounts>, ApiError> {
    let access = state
        .openbank
        .use_consent(&caller.claims, Permission::ReadAccountsBasic, None, customer_present(&headers))
        .await?;
    let mut accounts = Vec::with_capacity(access.accounts.len());
    for id in &access.accounts {
        accounts.push(partner_account(&state, &access, id).await?.0);
    }
    Ok(Json(PartnerAccounts { accounts }))
}

#[utoipa::path(get, path = "/open-banking/v1/accounts/{id}", tag = "open banking: accounts",
    params(("id" = String, Path)),
    responses((status = 200, body = PartnerAccount),
        (status = 403, description = "account_not_in_consent, or the consent is not live", body = ErrorBody)),
    security(("partner_token" = ["accounts"])))]
pub async fn get_account(
    State(state): State<AppState>,
    caller: PartnerCaller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PartnerAccount>, ApiError> {
    let access = state
        .openbank
        .use_consent(&caller.claims, Permission::ReadAccountsBasic, Some(&id), customer_present(&headers))
        .await?;
    Ok(Json(partner_account(&state, &access, &id).await?.0))
}

/// An account's balances in minor units.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerBalance {
    pub account_id: String,
    pub currency: String,
    /// Posted balance (the customer's money in the account).
    pub booked_minor: i64,
    /// Booked less holds (card authorisations, pending payments).
    pub available_minor: i64,
    pub as_of: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(get, path = "/open-banking/v1/accounts/{id}/balances", tag = "open banking: accounts",
    params(("id" = String, Path)),
    responses((status = 200, body = PartnerBalance),
        (status = 403, description = "account_not_in_consent, permission_not_granted (ReadBalances), or the consent is not live", body = ErrorBody),
        (status = 429, description = "access_exceeded", body = ErrorBody)),
    security(("partner_token" = ["accounts"])))]
pub async fn balances(
    State(state): State<AppState>,
    caller: PartnerCaller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PartnerBalance>, ApiError> {
    let access = state
        .openbank
        .use_consent(&caller.claims, Permission::ReadBalances, Some(&id), customer_present(&headers))
        .await?;
    let (_, account) = partner_account(&state, &access, &id).await?;
    let view = ledger::BalanceView::new(&account, account.balances, None);
    Ok(Json(PartnerBalance {
        account_id: id,
        currency: account.currency.to_string(),
        booked_minor: view.posted,
        available_minor: view.available,
        as_of: chrono::DateTime::from_timestamp_micros(state.ledger.now()).unwrap_or_default(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransactionQuery {
    /// RFC 3339; clamped to the consent's transaction window.
    pub from_booking_date_time: Option<String>,
    /// RFC 3339; clamped to the consent's transaction window.
    pub to_booking_date_time: Option<String>,
    /// `next_after` of the previous page.
    pub after: Option<i64>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<u32>,
}

/// One booked transaction from the account's point of view.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerTransaction {
    pub transaction_id: String,
    /// `credit` (money in) or `debit` (money out).
    pub credit_debit: String,
    pub amount_minor: i64,
    pub currency: String,
    pub booking_date_time: chrono::DateTime<chrono::Utc>,
    /// With `ReadTransactionsDetail` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// With `ReadTransactionsDetail` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty_account_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerTransactions {
    pub transactions: Vec<PartnerTransaction>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// Journal pages read per call at most, so a narrow window over a long history stays bounded.
const MAX_SCAN_PAGES: usize = 20;

#[utoipa::path(get, path = "/open-banking/v1/accounts/{id}/transactions", tag = "open banking: accounts",
    params(("id" = String, Path), TransactionQuery),
    responses((status = 200, body = PartnerTransactions),
        (status = 403, description = "account_not_in_consent, permission_not_granted (ReadTransactionsBasic), or the consent is not live", body = ErrorBody),
        (status = 422, description = "invalid_request: a date is malformed or lies outside the consent's window", body = ErrorBody),
        (status = 429, description = "access_exceeded", body = ErrorBody)),
    security(("partner_token" = ["accounts"])))]
pub async fn transactions(
    State(state): State<AppState>,
    caller: PartnerCaller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<TransactionQuery>,
) -> Result<Json<PartnerTransactions>, ApiError> {
    let limit = page_limit("limit", q.limit, 100, 500)? as usize;
    let requested = (
        micros_param("from_booking_date_time", q.from_booking_date_time.as_deref())?,
        micros_param("to_booking_date_time", q.to_booking_date_time.as_deref())?,
    );
    let access = state
        .openbank
        .use_consent(&caller.claims, Permission::ReadTransactionsBasic, Some(&id), customer_present(&headers))
        .await?;
    let (from, to) = consent::transaction_window(access.transaction_window, requested)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", e.to_string()))?;
    let (_, account) = partner_account(&state, &access, &id).await?;
    let detail = consent::grants(&access.permissions, Permission::ReadTransactionsDetail);
    let mut transactions = Vec::new();
    let mut after = q.after.unwrap_or(0).max(0);
    let mut exhausted = false;
    for _ in 0..MAX_SCAN_PAGES {
        let page = state.ledger.entries(account.id, after, 500).await?;
        let full = page.len() == 500;
        for entry in page {
            after = entry.seq;
            // Holds not yet posted are not booked transactions.
            if !matches!(entry.kind, ledger::TransferKind::Posted | ledger::TransferKind::PostPending) {
                continue;
            }
            if from.is_some_and(|f| entry.created_at < f) {
                continue;
            }
            if to.is_some_and(|t| entry.created_at > t) {
                exhausted = true; // the journal is in time order: nothing later can match
                break;
            }
            transactions.push(PartnerTransaction {
                transaction_id: entry.transfer_id.to_string(),
                credit_debit: entry.side.as_str().to_string(),
                amount_minor: entry.amount,
                currency: entry.currency.to_string(),
                booking_date_time: chrono::DateTime::from_timestamp_micros(entry.created_at).unwrap_or_default(),
                reference: if detail { entry.reference.clone() } else { None },
                counterparty_account_id: detail.then(|| entry.counterparty_account_id.0.to_string()),
            });
            if transactions.len() == limit {
                break;
            }
        }
        if exhausted || transactions.len() == limit || !full {
            exhausted = exhausted || (!full && transactions.len() < limit);
            break;
        }
    }
    Ok(Json(PartnerTransactions { transactions, next_after: (!exhausted).then_some(after) }))
}

// ---- payment initiation (partner) -----------------------------------------------------------

/// A refusal of the payment's terms (amount, currency, creditor) as 422 `invalid_payment`.
fn payment_error(e: PlatformError) -> ApiError {
    match e {
        PlatformError::Domain(openbank::OpenBankError::Invalid(why)) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payment", why)
        }
        other => other.into(),
    }
}

#[utoipa::path(post, path = "/open-banking/v1/domestic-payment-consents", tag = "open banking: payments",
    request_body = NewPaymentConsent,
    responses((status = 201, description = "awaiting the customer's authorisation (scope payments in the pushed authorization request)", body = Consent),
        (status = 403, description = "insufficient_scope: the token lacks `payments`", body = ErrorBody),
        (status = 422, description = "invalid_payment: amount, currency, creditor or expiry", body = ErrorBody)),
    security(("partner_token" = ["payments"])))]
pub async fn create_payment_consent(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiJson(new): ApiJson<NewPaymentConsent>,
) -> Result<(StatusCode, Json<Consent>), ApiError> {
    let (terms, expires_at) = consent::check_payment_consent(new, state.ledger.now())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payment", e.to_string()))?;
    let created =
        state.openbank.create_payment_consent(&caller.partner, terms, expires_at).await.map_err(payment_error)?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/open-banking/v1/domestic-payment-consents/{id}", tag = "open banking: payments",
    params(("id" = String, Path)),
    responses((status = 200, body = Consent), (status = 404, description = "consent_not_found (also another partner's)", body = ErrorBody)),
    security(("partner_token" = ["payments"])))]
pub async fn get_payment_consent(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Consent>, ApiError> {
    Ok(Json(state.openbank.partner_consent(&caller.partner.id, &id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FundsConfirmation {
    /// Whether the chosen account's available balance covers the consented amount now.
    pub funds_available: bool,
    pub as_of: chrono::DateTime<chrono::Utc>,
}

fn bound_to(caller: &PartnerCaller, id: &str) -> Result<(), ApiError> {
    if caller.claims.consent_id.as_deref() == Some(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "token_not_for_consent",
            "the access token is bound to another consent (or to none)",
        ))
    }
}

#[utoipa::path(get, path = "/open-banking/v1/domestic-payment-consents/{id}/funds-confirmation", tag = "open banking: payments",
    params(("id" = String, Path)),
    responses((status = 200, body = FundsConfirmation),
        (status = 403, description = "token_not_for_consent, or the consent is not live (consent_not_authorised, consent_consumed, ...)", body = ErrorBody)),
    security(("partner_token" = ["payments"])))]
pub async fn funds_confirmation(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FundsConfirmation>, ApiError> {
    bound_to(&caller, &id)?;
    let funds_available = state.openbank.funds_available(&caller.claims).await?;
    let as_of = chrono::DateTime::from_timestamp_micros(state.ledger.now()).unwrap_or_default();
    Ok(Json(FundsConfirmation { funds_available, as_of }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentSubmission {
    /// The authorised payment consent (the token must be bound to it).
    pub consent_id: String,
    /// At most the consented amount, in minor units.
    pub instructed_amount_minor: i64,
    pub currency: String,
}

#[utoipa::path(post, path = "/open-banking/v1/domestic-payments", tag = "open banking: payments",
    request_body = PaymentSubmission,
    params(("x-idempotency-key" = String, Header, description = "1 to 40 characters: the same key with the same body answers the first result; with another body 409")),
    responses((status = 201, description = "made (or held for the risk engine's review: status pending_review)", body = openbank_platform::Payment),
        (status = 200, description = "a retry with the same key and body: the first result", body = openbank_platform::Payment),
        (status = 403, description = "token_not_for_consent, consent_consumed, consent_revoked, consent_expired, consent_not_authorised", body = ErrorBody),
        (status = 409, description = "idempotency_conflict", body = ErrorBody),
        (status = 422, description = "invalid_payment (above the consented amount, another currency), insufficient_funds, risk_rejected; nothing written", body = ErrorBody)),
    security(("partner_token" = ["payments"])))]
pub async fn submit_payment(
    State(state): State<AppState>,
    caller: PartnerCaller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<openbank_platform::Payment>), ApiError> {
    let key = headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "idempotency_key_missing", "send an x-idempotency-key header")
        })?
        .to_string();
    let submission: PaymentSubmission = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", format!("invalid body: {e}"))
    })?;
    bound_to(&caller, &submission.consent_id)?;
    let submitted = state
        .openbank
        .submit_payment(&caller.claims, &key, &body, submission.instructed_amount_minor, &submission.currency)
        .await
        .map_err(payment_error)?;
    let status = if submitted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(submitted.payment)))
}

#[utoipa::path(get, path = "/open-banking/v1/domestic-payments/{id}", tag = "open banking: payments",
    params(("id" = String, Path)),
    responses((status = 200, body = openbank_platform::Payment), (status = 404, description = "payment_not_found (also another partner's)", body = ErrorBody)),
    security(("partner_token" = ["payments"])))]
pub async fn get_payment(
    State(state): State<AppState>,
    caller: PartnerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<openbank_platform::Payment>, ApiError> {
    Ok(Json(state.openbank.payment(&caller.partner.id, &id).await?))
}

// ---- the consent screen (the customer, at the bank) -----------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    pub client_id: Option<String>,
    /// The `request_uri` the pushed authorization request returned.
    pub request_uri: Option<String>,
}

/// The consent screen's script and style, under `/open-banking/assets/`.
const CONSENT_ASSETS: &[Asset] = &[
    embedded_asset!("consent", "consent.js", "text/javascript; charset=utf-8"),
    embedded_asset!("consent", "consent.css", "text/css; charset=utf-8"),
];

static CONSENT_PAGE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| web::versioned_page(include_str!("../../assets/consent/page.html"), CONSENT_ASSETS));

const CONSENT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[utoipa::path(get, path = "/open-banking/oauth2/authorize", tag = "open banking",
    params(AuthorizeQuery),
    responses((status = 200, description = "the consent screen (HTML)"),
        (status = 400, description = "an unknown, expired or foreign request_uri: an error page, no redirect")))]
pub async fn authorize(State(state): State<AppState>, Query(q): Query<AuthorizeQuery>) -> Response {
    let found = match (q.client_id.as_deref(), q.request_uri.as_deref()) {
        (Some(client), Some(uri)) => state.openbank.authorization(client, uri).await,
        _ => Err(PlatformError::Authorization(
            "client_id and request_uri are required (push the authorization request first)".into(),
        )),
    };
    match found {
        Ok(view) => web::page(
            StatusCode::OK,
            CONSENT_CSP,
            CONSENT_PAGE.replace("__AUTHORIZATION_ID__", &view.authorization_id),
        ),
        // RFC 6749 section 4.1.2.1: with a request we cannot trust, never redirect.
        Err(PlatformError::Authorization(why)) => web::page(
            StatusCode::BAD_REQUEST,
            CONSENT_CSP,
            format!(
                "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>授权请求无效 · Invalid request</title>\
                 <link rel=\"stylesheet\" href=\"/open-banking/assets/consent.css\"><main><h1>授权请求无效 \
                 <small>Invalid authorization request</small></h1><p>{}</p></main></html>",
                escape_html(&why)
            ),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[utoipa::path(get, path = "/open-banking/assets/{file}", tag = "open banking", params(("file" = String, Path)),
    responses((status = 200, description = "the consent screen's script or style sheet"), (status = 404, body = ErrorBody)))]
pub async fn consent_asset(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    web::asset(CONSENT_ASSETS, &file, "consent screen")
}

#[utoipa::path(get, path = "/open-banking/authorizations/{id}", tag = "open banking: consent screen",
    params(("id" = String, Path)),
    responses((status = 200, body = AuthorizationView),
        (status = 400, description = "authorization_failed: unknown or expired", body = ErrorBody)))]
pub async fn get_authorization(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AuthorizationView>, ApiError> {
    Ok(Json(state.openbank.authorization_by_id(&id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneForm {
    /// The customer's mobile number (`+8613900000000` or `13900000000`).
    pub phone: String,
}

/// The one active customer with this number and the number on their record, if there is one.
async fn customer_with_phone(state: &AppState, phone: &str) -> Result<Option<(String, String)>, ApiError> {
    let phone = customer::MobilePhone::parse(phone)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone", e.to_string()))?;
    let found = state.customers.customers_by_phone(phone.as_str()).await?;
    let mut active = found.into_iter().filter(|c| c.status == customer::CustomerStatus::Active);
    Ok(match (active.next(), active.next()) {
        (Some(only), None) => only.phone.map(|p| (only.id, p)),
        _ => None,
    })
}

#[utoipa::path(post, path = "/open-banking/authorizations/{id}/code", tag = "open banking: consent screen",
    params(("id" = String, Path)), request_body = PhoneForm,
    responses((status = 202, description = "a code went to the phone if a customer has that number (the answer does not say whether one does)", body = CodeSent),
        (status = 400, description = "authorization_failed", body = ErrorBody),
        (status = 422, description = "invalid_phone", body = ErrorBody),
        (status = 429, description = "too_many_attempts: three codes were sent already", body = ErrorBody)))]
pub async fn send_authorization_code(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(form): ApiJson<PhoneForm>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let customer = customer_with_phone(&state, &form.phone).await?;
    Ok((StatusCode::ACCEPTED, Json(state.openbank.start_authentication(&id, customer).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    /// The six-digit code sent to the customer's phone.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    /// Send with the decision; it proves the customer entered the code (keep it in the page).
    pub session: String,
    pub accounts: Vec<AccountChoice>,
}

#[utoipa::path(post, path = "/open-banking/authorizations/{id}/verify", tag = "open banking: consent screen",
    params(("id" = String, Path)), request_body = CodeForm,
    responses((status = 200, body = Verified),
        (status = 400, description = "authorization_failed", body = ErrorBody),
        (status = 422, description = "invalid_code: wrong or expired", body = ErrorBody),
        (status = 429, description = "too_many_attempts", body = ErrorBody)))]
pub async fn verify_authorization_code(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(form): ApiJson<CodeForm>,
) -> Result<Json<Verified>, ApiError> {
    let (session, customer_id) = state.openbank.verify_authentication(&id, &form.code).await?;
    let accounts = state.openbank.account_choices(&customer_id).await?;
    Ok(Json(Verified { session, accounts }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionForm {
    pub session: String,
    pub decision: ConsentDecision,
    /// The accounts the consent covers (authorise only): some of the customer's own.
    #[serde(default)]
    pub accounts: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redirect {
    /// Where to send the customer's browser: the partner's redirect URI with `code`, `state`
    /// and `iss` (or `error=access_denied`).
    pub redirect_to: String,
}

#[utoipa::path(post, path = "/open-banking/authorizations/{id}/decision", tag = "open banking: consent screen",
    params(("id" = String, Path)), request_body = DecisionForm,
    responses((status = 200, body = Redirect),
        (status = 400, description = "authorization_failed: a wrong session, no account, another customer's account, or the consent moved on", body = ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(form): ApiJson<DecisionForm>,
) -> Result<Json<Redirect>, ApiError> {
    if form.accounts.len() > 100 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "at most 100 accounts"));
    }
    let redirect_to = state.openbank.decide(&id, &form.session, form.decision, &form.accounts).await?;
    Ok(Json(Redirect { redirect_to }))
}

// ---- the customer's consent dashboard -------------------------------------------------------

#[utoipa::path(post, path = "/open-banking/customer/sign-in", tag = "open banking: customer",
    request_body = PhoneForm,
    responses((status = 202, description = "a code went to the phone if a customer has that number", body = CodeSent),
        (status = 422, description = "invalid_phone", body = ErrorBody)))]
pub async fn customer_sign_in(
    State(state): State<AppState>,
    ApiJson(form): ApiJson<PhoneForm>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let customer = customer_with_phone(&state, &form.phone).await?;
    Ok((StatusCode::ACCEPTED, Json(state.openbank.start_customer_sign_in(customer).await?)))
}

#[utoipa::path(post, path = "/open-banking/customer/sign-in/{id}/verify", tag = "open banking: customer",
    params(("id" = String, Path, description = "the challenge_id of the sign-in")), request_body = CodeForm,
    responses((status = 200, description = "a customer token for 15 minutes", body = CustomerToken),
        (status = 422, description = "invalid_code", body = ErrorBody),
        (status = 429, description = "too_many_attempts", body = ErrorBody)))]
pub async fn customer_sign_in_verify(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(form): ApiJson<CodeForm>,
) -> Result<Json<CustomerToken>, ApiError> {
    Ok(Json(state.openbank.finish_customer_sign_in(&id, &form.code).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerConsents {
    pub consents: Vec<Consent>,
}

#[utoipa::path(get, path = "/open-banking/customer/consents", tag = "open banking: customer",
    responses((status = 200, description = "the customer's consents, newest first", body = CustomerConsents),
        (status = 401, description = "invalid_token", body = ErrorBody)),
    security(("customer_token" = [])))]
pub async fn my_consents(
    State(state): State<AppState>,
    CustomerCaller(customer): CustomerCaller,
) -> Result<Json<CustomerConsents>, ApiError> {
    Ok(Json(CustomerConsents { consents: state.openbank.customer_consents(&customer).await? }))
}

#[utoipa::path(post, path = "/open-banking/customer/consents/{id}/revoke", tag = "open banking: customer",
    params(("id" = String, Path)),
    responses((status = 200, description = "revoked: the partner's next call gets 403 consent_revoked", body = Consent),
        (status = 404, description = "consent_not_found (also another customer's)", body = ErrorBody),
        (status = 409, description = "consent_status_conflict", body = ErrorBody)),
    security(("customer_token" = [])))]
pub async fn revoke_my_consent(
    State(state): State<AppState>,
    CustomerCaller(customer): CustomerCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Consent>, ApiError> {
    let consent = state.openbank.consent(&id).await?;
    if consent.customer_id.as_deref() != Some(customer.as_str()) {
        return Err(PlatformError::ConsentNotFound(id).into());
    }
    Ok(Json(state.openbank.revoke_consent(&consent, RevokedBy::Customer).await?))
}
