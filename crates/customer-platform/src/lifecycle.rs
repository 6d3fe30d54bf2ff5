//! Lifecycle of customer master records after registration: corrections, KYC status changes,
//! closure and merges of two records of one person. A bank does not delete customer records
//! (retention rules), so every operation changes a status and leaves a row in
//! `customer_history`; each runs in one database transaction, so a refused or failed request
//! writes nothing.
//!
//! * [`CustomerStore::update_customer`]: name, phone, and corrections of the identity document
//!   (refused with [`PlatformError::DocumentTaken`] when another record holds the document: that
//!   is a merge, not a correction).
//! * [`CustomerStore::change_kyc`]: transitions checked by [`KycStatus::can_change_to`].
//! * [`CustomerStore::close_customer`]: `status = 'closed'`, refused while the customer (or a
//!   record merged into it) still holds an open product, as the other domains report it through
//!   the [`crate::OpenProducts`] port (the ledger: an account that is not closed with a non-zero
//!   posted or pending balance; lending: an active or overdue loan). The platform never reads
//!   another domain's tables. The check runs just before the closing transaction, so a product
//!   opened in between is not seen; opening products for a closed customer is the channel's
//!   check.
//! * [`CustomerStore::merge_customers`]: the absorbed record gets `status = 'merged'` and
//!   `merged_into`; channel identities move to the survivor, the stronger KYC status and a
//!   missing phone are taken over, records merged earlier into the absorbed one now point at the
//!   survivor.
//!
//! Closed and merged records keep their facts, but the facts are *retired*
//! (`customer_profiles.retired_at`): the record leaves the membership bitmaps and computed
//! results at once and recomputation skips it. Ledger accounts and loans are not moved by a
//! merge (the ledger owns them); closing the survivor checks them too.

use customer::{CustomerStatus, KycStatus};
use serde::Serialize;
use sqlx::Row;

use crate::store::{
    deserialize_bitmap, document_index, open_record, seal_pii, sealed_error, CustomerRecord, StoredRecord, F_FROM,
    F_NOTE, F_TO, RECORD_COLUMNS,
};
use crate::{CustomerStore, PlatformError};

/// Who made a change, as recorded in the history.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The API key id.
    pub key_id: String,
    /// The key's role (`admin`, `operator`, ...).
    pub role: String,
}

/// Changes to a master record; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CustomerUpdate {
    pub name: Option<String>,
    /// Normalised (`+86...`).
    pub phone: Option<String>,
    /// A correction of the identity document: (document type, validated number).
    pub document: Option<(&'static str, String)>,
    /// Why (recorded on every history row of this update).
    pub note: Option<String>,
}

/// One entry of a customer's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HistoryEvent {
    pub id: i64,
    pub customer_id: String,
    /// `name_changed`, `phone_changed`, `id_number_corrected`, `kyc_changed`, `closed`,
    /// `merged_in` (on the survivor) or `merged_into` (on the absorbed record).
    pub event: String,
    pub from_value: Option<String>,
    pub to_value: Option<String>,
    /// The other record of a merge.
    pub other_customer_id: Option<String>,
    pub note: Option<String>,
    pub actor_key_id: String,
    pub actor_role: String,
    /// Microseconds since the Unix epoch.
    pub at: i64,
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    pub survivor: CustomerRecord,
    pub absorbed: CustomerRecord,
    /// Channel identities moved from the absorbed record to the survivor.
    pub identities_moved: u64,
}

/// A history row to insert.
struct Entry<'a> {
    customer_id: &'a str,
    event: &'a str,
    from: Option<String>,
    to: Option<String>,
    other: Option<String>,
    note: Option<String>,
}

impl<'a> Entry<'a> {
    fn new(customer_id: &'a str, event: &'a str) -> Self {
        Entry { customer_id, event, from: None, to: None, other: None, note: None }
    }
}

