//! The risk engine as a service: configuration, state loaded at start-up, the decision log and
//! the SQL behind the risk endpoints (both dialects).
//!
//! ## Decision log: group commit, acknowledged only once durable
//! A decision is computed in memory (lists, velocity, graph, model, rules: tens of
//! microseconds), then handed to one writer task over a channel together with a one-shot reply.
//! The writer drains whatever has queued up (up to [`LOG_BATCH`]) and writes it in **one**
//! transaction, then answers every waiting request. The HTTP response is sent only after that
//! commit, so an acknowledged decision (and the review case it opened) is never lost, not even
//! on power loss (SQLite `synchronous=FULL`); under load, many decisions share one fsync, so
//! the log costs about one commit of latency instead of one commit per decision. If the write
//! fails the request fails with 500: nothing is acknowledged that is not stored.
//!
//! `[risk] decision_log = "buffered"` trades that guarantee for latency on slow disks: the
//! response goes out as soon as the decision is queued, the same writer stores it a few
//! milliseconds later, and a failed write is retried and then reported at `error` level. A crash
//! can then lose the decisions of the last unfinished batch. Screened transfers always wait for
//! the durable write, whatever this setting says (the decision is part of the money movement's
//! audit trail).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use risk::{
    Channel, CustomerFlag, Decision, EngineConfig, FeatureVector, ListEntry, ListKind, ListSubject, RiskEngine,
    RiskEvent, RuleSet, SystemClock,
};
use serde::{Deserialize, Serialize};
use storage::Database;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::ApiError;

/// Most decisions written in one transaction.
pub const LOG_BATCH: usize = 1024;

/// `[risk]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Transfers posted to `POST /v1/transfers` whose `metadata.channel` is one of these are
    /// screened by the engine before they reach the ledger.
    pub screen_channels: Vec<Channel>,
    /// A transfer the engine sends to review is held (two-phase pending transfer) for at most
    /// this long; 0 = until an analyst resolves the case.
    pub review_hold_secs: u32,
    /// Model artefact name loaded at start-up (the latest version stored under that name).
    pub model: String,
    /// `durable` (default): answer after the decision is committed; `buffered`: answer at once.
    pub decision_log: DecisionLog,
    /// At start-up, decisions of the last this many days are replayed from the decision log into
    /// the relationship graph (and the last 30 days into the velocity counters), so a restart
    /// does not forget who shares a device with whom.
    pub graph_history_days: u32,
    /// How often (seconds) a running server looks for a newer model, another active rule set
    /// and changed list entries stored by another process or node; 0 = never.
    pub refresh_secs: u32,
}

/// When `POST /v1/risk/decisions` answers relative to the decision log write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionLog {
    #[default]
    Durable,
    Buffered,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            screen_channels: vec![Channel::Mobile, Channel::Web, Channel::OpenBanking],
            review_hold_secs: 86_400,
            model: risk::synthetic::GBDT_NAME.to_string(),
            decision_log: DecisionLog::Durable,
            graph_history_days: 90,
            refresh_secs: 10,
        }
    }
}

impl RiskConfig {
    /// Parses a comma-separated channel list (`DIGIBANK_RISK_SCREEN_CHANNELS`).
    pub fn parse_channels(text: &str) -> Result<Vec<Channel>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
                    format!("unknown channel {s:?}: use web, mobile, branch, atm, pos, open_banking or call_center")
                })
            })
            .collect()
    }
}

/// A stored decision as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// Decision id (UUID v7).
    pub id: Uuid,
    pub event_id: String,
    pub customer_id: String,
    #[schema(example = "transfer")]
    pub kind: String,
    /// allow, review or reject.
    #[schema(example = "review")]
    pub outcome: String,
    pub score: f64,
    pub base_score: f64,
    pub model_probability: Option<f64>,
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<risk::Reason>,
    pub rule_set_version: Option<u32>,
    pub model: Option<String>,
    /// The review case opened for this decision.
    pub case_id: Option<u64>,
    /// The transfer this decision screened, if any.
    pub transfer_id: Option<Uuid>,
    pub elapsed_micros: u64,
    /// Microseconds since the Unix epoch.
    pub decided_at: i64,
    /// The features the decision was made on (what backtests replay).
    #[schema(value_type = Object)]
    pub features: FeatureVector,
}

