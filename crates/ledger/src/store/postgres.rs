//! PostgreSQL implementation of [`LedgerStore`].
//!
//! Writers serialise on a row lock of `journal_head` (`SELECT ... FOR UPDATE`), which keeps the
//! hash chain linear and makes the loaded account state authoritative for the whole batch,
//! even with several server processes on one database. Bulk writes use `UNNEST` arrays, so a
//! batch costs a handful of round trips whatever its size.

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Acquire;
use uuid::Uuid;

use super::*;

pub struct PgLedgerStore {
    pool: PgPool,
}

impl PgLedgerStore {
    pub fn new(pool: PgPool) -> Self {
        PgLedgerStore { pool }
    }
}

struct PgBatch<'c> {
    conn: &'c mut PgConnection,
}

async fn lock_head(conn: &mut PgConnection) -> Result<Head, LedgerError> {
    let row: HeadRow = sqlx::query_as("SELECT seq, hash, created_at FROM journal_head WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut *conn)
        .await?;
    row.try_into()
}

async fn accounts_by_ids(conn: &mut PgConnection, ids: &[AccountId]) -> Result<Vec<Account>, LedgerError> {
    let ids: Vec<Uuid> = ids.iter().map(|a| a.0).collect();
    let rows: Vec<AccountRow> = sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1)"))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    convert_all(rows)
}

