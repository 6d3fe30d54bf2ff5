//! Embedded lending (scenario finance): a lending partner, with the customer's loan application
//! consent, applies once for a loan for them and follows it: decision, offer, acceptance (with the
//! customer present) and disbursement to the account the customer chose on the consent screen.
//!
//! The lending engine decides exactly as for the bank's own channels (channel `open_banking`,
//! the fraud check included); this module adds the consent checks, the record linking consent,
//! application and loan (`ob_loan_applications`, written in the lending transaction it belongs
//! to) and the partner's webhook events.

use chrono::{DateTime, Utc};
use lending::Outcome;
use lending_platform::{AcceptInput, ApplyInput};
use openbank::consent::{self, ConsentKind, LoanTerms};
use serde::{Deserialize, Serialize};
use storage::{Arg, Statement};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::consents::{Consent, ConsentRow};
use crate::payments::{invalid, TermsConsent};
use crate::{AccessClaims, OpenBanking, Partner, PlatformError};

/// What the partner sends to apply.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerLoanRequest {
    /// The amount asked for, in minor units (at most the consent's `max_amount_minor`).
    pub amount_minor: i64,
    pub currency: String,
    /// The customer's device on the partner's app, for the fraud check.
    #[serde(default)]
    pub device_fingerprint: Option<String>,
}

/// The customer's acceptance, relayed by the partner while the customer is present.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerLoanAcceptance {
    /// Principal in minor units, at most the offer's limit and the consent's maximum.
    pub amount_minor: i64,
    /// One of the offer's `terms_months`.
    pub term_months: u32,
    /// One of the offer's `methods` (`equal_installment`, ...).
    #[schema(value_type = String, example = "equal_installment")]
    pub method: lending::RepaymentMethod,
}

/// The offer as the partner sees it (enough to show the customer, nothing of the scorecard).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerOffer {
    pub offer_id: String,
    pub limit_minor: i64,
    pub min_amount_minor: i64,
    pub currency: String,
    /// Nominal annual rate, decimal string.
    pub annual_rate: String,
    pub terms_months: Vec<u32>,
    #[schema(value_type = Vec<String>)]
    pub methods: Vec<lending::RepaymentMethod>,
    pub expires_at: DateTime<Utc>,
}

/// One installment of the loan's schedule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerInstallment {
    pub seq: u32,
    pub due_date: chrono::NaiveDate,
    pub principal_minor: i64,
    pub interest_minor: i64,
}

/// The loan as the partner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerLoan {
    pub loan_id: String,
    /// `active`, `overdue`, `paid_off` or `written_off`.
    pub status: String,
    pub principal_minor: i64,
    pub outstanding_principal_minor: i64,
    pub currency: String,
    pub annual_rate: String,
    pub term_months: u32,
    pub start_date: chrono::NaiveDate,
    pub maturity_date: chrono::NaiveDate,
    /// The account the loan was paid out to (the one the customer chose).
    pub disbursed_to: String,
    pub schedule: Vec<PartnerInstallment>,
}

/// A loan application made through a partner.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerLoanApplication {
    pub application_id: String,
    pub consent_id: String,
    pub product_code: String,
    /// `approved`, `declined`, `in_review` (a lending officer decides), or `accepted` (the loan
    /// is open and paid out).
    pub status: String,
    /// Reason codes of the decision (e.g. `bureau_delinquencies`).
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<PartnerOffer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loan: Option<PartnerLoan>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ApplicationRow {
    partner_id: String,
    decision_id: String,
    loan_id: Option<String>,
    created_at: i64,
}

impl OpenBanking {
    /// Applies loans for lending partners through `lending` (embedded lending).
    pub fn with_lending(mut self, lending: lending_platform::LendingService) -> Self {
        self.lending = Some(lending);
        self
    }

    fn lending(&self) -> Result<&lending_platform::LendingService, PlatformError> {
        self.lending.as_ref().ok_or_else(|| PlatformError::Corrupt("embedded lending is not configured".into()))
    }

    /// Stores a partner's loan application consent, awaiting the customer's authorisation. The
    /// product must be in the catalogue, in the consent's currency, and the amount within it.
    pub async fn create_loan_consent(
        &self,
        partner: &Partner,
        terms: LoanTerms,
        expires_at: i64,
    ) -> Result<Consent, PlatformError> {
        let product = self
            .lending()?
            .catalog()
            .get(&terms.product_code)
            .map_err(|_| invalid(&format!("product_code {:?} is not in the catalogue", terms.product_code)))?;
        if product.currency.to_string() != terms.currency {
            return Err(invalid(&format!("{} is lent in {}", product.code, product.currency)));
        }
        if terms.max_amount_minor < product.min_amount_minor {
            return Err(invalid(&format!(
                "max_amount_minor is below the product's minimum of {}",
                product.min_amount_minor
            )));
        }
        let loan = serde_json::to_string(&terms).map_err(|e| PlatformError::Corrupt(e.to_string()))?;
        self.insert_terms_consent(partner, TermsConsent::Loan, &loan, expires_at).await
    }

