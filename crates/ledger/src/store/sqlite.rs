//! SQLite implementation of [`LedgerStore`]: the embedded default.
//!
//! Transfer batches and index builds run on a dedicated rusqlite connection (the "journal
//! writer") on a blocking thread; account opening and status changes use the sqlx writer
//! connection of [`SqliteDb`]. Every write starts with `BEGIN IMMEDIATE`, which takes SQLite's
//! write lock up front; reads use the sqlx reader pool and run concurrently thanks to WAL.
//!
//! Why rusqlite for the hot path: sqlx runs SQLite on a worker thread, so every bound value is
//! copied into an owned argument and every statement and row crosses a channel. For batches of
//! thousands of rows that overhead was larger than SQLite's own work; rusqlite binds and steps
//! prepared statements in place. Both link the same bundled SQLite (`libsqlite3-sys`).
//!
//! Performance notes (`digibank bench ledger`): a batch costs one look-up of its ids, the
//! accounts it touches (served from the writer's cache), multi-row inserts of the journal, one
//! bulk `UPDATE ... FROM (VALUES ...)` of balances and the commit's fsync. The per-account index
//! is built in sorted chunks ([`INDEX_CHUNK`]) rather than on insert. What remains is mostly
//! SQLite's own B-tree work and the fsync of each commit.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{Executor, QueryBuilder};
use storage::SqliteDb;
use uuid::Uuid;

use super::*;

/// SQLite allows 32766 bound parameters per statement; stay well below.
const MAX_PARAMS: usize = 30_000;

/// Journal entries left out of `account_entries` before the writer indexes them in one sorted
/// pass. Larger chunks write fewer index pages per transfer; smaller chunks keep the tail that
/// statement queries scan short (a few milliseconds at this size).
const INDEX_CHUNK: i64 = 65_536;

/// Adds journal entries after `journal_head.indexed_seq` to `account_entries` as one new chunk,
/// in index order. Runs inside the caller's write transaction. Returns entries indexed.
fn index_tail(conn: &rusqlite::Connection, known_tail: Option<Vec<([u8; 16], i64)>>) -> Result<i64, LedgerError> {
    let started = std::time::Instant::now();
    let (seq, indexed): (i64, i64) =
        conn.query_row("SELECT seq, indexed_seq FROM journal_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if seq == indexed {
        return Ok(0);
    }
    let complete = known_tail.filter(|t| t.len() as i64 == 2 * (seq - indexed) && t.iter().all(|(_, s)| *s > indexed));
    if let Some(mut entries) = complete {
        entries.sort_unstable();
        let mut insert =
            conn.prepare_cached("INSERT INTO account_entries (chunk, account_id, seq) VALUES (?1, ?2, ?3)")?;
        for (account, entry_seq) in &entries {
            insert.execute(rusqlite::params![indexed + 1, &account[..], entry_seq])?;
        }
    } else {
        conn.prepare_cached(
            "INSERT INTO account_entries (chunk, account_id, seq) SELECT ?1 + 1, account_id, seq FROM ( \
           SELECT debit_account_id AS account_id, seq FROM transfers WHERE seq > ?1 AND seq <= ?2 \
           UNION ALL \
           SELECT credit_account_id AS account_id, seq FROM transfers WHERE seq > ?1 AND seq <= ?2 \
         ) ORDER BY account_id, seq",
        )?
        .execute(rusqlite::params![indexed, seq])?;
    }
    conn.prepare_cached("INSERT INTO index_chunks (first_seq, last_seq) VALUES (?1, ?2)")?
        .execute(rusqlite::params![indexed + 1, seq])?;
    conn.prepare_cached("UPDATE journal_head SET indexed_seq = ?1 WHERE id = 1")?.execute([seq])?;
    tracing::debug!(entries = seq - indexed, elapsed_us = started.elapsed().as_micros() as u64, "indexed journal tail");
    Ok(seq - indexed)
}

