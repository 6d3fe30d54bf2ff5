//! The decision log: group commit, acknowledged only once durable.
//!
//! A decision is computed in memory (lists, velocity, graph, model, rules: tens of
//! microseconds), then handed to one writer over a bounded queue together with a one-shot
//! reply. The writer drains whatever has queued up (up to [`LOG_BATCH`]) and writes it in
//! **one** transaction, then answers every waiting request. The caller answers only after that
//! commit, so an acknowledged decision (and the review case it opened) is never lost, not even
//! on power loss (SQLite `synchronous=FULL`); under load, many decisions share one fsync, so the
//! log costs about one commit of latency instead of one commit per decision. If the write fails
//! the request fails: nothing is acknowledged that is not stored.
//!
//! The queue holds at most [`LOG_QUEUE`] decisions. When it is full the decision is refused at
//! once ([`crate::RiskPlatformError::Overloaded`], HTTP 503 with `Retry-After`) instead of
//! waiting behind work the writer cannot finish in time: accepted requests keep their latency.

use storage::Database;
use tokio::sync::{mpsc, oneshot};

use crate::store::DecisionView;

/// Most decisions written in one transaction.
pub const LOG_BATCH: usize = 1024;

/// Most decisions waiting for the writer; beyond this, decisions are shed.
pub const LOG_QUEUE: usize = LOG_BATCH * 8;

pub(crate) struct LogItem {
    pub view: DecisionView,
    pub event_json: String,
    pub ack: oneshot::Sender<Result<(), String>>,
}

const INSERT_DECISION: &str = "INSERT INTO risk_decisions (id, event_id, customer_id, kind, outcome, score, \
    base_score, model_probability, reasons, features, event, rule_set_version, model, case_id, transfer_id, \
    elapsed_micros, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";
const INSERT_CASE: &str = "INSERT INTO risk_cases (id, decision_id, event_id, customer_id, transfer_id, score, \
    reasons, features, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// One log row's values in the column order of [`INSERT_DECISION`] / [`INSERT_CASE`].
struct LogRow<'a> {
    item: &'a LogItem,
    id: String,
    kind: &'static str,
    outcome: &'static str,
    reasons: String,
    features: String,
    transfer_id: Option<String>,
}

impl<'a> LogRow<'a> {
    fn new(item: &'a LogItem) -> Self {
        let v = &item.view;
        LogRow {
            item,
            id: v.id.to_string(),
            kind: v.kind.as_str(),
            outcome: v.outcome.as_str(),
            reasons: serde_json::to_string(&v.reasons).unwrap_or_default(),
            features: serde_json::to_string(&v.features).unwrap_or_default(),
            transfer_id: v.transfer_id.map(|t| t.to_string()),
        }
    }
}

/// The `case_opened` process event of a decision that opened a review case.
fn case_opened(v: &DecisionView) -> Option<storage::Statement> {
    let case = v.case_id?;
    let event = process::ProcessEvent::new(
        process::Activity::CaseOpened,
        case.to_string(),
        v.decided_at,
        process::event::SYSTEM,
    )
    .with(process::Attributes::default().product(v.kind.as_str()).outcome(v.outcome.as_str()));
    Some(process_platform::event_statement(&event))
}

