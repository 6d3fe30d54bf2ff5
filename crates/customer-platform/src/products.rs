//! The port through which the customer platform learns what a customer still holds in other
//! domains, without reading their tables: closing a customer is refused while any domain
//! reports an open product. The ledger (accounts with money or holds on them) and lending
//! (active or overdue loans) implement it; the server hands both to the [`CustomerStore`].
//!
//! [`CustomerStore`]: crate::CustomerStore

use async_trait::async_trait;

use crate::PlatformError;

/// What kind of product keeps a customer open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductKind {
    /// A ledger account that is not closed and has a non-zero posted or pending balance.
    Account,
    /// A loan that is active or overdue.
    Loan,
}

/// One open product of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenProduct {
    pub kind: ProductKind,
    pub id: String,
}

/// A domain that can say which of its products a customer still holds.
#[async_trait]
pub trait OpenProducts: Send + Sync {
    /// The open products of these owners (a customer and the records merged into it).
    async fn open_products(&self, owners: &[String]) -> Result<Vec<OpenProduct>, PlatformError>;
}

/// The ledger's part: accounts that still carry money or holds.
#[async_trait]
impl OpenProducts for ledger::Ledger {
    async fn open_products(&self, owners: &[String]) -> Result<Vec<OpenProduct>, PlatformError> {
        let accounts = self.customer_accounts(owners).await?;
        Ok(accounts
            .into_iter()
            .filter(|a| a.status != ledger::AccountStatus::Closed)
            .filter(|a| {
                let b = a.balances;
                b.debits_posted != b.credits_posted || b.debits_pending != 0 || b.credits_pending != 0
            })
            .map(|a| OpenProduct { kind: ProductKind::Account, id: a.id.0.to_string() })
            .collect())
    }
}
