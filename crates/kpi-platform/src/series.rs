//! The hourly and daily series in `kpi_points`: each refresh overwrites the point of the
//! current hour and day with the value it computed, so a point is the last value of its bucket.

use std::collections::HashMap;
use std::str::FromStr;

use kpi::{Decimal, Definition, KpiId, Reading};
use serde::Serialize;
use storage::{Arg, Database, Statement};

use crate::{KpiPlatformError, Result};

/// Hourly points older than this are deleted (daily points are kept).
const HOURLY_RETENTION_MICROS: i64 = 90 * kpi::DAY_MICROS;

/// One point of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// The start of the hour or day (microseconds since the Unix epoch, UTC).
    pub bucket: i64,
    /// `None`: nothing to compute it from at the time.
    pub value: Option<Decimal>,
    pub computed_at: i64,
}

/// One indicator: what it is, its current value and its recent points.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub definition: Definition,
    /// The latest computed value (the last hourly point).
    pub value: Option<Decimal>,
    /// When it was computed; `None` before the first refresh.
    pub computed_at: Option<i64>,
    pub hourly: Vec<Point>,
    pub daily: Vec<Point>,
}

/// Every indicator, in catalogue order.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub generated_at: i64,
    pub indicators: Vec<Series>,
}

fn value_text(v: &Option<Decimal>) -> Option<String> {
    v.map(|d| d.normalize().to_string())
}

fn parse_value(kpi: &str, v: Option<String>) -> Result<Option<Decimal>> {
    v.map(|t| Decimal::from_str(&t).map_err(|e| KpiPlatformError::Corrupt(format!("value of {kpi}: {e}")))).transpose()
}

/// Stores `readings` as the points of the hour and the day holding `now`, and drops hourly
/// points past their retention.
pub async fn store(db: &Database, now: i64, readings: &[Reading]) -> Result<()> {
    let mut statements = Vec::with_capacity(readings.len() * 2 + 1);
    for r in readings {
        for (granularity, bucket) in [("hour", kpi::hour_bucket(now)), ("day", kpi::day_bucket(now))] {
            statements.push(Statement::new(
                "INSERT INTO kpi_points (kpi, granularity, bucket, value, computed_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (kpi, granularity, bucket) DO UPDATE SET value = excluded.value, computed_at = excluded.computed_at \
                 WHERE kpi_points.computed_at <= excluded.computed_at",
                vec![
                    Arg::Text(r.id.as_str().into()),
                    Arg::Text(granularity.into()),
                    Arg::Int(bucket),
                    Arg::OptText(value_text(&r.value)),
                    Arg::Int(now),
                ],
            ));
        }
    }
    statements.push(Statement::new(
        "DELETE FROM kpi_points WHERE granularity = 'hour' AND bucket < $1",
        vec![Arg::Int(kpi::hour_bucket(now) - HOURLY_RETENTION_MICROS)],
    ));
    storage::execute_all(db, &statements).await?;
    Ok(())
}

type PointRow = (String, String, i64, Option<String>, i64);

/// Definitions, current values and the last `hours` hourly and `days` daily points (those
/// buckets that have one) of every indicator.
pub async fn overview(db: &Database, now: i64, hours: u32, days: u32) -> Result<Overview> {
    let since_hour = kpi::hour_bucket(now) - i64::from(hours.saturating_sub(1)) * kpi::HOUR_MICROS;
    let since_day = kpi::day_bucket(now) - i64::from(days.saturating_sub(1)) * kpi::DAY_MICROS;
    let rows: Vec<PointRow> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT kpi, granularity, bucket, value, computed_at FROM kpi_points \
         WHERE (granularity = 'hour' AND bucket >= $1) OR (granularity = 'day' AND bucket >= $2) \
         ORDER BY kpi, granularity, bucket"
    )
    .bind(since_hour)
    .bind(since_day)
    .fetch_all(conn)
    .await)?;
    let mut points: HashMap<(String, String), Vec<Point>> = HashMap::new();
    for (kpi, granularity, bucket, value, computed_at) in rows {
        let value = parse_value(&kpi, value)?;
        points.entry((kpi, granularity)).or_default().push(Point { bucket, value, computed_at });
    }
    let latest = current_points(db).await?;
    let indicators = KpiId::ALL
        .iter()
        .map(|id| {
            let key = |g: &str| (id.as_str().to_string(), g.to_string());
            let hourly = points.remove(&key("hour")).unwrap_or_default();
            let daily = points.remove(&key("day")).unwrap_or_default();
            let last = latest.get(id);
            Series {
                definition: kpi::definition(*id),
                value: last.and_then(|p| p.value),
                computed_at: last.map(|p| p.computed_at),
                hourly,
                daily,
            }
        })
        .collect();
    Ok(Overview { generated_at: now, indicators })
}

/// The latest hourly point of every indicator.
async fn current_points(db: &Database) -> Result<HashMap<KpiId, Point>> {
    let rows: Vec<PointRow> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT p.kpi, p.granularity, p.bucket, p.value, p.computed_at FROM kpi_points p \
         JOIN (SELECT kpi, MAX(bucket) AS bucket FROM kpi_points WHERE granularity = 'hour' GROUP BY kpi) m \
         ON m.kpi = p.kpi AND m.bucket = p.bucket WHERE p.granularity = 'hour'"
    )
    .fetch_all(conn)
    .await)?;
    let mut out = HashMap::new();
    for (kpi, _, bucket, value, computed_at) in rows {
        let value = parse_value(&kpi, value)?;
        // An indicator a newer version stored and this one does not know is skipped.
        if let Some(id) = KpiId::parse(&kpi) {
            out.insert(id, Point { bucket, value, computed_at });
        }
    }
    Ok(out)
}

/// The latest value of every indicator that has one.
pub async fn current(db: &Database) -> Result<Vec<(KpiId, Decimal)>> {
    let mut out: Vec<(KpiId, Decimal)> =
        current_points(db).await?.into_iter().filter_map(|(id, p)| p.value.map(|v| (id, v))).collect();
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}
