//! [`RiskService`]: the engine loaded from the database, kept in step with it, and the
//! workflows around it (rule sets, lists, models, cases).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ledger::{Ledger, LedgerError, TransferId, TransferKind, TransferOutcome, TransferRequest};
use risk::{
    CustomerFlag, EngineConfig, ListEntry, ListKind, ListSubject, Resolution, RiskEngine, RiskError, RiskEvent,
    RuleSet, SystemClock,
};
use storage::Database;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::config::{DecisionLog, RiskConfig};
use crate::error::{Result, RiskPlatformError};
use crate::log::{spawn_log_writer, LogItem};
use crate::store::{self, micros_to_time, parse_enum, CaseView, DecisionView};

/// The engine plus what runs around it.
pub struct RiskService {
    pub engine: Arc<RiskEngine>,
    pub config: RiskConfig,
    db: Database,
    ledger: Ledger,
    log: mpsc::Sender<LogItem>,
    /// Serialises rule-set creation and activation, list edits and the refresher's pass, so the
    /// refresher never sees a row stored but not yet applied to the engine (or the reverse).
    admin: Arc<tokio::sync::Mutex<()>>,
    /// Admission: at most `max_in_flight` decisions between arrival and their log commit.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Pseudonymises ID numbers and phones (keyed blind index) and seals list values.
    vault: access::Vault,
}

/// The blind index domain of a sensitive list subject (ID numbers and phones), `None` for the
/// others (devices, IPs, accounts, customers are matched as given).
pub fn sensitive_domain(subject: ListSubject) -> Option<&'static str> {
    match subject {
        ListSubject::IdNumber => Some("id_number"),
        ListSubject::Phone => Some("phone"),
        _ => None,
    }
}

/// The event with ID number and phone replaced by their keyed blind index (`bi:<hex>`): what
/// the engine decides on and the decision log stores.
pub fn pseudonymised(vault: &access::Vault, event: &RiskEvent) -> RiskEvent {
    event.pseudonymised(|subject, value| vault.blind_token(sensitive_domain(subject).unwrap_or("other"), value))
}

/// A resolved case and what happened to the transfer it held.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ResolvedCase {
    pub case: CaseView,
    /// For a held transfer: `posted` (false positive), `voided` (confirmed fraud) or the ledger's
    /// error code (e.g. `pending_transfer_expired` when the hold ran out first).
    pub transfer_action: Option<String>,
}

