//! Sealing a database written before field encryption (migration 0011), in place.
//!
//! SQL migrations cannot encrypt, so rows written before 0011 keep `key_version = NULL` and
//! personal data in clear, and `id_number_hash` holds an unkeyed SHA-256. [`encrypt_existing`]
//! runs at start-up after the SQL migrations: it seals such rows in pages of [`PAGE`], each row
//! updated only while it is still unsealed, so it is idempotent, resumable after a crash (the
//! `NULL` marker is the progress) and safe beside a running server.

use crate::store::{seal_pii, ENCRYPTED_TABLES, F_FROM, F_NOTE, F_TO};
use crate::PlatformError;
use access::Vault;
use storage::Database;

/// Rows sealed per transaction.
pub const PAGE: i64 = 500;

/// Seals every unsealed row of `customers` and `customer_history`; returns how many rows it
/// sealed (0 on an already encrypted database). `progress(done)` is called after each page.
pub async fn encrypt_existing(
    db: &Database,
    vault: &Vault,
    mut progress: impl FnMut(u64),
) -> Result<u64, PlatformError> {
    let mut done = 0u64;
    loop {
        type Row = (String, String, String, String, Option<String>);
        let rows: Vec<Row> = storage::read!(db, |conn| {
            sqlx::query_as(
            "SELECT id, name, id_document_type, id_number, phone FROM customers WHERE key_version IS NULL ORDER BY id LIMIT $1"
        )
        .bind(PAGE)
        .fetch_all(conn)
        .await
        })?;
        if rows.is_empty() {
            break;
        }
        let n = rows.len() as u64;
        storage::transaction!(db, |tx| {
            async {
            for (id, name, doc_type, number, phone) in &rows {
                let s = seal_pii(vault, name, doc_type, number, phone.as_deref());
                sqlx::query(
                    "UPDATE customers SET name = $2, id_number = $3, phone = $4, id_number_hash = $5, phone_index = $6, \
                     key_version = $7 WHERE id = $1 AND key_version IS NULL",
                )
                .bind(id)
                .bind(&s.name)
                .bind(&s.id_number)
                .bind(&s.phone)
                .bind(&s.document_index)
                .bind(&s.phone_index)
                .bind(s.key_version)
                .execute(&mut *tx)
                .await?;
            }
            Ok::<(), PlatformError>(())
        }
        .await
        })?;
        done += n;
        progress(done);
    }
    loop {
        type Row = (i64, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> = storage::read!(db, |conn| {
            sqlx::query_as(
            "SELECT id, from_value, to_value, note FROM customer_history WHERE key_version IS NULL ORDER BY id LIMIT $1"
        )
        .bind(PAGE)
        .fetch_all(conn)
        .await
        })?;
        if rows.is_empty() {
            break;
        }
        let n = rows.len() as u64;
        let version = i64::from(vault.current_version());
        storage::transaction!(db, |tx| async {
            for (id, from, to, note) in &rows {
                sqlx::query(
                    "UPDATE customer_history SET from_value = $2, to_value = $3, note = $4, key_version = $5 \
                     WHERE id = $1 AND key_version IS NULL",
                )
                .bind(id)
                .bind(vault.seal_opt(F_FROM, from.as_deref()))
                .bind(vault.seal_opt(F_TO, to.as_deref()))
                .bind(vault.seal_opt(F_NOTE, note.as_deref()))
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
            Ok::<(), PlatformError>(())
        }
        .await)?;
        done += n;
        progress(done);
    }
    Ok(done)
}

/// The tables `rotate-key` re-encrypts for this platform.
pub fn encrypted_tables() -> &'static [access::EncryptedTable] {
    ENCRYPTED_TABLES
}
