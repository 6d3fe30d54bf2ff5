//! SQL persistence of lending, one implementation for SQLite and PostgreSQL: queries use `$N`
//! placeholders, which both accept, and `storage::{read, write, transaction}` pick the executor.
//! Domain objects are stored whole as JSON; the columns next to them exist for querying.

use chrono::NaiveDate;
use ledger::AccountId;
use lending::{AccountRole, Bucket, Contract, Decision, Loan, LoanId, Offer, Outcome, Receivable, RegistryEntry};
use serde::{Deserialize, Serialize};
use storage::Database;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{date_text, loan_account, role_name, AccountScheme, Parties, LOAN_ROLES};
use crate::{LendingPlatformError, Result};

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn bucket_name(b: Bucket) -> &'static str {
    match b {
        Bucket::Current => "current",
        Bucket::M1 => "m1",
        Bucket::M2 => "m2",
        Bucket::M3Plus => "m3_plus",
    }
}

/// A stored loan with what the ledger mapping needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoanRecord {
    pub loan: Loan,
    pub applicant_id: String,
    pub customer_account: AccountId,
    pub repayment_account: AccountId,
    /// Bumped by every save; the operation key of the ledger transfers.
    pub version: i64,
    /// How the loan's own account ids are derived.
    pub account_scheme: AccountScheme,
}

impl LoanRecord {
    /// Where the loan's postings go, with repayments from `payer` (default: its repayment account).
    pub fn parties(&self, payer: Option<AccountId>) -> Parties {
        Parties {
            customer: self.customer_account,
            payer: payer.unwrap_or(self.repayment_account),
            scheme: self.account_scheme,
        }
    }

    pub fn account(&self, role: AccountRole) -> AccountId {
        loan_account(self.loan.id, role, self.account_scheme)
    }
}

/// A row of the loan list.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct LoanSummary {
    /// The loan id (UUID).
    pub id: String,
    pub applicant_id: String,
    pub product_code: String,
    /// `active`, `overdue`, `paid_off` or `written_off`.
    #[schema(example = "active")]
    pub status: String,
    /// `current`, `m1`, `m2` or `m3_plus`.
    #[schema(example = "current")]
    pub bucket: String,
    /// Days past due.
    pub dpd: i64,
    /// The last business day closed for this loan (YYYY-MM-DD); null before its first end of day.
    #[schema(example = "2026-11-20")]
    pub last_eod: Option<String>,
}

/// A decision waiting for manual review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewItem {
    /// The application (decision) id: approve or decline it under
    /// `/v1/lending/review-queue/{decision_id}/...`.
    pub decision_id: String,
    pub applicant_id: String,
    pub product_code: String,
    /// The decision's reasons.
    #[schema(value_type = Vec<lending::Reason>)]
    pub reasons: serde_json::Value,
    /// `open` (only open items are listed).
    #[schema(example = "open")]
    pub status: String,
    /// When the application entered the queue, in microseconds since the Unix epoch.
    #[schema(example = 1763632800000000i64)]
    pub created_at: i64,
}

type LoanRow = (String, String, String, i64, String, Option<String>, i64);

fn parse_account(s: &str) -> Result<AccountId> {
    Uuid::parse_str(s).map(AccountId).map_err(|e| LendingPlatformError::Corrupt(format!("account id {s}: {e}")))
}

fn record_from_row(row: LoanRow) -> Result<LoanRecord> {
    let (state, applicant_id, customer, version, repayment, schedule, scheme) = row;
    let mut loan: Loan = serde_json::from_str(&state)?;
    if let Some(schedule) = schedule {
        loan.schedule = serde_json::from_str(&schedule)?;
    }
    Ok(LoanRecord {
        loan,
        applicant_id,
        customer_account: parse_account(&customer)?,
        repayment_account: parse_account(&repayment)?,
        version,
        account_scheme: AccountScheme::from_code(scheme)
            .ok_or_else(|| LendingPlatformError::Corrupt(format!("account scheme {scheme}")))?,
    })
}

