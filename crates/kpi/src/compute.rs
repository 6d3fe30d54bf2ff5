//! From the figures a platform read from stored data to indicator values.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::catalogue::KpiId;

/// A customer is at churn risk when the churn model gives at least this probability.
pub const CHURN_RISK_THRESHOLD: f64 = 0.5;

/// Decimal places of ratios.
const RATIO_SCALE: u32 = 6;
/// Decimal places of durations in seconds (microsecond precision).
const SECONDS_SCALE: u32 = 6;

/// Transfer channels (`metadata.channel`) that count as digital.
pub fn is_digital_channel(channel: &str) -> bool {
    matches!(channel, "mobile" | "mobile_app" | "web" | "partner" | "open_banking")
}

/// `numerator ÷ denominator` rounded half-up to six places; `None` when the denominator is 0.
pub fn ratio(numerator: i128, denominator: i128) -> Option<Decimal> {
    if denominator == 0 {
        return None;
    }
    let n = Decimal::try_from_i128_with_scale(numerator, 0).ok()?;
    let d = Decimal::try_from_i128_with_scale(denominator, 0).ok()?;
    n.checked_div(d).map(|r| r.round_dp_with_strategy(RATIO_SCALE, RoundingStrategy::MidpointAwayFromZero))
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `values`; `None` when empty. Sorts a copy.
pub fn percentile(values: &[i64], p: u32) -> Option<i64> {
    if values.is_empty() || p == 0 || p > 100 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted.get(rank - 1).copied()
}

fn seconds(micros: i64) -> Decimal {
    Decimal::new(micros, 6).round_dp(SECONDS_SCALE)
}

fn minor(amount: i128) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(amount, 0).ok()
}

/// Outstanding principal (minor units, CNY) of active and overdue loans by days-past-due bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoanBook {
    pub current: i64,
    pub m1: i64,
    pub m2: i64,
    pub m3_plus: i64,
}

impl LoanBook {
    pub fn total(&self) -> i128 {
        i128::from(self.current) + i128::from(self.m1) + i128::from(self.m2) + i128::from(self.m3_plus)
    }

    /// Adds `principal` to the bucket named as `lending_loans.bucket` stores it.
    pub fn add(&mut self, bucket: &str, principal: i64) {
        let slot = match bucket {
            "m1" => &mut self.m1,
            "m2" => &mut self.m2,
            "m3_plus" => &mut self.m3_plus,
            _ => &mut self.current,
        };
        *slot = slot.saturating_add(principal);
    }
}

/// Everything the indicators are computed from, as read from stored data at `now`.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub now: i64,
    /// Journal entries of the last 30 days with a channel, and those with a digital one.
    pub channel_transactions_30d: i64,
    pub digital_transactions_30d: i64,
    /// Customers with status active.
    pub active_status_customers: i64,
    pub new_customers_30d: i64,
    pub deposit_balance_minor: i128,
    pub loans: LoanBook,
    pub open_deposit_accounts: i64,
    pub open_loans: i64,
    pub active_customers_30d: i64,
    pub churn_scored: i64,
    pub churn_at_risk: i64,
    pub previous_quarter_active: i64,
    pub retained_this_quarter: i64,
    pub app_customers: i64,
    pub aum_sum_minor: i128,
    pub aum_customers: i64,
    pub lending_decisions_30d: i64,
    pub lending_reviewed_30d: i64,
    /// Application-to-final-decision times (microseconds) of the decided applications.
    pub decision_times_micros: Vec<i64>,
    pub review_open: i64,
    /// When the oldest open review item entered the queue.
    pub review_oldest_at: Option<i64>,
    /// Duration of the last completed end of day (microseconds).
    pub last_eod_micros: Option<i64>,
    pub api_requests_24h: i64,
    pub api_server_errors_24h: i64,
    pub risk_decisions_30d: i64,
    pub risk_rejects_30d: i64,
    pub confirmed_fraud_minor_30d: i128,
    /// The latest recorded 99% treasury VaR (minor units).
    pub treasury_var_minor: Option<Decimal>,
}

/// One indicator's value at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub id: KpiId,
    pub value: Option<Decimal>,
}

/// Every indicator from `inputs`, in [`KpiId::ALL`] order.
pub fn compute(inputs: &Inputs) -> Vec<Reading> {
    KpiId::ALL.iter().map(|id| Reading { id: *id, value: value(*id, inputs) }).collect()
}

