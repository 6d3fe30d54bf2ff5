//! Supply-chain document registry and receivable book.
//!
//! [`DocumentRegistry`] is append-only and hash-chained: entry `n` stores the SHA-256 of the
//! document's content and `entry_hash = SHA-256(prev_hash ‖ seq ‖ kind ‖ content_hash ‖ party ‖
//! reference ‖ registered_at)`, with `prev_hash` the previous entry's `entry_hash` (64 zeros for
//! the first). A content hash can be registered only once, so the same invoice cannot back two
//! receivables; [`DocumentRegistry::verify`] recomputes the chain and names the first entry that
//! does not match.
//!
//! [`ReceivableBook`] holds receivables (registered with their documents), their confirmation by
//! the core enterprise (确权) and their financing, at most once.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use money::Amount;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::LendingError;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a registered document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Order,
    Invoice,
    DeliveryReceipt,
    /// The core enterprise's confirmation of a payable.
    Confirmation,
    /// The bank's financing of a receivable.
    Financing,
    Other,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Order => "order",
            DocumentKind::Invoice => "invoice",
            DocumentKind::DeliveryReceipt => "delivery_receipt",
            DocumentKind::Confirmation => "confirmation",
            DocumentKind::Financing => "financing",
            DocumentKind::Other => "other",
        }
    }
}

/// An entry of the hash-chained document registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegistryEntry {
    pub seq: u64,
    pub kind: DocumentKind,
    /// SHA-256 of the document content, lower-case hex.
    pub content_hash: String,
    /// Who registered it (supplier, core enterprise, bank).
    pub party_id: String,
    /// Business reference, e.g. the receivable id.
    pub reference: String,
    pub registered_at: DateTime<Utc>,
    pub prev_hash: String,
    pub entry_hash: String,
}

/// SHA-256 of some content as lower-case hex.
pub fn content_hash(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

fn entry_hash(e: &RegistryEntry) -> String {
    let mut h = Sha256::new();
    h.update(e.prev_hash.as_bytes());
    h.update(e.seq.to_be_bytes());
    h.update(e.kind.as_str().as_bytes());
    h.update([0]);
    h.update(e.content_hash.as_bytes());
    h.update([0]);
    h.update(e.party_id.as_bytes());
    h.update([0]);
    h.update(e.reference.as_bytes());
    h.update([0]);
    h.update(e.registered_at.timestamp_micros().to_be_bytes());
    hex::encode(h.finalize())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The append-only, hash-chained document registry.
#[derive(Debug, Clone, Default)]
pub struct DocumentRegistry {
    entries: Vec<RegistryEntry>,
    by_hash: HashMap<String, u64>,
}

impl DocumentRegistry {
    pub fn new() -> DocumentRegistry {
        DocumentRegistry::default()
    }

    /// Rebuilds a registry from stored entries, verifying the whole chain.
    pub fn from_entries(entries: Vec<RegistryEntry>) -> Result<DocumentRegistry, LendingError> {
        let by_hash = entries.iter().map(|e| (e.content_hash.clone(), e.seq)).collect();
        let reg = DocumentRegistry { entries, by_hash };
        reg.verify()?;
        Ok(reg)
    }

    pub fn entries(&self) -> &[RegistryEntry] {
        &self.entries
    }

    pub fn head(&self) -> &str {
        self.entries.last().map(|e| e.entry_hash.as_str()).unwrap_or(GENESIS)
    }

    pub fn contains(&self, content_hash: &str) -> bool {
        self.by_hash.contains_key(content_hash)
    }

    pub fn find(&self, content_hash: &str) -> Option<&RegistryEntry> {
        self.by_hash.get(content_hash).map(|&seq| &self.entries[seq as usize - 1])
    }

    /// Registers a document by its content.
    pub fn register(
        &mut self,
        kind: DocumentKind,
        content: &[u8],
        party_id: &str,
        reference: &str,
        at: DateTime<Utc>,
    ) -> Result<RegistryEntry, LendingError> {
        self.register_hash(kind, &content_hash(content), party_id, reference, at)
    }

    /// Registers a document by its SHA-256 (hex). The same hash twice is
    /// [`LendingError::DuplicateDocument`].
    pub fn register_hash(
        &mut self,
        kind: DocumentKind,
        hash: &str,
        party_id: &str,
        reference: &str,
        at: DateTime<Utc>,
    ) -> Result<RegistryEntry, LendingError> {
        if !is_sha256_hex(hash) {
            return Err(LendingError::UnknownDocument(format!("{hash:?} is not a lower-case SHA-256 hex digest")));
        }
        if self.by_hash.contains_key(hash) {
            return Err(LendingError::DuplicateDocument(hash.to_string()));
        }
        let mut e = RegistryEntry {
            seq: self.entries.len() as u64 + 1,
            kind,
            content_hash: hash.to_string(),
            party_id: party_id.to_string(),
            reference: reference.to_string(),
            registered_at: at,
            prev_hash: self.head().to_string(),
            entry_hash: String::new(),
        };
        e.entry_hash = entry_hash(&e);
        self.by_hash.insert(e.content_hash.clone(), e.seq);
        self.entries.push(e.clone());
        Ok(e)
    }

    /// Recomputes the chain; the first entry that does not match is
    /// [`LendingError::RegistryTampered`].
    pub fn verify(&self) -> Result<(), LendingError> {
        let mut prev = GENESIS.to_string();
        let mut seen = std::collections::HashSet::new();
        for (i, e) in self.entries.iter().enumerate() {
            let bad = |reason: &str| Err(LendingError::RegistryTampered { seq: e.seq, reason: reason.into() });
            if e.seq != i as u64 + 1 {
                return bad("sequence number out of order");
            }
            if e.prev_hash != prev {
                return bad("previous hash does not match the chain");
            }
            if e.entry_hash != entry_hash(e) {
                return bad("entry hash does not match its content");
            }
            if !seen.insert(e.content_hash.as_str()) {
                return bad("document hash registered twice");
            }
            prev = e.entry_hash.clone();
        }
        Ok(())
    }
}

/// A receivable: a core enterprise's payable to a supplier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Receivable {
    pub id: String,
    pub core_enterprise_id: String,
    pub supplier_id: String,
    pub amount: Amount,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// Hashes of the documents registered with it (order, invoice, delivery receipt).
    pub document_hashes: Vec<String>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub financing: Option<Financing>,
}

/// The financing of a receivable (at most one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Financing {
    pub receivable_id: String,
    pub supplier_id: String,
    pub advance: Amount,
    /// The product's advance ratio at financing, decimal string.
    #[schema(value_type = String, example = "0.8")]
    pub advance_ratio: Decimal,
    pub financed_at: DateTime<Utc>,
    /// Registry entry recording the financing.
    pub registry_seq: u64,
}