const LOAN_COLUMNS: &str =
    "l.state, l.applicant_id, l.customer_account, l.version, l.repayment_account, s.schedule, l.account_scheme";

/// The schedule lives in its own table (see migration 0009).
const LOAN_SCHEDULE_JOIN: &str = "LEFT JOIN lending_loan_schedules s ON s.loan_id = l.id";

/// A loan's stored state without its schedule, as JSON. The schedule is stored apart
/// ([`save_loans`] writes it only when it changed) and only changes when it is recalculated (prepayment, draw), so saving a
/// night's accrual serializes and writes the small part only.
fn state_json(loan: &Loan) -> Result<String> {
    let slim = Loan { schedule: Vec::new(), ..loan.clone() };
    Ok(serde_json::to_string(&slim)?)
}

/// Loans saved per multi-row `UPDATE` (8 bound values each, well under both databases' limits).
const SAVE_CHUNK: usize = 500;

/// Sealed columns: the decision document (applicant name, birth date, bureau, social
/// security, tax and ERP data) and the analyst's review note.
pub(crate) const F_DECISION: &str = "lending_decisions.decision";
pub(crate) const F_REVIEW_NOTE: &str = "lending_review_queue.note";

/// The tables of this platform with sealed columns, for `rotate-key`.
pub const ENCRYPTED_TABLES: &[access::EncryptedTable] = &[
    access::EncryptedTable {
        table: "lending_decisions",
        key: &[("id", access::KeyType::Text)],
        columns: &["decision"],
    },
    access::EncryptedTable {
        table: "lending_review_queue",
        key: &[("decision_id", access::KeyType::Text)],
        columns: &["note"],
    },
];

/// The SQL store of lending.
#[derive(Clone)]
pub struct LendingStore {
    db: Database,
    vault: access::Vault,
}

impl LendingStore {
    pub fn new(db: Database, vault: access::Vault) -> Self {
        LendingStore { db, vault }
    }