pub struct SqliteLedgerStore {
    db: SqliteDb,
    /// Opened on first use, so constructing the store cannot fail.
    journal: Arc<std::sync::Mutex<Option<JournalWriter>>>,
}

/// The rusqlite connection that writes the journal, with the account cache it keeps.
struct JournalWriter {
    conn: rusqlite::Connection,
    cache: AccountCache,
    /// (account, seq) of every journal entry after `indexed_seq`, when known to be complete;
    /// lets the index build sort in memory instead of re-reading the journal tail.
    tail: Option<Vec<([u8; 16], i64)>>,
}

impl JournalWriter {
    fn open(path: &str) -> Result<Self, LedgerError> {
        // Same settings (and durability) as every other connection to the file.
        let conn = storage::open_sqlite_connection(path)?;
        Ok(JournalWriter { conn, cache: AccountCache::default(), tail: None })
    }
}

/// Committed account state kept by the journal writer, so a batch does not re-read thousands
/// of account rows. `PRAGMA data_version` changes whenever another connection commits (the sqlx
/// writer opening an account, another process, someone editing the file), which clears it.
#[derive(Default)]
struct AccountCache {
    data_version: Option<i64>,
    accounts: std::collections::HashMap<AccountId, AccountState>,
}

/// Bounds the cache's memory (an account is a few hundred bytes).
const MAX_CACHED_ACCOUNTS: usize = 2_000_000;

impl AccountCache {
    /// Returns true when another connection committed since the last call (cache dropped).
    fn sync(&mut self, conn: &rusqlite::Connection) -> Result<bool, LedgerError> {
        let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let changed = self.data_version != Some(version);
        if changed || self.accounts.len() > MAX_CACHED_ACCOUNTS {
            self.accounts.clear();
            self.data_version = Some(version);
        }
        Ok(changed)
    }
}

impl SqliteLedgerStore {
    pub fn new(db: SqliteDb) -> Self {
        SqliteLedgerStore { db, journal: Arc::new(std::sync::Mutex::new(None)) }
    }

    /// Runs `work` on the journal writer inside `BEGIN IMMEDIATE ... COMMIT` on a blocking
    /// thread. Any error rolls back and clears the account cache.
    async fn journal_write<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        F: FnOnce(&mut JournalWriter) -> Result<T, LedgerError> + Send + 'static,
        T: Send + 'static,
    {
        let journal = self.journal.clone();
        let path = self.db.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = journal.lock().map_err(|_| LedgerError::Unavailable("journal writer poisoned".into()))?;
            if slot.is_none() {
                *slot = Some(JournalWriter::open(&path)?);
            }
            let writer = slot.as_mut().expect("journal writer just opened");
            writer.conn.execute_batch("BEGIN IMMEDIATE")?;
            let result = work(writer).and_then(|value| {
                writer.conn.execute_batch("COMMIT")?;
                Ok(value)
            });
            if result.is_err() {
                let _ = writer.conn.execute_batch("ROLLBACK");
                writer.cache.accounts.clear();
                writer.tail = None;
            }
            result
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("journal writer task failed: {e}")))?
    }

    /// Runs `work` inside `BEGIN IMMEDIATE ... COMMIT` on the writer connection, rolling back
    /// on any error so no partial write survives.
    async fn write<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        F: for<'c> FnOnce(
                &'c mut SqliteConnection,
            )
                -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, LedgerError>> + Send + 'c>>
            + Send,
        T: Send,
    {
        let mut conn = self.db.writer.lock().await;
        conn.execute("BEGIN IMMEDIATE").await?;
        let mut result = work(&mut conn).await;
        if result.is_ok() {
            if let Some(entry) = storage::audit::next_entry() {
                if let Err(e) = entry.query().execute(&mut *conn).await {
                    result = Err(e.into());
                }
            }
        }
        match result {
            Ok(value) => match conn.execute("COMMIT").await {
                Ok(_) => Ok(value),
                Err(e) => {
                    let _ = conn.execute("ROLLBACK").await;
                    Err(e.into())
                }
            },
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
}

/// Runs another domain's statement on the journal writer, binding by position (see
/// [`storage::Statement::sqlite_sql`]).
fn run_statement(conn: &rusqlite::Connection, statement: &storage::Statement) -> Result<(), LedgerError> {
    let mut stmt = conn.prepare_cached(&statement.sqlite_sql())?;
    for (i, arg) in statement.args.iter().enumerate() {
        match arg {
            storage::Arg::Text(s) => stmt.raw_bind_parameter(i + 1, s)?,
            storage::Arg::OptText(s) => stmt.raw_bind_parameter(i + 1, s)?,
            storage::Arg::Int(n) => stmt.raw_bind_parameter(i + 1, n)?,
        }
    }
    let changed = stmt.raw_execute()? as u64;
    storage::check_rows(statement, changed)?;
    Ok(())
}

async fn accounts_by_ids(conn: &mut SqliteConnection, ids: &[AccountId]) -> Result<Vec<Account>, LedgerError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_PARAMS) {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ("));
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id.0);
        }
        q.push(")");
        let rows: Vec<AccountRow> = q.build_query_as().fetch_all(&mut *conn).await?;
        out.extend(convert_all::<_, Account>(rows)?);
    }
    Ok(out)
}

