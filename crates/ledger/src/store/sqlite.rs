//! SQLite implementation of [`LedgerStore`]: the embedded default.
//!
//! All writes go through the single writer connection of [`SqliteDb`] and start with
//! `BEGIN IMMEDIATE`, which takes SQLite's write lock up front; reads use the reader pool and
//! run concurrently with writes thanks to WAL.
//!
//! Performance notes (`digibank bench ledger`): a batch costs one look-up of its ids, the
//! accounts it touches (served from the writer's cache), multi-row inserts of the journal, one
//! bulk `UPDATE ... FROM (VALUES ...)` of balances and the commit's fsync. The per-account index
//! is built in sorted chunks ([`INDEX_CHUNK`]) rather than on insert. What remains is mostly
//! sqlx's per-statement and per-row overhead (every row crosses a channel to sqlx's SQLite
//! worker thread) and SQLite's own B-tree work; the next step to 100k+ transfers/s is a
//! dedicated rusqlite writer thread that binds and steps statements directly.

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

async fn index_in_transaction(conn: &mut SqliteConnection) -> Result<i64, LedgerError> {
    let started = std::time::Instant::now();
    conn.execute("BEGIN IMMEDIATE").await?;
    match index_tail(conn).await {
        Ok(n) => {
            conn.execute("COMMIT").await?;
            tracing::debug!(entries = n, elapsed_us = started.elapsed().as_micros() as u64, "indexed journal tail");
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Adds journal entries after `journal_head.indexed_seq` to `account_entries`, in index order.
/// Runs inside the caller's write transaction. Returns how many journal entries were indexed.
async fn index_tail(conn: &mut SqliteConnection) -> Result<i64, LedgerError> {
    let (seq, indexed): (i64, i64) =
        sqlx::query_as("SELECT seq, indexed_seq FROM journal_head WHERE id = 1").fetch_one(&mut *conn).await?;
    if seq == indexed {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO account_entries (chunk, account_id, seq) SELECT ?1 + 1, account_id, seq FROM ( \
           SELECT debit_account_id AS account_id, seq FROM transfers WHERE seq > ?1 AND seq <= ?2 \
           UNION ALL \
           SELECT credit_account_id AS account_id, seq FROM transfers WHERE seq > ?1 AND seq <= ?2 \
         ) ORDER BY account_id, seq",
    )
    .bind(indexed)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO index_chunks (first_seq, last_seq) VALUES (?, ?)")
        .bind(indexed + 1)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE journal_head SET indexed_seq = ? WHERE id = 1").bind(seq).execute(&mut *conn).await?;
    Ok(seq - indexed)
}

pub struct SqliteLedgerStore {
    db: SqliteDb,
    cache: tokio::sync::Mutex<AccountCache>,
}

/// Committed account state kept by the writer, so a batch does not re-read thousands of
/// account rows. Only the writer connection (held while this is used) changes accounts, and
/// `PRAGMA data_version` tells us when any other connection committed, which clears it.
#[derive(Default)]
struct AccountCache {
    data_version: Option<i64>,
    accounts: std::collections::HashMap<AccountId, Account>,
}

/// Bounds the cache's memory (an account is a few hundred bytes).
const MAX_CACHED_ACCOUNTS: usize = 2_000_000;

impl AccountCache {
    async fn sync(&mut self, conn: &mut SqliteConnection) -> Result<(), LedgerError> {
        let (version,): (i64,) = sqlx::query_as("PRAGMA data_version").fetch_one(&mut *conn).await?;
        if self.data_version != Some(version) || self.accounts.len() > MAX_CACHED_ACCOUNTS {
            self.accounts.clear();
            self.data_version = Some(version);
        }
        Ok(())
    }
}

impl SqliteLedgerStore {
    pub fn new(db: SqliteDb) -> Self {
        SqliteLedgerStore { db, cache: Default::default() }
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
        match work(&mut conn).await {
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

struct SqliteBatch<'c> {
    conn: &'c mut SqliteConnection,
    cache: &'c mut AccountCache,
    indexed_seq: i64,
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

#[async_trait]
impl BatchTx for SqliteBatch<'_> {
    async fn lock_head(&mut self) -> Result<Head, LedgerError> {
        // BEGIN IMMEDIATE already holds the database write lock.
        let (seq, hash, created_at, indexed_seq): (i64, Vec<u8>, i64, i64) =
            sqlx::query_as("SELECT seq, hash, created_at, indexed_seq FROM journal_head WHERE id = 1")
                .fetch_one(&mut *self.conn)
                .await?;
        self.indexed_seq = indexed_seq;
        HeadRow { seq, hash, created_at }.try_into()
    }

    async fn transfers_by_ids(&mut self, ids: &[TransferId]) -> Result<Vec<Transfer>, LedgerError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(MAX_PARAMS) {
            let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id IN ("));
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            q.push(")");
            let rows: Vec<TransferRow> = q.build_query_as().fetch_all(&mut *self.conn).await?;
            out.extend(convert_all::<_, Transfer>(rows)?);
        }
        Ok(out)
    }

    async fn hold_statuses(&mut self, ids: &[TransferId]) -> Result<Vec<(TransferId, HoldStatus)>, LedgerError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(MAX_PARAMS) {
            let mut q =
                QueryBuilder::<Sqlite>::new("SELECT transfer_id, status FROM pending_holds WHERE transfer_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            q.push(")");
            let rows: Vec<(Uuid, String)> = q.build_query_as().fetch_all(&mut *self.conn).await?;
            for (id, status) in rows {
                let status = HoldStatus::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("hold {id}")))?;
                out.push((TransferId(id), status));
            }
        }
        Ok(out)
    }

    async fn accounts_by_ids(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, LedgerError> {
        let missing: Vec<AccountId> = ids.iter().filter(|id| !self.cache.accounts.contains_key(id)).copied().collect();
        if !missing.is_empty() {
            for account in accounts_by_ids(self.conn, &missing).await? {
                self.cache.accounts.insert(account.id, account);
            }
        }
        Ok(ids.iter().filter_map(|id| self.cache.accounts.get(id).cloned()).collect())
    }

    async fn write_plan(&mut self, plan: &Plan) -> Result<(), LedgerError> {
        for chunk in plan.new_transfers.chunks(MAX_PARAMS / 14) {
            let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO transfers ({TRANSFER_COLUMNS}) "));
            q.push_values(chunk, |mut b, t| {
                // Borrowed binds: no per-value allocation for ids, codes, text or hashes.
                b.push_bind(t.seq)
                    .push_bind(&t.id.0.as_bytes()[..])
                    .push_bind(t.kind.as_str())
                    .push_bind(&t.debit_account_id.0.as_bytes()[..])
                    .push_bind(&t.credit_account_id.0.as_bytes()[..])
                    .push_bind(t.amount)
                    .push_bind(t.currency.code())
                    .push_bind(t.pending_id.as_ref().map(|p| &p.0.as_bytes()[..]))
                    .push_bind(i64::from(t.timeout_secs))
                    .push_bind(t.linked)
                    .push_bind(t.reference.as_deref())
                    .push_bind(t.metadata.as_deref())
                    .push_bind(t.created_at)
                    .push_bind(&t.hash[..]);
            });
            q.build().execute(&mut *self.conn).await?;
        }
        for chunk in plan.new_holds.chunks(MAX_PARAMS / 3) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO pending_holds (transfer_id, status, expires_at) ");
            q.push_values(chunk, |mut b, (id, expires)| {
                b.push_bind(id.0).push_bind(HoldStatus::Pending.as_str()).push_bind(*expires);
            });
            q.build().execute(&mut *self.conn).await?;
        }
        for (id, status) in &plan.hold_updates {
            sqlx::query("UPDATE pending_holds SET status = ? WHERE transfer_id = ?")
                .bind(status.as_str())
                .bind(id.0)
                .execute(&mut *self.conn)
                .await?;
        }
        for chunk in plan.account_updates.chunks(MAX_PARAMS / 5) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE accounts SET debits_pending = u.column2, debits_posted = u.column3, \
                 credits_pending = u.column4, credits_posted = u.column5 FROM (",
            );
            q.push_values(chunk, |mut b, (id, bal)| {
                b.push_bind(id.0)
                    .push_bind(bal.debits_pending)
                    .push_bind(bal.debits_posted)
                    .push_bind(bal.credits_pending)
                    .push_bind(bal.credits_posted);
            });
            q.push(") AS u WHERE accounts.id = u.column1");
            q.build().execute(&mut *self.conn).await?;
        }
        if let Some(head) = plan.head {
            sqlx::query("UPDATE journal_head SET seq = ?, hash = ?, created_at = ? WHERE id = 1")
                .bind(head.seq)
                .bind(head.hash.to_vec())
                .bind(head.created_at)
                .execute(&mut *self.conn)
                .await?;
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
        self.cache.lock().await.accounts.remove(&id);
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

    async fn write_batch(
        &self,
        requests: &[TransferRequest],
        now: i64,
        allow_system: bool,
    ) -> Result<Vec<TransferOutcome>, LedgerError> {
        let mut conn = self.db.writer.lock().await;
        let mut cache = self.cache.lock().await;
        conn.execute("BEGIN IMMEDIATE").await?;
        let result = async {
            cache.sync(&mut conn).await?;
            let mut tx = SqliteBatch { conn: &mut conn, cache: &mut cache, indexed_seq: 0 };
            let plan = run_batch(&mut tx, requests, now, allow_system).await?;
            let backlog = plan.head.map(|h| h.seq - tx.indexed_seq).unwrap_or(0);
            Ok::<_, LedgerError>((plan, backlog))
        }
        .await;
        let (plan, backlog) = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                cache.accounts.clear();
                return Err(e);
            }
        };
        if let Err(e) = conn.execute("COMMIT").await {
            let _ = conn.execute("ROLLBACK").await;
            cache.accounts.clear();
            return Err(e.into());
        }
        // Committed: the cache now follows the new balances.
        for (id, balances) in &plan.account_updates {
            if let Some(account) = cache.accounts.get_mut(id) {
                account.balances = *balances;
            }
        }
        if backlog >= INDEX_CHUNK {
            index_in_transaction(&mut conn).await?;
        }
        Ok(plan.outcomes)
    }

    async fn catch_up_index(&self) -> Result<i64, LedgerError> {
        let mut conn = self.db.writer.lock().await;
        index_in_transaction(&mut conn).await
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
        let mut tx = self.db.readers.begin().await?;
        let head: HeadRow =
            sqlx::query_as("SELECT seq, hash, created_at FROM journal_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let head: Head = head.try_into()?;
        let (mut after, mut checked) = (0i64, 0u64);
        loop {
            let rows: Vec<TransferRow> =
                sqlx::query_as(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE seq > ? ORDER BY seq LIMIT ?"))
                    .bind(after)
                    .bind(SCAN_PAGE)
                    .fetch_all(&mut *tx)
                    .await?;
            let done = (rows.len() as i64) < SCAN_PAGE;
            for t in convert_all::<_, Transfer>(rows)? {
                after = t.seq;
                verifier.feed(&t);
                checked += 1;
            }
            progress(checked, head.seq);
            if done {
                break;
            }
        }
        let rows: Vec<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id")).fetch_all(&mut *tx).await?;
        tx.rollback().await?;
        Ok((convert_all(rows)?, head))
    }

    async fn counts(&self) -> Result<(i64, i64), LedgerError> {
        let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts").fetch_one(&self.db.readers).await?;
        let (seq,): (i64,) =
            sqlx::query_as("SELECT seq FROM journal_head WHERE id = 1").fetch_one(&self.db.readers).await?;
        Ok((accounts, seq))
    }
}
