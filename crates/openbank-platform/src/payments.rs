//! Payment initiation (UK Open Banking domestic payments): a partner asks for a payment consent
//! (amount, currency, creditor), the customer authorises it choosing the account it is paid
//! from, and the partner submits the payment once, with an `x-idempotency-key`.
//!
//! The payment is one unit of work: screened by the risk engine (channel `open_banking`) before
//! anything is written, then the ledger transfer, the `ob_payments` row, the consent's move to
//! `consumed` and the audit entry commit in one transaction, or none of them does. A payment
//! the engine sends to review is held as a two-phase pending transfer until an analyst resolves
//! the case. The same key with the same body answers the first result again; with another body
//! it is a conflict.

use std::sync::Arc;

use ledger::{AccountId, TransferId, TransferKind, TransferOutcome, TransferRequest};
use money::Currency;
use openbank::consent::{self, AccessDenied, ConsentFacts, ConsentKind, PaymentTerms};
use serde::Serialize;
use sha2::Digest;
use storage::{Arg, Statement};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::consents::{time, ConsentRow};
use crate::{AccessClaims, Consent, OpenBanking, Partner, PlatformError};

/// The namespace of payment transfer ids: a partner's idempotency key names one transfer.
const PAYMENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f70656e_6261_6e6b_696e_677061796d74);

/// A payment as the partner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    /// Also the ledger transfer's id.
    pub payment_id: String,
    pub consent_id: String,
    /// `accepted_settlement_completed`, `pending_review` (held by the risk engine) or `rejected`
    /// (the held payment was declined or its hold expired).
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub creditor_account_id: String,
    /// The risk decision that screened it, when screening is on for `open_banking`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_decision_id: Option<String>,
    pub creation_time: chrono::DateTime<chrono::Utc>,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: String,
    partner_id: String,
    consent_id: String,
    request_hash: String,
    amount: i64,
    currency: String,
    creditor_account: String,
    status: String,
    risk_decision_id: Option<String>,
    created_at: i64,
}

const PAYMENT_COLUMNS: &str = "id, partner_id, consent_id, request_hash, amount, currency, creditor_account, status, \
     risk_decision_id, created_at";

/// The outcome of a submission: the payment, and whether this call made it (or replayed it).
pub struct Submitted {
    pub payment: Payment,
    pub created: bool,
}

impl OpenBanking {
    /// Uses `risk` to screen payments (channel `open_banking`, when the engine screens it).
    pub fn with_risk(mut self, risk: Arc<risk_platform::RiskService>) -> Self {
        self.risk = Some(risk);
        self
    }

    /// Stores a partner's domestic payment consent, awaiting the customer's authorisation.
    pub async fn create_payment_consent(
        &self,
        partner: &Partner,
        terms: PaymentTerms,
        expires_at: i64,
    ) -> Result<Consent, PlatformError> {
        // The creditor must be an open account of the bank (domestic payments inside it).
        let creditor = parse_account(&terms.creditor_account_id)
            .ok_or_else(|| invalid("creditor_account_id is not an account of this bank"))?;
        match self.ledger.account(creditor).await {
            Ok(a) if a.status == ledger::AccountStatus::Open && a.currency.to_string() == terms.currency => {}
            Ok(_) => return Err(invalid("the creditor account is not open in the payment's currency")),
            Err(ledger::LedgerError::AccountNotFound(_)) => {
                return Err(invalid("creditor_account_id is not an account of this bank"))
            }
            Err(e) => return Err(e.into()),
        }
        let payment = serde_json::to_string(&terms).map_err(|e| PlatformError::Corrupt(e.to_string()))?;
        self.insert_terms_consent(partner, TermsConsent::Payment, &payment, expires_at).await
    }

