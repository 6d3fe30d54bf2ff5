//! SQL persistence of the customer platform, one implementation for SQLite and PostgreSQL:
//! queries use `$N` placeholders, which both accept, and `storage::{read, write, transaction}`
//! pick the executor.

use std::collections::{BTreeMap, HashMap};

use customer::segments::RfmInput;
use customer::{Channel, CustomerFacts, CustomerId, CustomerKind, Profile, SegmentDefinition};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row};

use storage::Database;

use crate::PlatformError;

/// Multi-row upsert of (key, chunk, bits) rows on an open transaction (a macro because the
/// executor type differs per backend).
macro_rules! insert_membership_rows {
    ($tx:expr, $rows:expr) => {{
        let mut qb = QueryBuilder::new("INSERT INTO customer_memberships (key, chunk, bits) ");
        qb.push_values($rows, |mut b, (key, chunk, bits): &(String, i64, Vec<u8>)| {
            b.push_bind(key.clone()).push_bind(*chunk).push_bind(bits.clone());
        });
        qb.push(" ON CONFLICT (key, chunk) DO UPDATE SET bits = excluded.bits");
        qb.build().execute($tx).await?;
    }};
}

/// Ordinals per membership chunk (one roaring bitmap per key and chunk).
pub const CHUNK_BITS: u32 = 16;

/// Rows per multi-row statement: well under SQLite's 32,766 bound-parameter limit.
const ROWS_PER_STATEMENT: usize = 500;

/// A customer master record to register.
#[derive(Debug, Clone)]
pub struct NewCustomerRecord {
    pub id: CustomerId,
    pub kind: CustomerKind,
    pub name: String,
    /// `resident_id` or `uscc`; the number is already validated.
    pub id_document_type: &'static str,
    pub id_number: String,
    pub phone: Option<String>,
    pub kyc_status: customer::KycStatus,
}

/// A stored customer master record (personal data opened: the table holds it sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub id_document_type: String,
    pub id_number: String,
    pub phone: Option<String>,
    pub kyc_status: customer::KycStatus,
    pub created_at: i64,
    /// See [`crate::lifecycle`].
    pub status: customer::CustomerStatus,
    /// When the customer was closed (microseconds since the Unix epoch).
    pub closed_at: Option<i64>,
    /// For `merged` records: the surviving customer.
    pub merged_into: Option<String>,
}

/// A `customers` row as stored: name, ID number and phone sealed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct StoredRecord {
    id: String,
    kind: String,
    name: String,
    id_document_type: String,
    id_number: String,
    phone: Option<String>,
    #[sqlx(try_from = "String")]
    kyc_status: customer::KycStatus,
    created_at: i64,
    #[sqlx(try_from = "String")]
    status: customer::CustomerStatus,
    closed_at: Option<i64>,
    merged_into: Option<String>,
}

pub(crate) const RECORD_COLUMNS: &str =
    "id, kind, name, id_document_type, id_number, phone, kyc_status, created_at, status, closed_at, merged_into";

/// The sealed columns of `customers` (field names for associated data are `customers.<column>`).
pub(crate) const F_NAME: &str = "customers.name";
pub(crate) const F_ID_NUMBER: &str = "customers.id_number";
pub(crate) const F_PHONE: &str = "customers.phone";
/// The sealed columns of `customer_history`.
pub(crate) const F_FROM: &str = "customer_history.from_value";
pub(crate) const F_TO: &str = "customer_history.to_value";
pub(crate) const F_NOTE: &str = "customer_history.note";

/// The tables of this platform with sealed columns, for `rotate-key`.
pub const ENCRYPTED_TABLES: &[access::EncryptedTable] = &[
    access::EncryptedTable {
        table: "customers",
        key: &[("id", access::KeyType::Text)],
        columns: &["name", "id_number", "phone"],
    },
    access::EncryptedTable {
        table: "customer_history",
        key: &[("id", access::KeyType::Int)],
        columns: &["from_value", "to_value", "note"],
    },
];

/// Blind index domains.
pub(crate) const DOMAIN_DOCUMENT: &str = "id_document";
pub(crate) const DOMAIN_PHONE: &str = "phone";

/// A sealed record's personal data, as the columns store it.
pub(crate) struct SealedPii {
    pub name: String,
    pub id_number: String,
    pub phone: Option<String>,
    /// Blind index of "<document type>:<number>" (the uniqueness key).
    pub document_index: Vec<u8>,
    pub phone_index: Option<Vec<u8>>,
    pub key_version: i64,
}

/// Seals a record's personal data and computes its blind indexes.
pub(crate) fn seal_pii(
    vault: &access::Vault,
    name: &str,
    doc_type: &str,
    id_number: &str,
    phone: Option<&str>,
) -> SealedPii {
    SealedPii {
        name: vault.seal(F_NAME, name),
        id_number: vault.seal(F_ID_NUMBER, id_number),
        phone: vault.seal_opt(F_PHONE, phone),
        document_index: document_index(vault, doc_type, id_number),
        phone_index: phone.map(|p| vault.blind_index(DOMAIN_PHONE, p)),
        key_version: i64::from(vault.current_version()),
    }
}

