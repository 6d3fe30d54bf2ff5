//! API responses counted in memory per hour and added to `kpi_api_requests` by each refresh,
//! so the error rate covers every node and survives restarts (a crash loses at most the
//! responses since the last refresh).

use std::collections::BTreeMap;
use std::sync::Arc;

use clock::Clock;
use parking_lot::Mutex;
use storage::{Arg, Database, Statement};

use crate::Result;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    requests: i64,
    server_errors: i64,
    client_errors: i64,
}

/// This node's responses not yet written, by UTC hour.
#[derive(Clone)]
pub struct ApiCounters {
    clock: Arc<dyn Clock>,
    pending: Arc<Mutex<BTreeMap<i64, Counts>>>,
}

impl ApiCounters {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        ApiCounters { clock, pending: Arc::default() }
    }

    /// Counts one response with HTTP `status`.
    pub fn record(&self, status: u16) {
        let hour = kpi::hour_bucket(self.clock.now_micros());
        let mut pending = self.pending.lock();
        let c = pending.entry(hour).or_default();
        c.requests += 1;
        if status >= 500 {
            c.server_errors += 1;
        } else if status >= 400 {
            c.client_errors += 1;
        }
    }

    /// Adds what was counted to the table; on failure the counts are kept for the next try.
    pub async fn flush(&self, db: &Database) -> Result<()> {
        let taken = std::mem::take(&mut *self.pending.lock());
        if taken.is_empty() {
            return Ok(());
        }
        let statements: Vec<Statement> = taken
            .iter()
            .map(|(hour, c)| {
                Statement::new(
                    "INSERT INTO kpi_api_requests (hour, requests, server_errors, client_errors) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (hour) DO UPDATE SET requests = kpi_api_requests.requests + excluded.requests, \
                     server_errors = kpi_api_requests.server_errors + excluded.server_errors, \
                     client_errors = kpi_api_requests.client_errors + excluded.client_errors",
                    vec![Arg::Int(*hour), Arg::Int(c.requests), Arg::Int(c.server_errors), Arg::Int(c.client_errors)],
                )
            })
            .collect();
        if let Err(e) = storage::execute_all(db, &statements).await {
            let mut pending = self.pending.lock();
            for (hour, c) in taken {
                let p = pending.entry(hour).or_default();
                p.requests += c.requests;
                p.server_errors += c.server_errors;
                p.client_errors += c.client_errors;
            }
            return Err(e.into());
        }
        Ok(())
    }
}