impl RiskService {
    /// Builds the engine and loads rule sets (and the active one), live list entries, the case
    /// id sequence, confirmed-fraud customers and the latest model artefact from the database,
    /// replays the recent decision log into velocity and graph, and starts the log writer and
    /// the refresher.
    pub async fn load(db: &Database, ledger: &Ledger, config: RiskConfig, vault: access::Vault) -> Result<Self> {
        let engine = Arc::new(RiskEngine::new(EngineConfig::default(), Arc::new(SystemClock)));
        sync_rule_sets(db, &engine).await?;
        sync_lists(db, &vault, &engine).await?;
        engine.cases.continue_after(store::max_case_id(db).await?);
        {
            let fraud = store::confirmed_fraud_customers(db).await?;
            let mut g = engine.graph.write();
            for c in fraud {
                g.flag_customer(&c, CustomerFlag::ConfirmedFraud);
            }
        }
        if let Some(model) = store::latest_model(db, &config.model).await? {
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
            spawn_refresher(db.clone(), vault.clone(), Arc::clone(&engine), config.clone(), Arc::clone(&admin));
        }
        let in_flight = Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1) as usize));
        Ok(RiskService {
            engine,
            config,
            db: db.clone(),
            ledger: ledger.clone(),
            log: spawn_log_writer(db.clone()),
            admin,
            in_flight,
            vault,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Records a VaR figure as the treasury's (the KPI system shows the latest one-day 99%
    /// historical VaR); returns its id.
    pub async fn record_var(&self, report: &risk::market::VarReport) -> Result<String> {
        store::store_var_report(&self.db, report, chrono::Utc::now()).await
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.engine.now()
    }

    /// Decides an event and returns once the decision (and its case) is stored, or, with
    /// `decision_log = "buffered"` and no transfer, once it is queued for storage. A full queue
    /// refuses the decision at once ([`RiskPlatformError::Overloaded`]); nothing is decided.
    pub async fn decide(&self, event: &RiskEvent, transfer_id: Option<Uuid>) -> Result<DecisionView> {
        let wait = self.config.decision_log == DecisionLog::Durable || transfer_id.is_some();
        self.decide_logged(event, transfer_id, wait).await
    }

    /// Decides an event that another domain's record will cite (a loan application's fraud
    /// check): always returns after the decision is stored, whatever `decision_log` says.
    pub async fn decide_durably(&self, event: &RiskEvent) -> Result<DecisionView> {
        self.decide_logged(event, None, true).await
    }

    async fn decide_logged(&self, event: &RiskEvent, transfer_id: Option<Uuid>, wait: bool) -> Result<DecisionView> {
        // Shed before deciding: a decision updates velocity and graph, which must not count an
        // event the log refused.
        let _admitted = self.in_flight.try_acquire().map_err(|_| RiskPlatformError::Overloaded)?;
        let permit = self.log.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => RiskPlatformError::Overloaded,
            mpsc::error::TrySendError::Closed(()) => RiskPlatformError::DecisionLog("writer stopped".into()),
        })?;
        let event = pseudonymised(&self.vault, event);
        let decision = self.engine.decide(&event)?;
        let view = DecisionView::new(Uuid::now_v7(), &decision, transfer_id);
        let (ack, done) = oneshot::channel();
        permit.send(LogItem { view: view.clone(), event_json: serde_json::to_string(&event).unwrap_or_default(), ack });
        if !wait {
            return Ok(view);
        }
        match done.await {
            Ok(Ok(())) => Ok(view),
            Ok(Err(e)) => Err(RiskPlatformError::DecisionLog(e)),
            Err(_) => Err(RiskPlatformError::DecisionLog("writer stopped".into())),
        }
    }

    /// Whether transfers from this channel are screened.
    pub fn screens(&self, channel: risk::Channel) -> bool {
        self.config.screen_channels.contains(&channel)
    }

    pub async fn decision(&self, id: Uuid) -> Result<DecisionView> {
        store::load_decision(&self.db, id).await?.ok_or(RiskPlatformError::DecisionNotFound(id))
    }

    // ---- rule sets -----------------------------------------------------------------------------

    /// Compiles and stores a new rule set version (numbered after every stored one, including
    /// versions another node stored); not active until activated. An invalid set is not stored.
    pub async fn create_rule_set(
        &self,
        name: String,
        thresholds: Option<risk::ScoreThresholds>,
        rules: Vec<risk::Rule>,
        created_by: Option<Uuid>,
    ) -> Result<RuleSet> {
        let _turn = self.admin.lock().await;
        sync_rule_sets(&self.db, &self.engine).await?;
        let registry = &self.engine.rules;
        let set = RuleSet {
            name,
            version: registry.latest_version().unwrap_or(0) + 1,
            created_at: self.now(),
            thresholds: thresholds.unwrap_or_default(),
            rules,
        };
        set.compile(&risk::ExpressionCompiler)?;
        store::store_rule_set(&self.db, &set, created_by).await?;
        registry.add_version(set.clone())?;
        Ok(set)
    }

    /// Activates a stored version from the next decision on.
    pub async fn activate_rule_set(&self, version: u32) -> Result<RuleSet> {
        let _turn = self.admin.lock().await;
        let registry = &self.engine.rules;
        let set = registry.get(version).ok_or(RiskError::UnknownVersion(version))?;
        store::mark_activated(&self.db, version, self.now()).await?;
        registry.activate(version)?;
        Ok(set)
    }

    /// How the last `limit` stored decisions would change under `version` compared with
    /// `against` (default: the active version, or no rules at all).
    pub async fn backtest(&self, version: u32, against: Option<u32>, limit: u32) -> Result<risk::BacktestReport> {
        let registry = &self.engine.rules;
        let after = registry.compile(version)?;
        let before = match against.or(registry.active_version()) {
            Some(v) => registry.compile(v)?,
            None => RuleSet {
                name: "none".into(),
                version: 0,
                created_at: self.now(),
                thresholds: self.engine.config.default_thresholds,
                rules: Vec::new(),
            }
            .compile(&risk::ExpressionCompiler)?,
        };
        let events = store::replay_events(&self.db, limit).await?;
        tokio::task::spawn_blocking(move || risk::backtest(&events, &before, &after))
            .await
            .map_err(|e| RiskPlatformError::InvalidRequest(format!("backtest stopped: {e}")))
    }

    // ---- lists ---------------------------------------------------------------------------------

    /// Stores (or replaces) a list entry and applies it to the engine at once. An ID number or
    /// phone is matched by its keyed blind index and stored sealed (shown in `display`).
    pub async fn add_list_entry(&self, mut entry: ListEntry) -> Result<ListEntry> {
        if sensitive_domain(entry.subject).is_some() && !risk::is_pseudonym(&entry.value) {
            entry.display = Some(entry.value.clone());
            entry.value = self.list_value(entry.subject, &entry.value);
        }
        let _turn = self.admin.lock().await;
        store::store_list_entry(&self.db, &self.vault, &entry).await?;
        self.engine.lists.add(entry.clone());
        Ok(entry)
    }

    /// Removes a list entry from the database and the engine.
    pub async fn delete_list_entry(&self, kind: ListKind, subject: ListSubject, value: &str) -> Result<()> {
        let value = self.list_value(subject, value);
        let _turn = self.admin.lock().await;
        let stored = store::delete_list_entry(&self.db, kind, subject, &value).await?;
        let live = self.engine.lists.remove(kind, subject, &value);
        if stored || live {
            Ok(())
        } else {
            Err(RiskPlatformError::ListEntryNotFound)
        }
    }

    /// What a list of `subject` matches for `value`: the blind index token for ID numbers and
    /// phones (a value that already is a token is kept), the value itself otherwise.
    pub fn list_value(&self, subject: ListSubject, value: &str) -> String {
        match sensitive_domain(subject) {
            Some(domain) if !risk::is_pseudonym(value) => self.vault.blind_token(domain, value),
            _ => value.to_string(),
        }
    }

    pub fn vault(&self) -> &access::Vault {
        &self.vault
    }

    // ---- models --------------------------------------------------------------------------------

    /// Loads the latest stored artefact of the configured model (after `digibank risk train`).
    pub async fn reload_model(&self) -> Result<Arc<ml::ModelArtefact>> {
        let name = &self.config.model;
        let artefact =
            store::latest_model(&self.db, name).await?.ok_or_else(|| RiskPlatformError::ModelNotFound(name.clone()))?;
        self.engine.set_model(artefact);
        self.engine.model().ok_or_else(|| RiskPlatformError::ModelNotFound(name.clone()))
    }

    // ---- cases ---------------------------------------------------------------------------------

    /// The latest decisions, newest first (before `before`, microseconds).
    pub async fn recent_decisions(&self, before: Option<i64>, limit: u32) -> Result<Vec<DecisionView>> {
        store::recent_decisions(&self.db, before, limit).await
    }

    /// Decisions of the last `days` days per event kind and outcome.
    pub async fn outcome_counts(&self, days: u32) -> Result<Vec<(String, String, i64)>> {
        let since = self.now().timestamp_micros() - i64::from(days) * 86_400_000_000;
        store::outcome_counts(&self.db, since).await
    }

    /// Candidate fraud rings of the relationship graph (components with at least `min_customers`
    /// customers and `min_flagged` flagged ones, largest flagged share first, at most `limit`),
    /// and the graph of the first, at most `max_nodes` nodes.
    pub fn rings(
        &self,
        min_customers: u32,
        min_flagged: u32,
        limit: usize,
        max_nodes: usize,
    ) -> (Vec<risk::Community>, Option<risk::RingGraph>) {
        let g = self.engine.graph.read();
        let mut rings = g.communities(min_customers, min_flagged);
        rings.truncate(limit);
        let drawn = rings.first().and_then(|r| r.customers.first()).and_then(|c| g.ring_graph(c, max_nodes));
        (rings, drawn)
    }

    pub async fn cases(&self, status: store::CaseStatus, after: u64, limit: u32) -> Result<Vec<CaseView>> {
        store::list_cases(&self.db, status, after, limit).await
    }

    /// Resolves a review case as **one unit of work**: the case is closed and, when it holds a
    /// transfer, the hold is posted (false positive) or voided (confirmed fraud) in the same
    /// database transaction as the ledger batch. A crash leaves either both or neither; of two
    /// concurrent resolvers exactly one commits and the other gets `case_already_resolved`
    /// (its close statement finds the case no longer open and rolls its whole batch back).
    /// Only after the commit does the engine forget the case and, for fraud, flag the customer
    /// in the graph (a restart rebuilds both from the stored cases).
    pub async fn resolve_case(
        &self,
        id: u64,
        resolution: Resolution,
        analyst: &str,
        note: &str,
    ) -> Result<ResolvedCase> {
        let case = store::load_case(&self.db, id).await?.ok_or(RiskError::CaseNotFound(id))?;
        if case.resolution.is_some() {
            return Err(RiskError::CaseAlreadyResolved(id).into());
        }
        let fraud = resolution == Resolution::ConfirmedFraud;
        let at = self.now().timestamp_micros();
        let close = store::close_case_statement(id, resolution, analyst, note, at);
        // The process events of the resolution commit with it: the case's, and the hold's.
        let outcome = store::enum_text(&resolution);
        let resolved = process_platform::event_statement(
            &process::ProcessEvent::new(process::Activity::CaseResolved, id.to_string(), at, analyst)
                .with(process::Attributes::default().outcome(&outcome)),
        );
        let already_resolved = || RiskPlatformError::Engine(RiskError::CaseAlreadyResolved(id));
        let transfer_action = match case.transfer_id {
            None => {
                storage::execute_all(&self.db, &[close, resolved]).await.map_err(|e| match e {
                    storage::UnitOfWorkError::Conflict(_) => already_resolved(),
                    other => other.into(),
                })?;
                None
            }
            Some(held) => {
                let kind = if fraud { TransferKind::VoidPending } else { TransferKind::PostPending };
                // The id is derived from the hold and the action: a retry replays, never doubles.
                let request = TransferRequest {
                    kind,
                    ..TransferRequest::post(
                        TransferId(Uuid::new_v5(&held, kind.as_str().as_bytes())),
                        TransferId(held),
                        None,
                    )
                };
                let released = process::ProcessEvent::new(
                    if fraud { process::Activity::HoldVoided } else { process::Activity::HoldReleased },
                    held.to_string(),
                    at,
                    analyst,
                )
                .with(process::Attributes::default().outcome(&outcome));
                let released = process_platform::event_statement(&released);
                let along: ledger::AlongWithBatch = Box::new(move |outcomes| match outcomes.first() {
                    Some(TransferOutcome::Created { .. }) => vec![close, resolved, released],
                    _ => vec![close, resolved],
                });
                let outcomes = self.ledger.submit_batch_with(vec![request], along).await.map_err(|e| match e {
                    LedgerError::AlongConflict(_) => already_resolved(),
                    other => other.into(),
                })?;
                Some(match outcomes.first() {
                    Some(TransferOutcome::Failed { code, .. }) => code.code().to_string(),
                    _ => if fraud { "voided" } else { "posted" }.to_string(),
                })
            }
        };
        self.engine.cases.forget(id);
        if fraud {
            self.engine.graph.write().flag_customer(&case.customer_id, CustomerFlag::ConfirmedFraud);
        }
        let case = store::load_case(&self.db, id).await?.ok_or(RiskError::CaseNotFound(id))?;
        tracing::info!(case = id, resolution = %store::enum_text(&resolution), "risk case resolved");
        Ok(ResolvedCase { case, transfer_action })
    }
}