impl DecisionView {
    fn new(id: Uuid, d: &Decision, transfer_id: Option<Uuid>) -> Self {
        DecisionView {
            id,
            event_id: d.event_id.clone(),
            customer_id: d.customer_id.clone(),
            kind: d.kind.as_str().to_string(),
            outcome: d.outcome.as_str().to_string(),
            score: d.score,
            base_score: d.base_score,
            model_probability: d.model_probability,
            reasons: d.reasons.clone(),
            rule_set_version: d.rule_set_version,
            model: d.model.clone(),
            case_id: d.case_id,
            transfer_id,
            elapsed_micros: d.elapsed_micros,
            decided_at: d.decided_at.timestamp_micros(),
            features: d.features.clone(),
        }
    }
}

struct LogItem {
    view: DecisionView,
    event_json: String,
    ack: oneshot::Sender<Result<(), String>>,
}

/// The engine plus what the server needs around it.
pub struct RiskService {
    pub engine: Arc<RiskEngine>,
    pub config: RiskConfig,
    log: mpsc::Sender<LogItem>,
    /// Serialises rule-set creation and activation, list edits and the refresher's pass, so the
    /// refresher never sees a row stored but not yet applied to the engine (or the reverse).
    pub admin: Arc<tokio::sync::Mutex<()>>,
}

/// Turns `?` placeholders into PostgreSQL's `$1, $2, ...`.
pub(crate) fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Runs a statement on the writer (SQLite) or the pool (PostgreSQL); evaluates to rows affected.
macro_rules! execute {
    ($db:expr, $sql:expr, |$q:ident| $bind:expr) => {
        match $db {
            storage::Database::Sqlite(db) => {
                let mut conn = db.writer.lock().await;
                let $q = sqlx::query($sql);
                $bind.execute(&mut *conn).await.map(|r| r.rows_affected())
            }
            storage::Database::Postgres(pool) => {
                let sql = $crate::risk::pg($sql);
                let $q = sqlx::query(&sql);
                $bind.execute(pool).await.map(|r| r.rows_affected())
            }
        }
    };
}

/// Fetches all rows of a `query_as` of type `$t`.
macro_rules! fetch_all {
    ($db:expr, $t:ty, $sql:expr, |$q:ident| $bind:expr) => {
        match $db {
            storage::Database::Sqlite(db) => {
                let $q = sqlx::query_as::<_, $t>($sql);
                $bind.fetch_all(&db.readers).await
            }
            storage::Database::Postgres(pool) => {
                let sql = $crate::risk::pg($sql);
                let $q = sqlx::query_as::<_, $t>(&sql);
                $bind.fetch_all(pool).await
            }
        }
    };
}

/// The event as stored: ID numbers and phone numbers replaced by digests.
pub fn redacted_event_json(event: &RiskEvent) -> String {
    serde_json::to_string(&event.redacted()).unwrap_or_default()
}

type DecisionRowTuple = (
    String,
    String,
    String,
    String,
    String,
    f64,
    f64,
    Option<f64>,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

const DECISION_COLUMNS: &str = "id, event_id, customer_id, kind, outcome, score, base_score, model_probability, \
    reasons, features, rule_set_version, model, case_id, transfer_id, elapsed_micros, created_at";

fn view_from_row(r: DecisionRowTuple) -> Result<DecisionView, ApiError> {
    Ok(DecisionView {
        id: Uuid::parse_str(&r.0).map_err(ApiError::internal)?,
        event_id: r.1,
        customer_id: r.2,
        kind: r.3,
        outcome: r.4,
        score: r.5,
        base_score: r.6,
        model_probability: r.7,
        reasons: serde_json::from_str(&r.8).map_err(ApiError::internal)?,
        features: serde_json::from_str(&r.9).map_err(ApiError::internal)?,
        rule_set_version: r.10.map(|v| v as u32),
        model: r.11,
        case_id: r.12.map(|v| v as u64),
        transfer_id: r.13.as_deref().and_then(|t| Uuid::parse_str(t).ok()),
        elapsed_micros: r.14 as u64,
        decided_at: r.15,
    })
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
            reasons: serde_json::to_string(&v.reasons).unwrap_or_default(),
            features: serde_json::to_string(&v.features).unwrap_or_default(),
            transfer_id: v.transfer_id.map(|t| t.to_string()),
        }
    }
}

