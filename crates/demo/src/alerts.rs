//! The demo bank's threshold alert rules on the KPIs: what a regional bank's operations team
//! would watch first. At least one of them fires on the demo data (the manual review queue of
//! the demo loans is never empty), so the Alerts page shows every state within a minute.

use kpi::alerts::{Comparator, Severity};
use kpi::{Decimal, KpiId};
use kpi_platform::{AlertError, Alerts, RuleSpec};

fn spec(
    name: &str,
    kpi: KpiId,
    comparator: Comparator,
    threshold: Decimal,
    for_secs: i64,
    severity: Severity,
) -> RuleSpec {
    RuleSpec { name: name.into(), kpi, comparator, threshold, for_secs, severity, enabled: true }
}

/// The demo rules (names in Chinese, the cockpit's default language).
pub fn alert_rules() -> Vec<RuleSpec> {
    use Comparator::{Above, Below};
    use Severity::{Critical, Info, Warning};
    vec![
        spec("不良贷款率超过 2%", KpiId::NplRatio, Above, Decimal::new(2, 2), 0, Critical),
        spec("逾期率(M1+)超过 5%", KpiId::OverdueRatio, Above, Decimal::new(5, 2), 600, Warning),
        spec("欺诈拒绝率超过 10%", KpiId::FraudRejectRate, Above, Decimal::new(10, 2), 300, Warning),
        spec("API 错误率超过 1%", KpiId::ApiErrorRate, Above, Decimal::new(1, 2), 300, Critical),
        spec("人工审核积压", KpiId::ReviewBacklog, Above, Decimal::ZERO, 0, Warning),
        spec("自动化决策占比低于 60%", KpiId::StraightThroughShare, Below, Decimal::new(60, 2), 3600, Info),
        spec("流失风险客户占比超过 30%", KpiId::ChurnRiskShare, Above, Decimal::new(30, 2), 3600, Warning),
    ]
}

/// Stores the demo rules when there are no rules yet; returns how many were stored.
pub async fn ensure_alert_rules(alerts: &Alerts, now: i64) -> Result<usize, AlertError> {
    if !alerts.list().await?.is_empty() {
        return Ok(0);
    }
    let rules = alert_rules();
    for rule in &rules {
        alerts.create(rule.clone(), "demo", now).await?;
    }
    Ok(rules.len())
}