    fn sealed_error(
        &self,
        table: &'static str,
        record: &str,
    ) -> impl Fn(access::VaultError) -> LendingPlatformError + '_ {
        let record = record.to_string();
        move |e| {
            if e.is_integrity() {
                LendingPlatformError::Integrity { table, record: record.clone(), reason: e.to_string() }
            } else {
                LendingPlatformError::Vault(e)
            }
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    // ---- decisions, review queue, offers, contracts -----------------------------------------

    /// Stores a decision that took `decision_micros` to make; a review outcome also enters the
    /// review queue; `events` (the application's process events) and `extra` statements (a
    /// channel's record of the application) commit with them (one transaction).
    pub async fn insert_decision(
        &self,
        d: &Decision,
        decision_micros: i64,
        events: &[process::ProcessEvent],
        extra: &[Statement],
    ) -> Result<()> {
        let json = self.vault.seal(F_DECISION, &serde_json::to_string(d)?);
        let version = i64::from(self.vault.current_version());
        let reasons = serde_json::to_string(&d.reasons)?;
        let id = d.id.0.to_string();
        let grade = d.grade.map(|g| format!("{g:?}"));
        let now = now_micros();
        storage::transaction!(&self.db, |tx| {
            async {
            sqlx::query(
                "INSERT INTO lending_decisions (id, applicant_id, product_code, outcome, grade, model_version, decision, created_at, \
                 key_version, decision_micros) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id)
            .bind(&d.applicant_id)
            .bind(&d.product_code)
            .bind(d.outcome.as_str())
            .bind(&grade)
            .bind(&d.model_version)
            .bind(&json)
            .bind(now)
            .bind(version)
            .bind(decision_micros)
            .execute(&mut *tx)
            .await?;
            for event in events {
                process_platform::event_statement(event).query().execute(&mut *tx).await?;
            }
            if d.outcome == Outcome::Review {
                sqlx::query(
                    "INSERT INTO lending_review_queue (decision_id, applicant_id, product_code, reasons, status, created_at, \
                     key_version) VALUES ($1, $2, $3, $4, 'open', $5, $6) ON CONFLICT (decision_id) DO NOTHING",
                )
                .bind(&id)
                .bind(&d.applicant_id)
                .bind(&d.product_code)
                .bind(&reasons)
                .bind(now)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
            for statement in extra {
                statement.query().execute(&mut *tx).await?;
            }
            Ok::<(), LendingPlatformError>(())
        }
        .await
        })
    }

    pub async fn decision(&self, id: &str) -> Result<Option<Decision>> {
        let row: Option<(String,)> =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT decision FROM lending_decisions WHERE id = $1")
                .bind(id)
                .fetch_optional(conn)
                .await)?;
        let Some((sealed,)) = row else { return Ok(None) };
        let json = self
            .vault
            .with_fresh_keys(|v| v.open(F_DECISION, &sealed))
            .await
            .map_err(self.sealed_error("lending_decisions", id))?;
        Ok(Some(serde_json::from_str(&json)?))
    }

    pub async fn review_queue(&self, limit: i64) -> Result<Vec<ReviewItem>> {
        let rows: Vec<(String, String, String, String, String, i64)> = storage::read!(&self.db, |conn| {
            sqlx::query_as(
            "SELECT decision_id, applicant_id, product_code, reasons, status, created_at FROM lending_review_queue \
             WHERE status = 'open' ORDER BY created_at, decision_id LIMIT $1"
        )
        .bind(limit)
        .fetch_all(conn)
        .await
        })?;
        rows.into_iter()
            .map(|(decision_id, applicant_id, product_code, reasons, status, created_at)| {
                Ok(ReviewItem {
                    decision_id,
                    applicant_id,
                    product_code,
                    reasons: serde_json::from_str(&reasons)?,
                    status,
                    created_at,
                })
            })
            .collect()
    }

    /// Status of a review item (`open`, `approved`, `declined`), `None` when the decision never
    /// went to review.
    pub async fn review_status(&self, decision_id: &str) -> Result<Option<String>> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_scalar(
            "SELECT status FROM lending_review_queue WHERE decision_id = $1"
        )
        .bind(decision_id)
        .fetch_optional(conn)
        .await)?)
    }

    /// Records an analyst's decision (`d.manual_review` must be set): the review item leaves
    /// `open` with `status`, analyst, time, note and reason code, and the decision row gets the
    /// new outcome, grade and record, in one transaction. Returns `false`, with nothing written,
    /// when the item was no longer open (decided concurrently).
    /// `event` (the `reviewed` process event) commits with it.
    pub async fn decide_review(&self, d: &Decision, status: &str, event: &process::ProcessEvent) -> Result<bool> {
        let review =
            d.manual_review.clone().ok_or_else(|| LendingPlatformError::Corrupt("review without analyst".into()))?;
        let json = self.vault.seal(F_DECISION, &serde_json::to_string(d)?);
        let note = self.vault.seal(F_REVIEW_NOTE, &review.note);
        let version = i64::from(self.vault.current_version());
        let id = d.id.0.to_string();
        let grade = d.grade.map(|g| format!("{g:?}"));
        storage::transaction!(&self.db, |tx| {
            async {
                let n = sqlx::query(
                "UPDATE lending_review_queue SET status = $1, decided_by = $2, decided_role = $3, decided_at = $4, \
                 note = $5, reason_code = $6, key_version = $8 WHERE decision_id = $7 AND status = 'open'",
            )
            .bind(status)
            .bind(&review.analyst)
            .bind(&review.analyst_role)
            .bind(review.decided_at.timestamp_micros())
            .bind(&note)
            .bind(&review.reason_code)
            .bind(&id)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
                if n == 0 {
                    return Ok::<bool, LendingPlatformError>(false);
                }
                let n = sqlx::query(
                    "UPDATE lending_decisions SET outcome = $1, grade = $2, decision = $3, key_version = $5 \
                 WHERE id = $4 AND outcome = 'review'",
                )
                .bind(d.outcome.as_str())
                .bind(&grade)
                .bind(&json)
                .bind(&id)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    // Roll the queue update back: the stored decision is not the one in review.
                    return Err(LendingPlatformError::Corrupt(format!("decision {id} is not in review")));
                }
                process_platform::event_statement(event).query().execute(&mut *tx).await?;
                Ok(true)
            }
            .await
        })
    }

    /// Stores an offer (idempotent: one offer per decision) and returns the stored one; the
    /// first store also commits `event` (`offer_made`).
    pub async fn insert_offer(&self, o: &Offer, event: &process::ProcessEvent) -> Result<Offer> {
        let json = serde_json::to_string(o)?;
        storage::transaction!(&self.db, |tx| {
            async {
            let n = sqlx::query(
                "INSERT INTO lending_offers (id, decision_id, offer, expires_at, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (decision_id) DO NOTHING",
            )
            .bind(o.id.0.to_string())
            .bind(o.decision_id.0.to_string())
            .bind(&json)
            .bind(o.expires_at.timestamp_micros())
            .bind(now_micros())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                process_platform::event_statement(event).query().execute(&mut *tx).await?;
            }
            Ok::<(), LendingPlatformError>(())
        }
        .await
        })?;
        let row: (String,) =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT offer FROM lending_offers WHERE decision_id = $1")
                .bind(o.decision_id.0.to_string())
                .fetch_one(conn)
                .await)?;
        Ok(serde_json::from_str(&row.0)?)
    }

    pub async fn offer(&self, id: &str) -> Result<Option<Offer>> {
        let row: Option<(String,)> =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT offer FROM lending_offers WHERE id = $1")
                .bind(id)
                .fetch_optional(conn)
                .await)?;
        row.map(|(j,)| serde_json::from_str(&j).map_err(Into::into)).transpose()
    }

    pub async fn contract(&self, id: &str) -> Result<Option<Contract>> {
        let row: Option<(String,)> =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT contract FROM lending_contracts WHERE id = $1")
                .bind(id)
                .fetch_optional(conn)
                .await)?;
        row.map(|(j,)| serde_json::from_str(&j).map_err(Into::into)).transpose()
    }

    // ---- loans ------------------------------------------------------------------------------

    /// Statements storing a new contract and its loan (state after disbursement, version 1)
    /// with the loan's ledger accounts. A contract stored before makes them fail.
    pub fn insert_contract_loan(contract: &Contract, rec: &LoanRecord) -> Result<Vec<Statement>> {
        let mut out = vec![Statement::new(
            "INSERT INTO lending_contracts (id, offer_id, applicant_id, contract, created_at) VALUES ($1, $2, $3, $4, $5)",
            vec![
                Arg::Text(contract.id.0.to_string()),
                Arg::Text(contract.offer_id.0.to_string()),
                Arg::Text(contract.applicant_id.clone()),
                Arg::Text(serde_json::to_string(contract)?),
                Arg::Int(now_micros()),
            ],
        )];
        out.extend(insert_loans(&[LoanInsert::new(rec)?]));
        Ok(out)
    }

    pub async fn loan(&self, id: LoanId) -> Result<Option<LoanRecord>> {
        let sql = format!("SELECT {LOAN_COLUMNS} FROM lending_loans l {LOAN_SCHEDULE_JOIN} WHERE l.id = $1");
        let row: Option<LoanRow> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(id.0.to_string()).fetch_optional(conn).await)?;
        row.map(record_from_row).transpose()
    }

    /// Which of `ids` are stored loans.
    pub async fn stored_loan_ids(&self, ids: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut found = std::collections::HashSet::new();
        for chunk in ids.chunks(SAVE_CHUNK) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT id FROM lending_loans WHERE id IN ({})", placeholders.join(", "));
            let rows: Vec<(String,)> = storage::read!(&self.db, |conn| {
                let mut q = sqlx::query_as(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(conn).await
            })?;
            found.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(found)
    }

    /// Open loans (active or overdue) with ids after `after`, in id order.
    pub async fn open_loans_after(&self, after: &str, limit: i64) -> Result<Vec<LoanRecord>> {
        // SQLite's planner would pick the (status, bucket) index and sort every open loan for each
        // page; the partial index walks them in id order. PostgreSQL chooses it from statistics.
        let hint = if matches!(self.db, Database::Sqlite(_)) { "INDEXED BY lending_loans_open" } else { "" };
        let sql = format!(
            "SELECT {LOAN_COLUMNS} FROM lending_loans l {hint} {LOAN_SCHEDULE_JOIN} \
             WHERE l.status IN ('active', 'overdue') AND l.id > $1 ORDER BY l.id LIMIT $2"
        );
        let rows: Vec<LoanRow> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(conn).await)?;
        rows.into_iter().map(record_from_row).collect()
    }

    pub async fn count_open_loans(&self) -> Result<i64> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_scalar(
            "SELECT COUNT(*) FROM lending_loans WHERE status IN ('active', 'overdue')"
        )
        .fetch_one(conn)
        .await)?)
    }

    /// Loans filtered by status and bucket, in id order after `after`.
    pub async fn list_loans(
        &self,
        status: Option<&str>,
        bucket: Option<&str>,
        applicant: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<LoanSummary>> {
        let sql = "SELECT id, applicant_id, product_code, status, bucket, dpd, last_eod FROM lending_loans \
                   WHERE ($1 = '' OR status = $1) AND ($2 = '' OR bucket = $2) AND ($3 = '' OR applicant_id = $3) \
                   AND id > $4 ORDER BY id LIMIT $5";
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(sql)
            .bind(status.unwrap_or(""))
            .bind(bucket.unwrap_or(""))
            .bind(applicant.unwrap_or(""))
            .bind(after)
            .bind(limit)
            .fetch_all(conn)
            .await)?)
    }

    /// Open loans per bucket.
    pub async fn bucket_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(storage::read!(&self.db, |conn| {
            sqlx::query_as(
            "SELECT bucket, COUNT(*) FROM lending_loans WHERE status IN ('active', 'overdue') GROUP BY bucket ORDER BY bucket"
        )
        .fetch_all(conn)
        .await
        })?)
    }

    // ---- registry and receivables -----------------------------------------------------------

    pub async fn registry_entries(&self) -> Result<Vec<RegistryEntry>> {
        let rows: Vec<(String,)> =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT entry FROM lending_documents ORDER BY seq")
                .fetch_all(conn)
                .await)?;
        rows.into_iter().map(|(j,)| serde_json::from_str(&j).map_err(Into::into)).collect()
    }

    pub async fn registry_len(&self) -> Result<i64> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_scalar("SELECT COUNT(*) FROM lending_documents")
            .fetch_one(conn)
            .await)?)
    }

    pub async fn receivable(&self, id: &str) -> Result<Option<(Receivable, Option<String>)>> {
        let row: Option<(String, Option<String>)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT receivable, loan_id FROM lending_receivables WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        row.map(|(j, l)| Ok((serde_json::from_str(&j)?, l))).transpose()
    }

    /// Runs statements in one transaction (all or nothing, row expectations checked).
    pub async fn execute(&self, statements: &[Statement]) -> Result<()> {
        storage::execute_all(&self.db, statements).await.map_err(|e| match e {
            storage::UnitOfWorkError::Database(e) => LendingPlatformError::Db(e),
            storage::UnitOfWorkError::Conflict(e) => LendingPlatformError::Stale(e),
        })
    }

    // ---- end-of-day runs --------------------------------------------------------------------

    /// (status, report) of the run for `date`.
    pub async fn eod_run(&self, date: NaiveDate) -> Result<Option<(String, Option<String>)>> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT status, report FROM lending_eod_runs WHERE business_date = $1"
        )
        .bind(date_text(date))
        .fetch_optional(conn)
        .await)?)
    }

    pub async fn last_done_eod(&self) -> Result<Option<String>> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_scalar(
            "SELECT MAX(business_date) FROM lending_eod_runs WHERE status = 'done'"
        )
        .fetch_one(conn)
        .await)?)
    }
}

