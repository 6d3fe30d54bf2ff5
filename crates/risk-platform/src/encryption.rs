//! Bringing a risk database written before field encryption (migration 0011) in line, at
//! start-up after the SQL migrations; idempotent and resumable.
//!
//! * `risk_list_entries` rows with `key_version IS NULL`: an ID number or phone in clear in
//!   `value` becomes its blind index token, the clear value moves sealed into `display`.
//! * `risk_decisions.event`: older versions stored unkeyed `sha256:<hex>` digests of ID numbers
//!   and phones (brute-forceable for phone numbers). They become the keyed blind index, which
//!   is computed from the same SHA-256 digest ([`access::Vault::blind_index_of_digest`]), so
//!   the graph rebuilt from the log still links them to new events. The pass walks the log in
//!   id order and records its position in `encryption_steps`, so a restart resumes it.

use access::Vault;
use risk::ListSubject;
use storage::Database;

use crate::error::Result;
use crate::service::sensitive_domain;
use crate::store::{parse_enum, F_DISPLAY};

/// Rows per page.
const PAGE: i64 = 1_000;
const STEP_DECISIONS: &str = "risk_decisions.event";
/// Prefix of the unkeyed digests older versions stored.
const OLD_DIGEST_PREFIX: &str = "sha256:";

/// Runs both steps; returns how many rows changed.
pub async fn encrypt_existing(db: &Database, vault: &Vault) -> Result<u64> {
    Ok(seal_list_entries(db, vault).await? + rekey_decision_log(db, vault).await?)
}

async fn seal_list_entries(db: &Database, vault: &Vault) -> Result<u64> {
    let mut done = 0;
    loop {
        type Row = (String, String, String, String, i64, Option<i64>);
        let rows: Vec<Row> = storage::read!(db, |conn| sqlx::query_as(
            "SELECT kind, subject, value, reason, added_at, expires_at FROM risk_list_entries \
             WHERE key_version IS NULL LIMIT $1"
        )
        .bind(PAGE)
        .fetch_all(conn)
        .await)?;
        if rows.is_empty() {
            return Ok(done);
        }
        let version = i64::from(vault.current_version());
        storage::transaction!(db, |tx| {
            async {
            for (kind, subject, value, reason, added_at, expires_at) in &rows {
                let parsed: ListSubject = parse_enum(subject)?;
                match sensitive_domain(parsed).filter(|_| !risk::is_pseudonym(value)) {
                    Some(domain) => {
                        let token = vault.blind_token(domain, value);
                        // An entry for the same value stored since (as a token) wins.
                        sqlx::query(
                            "DELETE FROM risk_list_entries WHERE kind = $1 AND subject = $2 AND value = $3 \
                             AND key_version IS NULL",
                        )
                        .bind(kind)
                        .bind(subject)
                        .bind(value)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "INSERT INTO risk_list_entries (kind, subject, value, reason, added_at, expires_at, display, \
                             key_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kind, subject, value) DO NOTHING",
                        )
                        .bind(kind)
                        .bind(subject)
                        .bind(&token)
                        .bind(reason)
                        .bind(added_at)
                        .bind(expires_at)
                        .bind(vault.seal(F_DISPLAY, value))
                        .bind(version)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query(
                            "UPDATE risk_list_entries SET key_version = $4 WHERE kind = $1 AND subject = $2 AND value = $3",
                        )
                        .bind(kind)
                        .bind(subject)
                        .bind(value)
                        .bind(version)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            Ok::<(), crate::RiskPlatformError>(())
        }
        .await
        })?;
        done += rows.len() as u64;
    }
}

/// The decision log's event with digests (or clear values) of ID number and phone replaced by
/// blind index tokens; `None` when nothing changes.
fn rekeyed_event(vault: &Vault, text: &str) -> Option<String> {
    let mut event: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut changed = false;
    for (field, domain) in [("id_number", "id_number"), ("phone", "phone")] {
        let Some(value) = event.get(field).and_then(|v| v.as_str()).map(str::to_string) else { continue };
        if risk::is_pseudonym(&value) {
            continue;
        }
        let token = match value.strip_prefix(OLD_DIGEST_PREFIX).and_then(|h| hex::decode(h).ok()) {
            Some(digest) => vault.blind_token_of_digest(domain, &digest),
            None => vault.blind_token(domain, &value),
        };
        event[field] = serde_json::Value::String(token);
        changed = true;
    }
    changed.then(|| event.to_string())
}

async fn rekey_decision_log(db: &Database, vault: &Vault) -> Result<u64> {
    let step: Option<(String, Option<i64>)> =
        storage::read!(db, |conn| sqlx::query_as("SELECT cursor, finished_at FROM encryption_steps WHERE step = $1")
            .bind(STEP_DECISIONS)
            .fetch_optional(conn)
            .await)?;
    let mut cursor = match step {
        Some((_, Some(_))) => return Ok(0),
        Some((cursor, None)) => cursor,
        None => String::new(),
    };
    let mut done = 0;
    loop {
        let rows: Vec<(String, String)> = storage::read!(db, |conn| sqlx::query_as(
            "SELECT id, event FROM risk_decisions WHERE id > $1 ORDER BY id LIMIT $2"
        )
        .bind(&cursor)
        .bind(PAGE)
        .fetch_all(conn)
        .await)?;
        let last = rows.last().map(|(id, _)| id.clone());
        let changes: Vec<(String, String)> =
            rows.iter().filter_map(|(id, event)| rekeyed_event(vault, event).map(|e| (id.clone(), e))).collect();
        let finished = rows.len() < PAGE as usize;
        let next = last.unwrap_or_else(|| cursor.clone());
        let now = chrono::Utc::now().timestamp_micros();
        storage::transaction!(db, |tx| async {
            for (id, event) in &changes {
                sqlx::query("UPDATE risk_decisions SET event = $2 WHERE id = $1")
                    .bind(id)
                    .bind(event)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO encryption_steps (step, cursor, finished_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (step) DO UPDATE SET cursor = excluded.cursor, finished_at = excluded.finished_at",
            )
            .bind(STEP_DECISIONS)
            .bind(&next)
            .bind(finished.then_some(now))
            .execute(&mut *tx)
            .await?;
            Ok::<(), crate::RiskPlatformError>(())
        }
        .await)?;
        done += changes.len() as u64;
        cursor = next;
        if finished {
            return Ok(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[tokio::test]
    async fn old_digests_become_the_keyed_index_of_the_same_value() {
        let db = storage::testing::sqlite().await;
        let vault = Vault::for_tests(&db.db).await;
        let digest = hex::encode(sha2::Sha256::digest(b"+8613800000001"));
        let old = format!(r#"{{"phone":"sha256:{digest}","id_number":"110105194912310029","customer_id":"c"}}"#);
        let new: serde_json::Value = serde_json::from_str(&rekeyed_event(&vault, &old).unwrap()).unwrap();
        assert_eq!(new["phone"], vault.blind_token("phone", "+8613800000001"));
        assert_eq!(new["id_number"], vault.blind_token("id_number", "110105194912310029"));
        assert_eq!(rekeyed_event(&vault, &new.to_string()), None, "idempotent");
    }
}