fn value(id: KpiId, i: &Inputs) -> Option<Decimal> {
    let count = |n: i64| Some(Decimal::from(n));
    match id {
        KpiId::DigitalChannelShare => {
            ratio(i128::from(i.digital_transactions_30d), i128::from(i.channel_transactions_30d))
        }
        KpiId::NewCustomers => count(i.new_customers_30d),
        KpiId::DepositBalance => minor(i.deposit_balance_minor),
        KpiId::LoanBalance => minor(i.loans.total()),
        KpiId::ProductsPerCustomer => {
            ratio(i128::from(i.open_deposit_accounts) + i128::from(i.open_loans), i128::from(i.active_status_customers))
        }
        KpiId::ActiveCustomers => count(i.active_customers_30d),
        KpiId::ChurnRiskShare => ratio(i128::from(i.churn_at_risk), i128::from(i.churn_scored)),
        KpiId::QuarterRetention => ratio(i128::from(i.retained_this_quarter), i128::from(i.previous_quarter_active)),
        KpiId::DigitalAdoption => ratio(i128::from(i.app_customers), i128::from(i.active_status_customers)),
        KpiId::AverageAum => {
            if i.aum_customers == 0 {
                return None;
            }
            let sum = Decimal::try_from_i128_with_scale(i.aum_sum_minor, 0).ok()?;
            sum.checked_div(Decimal::from(i.aum_customers))
                .map(|avg| avg.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero))
        }
        KpiId::StraightThroughShare => {
            ratio(i128::from(i.lending_decisions_30d - i.lending_reviewed_30d), i128::from(i.lending_decisions_30d))
        }
        KpiId::DecisionTimeP50 => percentile(&i.decision_times_micros, 50).map(seconds),
        KpiId::DecisionTimeP95 => percentile(&i.decision_times_micros, 95).map(seconds),
        KpiId::ReviewBacklog => count(i.review_open),
        KpiId::ReviewOldestAge => i.review_oldest_at.map(|at| seconds((i.now - at).max(0))),
        KpiId::EodDuration => i.last_eod_micros.map(|m| seconds(m.max(0))),
        KpiId::ApiErrorRate => ratio(i128::from(i.api_server_errors_24h), i128::from(i.api_requests_24h)),
        KpiId::FraudRejectRate => ratio(i128::from(i.risk_rejects_30d), i128::from(i.risk_decisions_30d)),
        KpiId::ConfirmedFraudAmount => minor(i.confirmed_fraud_minor_30d),
        KpiId::NplRatio => ratio(i128::from(i.loans.m3_plus), i.loans.total()),
        KpiId::OverdueRatio => {
            ratio(i128::from(i.loans.m1) + i128::from(i.loans.m2) + i128::from(i.loans.m3_plus), i.loans.total())
        }
        KpiId::TreasuryVar99 => i.treasury_var_minor,
    }
}

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)] // amounts written as yuan_fen
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn get(readings: &[Reading], id: KpiId) -> Option<Decimal> {
        readings.iter().find(|r| r.id == id).and_then(|r| r.value)
    }

    #[test]
    fn empty_bank_has_counts_and_no_ratios() {
        let r = compute(&Inputs::default());
        assert_eq!(r.len(), KpiId::ALL.len());
        assert_eq!(get(&r, KpiId::NewCustomers), Some(Decimal::ZERO));
        assert_eq!(get(&r, KpiId::LoanBalance), Some(Decimal::ZERO));
        for id in [KpiId::DigitalChannelShare, KpiId::NplRatio, KpiId::AverageAum, KpiId::DecisionTimeP50] {
            assert_eq!(get(&r, id), None, "{id:?} has no denominator");
        }
        assert_eq!(get(&r, KpiId::EodDuration), None, "never ran");
    }

    #[test]
    fn figures() {
        let mut loans = LoanBook::default();
        loans.add("current", 700_00);
        loans.add("m1", 100_00);
        loans.add("m3_plus", 200_00);
        let inputs = Inputs {
            now: 10_000_000,
            digital_transactions_30d: 3,
            channel_transactions_30d: 4,
            loans,
            open_deposit_accounts: 5,
            open_loans: 2,
            active_status_customers: 4,
            aum_sum_minor: 10,
            aum_customers: 4,
            decision_times_micros: vec![4_000, 1_000, 3_000, 2_000, 100_000_000],
            review_oldest_at: Some(4_000_000),
            lending_decisions_30d: 10,
            lending_reviewed_30d: 1,
            ..Inputs::default()
        };
        let r = compute(&inputs);
        assert_eq!(get(&r, KpiId::DigitalChannelShare), Some(Decimal::new(75, 2)));
        assert_eq!(get(&r, KpiId::LoanBalance), Some(Decimal::from(1000_00)));
        assert_eq!(get(&r, KpiId::NplRatio), Some(Decimal::new(2, 1)));
        assert_eq!(get(&r, KpiId::OverdueRatio), Some(Decimal::new(3, 1)));
        assert_eq!(get(&r, KpiId::ProductsPerCustomer), Some(Decimal::new(175, 2)));
        assert_eq!(get(&r, KpiId::AverageAum), Some(Decimal::from(3)), "2.5 rounds half up");
        assert_eq!(get(&r, KpiId::DecisionTimeP50), Some(Decimal::new(3_000, 6)));
        assert_eq!(get(&r, KpiId::DecisionTimeP95), Some(Decimal::from(100)));
        assert_eq!(get(&r, KpiId::ReviewOldestAge), Some(Decimal::from(6)));
        assert_eq!(get(&r, KpiId::StraightThroughShare), Some(Decimal::new(9, 1)));
    }

    #[test]
    fn digital_channels() {
        for c in ["mobile", "mobile_app", "web", "partner", "open_banking"] {
            assert!(is_digital_channel(c));
        }
        for c in ["branch", "card", "payroll", ""] {
            assert!(!is_digital_channel(c));
        }
    }

    proptest! {
        #[test]
        fn ratios_are_fractions(n in 0i128..1_000_000, extra in 0i128..1_000_000) {
            let r = ratio(n, n + extra);
            if n + extra == 0 {
                prop_assert!(r.is_none());
            } else {
                let r = r.unwrap();
                prop_assert!(r >= Decimal::ZERO && r <= Decimal::ONE);
            }
        }

        #[test]
        fn percentile_is_a_member_and_monotonic(values in proptest::collection::vec(0i64..1_000_000, 1..200)) {
            let p50 = percentile(&values, 50).unwrap();
            let p95 = percentile(&values, 95).unwrap();
            prop_assert!(values.contains(&p50) && values.contains(&p95));
            prop_assert!(p50 <= p95);
            prop_assert_eq!(percentile(&values, 100), values.iter().max().copied());
        }
    }
}
