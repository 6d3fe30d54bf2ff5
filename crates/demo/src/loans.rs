//! The demo bank's loans, made through the lending service so every one is ledger-backed:
//! applications in every outcome (approved, declined, in review), instant loans that are
//! current, overdue in M1, M2 and M3+, and paid off, a revolving tax-data SME line with draws, and
//! a supply-chain financing of a confirmed receivable repaid by the core enterprise. Loans start
//! in the past and one end of day (for yesterday) ages them all.

// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]
use chrono::{Duration, NaiveDate};
use lending::{DocumentKind, LoanId, Outcome, PrepayMode, RepaymentMethod};
use lending_platform::service::DocumentInput;
use lending_platform::{AcceptInput, ApplyInput, FinanceInput, LendingPlatformError, LendingService, ReceivableInput};
use money::{Amount, Currency};

use crate::{Customer, Profile};

/// What the demo's lending book holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LendingSummary {
    pub applications: usize,
    pub approved: usize,
    pub declined: usize,
    pub review: usize,
    pub loans: usize,
    /// Ledger transfers the lending book wrote (disbursements, fees, draws, repayments, accruals).
    pub ledger_transfers: usize,
    /// (label, loan id)
    pub samples: Vec<(String, String)>,
}

/// Instant-loan scenarios: (label, days ago the loan started, repaid in full).
const CONSUMER: [(&str, i64, bool); 6] = [
    ("instant loan, current", 20, false),
    ("instant loan, overdue M1", 50, false),
    ("instant loan, overdue M2", 80, false),
    ("instant loan, overdue M3+", 130, false),
    ("instant loan, paid off", 15, true),
    ("instant loan, current (2)", 5, false),
];

pub(crate) async fn load(
    service: &LendingService,
    customers: &[Customer],
    today: NaiveDate,
) -> Result<LendingSummary, LendingPlatformError> {
    let mut s = LendingSummary::default();
    if !service.list_loans(None, None, None, None, 1).await?.is_empty() {
        return Ok(s); // already loaded
    }
    let yesterday = today - Duration::days(1);
    let cny = |m: i64| Amount::new(m, Currency::CNY);
    let mut consumer = 0usize;
    let mut sme_line_done = false;
    let mut smes = Vec::new();
    for c in customers {
        let product = match c.profile {
            Profile::Sme => "tax_sme",
            _ => "instant_consumer",
        };
        if c.profile == Profile::Sme {
            smes.push(c);
        }
        let wanted = if product == "tax_sme" { !sme_line_done } else { consumer < CONSUMER.len() };
        if !wanted && s.applications >= 30 {
            continue;
        }
        let d = service
            .apply(&ApplyInput { applicant_id: c.id.clone(), product_code: product.into(), ..ApplyInput::default() })
            .await?;
        s.applications += 1;
        match d.outcome {
            Outcome::Approve => s.approved += 1,
            Outcome::Decline => {
                s.declined += 1;
                continue;
            }
            Outcome::Review => {
                s.review += 1;
                continue;
            }
        }
        if !wanted {
            continue;
        }
        let offer = service.offer(&d.id.0.to_string()).await?;
        if product == "tax_sme" {
            let start = today - Duration::days(45);
            let term = *offer.terms_months.iter().max().unwrap_or(&12);
            let out = service
                .accept(
                    &offer.id.0.to_string(),
                    &AcceptInput {
                        amount: offer.limit.minor,
                        currency: None,
                        term_months: term,
                        method: RepaymentMethod::Revolving,
                        deposit_account_id: c.account,
                        start_date: Some(start),
                    },
                )
                .await?;
            let id = out.loan.id;
            s.ledger_transfers += out.transfers.len();
            let d1 = service.draw(id, cny(offer.limit.minor * 4 / 10), Some(start)).await?;
            let d2 = service.draw(id, cny(offer.limit.minor / 10), Some(start + Duration::days(20))).await?;
            s.ledger_transfers += d1.transfers.len() + d2.transfers.len();
            s.samples.push(("tax_sme revolving line with draws".into(), id.0.to_string()));
            sme_line_done = true;
            s.loans += 1;
            continue;
        }
        let Some((label, days_ago, pay_off)) = CONSUMER.get(consumer) else { continue };
        consumer += 1;
        let start = today - Duration::days(*days_ago);
        let term = offer.terms_months.iter().copied().find(|t| *t >= 6).unwrap_or(offer.terms_months[0]);
        let amount = offer.limit.minor.min(c.income * 2).max(offer.min_amount.minor);
        let out = service
            .accept(
                &offer.id.0.to_string(),
                &AcceptInput {
                    amount,
                    currency: None,
                    term_months: term,
                    method: RepaymentMethod::EqualInstallment,
                    deposit_account_id: c.account,
                    start_date: Some(start),
                },
            )
            .await?;
        let id: LoanId = out.loan.id;
        if *pay_off {
            // Pays principal plus ample interest; the waterfall returns what is not owed.
            service
                .prepay(id, cny(amount + amount / 10), PrepayMode::KeepTerm, Some(start + Duration::days(10)), None)
                .await?;
        }
        s.samples.push(((*label).into(), id.0.to_string()));
        s.loans += 1;
    }
    // Supply chain: the second SME sells to the first (the core enterprise), which repays.
    if let [core, supplier, ..] = smes.as_slice() {
        let rid = format!("DEMO-R-{}", &supplier.id[..8.min(supplier.id.len())]);
        service
            .register_receivable(&ReceivableInput {
                id: rid.clone(),
                core_enterprise_id: core.id.clone(),
                supplier_id: supplier.id.clone(),
                amount: 200_000_00,
                currency: None,
                issue_date: today - Duration::days(10),
                due_date: today + Duration::days(100),
                documents: vec![
                    DocumentInput { kind: DocumentKind::Order, content: format!("purchase order {rid}") },
                    DocumentInput { kind: DocumentKind::Invoice, content: format!("invoice {rid}") },
                    DocumentInput { kind: DocumentKind::DeliveryReceipt, content: format!("delivery receipt {rid}") },
                ],
            })
            .await?;
        service.confirm_receivable(&rid, &core.id).await?;
        let (_, out) = service
            .finance_receivable(
                &rid,
                &FinanceInput {
                    supplier_id: supplier.id.clone(),
                    amount: 150_000_00,
                    currency: None,
                    deposit_account_id: supplier.account,
                    repayment_account_id: core.account,
                    start_date: Some(today - Duration::days(5)),
                },
            )
            .await?;
        s.ledger_transfers += out.transfers.len();
        s.samples.push(("supply-chain financing".into(), out.loan.id.0.to_string()));
        s.loans += 1;
    }
    s.ledger_transfers += service.run_eod(yesterday, |_, _| {}).await?.postings as usize;
    Ok(s)
}