/// One batch transaction on the journal writer. The trait is async for PostgreSQL's sake; here
/// every step is a synchronous rusqlite call, driven by `block_on` on a blocking thread.
struct JournalBatch<'c> {
    conn: &'c mut rusqlite::Connection,
    cache: &'c mut AccountCache,
    indexed_seq: i64,
    head_seq: i64,
}

fn uuid_at(row: &rusqlite::Row, i: usize) -> rusqlite::Result<Uuid> {
    let bytes = row.get_ref(i)?.as_blob()?;
    Uuid::from_slice(bytes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e)))
}

fn transfer_row(r: &rusqlite::Row) -> rusqlite::Result<TransferRow> {
    Ok(TransferRow {
        seq: r.get(0)?,
        id: uuid_at(r, 1)?,
        kind: r.get(2)?,
        debit_account_id: uuid_at(r, 3)?,
        credit_account_id: uuid_at(r, 4)?,
        amount: r.get(5)?,
        currency: r.get(6)?,
        pending_id: match r.get_ref(7)? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(uuid_at(r, 7)?),
        },
        timeout_secs: r.get(8)?,
        linked: r.get(9)?,
        reference: r.get(10)?,
        metadata: r.get(11)?,
        created_at: r.get(12)?,
        hash: r.get(13)?,
    })
}

fn account_row(r: &rusqlite::Row) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: uuid_at(r, 0)?,
        currency: r.get(1)?,
        kind: r.get(2)?,
        owner_type: r.get(3)?,
        owner_id: r.get(4)?,
        code: r.get(5)?,
        name: r.get(6)?,
        debits_must_not_exceed_credits: r.get(7)?,
        credits_must_not_exceed_debits: r.get(8)?,
        overdraft_limit: r.get(9)?,
        status: r.get(10)?,
        debits_pending: r.get(11)?,
        debits_posted: r.get(12)?,
        credits_pending: r.get(13)?,
        credits_posted: r.get(14)?,
        created_at: r.get(15)?,
    })
}

