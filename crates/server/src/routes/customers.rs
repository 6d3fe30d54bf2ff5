//! Customer register: one customer id per person or business, validated identity documents
//! and phone numbers, and masking of personal data for roles that may not see it in clear.
//! After registration: updates and document corrections, KYC status changes, closure and
//! merges of two records of one person, each with history (`customer_platform::lifecycle`).

use access::classification::{self, Scope};
use access::PermissionSet;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use customer::{CustomerId, CustomerKind, KycStatus, MobilePhone, ResidentId, Uscc};
use customer_platform::{Actor, CustomerRecord, CustomerUpdate, HistoryEvent, NewCustomerRecord, PlatformError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
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
    /// `active`, `closed` (kept for retention, hidden from search) or `merged` (see
    /// `merged_into`).
    #[schema(example = "active")]
    pub status: String,
    /// When the customer was closed (microseconds since the Unix epoch).
    pub closed_at: Option<i64>,
    /// For merged records: the customer this record now belongs to.
    pub merged_into: Option<String>,
    pub masked: bool,
}

/// The customer as a caller holding `perms` sees it: masked by the classification catalogue.
fn view(row: CustomerRecord, perms: PermissionSet) -> CustomerView {
    let CustomerRecord {
        id,
        kind,
        name,
        id_document_type,
        id_number,
        phone,
        kyc_status,
        created_at,
        status,
        closed_at,
        merged_into,
    } = row;
    let m = |field: &str, value: &str| classification::mask(field, perms, value).into_owned();
    let (name, id_number, phone) = (
        m("CustomerView.name", &name),
        m("CustomerView.id_number", &id_number),
        phone.as_deref().map(|p| m("CustomerView.phone", p)),
    );
    CustomerView {
        id,
        kind,
        name,
        id_document_type,
        id_number,
        phone,
        kyc_status: kyc_status.as_str().to_string(),
        created_at,
        status: status.as_str().to_string(),
        closed_at,
        merged_into,
        masked: !classification::clear("CustomerView.id_number", perms),
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
            PlatformError::NotFound(id) => not_found(&id),
            PlatformError::Inactive { id, status, merged_into } => match merged_into {
                Some(survivor) if status == customer::CustomerStatus::Merged => ApiError::new(
                    StatusCode::CONFLICT,
                    "customer_merged",
                    format!("customer {id} was merged into {survivor}; use {survivor}"),
                ),
                _ => ApiError::new(
                    StatusCode::CONFLICT,
                    format!("customer_{status}"),
                    format!("customer {id} is {status}"),
                ),
            },
            PlatformError::OpenProducts { id, accounts, loans } => {
                let mut error = ApiError::new(
                    StatusCode::CONFLICT,
                    "customer_has_open_products",
                    format!(
                        "customer {id} (or a record merged into it) still has {accounts} open account(s) with a \
                         non-zero balance and {} active or overdue loan(s): settle and close them first",
                        loans.len()
                    ),
                );
                error.details = Some(serde_json::json!({"open_accounts_with_balance": accounts, "open_loans": loans}));
                error
            }
            e @ PlatformError::MergeConflict(_) => ApiError::new(StatusCode::CONFLICT, "merge_conflict", e.to_string()),
            e @ PlatformError::InvalidKycTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_kyc_transition", e.to_string())
            }
            PlatformError::DocumentTaken(holder) => {
                let mut error = ApiError::new(
                    StatusCode::CONFLICT,
                    "customer_exists",
                    format!(
                        "this identity document already belongs to customer {holder}; if both records are the same \
                         person, merge them (POST /v1/customers/{holder}/merge) instead of correcting the document"
                    ),
                );
                error.details = Some(serde_json::json!({"existing_customer_id": holder}));
                error
            }
            e @ PlatformError::Concurrent(_) => ApiError::new(StatusCode::CONFLICT, "concurrent_update", e.to_string()),
            PlatformError::Customer(e) => e.into(),
            PlatformError::Integrity { table, record, reason } => ApiError::integrity(table, &record, reason),
            e @ PlatformError::ProductCheckUnavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "product_check_unavailable", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

fn invalid(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// A name of 1..=100 characters after trimming.
fn parse_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("invalid_name", "name must be 1..=100 characters"));
    }
    Ok(name.to_string())
}

/// The identity document: a resident ID (checksum verified) for individuals, a USCC otherwise.
fn parse_document(individual: bool, number: &str) -> Result<(&'static str, String), ApiError> {
    if individual {
        let id = ResidentId::parse(number).map_err(|e| invalid("invalid_id_number", e.to_string()))?;
        Ok(("resident_id", id.as_str().to_string()))
    } else {
        let code = Uscc::parse(number).map_err(|e| invalid("invalid_id_number", e.to_string()))?;
        Ok(("uscc", code.as_str().to_string()))
    }
}