    /// Stores a consent whose terms the customer authorises as a whole (a payment, a loan
    /// application), awaiting the customer; its id is prefixed by kind (`pc-`, `lc-`).
    pub(crate) async fn insert_terms_consent(
        &self,
        partner: &Partner,
        which: TermsConsent,
        terms_json: &str,
        expires_at: i64,
    ) -> Result<Consent, PlatformError> {
        let (prefix, kind, column) = match which {
            TermsConsent::Payment => ("pc", "domestic_payment", "payment"),
            TermsConsent::Loan => ("lc", "loan_application", "loan"),
        };
        let id = format!("{prefix}-{}", Uuid::now_v7().simple());
        let now = self.clock.now_micros();
        storage::audit::set_resource(id.clone());
        storage::audit::set_purpose(id.clone());
        let sql = format!(
            "INSERT INTO ob_consents (id, partner_id, kind, permissions, status, expires_at, frequency_per_day, \
             created_at, status_updated_at, {column}) \
             VALUES ($1, $2, $3, '', 'awaiting_authorisation', $4, 4, $5, $5, $6)"
        );
        storage::write!(&self.db, |conn| sqlx::query(&sql)
            .bind(&id)
            .bind(&partner.id)
            .bind(kind)
            .bind(expires_at)
            .bind(now)
            .bind(terms_json)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        self.consent(&id).await
    }

    /// The single-use consent of `kind` a consent-bound token names, checked: the partner's,
    /// authorised and unexpired, the token's grant not revoked.
    pub(crate) async fn bound_live_consent(
        &self,
        claims: &AccessClaims,
        kind: ConsentKind,
    ) -> Result<ConsentRow, PlatformError> {
        let (row, grant_revoked) = self.bound_consent(claims, kind).await?;
        let accounts = crate::consents::split_list(&row.accounts);
        let facts = ConsentFacts {
            partner_id: &row.partner_id,
            status: row.status()?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            permissions: &[],
            accounts: &accounts,
        };
        consent::check_payment_access(&facts, self.clock.now_micros()).map_err(PlatformError::Denied)?;
        if grant_revoked {
            return Err(PlatformError::InvalidToken);
        }
        Ok(row)
    }

    /// The payment consent a consent-bound token names, checked: the partner's, of the payment
    /// kind, live, the token's grant not revoked.
    async fn bound_payment_consent(&self, claims: &AccessClaims) -> Result<(ConsentRow, PaymentTerms), PlatformError> {
        let row = self.bound_live_consent(claims, ConsentKind::DomesticPayment).await?;
        let terms = row.terms()?.ok_or_else(|| PlatformError::Corrupt(format!("consent {} has no terms", row.id)))?;
        Ok((row, terms))
    }

    /// Funds confirmation (UK Open Banking): whether the account the customer chose holds the
    /// consented amount now (available balance, holds deducted).
    pub async fn funds_available(&self, claims: &AccessClaims) -> Result<bool, PlatformError> {
        let (row, terms) = self.bound_payment_consent(claims).await?;
        let debtor = debtor_account(&row)?;
        let account = self.ledger.account(debtor).await?;
        let view = ledger::BalanceView::new(&account, account.balances, None);
        Ok(view.available >= terms.instructed_amount_minor)
    }

    /// Submits the payment of a consent-bound token: once per consent, once per idempotency key.
    pub async fn submit_payment(
        &self,
        claims: &AccessClaims,
        idempotency_key: &str,
        body: &[u8],
        amount: i64,
        currency: &str,
    ) -> Result<Submitted, PlatformError> {
        if idempotency_key.is_empty() || idempotency_key.len() > 40 || idempotency_key.chars().any(char::is_control) {
            return Err(invalid("x-idempotency-key must be 1 to 40 characters"));
        }
        let request_hash = hex::encode(sha2::Sha256::digest(body));
        // A retry answers what the first call did, whatever happened to the consent since.
        if let Some(previous) = self.payment_by_key(&claims.client_id, idempotency_key).await? {
            if previous.request_hash != request_hash {
                return Err(PlatformError::IdempotencyConflict);
            }
            return Ok(Submitted { payment: self.payment_view(previous).await?, created: false });
        }
        let (row, terms) = self.bound_payment_consent(claims).await?;
        consent::check_payment_amount(&terms, amount, currency)?;
        let debtor = debtor_account(&row)?;
        let creditor = parse_account(&terms.creditor_account_id)
            .ok_or_else(|| PlatformError::Corrupt(format!("consent {} creditor", row.id)))?;
        let currency_code: Currency =
            currency.parse().map_err(|_| invalid("currency must be an ISO 4217 code such as CNY"))?;
        let transfer_id =
            Uuid::new_v5(&PAYMENT_NAMESPACE, format!("{}:{idempotency_key}", claims.client_id).as_bytes());
        let customer_id = row.customer_id.clone().unwrap_or_default();
        let mut request = TransferRequest {
            id: TransferId(transfer_id),
            kind: TransferKind::Posted,
            debit_account_id: Some(debtor),
            credit_account_id: Some(creditor),
            amount: Some(amount),
            currency: Some(currency_code),
            pending_id: None,
            timeout_secs: 0,
            linked: false,
            reference: terms.reference.clone(),
            metadata: Some(serde_json::json!({
                "channel": "open_banking",
                "customer_id": customer_id,
                "partner_id": claims.client_id,
                "consent_id": row.id,
            })),
        };
        // Screened before anything is written: a rejection leaves no trace but the decision log.
        let mut status = "accepted_settlement_completed";
        let mut decision_id = None;
        if let Some(risk) = &self.risk {
            match risk.screen_transfer(&request).await {
                Ok(risk_platform::Screening::Skipped) => {}
                Ok(risk_platform::Screening::Allowed(view)) => decision_id = Some(view.id.to_string()),
                Ok(risk_platform::Screening::Review(view)) => {
                    decision_id = Some(view.id.to_string());
                    status = "pending_review";
                    request.kind = TransferKind::Pending;
                    request.timeout_secs = risk.config.review_hold_secs;
                }
                Err(risk_platform::RiskPlatformError::Rejected(view)) => {
                    return Err(PlatformError::RiskRejected(view.id.to_string()))
                }
                Err(e) => return Err(PlatformError::Risk(e.to_string())),
            }
        }
        let now = self.clock.now_micros();
        storage::audit::set_resource(transfer_id.to_string());
        storage::audit::set_purpose(row.id.clone());
        let payment_row = Statement::new(
            "INSERT INTO ob_payments (id, partner_id, consent_id, idempotency_key, request_hash, amount, currency, \
             debtor_account, creditor_account, status, risk_decision_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            vec![
                Arg::Text(transfer_id.to_string()),
                Arg::Text(claims.client_id.clone()),
                Arg::Text(row.id.clone()),
                Arg::Text(idempotency_key.to_string()),
                Arg::Text(request_hash),
                Arg::Int(amount),
                Arg::Text(currency.to_string()),
                Arg::Text(debtor.0.to_string()),
                Arg::Text(creditor.0.to_string()),
                Arg::Text(status.to_string()),
                Arg::OptText(decision_id.clone()),
                Arg::Int(now),
            ],
        )
        .expecting(1);
        // Single use: the consent moves to consumed with the payment, or the whole unit rolls back.
        let event = crate::partner_event(
            &claims.client_id,
            if status == "pending_review" { "payment.pending" } else { "payment.completed" },
            serde_json::json!({"payment_id": transfer_id.to_string(), "consent_id": row.id, "status": status}),
            now,
        );
        let consume = Statement::new(
            "UPDATE ob_consents SET status = 'consumed', status_updated_at = $1 WHERE id = $2 AND status = 'authorised'",
            vec![Arg::Int(now), Arg::Text(row.id.clone())],
        )
        .expecting(1);
        let outcomes = self
            .ledger
            .submit_batch_with(
                vec![request],
                Box::new(move |outcomes| match outcomes.first() {
                    Some(TransferOutcome::Created { .. }) => vec![payment_row, consume, event],
                    _ => Vec::new(),
                }),
            )
            .await
            .map_err(|e| match e {
                ledger::LedgerError::AlongConflict(_) => PlatformError::Denied(AccessDenied::Consumed),
                other => other.into(),
            })?;
        match outcomes.into_iter().next() {
            Some(TransferOutcome::Created { .. }) => {}
            Some(TransferOutcome::Failed { code, message, .. }) => {
                return Err(PlatformError::PaymentFailed(code.code(), message))
            }
            // A transfer with this id exists but no payment row: another partner's key space
            // cannot collide (the id is derived from the client id), so this is a lost race.
            _ => return Err(PlatformError::IdempotencyConflict),
        }
        let stored = self
            .payment_by_key(&claims.client_id, idempotency_key)
            .await?
            .ok_or_else(|| PlatformError::Corrupt("the payment just made is missing".into()))?;
        Ok(Submitted { payment: self.payment_view(stored).await?, created: true })
    }

