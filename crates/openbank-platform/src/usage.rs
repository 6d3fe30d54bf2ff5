//! Metering: calls per partner, API and UTC day (issue 13 part 5), for billing and the cockpit.
//! Counted in memory on the request path (no write per call) and added to `ob_usage` once a
//! minute by the housekeeping loop, and before staff read it; every node adds its own counts.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::{OpenBanking, PlatformError};

/// Counts not yet stored: (partner, day, api) → (calls, refused).
pub(crate) type PendingUsage = HashMap<(String, i64, String), (i64, i64)>;

/// One partner's use of one API on one day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageRow {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// `METHOD /route`.
    pub api: String,
    pub calls: i64,
    /// Calls answered with an error (4xx or 5xx).
    pub refused: i64,
}

/// A partner's calls today on this node's books: the stored total (all nodes, as of `read_at`)
/// plus this node's calls since. Re-read every [`QUOTA_REFRESH_MICROS`], so across nodes the
/// count lags by at most about a minute of the others' calls (each node flushes every minute).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuotaCount {
    day: i64,
    stored: i64,
    since: i64,
    read_at: i64,
}

/// How long a node trusts its stored total of a partner's calls today.
const QUOTA_REFRESH_MICROS: i64 = 30_000_000;

/// The most days a usage read covers.
pub const MAX_USAGE_DAYS: u32 = 366;

impl OpenBanking {
    /// Counts one call of a partner (in memory until the next flush).
    pub fn record_call(&self, partner_id: &str, api: &str, refused: bool) {
        let day = openbank::consent::usage_day(self.clock.now_micros());
        let mut pending = self.usage.lock().expect("usage lock");
        let entry = pending.entry((partner_id.to_string(), day, api.to_string())).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += i64::from(refused);
        drop(pending);
        if let Some(count) = self.quota_counts.lock().expect("quota lock").get_mut(partner_id) {
            if count.day == day {
                count.since += 1;
            }
        }
    }

    /// Refuses the call when the partner has made its daily quota of calls (none: unlimited).
    /// Reads the stored count at most every 30 s per partner; otherwise memory only.
    pub async fn check_quota(&self, partner_id: &str, quota: Option<i64>) -> Result<(), PlatformError> {
        let Some(limit) = quota else { return Ok(()) };
        let now = self.clock.now_micros();
        let day = openbank::consent::usage_day(now);
        let known = self.quota_counts.lock().expect("quota lock").get(partner_id).copied();
        let used = match known {
            Some(c) if c.day == day && now - c.read_at < QUOTA_REFRESH_MICROS => c.stored + c.since,
            _ => {
                let stored: i64 = storage::read!(&self.db, |conn| {
                    sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) FROM ob_usage WHERE partner_id = $1 AND day = $2"
                )
                .bind(partner_id)
                .bind(day)
                .fetch_one(conn)
                .await
                })?;
                // This node's calls not flushed yet count too.
                let unflushed: i64 = self
                    .usage
                    .lock()
                    .expect("usage lock")
                    .iter()
                    .filter(|((p, d, _), _)| p == partner_id && *d == day)
                    .map(|(_, (calls, _))| calls)
                    .sum();
                self.quota_counts.lock().expect("quota lock").insert(
                    partner_id.to_string(),
                    QuotaCount { day, stored: stored + unflushed, since: 0, read_at: now },
                );
                stored + unflushed
            }
        };
        if used >= limit {
            let retry_after = (day + 1) * 86_400 - now.div_euclid(1_000_000);
            return Err(PlatformError::QuotaExceeded { limit, retry_after: retry_after.max(1) });
        }
        Ok(())
    }

    /// Adds the counts gathered since the last flush to `ob_usage`.
    pub async fn flush_usage(&self) -> Result<(), PlatformError> {
        let pending: PendingUsage = std::mem::take(&mut *self.usage.lock().expect("usage lock"));
        for ((partner, day, api), (calls, refused)) in pending {
            // Bookkeeping, not a change anyone made: no audit entry of its own.
            let added: Result<u64, sqlx::Error> = storage::audit::unaudited(async {
                storage::write!(&self.db, |conn| sqlx::query(
                    "INSERT INTO ob_usage (partner_id, day, api, calls, refused) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (partner_id, day, api) DO UPDATE SET calls = ob_usage.calls + $4, \
                     refused = ob_usage.refused + $5"
                )
                .bind(&partner)
                .bind(day)
                .bind(&api)
                .bind(calls)
                .bind(refused)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))
            })
            .await;
            added?;
        }
        Ok(())
    }

    /// A partner's usage over the last `days` days (today included), newest day first.
    pub async fn usage(&self, partner_id: &str, days: u32) -> Result<Vec<UsageRow>, PlatformError> {
        self.partner(partner_id).await?;
        self.flush_usage().await?;
        let today = openbank::consent::usage_day(self.clock.now_micros());
        let from = today - i64::from(days.clamp(1, MAX_USAGE_DAYS)) + 1;
        let rows: Vec<(i64, String, i64, i64)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT day, api, calls, refused FROM ob_usage WHERE partner_id = $1 AND day >= $2 \
             ORDER BY day DESC, api"
        )
        .bind(partner_id)
        .bind(from)
        .fetch_all(conn)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(day, api, calls, refused)| UsageRow {
                day: chrono::DateTime::from_timestamp(day * 86_400, 0)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                api,
                calls,
                refused,
            })
            .collect())
    }
}
