//! Transaction behaviour from raw activity: folds a customer's money movements (ledger entries
//! in production, generated transactions in benchmarks) into the windowed aggregates of
//! [`CustomerFacts`]. One fold, so the profile means the same thing wherever its input came from.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::identity::Channel;
use crate::profile::{CustomerFacts, MerchantSpend, TxWindow};

/// Direction of a money movement from the customer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inflow,
    Outflow,
}

/// One money movement of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub on: NaiveDate,
    pub direction: Direction,
    pub amount_minor: i64,
    pub channel: Option<Channel>,
    pub merchant_category: Option<String>,
    /// A salary credit (payroll customers are a tag and a churn signal).
    pub payroll: bool,
}

/// Parses the channel names used in transfer metadata (`mobile_app`, `web`, ...). Channels that
/// are not customer-facing (card schemes, payroll files) give `None`.
pub fn channel_from_str(s: &str) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| c.as_str() == s)
}

/// Accumulates activity into the 30/90/180-day windows ending at `as_of` (inclusive), the
/// recency, channels and merchant spend of the last 90 days, and payroll credits.
///
/// Activity dated after `as_of` or more than 180 days before it is ignored, so the same input
/// always folds into the same facts regardless of order.
#[derive(Debug, Clone)]
pub struct ActivityFold {
    as_of: NaiveDate,
    tx_30d: TxWindow,
    tx_90d: TxWindow,
    tx_180d: TxWindow,
    last_on: Option<NaiveDate>,
    channels_90d: Vec<Channel>,
    merchants_90d: BTreeMap<String, (u32, i64)>,
    payroll_90d: u32,
}

impl ActivityFold {
    pub fn new(as_of: NaiveDate) -> Self {
        ActivityFold {
            as_of,
            tx_30d: TxWindow::default(),
            tx_90d: TxWindow::default(),
            tx_180d: TxWindow::default(),
            last_on: None,
            channels_90d: Vec::new(),
            merchants_90d: BTreeMap::new(),
            payroll_90d: 0,
        }
    }

    pub fn add(&mut self, a: &Activity) {
        if a.on > self.as_of {
            return;
        }
        let age = (self.as_of - a.on).num_days();
        if age >= 180 {
            return;
        }
        let bump = |w: &mut TxWindow| match a.direction {
            Direction::Inflow => {
                w.inflow_count += 1;
                w.inflow_minor = w.inflow_minor.saturating_add(a.amount_minor);
            }
            Direction::Outflow => {
                w.outflow_count += 1;
                w.outflow_minor = w.outflow_minor.saturating_add(a.amount_minor);
            }
        };
        bump(&mut self.tx_180d);
        if age < 90 {
            bump(&mut self.tx_90d);
            if let Some(c) = a.channel {
                if !self.channels_90d.contains(&c) {
                    self.channels_90d.push(c);
                }
            }
            if let (Direction::Outflow, Some(cat)) = (a.direction, &a.merchant_category) {
                let slot = self.merchants_90d.entry(cat.clone()).or_default();
                slot.0 += 1;
                slot.1 = slot.1.saturating_add(a.amount_minor);
            }
            if a.payroll && a.direction == Direction::Inflow {
                self.payroll_90d += 1;
            }
        }
        if age < 30 {
            bump(&mut self.tx_30d);
        }
        if self.last_on.is_none_or(|d| a.on > d) {
            self.last_on = Some(a.on);
        }
    }

    /// Writes the aggregates into `facts`, replacing its behaviour fields.
    pub fn apply(mut self, facts: &mut CustomerFacts) {
        facts.tx_30d = self.tx_30d;
        facts.tx_90d = self.tx_90d;
        facts.tx_180d = self.tx_180d;
        if self.last_on.is_some() {
            facts.last_transaction_on = self.last_on;
        }
        self.channels_90d.sort();
        facts.channels_used_90d = self.channels_90d;
        facts.merchant_spend_90d = self
            .merchants_90d
            .into_iter()
            .map(|(category, (count, amount_minor))| MerchantSpend { category, count, amount_minor })
            .collect();
        facts.payroll_credits_90d = self.payroll_90d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CustomerId, CustomerKind};

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, day).unwrap()
    }

    #[test]
    fn folds_windows_recency_channels_and_merchants() {
        let as_of = d(30);
        let mut fold = ActivityFold::new(as_of);
        let mk = |on, direction, amount_minor, cat: Option<&str>, payroll| Activity {
            on,
            direction,
            amount_minor,
            channel: Some(Channel::MobileApp),
            merchant_category: cat.map(str::to_string),
            payroll,
        };
        fold.add(&mk(d(28), Direction::Inflow, 10_000_00, None, true));
        fold.add(&mk(d(29), Direction::Outflow, 200_00, Some("dining"), false));
        fold.add(&mk(d(29), Direction::Outflow, 300_00, Some("dining"), false));
        fold.add(&mk(as_of - chrono::Duration::days(100), Direction::Outflow, 50_00, Some("travel"), false));
        fold.add(&mk(as_of - chrono::Duration::days(200), Direction::Outflow, 1, None, false));
        fold.add(&mk(as_of + chrono::Duration::days(1), Direction::Outflow, 1, None, false));
        let mut f = CustomerFacts::empty(CustomerId::from_u128(1), CustomerKind::Individual, d(1), as_of);
        fold.apply(&mut f);
        assert_eq!(
            f.tx_30d,
            TxWindow { inflow_count: 1, inflow_minor: 10_000_00, outflow_count: 2, outflow_minor: 500_00 }
        );
        assert_eq!(f.tx_180d.outflow_count, 3);
        assert_eq!(f.last_transaction_on, Some(d(29)));
        assert_eq!(f.payroll_credits_90d, 1);
        assert_eq!(f.channels_used_90d, vec![Channel::MobileApp]);
        assert_eq!(
            f.merchant_spend_90d,
            vec![MerchantSpend { category: "dining".into(), count: 2, amount_minor: 500_00 }]
        );
    }
}