/// Opens a stored row; a value that fails its integrity check is
/// [`PlatformError::Integrity`] naming the record.
pub(crate) fn open_record(vault: &access::Vault, row: &StoredRecord) -> Result<CustomerRecord, access::VaultError> {
    Ok(CustomerRecord {
        id: row.id.clone(),
        kind: row.kind.clone(),
        name: vault.open(F_NAME, &row.name)?,
        id_document_type: row.id_document_type.clone(),
        id_number: vault.open(F_ID_NUMBER, &row.id_number)?,
        phone: vault.open_opt(F_PHONE, row.phone.as_deref())?,
        kyc_status: row.kyc_status,
        created_at: row.created_at,
        status: row.status,
        closed_at: row.closed_at,
        merged_into: row.merged_into.clone(),
    })
}

/// The error of a record of `table` that could not be opened.
pub(crate) fn sealed_error<'a>(
    table: &'static str,
    record: &'a str,
) -> impl Fn(access::VaultError) -> PlatformError + 'a {
    move |e| {
        if e.is_integrity() {
            PlatformError::Integrity { table, record: record.to_string(), reason: e.to_string() }
        } else {
            PlatformError::Vault(e)
        }
    }
}

/// Facts as stored, with the customer's bitmap ordinal.
#[derive(Debug, Clone)]
pub struct StoredFacts {
    pub ordinal: u32,
    pub facts: CustomerFacts,
}

/// A churn score with the factors that pushed it up or down most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnScore {
    /// Probability of churning in the next 90 days.
    pub probability: f64,
    pub factors: Vec<ChurnFactor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnFactor {
    pub feature: String,
    pub value: f64,
    /// Contribution to the log-odds (positive raises the risk).
    pub contribution: f64,
}

/// What a recomputation produced for one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputedResult {
    pub customer_id: String,
    pub ordinal: u32,
    pub tags: Vec<String>,
    pub tier: String,
    pub rfm: (u8, u8, u8),
    pub rfm_segment: String,
    pub lifecycle: String,
    pub aum_minor: i64,
    pub churn: Option<ChurnScore>,
}

impl ComputedResult {
    /// Membership keys of this result: `tag:<id>`, `tier:<tier>`, `rfm:<segment>`,
    /// `lifecycle:<stage>` (segments are added by the recomputation).
    pub fn membership_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.tags.iter().map(|t| format!("tag:{t}")).collect();
        keys.push(format!("tier:{}", self.tier));
        keys.push(format!("rfm:{}", self.rfm_segment));
        keys.push(format!("lifecycle:{}", self.lifecycle));
        keys
    }
}

/// Membership bitmaps keyed by (key, chunk).
pub type Memberships = HashMap<(String, u32), RoaringBitmap>;

/// The fitted recommender of the version it was parsed from.
type RecommenderCache = std::sync::Arc<tokio::sync::RwLock<Option<(u32, std::sync::Arc<customer::Recommender>)>>>;

/// The SQL store of the customer platform.
#[derive(Clone)]
pub struct CustomerStore {
    db: Database,
    /// Serialises the writers of the shared membership bitmaps: recomputation, closing and
    /// merging customers (each rewrites bits of many customers' chunks).
    pub(crate) bitmaps: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The newest fitted recommender and its version, parsed once per version rather than per request.
    recommender: RecommenderCache,
    /// The domains asked for a customer's open products before closing it.
    pub(crate) products: Vec<std::sync::Arc<dyn crate::OpenProducts>>,
    /// The time source of every stored timestamp (the system clock unless set).
    clock: std::sync::Arc<dyn clock::Clock>,
    /// Seals names, ID numbers and phones; computes their blind indexes.
    pub(crate) vault: access::Vault,
}

/// The keyed blind index of the identity document ("<type>:<number>"): the uniqueness key of
/// "one person, one customer" (column `id_number_hash`).
pub fn document_index(vault: &access::Vault, doc_type: &str, number: &str) -> Vec<u8> {
    vault.blind_index(DOMAIN_DOCUMENT, &format!("{doc_type}:{number}"))
}

impl CustomerStore {
    /// A store on `db` that seals personal data with `vault`.
    pub fn new(db: Database, vault: access::Vault) -> Self {
        CustomerStore {
            db,
            bitmaps: Default::default(),
            recommender: Default::default(),
            products: Vec::new(),
            clock: std::sync::Arc::new(clock::SystemClock),
            vault,
        }
    }

    pub fn vault(&self) -> &access::Vault {
        &self.vault
    }

