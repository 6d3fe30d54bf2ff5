//! The SQL of the process log (one text per query, `$N` placeholders, both backends).

use process::{Attributes, Event, ProcessEvent};
use serde::Serialize;
use storage::{Arg, Database, Statement};
use utoipa::ToSchema;

use crate::{ProcessPlatformError, Result};

/// The INSERT of `event`: run it in the transaction of the state change it records.
pub fn event_statement(event: &ProcessEvent) -> Statement {
    Statement::new(
        "INSERT INTO process_events (process, case_id, activity, at, resource, attributes) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Arg::Text(event.process.as_str().to_string()),
            Arg::Text(event.case_id.clone()),
            Arg::Text(event.activity.as_str().to_string()),
            Arg::Int(event.at),
            Arg::Text(event.resource.clone()),
            Arg::Text(event.attributes_json()),
        ],
    )
    .expecting(1)
}

/// An imported log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct LogInfo {
    pub id: String,
    pub name: String,
    /// `csv` or `xes`.
    pub format: String,
    pub events: i64,
    pub cases: i64,
    /// UTC microseconds.
    pub imported_at: i64,
}

type EventRow = (String, String, i64, String, String);

fn event_from_row((case_id, activity, at, resource, attributes): EventRow) -> Result<Event> {
    let attributes: Attributes = serde_json::from_str(&attributes)?;
    Ok(Event { case_id, activity, at, resource, attributes })
}

/// Rows per multi-row INSERT of an import (7 values each).
const IMPORT_ROWS_PER_INSERT: usize = 500;

/// The stored logs.
#[derive(Clone)]
pub struct ProcessStore {
    db: Database,
}

impl ProcessStore {
    pub fn new(db: Database) -> Self {
        ProcessStore { db }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Events of `process` at or after `from` (UTC micros), in time then record order; more
    /// than `limit` is [`process::ProcessError::TooLarge`].
    pub async fn events(&self, process: &str, from: i64, limit: usize) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT case_id, activity, at, resource, attributes FROM process_events \
             WHERE process = $1 AND at >= $2 ORDER BY at, id LIMIT $3"
        )
        .bind(process)
        .bind(from)
        .bind(limit as i64 + 1)
        .fetch_all(conn)
        .await)?;
        check_limit(rows.len(), limit)?;
        rows.into_iter().map(event_from_row).collect()
    }

    /// Events of one case of `process`, in order.
    pub async fn case_events(&self, process: &str, case_id: &str) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT case_id, activity, at, resource, attributes FROM process_events \
             WHERE process = $1 AND case_id = $2 ORDER BY at, id LIMIT 10000"
        )
        .bind(process)
        .bind(case_id)
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(event_from_row).collect()
    }

    /// Events per process (all time).
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT process, COUNT(*) FROM process_events GROUP BY process ORDER BY process"
        )
        .fetch_all(conn)
        .await)?)
    }

    /// Stores an imported log whole, in one transaction.
    pub async fn insert_log(&self, info: &LogInfo, events: &[Event]) -> Result<()> {
        let mut statements = vec![Statement::new(
            "INSERT INTO process_logs (id, name, format, events, cases, imported_at) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Arg::Text(info.id.clone()),
                Arg::Text(info.name.clone()),
                Arg::Text(info.format.clone()),
                Arg::Int(info.events),
                Arg::Int(info.cases),
                Arg::Int(info.imported_at),
            ],
        )
        .expecting(1)];
        for (chunk_no, chunk) in events.chunks(IMPORT_ROWS_PER_INSERT).enumerate() {
            let mut sql = String::from(
                "INSERT INTO process_log_events (log_id, seq, case_id, activity, at, resource, attributes) VALUES ",
            );
            let mut args = Vec::with_capacity(chunk.len() * 7);
            for (i, e) in chunk.iter().enumerate() {
                let b = i * 7;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                ));
                args.extend([
                    Arg::Text(info.id.clone()),
                    Arg::Int((chunk_no * IMPORT_ROWS_PER_INSERT + i) as i64),
                    Arg::Text(e.case_id.clone()),
                    Arg::Text(e.activity.clone()),
                    Arg::Int(e.at),
                    Arg::Text(e.resource.clone()),
                    Arg::Text(serde_json::to_string(&e.attributes)?),
                ]);
            }
            statements.push(Statement::new(sql, args).expecting(chunk.len() as u64));
        }
        storage::execute_all(&self.db, &statements).await?;
        Ok(())
    }

    pub async fn logs(&self) -> Result<Vec<LogInfo>> {
        Ok(storage::read!(&self.db, |conn| {
            sqlx::query_as(
            "SELECT id, name, format, events, cases, imported_at FROM process_logs ORDER BY imported_at DESC, id LIMIT 1000"
        )
        .fetch_all(conn)
        .await
        })?)
    }

    pub async fn log(&self, id: &str) -> Result<Option<LogInfo>> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT id, name, format, events, cases, imported_at FROM process_logs WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(conn)
        .await)?)
    }

    /// Events of imported log `id` at or after `from`, in time then file order.
    pub async fn log_events(&self, id: &str, from: i64, limit: usize) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT case_id, activity, at, resource, attributes FROM process_log_events \
             WHERE log_id = $1 AND at >= $2 ORDER BY at, seq LIMIT $3"
        )
        .bind(id)
        .bind(from)
        .bind(limit as i64 + 1)
        .fetch_all(conn)
        .await)?;
        check_limit(rows.len(), limit)?;
        rows.into_iter().map(event_from_row).collect()
    }
}

fn check_limit(found: usize, limit: usize) -> Result<()> {
    if found > limit {
        return Err(ProcessPlatformError::Process(process::ProcessError::TooLarge { events: found, limit }));
    }
    Ok(())
}

/// Rows per multi-row INSERT of [`event_statements`] (6 values each).
const EVENTS_PER_INSERT: usize = 500;

/// The INSERTs of many events as few multi-row statements (generated history, bulk loads); each
/// row is exactly what [`event_statement`] inserts.
pub fn event_statements(events: &[ProcessEvent]) -> Vec<Statement> {
    events
        .chunks(EVENTS_PER_INSERT)
        .map(|chunk| {
            let mut sql = String::from(
                "INSERT INTO process_events (process, case_id, activity, at, resource, attributes) VALUES ",
            );
            let mut args = Vec::with_capacity(chunk.len() * 6);
            for (i, e) in chunk.iter().enumerate() {
                let b = i * 6;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
                args.extend(event_statement(e).args);
            }
            Statement::new(sql, args).expecting(chunk.len() as u64)
        })
        .collect()
}
