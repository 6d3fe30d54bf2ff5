//! Read endpoints the cockpit's pages need besides the domains' own (issue 14, part 2): the loan
//! application funnel and the portfolio by grade and delinquency bucket (from the cockpit's
//! reporting layer, `kpi-platform`), the latest risk decisions, their outcome mix, and the
//! candidate fraud rings of the relationship graph.

use axum::extract::State;
use axum::Json;
use kpi_platform::reports;
use risk_platform::store::DecisionView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{bounded, page_limit, ApiQuery};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// The window in days, ending now: 1..=365 (default 30).
    pub days: Option<u32>,
}

/// Approval of one product and grade.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalRate {
    pub product_code: String,
    /// AAA..E; empty when the decision had no grade (declined before grading).
    pub grade: String,
    pub applied: i64,
    pub approved: i64,
}

/// One bar of the decision-time histogram.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionTimeBucket {
    /// Decisions faster than this many milliseconds (and not faster than the previous bound);
    /// null for the slowest bar.
    pub below_ms: Option<i64>,
    pub count: i64,
}

/// The loan application funnel of a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct LendingFunnel {
    /// Start of the window (microseconds since the Unix epoch).
    pub since: i64,
    pub applied: i64,
    pub approved: i64,
    pub in_review: i64,
    pub declined: i64,
    pub offered: i64,
    pub accepted: i64,
    pub disbursed: i64,
    pub approval_by_product_grade: Vec<ApprovalRate>,
    /// Automated decision times.
    pub decision_times: Vec<DecisionTimeBucket>,
}

