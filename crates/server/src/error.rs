//! Every error leaves the server as `{"error": {"code": "...", "message": "..."}}` with a 4xx or
//! 5xx status. Codes are stable snake_case strings clients can branch on.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{LedgerError, TransferError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Where in a submitted rule the error is, for rule compile errors.
    pub position: Option<Box<Position>>,
    /// Structured context for some codes (e.g. the risk decision behind `risk_rejected`).
    pub details: Option<serde_json::Value>,
    /// Seconds for a `Retry-After` header (503 when shedding load).
    pub retry_after: Option<u32>,
    /// A `WWW-Authenticate` challenge (RFC 6750 errors of the open-banking APIs).
    pub www_authenticate: Option<Box<str>>,
}

/// A position in submitted source text (1-based line and column, byte offsets).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Position {
    pub line: u32,
    pub column: u32,
    pub offset: usize,
    pub end: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `insufficient_funds`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            position: None,
            details: None,
            retry_after: None,
            www_authenticate: None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 `record_integrity_failed`: a stored record's sealed personal data failed its
    /// integrity check (changed outside digibank, truncated, or sealed with a key the database
    /// does not hold). Names the table and record; the details go to the server log.
    pub fn integrity(table: &str, record: &str, reason: impl std::fmt::Display) -> Self {
        tracing::error!(table, record, error = %reason, "record integrity check failed");
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "record_integrity_failed",
            format!(
                "record {record} of {table} failed its integrity check: its encrypted data was changed outside \
                 digibank or is corrupt; restore it from a backup"
            ),
        );
        e.details = Some(serde_json::json!({"table": table, "record": record}));
        e
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                position: self.position.map(|p| *p),
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        if let Some(challenge) = self.www_authenticate.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// HTTP status for a per-transfer failure.
pub fn transfer_error_status(e: TransferError) -> StatusCode {
    use TransferError::*;
    match e {
        DebitAccountNotFound | CreditAccountNotFound | PendingTransferNotFound => StatusCode::NOT_FOUND,
        IdempotencyConflict | PendingTransferAlreadyPosted | PendingTransferAlreadyVoided | PendingTransferExpired => {
            StatusCode::CONFLICT
        }
        InsufficientFunds
        | ExceedsDebits
        | DebitAccountFrozen
        | DebitAccountClosed
        | CreditAccountClosed
        | CurrencyMismatch
        | Overflow
        | ExceedsPendingAmount
        | PendingTransferMismatch
        | PendingTransferNotPending
        | LinkedEventFailed => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<TransferError> for ApiError {
    fn from(e: TransferError) -> Self {
        ApiError::new(transfer_error_status(e), e.code(), e.to_string())
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        use LedgerError::*;
        let (status, code) = match &e {
            AccountNotFound(_) => (StatusCode::NOT_FOUND, "account_not_found"),
            TransferNotFound(_) => (StatusCode::NOT_FOUND, "transfer_not_found"),
            AccountConflict(_) => (StatusCode::CONFLICT, "idempotency_conflict"),
            InvalidStatusChange { .. } => (StatusCode::CONFLICT, "invalid_status_change"),
            NonZeroBalance(_) => (StatusCode::CONFLICT, "non_zero_balance"),
            InvalidAccount(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_account"),
            BatchTooLarge(..) => (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
            EmptyBatch => (StatusCode::BAD_REQUEST, "empty_batch"),
            AlongConflict(_) => (StatusCode::CONFLICT, "concurrent_modification"),
            Unavailable(_) | ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Corrupt(_) | Database(_) | Storage(_) | Sqlite(_) => return ApiError::internal(e),
        };
        ApiError::new(status, code, e.to_string())
    }
}