/// Adds stored rule-set versions the engine does not have yet and activates the one activated
/// last (by time, then version). Start-up loads everything through this; the refresher picks up
/// versions created or activated by another node.
async fn sync_rule_sets(db: &Database, engine: &RiskEngine) -> Result<()> {
    let known = engine.rules.latest_version().unwrap_or(0);
    for set in store::rule_sets_after(db, known).await? {
        let version = set.version;
        engine
            .rules
            .add_version(set)
            .map_err(|e| RiskPlatformError::Corrupt(format!("stored rule set {version} no longer compiles: {e}")))?;
    }
    if let Some(v) = store::active_rule_set_version(db).await? {
        if engine.rules.active_version() != Some(v) {
            engine.rules.activate(v).map_err(|e| RiskPlatformError::Corrupt(e.to_string()))?;
            tracing::info!(version = v, "risk rule set activated from the database");
        }
    }
    Ok(())
}

/// Makes the engine's lists equal to the stored ones (adds, replaces, removes).
async fn sync_lists(db: &Database, vault: &access::Vault, engine: &RiskEngine) -> Result<()> {
    let stored = store::load_list_entries(db, vault, engine.now()).await?;
    let key = |e: &ListEntry| (e.kind, e.subject, e.value.clone());
    let wanted: HashSet<_> = stored.iter().map(key).collect();
    let current = engine.lists.entries();
    for e in current.iter().filter(|e| !wanted.contains(&key(e))) {
        engine.lists.remove(e.kind, e.subject, &e.value);
    }
    let current: HashMap<_, &ListEntry> = current.iter().map(|e| (key(e), e)).collect();
    for e in stored {
        if current.get(&key(&e)).is_none_or(|c| **c != e) {
            engine.lists.add(e);
        }
    }
    Ok(())
}

