//! Open banking at the edge: staff manage partners under `/v1/open-banking/partners`; partners
//! get tokens at `/open-banking/oauth2/token` (client credentials, `private_key_jwt`) and check
//! them at `/open-banking/oauth2/introspect`; the bank's signing keys and its metadata are at
//! `/.well-known/jwks.json` and `/.well-known/openid-configuration`.
//!
//! The OAuth endpoints answer errors in RFC 6749 form (`{"error": "invalid_client",
//! "error_description": "..."}`), not in the house form, because OAuth client libraries read
//! that shape.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openbank::{NewPartner, OpenBankError, PartnerStatus};
use openbank_platform::{Partner, PlatformError, TokenResponse, JWT_BEARER_ASSERTION};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::AppState;

impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Domain(OpenBankError::Invalid(_)) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_partner", e.to_string())
            }
            PlatformError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "partner_not_found", e.to_string()),
            PlatformError::SameStatus(..) => {
                ApiError::new(StatusCode::CONFLICT, "partner_status_unchanged", e.to_string())
            }
            PlatformError::ConsentNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "consent_not_found", e.to_string())
            }
            PlatformError::ConsentState(_) => {
                ApiError::new(StatusCode::CONFLICT, "consent_status_conflict", e.to_string())
            }
            PlatformError::Denied(denied) => ApiError::new(StatusCode::FORBIDDEN, denied.code(), denied.to_string()),
            PlatformError::AccessExceeded(_) => {
                let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "access_exceeded", e.to_string());
                error.retry_after = Some(3600);
                error
            }
            PlatformError::Lending(e) => ApiError::from(e),
            PlatformError::ApplicationNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "application_not_found", e.to_string())
            }
            PlatformError::CustomerNotPresent => {
                ApiError::new(StatusCode::FORBIDDEN, "customer_not_present", e.to_string())
            }
            PlatformError::QuotaExceeded { retry_after, .. } => {
                let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", e.to_string());
                error.retry_after = Some(u32::try_from(retry_after).unwrap_or(86_400));
                error
            }
            PlatformError::InvalidToken => {
                let mut error = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string());
                error.www_authenticate = Some("Bearer error=\"invalid_token\"".into());
                error
            }
            PlatformError::Authorization(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "authorization_failed", e.to_string())
            }
            PlatformError::InvalidCode(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_code", e.to_string())
            }
            PlatformError::TooManyAttempts(_) => {
                let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", e.to_string());
                error.retry_after = Some(300);
                error
            }
            PlatformError::Notifier(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "code_not_delivered", e.to_string())
            }
            PlatformError::IdempotencyConflict => {
                ApiError::new(StatusCode::CONFLICT, "idempotency_conflict", e.to_string())
            }
            PlatformError::RiskRejected(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "risk_rejected", e.to_string())
            }
            PlatformError::PaymentFailed(code, message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            PlatformError::PaymentNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "payment_not_found", e.to_string())
            }
            _ => ApiError::internal(e),
        }
    }
}

// ---- partner registry (staff) ---------------------------------------------------------------

