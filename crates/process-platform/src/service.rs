//! [`ProcessService`]: export, import and mining over the bank's log or an imported one.

use std::sync::Arc;

use process::csv_import::CsvMapping;
use process::mining::{self, Analysis, Dfg, SlaSpec};
use process::{Event, EventLog, Filter, Process};

use crate::store::{LogInfo, ProcessStore};
use crate::{ProcessPlatformError, Result, MAX_EVENTS, MAX_IMPORT_EVENTS};

/// The promise of the seeds: a loan application is decided within 10 minutes.
pub const DEFAULT_SLA_MINUTES: i64 = 10;

/// Which log to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// The bank's own log of one process.
    Live(Process),
    /// A log imported from another system.
    Imported(String),
}

/// Export, import and mining.
#[derive(Clone)]
pub struct ProcessService {
    store: ProcessStore,
    clock: Arc<dyn clock::Clock>,
    max_events: usize,
}

impl ProcessService {
    pub fn new(db: storage::Database, clock: Arc<dyn clock::Clock>) -> Self {
        ProcessService { store: ProcessStore::new(db), clock, max_events: MAX_EVENTS }
    }

    /// Lowers or raises the work budget of one request (events loaded).
    pub fn with_max_events(mut self, max_events: usize) -> Self {
        self.max_events = max_events.max(1);
        self
    }

    pub fn store(&self) -> &ProcessStore {
        &self.store
    }

    /// The events of `source` for `filter`: loaded from the window's start (a case that started
    /// in the window has no earlier events), grouped into cases, then filtered.
    pub async fn load(&self, source: &LogSource, filter: &Filter) -> Result<EventLog> {
        let from = filter.from.unwrap_or(i64::MIN);
        let events = match source {
            LogSource::Live(p) => self.store.events(p.as_str(), from, self.max_events).await?,
            LogSource::Imported(id) => {
                if self.store.log(id).await?.is_none() {
                    return Err(ProcessPlatformError::NotFound("log", id.clone()));
                }
                self.store.log_events(id, from, self.max_events).await?
            }
        };
        Ok(EventLog::from_events(events).filtered(filter))
    }

    /// OCEL 2.0 JSON of the filtered log.
    pub async fn export_ocel(&self, source: &LogSource, filter: &Filter) -> Result<serde_json::Value> {
        let log = self.load(source, filter).await?;
        let object_type = match source {
            LogSource::Live(p) => p.object_type(),
            LogSource::Imported(_) => "case",
        };
        let events: Vec<Event> = log.cases.into_iter().flat_map(|c| c.events).collect();
        Ok(process::ocel::export(object_type, &events))
    }

    /// XES of the filtered log.
    pub async fn export_xes(&self, source: &LogSource, filter: &Filter) -> Result<String> {
        let log = self.load(source, filter).await?;
        Ok(process::xes::export(&log.cases)?)
    }

    /// Imports a CSV log (header row, `mapping` names the columns) whole, or nothing.
    pub async fn import_csv(&self, name: &str, text: &str, mapping: &CsvMapping) -> Result<LogInfo> {
        let events = process::csv_import::import(text, mapping, MAX_IMPORT_EVENTS)?;
        self.store_import(name, "csv", events).await
    }

    /// Imports an XES log whole, or nothing.
    pub async fn import_xes(&self, name: &str, text: &str) -> Result<LogInfo> {
        let events = process::xes::import(text, MAX_IMPORT_EVENTS)?;
        self.store_import(name, "xes", events).await
    }

    async fn store_import(&self, name: &str, format: &str, events: Vec<Event>) -> Result<LogInfo> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(process::ProcessError::Invalid("name must be 1..200 characters".into()).into());
        }
        if events.is_empty() {
            return Err(process::ProcessError::Invalid("the log has no events".into()).into());
        }
        let cases = events.iter().map(|e| e.case_id.as_str()).collect::<std::collections::HashSet<_>>().len();
        let info = LogInfo {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            format: format.to_string(),
            events: events.len() as i64,
            cases: cases as i64,
            imported_at: self.clock.now_micros(),
        };
        self.store.insert_log(&info, &events).await?;
        Ok(info)
    }

    /// The directly-follows graph of the filtered log.
    pub async fn dfg(&self, source: &LogSource, filter: &Filter) -> Result<Dfg> {
        Ok(mining::dfg(&self.load(source, filter).await?))
    }

    /// Variants, bottlenecks, rework, SLA and value stream of the filtered log; lists hold at
    /// most `limit` entries.
    pub async fn analyse(
        &self,
        source: &LogSource,
        filter: &Filter,
        sla: Option<SlaSpec>,
        limit: usize,
    ) -> Result<Analysis> {
        let log = self.load(source, filter).await?;
        let sla = sla.or_else(|| match source {
            LogSource::Live(p) => default_sla(*p),
            LogSource::Imported(_) => None,
        });
        Ok(mining::analyse(&log, sla.as_ref(), self.clock.now_micros(), limit))
    }
}

/// The service level each of the bank's processes promises.
pub fn default_sla(process: Process) -> Option<SlaSpec> {
    let minutes = |m: i64| m * 60 * 1_000_000;
    match process {
        Process::LoanOrigination => Some(SlaSpec {
            from: None,
            to: vec!["auto_approved".into(), "auto_declined".into(), "reviewed".into()],
            limit_micros: minutes(DEFAULT_SLA_MINUTES),
        }),
        Process::RiskCase => {
            Some(SlaSpec { from: None, to: vec!["case_resolved".into()], limit_micros: minutes(24 * 60) })
        }
        Process::TransferHold => Some(SlaSpec {
            from: None,
            to: vec!["hold_released".into(), "hold_voided".into()],
            limit_micros: minutes(4 * 60),
        }),
        Process::CustomerOnboarding => None,
    }
}