/// Receivables by id, with the registry that backs their documents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReceivableBook {
    pub receivables: BTreeMap<String, Receivable>,
}

impl ReceivableBook {
    pub fn new() -> ReceivableBook {
        ReceivableBook::default()
    }

    pub fn get(&self, id: &str) -> Result<&Receivable, LendingError> {
        self.receivables.get(id).ok_or_else(|| LendingError::UnknownReceivable(id.to_string()))
    }

    /// Registers a receivable with its documents (each registered in `registry`; a document
    /// already registered anywhere makes the whole call fail and registers nothing).
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &mut self,
        registry: &mut DocumentRegistry,
        id: &str,
        core_enterprise_id: &str,
        supplier_id: &str,
        amount: Amount,
        issue_date: NaiveDate,
        due_date: NaiveDate,
        documents: &[(DocumentKind, &[u8])],
        at: DateTime<Utc>,
    ) -> Result<&Receivable, LendingError> {
        if self.receivables.contains_key(id) {
            return Err(LendingError::DuplicateReceivable(id.to_string()));
        }
        if amount.minor <= 0 {
            return Err(LendingError::AmountNotPositive);
        }
        let hashes: Vec<String> = documents.iter().map(|(_, c)| content_hash(c)).collect();
        for (i, h) in hashes.iter().enumerate() {
            if registry.contains(h) || hashes[..i].contains(h) {
                return Err(LendingError::DuplicateDocument(h.clone()));
            }
        }
        for ((kind, _), h) in documents.iter().zip(&hashes) {
            registry.register_hash(*kind, h, supplier_id, id, at)?;
        }
        let r = Receivable {
            id: id.to_string(),
            core_enterprise_id: core_enterprise_id.to_string(),
            supplier_id: supplier_id.to_string(),
            amount,
            issue_date,
            due_date,
            document_hashes: hashes,
            confirmed_at: None,
            financing: None,
        };
        Ok(self.receivables.entry(id.to_string()).or_insert(r))
    }

    /// The core enterprise confirms the payable; recorded in the registry.
    pub fn confirm(
        &mut self,
        registry: &mut DocumentRegistry,
        id: &str,
        core_enterprise_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), LendingError> {
        let r = self.receivables.get_mut(id).ok_or_else(|| LendingError::UnknownReceivable(id.to_string()))?;
        if r.core_enterprise_id != core_enterprise_id {
            return Err(LendingError::ReceivableWrongParty(id.to_string(), core_enterprise_id.to_string()));
        }
        if r.confirmed_at.is_some() {
            return Ok(());
        }
        let statement =
            format!("confirm:{id}:{core_enterprise_id}:{}:{}:{}", r.amount.minor, r.amount.currency, r.due_date);
        registry.register(DocumentKind::Confirmation, statement.as_bytes(), core_enterprise_id, id, at)?;
        r.confirmed_at = Some(at);
        Ok(())
    }

    /// Finances a confirmed receivable once: `requested` at most `amount × advance_ratio`
    /// (rounded down), before the due date. Recorded in the registry.
    #[allow(clippy::too_many_arguments)]
    pub fn finance(
        &mut self,
        registry: &mut DocumentRegistry,
        id: &str,
        supplier_id: &str,
        requested: Amount,
        advance_ratio: Decimal,
        on: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<Financing, LendingError> {
        let r = self.receivables.get_mut(id).ok_or_else(|| LendingError::UnknownReceivable(id.to_string()))?;
        if r.supplier_id != supplier_id {
            return Err(LendingError::ReceivableWrongParty(id.to_string(), supplier_id.to_string()));
        }
        if r.confirmed_at.is_none() {
            return Err(LendingError::ReceivableNotConfirmed(id.to_string()));
        }
        if r.financing.is_some() {
            return Err(LendingError::ReceivableAlreadyFinanced(id.to_string()));
        }
        if on >= r.due_date {
            return Err(LendingError::ReceivableMatured(id.to_string(), r.due_date));
        }
        if requested.currency != r.amount.currency {
            return Err(LendingError::CurrencyMismatch { expected: r.amount.currency, got: requested.currency });
        }
        if requested.minor <= 0 {
            return Err(LendingError::AmountNotPositive);
        }
        let max = (Decimal::from(r.amount.minor) * advance_ratio).floor().to_i64().unwrap_or(0);
        if requested.minor > max {
            return Err(LendingError::AmountAboveLimit { amount: requested.minor, limit: max });
        }
        let statement = format!("finance:{id}:{supplier_id}:{}:{}", requested.minor, requested.currency);
        let entry = registry.register(DocumentKind::Financing, statement.as_bytes(), "bank", id, at)?;
        let f = Financing {
            receivable_id: id.to_string(),
            supplier_id: supplier_id.to_string(),
            advance: requested,
            advance_ratio,
            financed_at: at,
            registry_seq: entry.seq,
        };
        r.financing = Some(f.clone());
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use money::Currency;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + s, 0).unwrap()
    }
    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn same_hash_twice_is_rejected() {
        let mut reg = DocumentRegistry::new();
        reg.register(DocumentKind::Invoice, b"invoice 42", "S1", "R1", t(0)).unwrap();
        let err = reg.register(DocumentKind::Invoice, b"invoice 42", "S2", "R2", t(1)).unwrap_err();
        assert!(matches!(err, LendingError::DuplicateDocument(_)));
        assert_eq!(reg.entries().len(), 1);
        assert!(reg.contains(&content_hash(b"invoice 42")));
        assert_eq!(reg.find(&content_hash(b"invoice 42")).unwrap().party_id, "S1");
        assert!(reg.register_hash(DocumentKind::Other, "XYZ", "S", "R", t(2)).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let mut reg = DocumentRegistry::new();
        for i in 0..5 {
            reg.register(DocumentKind::Order, format!("order {i}").as_bytes(), "S1", "R1", t(i)).unwrap();
        }
        reg.verify().unwrap();
        let stored = serde_json::to_string(reg.entries()).unwrap();
        let entries: Vec<RegistryEntry> = serde_json::from_str(&stored).unwrap();
        assert!(DocumentRegistry::from_entries(entries.clone()).is_ok());

        // Swap a document's hash for another one.
        let mut edited = entries.clone();
        edited[2].content_hash = content_hash(b"forged order");
        match DocumentRegistry::from_entries(edited) {
            Err(LendingError::RegistryTampered { seq, .. }) => assert_eq!(seq, 3),
            other => panic!("expected tamper error, got {other:?}"),
        }
        // Re-hashing the edited entry breaks the link to the next one.
        let mut edited = entries.clone();
        edited[2].reference = "R9".into();
        edited[2].entry_hash = entry_hash(&edited[2]);
        match DocumentRegistry::from_entries(edited) {
            Err(LendingError::RegistryTampered { seq, .. }) => assert_eq!(seq, 4),
            other => panic!("expected tamper error, got {other:?}"),
        }
        // Deleting an entry is detected too.
        let mut edited = entries;
        edited.remove(1);
        assert!(DocumentRegistry::from_entries(edited).is_err());
        // In-memory tampering.
        reg.entries[0].party_id = "S666".into();
        assert!(matches!(reg.verify(), Err(LendingError::RegistryTampered { seq: 1, .. })));
    }

    fn book_with_receivable() -> (DocumentRegistry, ReceivableBook) {
        let mut reg = DocumentRegistry::new();
        let mut book = ReceivableBook::new();
        book.register(
            &mut reg,
            "R1",
            "CORE1",
            "S1",
            Amount::new(1_000_000_00, Currency::CNY),
            day(1, 1),
            day(6, 30),
            &[
                (DocumentKind::Order, b"PO-1"),
                (DocumentKind::Invoice, b"INV-1"),
                (DocumentKind::DeliveryReceipt, b"DR-1"),
            ],
            t(0),
        )
        .unwrap();
        (reg, book)
    }

    #[test]
    fn receivable_lifecycle() {
        let (mut reg, mut book) = book_with_receivable();
        let ratio: Decimal = "0.8".parse().unwrap();
        let cny = |m| Amount::new(m, Currency::CNY);
        // Not confirmed yet.
        let err = book.finance(&mut reg, "R1", "S1", cny(800_000_00), ratio, day(2, 1), t(10)).unwrap_err();
        assert!(matches!(err, LendingError::ReceivableNotConfirmed(_)));
        // Only the core enterprise can confirm.
        assert!(matches!(book.confirm(&mut reg, "R1", "CORE2", t(11)), Err(LendingError::ReceivableWrongParty(..))));
        book.confirm(&mut reg, "R1", "CORE1", t(12)).unwrap();
        // Above the advance ratio.
        let err = book.finance(&mut reg, "R1", "S1", cny(800_000_01), ratio, day(2, 1), t(13)).unwrap_err();
        assert!(matches!(err, LendingError::AmountAboveLimit { limit: 800_000_00, .. }));
        // Wrong supplier.
        assert!(book.finance(&mut reg, "R1", "S2", cny(1_00), ratio, day(2, 1), t(13)).is_err());
        let f = book.finance(&mut reg, "R1", "S1", cny(800_000_00), ratio, day(2, 1), t(14)).unwrap();
        assert_eq!(f.advance.minor, 800_000_00);
        // Financed twice.
        let err = book.finance(&mut reg, "R1", "S1", cny(1_00), ratio, day(2, 2), t(15)).unwrap_err();
        assert!(matches!(err, LendingError::ReceivableAlreadyFinanced(_)));
        reg.verify().unwrap();
        assert_eq!(reg.entries().len(), 5); // 3 documents + confirmation + financing
    }

    #[test]
    fn the_same_invoice_cannot_back_two_receivables() {
        let (mut reg, mut book) = book_with_receivable();
        let err = book
            .register(
                &mut reg,
                "R2",
                "CORE1",
                "S2",
                Amount::new(5_00, Currency::CNY),
                day(1, 1),
                day(6, 30),
                &[(DocumentKind::Order, b"PO-2"), (DocumentKind::Invoice, b"INV-1")],
                t(1),
            )
            .unwrap_err();
        assert!(matches!(err, LendingError::DuplicateDocument(_)));
        // Nothing of the failed call was registered.
        assert!(!reg.contains(&content_hash(b"PO-2")));
        assert!(book.get("R2").is_err());
        assert!(matches!(
            book.register(&mut reg, "R1", "C", "S", Amount::new(1, Currency::CNY), day(1, 1), day(2, 1), &[], t(2)),
            Err(LendingError::DuplicateReceivable(_))
        ));
    }

    #[test]
    fn matured_receivable_cannot_be_financed() {
        let (mut reg, mut book) = book_with_receivable();
        book.confirm(&mut reg, "R1", "CORE1", t(1)).unwrap();
        let err = book
            .finance(&mut reg, "R1", "S1", Amount::new(1_00, Currency::CNY), Decimal::ONE, day(6, 30), t(2))
            .unwrap_err();
        assert!(matches!(err, LendingError::ReceivableMatured(..)));
    }
}