#[async_trait]
impl BatchTx for PgBatch<'_> {
    async fn lock_head(&mut self) -> Result<Head, LedgerError> {
        lock_head(self.conn).await
    }

    async fn transfers_by_ids(&mut self, ids: &[TransferId]) -> Result<Vec<Transfer>, LedgerError> {
        let ids: Vec<Uuid> = ids.iter().map(|t| t.0).collect();
        let rows: Vec<TransferRow> =
            sqlx::query_as(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)"))
                .bind(ids)
                .fetch_all(&mut *self.conn)
                .await?;
        convert_all(rows)
    }

    async fn hold_statuses(&mut self, ids: &[TransferId]) -> Result<Vec<(TransferId, HoldStatus)>, LedgerError> {
        let ids: Vec<Uuid> = ids.iter().map(|t| t.0).collect();
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT transfer_id, status FROM pending_holds WHERE transfer_id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *self.conn)
                .await?;
        rows.into_iter()
            .map(|(id, s)| {
                HoldStatus::parse(&s)
                    .map(|status| (TransferId(id), status))
                    .ok_or_else(|| LedgerError::Corrupt(format!("hold {id}")))
            })
            .collect()
    }

    async fn accounts_by_ids(&mut self, ids: &[AccountId]) -> Result<Vec<AccountState>, LedgerError> {
        Ok(accounts_by_ids(self.conn, ids).await?.iter().map(Account::state).collect())
    }

    async fn write_plan(&mut self, plan: &Plan) -> Result<(), LedgerError> {
        let t = &plan.new_transfers;
        if !t.is_empty() {
            sqlx::query(&format!(
                "INSERT INTO transfers ({TRANSFER_COLUMNS}) SELECT * FROM UNNEST( \
                 $1::bigint[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::bigint[], $7::text[], \
                 $8::uuid[], $9::bigint[], $10::boolean[], $11::text[], $12::text[], $13::bigint[], $14::bytea[])"
            ))
            .bind(t.iter().map(|t| t.seq).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.id.0).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.debit_account_id.0).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.credit_account_id.0).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.amount).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.currency.code().to_string()).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.pending_id.map(|p| p.0)).collect::<Vec<_>>())
            .bind(t.iter().map(|t| i64::from(t.timeout_secs)).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.linked).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.reference.clone()).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.metadata.clone()).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.created_at).collect::<Vec<_>>())
            .bind(t.iter().map(|t| t.hash.to_vec()).collect::<Vec<_>>())
            .execute(&mut *self.conn)
            .await?;
        }
        if !plan.new_holds.is_empty() {
            sqlx::query(
                "INSERT INTO pending_holds (transfer_id, status, expires_at) \
                 SELECT id, 'pending', expires FROM UNNEST($1::uuid[], $2::bigint[]) AS u(id, expires)",
            )
            .bind(plan.new_holds.iter().map(|(id, _)| id.0).collect::<Vec<_>>())
            .bind(plan.new_holds.iter().map(|(_, e)| *e).collect::<Vec<_>>())
            .execute(&mut *self.conn)
            .await?;
        }
        if !plan.hold_updates.is_empty() {
            sqlx::query(
                "UPDATE pending_holds SET status = u.status FROM UNNEST($1::uuid[], $2::text[]) AS u(id, status) \
                 WHERE pending_holds.transfer_id = u.id",
            )
            .bind(plan.hold_updates.iter().map(|(id, _)| id.0).collect::<Vec<_>>())
            .bind(plan.hold_updates.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>())
            .execute(&mut *self.conn)
            .await?;
        }
        if !plan.account_updates.is_empty() {
            let u = &plan.account_updates;
            sqlx::query(
                "UPDATE accounts SET debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp, \
                 credits_posted = u.cpo FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
                 AS u(id, dp, dpo, cp, cpo) WHERE accounts.id = u.id",
            )
            .bind(u.iter().map(|(id, _)| id.0).collect::<Vec<_>>())
            .bind(u.iter().map(|(_, b)| b.debits_pending).collect::<Vec<_>>())
            .bind(u.iter().map(|(_, b)| b.debits_posted).collect::<Vec<_>>())
            .bind(u.iter().map(|(_, b)| b.credits_pending).collect::<Vec<_>>())
            .bind(u.iter().map(|(_, b)| b.credits_posted).collect::<Vec<_>>())
            .execute(&mut *self.conn)
            .await?;
        }
        if let Some(head) = plan.head {
            sqlx::query("UPDATE journal_head SET seq = $1, hash = $2, created_at = $3 WHERE id = 1")
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
impl LedgerStore for PgLedgerStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn open_accounts(&self, requests: &[NewAccount], now: i64) -> Result<Vec<(Account, bool)>, LedgerError> {
        let accounts: Vec<Account> = requests.iter().map(|r| new_account(r, now)).collect::<Result<_, _>>()?;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut out = Vec::with_capacity(accounts.len());
        for (account, request) in accounts.into_iter().zip(requests) {
            let inserted = sqlx::query(&format!(
                "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, 0, 0, $12) \
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
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                out.push((account, true));
            } else {
                let found = accounts_by_ids(&mut tx, &[account.id])
                    .await?
                    .pop()
                    .ok_or(LedgerError::AccountConflict(account.id))?;
                if !found.matches(request)
                    || out.iter().any(|(a, created): &(Account, bool)| *created && a.id == found.id)
                {
                    return Err(LedgerError::AccountConflict(account.id));
                }
                out.push((found, false));
            }
        }
        if let Some(entry) = storage::audit::next_entry() {
            entry.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn set_account_status(&self, id: AccountId, to: AccountStatus) -> Result<Account, LedgerError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        lock_head(&mut tx).await?;
        let mut account = accounts_by_ids(&mut tx, &[id]).await?.pop().ok_or(LedgerError::AccountNotFound(id))?;
        check_status_change(&account, to)?;
        sqlx::query("UPDATE accounts SET status = $1 WHERE id = $2")
            .bind(to.as_str())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if let Some(entry) = storage::audit::next_entry() {
            entry.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        account.status = to;
        Ok(account)
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, LedgerError> {
        let row: Option<AccountRow> = sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Account::try_from).transpose()
    }

    async fn list_accounts(&self, after: Option<AccountId>, limit: u32) -> Result<Vec<Account>, LedgerError> {
        let rows: Vec<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > $1 ORDER BY id LIMIT $2"))
                .bind(after.map(|a| a.0).unwrap_or(Uuid::nil()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        convert_all(rows)
    }

    async fn customer_accounts(&self, owners: &[String]) -> Result<Vec<Account>, LedgerError> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE owner_type = 'customer' AND owner_id = ANY($1) ORDER BY id"
        ))
        .bind(owners)
        .fetch_all(&self.pool)
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
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let plan = {
            let mut batch = PgBatch { conn: &mut tx };
            run_batch(&mut batch, &requests, now, allow_system).await?
        };
        if let Some(along) = along {
            for statement in along(&plan.outcomes) {
                let changed = statement.query().execute(&mut *tx).await?.rows_affected();
                storage::check_rows(&statement, changed)?;
            }
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }

    async fn catch_up_index(&self) -> Result<i64, LedgerError> {
        Ok(0)
    }

    async fn due_holds(&self, now: i64, limit: u32) -> Result<Vec<TransferId>, LedgerError> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT transfer_id FROM pending_holds WHERE status = 'pending' AND expires_at IS NOT NULL \
             AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| TransferId(id)).collect())
    }

    async fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, LedgerError> {
        let row: Option<TransferRow> =
            sqlx::query_as(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        row.map(Transfer::try_from).transpose()
    }

    async fn hold_status(&self, id: TransferId) -> Result<Option<HoldStatus>, LedgerError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT status FROM pending_holds WHERE transfer_id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
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
        let rows: Vec<TransferRow> = sqlx::query_as(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM ( \
               (SELECT * FROM transfers WHERE debit_account_id = $1 AND seq > $2 AND created_at <= $3 ORDER BY seq LIMIT $4) \
               UNION ALL \
               (SELECT * FROM transfers WHERE credit_account_id = $1 AND seq > $2 AND created_at <= $3 ORDER BY seq LIMIT $4) \
             ) AS t ORDER BY seq LIMIT $4"
        ))
        .bind(id.0)
        .bind(after_seq)
        .bind(until.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        convert_all(rows)
    }

    async fn journal_page(&self, after_seq: i64, limit: u32) -> Result<Vec<Transfer>, LedgerError> {
        let rows: Vec<TransferRow> =
            sqlx::query_as(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE seq > $1 ORDER BY seq LIMIT $2"))
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        convert_all(rows)
    }

    async fn head(&self) -> Result<Head, LedgerError> {
        let row: HeadRow =
            sqlx::query_as("SELECT seq, hash, created_at FROM journal_head WHERE id = 1").fetch_one(&self.pool).await?;
        row.try_into()
    }

    async fn verify_snapshot(
        &self,
        verifier: &mut crate::journal::Verifier,
        progress: &mut (dyn FnMut(u64, i64) + Send),
    ) -> Result<(Vec<Account>, Head), LedgerError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let head: HeadRow =
            sqlx::query_as("SELECT seq, hash, created_at FROM journal_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let head: Head = head.try_into()?;
        let (mut after, mut checked) = (0i64, 0u64);
        loop {
            let rows: Vec<TransferRow> = sqlx::query_as(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
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
        let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts").fetch_one(&self.pool).await?;
        let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM journal_head WHERE id = 1").fetch_one(&self.pool).await?;
        Ok((accounts, seq))
    }
}
