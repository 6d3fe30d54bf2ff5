//! The KPI system of the operations cockpit: every indicator with its definition, current value
//! and recent hourly and daily points.

use axum::extract::State;
use axum::Json;
use kpi::{Category, Direction, Unit};
use kpi_platform::{KpiPlatformError, Point, Series};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{bounded, ApiQuery};
use crate::AppState;

impl From<KpiPlatformError> for ApiError {
    fn from(e: KpiPlatformError) -> Self {
        ApiError::internal(e)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// Hourly points to return, the current hour included: 1..=720 (default 24).
    pub hours: Option<u32>,
    /// Daily points to return, today included: 1..=730 (default 30).
    pub days: Option<u32>,
}

/// One point of a series.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiPoint {
    /// Start of the UTC hour or day (microseconds since the Unix epoch).
    pub bucket: i64,
    /// Decimal string in the indicator's unit (exact); null when there was nothing to compute
    /// it from.
    #[schema(example = "0.734512")]
    pub value: Option<String>,
    /// When the value was computed (microseconds since the Unix epoch).
    pub computed_at: i64,
}

/// One indicator of the KPI system.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiView {
    /// Stable id, e.g. `loan_balance`.
    #[schema(example = "loan_balance")]
    pub id: String,
    pub category: Category,
    pub name_zh: String,
    pub name_en: String,
    pub definition_en: String,
    pub definition_zh: String,
    /// `count`, `cny_minor` (fen), `ratio` (0..1), `seconds` or `products_per_customer`.
    pub unit: Unit,
    pub direction: Direction,
    /// How the value is computed from stored data.
    pub formula: String,
    /// The latest value (decimal string); null before the first refresh or without data.
    #[schema(example = "123456789")]
    pub value: Option<String>,
    /// When the latest value was computed (microseconds since the Unix epoch).
    pub computed_at: Option<i64>,
    /// The last hourly points, oldest first (hours with a refresh only).
    pub hourly: Vec<KpiPoint>,
    /// The last daily points, oldest first (the last value computed each UTC day).
    pub daily: Vec<KpiPoint>,
}

/// The KPI system.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiOverview {
    /// When this answer was read (microseconds since the Unix epoch).
    pub generated_at: i64,
    /// Every indicator, grouped by category in catalogue order.
    pub indicators: Vec<KpiView>,
}

fn point(p: Point) -> KpiPoint {
    KpiPoint { bucket: p.bucket, value: p.value.map(|v| v.to_string()), computed_at: p.computed_at }
}

fn view(s: Series) -> KpiView {
    let d = s.definition;
    KpiView {
        id: d.id.as_str().to_string(),
        category: d.category,
        name_zh: d.name_zh.into(),
        name_en: d.name_en.into(),
        definition_en: d.definition_en.into(),
        definition_zh: d.definition_zh.into(),
        unit: d.unit,
        direction: d.direction,
        formula: d.formula.into(),
        value: s.value.map(|v| v.to_string()),
        computed_at: s.computed_at,
        hourly: s.hourly.into_iter().map(point).collect(),
        daily: s.daily.into_iter().map(point).collect(),
    }
}

/// The KPI system: every indicator with its definition, current value and recent series
///
/// Twenty-two indicators in four categories (business, customer, operations, risk), computed
/// from stored data by every server on a schedule (`--kpi-refresh-secs`) and kept as hourly and
/// daily series in the database. Values are exact decimal strings: money in CNY minor units
/// (fen), ratios as fractions of 1, durations in seconds.
#[utoipa::path(get, path = "/v1/kpis", tag = "kpis", params(KpiQuery),
    responses((status = 200, body = KpiOverview), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_kpis(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<Json<KpiOverview>, ApiError> {
    let hours = bounded("hours", q.hours.unwrap_or(24), 1, 720)?;
    let days = bounded("days", q.days.unwrap_or(30), 1, 730)?;
    let overview = state.kpis.overview(hours, days).await?;
    Ok(Json(KpiOverview {
        generated_at: overview.generated_at,
        indicators: overview.indicators.into_iter().map(view).collect(),
    }))
}