/// PostgreSQL: one transaction per batch through the pool.
async fn write_log_batch_pg(pool: &sqlx::PgPool, items: &[LogItem]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for item in items {
        let (r, v) = (LogRow::new(item), &item.view);
        sqlx::query(INSERT_DECISION)
            .bind(&r.id)
            .bind(&v.event_id)
            .bind(&v.customer_id)
            .bind(&v.kind)
            .bind(&v.outcome)
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
    }
    tx.commit().await
}

/// SQLite: the log has its own rusqlite connection on its own thread, like the ledger's journal
/// writer: prepared statements stay cached and no value crosses an async channel, which keeps
/// the per-decision cost of the log in the microseconds under load. Durability is the same as
/// every other SQLite connection here (WAL, `synchronous=FULL`).
fn write_log_batch_sqlite(conn: &mut rusqlite::Connection, items: &[LogItem]) -> rusqlite::Result<()> {
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
                v.kind,
                v.outcome,
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
        }
    }
    tx.commit()
}

fn open_log_connection(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
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

fn spawn_log_writer(db: Database) -> mpsc::Sender<LogItem> {
    let (tx, mut rx) = mpsc::channel::<LogItem>(LOG_BATCH * 8);
    match db {
        Database::Sqlite(sqlite) => {
            let path = sqlite.path.clone();
            let spawned = std::thread::Builder::new().name("decision-log".into()).spawn(move || {
                let mut conn: Option<rusqlite::Connection> = None;
                let write = |conn: &mut Option<rusqlite::Connection>, batch: &[LogItem]| {
                    let c = match conn {
                        Some(c) => c,
                        None => conn.insert(open_log_connection(&path)?),
                    };
                    write_log_batch_sqlite(c, batch)
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
                    let mut result = write_log_batch_pg(&pool, &batch).await.map_err(|e| e.to_string());
                    if result.is_err() {
                        tokio::time::sleep(LOG_RETRY_PAUSE).await;
                        result = write_log_batch_pg(&pool, &batch).await.map_err(|e| e.to_string());
                    }
                    finish_batch(&mut batch, result);
                }
            });
        }
    }
    tx
}

/// Adds stored rule-set versions the engine does not have yet and activates the one activated
/// last (by time, then version). Start-up loads everything through this; the refresher picks up
/// versions created or activated by another node.
pub(crate) async fn sync_rule_sets(db: &Database, engine: &RiskEngine) -> Result<(), ApiError> {
    let known = engine.rules.latest_version().map_or(0, i64::from);
    let rows: Vec<(i64, String)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT version, body FROM risk_rule_sets WHERE version > $1 ORDER BY version"
    )
    .bind(known)
    .fetch_all(conn)
    .await)
    .map_err(ApiError::internal)?;
    for (version, body) in rows {
        let set: RuleSet =
            serde_json::from_str(&body).map_err(|e| ApiError::internal(format!("rule set {version}: {e}")))?;
        engine
            .rules
            .add_version(set)
            .map_err(|e| ApiError::internal(format!("stored rule set {version} no longer compiles: {e}")))?;
    }
    let active: Option<(i64,)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT version FROM risk_rule_sets WHERE activated_at IS NOT NULL \
         ORDER BY activated_at DESC, version DESC LIMIT 1"
    )
    .fetch_optional(conn)
    .await)
    .map_err(ApiError::internal)?;
    if let Some((v,)) = active {
        if engine.rules.active_version() != Some(v as u32) {
            engine.rules.activate(v as u32).map_err(ApiError::internal)?;
            tracing::info!(version = v, "risk rule set activated from the database");
        }
    }
    Ok(())
}