/// Inserts a history row on an open transaction; values and note are sealed (they may hold a
/// name, phone or ID number).
macro_rules! record {
    ($vault:expr, $tx:expr, $entry:expr, $actor:expr, $at:expr) => {{
        let e: Entry = $entry;
        let vault: &access::Vault = $vault;
        sqlx::query(
            "INSERT INTO customer_history (customer_id, event, from_value, to_value, other_customer_id, note, \
             actor_key_id, actor_role, at, key_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.customer_id)
        .bind(e.event)
        .bind(vault.seal_opt(F_FROM, e.from.as_deref()))
        .bind(vault.seal_opt(F_TO, e.to.as_deref()))
        .bind(e.other)
        .bind(vault.seal_opt(F_NOTE, e.note.as_deref()))
        .bind(&$actor.key_id)
        .bind(&$actor.role)
        .bind($at)
        .bind(i64::from(vault.current_version()))
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Reads (and opens) a master record on an open transaction.
macro_rules! load {
    ($store:expr, $tx:expr, $id:expr) => {{
        let sql = format!("SELECT {RECORD_COLUMNS} FROM customers WHERE id = $1");
        let row: Option<StoredRecord> = sqlx::query_as(&sql).bind($id).fetch_optional(&mut *$tx).await?;
        let row = row.ok_or_else(|| PlatformError::NotFound($id.to_string()))?;
        $store.vault.with_fresh_keys(|v| open_record(v, &row)).await.map_err(sealed_error("customers", $id))?
    }};
}

/// Marks a customer's facts dirty for the next incremental recomputation (no-op without facts).
macro_rules! mark_dirty {
    ($tx:expr, $id:expr, $at:expr) => {{
        sqlx::query(
            "INSERT INTO customer_dirty (ordinal, marked_at) SELECT ordinal, $2 FROM customer_profiles \
             WHERE customer_id = $1 AND retired_at IS NULL \
             ON CONFLICT (ordinal) DO UPDATE SET marked_at = excluded.marked_at",
        )
        .bind($id)
        .bind($at)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Retires a customer's facts: drops its dirty flag, computed result and membership bits.
macro_rules! retire {
    ($tx:expr, $id:expr, $at:expr) => {{
        let ordinal: Option<i64> = sqlx::query_scalar("SELECT ordinal FROM customer_profiles WHERE customer_id = $1")
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?;
        if let Some(ordinal) = ordinal {
            sqlx::query("UPDATE customer_profiles SET retired_at = $2 WHERE customer_id = $1")
                .bind($id)
                .bind($at)
                .execute(&mut *$tx)
                .await?;
            sqlx::query("DELETE FROM customer_dirty WHERE ordinal = $1").bind(ordinal).execute(&mut *$tx).await?;
            sqlx::query("DELETE FROM customer_results WHERE ordinal = $1").bind(ordinal).execute(&mut *$tx).await?;
            let chunk = ordinal >> crate::store::CHUNK_BITS;
            let rows = sqlx::query("SELECT key, bits FROM customer_memberships WHERE chunk = $1")
                .bind(chunk)
                .fetch_all(&mut *$tx)
                .await?;
            for row in rows {
                let key: String = row.get(0);
                let mut bits = deserialize_bitmap(&row.get::<Vec<u8>, _>(1))?;
                if !bits.remove(ordinal as u32) {
                    continue;
                }
                if bits.is_empty() {
                    sqlx::query("DELETE FROM customer_memberships WHERE key = $1 AND chunk = $2")
                        .bind(&key)
                        .bind(chunk)
                        .execute(&mut *$tx)
                        .await?;
                } else {
                    let mut bytes = Vec::with_capacity(bits.serialized_size());
                    bits.serialize_into(&mut bytes).map_err(|e| PlatformError::Corrupt(e.to_string()))?;
                    sqlx::query("UPDATE customer_memberships SET bits = $3 WHERE key = $1 AND chunk = $2")
                        .bind(&key)
                        .bind(chunk)
                        .bind(bytes)
                        .execute(&mut *$tx)
                        .await?;
                }
            }
        }
    }};
}

/// Refuses changes to records that are not active.
fn require_active(c: &CustomerRecord) -> Result<(), PlatformError> {
    if c.status == CustomerStatus::Active {
        Ok(())
    } else {
        Err(PlatformError::Inactive { id: c.id.clone(), status: c.status, merged_into: c.merged_into.clone() })
    }
}

/// Fails with `Concurrent` unless exactly one row was updated (the guard in the WHERE clause
/// saw the values read earlier in the transaction).
fn one_row(n: u64, id: &str) -> Result<(), PlatformError> {
    if n == 1 {
        Ok(())
    } else {
        Err(PlatformError::Concurrent(id.to_string()))
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

impl CustomerStore {
    /// Applies `update` to an active customer in one transaction and records one history row
    /// per changed field; unchanged values are skipped. Marks the customer dirty for
    /// recomputation when anything changed. A document held by another record is
    /// `DocumentTaken(holder)` and nothing is written.
    pub async fn update_customer(
        &self,
        id: &str,
        update: &CustomerUpdate,
        actor: &Actor,
    ) -> Result<CustomerRecord, PlatformError> {
        let now = self.now_micros();
        let hash = update.document.as_ref().map(|(t, n)| document_index(&self.vault, t, n));
        let result = storage::transaction!(self.db(), |tx| {
            async {
            let current = load!(self, tx, id);
            require_active(&current)?;
            if let Some(hash) = &hash {
                let holder: Option<String> =
                    sqlx::query_scalar("SELECT COALESCE(merged_into, id) FROM customers WHERE id_number_hash = $1 AND id <> $2")
                        .bind(hash)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(holder) = holder {
                    return Err(PlatformError::DocumentTaken(holder));
                }
            }
            let mut next = current.clone();
            let mut entries = Vec::new();
            if let Some(name) = update.name.as_ref().filter(|n| **n != current.name) {
                entries.push(("name_changed", Some(current.name.clone()), Some(name.clone())));
                next.name = name.clone();
            }
            if let Some(phone) = update.phone.as_ref().filter(|p| Some(*p) != current.phone.as_ref()) {
                entries.push(("phone_changed", current.phone.clone(), Some(phone.clone())));
                next.phone = Some(phone.clone());
            }
            if let Some((doc_type, number)) =
                update.document.as_ref().filter(|(t, n)| *t != current.id_document_type || *n != current.id_number)
            {
                entries.push(("id_number_corrected", Some(current.id_number.clone()), Some(number.clone())));
                next.id_document_type = doc_type.to_string();
                next.id_number = number.clone();
            }
            if entries.is_empty() {
                return Ok(next);
            }
            let sealed =
                seal_pii(&self.vault, &next.name, &next.id_document_type, &next.id_number, next.phone.as_deref());
            let updated = sqlx::query(
                "UPDATE customers SET name = $2, phone = $3, id_document_type = $4, id_number = $5, id_number_hash = $6, \
                 phone_index = $7, key_version = $8 WHERE id = $1 AND status = 'active'",
            )
            .bind(id)
            .bind(&sealed.name)
            .bind(&sealed.phone)
            .bind(&next.id_document_type)
            .bind(&sealed.id_number)
            .bind(&sealed.document_index)
            .bind(&sealed.phone_index)
            .bind(sealed.key_version)
            .execute(&mut *tx)
            .await;
            match updated {
                Ok(r) => one_row(r.rows_affected(), id)?,
                Err(e) if is_unique_violation(&e) => return Err(PlatformError::DocumentTaken(String::new())),
                Err(e) => return Err(e.into()),
            }
            for (event, from, to) in entries {
                record!(&self.vault, tx, Entry { from, to, note: update.note.clone(), ..Entry::new(id, event) }, actor, now);
            }
            mark_dirty!(tx, id, now);
            Ok::<CustomerRecord, PlatformError>(next)
        }
        .await
        });
        match result {
            // Lost a race with another writer on PostgreSQL: name the holder now.
            Err(PlatformError::DocumentTaken(holder)) if holder.is_empty() => {
                let hash = hash.unwrap_or_default();
                let holder: Option<String> = storage::read!(self.db(), |conn| sqlx::query_scalar(
                    "SELECT COALESCE(merged_into, id) FROM customers WHERE id_number_hash = $1"
                )
                .bind(&hash)
                .fetch_optional(conn)
                .await)?;
                Err(PlatformError::DocumentTaken(holder.unwrap_or_else(|| "another customer".into())))
            }
            other => other,
        }
    }

    /// Changes the KYC status of an active customer if [`KycStatus::can_change_to`] allows it,
    /// recording who, when, from, to and the note. Setting the current status again is a no-op
    /// (no history row). Returns the record after the change.
    pub async fn change_kyc(
        &self,
        id: &str,
        to: KycStatus,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<CustomerRecord, PlatformError> {
        // Closing removes the customer's bits from the shared membership bitmaps.
        let _bitmaps = self.bitmaps.lock().await;
        let now = self.now_micros();
        storage::transaction!(self.db(), |tx| async {
            let mut current = load!(self, tx, id);
            require_active(&current)?;
            let from = current.kyc_status;
            if from == to {
                return Ok(current);
            }
            if !from.can_change_to(to) {
                return Err(PlatformError::InvalidKycTransition {
                    from: from.as_str().to_string(),
                    to: to.as_str().to_string(),
                });
            }
            let n = sqlx::query(
                "UPDATE customers SET kyc_status = $2 WHERE id = $1 AND kyc_status = $3 AND status = 'active'",
            )
            .bind(id)
            .bind(to.as_str())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            one_row(n, id)?;
            let entry = Entry {
                from: Some(from.as_str().to_string()),
                to: Some(to.as_str().to_string()),
                note: note.map(str::to_string),
                ..Entry::new(id, "kyc_changed")
            };
            record!(&self.vault, tx, entry, actor, now);
            let event = process::ProcessEvent::new(process::Activity::KycChanged, id, now, &actor.key_id)
                .with(process::Attributes::default().product(current.kind.as_str()).outcome(to.as_str()));
            process_platform::event_statement(&event).query().execute(&mut *tx).await?;
            current.kyc_status = to;
            Ok::<CustomerRecord, PlatformError>(current)
        }
        .await)
    }

    /// Closes a customer: refused with `OpenProducts` while the customer or a record merged
    /// into it owns a ledger account that is not closed and has a non-zero posted or pending
    /// balance, or a loan that is `active` or `overdue`. Closing a closed customer returns it
    /// unchanged. Retires the customer's facts.
    pub async fn close_customer(
        &self,
        id: &str,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<CustomerRecord, PlatformError> {
        if self.products.is_empty() {
            return Err(PlatformError::ProductCheckUnavailable);
        }
        // The customer and the records merged into it own products under their own ids.
        let owners: Vec<String> = storage::read!(self.db(), |conn| sqlx::query_scalar(
            "SELECT id FROM customers WHERE id = $1 OR merged_into = $1 ORDER BY id"
        )
        .bind(id)
        .fetch_all(conn)
        .await)?;
        let mut open = Vec::new();
        for domain in &self.products {
            open.extend(domain.open_products(&owners).await?);
        }
        let now = self.now_micros();
        storage::transaction!(self.db(), |tx| async {
            let mut current = load!(self, tx, id);
            if current.status == CustomerStatus::Closed {
                return Ok(current);
            }
            require_active(&current)?;
            let accounts = open.iter().filter(|p| p.kind == crate::ProductKind::Account).count() as i64;
            let loans: Vec<String> =
                open.iter().filter(|p| p.kind == crate::ProductKind::Loan).map(|p| p.id.clone()).collect();
            if !open.is_empty() {
                return Err(PlatformError::OpenProducts { id: id.to_string(), accounts, loans });
            }
            let n = sqlx::query(
                "UPDATE customers SET status = 'closed', closed_at = $2 WHERE id = $1 AND status = 'active'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            one_row(n, id)?;
            let entry = Entry {
                from: Some("active".into()),
                to: Some("closed".into()),
                note: note.map(str::to_string),
                ..Entry::new(id, "closed")
            };
            record!(&self.vault, tx, entry, actor, now);
            let event = process::ProcessEvent::new(process::Activity::CustomerClosed, id, now, &actor.key_id)
                .with(process::Attributes::default().product(current.kind.as_str()).outcome("closed"));
            process_platform::event_statement(&event).query().execute(&mut *tx).await?;
            retire!(tx, id, now);
            current.status = CustomerStatus::Closed;
            current.closed_at = Some(now);
            Ok::<CustomerRecord, PlatformError>(current)
        }
        .await)
    }

    /// Merges `absorbed` into `survivor` (two records of one person), in one transaction.
    ///
    /// Allowed when both are active, of the same kind, and either hold the same identity
    /// document (normalised) or — registration refuses duplicate documents, so this is the usual
    /// case of a record registered with a wrong document — the caller gives a `reason` and the
    /// names are equal (after trimming). Otherwise `MergeConflict` with the reason.
    pub async fn merge_customers(
        &self,
        survivor: &str,
        absorbed: &str,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<MergeOutcome, PlatformError> {
        if survivor == absorbed {
            return Err(PlatformError::MergeConflict("a customer cannot be merged into itself".into()));
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        // A merge removes the absorbed record's bits from the shared membership bitmaps.
        let _bitmaps = self.bitmaps.lock().await;
        let now = self.now_micros();
        storage::transaction!(self.db(), |tx| {
            async {
            let mut keep = load!(self, tx, survivor);
            let mut gone = load!(self, tx, absorbed);
            require_active(&keep)?;
            require_active(&gone)?;
            if keep.kind != gone.kind {
                return Err(PlatformError::MergeConflict(format!(
                    "{survivor} is {} but {absorbed} is {}",
                    keep.kind, gone.kind
                )));
            }
            let same_document = keep.id_document_type == gone.id_document_type && keep.id_number == gone.id_number;
            if !same_document {
                if keep.name.trim() != gone.name.trim() {
                    return Err(PlatformError::MergeConflict(
                        "the records hold different identity documents and different names".into(),
                    ));
                }
                if reason.is_none() {
                    return Err(PlatformError::MergeConflict(
                        "the records hold different identity documents: give a reason asserting they are the same person"
                            .into(),
                    ));
                }
            }
            let mut kyc_entry = None;
            let (k, g) = (keep.kyc_status, gone.kyc_status);
            if g.merge_rank() > k.merge_rank() {
                kyc_entry = Some((k, g));
                keep.kyc_status = g;
            }
            let phone_filled = keep.phone.is_none() && gone.phone.is_some();
            if phone_filled {
                keep.phone = gone.phone.clone();
            }
            let n = sqlx::query(
                "UPDATE customers SET status = 'merged', merged_into = $2 WHERE id = $1 AND status = 'active'",
            )
            .bind(absorbed)
            .bind(survivor)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            one_row(n, absorbed)?;
            // The survivor's sealed columns are written together, under one key version.
            let sealed =
                seal_pii(&self.vault, &keep.name, &keep.id_document_type, &keep.id_number, keep.phone.as_deref());
            let n = sqlx::query(
                "UPDATE customers SET kyc_status = $2, phone = $3, phone_index = $4, name = $5, id_number = $6, \
                 key_version = $7 WHERE id = $1 AND status = 'active'",
            )
            .bind(survivor)
            .bind(keep.kyc_status.as_str())
            .bind(&sealed.phone)
            .bind(&sealed.phone_index)
            .bind(&sealed.name)
            .bind(&sealed.id_number)
            .bind(sealed.key_version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            one_row(n, survivor)?;
            // Records merged earlier into the absorbed one now resolve to the survivor directly.
            sqlx::query("UPDATE customers SET merged_into = $2 WHERE merged_into = $1 AND status = 'merged'")
                .bind(absorbed)
                .bind(survivor)
                .execute(&mut *tx)
                .await?;
            let identities_moved = sqlx::query("UPDATE customer_identities SET customer_id = $2 WHERE customer_id = $1")
                .bind(absorbed)
                .bind(survivor)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let note = Some(match reason {
                Some(r) => r.to_string(),
                None => "same identity document".to_string(),
            });
            let entry = Entry {
                other: Some(absorbed.to_string()),
                note: note.clone(),
                to: Some(format!("{identities_moved} channel identities moved")),
                ..Entry::new(survivor, "merged_in")
            };
            record!(&self.vault, tx, entry, actor, now);
            let entry = Entry {
                from: Some("active".into()),
                to: Some("merged".into()),
                other: Some(survivor.to_string()),
                note,
                ..Entry::new(absorbed, "merged_into")
            };
            record!(&self.vault, tx, entry, actor, now);
            let merge_note = Some(format!("taken over from {absorbed} by merge"));
            if let Some((from, to)) = kyc_entry {
                let entry = Entry {
                    from: Some(from.as_str().into()),
                    to: Some(to.as_str().into()),
                    note: merge_note.clone(),
                    ..Entry::new(survivor, "kyc_changed")
                };
                record!(&self.vault, tx, entry, actor, now);
            }
            if phone_filled {
                let entry =
                    Entry { to: keep.phone.clone(), note: merge_note, ..Entry::new(survivor, "phone_changed") };
                record!(&self.vault, tx, entry, actor, now);
            }
            let event = process::ProcessEvent::new(process::Activity::CustomerMerged, absorbed, now, &actor.key_id)
                .with(process::Attributes::default().product(gone.kind.as_str()).outcome("merged"));
            process_platform::event_statement(&event).query().execute(&mut *tx).await?;
            retire!(tx, absorbed, now);
            mark_dirty!(tx, survivor, now);
            gone.status = CustomerStatus::Merged;
            gone.merged_into = Some(survivor.to_string());
            Ok::<MergeOutcome, PlatformError>(MergeOutcome { survivor: keep, absorbed: gone, identities_moved })
        }
        .await
        })
    }

    /// The history of a customer, oldest first (merge events appear on both records).
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, PlatformError> {
        let rows: Vec<HistoryEvent> = storage::read!(self.db(), |conn| {
            sqlx::query_as(
            "SELECT id, customer_id, event, from_value, to_value, other_customer_id, note, actor_key_id, actor_role, at \
             FROM customer_history WHERE customer_id = $1 ORDER BY id"
        )
        .bind(id)
        .fetch_all(conn)
        .await
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let record = format!("{} (customer {id})", row.id);
            let opened = self
                .vault
                .with_fresh_keys(|v| {
                    Ok(HistoryEvent {
                        from_value: v.open_opt(F_FROM, row.from_value.as_deref())?,
                        to_value: v.open_opt(F_TO, row.to_value.as_deref())?,
                        note: v.open_opt(F_NOTE, row.note.as_deref())?,
                        ..row.clone()
                    })
                })
                .await
                .map_err(sealed_error("customer_history", &record))?;
            out.push(opened);
        }
        Ok(out)
    }
}