pub use storage::{Arg, Statement};

/// A loan's new state, serialized (outside any transaction) and ready to save over the version
/// it was read at.
#[derive(Debug, Clone)]
pub struct LoanSave {
    id: String,
    version: i64,
    state: String,
    /// Only when it changed.
    schedule: Option<String>,
    status: &'static str,
    bucket: &'static str,
    dpd: i64,
    last_eod: Option<String>,
}

impl LoanSave {
    /// `loan` is the new state of the stored `rec`.
    pub fn new(rec: &LoanRecord, loan: &Loan) -> Result<Self> {
        Ok(LoanSave {
            id: loan.id.0.to_string(),
            version: rec.version,
            state: state_json(loan)?,
            schedule: if loan.schedule == rec.loan.schedule {
                None
            } else {
                Some(serde_json::to_string(&loan.schedule)?)
            },
            status: loan.status.as_str(),
            bucket: bucket_name(loan.bucket()),
            dpd: i64::from(loan.dpd),
            last_eod: loan.last_eod.map(date_text),
        })
    }
}

/// A new loan row with its schedule and account mapping, serialized and ready to insert: the
/// columns a save writes ([`LoanSave`]) plus those fixed at opening.
#[derive(Debug, Clone)]
pub struct LoanInsert {
    loan: LoanId,
    row: LoanSave,
    contract_id: String,
    applicant_id: String,
    product_code: String,
    customer_account: String,
    repayment_account: String,
    account_scheme: AccountScheme,
    schedule: String,
}