/// Makes the engine's lists equal to the stored ones (adds, replaces, removes).
async fn sync_lists(db: &Database, engine: &RiskEngine) -> Result<(), ApiError> {
    let stored = load_list_entries(db).await?;
    let key = |e: &ListEntry| (e.kind, e.subject, e.value.clone());
    let wanted: std::collections::HashSet<_> = stored.iter().map(key).collect();
    let current = engine.lists.entries();
    for e in current.iter().filter(|e| !wanted.contains(&key(e))) {
        engine.lists.remove(e.kind, e.subject, &e.value);
    }
    let current: std::collections::HashMap<_, &ListEntry> = current.iter().map(|e| (key(e), e)).collect();
    for e in stored {
        if current.get(&key(&e)).is_none_or(|c| **c != e) {
            engine.lists.add(e);
        }
    }
    Ok(())
}

/// What changes when list entries are added, replaced or deleted; checked before reloading them.
async fn list_fingerprint(db: &Database) -> Result<(i64, i64, i64), ApiError> {
    storage::read!(db, |conn| sqlx::query_as(
        "SELECT COUNT(*), COALESCE(MAX(added_at), 0), CAST(COALESCE(SUM(added_at % 1000003), 0) AS BIGINT) FROM risk_list_entries"
    )
    .fetch_one(conn)
    .await)
    .map_err(ApiError::internal)
}

/// One pass of the refresher: a newer model, rule-set changes, list changes.
async fn refresh_once(
    db: &Database,
    engine: &RiskEngine,
    config: &RiskConfig,
    lists: &mut (i64, i64, i64),
) -> Result<(), ApiError> {
    let stored = latest_model_version(db, &config.model).await?;
    if stored > 0 && engine.model().is_none_or(|m| m.version < stored) {
        if let Some(model) = latest_model(db, &config.model).await? {
            tracing::info!(model = %model.name, version = model.version, "newer risk model loaded");
            engine.set_model(model);
        }
    }
    sync_rule_sets(db, engine).await?;
    let print = list_fingerprint(db).await?;
    if print != *lists {
        sync_lists(db, engine).await?;
        *lists = print;
    }
    Ok(())
}

/// Keeps a running server in step with the database: `digibank risk train` on another process,
/// rule sets activated or list entries edited through another node of a PostgreSQL cluster.
fn spawn_refresher(db: Database, engine: Arc<RiskEngine>, config: RiskConfig, admin: Arc<tokio::sync::Mutex<()>>) {
    tokio::spawn(async move {
        let mut lists = list_fingerprint(&db).await.unwrap_or_default();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(u64::from(config.refresh_secs)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let _turn = admin.lock().await;
            if let Err(e) = refresh_once(&db, &engine, &config, &mut lists).await {
                tracing::warn!(error = %e.message, "risk refresh failed; will retry");
            }
        }
    });
}

/// Decisions read per query while replaying the log.
const REPLAY_PAGE: i64 = 5_000;

/// Replays the decision log of the last `days` days, oldest first, into the engine's velocity
/// counters and relationship graph (see [`risk::RiskEngine::replay`]); returns how many decisions.
pub async fn replay_decision_log(db: &Database, engine: &RiskEngine, days: u32) -> Result<u64, ApiError> {
    if days == 0 {
        return Ok(0);
    }
    let since = (engine.now() - chrono::Duration::days(i64::from(days))).timestamp_micros();
    let (mut after_at, mut after_id) = (since - 1, String::new());
    let mut replayed = 0u64;
    loop {
        let page: Vec<(i64, String, String, String)> = storage::read!(db, |conn| sqlx::query_as(
            "SELECT created_at, id, outcome, event FROM risk_decisions \
             WHERE created_at > $1 OR (created_at = $1 AND id > $2) ORDER BY created_at, id LIMIT $3"
        )
        .bind(after_at)
        .bind(&after_id)
        .bind(REPLAY_PAGE)
        .fetch_all(conn)
        .await)
        .map_err(ApiError::internal)?;
        for (at, _, outcome, event) in &page {
            let (Ok(event), Ok(outcome)) =
                (serde_json::from_str::<RiskEvent>(event), parse_enum::<risk::Outcome>(outcome))
            else {
                tracing::warn!("decision log row at {at} does not parse; skipped in the replay");
                continue;
            };
            engine.replay(&event, micros_to_time(*at), outcome);
            replayed += 1;
        }
        match page.last() {
            Some((at, id, _, _)) if page.len() as i64 == REPLAY_PAGE => (after_at, after_id) = (*at, id.clone()),
            _ => return Ok(replayed),
        }
    }
}

