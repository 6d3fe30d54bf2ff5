//! Loan-book import: loans brought over from the bank's previous system, as they stand today
//! (outstanding principal, accrued and overdue interest, penalty, fees, days past due).
//!
//! Each loan gets its four receivable accounts, and its balances arrive as opening-balance
//! transfers from one clearing account, `gl.loan_migration`, whose balance is the whole book
//! brought over (it is cleared against the old system's books, outside digibank). A chunk's
//! transfers and its loan rows commit in one transaction, so a loan is never stored without
//! its balances or the other way round. Importing the same book again changes nothing: stored
//! loans are skipped and the transfers have deterministic ids.

use std::collections::{HashMap, HashSet};

use ledger::{AccountId, AccountKind, AlongWithBatch, NewAccount, OwnerType, TransferRequest, MAX_BATCH};
use lending::{AccountRole, Loan, LoanStatus};
use money::Currency;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, gl_account, loan_account, AccountScheme};
use crate::service::{check, LendingService};
use crate::store::{self, LoanInsert, LoanRecord};
use crate::{LendingPlatformError, Result};

/// Code of the clearing account that imported balances come from.
pub const MIGRATION_CLEARING: &str = "gl.loan_migration";

/// Loans per transaction (their opening balances stay well under one ledger batch).
const IMPORT_CHUNK: usize = 2_000;

/// One loan to import: its state today, its borrower and the accounts its money moves through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedLoan {
    pub loan: Loan,
    pub applicant_id: String,
    /// Receives draws; pays fees.
    pub customer_account: AccountId,
    /// Pays repayments.
    pub repayment_account: AccountId,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub loans: u64,
    pub imported: u64,
    /// Already stored (an import run again, or resumed); left as they are.
    pub already_present: u64,
    pub transfers: u64,
    /// Sum of the imported balances per currency, in minor units: what `gl.loan_migration`
    /// received.
    pub opening_balance_minor: i64,
    pub millis: u64,
}

/// The clearing account of imported balances.
pub fn migration_clearing_account(currency: Currency) -> NewAccount {
    NewAccount {
        id: Some(gl_account(MIGRATION_CLEARING, currency)),
        currency,
        kind: AccountKind::Liability,
        owner_type: OwnerType::Bank,
        owner_id: None,
        code: Some(MIGRATION_CLEARING.into()),
        name: Some("Lending loan-book migration clearing".into()),
        debits_must_not_exceed_credits: false,
        credits_must_not_exceed_debits: false,
        overdraft_limit: 0,
    }
}

/// The loan's balances by receivable role (what its ledger accounts must show).
fn opening_balances(loan: &Loan) -> [(AccountRole, i64); 4] {
    [
        (AccountRole::LoanPrincipal, loan.principal),
        (AccountRole::InterestReceivable, loan.interest_receivable()),
        (AccountRole::PenaltyReceivable, loan.penalty),
        (AccountRole::FeeReceivable, loan.fees),
    ]
}

/// Why a loan cannot be imported as given, if it cannot.
fn invalid(loan: &Loan) -> Option<String> {
    let negative = [
        ("principal", loan.principal),
        ("accrued_interest", loan.accrued_interest),
        ("penalty", loan.penalty),
        ("fees", loan.fees),
    ]
    .into_iter()
    .chain(loan.dues.iter().flat_map(|d| [("dues.principal", d.principal), ("dues.interest", d.interest)]))
    .find(|(_, v)| *v < 0);
    if let Some((field, v)) = negative {
        return Some(format!("{field} is negative ({v})"));
    }
    if loan.maturity_date < loan.start_date {
        return Some("maturity_date is before start_date".into());
    }
    if loan.status == LoanStatus::Overdue && loan.dues.is_empty() {
        return Some("status is overdue but no amount is due".into());
    }
    if loan.next_installment > loan.schedule.len() && !loan.schedule.is_empty() {
        return Some("next_installment is past the end of the schedule".into());
    }
    None
}

/// What checking a book has seen so far, so a large book can be checked in pieces
/// ([`LendingService::check_import`]) before any of it is imported.
#[derive(Debug, Default)]
pub struct ImportCheck {
    seen: HashSet<lending::LoanId>,
    party_currency: HashMap<AccountId, Currency>,
}

impl LendingService {
    /// Imports a loan book (see the module docs): [`Self::check_import`] over the whole book,
    /// then [`Self::import_checked`]. `progress(done, total)` after each chunk.
    pub async fn import_loans(
        &self,
        book: &[ImportedLoan],
        progress: impl FnMut(u64, u64) + Send,
    ) -> Result<ImportReport> {
        self.check_import(&mut ImportCheck::default(), book).await?;
        let mut report = ImportReport::default();
        self.import_checked(book, &mut report, progress).await?;
        Ok(report)
    }

