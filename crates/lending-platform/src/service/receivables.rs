//! Supply-chain finance: the document registry, receivables, confirmation and financing.

use super::*;

impl LendingService {
    // ---- documents and receivables ----------------------------------------------------------

    /// Locks the registry, reloading it when the stored chain has grown elsewhere.
    pub(super) async fn registry(&self) -> Result<tokio::sync::MutexGuard<'_, Option<DocumentRegistry>>> {
        let mut guard = self.registry.lock().await;
        let stored = self.store.registry_len().await?;
        if guard.as_ref().is_none_or(|r| r.entries().len() as i64 != stored) {
            *guard = Some(DocumentRegistry::from_entries(self.store.registry_entries().await?)?);
        }
        Ok(guard)
    }

    /// Registers a document by content (or by its SHA-256 hex); the same hash twice is refused.
    pub async fn register_document(
        &self,
        kind: DocumentKind,
        content: Option<&str>,
        hash: Option<&str>,
        party_id: &str,
        reference: &str,
    ) -> Result<RegistryEntry> {
        let hash = match (content, hash) {
            (Some(c), _) => lending::content_hash(c.as_bytes()),
            (None, Some(h)) => h.to_string(),
            (None, None) => return Err(LendingPlatformError::Invalid("give content or content_hash".into())),
        };
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let entry = reg.register_hash(kind, &hash, party_id, reference, self.clock.now())?;
        self.store.execute(&[store::insert_entry(&entry)?]).await?;
        *guard = Some(reg);
        Ok(entry)
    }

    pub async fn receivable(&self, id: &str) -> Result<(Receivable, Option<String>)> {
        self.store.receivable(id).await?.ok_or_else(|| LendingPlatformError::NotFound("receivable", id.into()))
    }

    /// Registers a receivable with its documents (all in the registry, or nothing).
    pub async fn register_receivable(&self, input: &ReceivableInput) -> Result<Receivable> {
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let before = reg.entries().len();
        let mut book = ReceivableBook::new();
        if self.store.receivable(&input.id).await?.is_some() {
            return Err(bad(LendingError::DuplicateReceivable(input.id.clone())));
        }
        let docs: Vec<(DocumentKind, &[u8])> = input.documents.iter().map(|d| (d.kind, d.content.as_bytes())).collect();
        let r = book
            .register(
                &mut reg,
                &input.id,
                &input.core_enterprise_id,
                &input.supplier_id,
                Amount::new(input.amount, input.currency.unwrap_or(Currency::CNY)),
                input.issue_date,
                input.due_date,
                &docs,
                self.clock.now(),
            )?
            .clone();
        let mut statements = Vec::new();
        for e in &reg.entries()[before..] {
            statements.push(store::insert_entry(e)?);
        }
        statements.push(store::insert_receivable(&r)?);
        self.store.execute(&statements).await?;
        *guard = Some(reg);
        Ok(r)
    }

    /// The core enterprise confirms the receivable (recorded in the registry).
    pub async fn confirm_receivable(&self, id: &str, core_enterprise_id: &str) -> Result<Receivable> {
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let before = reg.entries().len();
        let (r, loan) = self.receivable(id).await?;
        let mut book = ReceivableBook::new();
        book.receivables.insert(r.id.clone(), r);
        book.confirm(&mut reg, id, core_enterprise_id, self.clock.now())?;
        let r = book.get(id)?.clone();
        let mut statements = Vec::new();
        for e in &reg.entries()[before..] {
            statements.push(store::insert_entry(e)?);
        }
        statements.push(store::update_receivable(&r, loan)?);
        self.store.execute(&statements).await?;
        *guard = Some(reg);
        Ok(r)
    }

    /// Finances a confirmed receivable once: a supply-chain loan disbursed to the supplier,
    /// repaid by the core enterprise's account, maturing no later than the receivable.
    pub async fn finance_receivable(&self, id: &str, input: &FinanceInput) -> Result<(Receivable, AcceptOutcome)> {
        let mut guard = self.registry().await?;
        let mut reg = guard.clone().expect("loaded");
        let before = reg.entries().len();
        let (r, _) = self.receivable(id).await?;
        let product = self.catalog.get("supply_chain")?.clone();
        let start = input.start_date.unwrap_or_else(|| self.clock.today());
        let amount = Amount::new(input.amount, input.currency.unwrap_or(r.amount.currency));
        let due = r.due_date;
        let mut book = ReceivableBook::new();
        book.receivables.insert(r.id.clone(), r);
        let ratio = product.advance_ratio.unwrap_or(rust_decimal::Decimal::ONE);
        let now = self.clock.now();
        book.finance(&mut reg, id, &input.supplier_id, amount, ratio, start, now)?;
        let r = book.get(id)?.clone();
        let term = product
            .terms_months
            .iter()
            .copied()
            .filter(|t| start.checked_add_months(Months::new(*t)).is_some_and(|m| m <= due))
            .max()
            .unwrap_or(1);
        let rate = product
            .row_for_grade(RiskGrade::A)
            .map(|row| row.rate)
            .ok_or_else(|| LendingPlatformError::Corrupt("supply_chain has no grade A price".into()))?;
        let mut contract = direct_contract(
            &product,
            &input.supplier_id,
            amount,
            rate,
            term,
            RepaymentMethod::InterestOnlyBullet,
            start,
        )?;
        contract.id = ContractId(Uuid::new_v5(&NS, format!("receivable:{id}").as_bytes()));
        contract.receivable_id = Some(id.to_string());
        // A direct contract is signed at the earliest representable instant, which is no RFC 3339
        // date-time a client can parse; this one is signed when it is financed.
        contract.signed_at = now;
        let mut extra = Vec::new();
        for e in &reg.entries()[before..] {
            extra.push(store::insert_entry(e)?);
        }
        extra.push(store::update_receivable(&r, Some(contract.id.0.to_string()))?);
        let parties = Parties {
            customer: input.deposit_account_id,
            payer: input.repayment_account_id,
            scheme: AccountScheme::Clustered,
        };
        let outcome = self.open_loan(contract, parties, extra).await?;
        *guard = Some(reg);
        Ok((r, outcome))
    }
}
