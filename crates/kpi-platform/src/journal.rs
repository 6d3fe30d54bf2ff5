//! The journal read incrementally: every entry is counted once, in seq order, into
//! `kpi_channel_hours` (transactions with a channel, digital ones) and `kpi_customer_activity`
//! (the last time per quarter a customer debited one of its deposit accounts). The position
//! moves in the same transaction as the counts, guarded by its old value, so two nodes
//! refreshing at once never count an entry twice (the loser's transaction rolls back).

use std::collections::HashMap;

use storage::{Arg, Database, Statement, UnitOfWorkError};

use crate::Result;

/// Journal entries read per transaction.
const PAGE: i64 = 5_000;

/// One journal entry as the counters need it.
type Row = (i64, String, Option<String>, i64, Option<String>);

/// Counts every journal entry after the stored position; returns how many were read.
pub async fn catch_up(db: &Database) -> Result<u64> {
    let mut total = 0;
    loop {
        let position: i64 =
            storage::read!(db, |conn| sqlx::query_scalar("SELECT position FROM kpi_cursors WHERE name = 'journal'")
                .fetch_one(conn)
                .await)?;
        // The debit side's owner when it is a customer's deposit account: the customer
        // initiated the entry.
        let rows: Vec<Row> = storage::read!(db, |conn| sqlx::query_as(
            "SELECT t.seq, t.kind, t.metadata, t.created_at, a.owner_id FROM transfers t \
             LEFT JOIN accounts a ON a.id = t.debit_account_id AND a.owner_type = 'customer' AND a.kind = 'liability' \
             WHERE t.seq > $1 ORDER BY t.seq LIMIT $2"
        )
        .bind(position)
        .bind(PAGE)
        .fetch_all(conn)
        .await)?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(total);
        };
        let statements = count(position, last, &rows);
        match storage::execute_all(db, &statements).await {
            Ok(()) => {}
            // Another node counted these entries first: read on from where it got to.
            Err(UnitOfWorkError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        total += rows.len() as u64;
        if (rows.len() as i64) < PAGE {
            return Ok(total);
        }
    }
}

/// The statements that count `rows` and move the position from `from` to `to`.
fn count(from: i64, to: i64, rows: &[Row]) -> Vec<Statement> {
    let mut hours: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut activity: HashMap<(String, i64), i64> = HashMap::new();
    for (_, kind, metadata, created_at, owner) in rows {
        // Second phases (post, void, expire) complete a transaction already counted.
        if kind != "posted" && kind != "pending" {
            continue;
        }
        let channel = metadata
            .as_deref()
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .and_then(|m| m.get("channel").and_then(|c| c.as_str()).map(str::to_string));
        if let Some(channel) = channel {
            let h = hours.entry(kpi::hour_bucket(*created_at)).or_default();
            h.0 += 1;
            if kpi::is_digital_channel(&channel) {
                h.1 += 1;
            }
        }
        if let Some(owner) = owner {
            let last = activity.entry((owner.clone(), kpi::quarter_start(*created_at, 0))).or_insert(*created_at);
            *last = (*last).max(*created_at);
        }
    }
    let mut out = vec![Statement::new(
        "UPDATE kpi_cursors SET position = $1, updated_at = $2 WHERE name = 'journal' AND position = $3",
        vec![Arg::Int(to), Arg::Int(rows.last().map_or(0, |r| r.3)), Arg::Int(from)],
    )
    .expecting(1)];
    for (hour, (transactions, digital)) in hours {
        out.push(Statement::new(
            "INSERT INTO kpi_channel_hours (hour, transactions, digital) VALUES ($1, $2, $3) \
             ON CONFLICT (hour) DO UPDATE SET transactions = kpi_channel_hours.transactions + excluded.transactions, \
             digital = kpi_channel_hours.digital + excluded.digital",
            vec![Arg::Int(hour), Arg::Int(transactions), Arg::Int(digital)],
        ));
    }
    for ((customer, quarter), at) in activity {
        out.push(Statement::new(
            "INSERT INTO kpi_customer_activity (customer_id, quarter, last_active_at) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id, quarter) DO UPDATE SET last_active_at = CASE \
             WHEN excluded.last_active_at > kpi_customer_activity.last_active_at THEN excluded.last_active_at \
             ELSE kpi_customer_activity.last_active_at END",
            vec![Arg::Text(customer), Arg::Int(quarter), Arg::Int(at)],
        ));
    }
    out
}