    /// Checks loans before anything is written: a negative amount, an unknown product, a
    /// currency its accounts do not hold, a missing customer or repayment account, or an id
    /// given twice (also across pieces checked with the same `check`) is an error naming the
    /// loan.
    pub async fn check_import(&self, check: &mut ImportCheck, book: &[ImportedLoan]) -> Result<()> {
        for item in book {
            let loan = &item.loan;
            let fail = |why: String| LendingPlatformError::Invalid(format!("loan {}: {why}", loan.id.0));
            if !check.seen.insert(loan.id) {
                return Err(fail("given twice".into()));
            }
            if let Some(why) = invalid(loan) {
                return Err(fail(why));
            }
            self.catalog().get(&loan.product_code).map_err(|e| fail(e.to_string()))?;
            for account in [item.customer_account, item.repayment_account] {
                let currency = match check.party_currency.get(&account) {
                    Some(c) => *c,
                    None => {
                        let found = self.ledger().account(account).await.map_err(|e| fail(e.to_string()))?;
                        check.party_currency.insert(account, found.currency);
                        found.currency
                    }
                };
                if currency != loan.currency {
                    return Err(fail(format!(
                        "account {} holds {currency}, the loan is in {}",
                        account.0, loan.currency
                    )));
                }
            }
        }
        Ok(())
    }

    /// Imports loans already checked with [`Self::check_import`], adding to `report`.
    pub async fn import_checked(
        &self,
        book: &[ImportedLoan],
        report: &mut ImportReport,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        self.ensure_gl().await?;
        let currencies: HashSet<Currency> = book.iter().map(|i| i.loan.currency).collect();
        let clearing: Vec<NewAccount> = currencies.into_iter().map(migration_clearing_account).collect();
        self.ledger().open_accounts(&clearing).await?;
        report.loans += book.len() as u64;
        for chunk in book.chunks(IMPORT_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|i| i.loan.id.0.to_string()).collect();
            let stored = self.store().stored_loan_ids(&ids).await?;
            let mut fresh: Vec<&ImportedLoan> =
                chunk.iter().filter(|i| !stored.contains(&i.loan.id.0.to_string())).collect();
            // In id order, the chunk's rows, accounts and transfer ids land on neighbouring pages.
            fresh.sort_by_key(|i| i.loan.id);
            report.already_present += (chunk.len() - fresh.len()) as u64;
            if !fresh.is_empty() {
                self.import_chunk(&fresh, report).await?;
            }
            progress(report.imported + report.already_present, report.loans);
        }
        report.millis += started.elapsed().as_millis() as u64;
        Ok(())
    }

    /// Accounts, then one transaction with the chunk's opening balances (one linked chain, so
    /// they all succeed or none does) and its loan rows.
    async fn import_chunk(&self, fresh: &[&ImportedLoan], report: &mut ImportReport) -> Result<()> {
        let new_accounts: Vec<NewAccount> =
            fresh.iter().flat_map(|i| accounts::loan_accounts(i.loan.id, &i.applicant_id, i.loan.currency)).collect();
        self.ledger().open_accounts(&new_accounts).await?;
        let mut requests = Vec::new();
        // The loan of each request, to name the one the ledger refused.
        let mut owners = Vec::new();
        let mut rows = Vec::with_capacity(fresh.len());
        for item in fresh {
            let loan = &item.loan;
            let clearing = gl_account(MIGRATION_CLEARING, loan.currency);
            let balances = opening_balances(loan).into_iter().filter(|(_, a)| *a > 0);
            for (seq, (role, amount)) in balances.enumerate() {
                requests.push(
                    TransferRequest::posted(
                        accounts::transfer_id(loan.id, "import", seq),
                        loan_account(loan.id, role, AccountScheme::Clustered),
                        clearing,
                        amount,
                        loan.currency,
                    )
                    .with_reference(format!("loan:{}:opening_balance:{}", loan.id.0, accounts::role_name(role)))
                    .linked(),
                );
                owners.push(loan.id);
                report.opening_balance_minor += amount;
            }
            rows.push(LoanInsert::new(&LoanRecord {
                loan: loan.clone(),
                applicant_id: item.applicant_id.clone(),
                customer_account: item.customer_account,
                repayment_account: item.repayment_account,
                version: 1,
                account_scheme: AccountScheme::Clustered,
            })?);
        }
        if requests.len() > MAX_BATCH {
            return Err(LendingPlatformError::Invalid(format!(
                "{} opening-balance transfers in one chunk",
                requests.len()
            )));
        }
        match requests.last_mut() {
            None => self.store().execute(&store::insert_loans(&rows)).await?,
            Some(last) => {
                last.linked = false;
                report.transfers += requests.len() as u64;
                let along: AlongWithBatch =
                    Box::new(
                        move |outcomes| if check(outcomes).is_ok() { store::insert_loans(&rows) } else { Vec::new() },
                    );
                let outcomes = self.ledger().submit_batch_with(requests, along).await?;
                check(&outcomes).map_err(|e| {
                    let culprit = outcomes
                        .iter()
                        .position(|o| o.error().is_some_and(|c| c != ledger::TransferError::LinkedEventFailed))
                        .map(|i| owners[i].0.to_string())
                        .unwrap_or_default();
                    LendingPlatformError::Invalid(format!(
                        "loan {culprit}: opening balances refused by the ledger: {e}"
                    ))
                })?;
            }
        }
        report.imported += fresh.len() as u64;
        Ok(())
    }
}