#[utoipa::path(post, path = "/v1/open-banking/partners", tag = "open banking", request_body = NewPartner,
    responses((status = 201, body = Partner), (status = 202, description = "a production partner waits for a second person's approval"),
        (status = 422, description = "invalid_partner: a bad name, role, redirect URI or key", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn register_partner(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewPartner>,
) -> Result<(StatusCode, Json<Partner>), ApiError> {
    let spec = openbank::check_partner(new).map_err(PlatformError::from)?;
    Ok((StatusCode::CREATED, Json(state.openbank.register(spec).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartnerQuery {
    /// The `id` of the last partner of the previous page.
    pub after: Option<String>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerPage {
    pub partners: Vec<Partner>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[utoipa::path(get, path = "/v1/open-banking/partners", tag = "open banking", params(PartnerQuery),
    responses((status = 200, body = PartnerPage), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_partners(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PartnerQuery>,
) -> Result<Json<PartnerPage>, ApiError> {
    let limit = page_limit("limit", q.limit, 100, 500)?;
    let partners = state.openbank.partners(q.after.as_deref(), limit).await?;
    let next_after = (partners.len() == limit as usize).then(|| partners.last().map(|p| p.id.clone())).flatten();
    Ok(Json(PartnerPage { partners, next_after }))
}

#[utoipa::path(get, path = "/v1/open-banking/partners/{id}", tag = "open banking", params(("id" = String, Path)),
    responses((status = 200, body = Partner), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_partner(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Partner>, ApiError> {
    Ok(Json(state.openbank.partner(&id).await?))
}

#[utoipa::path(post, path = "/v1/open-banking/partners/{id}/suspend", tag = "open banking", params(("id" = String, Path)),
    responses((status = 200, description = "suspended: its tokens stop working at once", body = Partner),
        (status = 404, body = ErrorBody), (status = 409, description = "partner_status_unchanged", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn suspend_partner(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Partner>, ApiError> {
    Ok(Json(state.openbank.set_status(&id, PartnerStatus::Suspended).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyList {
    pub keys: Vec<openbank_platform::SigningKeyInfo>,
}

#[utoipa::path(get, path = "/v1/open-banking/signing-keys", tag = "open banking",
    responses((status = 200, description = "the bank's token-signing keys, newest first, with what each does now", body = SigningKeyList)),
    security(("api_key" = [])))]
pub async fn list_signing_keys(State(state): State<AppState>) -> Result<Json<SigningKeyList>, ApiError> {
    Ok(Json(SigningKeyList { keys: state.openbank.signing_keys().await? }))
}

#[utoipa::path(post, path = "/v1/open-banking/signing-keys/rotate", tag = "open banking",
    responses((status = 201, description = "a new key, published at once in the JWKS and signing 10 minutes later; the one it replaces retires once its last token has expired", body = SigningKeyList)),
    security(("api_key" = [])))]
pub async fn rotate_signing_key(State(state): State<AppState>) -> Result<(StatusCode, Json<SigningKeyList>), ApiError> {
    state.openbank.rotate_signing_key().await?;
    Ok((StatusCode::CREATED, Json(SigningKeyList { keys: state.openbank.signing_keys().await? })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaChange {
    /// Calls a day (UTC), 1..=1,000,000,000; `null` lifts the quota.
    pub daily_quota: Option<i64>,
}

#[utoipa::path(put, path = "/v1/open-banking/partners/{id}/quota", tag = "open banking", params(("id" = String, Path)),
    request_body = QuotaChange,
    responses((status = 200, description = "applies from the partner's next call", body = Partner),
        (status = 404, body = ErrorBody), (status = 422, description = "invalid_partner: out of range", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_partner_quota(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(change): ApiJson<QuotaChange>,
) -> Result<Json<Partner>, ApiError> {
    Ok(Json(state.openbank.set_quota(&id, change.daily_quota).await?))
}

#[utoipa::path(post, path = "/v1/open-banking/partners/{id}/activate", tag = "open banking", params(("id" = String, Path)),
    responses((status = 200, body = Partner), (status = 404, body = ErrorBody),
        (status = 409, description = "partner_status_unchanged", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn activate_partner(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Partner>, ApiError> {
    Ok(Json(state.openbank.set_status(&id, PartnerStatus::Active).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Days back from today (UTC), 1..=366 (default 30).
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerUsage {
    pub partner_id: String,
    /// Per day and API, newest day first.
    pub usage: Vec<openbank_platform::UsageRow>,
}

#[utoipa::path(get, path = "/v1/open-banking/partners/{id}/usage", tag = "open banking",
    params(("id" = String, Path), UsageQuery),
    responses((status = 200, description = "calls (and refused calls) per API and day, for billing", body = PartnerUsage),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn partner_usage(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<PartnerUsage>, ApiError> {
    let days = page_limit("days", q.days, 30, openbank_platform::MAX_USAGE_DAYS)?;
    Ok(Json(PartnerUsage { usage: state.openbank.usage(&id, days).await?, partner_id: id }))
}

/// `POST /v1/open-banking/partners` holds for a second person when it onboards a production
/// partner.
pub fn onboards_production_partner(body: &serde_json::Value) -> bool {
    body.get("environment").and_then(serde_json::Value::as_str) == Some("production")
}

// ---- OAuth 2.0 (partners) -------------------------------------------------------------------

/// An error of the OAuth endpoints, in RFC 6749 form.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`.
    pub error: String,
    pub error_description: String,
}

/// A refusal of the OAuth endpoints: RFC 6749 form, or (for a server fault) the house form.
#[derive(Debug)]
pub enum OAuthFailure {
    OAuth(StatusCode, &'static str, String),
    Api(Box<ApiError>),
}

fn oauth_error(status: StatusCode, error: &'static str, description: impl Into<String>) -> OAuthFailure {
    OAuthFailure::OAuth(status, error, description.into())
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        match self {
            OAuthFailure::OAuth(status, error, description) => {
                let body = OAuthError { error: error.to_string(), error_description: description };
                let mut response = (status, Json(body)).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("private_key_jwt"));
                }
                response
            }
            OAuthFailure::Api(e) => e.into_response(),
        }
    }
}

impl From<PlatformError> for OAuthFailure {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Domain(OpenBankError::InvalidClient(why)) => {
                oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why)
            }
            PlatformError::Domain(OpenBankError::InvalidScope(..)) => {
                oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string())
            }
            PlatformError::Domain(OpenBankError::Invalid(why)) => {
                oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why)
            }
            PlatformError::InvalidGrant(why) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why),
            other => OAuthFailure::Api(Box::new(ApiError::from(other))),
        }
    }
}

/// The form of the token and introspection endpoints (`application/x-www-form-urlencoded`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenForm {
    /// `client_credentials`, `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// Space-separated: `accounts`, `payments`, `lending` (those the partner's roles allow);
    /// all of them when absent.
    pub scope: Option<String>,
    /// Optional; must match the assertion's `sub`.
    pub client_id: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub client_assertion_type: Option<String>,
    /// A JWT signed (EdDSA or ES256) with one of the partner's registered keys: `iss` = `sub` =
    /// client id, `aud` = this token endpoint (or the issuer), `exp` at most 5 minutes ahead, a
    /// fresh `jti`.
    pub client_assertion: Option<String>,
    /// The token to introspect (introspection only).
    pub token: Option<String>,
    /// `authorization_code`: the code the customer's browser brought back.
    pub code: Option<String>,
    /// `authorization_code`: the redirect URI of the authorization request.
    pub redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier whose S256 hash was the `code_challenge`.
    pub code_verifier: Option<String>,
    /// `refresh_token`: the refresh token to rotate.
    pub refresh_token: Option<String>,
}

/// A pushed authorization request (RFC 9126), with client authentication.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ParForm {
    pub client_id: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    /// `code`.
    pub response_type: Option<String>,
    /// One of the partner's registered redirect URIs, exactly.
    pub redirect_uri: Option<String>,
    /// `accounts`.
    pub scope: Option<String>,
    pub state: Option<String>,
    /// BASE64URL(SHA-256(code_verifier)).
    pub code_challenge: Option<String>,
    /// `S256`.
    pub code_challenge_method: Option<String>,
    /// The account-access consent the customer is asked to authorise.
    pub consent_id: Option<String>,
}

fn parse_form<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, OAuthFailure> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    serde_urlencoded::from_bytes::<T>(body)
        .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", format!("malformed form: {e}")))
}

fn client_assertion<'a>(assertion_type: Option<&str>, assertion: Option<&'a str>) -> Result<&'a str, OAuthFailure> {
    if assertion_type != Some(JWT_BEARER_ASSERTION) {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            format!("client authentication is private_key_jwt: client_assertion_type must be {JWT_BEARER_ASSERTION}"),
        ));
    }
    assertion
        .filter(|a| !a.is_empty() && a.len() <= 8192)
        .ok_or_else(|| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client_assertion is missing"))
}

#[utoipa::path(post, path = "/open-banking/oauth2/token", tag = "open banking",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type, invalid_scope, invalid_grant (a code or refresh token unknown, spent, expired or another client's; a wrong redirect_uri or PKCE verifier; a consent no longer authorised)", body = OAuthError),
        (status = 401, description = "invalid_client: the client assertion is missing, malformed, not signed by a registered key, expired, replayed, or the partner is suspended", body = OAuthError)))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TokenResponse>, OAuthFailure> {
    let form: TokenForm = parse_form(&headers, &body)?;
    let client_id = form.client_id.as_deref();
    let required = |value: &Option<String>, name: &str| {
        value
            .as_deref()
            .filter(|v| !v.is_empty() && v.len() <= 2048)
            .ok_or_else(|| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", format!("{name} is missing")))
            .map(str::to_string)
    };
    // The grant type first (an unsupported one is named as such), then the client.
    match form.grant_type.as_deref() {
        Some("client_credentials" | "authorization_code" | "refresh_token") => {}
        Some(other) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                "grant_type {other:?} is not supported; use client_credentials, authorization_code or refresh_token"
            ),
            ))
        }
        None => return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is missing")),
    }
    let assertion = client_assertion(form.client_assertion_type.as_deref(), form.client_assertion.as_deref())?;
    let response = match form.grant_type.as_deref() {
        Some("authorization_code") => {
            let code = required(&form.code, "code")?;
            state
                .openbank
                .exchange_code(client_id, assertion, &code, form.redirect_uri.as_deref(), form.code_verifier.as_deref())
                .await?
        }
        Some("refresh_token") => {
            let refresh = required(&form.refresh_token, "refresh_token")?;
            state.openbank.refresh(client_id, assertion, &refresh).await?
        }
        _ => state.openbank.client_credentials(client_id, assertion, form.scope.as_deref()).await?,
    };
    Ok(Json(response))
}

#[utoipa::path(post, path = "/open-banking/oauth2/par", tag = "open banking",
    request_body(content = ParForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 201, body = openbank_platform::PushedAuthorization),
        (status = 400, description = "invalid_request: a redirect URI not registered, no PKCE S256 challenge, a consent not this client's or not awaiting authorisation", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError)))]
pub async fn par(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<openbank_platform::PushedAuthorization>), OAuthFailure> {
    let form: ParForm = parse_form(&headers, &body)?;
    let assertion = client_assertion(form.client_assertion_type.as_deref(), form.client_assertion.as_deref())?;
    let params = openbank::consent::AuthorizationParams {
        response_type: form.response_type.as_deref(),
        redirect_uri: form.redirect_uri.as_deref(),
        scope: form.scope.as_deref(),
        state: form.state.as_deref(),
        code_challenge: form.code_challenge.as_deref(),
        code_challenge_method: form.code_challenge_method.as_deref(),
        consent_id: form.consent_id.as_deref(),
    };
    let pushed = state.openbank.push_authorization(form.client_id.as_deref(), assertion, &params).await?;
    Ok((StatusCode::CREATED, Json(pushed)))
}

/// RFC 7662: whether a token is active, for the partner it was issued to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

#[utoipa::path(post, path = "/open-banking/oauth2/introspect", tag = "open banking",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "active, or `{\"active\": false}` for a token that is invalid, expired, another partner's, or whose partner is suspended", body = Introspection),
        (status = 400, description = "invalid_request", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError)))]
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Introspection>, OAuthFailure> {
    let form: TokenForm = parse_form(&headers, &body)?;
    let assertion = client_assertion(form.client_assertion_type.as_deref(), form.client_assertion.as_deref())?;
    let caller = state.openbank.authenticate(form.client_id.as_deref(), assertion).await?;
    let token = form
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing"))?;
    let inactive =
        Introspection { active: false, client_id: None, scope: None, token_type: None, exp: None, iat: None };
    let verified = match state.openbank.verify(token).await {
        // A consent-bound token is inactive once its consent or its chain is revoked.
        Ok((claims, partner)) => match state.openbank.bound_token_live(&claims).await {
            Ok(true) => Ok((claims, partner)),
            Ok(false) => Err(PlatformError::InvalidToken),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match verified {
        // A partner learns nothing about another partner's tokens.
        Ok((claims, _)) if claims.client_id == caller.id => Ok(Json(Introspection {
            active: true,
            client_id: Some(claims.client_id),
            scope: Some(claims.scope),
            token_type: Some("Bearer".into()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
        })),
        Ok(_) | Err(PlatformError::InvalidToken) => Ok(Json(inactive)),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "open banking",
    responses((status = 200, description = "the bank's public token-signing keys (JWK Set)")))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.openbank.jwks())
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "open banking",
    responses((status = 200, description = "authorization server metadata (RFC 8414 fields)")))]
pub async fn discovery(State(state): State<AppState>) -> Json<serde_json::Value> {
    let issuer = state.openbank.issuer();
    Json(serde_json::json!({
        "issuer": issuer,
        "token_endpoint": state.openbank.token_endpoint(),
        "introspection_endpoint": format!("{issuer}/open-banking/oauth2/introspect"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "pushed_authorization_request_endpoint": format!("{issuer}/open-banking/oauth2/par"),
        "require_pushed_authorization_requests": true,
        "authorization_endpoint": format!("{issuer}/open-banking/oauth2/authorize"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256"],
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
        "scopes_supported": openbank::PartnerRole::ALL.iter().map(|r| r.scope()).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
    }))
}

// ---- open data (no token) -------------------------------------------------------------------

/// A product as partners and the public see it: what it is and its price range, not how the
/// bank decides (scorecards and limits stay inside).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProduct {
    pub code: String,
    pub name: String,
    #[schema(value_type = lending::ProductKind)]
    pub kind: lending::ProductKind,
    pub currency: String,
    pub min_amount_minor: i64,
    pub max_amount_minor: i64,
    pub terms_months: Vec<u32>,
    #[schema(value_type = Vec<lending::RepaymentMethod>)]
    pub repayment_methods: Vec<lending::RepaymentMethod>,
    #[schema(value_type = lending::RateBasis)]
    pub rate_basis: lending::RateBasis,
    /// The lowest and highest rate offered (decimal strings, in `rate_basis`).
    #[schema(value_type = String, example = "0.0500")]
    pub min_rate: rust_decimal::Decimal,
    #[schema(value_type = String, example = "0.1800")]
    pub max_rate: rust_decimal::Decimal,
    /// One-off fee at disbursement as a fraction of the principal (decimal string).
    #[schema(value_type = String, example = "0")]
    pub upfront_fee_rate: rust_decimal::Decimal,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductCatalogue {
    pub products: Vec<PublicProduct>,
}

#[utoipa::path(get, path = "/open-banking/v1/products", tag = "open banking",
    responses((status = 200, description = "the bank's loan products with their price ranges (open data: no token needed)", body = ProductCatalogue)))]
pub async fn products(State(state): State<AppState>) -> Json<ProductCatalogue> {
    let products = state
        .lending
        .catalog()
        .products
        .iter()
        .filter_map(|p| {
            let rates: Vec<rust_decimal::Decimal> = p.pricing.iter().filter(|r| r.offered).map(|r| r.rate).collect();
            Some(PublicProduct {
                code: p.code.clone(),
                name: p.name.clone(),
                kind: p.kind,
                currency: p.currency.to_string(),
                min_amount_minor: p.min_amount_minor,
                max_amount_minor: p.max_amount_minor,
                terms_months: p.terms_months.clone(),
                repayment_methods: p.methods.clone(),
                rate_basis: p.rate_basis,
                min_rate: rates.iter().min().copied()?,
                max_rate: rates.iter().max().copied()?,
                upfront_fee_rate: p.upfront_fee_rate,
            })
        })
        .collect();
    Json(ProductCatalogue { products })
}
