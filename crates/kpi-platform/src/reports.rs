//! Aggregates the cockpit's pages show next to the indicators (issue 14, part 2), read from the
//! lending tables and the ledger like the indicators' inputs: the application funnel with
//! approval by product and grade and the decision-time distribution, and the loan portfolio by
//! grade and delinquency bucket. One aggregate query each; nothing is stored.

use storage::Database;

use crate::Result;

/// Loan applications decided in a window and how far they got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Funnel {
    pub since: i64,
    /// Decisions made (every application reaches one).
    pub applied: i64,
    /// Approved, automatically or by an analyst.
    pub approved: i64,
    /// Still in the manual review queue.
    pub in_review: i64,
    pub declined: i64,
    /// Approved applications that got an offer.
    pub offered: i64,
    /// Offers accepted (a contract signed).
    pub accepted: i64,
    /// Contracts whose loan was disbursed.
    pub disbursed: i64,
    /// (product, grade or "", applied, approved), by product then grade.
    pub by_product_grade: Vec<(String, String, i64, i64)>,
    /// Automated decision times: (upper bound in milliseconds, or `None` for the rest, count).
    pub decision_times: Vec<(Option<i64>, i64)>,
}

/// The upper bounds (milliseconds) of the decision-time histogram.
pub const DECISION_TIME_BOUNDS_MS: [i64; 5] = [50, 100, 250, 500, 1000];

/// The funnel of the applications decided since `since` (microseconds).
pub async fn funnel(db: &Database, since: i64) -> Result<Funnel> {
    let mut f = Funnel { since, ..Funnel::default() };
    let (applied, approved, in_review, declined): (i64, i64, i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT COUNT(*), \
         CAST(COALESCE(SUM(CASE WHEN outcome = 'approve' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN outcome = 'review' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN outcome = 'decline' THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM lending_decisions WHERE created_at >= $1"
    )
    .bind(since)
    .fetch_one(conn)
    .await)?;
    (f.applied, f.approved, f.in_review, f.declined) = (applied, approved, in_review, declined);
    let (offered, accepted, disbursed): (i64, i64, i64) = storage::read!(db, |conn| sqlx::query_as(
        "SELECT COUNT(DISTINCT o.id), COUNT(DISTINCT c.id), COUNT(DISTINCT l.id) \
         FROM lending_decisions d JOIN lending_offers o ON o.decision_id = d.id \
         LEFT JOIN lending_contracts c ON c.offer_id = o.id LEFT JOIN lending_loans l ON l.contract_id = c.id \
         WHERE d.created_at >= $1"
    )
    .bind(since)
    .fetch_one(conn)
    .await)?;
    (f.offered, f.accepted, f.disbursed) = (offered, accepted, disbursed);
    f.by_product_grade = storage::read!(db, |conn| sqlx::query_as(
        "SELECT product_code, COALESCE(grade, ''), COUNT(*), \
         CAST(COALESCE(SUM(CASE WHEN outcome = 'approve' THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM lending_decisions WHERE created_at >= $1 GROUP BY product_code, COALESCE(grade, '') \
         ORDER BY product_code, COALESCE(grade, '')"
    )
    .bind(since)
    .fetch_all(conn)
    .await)?;
    let mut cases = String::new();
    for (i, bound) in DECISION_TIME_BOUNDS_MS.iter().enumerate() {
        cases.push_str(&format!("WHEN decision_micros < {} THEN {i} ", bound * 1000));
    }
    let rows: Vec<(i64, i64)> = storage::read!(db, |conn| sqlx::query_as(&format!(
        "SELECT CAST(CASE {cases}ELSE {} END AS BIGINT) AS b, COUNT(*) FROM lending_decisions \
         WHERE created_at >= $1 AND decision_micros IS NOT NULL GROUP BY b",
        DECISION_TIME_BOUNDS_MS.len()
    ))
    .bind(since)
    .fetch_all(conn)
    .await)?;
    f.decision_times = (0..=DECISION_TIME_BOUNDS_MS.len())
        .map(|i| {
            let count = rows.iter().find(|(b, _)| *b == i as i64).map_or(0, |r| r.1);
            (DECISION_TIME_BOUNDS_MS.get(i).copied(), count)
        })
        .collect();
    Ok(f)
}

/// Open loans (active or overdue) by the grade they were granted at and their delinquency bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortfolioCell {
    /// `""` when the decision had no grade.
    pub grade: String,
    /// `current`, `m1`, `m2`, `m3_plus`.
    pub bucket: String,
    pub loans: i64,
    /// Outstanding principal in CNY fen (the loans' principal accounts in the ledger).
    pub principal_minor: i64,
}

/// The open loan book by grade and bucket.
pub async fn portfolio(db: &Database) -> Result<Vec<PortfolioCell>> {
    let sql = |account_join: &str| {
        format!(
            "SELECT COALESCE(d.grade, ''), l.bucket, COUNT(*), CAST(COALESCE(SUM(a.debits_posted - a.credits_posted), 0) AS BIGINT) \
             FROM lending_loans l JOIN lending_contracts c ON c.id = l.contract_id \
             JOIN lending_offers o ON o.id = c.offer_id JOIN lending_decisions d ON d.id = o.decision_id \
             JOIN lending_loan_accounts la ON la.loan_id = l.id AND la.role = 'loan_principal' \
             JOIN accounts a ON {account_join} \
             WHERE l.status IN ('active', 'overdue') AND a.currency = 'CNY' GROUP BY COALESCE(d.grade, ''), l.bucket \
             ORDER BY COALESCE(d.grade, ''), l.bucket"
        )
    };
    let rows: Vec<(String, String, i64, i64)> = match db {
        Database::Sqlite(sqlite) => {
            sqlx::query_as(&sql("a.id = unhex(replace(la.account_id, '-', ''))")).fetch_all(&sqlite.readers).await?
        }
        Database::Postgres(pool) => sqlx::query_as(&sql("a.id = CAST(la.account_id AS UUID)")).fetch_all(pool).await?,
    };
    Ok(rows
        .into_iter()
        .map(|(grade, bucket, loans, principal_minor)| PortfolioCell { grade, bucket, loans, principal_minor })
        .collect())
}
