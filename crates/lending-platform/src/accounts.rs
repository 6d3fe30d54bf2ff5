//! The ledger mapping of lending: account roles to ledger accounts, postings to transfers.

use chrono::NaiveDate;
use ledger::{AccountId, AccountKind, NewAccount, OwnerType, TransferId, TransferRequest};
use lending::{AccountRole, LoanId, Posting};
use money::Currency;
use serde::{Deserialize, Serialize};
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

/// How the ids of a loan's receivable accounts are derived (stored per loan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountScheme {
    /// UUID v5 of the loan and role: loans opened before migration 0010.
    Hashed,
    /// [`clustered_id`]: every loan opened or imported since.
    Clustered,
}

impl AccountScheme {
    /// The stored form (`lending_loans.account_scheme`).
    pub fn code(self) -> i64 {
        match self {
            AccountScheme::Hashed => 0,
            AccountScheme::Clustered => 1,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(AccountScheme::Hashed),
            1 => Some(AccountScheme::Clustered),
            _ => None,
        }
    }
}

/// An id that sorts next to its loan: the loan id's first eight bytes, then eight bytes of a
/// SHA-1 (UUID v5) of the loan and `what`, marked as a UUID v8. End of day walks loans in id
/// order, so the accounts and transfer ids it touches in one batch sit together in the
/// database's B-trees instead of on one random page each, which is most of a stored end of
/// day's cost at a million loans.
pub fn clustered_id(loan: LoanId, what: &str) -> Uuid {
    let hash = Uuid::new_v5(&NS, format!("{}:{what}", loan.0).as_bytes());
    let mut bytes = *loan.0.as_bytes();
    bytes[8..].copy_from_slice(&hash.as_bytes()[8..]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Id of a loan's account for a receivable role.
pub fn loan_account(loan: LoanId, role: AccountRole, scheme: AccountScheme) -> AccountId {
    match scheme {
        AccountScheme::Hashed => {
            AccountId(Uuid::new_v5(&NS, format!("loan:{}:{}", loan.0, role_name(role)).as_bytes()))
        }
        AccountScheme::Clustered => AccountId(clustered_id(loan, &format!("account:{}", role_name(role)))),
    }
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

/// The four receivable accounts of a new loan, owned by the borrower.
pub fn loan_accounts(loan: LoanId, owner: &str, currency: Currency) -> Vec<NewAccount> {
    LOAN_ROLES
        .iter()
        .map(|(role, code)| NewAccount {
            id: Some(loan_account(loan, *role, AccountScheme::Clustered)),
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

/// Where a loan's postings go: its own accounts (by `scheme`) and, for `CustomerAccount`
/// postings, the borrower's and the payer's accounts.
#[derive(Debug, Clone, Copy)]
pub struct Parties {
    /// Receives disbursements and draws, pays the upfront fee.
    pub customer: AccountId,
    /// Pays repayments (the core enterprise for supply-chain financing).
    pub payer: AccountId,
    pub scheme: AccountScheme,
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
            None => loan_account(loan, r, parties.scheme),
        },
    }
}

/// Deterministic transfer id: loan, operation key (the loan version it applies to) and the
/// posting's position; it sorts next to the loan ([`clustered_id`]).
pub fn transfer_id(loan: LoanId, op: &str, seq: usize) -> TransferId {
    TransferId(clustered_id(loan, &format!("transfer:{op}:{seq}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clustered_ids_sort_next_to_their_loan_and_stay_distinct() {
        let a = LoanId(Uuid::new_v5(&NS, b"loan a"));
        let b = LoanId(Uuid::new_v5(&NS, b"loan b"));
        let ids: Vec<AccountId> =
            LOAN_ROLES.iter().map(|(role, _)| loan_account(a, *role, AccountScheme::Clustered)).collect();
        for id in &ids {
            assert_eq!(id.0.get_version_num(), 8);
            assert_eq!(id.0.as_bytes()[..6], a.0.as_bytes()[..6], "shares the loan's prefix");
        }
        let mut unique = ids.clone();
        unique.extend(LOAN_ROLES.iter().map(|(role, _)| loan_account(b, *role, AccountScheme::Clustered)));
        unique.push(AccountId(transfer_id(a, "v1", 0).0));
        unique.push(AccountId(transfer_id(a, "v1", 1).0));
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        // Ordered as their loans are: every id of the smaller loan sorts first.
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let lo_max = LOAN_ROLES.iter().map(|(r, _)| loan_account(lo, *r, AccountScheme::Clustered)).max().unwrap();
        let hi_min = LOAN_ROLES.iter().map(|(r, _)| loan_account(hi, *r, AccountScheme::Clustered)).min().unwrap();
        assert!(lo_max < hi_min);
        // Loans opened before migration 0010 keep their v5 ids.
        assert_eq!(
            loan_account(a, AccountRole::LoanPrincipal, AccountScheme::Hashed).0,
            Uuid::new_v5(&NS, format!("loan:{}:loan_principal", a.0).as_bytes())
        );
        for code in [0, 1] {
            assert_eq!(AccountScheme::from_code(code).unwrap().code(), code);
        }
        assert_eq!(AccountScheme::from_code(2), None);
    }
}
