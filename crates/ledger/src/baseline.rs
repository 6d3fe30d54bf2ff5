//! The naive baseline the ledger benchmark compares against: one SQL transaction per transfer,
//! plain `UPDATE`s and an `INSERT`, the way a first CRUD implementation would do it. It lives in
//! its own tables (`naive_*`) so it never touches the real journal.

use sqlx::Executor;
use storage::Database;
use uuid::Uuid;

use crate::LedgerError;

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS naive_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS naive_transfers (id UUID PRIMARY KEY, debit BIGINT NOT NULL, credit BIGINT NOT NULL, \
     amount BIGINT NOT NULL, created_at BIGINT NOT NULL)",
];

/// Creates the baseline tables with `accounts` accounts holding `balance` each.
pub async fn setup(db: &Database, accounts: i64, balance: i64) -> Result<(), LedgerError> {
    match db {
        Database::Sqlite(db) => {
            let mut conn = db.writer.lock().await;
            for ddl in SCHEMA {
                conn.execute(ddl).await?;
            }
            conn.execute("BEGIN IMMEDIATE").await?;
            for id in 0..accounts {
                sqlx::query("INSERT OR REPLACE INTO naive_accounts (id, balance) VALUES (?, ?)")
                    .bind(id)
                    .bind(balance)
                    .execute(&mut *conn)
                    .await?;
            }
            conn.execute("COMMIT").await?;
        }
        Database::Postgres(pool) => {
            for ddl in SCHEMA {
                pool.execute(ddl).await?;
            }
            sqlx::query(
                "INSERT INTO naive_accounts (id, balance) SELECT g, $2 FROM generate_series(0, $1 - 1) g \
                 ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance",
            )
            .bind(accounts)
            .bind(balance)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// One transfer in its own transaction. Returns false when funds were insufficient.
pub async fn transfer(db: &Database, debit: i64, credit: i64, amount: i64, now: i64) -> Result<bool, LedgerError> {
    match db {
        Database::Sqlite(db) => {
            let mut conn = db.writer.lock().await;
            conn.execute("BEGIN IMMEDIATE").await?;
            let moved = sqlx::query("UPDATE naive_accounts SET balance = balance - ? WHERE id = ? AND balance >= ?")
                .bind(amount)
                .bind(debit)
                .bind(amount)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                == 1;
            if moved {
                sqlx::query("UPDATE naive_accounts SET balance = balance + ? WHERE id = ?")
                    .bind(amount)
                    .bind(credit)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO naive_transfers (id, debit, credit, amount, created_at) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(Uuid::now_v7())
                .bind(debit)
                .bind(credit)
                .bind(amount)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            conn.execute("COMMIT").await?;
            Ok(moved)
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query("UPDATE naive_accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
                .bind(amount)
                .bind(debit)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if moved {
                sqlx::query("UPDATE naive_accounts SET balance = balance + $1 WHERE id = $2")
                    .bind(amount)
                    .bind(credit)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO naive_transfers (id, debit, credit, amount, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(Uuid::now_v7())
                .bind(debit)
                .bind(credit)
                .bind(amount)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(moved)
        }
    }
}