#[async_trait]
impl BatchTx for JournalBatch<'_> {
    async fn lock_head(&mut self) -> Result<Head, LedgerError> {
        // BEGIN IMMEDIATE already holds the database write lock.
        let (row, indexed_seq) = self.conn.query_row(
            "SELECT seq, hash, created_at, indexed_seq FROM journal_head WHERE id = 1",
            [],
            |r| Ok((HeadRow { seq: r.get(0)?, hash: r.get(1)?, created_at: r.get(2)? }, r.get(3)?)),
        )?;
        self.indexed_seq = indexed_seq;
        self.head_seq = row.seq;
        row.try_into()
    }

    async fn transfers_by_ids(&mut self, ids: &[TransferId]) -> Result<Vec<Transfer>, LedgerError> {
        use rusqlite::OptionalExtension;
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ?1"))?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(row) = stmt.query_row([&id.0.as_bytes()[..]], transfer_row).optional()? {
                out.push(Transfer::try_from(row)?);
            }
        }
        Ok(out)
    }

    async fn hold_statuses(&mut self, ids: &[TransferId]) -> Result<Vec<(TransferId, HoldStatus)>, LedgerError> {
        use rusqlite::OptionalExtension;
        let mut stmt = self.conn.prepare_cached("SELECT status FROM pending_holds WHERE transfer_id = ?1")?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(status) = stmt.query_row([&id.0.as_bytes()[..]], |r| r.get::<_, String>(0)).optional()? {
                let status = HoldStatus::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("hold {id}")))?;
                out.push((*id, status));
            }
        }
        Ok(out)
    }

    async fn accounts_by_ids(&mut self, ids: &[AccountId]) -> Result<Vec<AccountState>, LedgerError> {
        use rusqlite::OptionalExtension;
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(account) = self.cache.accounts.get(id) {
                out.push(*account);
            } else if let Some(row) = stmt.query_row([&id.0.as_bytes()[..]], account_row).optional()? {
                let account = Account::try_from(row)?.state();
                self.cache.accounts.insert(account.id, account);
                out.push(account);
            }
        }
        Ok(out)
    }

    async fn write_plan(&mut self, plan: &Plan) -> Result<(), LedgerError> {
        use rusqlite::params;
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))?;
        for t in &plan.new_transfers {
            insert.execute(params![
                t.seq,
                &t.id.0.as_bytes()[..],
                t.kind.as_str(),
                &t.debit_account_id.0.as_bytes()[..],
                &t.credit_account_id.0.as_bytes()[..],
                t.amount,
                t.currency.code(),
                t.pending_id.as_ref().map(|p| &p.0.as_bytes()[..]),
                i64::from(t.timeout_secs),
                t.linked,
                t.reference.as_deref(),
                t.metadata.as_deref(),
                t.created_at,
                &t.hash[..],
            ])?;
        }
        let mut hold = self
            .conn
            .prepare_cached("INSERT INTO pending_holds (transfer_id, status, expires_at) VALUES (?1, 'pending', ?2)")?;
        for (id, expires) in &plan.new_holds {
            hold.execute(params![&id.0.as_bytes()[..], expires])?;
        }
        let mut resolve = self.conn.prepare_cached("UPDATE pending_holds SET status = ?1 WHERE transfer_id = ?2")?;
        for (id, status) in &plan.hold_updates {
            resolve.execute(params![status.as_str(), &id.0.as_bytes()[..]])?;
        }
        let mut balances = self.conn.prepare_cached(
            "UPDATE accounts SET debits_pending = ?1, debits_posted = ?2, credits_pending = ?3, credits_posted = ?4 \
             WHERE id = ?5",
        )?;
        for (id, b) in &plan.account_updates {
            balances.execute(params![
                b.debits_pending,
                b.debits_posted,
                b.credits_pending,
                b.credits_posted,
                &id.0.as_bytes()[..]
            ])?;
        }
        if let Some(head) = plan.head {
            self.conn
                .prepare_cached("UPDATE journal_head SET seq = ?1, hash = ?2, created_at = ?3 WHERE id = 1")?
                .execute(params![head.seq, &head.hash[..], head.created_at])?;
        }
        Ok(())
    }
}