impl LoanInsert {
    pub fn new(rec: &LoanRecord) -> Result<Self> {
        let loan = &rec.loan;
        Ok(LoanInsert {
            loan: loan.id,
            row: LoanSave::new(rec, loan)?,
            contract_id: loan.contract_id.0.to_string(),
            applicant_id: rec.applicant_id.clone(),
            product_code: loan.product_code.clone(),
            customer_account: rec.customer_account.0.to_string(),
            repayment_account: rec.repayment_account.0.to_string(),
            account_scheme: rec.account_scheme,
            schedule: serde_json::to_string(&loan.schedule)?,
        })
    }
}

/// Multi-row statements: `head`, then `(values of a row), (...)` for up to `per_statement` rows,
/// then `tail`. With `expect_all`, each statement must change every row it names.
fn rows_statements<T>(
    head: &str,
    tail: &str,
    columns: usize,
    per_statement: usize,
    rows: &[T],
    expect_all: bool,
    values: impl Fn(&T) -> Vec<Arg>,
) -> Vec<Statement> {
    rows.chunks(per_statement)
        .map(|chunk| {
            let mut sql = String::from(head);
            let mut args = Vec::with_capacity(chunk.len() * columns);
            for (i, row) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 { "(" } else { ", (" });
                for c in 0..columns {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", i * columns + c + 1));
                }
                sql.push(')');
                args.extend(values(row));
            }
            sql.push_str(tail);
            let statement = Statement::new(sql, args);
            if expect_all {
                statement.expecting(chunk.len() as u64)
            } else {
                statement
            }
        })
        .collect()
}

