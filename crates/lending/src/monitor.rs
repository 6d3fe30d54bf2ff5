//! Overdue ageing and post-loan monitoring: days-past-due buckets, early-warning signals from two
//! adapter snapshots and an inflow series, and alerts with a severity.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::data::recent_change_pct;
use crate::data::AdapterSnapshot;
use crate::loan::{Bucket, Loan, LoanStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// A monitoring alert on a loan (overdue bucket, early-warning signal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub code: String,
    pub severity: Severity,
    pub message: String,
}

fn alert(code: &str, severity: Severity, message: String) -> Alert {
    Alert { code: code.into(), severity, message }
}

/// Early-warning signals between a snapshot taken at origination (or the last review) and a
/// fresh one, plus a monthly inflow series (oldest first; e.g. from the ledger or the tax data):
/// * `inflow_drop`: last 3 months' inflows fell ≥ 30% (warning) or ≥ 60% (critical);
/// * `new_bureau_delinquency`: more delinquencies than before (warning), or a current
///   delinquency of 30+ days (critical);
/// * `tax_drop`: last year's tax fell ≥ 30% (warning) or ≥ 60% (critical) compared with the
///   previous snapshot's year, or the tax credit rating fell to C/D (critical);
/// * `social_security_stopped`: contributions were active and stopped (warning: job loss).
pub fn early_warnings(previous: &AdapterSnapshot, current: &AdapterSnapshot, inflows: &[i64]) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(change) = recent_change_pct(inflows) {
        if change <= -60 {
            out.push(alert(
                "inflow_drop",
                Severity::Critical,
                format!("inflows fell {}% in the last 3 months", -change),
            ));
        } else if change <= -30 {
            out.push(alert(
                "inflow_drop",
                Severity::Warning,
                format!("inflows fell {}% in the last 3 months", -change),
            ));
        }
    }
    if let (Some(before), Some(now)) = (&previous.bureau, &current.bureau) {
        if now.current_dpd >= 30 {
            out.push(alert(
                "new_bureau_delinquency",
                Severity::Critical,
                format!("bureau shows an obligation {} days past due", now.current_dpd),
            ));
        } else if now.delinquencies_12m > before.delinquencies_12m {
            out.push(alert(
                "new_bureau_delinquency",
                Severity::Warning,
                format!(
                    "bureau delinquencies in 12 months rose from {} to {}",
                    before.delinquencies_12m, now.delinquencies_12m
                ),
            ));
        }
    }
    if let (Some(before), Some(now)) = (&previous.tax, &current.tax) {
        if let (Some(b), Some(n)) = (before.last_year(), now.last_year()) {
            if b.tax_paid_minor > 0 {
                let change = (n.tax_paid_minor - b.tax_paid_minor) * 100 / b.tax_paid_minor;
                if change <= -60 {
                    out.push(alert("tax_drop", Severity::Critical, format!("tax paid fell {}%", -change)));
                } else if change <= -30 {
                    out.push(alert("tax_drop", Severity::Warning, format!("tax paid fell {}%", -change)));
                }
            }
        }
        if matches!(now.credit_rating.as_str(), "C" | "D") && !matches!(before.credit_rating.as_str(), "C" | "D") {
            out.push(alert(
                "tax_rating_downgrade",
                Severity::Critical,
                format!("tax credit rating fell from {} to {}", before.credit_rating, now.credit_rating),
            ));
        }
    }
    if let (Some(before), Some(now)) = (&previous.social_security, &current.social_security) {
        if before.active && !now.active {
            out.push(alert(
                "social_security_stopped",
                Severity::Warning,
                "social security contributions stopped".into(),
            ));
        }
    }
    out
}

/// Alerts from a loan's own ageing: M1 → info, M2 → warning, M3+ → critical.
pub fn loan_alerts(loan: &Loan) -> Vec<Alert> {
    if loan.status != LoanStatus::Overdue {
        return Vec::new();
    }
    let (sev, code) = match loan.bucket() {
        Bucket::Current => return Vec::new(),
        Bucket::M1 => (Severity::Info, "overdue_m1"),
        Bucket::M2 => (Severity::Warning, "overdue_m2"),
        Bucket::M3Plus => (Severity::Critical, "overdue_m3_plus"),
    };
    vec![alert(
        code,
        sev,
        format!(
            "{} days past due; overdue principal {} and interest {} (minor units)",
            loan.dpd,
            loan.overdue_principal(),
            loan.overdue_interest()
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Simulator, TaxSource};
    use crate::{BureauSource, DataSources, Product, SocialSecuritySource};
    use customer::CustomerKind;

    #[test]
    fn buckets() {
        assert_eq!(Bucket::from_dpd(0), Bucket::Current);
        assert_eq!(Bucket::from_dpd(1), Bucket::M1);
        assert_eq!(Bucket::from_dpd(30), Bucket::M1);
        assert_eq!(Bucket::from_dpd(31), Bucket::M2);
        assert_eq!(Bucket::from_dpd(60), Bucket::M2);
        assert_eq!(Bucket::from_dpd(61), Bucket::M3Plus);
    }

    #[test]
    fn early_warnings_fire_on_deterioration_only() {
        let sim = Simulator::new(11);
        let applicant = sim.applicant("W1", CustomerKind::Sme);
        let sources = DataSources::simulated(11);
        let before = sources.collect(&applicant, &Product::tax_sme(), sim.base_date).unwrap();
        let flat = vec![100_000_00; 12];
        assert!(early_warnings(&before, &before, &flat).is_empty());

        let mut after = before.clone();
        let mut bureau = sim.bureau_report("W1").unwrap().unwrap();
        bureau.delinquencies_12m += 2;
        after.bureau = Some(bureau);
        let mut tax = sim.tax_record("W1").unwrap().unwrap_or_else(|| before.tax.clone().unwrap());
        tax.years[0].tax_paid_minor = before.tax.as_ref().map(|t| t.years[0].tax_paid_minor).unwrap_or(1) / 4;
        after.tax = Some(tax);
        let mut falling = vec![100_000_00; 9];
        falling.extend([30_000_00, 30_000_00, 30_000_00]);
        let alerts = early_warnings(&before, &after, &falling);
        let codes: Vec<(&str, Severity)> = alerts.iter().map(|a| (a.code.as_str(), a.severity)).collect();
        assert!(codes.contains(&("inflow_drop", Severity::Critical)), "{codes:?}");
        assert!(codes.contains(&("new_bureau_delinquency", Severity::Warning)), "{codes:?}");
        assert!(codes.contains(&("tax_drop", Severity::Critical)), "{codes:?}");

        let mut ss_before = before.clone();
        ss_before.social_security = sim.social_security("W1").unwrap().map(|mut s| {
            s.active = true;
            s
        });
        let mut ss_after = ss_before.clone();
        if let Some(s) = ss_after.social_security.as_mut() {
            s.active = false;
            let alerts = early_warnings(&ss_before, &ss_after, &[]);
            assert_eq!(alerts[0].code, "social_security_stopped");
        }
        let _ = sim.bureau_report("W2");
    }
}