    /// Opens stored rows (reloading the data keys once if a row names a version another
    /// process just added).
    pub(crate) async fn open_records(&self, rows: Vec<StoredRecord>) -> Result<Vec<CustomerRecord>, PlatformError> {
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(
                self.vault
                    .with_fresh_keys(|v| open_record(v, row))
                    .await
                    .map_err(sealed_error("customers", &row.id))?,
            );
        }
        Ok(out)
    }

    /// The domains whose open products keep a customer from being closed (the ledger and
    /// lending in the running system). Without any, closing is refused.
    pub fn with_open_products(mut self, products: Vec<std::sync::Arc<dyn crate::OpenProducts>>) -> Self {
        self.products = products;
        self
    }

    /// Uses `clock` for every stored timestamp (tests move a manual clock).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, in the storage format (microseconds since the Unix epoch).
    pub(crate) fn now_micros(&self) -> i64 {
        self.clock.now_micros()
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    // ---- master records -------------------------------------------------------------------

    /// Registers a customer; if the identity document is already registered, returns
    /// `Err(PlatformError::CustomerExists(existing id))` and writes nothing. When the existing
    /// record was merged into another, the surviving customer is named.
    pub async fn register(&self, c: &NewCustomerRecord) -> Result<CustomerRecord, PlatformError> {
        let sealed = seal_pii(&self.vault, &c.name, c.id_document_type, &c.id_number, c.phone.as_deref());
        let now = self.now_micros();
        let id = c.id.to_string();
        storage::audit::set_resource(&id);
        // Onboarding starts here: the record and its `customer_registered` event commit together.
        let resource = storage::audit::current().map_or_else(|| process::event::SYSTEM.to_string(), |c| c.actor);
        let event = process::ProcessEvent::new(process::Activity::CustomerRegistered, &id, now, resource)
            .with(process::Attributes::default().product(c.kind.as_str()).outcome(c.kyc_status.as_str()));
        let inserted = storage::transaction!(&self.db, |tx| {
            async {
            let n = sqlx::query(
            "INSERT INTO customers (id, kind, name, id_document_type, id_number, id_number_hash, phone, kyc_status, created_at, \
             phone_index, key_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id_number_hash) DO NOTHING",
        )
        .bind(&id)
        .bind(c.kind.as_str())
        .bind(&sealed.name)
        .bind(c.id_document_type)
        .bind(&sealed.id_number)
        .bind(&sealed.document_index)
        .bind(&sealed.phone)
        .bind(c.kyc_status.as_str())
        .bind(now)
        .bind(&sealed.phone_index)
        .bind(sealed.key_version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
            if n == 1 {
                process_platform::event_statement(&event).query().execute(&mut *tx).await?;
            }
            Ok::<bool, PlatformError>(n == 1)
        }
        .await
        })?;
        if !inserted {
            let existing: String = storage::read!(&self.db, |conn| sqlx::query_scalar(
                "SELECT COALESCE(merged_into, id) FROM customers WHERE id_number_hash = $1"
            )
            .bind(&sealed.document_index)
            .fetch_one(conn)
            .await)?;
            return Err(PlatformError::CustomerExists(existing));
        }
        Ok(CustomerRecord {
            id,
            kind: c.kind.as_str().to_string(),
            name: c.name.clone(),
            id_document_type: c.id_document_type.to_string(),
            id_number: c.id_number.clone(),
            phone: c.phone.clone(),
            kyc_status: c.kyc_status,
            created_at: now,
            status: customer::CustomerStatus::Active,
            closed_at: None,
            merged_into: None,
        })
    }

    /// Customers with this (normalised) phone number, found by its blind index; any status.
    pub async fn customers_by_phone(&self, phone: &str) -> Result<Vec<CustomerRecord>, PlatformError> {
        let index = self.vault.blind_index(DOMAIN_PHONE, phone);
        let sql = format!("SELECT {RECORD_COLUMNS} FROM customers WHERE phone_index = $1 ORDER BY id");
        let rows: Vec<StoredRecord> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(&index).fetch_all(conn).await)?;
        self.open_records(rows).await
    }

    /// The customer holding an identity document, found by its blind index.
    pub async fn customer_by_document(
        &self,
        doc_type: &str,
        number: &str,
    ) -> Result<Option<CustomerRecord>, PlatformError> {
        let index = document_index(&self.vault, doc_type, number);
        let sql = format!("SELECT {RECORD_COLUMNS} FROM customers WHERE id_number_hash = $1");
        let rows: Vec<StoredRecord> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(&index).fetch_all(conn).await)?;
        Ok(self.open_records(rows).await?.into_iter().next())
    }

    pub async fn customer(&self, id: &str) -> Result<Option<CustomerRecord>, PlatformError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM customers WHERE id = $1");
        let row: Option<StoredRecord> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?;
        Ok(self.open_records(row.into_iter().collect()).await?.into_iter().next())
    }

    /// Master records with ids after `after`, in id order; `status` keeps only records in that
    /// status (`active`, `closed`, `merged`), `None` keeps all.
    pub async fn customers_after(
        &self,
        after: &str,
        limit: i64,
        status: Option<&str>,
    ) -> Result<Vec<CustomerRecord>, PlatformError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM customers WHERE id > $1 AND ($3 = '' OR status = $3) ORDER BY id LIMIT $2"
        );
        let rows: Vec<StoredRecord> = storage::read!(&self.db, |conn| sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .bind(status.unwrap_or(""))
            .fetch_all(conn)
            .await)?;
        self.open_records(rows).await
    }

    /// Master records by id (any order; unknown ids are skipped).
    pub async fn customers_by_ids(&self, ids: &[String]) -> Result<Vec<CustomerRecord>, PlatformError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<StoredRecord> = storage::read!(&self.db, |conn| {
                let mut qb = QueryBuilder::new(format!("SELECT {RECORD_COLUMNS} FROM customers WHERE id IN ("));
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.clone());
                }
                qb.push(")");
                qb.build_query_as().fetch_all(conn).await
            })?;
            out.extend(self.open_records(rows).await?);
        }
        Ok(out)
    }

    pub async fn set_kyc(&self, id: &str, status: &str) -> Result<bool, PlatformError> {
        let n = storage::write!(&self.db, |conn| sqlx::query("UPDATE customers SET kyc_status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    // ---- channel identities ---------------------------------------------------------------

    /// Links a channel identity to a customer. Linking the same identity to the same customer
    /// again is a no-op; linking it to another customer is `IdentityTaken`.
    pub async fn link_identity(
        &self,
        customer_id: &str,
        channel: Channel,
        external_id: &str,
    ) -> Result<(), PlatformError> {
        storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO customer_identities (channel, external_id, customer_id, linked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (channel, external_id) DO NOTHING"
        )
        .bind(channel.as_str())
        .bind(external_id)
        .bind(customer_id)
        .bind(self.now_micros())
        .execute(conn)
        .await
        .map(|_| ()))?;
        let owner = self.find_by_identity(channel, external_id).await?;
        match owner {
            Some(owner) if owner != customer_id => Err(PlatformError::IdentityTaken { owner }),
            _ => Ok(()),
        }
    }

    pub async fn find_by_identity(&self, channel: Channel, external_id: &str) -> Result<Option<String>, PlatformError> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_scalar(
            "SELECT customer_id FROM customer_identities WHERE channel = $1 AND external_id = $2"
        )
        .bind(channel.as_str())
        .bind(external_id)
        .fetch_optional(conn)
        .await)?)
    }

    /// (channel, external id, linked at) of a customer.
    pub async fn identities(&self, customer_id: &str) -> Result<Vec<(String, String, i64)>, PlatformError> {
        Ok(storage::read!(&self.db, |conn| {
            sqlx::query_as(
            "SELECT channel, external_id, linked_at FROM customer_identities WHERE customer_id = $1 ORDER BY linked_at, channel"
        )
        .bind(customer_id)
        .fetch_all(conn)
        .await
        })?)
    }

    // ---- facts ----------------------------------------------------------------------------

    /// Stores facts (JSON), giving new customers the next ordinals. A customer whose facts
    /// differ from the stored ones is marked dirty for the next incremental recomputation.
    /// Returns how many customers are new or changed.
    pub async fn upsert_facts(&self, all: &[CustomerFacts]) -> Result<usize, PlatformError> {
        let now = self.now_micros();
        let mut changed = 0;
        for chunk in all.chunks(ROWS_PER_STATEMENT) {
            let ids: Vec<String> = chunk.iter().map(|f| f.customer_id.to_string()).collect();
            let texts = chunk.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
            changed += storage::transaction!(&self.db, |tx| async {
                let mut qb = QueryBuilder::new(
                    "SELECT customer_id, facts, ordinal FROM customer_profiles WHERE customer_id IN (",
                );
                let mut sep = qb.separated(", ");
                for id in &ids {
                    sep.push_bind(id.clone());
                }
                qb.push(")");
                let existing: HashMap<String, (String, i64)> = qb
                    .build()
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|r| (r.get::<String, _>(0), (r.get::<String, _>(1), r.get::<i64, _>(2))))
                    .collect();
                let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(ordinal), -1) + 1 FROM customer_profiles")
                    .fetch_one(&mut *tx)
                    .await?;
                let mut rows = Vec::new();
                let mut fresh = 0i64;
                for ((id, text), facts) in ids.iter().zip(&texts).zip(chunk) {
                    let ordinal = match existing.get(id) {
                        Some((old, _)) if old == text => continue,
                        Some((_, ordinal)) => *ordinal,
                        None => {
                            fresh += 1;
                            next + fresh - 1
                        }
                    };
                    let rfm = RfmInput::from_profile(&Profile::compute(facts));
                    rows.push((id, text, ordinal, rfm));
                }
                if !rows.is_empty() {
                    let mut qb = QueryBuilder::new(
                        "INSERT INTO customer_profiles (customer_id, ordinal, facts, facts_updated_at, \
                         rfm_recency_days, rfm_frequency, rfm_monetary) ",
                    );
                    qb.push_values(&rows, |mut b, (id, text, ordinal, rfm)| {
                        b.push_bind((*id).clone())
                            .push_bind(*ordinal)
                            .push_bind((*text).clone())
                            .push_bind(now)
                            .push_bind(rfm.recency_days.map(i64::from))
                            .push_bind(i64::from(rfm.frequency))
                            .push_bind(rfm.monetary_minor);
                    });
                    qb.push(
                        " ON CONFLICT (customer_id) DO UPDATE SET facts = excluded.facts, \
                         facts_updated_at = excluded.facts_updated_at, \
                         rfm_recency_days = excluded.rfm_recency_days, rfm_frequency = excluded.rfm_frequency, \
                         rfm_monetary = excluded.rfm_monetary",
                    );
                    qb.build().execute(&mut *tx).await?;
                    let mut qb = QueryBuilder::new("INSERT INTO customer_dirty (ordinal, marked_at) ");
                    qb.push_values(&rows, |mut b, (_, _, ordinal, _)| {
                        b.push_bind(*ordinal).push_bind(now);
                    });
                    qb.push(" ON CONFLICT (ordinal) DO UPDATE SET marked_at = excluded.marked_at");
                    qb.build().execute(&mut *tx).await?;
                }
                Ok::<usize, PlatformError>(rows.len())
            }
            .await)?;
        }
        Ok(changed)
    }

    /// Facts of one customer.
    pub async fn facts(&self, customer_id: &str) -> Result<Option<StoredFacts>, PlatformError> {
        let row: Option<(i64, String)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT ordinal, facts FROM customer_profiles WHERE customer_id = $1"
        )
        .bind(customer_id)
        .fetch_optional(conn)
        .await)?;
        row.map(|(ordinal, text)| Ok(StoredFacts { ordinal: ordinal as u32, facts: serde_json::from_str(&text)? }))
            .transpose()
    }

    /// A page of facts in ordinal order after `after` (use -1 to start); `dirty_only` for an
    /// incremental run.
    pub async fn facts_page(
        &self,
        after: i64,
        limit: i64,
        dirty_only: bool,
    ) -> Result<Vec<StoredFacts>, PlatformError> {
        let sql = if dirty_only {
            "SELECT p.ordinal, p.facts FROM customer_dirty d JOIN customer_profiles p ON p.ordinal = d.ordinal \
             WHERE d.ordinal > $1 AND p.retired_at IS NULL ORDER BY d.ordinal LIMIT $2"
        } else {
            "SELECT ordinal, facts FROM customer_profiles WHERE ordinal > $1 AND retired_at IS NULL \
             ORDER BY ordinal LIMIT $2"
        };
        let rows: Vec<(i64, String)> =
            storage::read!(&self.db, |conn| sqlx::query_as(sql).bind(after).bind(limit).fetch_all(conn).await)?;
        rows.into_iter()
            .map(|(ordinal, text)| Ok(StoredFacts { ordinal: ordinal as u32, facts: serde_json::from_str(&text)? }))
            .collect()
    }

    /// The RFM inputs of every active customer (for fitting the population's quintile cuts;
    /// closed and merged customers' facts are retired).
    pub async fn rfm_inputs(&self) -> Result<Vec<RfmInput>, PlatformError> {
        let rows: Vec<(Option<i64>, i64, i64)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT rfm_recency_days, rfm_frequency, rfm_monetary FROM customer_profiles WHERE retired_at IS NULL"
        )
        .fetch_all(conn)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(r, f, m)| RfmInput {
                // The cuts do not depend on who is who.
                customer_id: CustomerId::from_u128(0),
                recency_days: r.map(|d| d as u32),
                frequency: f as u32,
                monetary_minor: m,
            })
            .collect())
    }

    /// Holdings of every `stride`-th customer (by ordinal), for fitting the recommender.
    pub async fn holdings_sample(&self, stride: i64) -> Result<Vec<Vec<String>>, PlatformError> {
        let rows: Vec<(String,)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT facts FROM customer_profiles WHERE ordinal % $1 = 0 AND retired_at IS NULL"
        )
        .bind(stride.max(1))
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(|(text,)| Ok(serde_json::from_str::<CustomerFacts>(&text)?.holdings)).collect()
    }

    /// Clears the dirty flag of every customer whose facts did not change since `run_started`
    /// (after a full run computed everyone).
    pub async fn clear_dirty(&self, run_started: i64) -> Result<(), PlatformError> {
        storage::write!(&self.db, |conn| sqlx::query("DELETE FROM customer_dirty WHERE marked_at <= $1")
            .bind(run_started)
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn count_profiles(&self, dirty_only: bool) -> Result<i64, PlatformError> {
        let sql = if dirty_only {
            "SELECT COUNT(*) FROM customer_dirty d JOIN customer_profiles p ON p.ordinal = d.ordinal \
             WHERE p.retired_at IS NULL"
        } else {
            "SELECT COUNT(*) FROM customer_profiles WHERE retired_at IS NULL"
        };
        Ok(storage::read!(&self.db, |conn| sqlx::query_scalar(sql).fetch_one(conn).await)?)
    }

    // ---- results --------------------------------------------------------------------------

    /// Stores results in one transaction. With `clear_dirty_since = Some(run_started)` it also
    /// clears the dirty flag of these customers unless their facts changed after the run
    /// started (a concurrent fact update stays dirty for the next run).
    pub async fn write_results(
        &self,
        results: &[ComputedResult],
        clear_dirty_since: Option<i64>,
    ) -> Result<(), PlatformError> {
        let now = self.now_micros();
        let rows = results
            .iter()
            .map(|r| {
                Ok((
                    r,
                    serde_json::to_string(&r.tags)?,
                    r.churn.as_ref().map(|c| serde_json::to_string(&c.factors)).transpose()?,
                ))
            })
            .collect::<Result<Vec<_>, PlatformError>>()?;
        storage::transaction!(&self.db, |tx| {
            async {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO customer_results (customer_id, ordinal, tags, tier, rfm_r, rfm_f, rfm_m, rfm_segment, \
                     lifecycle, aum_minor, churn_score, churn_factors, computed_at) ",
                );
                qb.push_values(chunk, |mut b, (r, tags, factors)| {
                    b.push_bind(r.customer_id.clone())
                        .push_bind(i64::from(r.ordinal))
                        .push_bind(tags.clone())
                        .push_bind(r.tier.clone())
                        .push_bind(i64::from(r.rfm.0))
                        .push_bind(i64::from(r.rfm.1))
                        .push_bind(i64::from(r.rfm.2))
                        .push_bind(r.rfm_segment.clone())
                        .push_bind(r.lifecycle.clone())
                        .push_bind(r.aum_minor)
                        .push_bind(r.churn.as_ref().map(|c| c.probability))
                        .push_bind(factors.clone())
                        .push_bind(now);
                });
                qb.push(
                    " ON CONFLICT (ordinal) DO UPDATE SET customer_id = excluded.customer_id, tags = excluded.tags, tier = excluded.tier, \
                     rfm_r = excluded.rfm_r, rfm_f = excluded.rfm_f, rfm_m = excluded.rfm_m, \
                     rfm_segment = excluded.rfm_segment, lifecycle = excluded.lifecycle, aum_minor = excluded.aum_minor, \
                     churn_score = excluded.churn_score, churn_factors = excluded.churn_factors, \
                     computed_at = excluded.computed_at",
                );
                qb.build().execute(&mut *tx).await?;
                if let Some(run_started) = clear_dirty_since {
                    let mut qb = QueryBuilder::new("DELETE FROM customer_dirty WHERE marked_at <= ");
                    qb.push_bind(run_started).push(" AND ordinal IN (");
                    let mut sep = qb.separated(", ");
                    for (r, _, _) in chunk {
                        sep.push_bind(i64::from(r.ordinal));
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await?;
                }
            }
            Ok::<(), PlatformError>(())
        }
        .await
        })
    }

    pub async fn result(&self, customer_id: &str) -> Result<Option<ComputedResult>, PlatformError> {
        Ok(self
            .results_where(
                "ordinal = (SELECT ordinal FROM customer_profiles WHERE customer_id = $1)",
                customer_id.to_string(),
            )
            .await?
            .into_iter()
            .next())
    }

    async fn results_where(&self, condition: &str, arg: String) -> Result<Vec<ComputedResult>, PlatformError> {
        let sql = format!("SELECT {RESULT_COLUMNS} FROM customer_results WHERE {condition}");
        let rows: Vec<ResultRow> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(&arg).fetch_all(conn).await)?;
        rows.into_iter().map(result_from_row).collect()
    }

    /// Results of the given ordinals, in ordinal order.
    pub async fn results_by_ordinals(&self, ordinals: &[u32]) -> Result<Vec<ComputedResult>, PlatformError> {
        let mut out = Vec::with_capacity(ordinals.len());
        for chunk in ordinals.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<ResultRow> = storage::read!(&self.db, |conn| {
                let mut qb =
                    QueryBuilder::new(format!("SELECT {RESULT_COLUMNS} FROM customer_results WHERE ordinal IN ("));
                let mut sep = qb.separated(", ");
                for o in chunk {
                    sep.push_bind(i64::from(*o));
                }
                qb.push(") ORDER BY ordinal");
                qb.build_query_as().fetch_all(conn).await
            })?;
            for row in rows {
                out.push(result_from_row(row)?);
            }
        }
        Ok(out)
    }

    /// Customers with the highest churn scores.
    pub async fn top_churn(&self, limit: i64) -> Result<Vec<ComputedResult>, PlatformError> {
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM customer_results WHERE churn_score IS NOT NULL \
             ORDER BY churn_score DESC, ordinal LIMIT $1"
        );
        let rows: Vec<ResultRow> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(limit).fetch_all(conn).await)?;
        rows.into_iter().map(result_from_row).collect()
    }

    // ---- memberships ----------------------------------------------------------------------

    /// Replaces every membership bitmap (after a full recomputation).
    pub async fn replace_memberships(&self, all: &Memberships) -> Result<(), PlatformError> {
        let rows = serialize_memberships(all)?;
        storage::transaction!(&self.db, |tx| async {
            sqlx::query("DELETE FROM customer_memberships").execute(&mut *tx).await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                insert_membership_rows!(&mut *tx, chunk);
            }
            Ok::<(), PlatformError>(())
        }
        .await)
    }

    /// All bitmaps of the given chunks (for an incremental update).
    pub async fn memberships_of_chunks(&self, chunks: &[u32]) -> Result<Memberships, PlatformError> {
        let mut out = Memberships::new();
        for chunk in chunks {
            let rows: Vec<(String, Vec<u8>)> = storage::read!(&self.db, |conn| sqlx::query_as(
                "SELECT key, bits FROM customer_memberships WHERE chunk = $1"
            )
            .bind(i64::from(*chunk))
            .fetch_all(conn)
            .await)?;
            for (key, bits) in rows {
                out.insert((key, *chunk), deserialize_bitmap(&bits)?);
            }
        }
        Ok(out)
    }

    /// Writes the given bitmaps (empty ones are deleted).
    pub async fn put_memberships(&self, changed: &Memberships) -> Result<(), PlatformError> {
        let rows = serialize_memberships(changed)?;
        storage::transaction!(&self.db, |tx| async {
            for ((key, chunk), _) in changed.iter().filter(|(_, b)| b.is_empty()) {
                sqlx::query("DELETE FROM customer_memberships WHERE key = $1 AND chunk = $2")
                    .bind(key)
                    .bind(i64::from(*chunk))
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                insert_membership_rows!(&mut *tx, chunk);
            }
            Ok::<(), PlatformError>(())
        }
        .await)
    }

    /// Ordinals of the members of `key` (united over chunks).
    pub async fn members(&self, key: &str) -> Result<RoaringBitmap, PlatformError> {
        let rows: Vec<(i64, Vec<u8>)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT chunk, bits FROM customer_memberships WHERE key = $1"
        )
        .bind(key)
        .fetch_all(conn)
        .await)?;
        let mut out = RoaringBitmap::new();
        for (_, bits) in rows {
            out |= deserialize_bitmap(&bits)?;
        }
        Ok(out)
    }

    /// Member count per key, for every key starting with `prefix`.
    pub async fn membership_counts(&self, prefix: &str) -> Result<BTreeMap<String, u64>, PlatformError> {
        let rows: Vec<(String, Vec<u8>)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT key, bits FROM customer_memberships WHERE key LIKE $1"
        )
        .bind(format!("{prefix}%"))
        .fetch_all(conn)
        .await)?;
        let mut out = BTreeMap::new();
        for (key, bits) in rows {
            *out.entry(key).or_insert(0) += deserialize_bitmap(&bits)?.len();
        }
        Ok(out)
    }

    // ---- rule versions, segments, models, runs --------------------------------------------

    pub async fn computed_rules(&self) -> Result<BTreeMap<String, u32>, PlatformError> {
        let rows: Vec<(String, i64)> =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT rule_id, version FROM customer_computed_rules")
                .fetch_all(conn)
                .await)?;
        Ok(rows.into_iter().map(|(id, v)| (id, v as u32)).collect())
    }

    pub async fn set_computed_rules(&self, rules: &BTreeMap<String, u32>) -> Result<(), PlatformError> {
        let rows: Vec<(&String, &u32)> = rules.iter().collect();
        storage::transaction!(&self.db, |tx| async {
            sqlx::query("DELETE FROM customer_computed_rules").execute(&mut *tx).await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new("INSERT INTO customer_computed_rules (rule_id, version) ");
                qb.push_values(chunk, |mut b, (id, v)| {
                    b.push_bind((*id).clone()).push_bind(i64::from(**v));
                });
                qb.build().execute(&mut *tx).await?;
            }
            Ok::<(), PlatformError>(())
        }
        .await)
    }

    /// Stores a new version of a segment definition; returns the version number.
    pub async fn put_segment(&self, def: &SegmentDefinition) -> Result<u32, PlatformError> {
        storage::transaction!(&self.db, |tx| async {
            let version: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM customer_segments WHERE id = $1")
                    .bind(&def.id)
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(
                "INSERT INTO customer_segments (id, version, name, rule, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&def.id)
            .bind(version)
            .bind(&def.name)
            .bind(&def.rule)
            .bind(self.now_micros())
            .execute(&mut *tx)
            .await?;
            Ok::<u32, PlatformError>(version as u32)
        }
        .await)
    }

    /// The current version of every segment: (definition, version).
    pub async fn segments(&self) -> Result<Vec<(SegmentDefinition, u32)>, PlatformError> {
        let rows: Vec<(String, i64, String, String)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT id, version, name, rule FROM customer_segments s WHERE version = \
             (SELECT MAX(version) FROM customer_segments t WHERE t.id = s.id) ORDER BY id"
        )
        .fetch_all(conn)
        .await)?;
        Ok(rows.into_iter().map(|(id, v, name, rule)| (SegmentDefinition { id, name, rule }, v as u32)).collect())
    }

    /// Stores a new version of a model or statistic of `kind`; returns the version.
    pub async fn put_model(&self, kind: &str, body: &str) -> Result<u32, PlatformError> {
        storage::transaction!(&self.db, |tx| async {
            let version: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM customer_models WHERE kind = $1")
                    .bind(kind)
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query("INSERT INTO customer_models (kind, version, body, created_at) VALUES ($1, $2, $3, $4)")
                .bind(kind)
                .bind(version)
                .bind(body)
                .bind(self.now_micros())
                .execute(&mut *tx)
                .await?;
            Ok::<u32, PlatformError>(version as u32)
        }
        .await)
    }

    /// The newest version number of a model kind, without reading its body.
    pub async fn latest_model_version(&self, kind: &str) -> Result<Option<u32>, PlatformError> {
        let v: Option<i64> = storage::read!(&self.db, |conn| sqlx::query_scalar(
            "SELECT MAX(version) FROM customer_models WHERE kind = $1"
        )
        .bind(kind)
        .fetch_one(conn)
        .await)?;
        Ok(v.map(|v| v as u32))
    }

    /// The newest fitted recommender (`None` before the first full recomputation): a version
    /// check per call, a parse only when a recomputation stored a new version.
    pub async fn recommender(&self) -> Result<Option<std::sync::Arc<customer::Recommender>>, PlatformError> {
        let Some(latest) = self.latest_model_version("recommender").await? else { return Ok(None) };
        if let Some((version, model)) = self.recommender.read().await.as_ref() {
            if *version == latest {
                return Ok(Some(model.clone()));
            }
        }
        let Some((version, body)) = self.latest_model("recommender").await? else { return Ok(None) };
        let model = std::sync::Arc::new(serde_json::from_str::<customer::Recommender>(&body)?);
        *self.recommender.write().await = Some((version, model.clone()));
        Ok(Some(model))
    }

    pub async fn latest_model(&self, kind: &str) -> Result<Option<(u32, String)>, PlatformError> {
        let row: Option<(i64, String)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT version, body FROM customer_models WHERE kind = $1 ORDER BY version DESC LIMIT 1"
        )
        .bind(kind)
        .fetch_optional(conn)
        .await)?;
        Ok(row.map(|(v, body)| (v as u32, body)))
    }

    pub async fn record_run(
        &self,
        mode: &str,
        customers: usize,
        rules: usize,
        millis: u128,
    ) -> Result<(), PlatformError> {
        storage::write!(&self.db, |conn| {
            sqlx::query(
            "INSERT INTO customer_recompute_runs (mode, customers, rules, millis, finished_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(mode)
        .bind(customers as i64)
        .bind(rules as i64)
        .bind(millis as i64)
        .bind(self.now_micros())
        .execute(conn)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }
}

const RESULT_COLUMNS: &str = "customer_id, ordinal, tags, tier, rfm_r, rfm_f, rfm_m, rfm_segment, lifecycle, \
                              aum_minor, churn_score, churn_factors";

type ResultRow = (String, i64, String, String, i64, i64, i64, String, String, i64, Option<f64>, Option<String>);

fn result_from_row(row: ResultRow) -> Result<ComputedResult, PlatformError> {
    let (customer_id, ordinal, tags, tier, r, f, m, rfm_segment, lifecycle, aum_minor, churn_score, factors) = row;
    let churn = match (churn_score, factors) {
        (Some(probability), Some(f)) => {
            let factors: Vec<ChurnFactor> = serde_json::from_str(&f)?;
            Some(ChurnScore { probability, factors })
        }
        _ => None,
    };
    Ok(ComputedResult {
        customer_id,
        ordinal: ordinal as u32,
        tags: serde_json::from_str(&tags)?,
        tier,
        rfm: (r as u8, f as u8, m as u8),
        rfm_segment,
        lifecycle,
        aum_minor,
        churn,
    })
}

pub(crate) fn serialize_memberships(all: &Memberships) -> Result<Vec<(String, i64, Vec<u8>)>, PlatformError> {
    let mut rows = Vec::with_capacity(all.len());
    for ((key, chunk), bitmap) in all {
        if bitmap.is_empty() {
            continue;
        }
        let mut bytes = Vec::with_capacity(bitmap.serialized_size());
        bitmap.serialize_into(&mut bytes).map_err(|e| PlatformError::Corrupt(e.to_string()))?;
        rows.push((key.clone(), i64::from(*chunk), bytes));
    }
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(rows)
}

pub(crate) fn deserialize_bitmap(bytes: &[u8]) -> Result<RoaringBitmap, PlatformError> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| PlatformError::Corrupt(format!("membership bitmap: {e}")))
}
