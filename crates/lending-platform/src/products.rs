//! Lending's answer to the customer platform's [`customer_platform::OpenProducts`] port: the
//! active and overdue loans of a customer keep it from being closed.

use async_trait::async_trait;
use customer_platform::{OpenProduct, OpenProducts, PlatformError, ProductKind};

use crate::LendingService;

#[async_trait]
impl OpenProducts for LendingService {
    async fn open_products(&self, owners: &[String]) -> Result<Vec<OpenProduct>, PlatformError> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=owners.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id FROM lending_loans WHERE status IN ('active', 'overdue') AND applicant_id IN ({}) ORDER BY id",
            placeholders.join(", ")
        );
        let ids: Vec<String> = storage::read!(self.store().db(), |conn| {
            let mut q = sqlx::query_scalar(&sql);
            for o in owners {
                q = q.bind(o);
            }
            q.fetch_all(conn).await
        })?;
        Ok(ids.into_iter().map(|id| OpenProduct { kind: ProductKind::Loan, id }).collect())
    }
}