/// Statements inserting new loans, their schedules and their account mappings. A loan whose
/// id is already stored is left as it is (so an import can run again). No contract row: an
/// imported loan's contract lives in the system it came from.
pub fn insert_loans(rows: &[LoanInsert]) -> Vec<Statement> {
    let now = now_micros();
    let mut out = rows_statements(
        "INSERT INTO lending_loans (id, contract_id, applicant_id, product_code, status, bucket, dpd, last_eod, \
         customer_account, repayment_account, version, state, created_at, updated_at, account_scheme) VALUES ",
        " ON CONFLICT (id) DO NOTHING",
        15,
        SAVE_CHUNK / 4,
        rows,
        false,
        |r| {
            vec![
                Arg::Text(r.row.id.clone()),
                Arg::Text(r.contract_id.clone()),
                Arg::Text(r.applicant_id.clone()),
                Arg::Text(r.product_code.clone()),
                Arg::Text(r.row.status.into()),
                Arg::Text(r.row.bucket.into()),
                Arg::Int(r.row.dpd),
                Arg::OptText(r.row.last_eod.clone()),
                Arg::Text(r.customer_account.clone()),
                Arg::Text(r.repayment_account.clone()),
                Arg::Int(r.row.version),
                Arg::Text(r.row.state.clone()),
                Arg::Int(now),
                Arg::Int(now),
                Arg::Int(r.account_scheme.code()),
            ]
        },
    );
    out.extend(rows_statements(
        "INSERT INTO lending_loan_schedules (loan_id, schedule) VALUES ",
        " ON CONFLICT (loan_id) DO NOTHING",
        2,
        SAVE_CHUNK,
        rows,
        false,
        |r| vec![Arg::Text(r.row.id.clone()), Arg::Text(r.schedule.clone())],
    ));
    let mappings: Vec<(LoanId, AccountRole, AccountScheme)> =
        rows.iter().flat_map(|r| LOAN_ROLES.iter().map(move |(role, _)| (r.loan, *role, r.account_scheme))).collect();
    out.extend(rows_statements(
        "INSERT INTO lending_loan_accounts (loan_id, role, account_id) VALUES ",
        " ON CONFLICT (loan_id, role) DO NOTHING",
        3,
        SAVE_CHUNK,
        &mappings,
        false,
        |(loan, role, scheme)| {
            vec![
                Arg::Text(loan.0.to_string()),
                Arg::Text(role_name(*role).into()),
                Arg::Text(loan_account(*loan, *role, *scheme).0.to_string()),
            ]
        },
    ));
    out
}