impl RiskService {
    /// Builds the engine and loads rule sets (and the active one), live list entries, the case
    /// id sequence, confirmed-fraud customers and the latest model artefact from the database.
    pub async fn load(db: &Database, config: RiskConfig) -> Result<Self, ApiError> {
        let engine = Arc::new(RiskEngine::new(EngineConfig::default(), Arc::new(SystemClock)));

        sync_rule_sets(db, &engine).await?;
        sync_lists(db, &engine).await?;
        let (max_case,): (Option<i64>,) = match db {
            Database::Sqlite(d) => sqlx::query_as("SELECT MAX(id) FROM risk_cases").fetch_one(&d.readers).await,
            Database::Postgres(p) => sqlx::query_as("SELECT MAX(id) FROM risk_cases").fetch_one(p).await,
        }
        .map_err(ApiError::internal)?;
        engine.cases.continue_after(max_case.unwrap_or(0).max(0) as u64);
        let fraud = fetch_all!(
            db,
            (String,),
            "SELECT DISTINCT customer_id FROM risk_cases WHERE resolution = 'confirmed_fraud'",
            |q| q
        )
        .map_err(ApiError::internal)?;
        {
            let mut g = engine.graph.write();
            for (c,) in fraud {
                g.flag_customer(&c, CustomerFlag::ConfirmedFraud);
            }
        }
        if let Some(model) = latest_model(db, &config.model).await? {
            tracing::info!(model = %model.name, version = model.version, "risk model loaded");
            engine.set_model(model);
        }
        let replayed = replay_decision_log(db, &engine, config.graph_history_days).await?;
        if replayed > 0 {
            tracing::info!(
                decisions = replayed,
                days = config.graph_history_days,
                "velocity and graph rebuilt from the decision log"
            );
        }
        let admin = Arc::new(tokio::sync::Mutex::new(()));
        if config.refresh_secs > 0 {
            spawn_refresher(db.clone(), Arc::clone(&engine), config.clone(), Arc::clone(&admin));
        }
        Ok(RiskService { engine, config, log: spawn_log_writer(db.clone()), admin })
    }

    /// Decides an event and returns once the decision (and its case) is stored, or, with
    /// `decision_log = "buffered"` and no transfer, once it is queued for storage.
    pub async fn decide(&self, event: &RiskEvent, transfer_id: Option<Uuid>) -> Result<DecisionView, ApiError> {
        let decision = self.engine.decide(event).map_err(risk_error)?;
        let view = DecisionView::new(Uuid::now_v7(), &decision, transfer_id);
        let (ack, done) = oneshot::channel();
        let item = LogItem { view: view.clone(), event_json: redacted_event_json(event), ack };
        self.log.send(item).await.map_err(|_| ApiError::internal("decision log writer stopped"))?;
        if self.config.decision_log == DecisionLog::Buffered && transfer_id.is_none() {
            return Ok(view);
        }
        match done.await {
            Ok(Ok(())) => Ok(view),
            Ok(Err(e)) => Err(ApiError::internal(format!("decision log: {e}"))),
            Err(_) => Err(ApiError::internal("decision log writer stopped")),
        }
    }

    /// Whether transfers from this channel are screened.
    pub fn screens(&self, channel: Channel) -> bool {
        self.config.screen_channels.contains(&channel)
    }
}