    async fn payment_by_key(&self, partner_id: &str, key: &str) -> Result<Option<PaymentRow>, PlatformError> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM ob_payments WHERE partner_id = $1 AND idempotency_key = $2"
        ))
        .bind(partner_id)
        .bind(key)
        .fetch_optional(conn)
        .await)?)
    }

    /// A partner's own payment; another partner's is "not found".
    pub async fn payment(&self, partner_id: &str, id: &str) -> Result<Payment, PlatformError> {
        let row: Option<PaymentRow> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM ob_payments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        match row {
            Some(r) if r.partner_id == partner_id => self.payment_view(r).await,
            _ => Err(PlatformError::PaymentNotFound(id.to_string())),
        }
    }

    /// The payment with its status now: a held payment follows its hold.
    async fn payment_view(&self, row: PaymentRow) -> Result<Payment, PlatformError> {
        let mut status = row.status.clone();
        if status == "pending_review" {
            let id = parse_account(&row.id).map(|a| TransferId(a.0));
            if let Some(id) = id {
                status = match self.ledger.hold_status(id).await? {
                    Some(ledger::HoldStatus::Posted) => "accepted_settlement_completed",
                    Some(ledger::HoldStatus::Voided | ledger::HoldStatus::Expired) => "rejected",
                    _ => "pending_review",
                }
                .to_string();
            }
        }
        Ok(Payment {
            payment_id: row.id,
            consent_id: row.consent_id,
            status,
            amount_minor: row.amount,
            currency: row.currency,
            creditor_account_id: row.creditor_account,
            risk_decision_id: row.risk_decision_id,
            creation_time: time(row.created_at),
        })
    }
}

/// The consents whose terms are authorised as a whole.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TermsConsent {
    Payment,
    Loan,
}

pub(crate) fn invalid(message: &str) -> PlatformError {
    PlatformError::Domain(openbank::OpenBankError::Invalid(message.to_string()))
}

fn parse_account(id: &str) -> Option<AccountId> {
    id.parse::<Uuid>().ok().map(AccountId)
}

fn debtor_account(row: &ConsentRow) -> Result<AccountId, PlatformError> {
    crate::consents::split_list(&row.accounts)
        .first()
        .and_then(|a| parse_account(a))
        .ok_or_else(|| PlatformError::Corrupt(format!("consent {} has no debtor account", row.id)))
}
