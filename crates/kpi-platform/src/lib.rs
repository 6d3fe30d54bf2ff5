//! # kpi-platform
//!
//! The KPI system (`crates/kpi`) as a running service:
//!
//! * [`KpiService::refresh`] brings the incremental counters up to date (the journal since the
//!   last counted entry, the API responses this node answered), reads every indicator's inputs
//!   from stored data ([`inputs`]), computes the values with [`kpi::compute`] and stores them as
//!   the current hour's and day's points of the series ([`series`]),
//!   and then moves the threshold alerts on from those values ([`alerts`]);
//! * [`KpiService::spawn`] runs it on a schedule until the database is closed;
//! * [`KpiService::overview`] reads the definitions, current values and recent points for the
//!   API and the metrics, from the database, so every node shows the same figures.
//!
//! This crate is the cockpit's reporting layer: it reads (never writes) the tables of the ledger,
//! customers, lending and risk, in one place per source (`inputs.rs`, `journal.rs`), and writes
//! only its own `kpi_*` tables (migration 0020).

pub mod alerts;
mod api;
mod inputs;
mod journal;
pub mod reports;
pub mod series;

use std::sync::Arc;
use std::time::Duration;

use clock::Clock;
use kpi::{Decimal, KpiId, Reading};
use storage::Database;

pub use alerts::{AlertError, AlertEvent, AlertRule, Alerts, Cause, RuleSpec, Silence};
pub use api::ApiCounters;
pub use series::{Overview, Point, Series};

/// Errors of the KPI platform.
#[derive(Debug, thiserror::Error)]
pub enum KpiPlatformError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    UnitOfWork(#[from] storage::UnitOfWorkError),
    #[error("stored KPI data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = KpiPlatformError> = std::result::Result<T, E>;

/// How often the series are refreshed by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// The KPI system of one server process.
#[derive(Clone)]
pub struct KpiService {
    db: Database,
    clock: Arc<dyn Clock>,
    api: ApiCounters,
    /// One refresh at a time in this process.
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl KpiService {
    pub fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        KpiService { db, clock: clock.clone(), api: ApiCounters::new(clock), refreshing: Arc::default() }
    }

    /// Counts one API response of this node (flushed to the database by the next refresh).
    pub fn record_response(&self, status: u16) {
        self.api.record(status);
    }

    /// Brings the counters up to date, computes every indicator and stores the points of the
    /// current hour and day. Returns the readings.
    pub async fn refresh(&self) -> Result<Vec<Reading>> {
        let _one = self.refreshing.lock().await;
        self.api.flush(&self.db).await?;
        journal::catch_up(&self.db).await?;
        let now = self.clock.now_micros();
        let inputs = inputs::read(&self.db, now).await?;
        let readings = kpi::compute(&inputs);
        series::store(&self.db, now, &readings).await?;
        let values: Vec<(KpiId, Option<Decimal>)> = readings.iter().map(|r| (r.id, r.value)).collect();
        self.alerts().evaluate(&values, now).await?;
        Ok(readings)
    }

    /// The threshold alert rules on the indicators and their history.
    pub fn alerts(&self) -> Alerts {
        Alerts::new(self.db.clone())
    }

    /// Now, by this service's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    /// Definitions, current values and the last `hours` hourly and `days` daily points.
    pub async fn overview(&self, hours: u32, days: u32) -> Result<Overview> {
        series::overview(&self.db, self.clock.now_micros(), hours, days).await
    }

    /// The latest stored value of every indicator that has one.
    pub async fn current(&self) -> Result<Vec<(KpiId, Decimal)>> {
        series::current(&self.db).await
    }

    /// Refreshes every `every` (the first at once) until the database is closed.
    pub fn spawn(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if service.db.is_closed() {
                    break;
                }
                match service.refresh().await {
                    Ok(readings) => tracing::debug!(indicators = readings.len(), "KPIs refreshed"),
                    Err(e) if service.db.is_closed() => {
                        tracing::debug!(error = %e, "KPI refresh stopped: database closed");
                        break;
                    }
                    Err(e) => tracing::warn!(error = %e, "KPI refresh failed; will retry"),
                }
            }
        })
    }
}