/// One pass of the refresher: a newer model, rule-set changes, list changes, customers another
/// node confirmed as fraud.
async fn refresh_once(
    db: &Database,
    vault: &access::Vault,
    engine: &RiskEngine,
    config: &RiskConfig,
    lists: &mut (i64, i64, i64),
) -> Result<()> {
    let stored = store::latest_model_version(db, &config.model).await?;
    if stored > 0 && engine.model().is_none_or(|m| m.version < stored) {
        if let Some(model) = store::latest_model(db, &config.model).await? {
            tracing::info!(model = %model.name, version = model.version, "newer risk model loaded");
            engine.set_model(model);
        }
    }
    sync_rule_sets(db, engine).await?;
    let print = store::list_fingerprint(db).await?;
    if print != *lists {
        sync_lists(db, vault, engine).await?;
        *lists = print;
    }
    Ok(())
}

/// Keeps a running server in step with the database: `digibank risk train` on another process,
/// rule sets activated or list entries edited through another node of a PostgreSQL cluster.
fn spawn_refresher(
    db: Database,
    vault: access::Vault,
    engine: Arc<RiskEngine>,
    config: RiskConfig,
    admin: Arc<tokio::sync::Mutex<()>>,
) {
    tokio::spawn(async move {
        let mut lists = store::list_fingerprint(&db).await.unwrap_or_default();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(u64::from(config.refresh_secs)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if db.is_closed() {
                break;
            }
            let _turn = admin.lock().await;
            if let Err(e) = refresh_once(&db, &vault, &engine, &config, &mut lists).await {
                tracing::warn!(error = %e, "risk refresh failed; will retry");
            }
        }
    });
}

/// Decisions read per query while replaying the log.
const REPLAY_PAGE: i64 = 5_000;

/// Replays the decision log of the last `days` days, oldest first, into the engine's velocity
/// counters and relationship graph (see [`risk::RiskEngine::replay`]); returns how many decisions.
pub async fn replay_decision_log(db: &Database, engine: &RiskEngine, days: u32) -> Result<u64> {
    if days == 0 {
        return Ok(0);
    }
    let since = (engine.now() - chrono::Duration::days(i64::from(days))).timestamp_micros();
    let (mut after_at, mut after_id) = (since - 1, String::new());
    let mut replayed = 0u64;
    loop {
        let page = store::decision_log_page(db, after_at, &after_id, REPLAY_PAGE).await?;
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
