//! Every indicator's inputs, read from stored data at `now`: one query per source, `$N`
//! placeholders for both backends; the one join whose text differs (a loan's account id stored
//! as text against the ledger's UUID column) is chosen per backend.

use kpi::{Decimal, Inputs, LoanBook, WINDOW_30D_MICROS};
use storage::Database;

use crate::{KpiPlatformError, Result};

/// A lending decision's own time, when it was stored, and its review's status and decision time.
type DecisionRow = (Option<i64>, i64, Option<String>, Option<i64>);

pub async fn read(db: &Database, now: i64) -> Result<Inputs> {
    let since_30d = now - WINDOW_30D_MICROS;
    let mut i = Inputs { now, ..Inputs::default() };

    // business: digital channel share (counted incrementally from the journal)
    let (transactions, digital): (i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(transactions), 0) AS BIGINT), CAST(COALESCE(SUM(digital), 0) AS BIGINT) \
         FROM kpi_channel_hours WHERE hour >= $1"
    )
    .bind(kpi::hour_bucket(since_30d))
    .fetch_one(conn)
    .await)?;
    (i.channel_transactions_30d, i.digital_transactions_30d) = (transactions, digital);

    // customers: registered and still active, new in 30 days, with a mobile-app identity
    let (active, new): (i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN created_at >= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM customers WHERE status = 'active'"
    )
    .bind(since_30d)
    .fetch_one(conn)
    .await)?;
    (i.active_status_customers, i.new_customers_30d) = (active, new);
    i.app_customers = storage::read!(db, |conn| sqlx::query_scalar(
        "SELECT COUNT(DISTINCT i.customer_id) FROM customer_identities i JOIN customers c ON c.id = i.customer_id \
         WHERE i.channel = 'mobile_app' AND c.status = 'active'"
    )
    .fetch_one(conn)
    .await)?;

    // ledger: customer deposits (customer-owned liability accounts in CNY)
    let (deposits, deposit_accounts): (i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(credits_posted - debits_posted), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN status <> 'closed' THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM accounts WHERE owner_type = 'customer' AND kind = 'liability' AND currency = 'CNY'"
    )
    .fetch_one(conn)
    .await)?;
    (i.deposit_balance_minor, i.open_deposit_accounts) = (i128::from(deposits), deposit_accounts);

    // lending: outstanding principal of open loans by bucket, from their principal accounts
    let loans_sql = |account_join: &str| {
        format!(
            "SELECT l.bucket, CAST(COALESCE(SUM(a.debits_posted - a.credits_posted), 0) AS BIGINT), COUNT(*) \
             FROM lending_loans l JOIN lending_loan_accounts la ON la.loan_id = l.id AND la.role = 'loan_principal' \
             JOIN accounts a ON {account_join} \
             WHERE l.status IN ('active', 'overdue') AND a.currency = 'CNY' GROUP BY l.bucket"
        )
    };
    let rows: Vec<(String, i64, i64)> = match db {
        Database::Sqlite(sqlite) => {
            sqlx::query_as(&loans_sql("a.id = unhex(replace(la.account_id, '-', ''))"))
                .fetch_all(&sqlite.readers)
                .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(&loans_sql("a.id = CAST(la.account_id AS UUID)")).fetch_all(pool).await?
        }
    };
    let mut book = LoanBook::default();
    for (bucket, principal, loans) in rows {
        book.add(&bucket, principal);
        i.open_loans += loans;
    }
    i.loans = book;

    // customer activity (counted incrementally from the journal)
    i.active_customers_30d = storage::read!(db, |conn| sqlx::query_scalar(
        "SELECT COUNT(DISTINCT customer_id) FROM kpi_customer_activity WHERE last_active_at >= $1"
    )
    .bind(since_30d)
    .fetch_one(conn)
    .await)?;
    let (previous, retained): (i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM kpi_customer_activity c \
         WHERE c.customer_id = p.customer_id AND c.quarter = $2) THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM kpi_customer_activity p WHERE p.quarter = $1"
    )
    .bind(kpi::quarter_start(now, 1))
    .bind(kpi::quarter_start(now, 0))
    .fetch_one(conn)
    .await)?;
    (i.previous_quarter_active, i.retained_this_quarter) = (previous, retained);

    // customer data platform: churn scores and AUM of customers not retired
    let (scored, at_risk, aum_sum, profiled): (i64, i64, i64, i64) = storage::read!(db, |conn| {
        sqlx::query_as(
        "SELECT COUNT(r.churn_score), CAST(COALESCE(SUM(CASE WHEN r.churn_score >= $1 THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(r.aum_minor), 0) AS BIGINT), COUNT(*) \
         FROM customer_results r JOIN customer_profiles p ON p.ordinal = r.ordinal WHERE p.retired_at IS NULL"
    )
    .bind(kpi::CHURN_RISK_THRESHOLD)
    .fetch_one(conn)
    .await
    })?;
    (i.churn_scored, i.churn_at_risk, i.aum_sum_minor, i.aum_customers) =
        (scored, at_risk, i128::from(aum_sum), profiled);

    // lending operations: straight-through share and decision times of the last 30 days
    let decisions: Vec<DecisionRow> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT d.decision_micros, d.created_at, q.status, q.decided_at FROM lending_decisions d \
         LEFT JOIN lending_review_queue q ON q.decision_id = d.id WHERE d.created_at >= $1"
    )
    .bind(since_30d)
    .fetch_all(conn)
    .await)?;
    for (decision_micros, created_at, review_status, decided_at) in decisions {
        i.lending_decisions_30d += 1;
        if review_status.is_some() {
            i.lending_reviewed_30d += 1;
        }
        // Decided automatically: its own time; reviewed: plus the wait until the analyst
        // decided. Still in review, or stored before the time was recorded: no time yet.
        let time = match (decision_micros, review_status.as_deref(), decided_at) {
            (Some(m), None, _) => Some(m),
            (Some(m), Some(status), Some(at)) if status != "open" => Some(m + (at - created_at).max(0)),
            _ => None,
        };
        i.decision_times_micros.extend(time);
    }
    let (open, oldest): (i64, Option<i64>) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM lending_review_queue WHERE status = 'open'"
    )
    .fetch_one(conn)
    .await)?;
    (i.review_open, i.review_oldest_at) = (open, oldest);
    let eod: Option<(i64, i64)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT started_at, finished_at FROM lending_eod_runs WHERE status = 'done' AND finished_at IS NOT NULL \
         ORDER BY business_date DESC LIMIT 1"
    )
    .fetch_optional(conn)
    .await)?;
    i.last_eod_micros = eod.map(|(started, finished)| finished - started);

    // API responses of the last 24 hourly buckets, every node
    let (requests, errors): (i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT), CAST(COALESCE(SUM(server_errors), 0) AS BIGINT) \
         FROM kpi_api_requests WHERE hour > $1"
    )
    .bind(kpi::hour_bucket(now) - 24 * kpi::HOUR_MICROS)
    .fetch_one(conn)
    .await)?;
    (i.api_requests_24h, i.api_server_errors_24h) = (requests, errors);

    // risk: decisions and rejects, confirmed fraud, treasury VaR
    let (risk_decisions, rejects): (i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN outcome = 'reject' THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM risk_decisions WHERE created_at >= $1"
    )
    .bind(since_30d)
    .fetch_one(conn)
    .await)?;
    (i.risk_decisions_30d, i.risk_rejects_30d) = (risk_decisions, rejects);
    let events: Vec<(String,)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT d.event FROM risk_cases c JOIN risk_decisions d ON d.id = c.decision_id \
         WHERE c.resolution = 'confirmed_fraud' AND c.resolved_at >= $1"
    )
    .bind(since_30d)
    .fetch_all(conn)
    .await)?;
    for (event,) in events {
        let event: serde_json::Value =
            serde_json::from_str(&event).map_err(|e| KpiPlatformError::Corrupt(format!("risk decision event: {e}")))?;
        let amount = &event["amount"];
        if amount["currency"] == "CNY" {
            i.confirmed_fraud_minor_30d += i128::from(amount["minor"].as_i64().unwrap_or(0));
        }
    }
    let var: Option<i64> = storage::read!(db, |conn| sqlx::query_scalar(
        "SELECT value_at_risk FROM risk_var_reports WHERE method = 'historical' AND confidence_bp = 9900 \
         AND horizon_days = 1 AND currency = 'CNY' ORDER BY created_at DESC LIMIT 1"
    )
    .fetch_optional(conn)
    .await)?;
    i.treasury_var_minor = var.map(Decimal::from);
    Ok(i)
}
