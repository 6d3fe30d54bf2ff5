//! The ledger mapping of lending: account roles to ledger accounts, postings to transfers.

use chrono::NaiveDate;
use ledger::{AccountId, AccountKind, NewAccount, OwnerType, TransferId, TransferRequest};
use lending::{AccountRole, LoanId, Posting};
use money::Currency;
use uuid::Uuid;

/// Namespace of every UUID v5 this crate derives.
pub const NS: Uuid = Uuid::from_u128(0x6c65_6e64_696e_6770_6c61_7466_6f72_6d01);

/// The per-loan receivable roles, with their account codes.
pub const LOAN_ROLES: [(AccountRole, &str); 4] = [
    (AccountRole::LoanPrincipal, "loan.principal"),
    (AccountRole::InterestReceivable, "loan.interest_receivable"),
    (AccountRole::PenaltyReceivable, "loan.penalty_receivable"),
    (AccountRole::FeeReceivable, "loan.fee_receivable"),
];

/// The bank's shared GL roles, with their account codes and kinds.
pub const GL_ROLES: [(AccountRole, &str, AccountKind); 4] = [
    (AccountRole::InterestIncome, "gl.interest_income", AccountKind::Income),
    (AccountRole::PenaltyIncome, "gl.penalty_income", AccountKind::Income),
    (AccountRole::FeeIncome, "gl.fee_income_lending", AccountKind::Income),
    (AccountRole::LoanLossAllowance, "gl.loan_loss_allowance", AccountKind::Expense),
];

pub fn role_name(role: AccountRole) -> &'static str {
    match role {
        AccountRole::LoanPrincipal => "loan_principal",
        AccountRole::InterestReceivable => "interest_receivable",
        AccountRole::PenaltyReceivable => "penalty_receivable",
        AccountRole::FeeReceivable => "fee_receivable",
        AccountRole::InterestIncome => "interest_income",
        AccountRole::PenaltyIncome => "penalty_income",
        AccountRole::FeeIncome => "fee_income",
        AccountRole::CustomerAccount => "customer_account",
        AccountRole::LoanLossAllowance => "loan_loss_allowance",
    }
}

/// Fixed id of a GL account (same in every database).
pub fn gl_account(code: &str, currency: Currency) -> AccountId {
    AccountId(Uuid::new_v5(&NS, format!("gl:{code}:{}", currency.code()).as_bytes()))
}

/// Id of a loan's account for a receivable role.
pub fn loan_account(loan: LoanId, role: AccountRole) -> AccountId {
    AccountId(Uuid::new_v5(&NS, format!("loan:{}:{}", loan.0, role_name(role)).as_bytes()))
}

/// The GL accounts to open (idempotent on their fixed ids).
pub fn gl_accounts(currency: Currency) -> Vec<NewAccount> {
    GL_ROLES
        .iter()
        .map(|(_, code, kind)| NewAccount {
            id: Some(gl_account(code, currency)),
            currency,
            kind: *kind,
            owner_type: OwnerType::Bank,
            owner_id: None,
            code: Some((*code).into()),
            name: Some(format!("Lending {code}")),
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: false,
            overdraft_limit: 0,
        })
        .collect()
}

/// The four receivable accounts of a loan, owned by the borrower.
pub fn loan_accounts(loan: LoanId, owner: &str, currency: Currency) -> Vec<NewAccount> {
    LOAN_ROLES
        .iter()
        .map(|(role, code)| NewAccount {
            id: Some(loan_account(loan, *role)),
            currency,
            kind: AccountKind::Asset,
            owner_type: OwnerType::Customer,
            owner_id: Some(owner.to_string()),
            code: Some((*code).into()),
            name: Some(format!("Loan {} {code}", loan.0)),
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: false,
            overdraft_limit: 0,
        })
        .collect()
}

/// Where a loan's `CustomerAccount` postings go.
#[derive(Debug, Clone, Copy)]
pub struct Parties {
    /// Receives disbursements and draws, pays the upfront fee.
    pub customer: AccountId,
    /// Pays repayments (the core enterprise for supply-chain financing).
    pub payer: AccountId,
}

pub fn account_for(loan: LoanId, role: AccountRole, currency: Currency, p: &Posting, parties: &Parties) -> AccountId {
    match role {
        AccountRole::CustomerAccount => {
            if p.purpose == lending::PostingPurpose::Repayment {
                parties.payer
            } else {
                parties.customer
            }
        }
        r => match GL_ROLES.iter().find(|(g, _, _)| *g == r) {
            Some((_, code, _)) => gl_account(code, currency),
            None => loan_account(loan, r),
        },
    }
}

/// Deterministic transfer id: loan, operation key (the loan version it applies to) and the
/// posting's position.
pub fn transfer_id(loan: LoanId, op: &str, seq: usize) -> TransferId {
    TransferId(Uuid::new_v5(&NS, format!("transfer:{}:{op}:{seq}", loan.0).as_bytes()))
}

/// The postings of one loan operation as one linked chain of posted transfers.
pub fn transfers(loan: LoanId, op: &str, postings: &[Posting], parties: &Parties) -> Vec<TransferRequest> {
    let n = postings.len();
    postings
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let c = p.amount.currency;
            let r = TransferRequest::posted(
                transfer_id(loan, op, i),
                account_for(loan, p.debit, c, p, parties),
                account_for(loan, p.credit, c, p, parties),
                p.amount.minor,
                c,
            )
            .with_reference(format!("loan:{}:{}:{}", loan.0, purpose_name(p.purpose), date_text(p.date)));
            if i + 1 < n {
                r.linked()
            } else {
                r
            }
        })
        .collect()
}

fn purpose_name(p: lending::PostingPurpose) -> &'static str {
    use lending::PostingPurpose::*;
    match p {
        Disbursement => "disbursement",
        Repayment => "repayment",
        InterestAccrual => "interest_accrual",
        PenaltyAccrual => "penalty_accrual",
        Fee => "fee",
        WriteOff => "write_off",
    }
}

pub fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}
