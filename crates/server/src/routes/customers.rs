//! Customer register: one customer id per person or business, validated identity documents
//! and phone numbers, and masking of personal data for roles that may not see it in clear.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use customer::{mask_id_number, mask_name, mask_phone, CustomerId, CustomerKind, MobilePhone, ResidentId, Uscc};
use customer_platform::{CustomerRecord, NewCustomerRecord, PlatformError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    #[schema(value_type = String, example = "individual")]
    pub kind: CustomerKind,
    pub name: String,
    /// Resident ID number (18 characters, checksum verified) for individuals; unified social
    /// credit code for businesses.
    #[schema(example = "11010519491231002X")]
    pub id_number: String,
    /// Mainland mobile number, with or without +86.
    #[serde(default)]
    #[schema(example = "+8613812345678")]
    pub phone: Option<String>,
}

/// A customer as returned by the API. Name, ID number and phone are masked unless the caller's
/// role may see personal data in clear (`masked` says which).
#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub id_document_type: String,
    pub id_number: String,
    pub phone: Option<String>,
    pub kyc_status: String,
    pub created_at: i64,
    pub masked: bool,
}

fn view(row: CustomerRecord, clear: bool) -> CustomerView {
    let CustomerRecord { id, kind, name, id_document_type, id_number, phone, kyc_status, created_at } = row;
    if clear {
        return CustomerView {
            id,
            kind,
            name,
            id_document_type,
            id_number,
            phone,
            kyc_status,
            created_at,
            masked: false,
        };
    }
    CustomerView {
        id,
        kind,
        name: mask_name(&name),
        id_document_type,
        id_number: mask_id_number(&id_number),
        phone: phone.as_deref().map(mask_phone),
        kyc_status,
        created_at,
        masked: true,
    }
}

impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::CustomerExists(existing) => ApiError::new(
                StatusCode::CONFLICT,
                "customer_exists",
                format!("this identity document already belongs to customer {existing}"),
            ),
            PlatformError::IdentityTaken { owner } => ApiError::new(
                StatusCode::CONFLICT,
                "identity_taken",
                format!("this channel identity already belongs to customer {owner}"),
            ),
            PlatformError::Customer(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

fn invalid(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = NewCustomer,
    responses((status = 201, body = CustomerView),
              (status = 409, description = "A customer with this identity document exists (its id is in the message)", body = ErrorBody),
              (status = 422, description = "Malformed ID number or phone", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewCustomer>,
) -> Result<(StatusCode, Json<CustomerView>), ApiError> {
    caller.require(Permission::CustomersWrite)?;
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("invalid_name", "name must be 1..=100 characters"));
    }
    let (doc_type, number) = if input.kind == CustomerKind::Individual {
        let id = ResidentId::parse(&input.id_number).map_err(|e| invalid("invalid_id_number", e.to_string()))?;
        ("resident_id", id.as_str().to_string())
    } else {
        let code = Uscc::parse(&input.id_number).map_err(|e| invalid("invalid_id_number", e.to_string()))?;
        ("uscc", code.as_str().to_string())
    };
    let phone = input
        .phone
        .as_deref()
        .map(MobilePhone::parse)
        .transpose()
        .map_err(|e| invalid("invalid_phone", e.to_string()))?
        .map(|p| p.as_str().to_string());
    let record = NewCustomerRecord {
        id: CustomerId::new(),
        kind: input.kind,
        name,
        id_document_type: doc_type,
        id_number: number,
        phone,
        kyc_status: "not_started",
    };
    let stored = state.customers.register(&record).await?;
    Ok((StatusCode::CREATED, Json(view(stored, caller.role.allows(Permission::CustomersPii)))))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", params(("id" = String, Path, description = "C-<uuid>")),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CustomerView>, ApiError> {
    caller.require(Permission::CustomersRead)?;
    let id: CustomerId =
        id.parse().map_err(|e: customer::CustomerError| ApiError::bad_request("invalid_path", e.to_string()))?;
    let row = state.customers.customer(&id.to_string()).await?.ok_or_else(|| not_found(&id.to_string()))?;
    Ok(Json(view(row, caller.role.allows(Permission::CustomersPii))))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "customer_not_found", format!("no customer {id}"))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Paging cursor: the last customer id of the previous page.
    after: Option<String>,
    /// Page size, 1..=1000 (default 100).
    limit: Option<u32>,
    /// Only customers carrying this tag (e.g. `payroll_customer`).
    tag: Option<String>,
    /// Only members of this defined segment.
    segment: Option<String>,
    /// Only this tier: `mass`, `wealth` or `sme`.
    tier: Option<String>,
    /// Only this RFM segment (e.g. `champions`, `at_risk`).
    rfm: Option<String>,
    /// Only this lifecycle stage: `new`, `growing`, `mature`, `dormant`, `churning`.
    lifecycle: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerPage {
    pub customers: Vec<CustomerView>,
    pub next_after: Option<String>,
}

#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, body = CustomerPage), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> Result<Json<CustomerPage>, ApiError> {
    caller.require(Permission::CustomersRead)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let clear = caller.role.allows(Permission::CustomersPii);
    let keys: Vec<String> =
        [("tag", &q.tag), ("segment", &q.segment), ("tier", &q.tier), ("rfm", &q.rfm), ("lifecycle", &q.lifecycle)]
            .into_iter()
            .filter_map(|(prefix, v)| v.as_ref().map(|v| format!("{prefix}:{v}")))
            .collect();
    if keys.is_empty() {
        let rows = state.customers.customers_after(q.after.as_deref().unwrap_or(""), limit as i64).await?;
        let next_after = (rows.len() == limit).then(|| rows.last().map(|r| r.id.clone())).flatten();
        return Ok(Json(CustomerPage { customers: rows.into_iter().map(|r| view(r, clear)).collect(), next_after }));
    }
    // Filtered search: intersect the membership bitmaps, page by ordinal.
    let mut members: Option<roaring::RoaringBitmap> = None;
    for key in &keys {
        let bits = state.customers.members(key).await?;
        members = Some(match members {
            Some(m) => m & bits,
            None => bits,
        });
    }
    let members = members.unwrap_or_default();
    let after_ordinal = match &q.after {
        Some(id) => state.customers.facts(id).await?.map(|f| f.ordinal).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", format!("cursor {id:?} is not a customer id of this search"))
        })?,
        None => 0,
    };
    let ordinals: Vec<u32> = members.iter().filter(|o| q.after.is_none() || *o > after_ordinal).take(limit).collect();
    let results = state.customers.results_by_ordinals(&ordinals).await?;
    let ids: Vec<String> = results.iter().map(|r| r.customer_id.clone()).collect();
    let mut records = state.customers.customers_by_ids(&ids).await?;
    let position: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    records.sort_by_key(|r| position.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
    let next_after = (ordinals.len() == limit).then(|| ids.last().cloned()).flatten();
    Ok(Json(CustomerPage { customers: records.into_iter().map(|r| view(r, clear)).collect(), next_after }))
}