/// Maps engine errors on bad input to precise 4xx responses.
pub fn risk_error(e: risk::RiskError) -> ApiError {
    use axum::http::StatusCode;
    use risk::RiskError::*;
    let unprocessable = |code: &str, msg: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg);
    match e {
        MissingField { kind, field } => {
            let mut err = unprocessable("missing_field", format!("{kind} event is missing required field `{field}`"));
            err.details = Some(serde_json::json!({ "field": field, "kind": kind.as_str() }));
            err
        }
        InvalidField { field, reason } => unprocessable("invalid_field", format!("invalid field `{field}`: {reason}")),
        MalformedEvent(m) => unprocessable("invalid_event", m),
        InvalidExpression { rule, error } => {
            let mut err = unprocessable(
                "invalid_rule",
                format!("rule `{rule}`: {} at {}:{}", error.message, error.line, error.column),
            );
            err.position = Some(crate::error::Position {
                line: error.line,
                column: error.column,
                offset: error.offset,
                end: error.end,
            });
            err.details = Some(serde_json::json!({ "rule": rule }));
            err
        }
        InvalidRule { rule, reason } => {
            let mut err = unprocessable("invalid_rule", format!("rule `{rule}`: {reason}"));
            err.details = Some(serde_json::json!({ "rule": rule }));
            err
        }
        UnknownVersion(v) => ApiError::not_found(format!("no rule set version {v}")),
        VersionNotNewer { .. } => ApiError::new(StatusCode::CONFLICT, "version_conflict", e.to_string()),
        CaseNotFound(id) => ApiError::not_found(format!("no case {id}")),
        CaseAlreadyResolved(id) => {
            ApiError::new(StatusCode::CONFLICT, "case_already_resolved", format!("case {id} is already resolved"))
        }
        MarketData(m) => unprocessable("invalid_market_data", m),
        other @ (UnsupportedCondition(_) | Money(_)) => unprocessable("invalid_request", other.to_string()),
        Model(m) => ApiError::internal(m),
    }
}

/// Every stored list entry that has not expired.
pub async fn load_list_entries(db: &Database) -> Result<Vec<ListEntry>, ApiError> {
    let now = Utc::now().timestamp_micros();
    let rows = fetch_all!(
        db,
        (String, String, String, String, i64, Option<i64>),
        "SELECT kind, subject, value, reason, added_at, expires_at FROM risk_list_entries \
         WHERE expires_at IS NULL OR expires_at > ? ORDER BY subject, value, kind",
        |q| q.bind(now)
    )
    .map_err(ApiError::internal)?;
    rows.into_iter()
        .map(|(kind, subject, value, reason, added, expires)| {
            Ok(ListEntry {
                kind: parse_enum(&kind)?,
                subject: parse_enum(&subject)?,
                value,
                reason,
                added_at: micros_to_time(added),
                expires_at: expires.map(micros_to_time),
            })
        })
        .collect()
}

pub(crate) fn parse_enum<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(ApiError::internal)
}

pub(crate) fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