/// The loan application funnel: applied → approved → offered → accepted → disbursed
///
/// Applications decided in the last `days` days, with approval by product and grade and the
/// distribution of automated decision times.
#[utoipa::path(get, path = "/v1/lending/funnel", tag = "lending", params(DaysQuery),
    responses((status = 200, body = LendingFunnel), (status = 422, description = "parameter_out_of_range", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn lending_funnel(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> Result<Json<LendingFunnel>, ApiError> {
    let days = bounded("days", q.days.unwrap_or(30), 1, 365)?;
    let since = state.kpis.now() - i64::from(days) * kpi::DAY_MICROS;
    let f = reports::funnel(&state.db, since).await?;
    Ok(Json(LendingFunnel {
        since: f.since,
        applied: f.applied,
        approved: f.approved,
        in_review: f.in_review,
        declined: f.declined,
        offered: f.offered,
        accepted: f.accepted,
        disbursed: f.disbursed,
        approval_by_product_grade: f
            .by_product_grade
            .into_iter()
            .map(|(product_code, grade, applied, approved)| ApprovalRate { product_code, grade, applied, approved })
            .collect(),
        decision_times: f
            .decision_times
            .into_iter()
            .map(|(below_ms, count)| DecisionTimeBucket { below_ms, count })
            .collect(),
    }))
}

/// Open loans of one grade in one delinquency bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortfolioCell {
    /// The grade granted; empty when unknown.
    pub grade: String,
    /// `current`, `m1`, `m2` or `m3_plus`.
    pub bucket: String,
    pub loans: i64,
    /// Outstanding principal, CNY fen.
    pub principal_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoanPortfolio {
    pub cells: Vec<PortfolioCell>,
}

/// The open loan book (active and overdue loans) by grade and delinquency bucket
#[utoipa::path(get, path = "/v1/lending/portfolio", tag = "lending",
    responses((status = 200, body = LoanPortfolio)), security(("api_key" = [])))]
pub async fn loan_portfolio(State(state): State<AppState>) -> Result<Json<LoanPortfolio>, ApiError> {
    let cells = reports::portfolio(&state.db)
        .await?
        .into_iter()
        .map(|c| PortfolioCell { grade: c.grade, bucket: c.bucket, loans: c.loans, principal_minor: c.principal_minor })
        .collect();
    Ok(Json(LoanPortfolio { cells }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// Decisions made before this instant (microseconds since the Unix epoch): the
    /// `decided_at` of the last decision of the previous page.
    pub before: Option<i64>,
    /// Page size, 1..=200 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecentDecisions {
    /// Newest first.
    pub decisions: Vec<DecisionView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The latest risk decisions, newest first (the live decision stream)
#[utoipa::path(get, path = "/v1/risk/decisions", tag = "risk", params(RecentQuery),
    responses((status = 200, body = RecentDecisions), (status = 422, description = "parameter_out_of_range", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn recent_decisions(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RecentQuery>,
) -> Result<Json<RecentDecisions>, ApiError> {
    let limit = page_limit("limit", q.limit, 50, 200)?;
    let decisions = state.risk.recent_decisions(q.before, limit).await?;
    let next_before = (decisions.len() == limit as usize).then(|| decisions.last().map(|d| d.decided_at)).flatten();
    Ok(Json(RecentDecisions { decisions, next_before }))
}

/// Decisions of one event kind with one outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeCount {
    /// payment, transfer, login, loan_application or account_opening.
    pub kind: String,
    /// allow, review or reject.
    pub outcome: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeMix {
    pub days: u32,
    pub counts: Vec<OutcomeCount>,
}

/// The risk decisions' outcome mix of the last `days` days, per event kind
#[utoipa::path(get, path = "/v1/risk/outcomes", tag = "risk", params(DaysQuery),
    responses((status = 200, body = OutcomeMix), (status = 422, description = "parameter_out_of_range", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn outcome_mix(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> Result<Json<OutcomeMix>, ApiError> {
    let days = bounded("days", q.days.unwrap_or(30), 1, 365)?;
    let counts = state
        .risk
        .outcome_counts(days)
        .await?
        .into_iter()
        .map(|(kind, outcome, count)| OutcomeCount { kind, outcome, count })
        .collect();
    Ok(Json(OutcomeMix { days, counts }))
}

/// A candidate fraud ring: a connected component of the relationship graph with flagged
/// customers in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RingView {
    pub customers: usize,
    /// Customers rejected or confirmed as fraud.
    pub flagged: u32,
    pub devices: u32,
    pub phones: u32,
    pub ips: u32,
    pub accounts: u32,
    pub edges: u32,
    /// Customer ids (at most 50).
    pub customer_ids: Vec<String>,
}

/// A node of the drawn ring.
#[derive(Debug, Serialize, ToSchema)]
pub struct RingNodeView {
    /// customer, device, phone, ip or account.
    pub kind: String,
    /// A customer's id; other nodes numbered per kind (`device 1`), never their value.
    pub label: String,
    /// rejected or confirmed_fraud, for customers.
    pub flag: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RingGraphView {
    pub nodes: Vec<RingNodeView>,
    /// Pairs of indexes into `nodes`.
    pub edges: Vec<[u32; 2]>,
    /// The ring has more nodes than drawn.
    pub truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FraudRings {
    /// Largest flagged share first (at most 20).
    pub rings: Vec<RingView>,
    /// The first ring as a graph (at most 300 nodes).
    pub graph: Option<RingGraphView>,
}

/// Candidate fraud rings of the relationship graph, and the first drawn as a graph
///
/// Components with at least 3 customers of whom at least 2 are flagged (rejected or confirmed
/// fraud). Devices, phones, IPs and accounts are numbered, never shown by value.
#[utoipa::path(get, path = "/v1/risk/rings", tag = "risk",
    responses((status = 200, body = FraudRings)), security(("api_key" = [])))]
pub async fn fraud_rings(State(state): State<AppState>) -> Result<Json<FraudRings>, ApiError> {
    let (rings, graph) = state.risk.rings(3, 2, 20, 300);
    Ok(Json(FraudRings {
        rings: rings
            .into_iter()
            .map(|r| RingView {
                customers: r.customers.len(),
                flagged: r.flagged,
                devices: r.devices,
                phones: r.phones,
                ips: r.ips,
                accounts: r.accounts,
                edges: r.edges,
                customer_ids: r.customers.into_iter().take(50).collect(),
            })
            .collect(),
        graph: graph.map(|g| RingGraphView {
            nodes: g
                .nodes
                .into_iter()
                .map(|n| RingNodeView {
                    kind: n.kind.as_str().into(),
                    label: n.label,
                    flag: n.flag.map(|f| risk_platform::store::enum_text(&f)),
                })
                .collect(),
            edges: g.edges.into_iter().map(|(a, b)| [a, b]).collect(),
            truncated: g.truncated,
        }),
    }))
}
