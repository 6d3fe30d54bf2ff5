//! Prometheus metrics: HTTP traffic by route and status, ledger outcomes, and gauges read from
//! the database at scrape time (so they are right even with several server processes).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use rust_decimal::prelude::ToPrimitive;

use crate::AppState;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub transfers: IntCounterVec,
    pub risk_decisions: IntCounterVec,
    /// Requests refused with 429 `rate_limited`, by route class.
    pub rate_limited: IntCounterVec,
    accounts: IntGauge,
    journal_entries: IntGauge,
    /// The KPI system's latest values, by indicator (read from the database at scrape time).
    kpis: GaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("digibank".into()), None).expect("registry");
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )
        .expect("metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            &["method", "route"],
        )
        .expect("metric");
        let transfers = IntCounterVec::new(
            Opts::new("ledger_transfers_total", "Transfers submitted by outcome (created, replayed or error code)"),
            &["outcome"],
        )
        .expect("metric");
        let risk_decisions =
            IntCounterVec::new(Opts::new("risk_decisions_total", "Risk decisions by outcome"), &["outcome"])
                .expect("metric");
        let rate_limited = IntCounterVec::new(
            Opts::new("http_rate_limited_total", "Requests refused with 429 rate_limited, by route class"),
            &["class"],
        )
        .expect("metric");
        let accounts = IntGauge::new("ledger_accounts", "Accounts in the ledger").expect("metric");
        let journal_entries = IntGauge::new("ledger_journal_entries", "Entries in the journal").expect("metric");
        let kpis = GaugeVec::new(
            Opts::new(
                "kpi",
                "The latest value of each KPI (unit: cny_minor = fen, ratio = fraction of 1, seconds, count), see GET /v1/kpis",
            ),
            &["kpi", "category", "unit"],
        )
        .expect("metric");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(transfers.clone()),
            Box::new(risk_decisions.clone()),
            Box::new(rate_limited.clone()),
            Box::new(accounts.clone()),
            Box::new(journal_entries.clone()),
            Box::new(kpis.clone()),
        ] {
            registry.register(c).expect("register metric");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            transfers,
            risk_decisions,
            rate_limited,
            accounts,
            journal_entries,
            kpis,
        }
    }

    pub fn count_outcomes<'a>(&self, outcomes: impl IntoIterator<Item = &'a ledger::TransferOutcome>) {
        for o in outcomes {
            let label = match o {
                ledger::TransferOutcome::Created { .. } => "created".to_string(),
                ledger::TransferOutcome::Replayed { .. } => "replayed".to_string(),
                ledger::TransferOutcome::Failed { code, .. } => code.code(),
            };
            self.transfers.with_label_values(&[&label]).inc();
        }
    }

    pub fn render(&self, accounts: i64, entries: i64, kpis: &[(kpi::KpiId, kpi::Decimal)]) -> String {
        self.accounts.set(accounts);
        self.journal_entries.set(entries);
        // Only indicators with a value: one without data has no sample rather than a made-up 0.
        self.kpis.reset();
        for (id, value) in kpis {
            let d = kpi::definition(*id);
            if let Some(v) = value.to_f64() {
                self.kpis.with_label_values(&[id.as_str(), d.category.as_str(), d.unit.as_str()]).set(v);
            }
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("encode metrics");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

/// Middleware recording every request under its route template (not the raw path, which would
/// explode label cardinality with ids).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    state.kpis.record_response(response.status().as_u16());
    let status = response.status().as_u16().to_string();
    state.metrics.http_requests.with_label_values(&[&method, &route, &status]).inc();
    state.metrics.http_duration.with_label_values(&[&method, &route]).observe(start.elapsed().as_secs_f64());
    response
}