pub(crate) fn micros_to_time(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

/// Stores (or replaces) a list entry.
pub async fn store_list_entry(db: &Database, e: &ListEntry) -> Result<(), ApiError> {
    let sql = "INSERT INTO risk_list_entries (kind, subject, value, reason, added_at, expires_at) \
               VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, subject, value) DO UPDATE SET \
               reason = excluded.reason, added_at = excluded.added_at, expires_at = excluded.expires_at";
    execute!(db, sql, |q| q
        .bind(enum_text(&e.kind))
        .bind(enum_text(&e.subject))
        .bind(&e.value)
        .bind(&e.reason)
        .bind(e.added_at.timestamp_micros())
        .bind(e.expires_at.map(|t| t.timestamp_micros())))
    .map_err(ApiError::internal)?;
    Ok(())
}

/// Deletes a list entry; returns whether it existed.
pub async fn delete_list_entry(
    db: &Database,
    kind: ListKind,
    subject: ListSubject,
    value: &str,
) -> Result<bool, ApiError> {
    let sql = "DELETE FROM risk_list_entries WHERE kind = ? AND subject = ? AND value = ?";
    let n = execute!(db, sql, |q| q.bind(enum_text(&kind)).bind(enum_text(&subject)).bind(value))
        .map_err(ApiError::internal)?;
    Ok(n > 0)
}

/// Stores a model artefact (name + version unique).
pub async fn store_model(db: &Database, artefact: &ml::ModelArtefact) -> Result<(), ApiError> {
    let json = artefact.to_json().map_err(ApiError::internal)?;
    let kind = match &artefact.model {
        ml::AnyModel::Logistic(_) => "logistic",
        ml::AnyModel::Scorecard(_) => "scorecard",
        ml::AnyModel::Gbdt(_) => "gbdt",
    };
    let metrics = artefact.metrics.as_ref().and_then(|m| serde_json::to_string(m).ok());
    let sql = "INSERT INTO risk_models (name, version, kind, artefact, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)";
    execute!(db, sql, |q| q
        .bind(&artefact.name)
        .bind(i64::from(artefact.version))
        .bind(kind)
        .bind(&json)
        .bind(metrics)
        .bind(Utc::now().timestamp_micros()))
    .map_err(ApiError::internal)?;
    Ok(())
}

/// The highest stored version number of a model name (0 when none).
pub async fn latest_model_version(db: &Database, name: &str) -> Result<u32, ApiError> {
    let rows = fetch_all!(db, (Option<i64>,), "SELECT MAX(version) FROM risk_models WHERE name = ?", |q| q.bind(name))
        .map_err(ApiError::internal)?;
    Ok(rows.first().and_then(|r| r.0).unwrap_or(0) as u32)
}

/// The latest stored version of a model, if any.
pub async fn latest_model(db: &Database, name: &str) -> Result<Option<ml::ModelArtefact>, ApiError> {
    let rows = fetch_all!(
        db,
        (String,),
        "SELECT artefact FROM risk_models WHERE name = ? ORDER BY version DESC LIMIT 1",
        |q| q.bind(name)
    )
    .map_err(ApiError::internal)?;
    rows.into_iter()
        .next()
        .map(|(json,)| {
            ml::ModelArtefact::from_json(&json).map_err(|e| ApiError::internal(format!("model {name}: {e}")))
        })
        .transpose()
}

/// Stores a new rule set version (not active).
pub async fn store_rule_set(db: &Database, set: &RuleSet, created_by: Option<Uuid>) -> Result<(), ApiError> {
    let body = serde_json::to_string(set).map_err(ApiError::internal)?;
    let sql = "INSERT INTO risk_rule_sets (version, name, body, created_by, created_at) VALUES (?, ?, ?, ?, ?)";
    execute!(db, sql, |q| q
        .bind(i64::from(set.version))
        .bind(&set.name)
        .bind(&body)
        .bind(created_by)
        .bind(set.created_at.timestamp_micros()))
    .map_err(ApiError::internal)?;
    Ok(())
}

/// How many rule set versions are stored.
pub async fn fetch_rule_set_count(db: &Database) -> Result<i64, ApiError> {
    let rows = fetch_all!(db, (i64,), "SELECT COUNT(*) FROM risk_rule_sets", |q| q).map_err(ApiError::internal)?;
    Ok(rows.first().map_or(0, |r| r.0))
}

/// Marks a version as activated now.
pub async fn mark_activated(db: &Database, version: u32) -> Result<(), ApiError> {
    let sql = "UPDATE risk_rule_sets SET activated_at = ? WHERE version = ?";
    execute!(db, sql, |q| q.bind(Utc::now().timestamp_micros()).bind(i64::from(version)))
        .map_err(ApiError::internal)?;
    Ok(())
}

/// Features and labels of every resolved case (confirmed fraud = positive).
pub async fn case_labels(db: &Database) -> Result<Vec<(FeatureVector, bool)>, ApiError> {
    let rows = fetch_all!(
        db,
        (String, String),
        "SELECT features, resolution FROM risk_cases WHERE resolution IS NOT NULL ORDER BY id",
        |q| q
    )
    .map_err(ApiError::internal)?;
    rows.into_iter()
        .map(|(f, r)| Ok((serde_json::from_str(&f).map_err(ApiError::internal)?, r == "confirmed_fraud")))
        .collect()
}

/// Loads one stored decision.
pub async fn load_decision(db: &Database, id: Uuid) -> Result<Option<DecisionView>, ApiError> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM risk_decisions WHERE id = ?");
    let rows = fetch_all!(db, DecisionRowTuple, &sql, |q| q.bind(id.to_string())).map_err(ApiError::internal)?;
    rows.into_iter().next().map(view_from_row).transpose()
}