#[async_trait]
impl LedgerStore for SqliteLedgerStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn open_accounts(&self, requests: &[NewAccount], now: i64) -> Result<Vec<(Account, bool)>, LedgerError> {
        let accounts: Vec<Account> = requests.iter().map(|r| new_account(r, now)).collect::<Result<_, _>>()?;
        let requests = requests.to_vec();
        self.write(move |conn| {
            Box::pin(async move {
                let ids: Vec<AccountId> = accounts.iter().map(|a| a.id).collect();
                let existing: std::collections::HashMap<AccountId, Account> =
                    accounts_by_ids(conn, &ids).await?.into_iter().map(|a| (a.id, a)).collect();
                let mut out = Vec::with_capacity(accounts.len());
                for (account, request) in accounts.into_iter().zip(&requests) {
                    if let Some(found) = existing.get(&account.id) {
                        if !found.matches(request) {
                            return Err(LedgerError::AccountConflict(account.id));
                        }
                        out.push((found.clone(), false));
                        continue;
                    }
                    sqlx::query(&format!(
                        "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?) \
                         ON CONFLICT (id) DO NOTHING"
                    ))
                    .bind(account.id.0)
                    .bind(account.currency.code().to_string())
                    .bind(account.kind.as_str())
                    .bind(account.owner_type.as_str())
                    .bind(account.owner_id.clone())
                    .bind(account.code.clone())
                    .bind(account.name.clone())
                    .bind(account.debits_must_not_exceed_credits)
                    .bind(account.credits_must_not_exceed_debits)
                    .bind(account.overdraft_limit)
                    .bind(account.status.as_str())
                    .bind(account.created_at)
                    .execute(&mut *conn)
                    .await
                    .map_err(LedgerError::from)
                    .and_then(|r| {
                        // The same id twice in one request with different content.
                        if r.rows_affected() == 1 { Ok(()) } else { Err(LedgerError::AccountConflict(account.id)) }
                    })?;
                    out.push((account, true));
                }
                Ok(out)
            })
        })
        .await
    }

    async fn set_account_status(&self, id: AccountId, to: AccountStatus) -> Result<Account, LedgerError> {
        self.write(move |conn| {
            Box::pin(async move {
                let mut account = accounts_by_ids(conn, &[id]).await?.pop().ok_or(LedgerError::AccountNotFound(id))?;
                check_status_change(&account, to)?;
                sqlx::query("UPDATE accounts SET status = ? WHERE id = ?")
                    .bind(to.as_str())
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await?;
                account.status = to;
                Ok(account)
            })
        })
        .await
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, LedgerError> {
        let row: Option<AccountRow> = sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.db.readers)
            .await?;
        row.map(Account::try_from).transpose()
    }

    async fn list_accounts(&self, after: Option<AccountId>, limit: u32) -> Result<Vec<Account>, LedgerError> {
        let rows: Vec<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > ? ORDER BY id LIMIT ?"))
                .bind(after.map(|a| a.0).unwrap_or(Uuid::nil()))
                .bind(i64::from(limit))
                .fetch_all(&self.db.readers)
                .await?;
        convert_all(rows)
    }

    async fn customer_accounts(&self, owners: &[String]) -> Result<Vec<Account>, LedgerError> {
        let owners = serde_json::to_string(owners).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE owner_type = 'customer' \
             AND owner_id IN (SELECT value FROM json_each(?)) ORDER BY id"
        ))
        .bind(owners)
        .fetch_all(&self.db.readers)
        .await?;
        convert_all(rows)
    }

    async fn write_batch_with(
        &self,
        requests: Vec<TransferRequest>,
        now: i64,
        allow_system: bool,
        along: Option<AlongWithBatch>,
    ) -> Result<Vec<TransferOutcome>, LedgerError> {
        let (outcomes, backlog) = self
            .journal_write(move |writer| {
                let JournalWriter { conn, cache, tail } = writer;
                if cache.sync(conn)? {
                    *tail = None;
                }
                let mut batch = JournalBatch { conn, cache, indexed_seq: 0, head_seq: 0 };
                let plan = futures::executor::block_on(run_batch(&mut batch, &requests, now, allow_system))?;
                if let Some(along) = along {
                    for statement in along(&plan.outcomes) {
                        run_statement(batch.conn, &statement)?;
                    }
                }
                let backlog = plan.head.map(|h| h.seq - batch.indexed_seq).unwrap_or(0);
                if tail.is_none() && batch.head_seq == batch.indexed_seq {
                    *tail = Some(Vec::new());
                }
                if let Some(entries) = tail.as_mut() {
                    for t in &plan.new_transfers {
                        entries.push((*t.debit_account_id.0.as_bytes(), t.seq));
                        entries.push((*t.credit_account_id.0.as_bytes(), t.seq));
                    }
                }
                // A failed commit clears the whole cache, so updating it before the commit is safe.
                for (id, balances) in &plan.account_updates {
                    if let Some(account) = batch.cache.accounts.get_mut(id) {
                        account.balances = *balances;
                    }
                }
                Ok((plan.outcomes, backlog))
            })
            .await?;
        if backlog >= INDEX_CHUNK {
            self.catch_up_index().await?;
        }
        Ok(outcomes)
    }

    async fn catch_up_index(&self) -> Result<i64, LedgerError> {
        self.journal_write(|writer| {
            let JournalWriter { conn, cache, tail } = writer;
            if cache.sync(conn)? {
                *tail = None;
            }
            let indexed = index_tail(conn, tail.take())?;
            // The journal is now fully indexed, so an empty tail is complete.
            *tail = Some(Vec::new());
            Ok(indexed)
        })
        .await
    }

    async fn due_holds(&self, now: i64, limit: u32) -> Result<Vec<TransferId>, LedgerError> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT transfer_id FROM pending_holds WHERE status = 'pending' AND expires_at IS NOT NULL \
             AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.db.readers)
        .await?;
        Ok(rows.into_iter().map(|(id,)| TransferId(id)).collect())
    }

    async fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, LedgerError> {
        let row: Option<TransferRow> =
            sqlx::query_as(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ?"))
                .bind(id.0)
                .fetch_optional(&self.db.readers)
                .await?;
        row.map(Transfer::try_from).transpose()
    }

    async fn hold_status(&self, id: TransferId) -> Result<Option<HoldStatus>, LedgerError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT status FROM pending_holds WHERE transfer_id = ?")
            .bind(id.0)
            .fetch_optional(&self.db.readers)
            .await?;
        Ok(row.and_then(|(s,)| HoldStatus::parse(&s)))
    }

    async fn account_transfers(
        &self,
        id: AccountId,
        after_seq: i64,
        limit: u32,
        until: Option<i64>,
    ) -> Result<Vec<Transfer>, LedgerError> {
        let until = until.unwrap_or(i64::MAX);
        let limit = i64::from(limit);
        // One read transaction, so the chunk list, the chunks and the tail are one snapshot.
        let mut tx = self.db.readers.begin().await?;
        let (indexed,): (i64,) =
            sqlx::query_as("SELECT indexed_seq FROM journal_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let chunks: Vec<(i64,)> =
            sqlx::query_as("SELECT first_seq FROM index_chunks WHERE last_seq > ? ORDER BY first_seq")
                .bind(after_seq)
                .fetch_all(&mut *tx)
                .await?;
        let mut rows: Vec<TransferRow> = Vec::new();
        let chunk_query = format!(
            "SELECT {} FROM account_entries e JOIN transfers t ON t.seq = e.seq \
             WHERE e.chunk = ? AND e.account_id = ? AND e.seq > ? AND t.created_at <= ? ORDER BY e.seq LIMIT ?",
            TRANSFER_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ")
        );
        for (chunk,) in chunks {
            let remaining = limit - rows.len() as i64;
            if remaining <= 0 {
                break;
            }
            let found: Vec<TransferRow> = sqlx::query_as(&chunk_query)
                .bind(chunk)
                .bind(id.0)
                .bind(after_seq)
                .bind(until)
                .bind(remaining)
                .fetch_all(&mut *tx)
                .await?;
            rows.extend(found);
        }
        let remaining = limit - rows.len() as i64;
        if remaining > 0 {
            let tail: Vec<TransferRow> = sqlx::query_as(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE seq > ? \
                 AND (debit_account_id = ? OR credit_account_id = ?) AND created_at <= ? ORDER BY seq LIMIT ?"
            ))
            .bind(after_seq.max(indexed))
            .bind(id.0)
            .bind(id.0)
            .bind(until)
            .bind(remaining)
            .fetch_all(&mut *tx)
            .await?;
            rows.extend(tail);
        }
        tx.rollback().await?;
        convert_all(rows)
    }

    async fn journal_page(&self, after_seq: i64, limit: u32) -> Result<Vec<Transfer>, LedgerError> {
        let rows: Vec<TransferRow> =
            sqlx::query_as(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE seq > ? ORDER BY seq LIMIT ?"))
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.db.readers)
                .await?;
        convert_all(rows)
    }

    async fn head(&self) -> Result<Head, LedgerError> {
        let row: HeadRow = sqlx::query_as("SELECT seq, hash, created_at FROM journal_head WHERE id = 1")
            .fetch_one(&self.db.readers)
            .await?;
        row.try_into()
    }

    async fn verify_snapshot(
        &self,
        verifier: &mut crate::journal::Verifier,
        progress: &mut (dyn FnMut(u64, i64) + Send),
    ) -> Result<(Vec<Account>, Head), LedgerError> {
        // A rusqlite connection of its own streams the journal inside one read transaction
        // (one snapshot) on a blocking thread, reporting progress through a channel.
        let path = self.db.path.clone();
        let mut taken = std::mem::take(verifier);
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(u64, i64)>();
        let scan = tokio::task::spawn_blocking(move || -> Result<_, LedgerError> {
            let conn = storage::open_sqlite_connection(&path)?;
            conn.execute_batch("BEGIN")?;
            let head: Head = conn
                .query_row("SELECT seq, hash, created_at FROM journal_head WHERE id = 1", [], |r| {
                    Ok(HeadRow { seq: r.get(0)?, hash: r.get(1)?, created_at: r.get(2)? })
                })?
                .try_into()?;
            let mut stmt = conn.prepare(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            let mut checked = 0u64;
            while let Some(row) = rows.next()? {
                taken.feed(&Transfer::try_from(transfer_row(row)?)?);
                checked += 1;
                if checked.is_multiple_of(SCAN_PAGE as u64) {
                    let _ = sender.send((checked, head.seq));
                }
            }
            let _ = sender.send((checked, head.seq));
            drop(rows);
            let mut stmt = conn.prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"))?;
            let accounts = stmt
                .query_map([], account_row)?
                .map(|row| Account::try_from(row?))
                .collect::<Result<Vec<_>, LedgerError>>()?;
            drop(stmt);
            conn.execute_batch("COMMIT")?;
            Ok((taken, accounts, head))
        });
        while let Some((done, total)) = receiver.recv().await {
            progress(done, total);
        }
        let (scanned, accounts, head) =
            scan.await.map_err(|e| LedgerError::Unavailable(format!("verify task failed: {e}")))??;
        *verifier = scanned;
        Ok((accounts, head))
    }

    async fn counts(&self) -> Result<(i64, i64), LedgerError> {
        let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts").fetch_one(&self.db.readers).await?;
        let (seq,): (i64,) =
            sqlx::query_as("SELECT seq FROM journal_head WHERE id = 1").fetch_one(&self.db.readers).await?;
        Ok((accounts, seq))
    }
}