    /// The loan consent a consent-bound token names, checked: the partner's, of the lending
    /// kind, authorised and unexpired, its grant not revoked.
    async fn bound_loan_consent(&self, claims: &AccessClaims) -> Result<(ConsentRow, LoanTerms), PlatformError> {
        let row = self.bound_live_consent(claims, ConsentKind::LoanApplication).await?;
        let terms =
            row.loan_terms()?.ok_or_else(|| PlatformError::Corrupt(format!("consent {} has no loan terms", row.id)))?;
        Ok((row, terms))
    }

    async fn application_row(&self, consent_id: &str) -> Result<Option<ApplicationRow>, PlatformError> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT partner_id, decision_id, loan_id, created_at FROM ob_loan_applications \
             WHERE consent_id = $1"
        )
        .bind(consent_id)
        .fetch_optional(conn)
        .await)?)
    }

    /// Applies for the consent's loan: once per consent (a second call answers the first
    /// application, `created` false). The decision, the link to the consent and the partner's
    /// `loan_application.decided` event commit together.
    pub async fn apply_for_loan(
        &self,
        claims: &AccessClaims,
        request: &PartnerLoanRequest,
        customer_ip: Option<&str>,
    ) -> Result<(PartnerLoanApplication, bool), PlatformError> {
        let (row, terms) = self.bound_loan_consent(claims).await?;
        if let Some(existing) = self.application_row(&row.id).await? {
            return Ok((self.application_view(existing, &terms, &row).await?, false));
        }
        consent::check_loan_amount(&terms, request.amount_minor, &request.currency.trim().to_ascii_uppercase())?;
        if request.device_fingerprint.as_ref().is_some_and(|d| d.is_empty() || d.len() > 100) {
            return Err(invalid("device_fingerprint must be 1 to 100 characters"));
        }
        let customer_id =
            row.customer_id.clone().ok_or_else(|| PlatformError::Corrupt(format!("consent {} customer", row.id)))?;
        let input = ApplyInput {
            applicant_id: customer_id,
            product_code: terms.product_code.clone(),
            kind: None,
            amount: Some(request.amount_minor),
            channel: Some(risk::Channel::OpenBanking),
            device_fingerprint: request.device_fingerprint.clone(),
            ip: customer_ip.map(str::to_string),
            phone: None,
            id_number: None,
        };
        let now = self.clock.now_micros();
        storage::audit::set_purpose(row.id.clone());
        let (consent_id, partner_id) = (row.id.clone(), row.partner_id.clone());
        let decision = self
            .lending()?
            .apply_with(&input, move |decision| {
                storage::audit::set_resource(decision.id.0.to_string());
                let status = partner_status(decision.outcome);
                vec![
                    Statement::new(
                        "INSERT INTO ob_loan_applications (consent_id, partner_id, decision_id, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4)",
                        vec![
                            Arg::Text(consent_id.clone()),
                            Arg::Text(partner_id.clone()),
                            Arg::Text(decision.id.0.to_string()),
                            Arg::Int(now),
                        ],
                    ),
                    crate::partner_event(
                        &partner_id,
                        "loan_application.decided",
                        serde_json::json!({"application_id": decision.id.0.to_string(), "consent_id": consent_id,
                            "status": status}),
                        now,
                    ),
                ]
            })
            .await;
        if let Err(e) = decision {
            // Another call for this consent may have won the race (the link's key refused this
            // one, and its decision with it): answer that application.
            return match self.application_row(&row.id).await? {
                Some(existing) => Ok((self.application_view(existing, &terms, &row).await?, false)),
                None => Err(PlatformError::Lending(e)),
            };
        }
        let stored = self
            .application_row(&row.id)
            .await?
            .ok_or_else(|| PlatformError::Corrupt(format!("consent {} lost its application", row.id)))?;
        Ok((self.application_view(stored, &terms, &row).await?, true))
    }

    /// The application (and its offer and loan) of the token's consent.
    pub async fn partner_loan_application(
        &self,
        claims: &AccessClaims,
        application_id: &str,
    ) -> Result<PartnerLoanApplication, PlatformError> {
        let (row, terms, app) = self.bound_application(claims, application_id).await?;
        self.application_view(app, &terms, &row).await
    }

    async fn bound_application(
        &self,
        claims: &AccessClaims,
        application_id: &str,
    ) -> Result<(ConsentRow, LoanTerms, ApplicationRow), PlatformError> {
        let (row, terms) = self.bound_loan_consent(claims).await?;
        let app = self
            .application_row(&row.id)
            .await?
            .filter(|a| a.decision_id == application_id && a.partner_id == claims.client_id)
            .ok_or_else(|| PlatformError::ApplicationNotFound(application_id.to_string()))?;
        Ok((row, terms, app))
    }

    /// The customer accepts the offer (through the partner, while present): contract, loan and
    /// disbursement to the consent's account, the link to the loan and the `loan.disbursed`
    /// event in one ledger transaction. Accepting again answers the same loan.
    pub async fn accept_loan(
        &self,
        claims: &AccessClaims,
        application_id: &str,
        acceptance: &PartnerLoanAcceptance,
        customer_present: bool,
    ) -> Result<PartnerLoanApplication, PlatformError> {
        if !customer_present {
            return Err(PlatformError::CustomerNotPresent);
        }
        let (row, terms, app) = self.bound_application(claims, application_id).await?;
        if app.loan_id.is_some() {
            return self.application_view(app, &terms, &row).await;
        }
        consent::check_loan_amount(&terms, acceptance.amount_minor, &terms.currency)?;
        let lending = self.lending()?;
        let offer = lending.offer(&app.decision_id).await?;
        let account = crate::consents::split_list(&row.accounts)
            .into_iter()
            .next()
            .and_then(|a| a.parse::<Uuid>().ok())
            .ok_or_else(|| PlatformError::Corrupt(format!("consent {} has no account", row.id)))?;
        let input = AcceptInput {
            amount: acceptance.amount_minor,
            currency: None,
            term_months: acceptance.term_months,
            method: acceptance.method,
            deposit_account_id: ledger::AccountId(account),
            start_date: None,
        };
        let now = self.clock.now_micros();
        storage::audit::set_purpose(row.id.clone());
        let (consent_id, partner_id, decision_id) = (row.id.clone(), row.partner_id.clone(), app.decision_id.clone());
        let (amount, currency) = (acceptance.amount_minor, terms.currency.clone());
        // The loan's id is its contract's.
        let along = move |contract: &lending::Contract| {
            let loan_id = contract.id.0.to_string();
            storage::audit::set_resource(loan_id.clone());
            vec![Statement::new(
                "UPDATE ob_loan_applications SET loan_id = $1, updated_at = $2 WHERE consent_id = $3 AND loan_id IS NULL",
                vec![Arg::Text(loan_id.clone()), Arg::Int(now), Arg::Text(consent_id.clone())],
            )
            // A second acceptance racing this one rolls back whole.
            .expecting(1),
            crate::partner_event(
                &partner_id,
                "loan.disbursed",
                serde_json::json!({"application_id": decision_id, "consent_id": consent_id, "loan_id": loan_id,
                    "amount_minor": amount, "currency": currency}),
                now,
            )]
        };
        lending.accept_with(&offer.id.0.to_string(), &input, along).await?;
        let app = self
            .application_row(&row.id)
            .await?
            .ok_or_else(|| PlatformError::Corrupt(format!("consent {} lost its application", row.id)))?;
        self.application_view(app, &terms, &row).await
    }

    async fn application_view(
        &self,
        app: ApplicationRow,
        terms: &LoanTerms,
        consent: &ConsentRow,
    ) -> Result<PartnerLoanApplication, PlatformError> {
        let lending = self.lending()?;
        let decision = lending.decision(&app.decision_id).await?;
        let outcome = decision.manual_review.as_ref().map_or(decision.outcome, |m| m.outcome);
        let mut status = partner_status(outcome).to_string();
        let offer = if outcome == Outcome::Approve {
            // Idempotent per decision: the same offer every time.
            let o = lending.offer(&app.decision_id).await?;
            Some(PartnerOffer {
                offer_id: o.id.0.to_string(),
                limit_minor: o.limit.minor.min(terms.max_amount_minor),
                min_amount_minor: o.min_amount.minor,
                currency: o.limit.currency.to_string(),
                annual_rate: o.annual_rate.to_string(),
                terms_months: o.terms_months.clone(),
                methods: o.methods.clone(),
                expires_at: o.expires_at,
            })
        } else {
            None
        };
        let loan = match &app.loan_id {
            Some(id) => {
                let uuid = id.parse::<Uuid>().map_err(|_| PlatformError::Corrupt(format!("loan id {id}")))?;
                let view = lending.view(lending::LoanId(uuid)).await?;
                status = "accepted".into();
                Some(PartnerLoan {
                    loan_id: id.clone(),
                    status: view.loan.status.as_str().to_string(),
                    principal_minor: view.loan.line_limit,
                    outstanding_principal_minor: view.loan.principal,
                    currency: view.loan.currency.to_string(),
                    annual_rate: view.loan.annual_rate.to_string(),
                    term_months: view.loan.term_months,
                    start_date: view.loan.start_date,
                    maturity_date: view.loan.maturity_date,
                    disbursed_to: view.customer_account.0.to_string(),
                    schedule: view
                        .schedule
                        .iter()
                        .map(|i| PartnerInstallment {
                            seq: i.seq,
                            due_date: i.due_date,
                            principal_minor: i.principal,
                            interest_minor: i.interest,
                        })
                        .collect(),
                })
            }
            None => None,
        };
        Ok(PartnerLoanApplication {
            application_id: app.decision_id,
            consent_id: consent.id.clone(),
            product_code: decision.product_code,
            status,
            reasons: decision.reasons.iter().map(|r| r.code.clone()).collect(),
            offer,
            loan,
            created_at: crate::consents::time(app.created_at),
        })
    }
}

fn partner_status(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approve => "approved",
        Outcome::Decline => "declined",
        Outcome::Review => "in_review",
    }
}