/// The most recent stored decisions' replay inputs (features and non-rule score), oldest first.
pub async fn replay_events(db: &Database, limit: u32) -> Result<Vec<risk::ReplayEvent>, ApiError> {
    let rows = fetch_all!(
        db,
        (String, String, f64),
        "SELECT event_id, features, base_score FROM risk_decisions ORDER BY created_at DESC, id DESC LIMIT ?",
        |q| q.bind(i64::from(limit))
    )
    .map_err(ApiError::internal)?;
    let mut out = rows
        .into_iter()
        .map(|(event_id, f, base_score)| {
            Ok(risk::ReplayEvent {
                event_id,
                features: serde_json::from_str(&f).map_err(ApiError::internal)?,
                base_score,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    out.reverse();
    Ok(out)
}

/// A stored case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    pub id: u64,
    pub decision_id: Uuid,
    pub event_id: String,
    pub customer_id: String,
    /// The transfer held for this review, if the case came from transfer screening.
    pub transfer_id: Option<Uuid>,
    pub score: f64,
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<risk::Reason>,
    pub opened_at: i64,
    /// confirmed_fraud or false_positive once resolved.
    pub resolution: Option<String>,
    pub analyst: Option<String>,
    pub note: Option<String>,
    pub resolved_at: Option<i64>,
}

type CaseRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    f64,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

const CASE_COLUMNS: &str =
    "id, decision_id, event_id, customer_id, transfer_id, score, reasons, opened_at, resolution, analyst, note, resolved_at";

fn case_from_row(r: CaseRow) -> Result<CaseView, ApiError> {
    Ok(CaseView {
        id: r.0 as u64,
        decision_id: Uuid::parse_str(&r.1).map_err(ApiError::internal)?,
        event_id: r.2,
        customer_id: r.3,
        transfer_id: r.4.as_deref().and_then(|t| Uuid::parse_str(t).ok()),
        score: r.5,
        reasons: serde_json::from_str(&r.6).map_err(ApiError::internal)?,
        opened_at: r.7,
        resolution: r.8,
        analyst: r.9,
        note: r.10,
        resolved_at: r.11,
    })
}

/// Cases by status (`open`, `resolved` or `all`), oldest first, after `after`.
pub async fn list_cases(db: &Database, status: &str, after: u64, limit: u32) -> Result<Vec<CaseView>, ApiError> {
    let filter = match status {
        "open" => "resolved_at IS NULL AND",
        "resolved" => "resolved_at IS NOT NULL AND",
        _ => "",
    };
    let sql = format!("SELECT {CASE_COLUMNS} FROM risk_cases WHERE {filter} id > ? ORDER BY id LIMIT ?");
    let rows =
        fetch_all!(db, CaseRow, &sql, |q| q.bind(after as i64).bind(i64::from(limit))).map_err(ApiError::internal)?;
    rows.into_iter().map(case_from_row).collect()
}

/// One case.
pub async fn load_case(db: &Database, id: u64) -> Result<Option<CaseView>, ApiError> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM risk_cases WHERE id = ?");
    let rows = fetch_all!(db, CaseRow, &sql, |q| q.bind(id as i64)).map_err(ApiError::internal)?;
    rows.into_iter().next().map(case_from_row).transpose()
}

/// Closes an open case; false when it was not open.
pub async fn close_case(db: &Database, id: u64, resolution: &str, analyst: &str, note: &str) -> Result<bool, ApiError> {
    let sql = "UPDATE risk_cases SET resolution = ?, analyst = ?, note = ?, resolved_at = ? WHERE id = ? AND resolved_at IS NULL";
    let n = execute!(db, sql, |q| q
        .bind(resolution)
        .bind(analyst)
        .bind(note)
        .bind(Utc::now().timestamp_micros())
        .bind(id as i64))
    .map_err(ApiError::internal)?;
    Ok(n == 1)
}