/// A mainland mobile number, normalised to `+86...`.
fn parse_phone(phone: &str) -> Result<String, ApiError> {
    MobilePhone::parse(phone).map(|p| p.as_str().to_string()).map_err(|e| invalid("invalid_phone", e.to_string()))
}

/// An optional note or reason of at most 500 characters (blank is none).
fn parse_note(note: Option<&str>, field: &str) -> Result<Option<String>, ApiError> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 500) {
        return Err(invalid("invalid_note", format!("{field} must be at most 500 characters")));
    }
    Ok(note.map(str::to_string))
}

fn parse_customer_id(id: &str) -> Result<String, ApiError> {
    let id: CustomerId =
        id.parse().map_err(|e: customer::CustomerError| ApiError::bad_request("invalid_path", e.to_string()))?;
    Ok(id.to_string())
}

/// Closed and merged records take no new facts, identities or changes (409 `customer_closed`
/// or `customer_merged`, naming the survivor).
pub(crate) fn require_active(record: &CustomerRecord) -> Result<(), ApiError> {
    if record.status == customer::CustomerStatus::Active {
        return Ok(());
    }
    Err(PlatformError::Inactive {
        id: record.id.clone(),
        status: record.status,
        merged_into: record.merged_into.clone(),
    }
    .into())
}

fn actor(caller: &Caller) -> Actor {
    Actor { key_id: caller.key_id.to_string(), role: caller.role.as_str().to_string() }
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
    let name = parse_name(&input.name)?;
    let (doc_type, number) = parse_document(input.kind == CustomerKind::Individual, &input.id_number)?;
    let phone = input.phone.as_deref().map(parse_phone).transpose()?;
    let record = NewCustomerRecord {
        id: CustomerId::new(),
        kind: input.kind,
        name,
        id_document_type: doc_type,
        id_number: number,
        phone,
        kyc_status: customer::KycStatus::NotStarted,
    };
    let stored = state.customers.register(&record).await?;
    Ok((StatusCode::CREATED, Json(view(stored, caller.permissions))))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", params(("id" = String, Path, description = "C-<uuid>")),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CustomerView>, ApiError> {
    let id: CustomerId =
        id.parse().map_err(|e: customer::CustomerError| ApiError::bad_request("invalid_path", e.to_string()))?;
    let row = state.customers.customer(&id.to_string()).await?.ok_or_else(|| not_found(&id.to_string()))?;
    Ok(Json(view(row, caller.permissions)))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "customer_not_found", format!("no customer {id}"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
    /// Record status: `active` (default), `closed`, `merged` or `all`. Closed and merged
    /// records are never members of tags, segments, tiers, RFM segments or lifecycle stages.
    status: Option<String>,
    /// Only customers with this mobile number (exact, with or without +86; found through its
    /// keyed blind index, the number itself is stored only encrypted). Not combinable with the
    /// tag and segment filters or a cursor.
    phone: Option<String>,
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
    let limit = page_limit("limit", q.limit, 100, 1000)? as usize;
    let perms = caller.permissions;
    let keys: Vec<String> =
        [("tag", &q.tag), ("segment", &q.segment), ("tier", &q.tier), ("rfm", &q.rfm), ("lifecycle", &q.lifecycle)]
            .into_iter()
            .filter_map(|(prefix, v)| v.as_ref().map(|v| format!("{prefix}:{v}")))
            .collect();
    let status = match q.status.as_deref().unwrap_or("active") {
        "all" => None,
        s @ ("active" | "closed" | "merged") => Some(s),
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown status {other:?}: use active, closed, merged or all"),
            ))
        }
    };
    if let Some(phone) = q.phone.as_deref() {
        if !keys.is_empty() || q.after.is_some() {
            return Err(ApiError::bad_request("invalid_query", "phone cannot be combined with other filters or after"));
        }
        let phone = MobilePhone::parse(phone).map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
        let mut rows = state.customers.customers_by_phone(phone.as_str()).await?;
        rows.retain(|r| status.is_none_or(|s| r.status.as_str() == s));
        rows.truncate(limit);
        return Ok(Json(CustomerPage {
            customers: rows.into_iter().map(|r| view(r, perms)).collect(),
            next_after: None,
        }));
    }
    if keys.is_empty() {
        let rows = state.customers.customers_after(q.after.as_deref().unwrap_or(""), limit as i64, status).await?;
        let next_after = (rows.len() == limit).then(|| rows.last().map(|r| r.id.clone())).flatten();
        return Ok(Json(CustomerPage { customers: rows.into_iter().map(|r| view(r, perms)).collect(), next_after }));
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
    // Membership bitmaps only hold active customers; this also covers a record closed while a
    // page was being read.
    records.retain(|r| status.is_none_or(|s| r.status.as_str() == s));
    let position: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    records.sort_by_key(|r| position.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
    let next_after = (ordinals.len() == limit).then(|| ids.last().cloned()).flatten();
    Ok(Json(CustomerPage { customers: records.into_iter().map(|r| view(r, perms)).collect(), next_after }))
}

/// Changes to a customer. Absent fields stay as they are; the phone cannot be removed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// 1..=100 characters.
    pub name: Option<String>,
    /// Mainland mobile number, with or without +86.
    #[schema(example = "+8613812345678")]
    pub phone: Option<String>,
    /// A correction of the identity document (same kind of document, validated like at
    /// registration). Needs the customers admin permission. A document that belongs to another
    /// customer is a 409 naming that customer: merge the records instead.
    pub id_number: Option<String>,
    /// Why (kept in the history), at most 500 characters.
    pub note: Option<String>,
}