/// Statements saving new loan states, each bumping the version. Every state update requires
/// all the rows it names to change, so a loan saved by someone else since it was read (its
/// version moved) rolls back the whole transaction they run in, ledger transfers included.
/// Schedules are written only for the loans whose schedule changed (prepayments, draws).
pub fn save_loans<'a>(saves: impl IntoIterator<Item = &'a LoanSave>) -> Vec<Statement> {
    let now = now_micros();
    let saves: Vec<&LoanSave> = saves.into_iter().collect();
    let mut out = rows_statements(
        "UPDATE lending_loans SET state = v.column3, status = v.column4, bucket = v.column5, \
         dpd = v.column6, last_eod = v.column7, version = lending_loans.version + 1, updated_at = v.column8 \
         FROM (VALUES ",
        ") AS v WHERE lending_loans.id = v.column1 AND lending_loans.version = v.column2",
        8,
        SAVE_CHUNK,
        &saves,
        true,
        |r| {
            vec![
                Arg::Text(r.id.clone()),
                Arg::Int(r.version),
                Arg::Text(r.state.clone()),
                Arg::Text(r.status.into()),
                Arg::Text(r.bucket.into()),
                Arg::Int(r.dpd),
                Arg::OptText(r.last_eod.clone()),
                Arg::Int(now),
            ]
        },
    );
    let rescheduled: Vec<(&str, &str)> =
        saves.iter().filter_map(|r| r.schedule.as_deref().map(|s| (r.id.as_str(), s))).collect();
    out.extend(rows_statements(
        "INSERT INTO lending_loan_schedules (loan_id, schedule) VALUES ",
        " ON CONFLICT (loan_id) DO UPDATE SET schedule = excluded.schedule",
        2,
        SAVE_CHUNK,
        &rescheduled,
        false,
        |(id, schedule)| vec![Arg::Text(id.to_string()), Arg::Text(schedule.to_string())],
    ));
    out
}