/// PostgreSQL: one transaction per batch through the pool.
async fn write_batch_pg(pool: &sqlx::PgPool, items: &[LogItem]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for item in items {
        let (r, v) = (LogRow::new(item), &item.view);
        sqlx::query(INSERT_DECISION)
            .bind(&r.id)
            .bind(&v.event_id)
            .bind(&v.customer_id)
            .bind(r.kind)
            .bind(r.outcome)
            .bind(v.score)
            .bind(v.base_score)
            .bind(v.model_probability)
            .bind(&r.reasons)
            .bind(&r.features)
            .bind(&r.item.event_json)
            .bind(v.rule_set_version.map(i64::from))
            .bind(&v.model)
            .bind(v.case_id.map(|c| c as i64))
            .bind(&r.transfer_id)
            .bind(v.elapsed_micros as i64)
            .bind(v.decided_at)
            .execute(&mut *tx)
            .await?;
        if let Some(case) = v.case_id {
            sqlx::query(INSERT_CASE)
                .bind(case as i64)
                .bind(&r.id)
                .bind(&v.event_id)
                .bind(&v.customer_id)
                .bind(&r.transfer_id)
                .bind(v.score)
                .bind(&r.reasons)
                .bind(&r.features)
                .bind(v.decided_at)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(opened) = case_opened(v) {
            opened.query().execute(&mut *tx).await?;
        }
    }
    tx.commit().await
}

/// SQLite: the log has its own rusqlite connection on its own thread, like the ledger's journal
/// writer: prepared statements stay cached and no value crosses an async channel, which keeps
/// the per-decision cost of the log in the microseconds under load.
fn write_batch_sqlite(conn: &mut rusqlite::Connection, items: &[LogItem]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut decision = tx.prepare_cached(INSERT_DECISION)?;
        let mut case_row = tx.prepare_cached(INSERT_CASE)?;
        for item in items {
            let (r, v) = (LogRow::new(item), &item.view);
            decision.execute(rusqlite::params![
                r.id,
                v.event_id,
                v.customer_id,
                r.kind,
                r.outcome,
                v.score,
                v.base_score,
                v.model_probability,
                r.reasons,
                r.features,
                r.item.event_json,
                v.rule_set_version.map(i64::from),
                v.model,
                v.case_id.map(|c| c as i64),
                r.transfer_id,
                v.elapsed_micros as i64,
                v.decided_at,
            ])?;
            if let Some(case) = v.case_id {
                case_row.execute(rusqlite::params![
                    case as i64,
                    r.id,
                    v.event_id,
                    v.customer_id,
                    r.transfer_id,
                    v.score,
                    r.reasons,
                    r.features,
                    v.decided_at,
                ])?;
            }
            if let Some(opened) = case_opened(v) {
                opened.execute_sqlite(&tx).map_err(|e| match e {
                    storage::SqliteStatementError::Sqlite(e) => e,
                    other => rusqlite::Error::ToSqlConversionFailure(Box::new(other)),
                })?;
            }
        }
    }
    tx.commit()
}

/// Takes whatever else has queued up behind `first`, up to [`LOG_BATCH`].
fn fill_batch(rx: &mut mpsc::Receiver<LogItem>, first: LogItem, batch: &mut Vec<LogItem>) {
    batch.push(first);
    while batch.len() < LOG_BATCH {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
}

/// Answers every request of the batch with the write's result (logging a failure once).
fn finish_batch(batch: &mut Vec<LogItem>, result: Result<(), String>) {
    if let Err(e) = &result {
        let unacknowledged = batch.iter().filter(|i| i.ack.is_closed()).count();
        tracing::error!(error = %e, decisions = batch.len(), already_answered = unacknowledged,
            "decision log write failed twice; these decisions are not stored");
    }
    for item in batch.drain(..) {
        let _ = item.ack.send(result.clone());
    }
}

/// A decision log commit slower than this is logged (it delays every request in its batch).
const SLOW_LOG_COMMIT: std::time::Duration = std::time::Duration::from_millis(50);

const LOG_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts the writer and returns its queue.
pub(crate) fn spawn_log_writer(db: Database) -> mpsc::Sender<LogItem> {
    let (tx, mut rx) = mpsc::channel::<LogItem>(LOG_QUEUE);
    match db {
        Database::Sqlite(sqlite) => {
            let path = sqlite.path.clone();
            let spawned = std::thread::Builder::new().name("decision-log".into()).spawn(move || {
                let mut conn: Option<rusqlite::Connection> = None;
                let write = |conn: &mut Option<rusqlite::Connection>, batch: &[LogItem]| {
                    let c = match conn {
                        Some(c) => c,
                        None => conn.insert(storage::open_sqlite_connection(&path)?),
                    };
                    write_batch_sqlite(c, batch)
                };
                let mut batch = Vec::with_capacity(LOG_BATCH);
                while let Some(first) = rx.blocking_recv() {
                    fill_batch(&mut rx, first, &mut batch);
                    let started = std::time::Instant::now();
                    let mut result = write(&mut conn, &batch).map_err(|e| e.to_string());
                    if started.elapsed() > SLOW_LOG_COMMIT {
                        tracing::warn!(
                            decisions = batch.len(),
                            millis = started.elapsed().as_millis() as u64,
                            "slow decision log commit"
                        );
                    }
                    if result.is_err() {
                        conn = None;
                        std::thread::sleep(LOG_RETRY_PAUSE);
                        result = write(&mut conn, &batch).map_err(|e| e.to_string());
                    }
                    finish_batch(&mut batch, result);
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start the decision log thread; decisions will fail");
            }
        }
        Database::Postgres(pool) => {
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(LOG_BATCH);
                while let Some(first) = rx.recv().await {
                    fill_batch(&mut rx, first, &mut batch);
                    let mut result = write_batch_pg(&pool, &batch).await.map_err(|e| e.to_string());
                    if result.is_err() {
                        tokio::time::sleep(LOG_RETRY_PAUSE).await;
                        result = write_batch_pg(&pool, &batch).await.map_err(|e| e.to_string());
                    }
                    finish_batch(&mut batch, result);
                }
            });
        }
    }
    tx
}
