//! Customer register: one customer id per person or business, validated identity documents
//! and phone numbers, and masking of personal data for roles that may not see it in clear.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use customer::{mask_id_number, mask_name, mask_phone, CustomerId, CustomerKind, MobilePhone, ResidentId, Uscc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use storage::Database;
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

type CustomerRow = (String, String, String, String, String, Option<String>, String, i64);

const COLUMNS: &str = "id, kind, name, id_document_type, id_number, phone, kyc_status, created_at";

fn view(row: CustomerRow, clear: bool) -> CustomerView {
    let (id, kind, name, id_document_type, id_number, phone, kyc_status, created_at) = row;
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
    let id = CustomerId::new().to_string();
    let hash = Sha256::digest(format!("{doc_type}:{number}").as_bytes()).to_vec();
    let now = chrono::Utc::now().timestamp_micros();
    let kind = input.kind.as_str();
    let inserted = match &state.db {
        Database::Sqlite(db) => {
            let mut conn = db.writer.lock().await;
            sqlx::query(
                "INSERT INTO customers (id, kind, name, id_document_type, id_number, id_number_hash, phone, kyc_status, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'not_started', ?) ON CONFLICT (id_number_hash) DO NOTHING",
            )
            .bind(&id).bind(kind).bind(&name).bind(doc_type).bind(&number).bind(&hash).bind(&phone).bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected() == 1)
        }
        Database::Postgres(pool) => sqlx::query(
            "INSERT INTO customers (id, kind, name, id_document_type, id_number, id_number_hash, phone, kyc_status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'not_started', $8) ON CONFLICT (id_number_hash) DO NOTHING",
        )
        .bind(&id).bind(kind).bind(&name).bind(doc_type).bind(&number).bind(&hash).bind(&phone).bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1),
    }
    .map_err(ApiError::internal)?;
    if !inserted {
        let sql = "SELECT id FROM customers WHERE id_number_hash = ";
        let (existing,): (String,) = match &state.db {
            Database::Sqlite(db) => sqlx::query_as(&format!("{sql}?")).bind(&hash).fetch_one(&db.readers).await,
            Database::Postgres(pool) => sqlx::query_as(&format!("{sql}$1")).bind(&hash).fetch_one(pool).await,
        }
        .map_err(ApiError::internal)?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "customer_exists",
            format!("this identity document already belongs to customer {existing}"),
        ));
    }
    let row = (id, kind.to_string(), name, doc_type.to_string(), number, phone, "not_started".to_string(), now);
    Ok((StatusCode::CREATED, Json(view(row, caller.role.allows(Permission::CustomersPii)))))
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
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE id = ");
    let row: Option<CustomerRow> = match &state.db {
        Database::Sqlite(db) => {
            sqlx::query_as(&format!("{sql}?")).bind(id.to_string()).fetch_optional(&db.readers).await
        }
        Database::Postgres(pool) => sqlx::query_as(&format!("{sql}$1")).bind(id.to_string()).fetch_optional(pool).await,
    }
    .map_err(ApiError::internal)?;
    let row =
        row.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "customer_not_found", format!("no customer {id}")))?;
    Ok(Json(view(row, caller.role.allows(Permission::CustomersPii))))
}

#[derive(Deserialize, IntoParams)]
pub struct CustomerQuery {
    /// Paging cursor: customers with ids after this one.
    after: Option<String>,
    /// Page size, 1..=1000 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerPage {
    pub customers: Vec<CustomerView>,
    pub next_after: Option<String>,
}

#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, body = CustomerPage)), security(("api_key" = [])))]
pub async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> Result<Json<CustomerPage>, ApiError> {
    caller.require(Permission::CustomersRead)?;
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    let after = q.after.unwrap_or_default();
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE id > ");
    let rows: Vec<CustomerRow> = match &state.db {
        Database::Sqlite(db) => {
            sqlx::query_as(&format!("{sql}? ORDER BY id LIMIT ?")).bind(&after).bind(limit).fetch_all(&db.readers).await
        }
        Database::Postgres(pool) => {
            sqlx::query_as(&format!("{sql}$1 ORDER BY id LIMIT $2")).bind(&after).bind(limit).fetch_all(pool).await
        }
    }
    .map_err(ApiError::internal)?;
    let clear = caller.role.allows(Permission::CustomersPii);
    let next_after = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.0.clone())).flatten();
    Ok(Json(CustomerPage { customers: rows.into_iter().map(|r| view(r, clear)).collect(), next_after }))
}
