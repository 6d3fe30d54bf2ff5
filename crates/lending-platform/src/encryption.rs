//! Sealing lending rows written before field encryption (migration 0011), at start-up after the
//! SQL migrations: decision documents and review notes with `key_version IS NULL` are sealed in
//! pages, each row only while still unsealed, so the step is idempotent and resumable.

use access::Vault;
use storage::Database;

use crate::store::{F_DECISION, F_REVIEW_NOTE};
use crate::{LendingPlatformError, Result};

const PAGE: i64 = 500;

/// Seals every unsealed decision and review note; returns how many rows it sealed.
pub async fn encrypt_existing(db: &Database, vault: &Vault) -> Result<u64> {
    let mut done = 0;
    loop {
        let rows: Vec<(String, String)> = storage::read!(db, |conn| sqlx::query_as(
            "SELECT id, decision FROM lending_decisions WHERE key_version IS NULL ORDER BY id LIMIT $1"
        )
        .bind(PAGE)
        .fetch_all(conn)
        .await)?;
        if rows.is_empty() {
            break;
        }
        let version = i64::from(vault.current_version());
        storage::transaction!(db, |tx| {
            async {
            for (id, decision) in &rows {
                sqlx::query(
                    "UPDATE lending_decisions SET decision = $2, key_version = $3 WHERE id = $1 AND key_version IS NULL",
                )
                .bind(id)
                .bind(vault.seal(F_DECISION, decision))
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
            Ok::<(), LendingPlatformError>(())
        }
        .await
        })?;
        done += rows.len() as u64;
    }
    loop {
        let rows: Vec<(String, Option<String>)> = storage::read!(db, |conn| {
            sqlx::query_as(
            "SELECT decision_id, note FROM lending_review_queue WHERE key_version IS NULL ORDER BY decision_id LIMIT $1"
        )
        .bind(PAGE)
        .fetch_all(conn)
        .await
        })?;
        if rows.is_empty() {
            break;
        }
        let version = i64::from(vault.current_version());
        storage::transaction!(db, |tx| {
            async {
            for (id, note) in &rows {
                sqlx::query(
                    "UPDATE lending_review_queue SET note = $2, key_version = $3 WHERE decision_id = $1 AND key_version IS NULL",
                )
                .bind(id)
                .bind(vault.seal_opt(F_REVIEW_NOTE, note.as_deref()))
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
            Ok::<(), LendingPlatformError>(())
        }
        .await
        })?;
        done += rows.len() as u64;
    }
    Ok(done)
}