/// Statement appending a registry entry.
pub fn insert_entry(e: &RegistryEntry) -> Result<Statement> {
    Ok(Statement::new(
        "INSERT INTO lending_documents (seq, content_hash, kind, party_id, reference, registered_at, prev_hash, entry_hash, entry) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            Arg::Int(e.seq as i64),
            Arg::Text(e.content_hash.clone()),
            Arg::Text(e.kind.as_str().to_string()),
            Arg::Text(e.party_id.clone()),
            Arg::Text(e.reference.clone()),
            Arg::Int(e.registered_at.timestamp_micros()),
            Arg::Text(e.prev_hash.clone()),
            Arg::Text(e.entry_hash.clone()),
            Arg::Text(serde_json::to_string(e)?),
        ],
    ))
}

fn receivable_status(r: &Receivable) -> &'static str {
    if r.financing.is_some() {
        "financed"
    } else if r.confirmed_at.is_some() {
        "confirmed"
    } else {
        "registered"
    }
}

/// Statement inserting a new receivable.
pub fn insert_receivable(r: &Receivable) -> Result<Statement> {
    Ok(Statement::new(
        "INSERT INTO lending_receivables (id, core_enterprise_id, supplier_id, status, loan_id, receivable, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5, $6)",
        vec![
            Arg::Text(r.id.clone()),
            Arg::Text(r.core_enterprise_id.clone()),
            Arg::Text(r.supplier_id.clone()),
            Arg::Text(receivable_status(r).into()),
            Arg::Text(serde_json::to_string(r)?),
            Arg::Int(now_micros()),
        ],
    ))
}

/// Statement updating a receivable's state (and the loan financing it).
pub fn update_receivable(r: &Receivable, loan_id: Option<String>) -> Result<Statement> {
    Ok(Statement::new(
        "UPDATE lending_receivables SET status = $1, receivable = $2, loan_id = $3 WHERE id = $4",
        vec![
            Arg::Text(receivable_status(r).into()),
            Arg::Text(serde_json::to_string(r)?),
            Arg::OptText(loan_id),
            Arg::Text(r.id.clone()),
        ],
    ))
}

/// What a write-off charged off, per receivable (minor units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChargedOff {
    pub principal: i64,
    pub interest: i64,
    pub penalty: i64,
    pub fees: i64,
    pub total: i64,
}

/// Statement recording a write-off (who, why, what).
pub fn insert_write_off(
    loan: LoanId,
    date: NaiveDate,
    reason: &str,
    forced: bool,
    by: &str,
    role: &str,
    c: &ChargedOff,
) -> Statement {
    Statement::new(
        "INSERT INTO lending_write_offs (loan_id, business_date, reason, forced, written_off_by, written_off_role, \
         principal_minor, interest_minor, penalty_minor, fees_minor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        vec![
            Arg::Text(loan.0.to_string()),
            Arg::Text(date_text(date)),
            Arg::Text(reason.to_string()),
            Arg::Int(i64::from(forced)),
            Arg::Text(by.to_string()),
            Arg::Text(role.to_string()),
            Arg::Int(c.principal),
            Arg::Int(c.interest),
            Arg::Int(c.penalty),
            Arg::Int(c.fees),
            Arg::Int(now_micros()),
        ],
    )
}

/// Statements of an end-of-day run's bookkeeping.
pub fn start_eod(date: NaiveDate) -> Statement {
    Statement::new(
        "INSERT INTO lending_eod_runs (business_date, status, started_at) VALUES ($1, 'running', $2) \
         ON CONFLICT (business_date) DO NOTHING",
        vec![Arg::Text(date_text(date)), Arg::Int(now_micros())],
    )
}

pub fn finish_eod(date: NaiveDate, report: &str) -> Statement {
    Statement::new(
        "UPDATE lending_eod_runs SET status = 'done', finished_at = $1, report = $2 WHERE business_date = $3",
        vec![Arg::Int(now_micros()), Arg::Text(report.to_string()), Arg::Text(date_text(date))],
    )
}