#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers", params(("id" = String, Path, description = "C-<uuid>")),
    request_body = CustomerPatch,
    responses((status = 200, body = CustomerView),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`customer_exists`: the corrected document belongs to another customer (named; merge instead); `customer_closed`, `customer_merged`", body = ErrorBody),
              (status = 422, description = "`invalid_name`, `invalid_phone`, `invalid_id_number`, `empty_update`, unknown fields", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<CustomerPatch>,
) -> Result<Json<CustomerView>, ApiError> {
    if patch.id_number.is_some() {
        caller.require(Permission::CustomersAdmin)?;
    }
    let id = parse_customer_id(&id)?;
    if patch.name.is_none() && patch.phone.is_none() && patch.id_number.is_none() {
        return Err(invalid("empty_update", "give at least one of name, phone, id_number"));
    }
    let current = state.customers.customer(&id).await?.ok_or_else(|| not_found(&id))?;
    let update = CustomerUpdate {
        name: patch.name.as_deref().map(parse_name).transpose()?,
        phone: patch.phone.as_deref().map(parse_phone).transpose()?,
        document: patch.id_number.as_deref().map(|n| parse_document(current.kind == "individual", n)).transpose()?,
        note: parse_note(patch.note.as_deref(), "note")?,
    };
    let updated = state.customers.update_customer(&id, &update, &actor(&caller)).await?;
    Ok(Json(view(updated, caller.permissions)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCustomer {
    /// Why (kept in the history), at most 500 characters.
    pub reason: Option<String>,
}

#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers", params(("id" = String, Path, description = "C-<uuid>")),
    request_body(content = CloseCustomer, description = "Optional: the reason, kept in the history"),
    responses((status = 200, description = "Closed (records are kept, never deleted); closing a closed customer returns it unchanged", body = CustomerView),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`customer_has_open_products`: ledger accounts not closed with a non-zero posted or pending balance, or active/overdue loans, of this customer or records merged into it (counts in `details`); `customer_merged`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn close_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: Option<ApiJson<CloseCustomer>>,
) -> Result<Json<CustomerView>, ApiError> {
    let id = parse_customer_id(&id)?;
    let reason = parse_note(body.as_ref().and_then(|ApiJson(b)| b.reason.as_deref()), "reason")?;
    let closed = state.customers.close_customer(&id, reason.as_deref(), &actor(&caller)).await?;
    Ok(Json(view(closed, caller.permissions)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycChange {
    /// `not_started`, `pending`, `verified`, `rejected` or `expired`.
    #[schema(example = "verified")]
    pub status: String,
    /// Why; required for `rejected`. At most 500 characters.
    pub note: Option<String>,
}

#[utoipa::path(put, path = "/v1/customers/{id}/kyc", tag = "customers", params(("id" = String, Path, description = "C-<uuid>")),
    request_body = KycChange,
    responses((status = 200, description = "The customer after the change (setting the current status again changes nothing)", body = CustomerView),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`invalid_kyc_transition` (nothing goes back to not_started; pending cannot expire; rejected must go through pending before verified; only verified can expire), `customer_closed`, `customer_merged`", body = ErrorBody),
              (status = 422, description = "`invalid_kyc_status` (lists the allowed values), `note_required`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_kyc(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(change): ApiJson<KycChange>,
) -> Result<Json<CustomerView>, ApiError> {
    let id = parse_customer_id(&id)?;
    let Some(to) = KycStatus::parse(&change.status) else {
        let allowed: Vec<&str> = KycStatus::ALL.iter().map(|k| k.as_str()).collect();
        return Err(invalid(
            "invalid_kyc_status",
            format!("unknown KYC status {:?}: use one of {}", change.status, allowed.join(", ")),
        ));
    };
    let note = parse_note(change.note.as_deref(), "note")?;
    if to == KycStatus::Rejected && note.is_none() {
        return Err(invalid("note_required", "a rejection needs a note saying why"));
    }
    let changed = state.customers.change_kyc(&id, to, note.as_deref(), &actor(&caller)).await?;
    Ok(Json(view(changed, caller.permissions)))
}

/// One change of a customer record.
#[derive(Serialize, ToSchema)]
pub struct HistoryEventView {
    /// `name_changed`, `phone_changed`, `id_number_corrected`, `kyc_changed`, `closed`,
    /// `merged_in` (another record was merged into this one) or `merged_into` (this record was
    /// merged into `other_customer_id`).
    pub event: String,
    /// Previous value (names, phone and ID numbers masked like the record).
    pub from: Option<String>,
    pub to: Option<String>,
    pub other_customer_id: Option<String>,
    pub note: Option<String>,
    /// API key id of the caller who made the change.
    pub actor_key_id: String,
    pub actor_role: String,
    /// Microseconds since the Unix epoch.
    pub at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerHistory {
    pub customer_id: String,
    /// Oldest first.
    pub events: Vec<HistoryEventView>,
    pub masked: bool,
}

/// The previous and new values are masked like the customer field the event changed.
fn event_view(e: HistoryEvent, perms: PermissionSet) -> HistoryEventView {
    let field = match e.event.as_str() {
        "name_changed" => Some("CustomerView.name"),
        "phone_changed" => Some("CustomerView.phone"),
        "id_number_corrected" => Some("CustomerView.id_number"),
        _ => None,
    };
    let masking = field.and_then(|f| classification::lookup(Scope::Api, f)).map(|c| c.masking);
    let apply = |slot: &str, v: Option<String>| match masking {
        Some(rule) => v.map(|v| classification::mask_with(slot, rule, perms, &v).into_owned()),
        None => v,
    };
    HistoryEventView {
        from: apply("HistoryEventView.from", e.from_value),
        to: apply("HistoryEventView.to", e.to_value),
        event: e.event,
        other_customer_id: e.other_customer_id,
        note: e.note,
        actor_key_id: e.actor_key_id,
        actor_role: e.actor_role,
        at: e.at,
    }
}

#[utoipa::path(get, path = "/v1/customers/{id}/history", tag = "customers", params(("id" = String, Path, description = "C-<uuid>")),
    responses((status = 200, description = "Field changes, KYC changes, closure and merges, oldest first", body = CustomerHistory),
              (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn customer_history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CustomerHistory>, ApiError> {
    let id = parse_customer_id(&id)?;
    state.customers.customer(&id).await?.ok_or_else(|| not_found(&id))?;
    let perms = caller.permissions;
    let events = state.customers.history(&id).await?.into_iter().map(|e| event_view(e, perms)).collect();
    Ok(Json(CustomerHistory {
        customer_id: id,
        events,
        masked: !classification::clear("HistoryEventView.from", perms),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The record to absorb into the customer in the path.
    pub from: String,
    /// Why the two records are the same person; required unless they hold the same identity
    /// document. At most 500 characters.
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MergeView {
    pub survivor: CustomerView,
    /// The absorbed record, now `status: "merged"` with `merged_into`.
    pub absorbed: CustomerView,
    pub identities_moved: u64,
}

#[utoipa::path(post, path = "/v1/customers/{id}/merge", tag = "customers", params(("id" = String, Path, description = "the surviving customer")),
    request_body = MergeRequest,
    responses((status = 200, body = MergeView),
              (status = 404, description = "Either customer unknown (named)", body = ErrorBody),
              (status = 409, description = "`merge_conflict` (different kinds; different documents without a reason; different documents and names), `customer_closed`, `customer_merged`", body = ErrorBody),
              (status = 422, description = "`merge_into_self`, `invalid_customer_id`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn merge_customers(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<MergeRequest>,
) -> Result<Json<MergeView>, ApiError> {
    let survivor = parse_customer_id(&id)?;
    let absorbed: CustomerId = request
        .from
        .parse()
        .map_err(|e: customer::CustomerError| invalid("invalid_customer_id", format!("from: {e}")))?;
    let absorbed = absorbed.to_string();
    if absorbed == survivor {
        return Err(invalid("merge_into_self", "a customer cannot be merged into itself"));
    }
    let reason = parse_note(request.reason.as_deref(), "reason")?;
    let outcome = state.customers.merge_customers(&survivor, &absorbed, reason.as_deref(), &actor(&caller)).await?;
    let perms = caller.permissions;
    Ok(Json(MergeView {
        survivor: view(outcome.survivor, perms),
        absorbed: view(outcome.absorbed, perms),
        identities_moved: outcome.identities_moved,
    }))
}
