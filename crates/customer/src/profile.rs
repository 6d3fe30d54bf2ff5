//! The 360° profile: computed deterministically from [`CustomerFacts`] in five dimensions.
//!
//! All money is CNY in integer minor units (fen). Sums saturate at `i64::MAX` rather than
//! wrap (a bound no real balance reaches).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::identity::{Channel, CustomerId, CustomerKind, KycStatus};

/// Customer risk tolerance from the suitability questionnaire (R1 = conservative .. R5 =
/// aggressive). Products carry the same scale; see [`crate::recommend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RiskLevel {
    R1,
    R2,
    R3,
    R4,
    R5,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 5] = [RiskLevel::R1, RiskLevel::R2, RiskLevel::R3, RiskLevel::R4, RiskLevel::R5];

    pub fn as_str(self) -> &'static str {
        ["R1", "R2", "R3", "R4", "R5"][self.rank() as usize - 1]
    }

    /// 1..=5.
    pub fn rank(self) -> u8 {
        self as u8 + 1
    }
}

/// Credit grade from the lending decision engine, best first: the same ten-grade scale as the
/// `lending` crate (AAA, AA, A, BBB, BB, B, CCC, C, D, E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CreditGrade {
    AAA,
    AA,
    A,
    BBB,
    BB,
    B,
    CCC,
    C,
    D,
    E,
}

impl CreditGrade {
    pub const ALL: [CreditGrade; 10] = [
        CreditGrade::AAA,
        CreditGrade::AA,
        CreditGrade::A,
        CreditGrade::BBB,
        CreditGrade::BB,
        CreditGrade::B,
        CreditGrade::CCC,
        CreditGrade::C,
        CreditGrade::D,
        CreditGrade::E,
    ];

    pub fn as_str(self) -> &'static str {
        ["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "C", "D", "E"][self as usize]
    }

    /// 1 (AAA) ..= 10 (E).
    pub fn rank(self) -> u8 {
        self as u8 + 1
    }
}

/// Transaction aggregates over one trailing window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxWindow {
    pub inflow_count: u32,
    pub inflow_minor: i64,
    pub outflow_count: u32,
    pub outflow_minor: i64,
}

/// Card / payment spend in one merchant category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantSpend {
    /// Category code such as `groceries`, `dining`, `travel` (see [`crate::tags::MERCHANT_CATEGORIES`]).
    pub category: String,
    pub count: u32,
    pub amount_minor: i64,
}

/// Raw facts about one customer as of a business date; the later wiring fills this from the
/// ledger, lending, wealth and channel logs. The profile is a pure function of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerFacts {
    pub customer_id: CustomerId,
    pub kind: CustomerKind,
    pub as_of: NaiveDate,
    pub opened_on: NaiveDate,
    pub birth_date: Option<NaiveDate>,
    pub kyc: KycStatus,
    /// 1 = Beijing/Shanghai/Guangzhou/Shenzhen .. 5.
    pub city_tier: Option<u8>,
    pub industry: Option<String>,
    pub employees: Option<u32>,
    pub annual_revenue_minor: Option<i64>,
    pub linked_channels: Vec<Channel>,

    pub demand_deposits_minor: i64,
    pub time_deposits_minor: i64,
    /// Funds and wealth-management products at market value.
    pub wealth_minor: i64,
    /// Cash value of insurance policies sold by the bank.
    pub insurance_minor: i64,
    /// AUM 90 days before `as_of`, if known (for trend tags and churn).
    pub aum_90d_ago_minor: Option<i64>,
    pub loans_minor: i64,
    pub card_balance_minor: i64,
    pub credit_limit_minor: i64,
    pub overdue_minor: i64,
    pub max_days_past_due: u32,
    /// Product codes currently held (see [`crate::recommend::Catalog`]).
    pub holdings: Vec<String>,

    pub tx_30d: TxWindow,
    pub tx_90d: TxWindow,
    pub tx_180d: TxWindow,
    pub last_transaction_on: Option<NaiveDate>,
    pub last_login_on: Option<NaiveDate>,
    pub logins_30d: u32,
    pub channels_used_90d: Vec<Channel>,
    pub merchant_spend_90d: Vec<MerchantSpend>,
    /// Salary credits received in the last 90 days.
    pub payroll_credits_90d: u32,
    pub complaints_90d: u32,

    pub risk_level: Option<RiskLevel>,
    pub risk_assessed_on: Option<NaiveDate>,
    pub credit_grade: Option<CreditGrade>,
    /// Tax credit grade of a business (A, B, M, C, D).
    pub tax_grade: Option<String>,
}

impl CustomerFacts {
    /// Facts for a customer with no balances and no activity.
    pub fn empty(customer_id: CustomerId, kind: CustomerKind, opened_on: NaiveDate, as_of: NaiveDate) -> Self {
        CustomerFacts {
            customer_id,
            kind,
            as_of,
            opened_on,
            birth_date: None,
            kyc: KycStatus::Verified,
            city_tier: None,
            industry: None,
            employees: None,
            annual_revenue_minor: None,
            linked_channels: Vec::new(),
            demand_deposits_minor: 0,
            time_deposits_minor: 0,
            wealth_minor: 0,
            insurance_minor: 0,
            aum_90d_ago_minor: None,
            loans_minor: 0,
            card_balance_minor: 0,
            credit_limit_minor: 0,
            overdue_minor: 0,
            max_days_past_due: 0,
            holdings: Vec::new(),
            tx_30d: TxWindow::default(),
            tx_90d: TxWindow::default(),
            tx_180d: TxWindow::default(),
            last_transaction_on: None,
            last_login_on: None,
            logins_30d: 0,
            channels_used_90d: Vec::new(),
            merchant_spend_90d: Vec::new(),
            payroll_credits_90d: 0,
            complaints_90d: 0,
            risk_level: None,
            risk_assessed_on: None,
            credit_grade: None,
            tax_grade: None,
        }
    }
}

/// Dimension 1: who the customer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicAttributes {
    pub kind: CustomerKind,
    /// Whole years; `None` for businesses or unknown birth date.
    pub age_years: Option<u32>,
    pub tenure_months: u32,
    pub kyc: KycStatus,
    pub city_tier: Option<u8>,
    pub industry: Option<String>,
    pub employees: Option<u32>,
    pub annual_revenue_minor: Option<i64>,
    pub linked_channels: Vec<Channel>,
}

/// Dimension 2: what the customer owns and owes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetsLiabilities {
    /// Assets under management: deposits + wealth + insurance.
    pub aum_minor: i64,
    pub deposits_minor: i64,
    pub demand_deposits_minor: i64,
    pub time_deposits_minor: i64,
    pub wealth_minor: i64,
    pub insurance_minor: i64,
    pub loans_minor: i64,
    pub card_balance_minor: i64,
    pub liabilities_minor: i64,
    pub net_assets_minor: i64,
    pub credit_limit_minor: i64,
    pub overdue_minor: i64,
    pub max_days_past_due: u32,
    /// liabilities / AUM, 4 decimal places; `None` when AUM is zero.
    pub debt_to_asset: Option<Decimal>,
    /// card balance / credit limit; `None` without a limit.
    pub credit_utilisation: Option<Decimal>,
    /// (AUM - AUM 90 days ago) / AUM 90 days ago; `None` if unknown or zero then.
    pub aum_change_90d: Option<Decimal>,
    pub holdings: Vec<String>,
}

/// Aggregates over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowStats {
    pub days: u32,
    pub txn_count: u32,
    pub inflow_count: u32,
    pub outflow_count: u32,
    pub inflow_minor: i64,
    pub outflow_minor: i64,
    pub net_flow_minor: i64,
    /// (inflow + outflow) / count, rounded down; 0 without transactions.
    pub avg_ticket_minor: i64,
}

impl WindowStats {
    fn from_window(days: u32, w: &TxWindow) -> Self {
        let txn_count = w.inflow_count.saturating_add(w.outflow_count);
        let total = w.inflow_minor.saturating_add(w.outflow_minor);
        WindowStats {
            days,
            txn_count,
            inflow_count: w.inflow_count,
            outflow_count: w.outflow_count,
            inflow_minor: w.inflow_minor,
            outflow_minor: w.outflow_minor,
            net_flow_minor: w.inflow_minor.saturating_sub(w.outflow_minor),
            avg_ticket_minor: if txn_count == 0 { 0 } else { total / i64::from(txn_count) },
        }
    }
}

/// Dimension 3: how the customer transacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionBehaviour {
    /// Windows of 30, 90 and 180 days, in that order.
    pub windows: [WindowStats; 3],
    pub days_since_last_txn: Option<u32>,
    pub days_since_last_login: Option<u32>,
    pub logins_30d: u32,
    pub channels_90d: Vec<Channel>,
    /// Categories by spend amount, largest first.
    pub merchant_categories_90d: Vec<String>,
    pub payroll_credits_90d: u32,
    /// At least two salary credits in 90 days.
    pub is_payroll: bool,
    pub complaints_90d: u32,
}

impl TransactionBehaviour {
    pub fn d30(&self) -> &WindowStats {
        &self.windows[0]
    }
    pub fn d90(&self) -> &WindowStats {
        &self.windows[1]
    }
    pub fn d180(&self) -> &WindowStats {
        &self.windows[2]
    }

    /// Days since the last transaction or login, whichever is more recent.
    pub fn days_since_last_activity(&self) -> Option<u32> {
        match (self.days_since_last_txn, self.days_since_last_login) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Dimension 4: appetite for and quality of risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskPreference {
    pub risk_level: Option<RiskLevel>,
    /// No questionnaire, or one older than 365 days.
    pub assessment_expired: bool,
    pub credit_grade: Option<CreditGrade>,
    pub tax_grade: Option<String>,
}

/// Dimension 5: where the relationship stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStage {
    New,
    Growing,
    Mature,
    Dormant,
    Churning,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 5] = [
        LifecycleStage::New,
        LifecycleStage::Growing,
        LifecycleStage::Mature,
        LifecycleStage::Dormant,
        LifecycleStage::Churning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::New => "new",
            LifecycleStage::Growing => "growing",
            LifecycleStage::Mature => "mature",
            LifecycleStage::Dormant => "dormant",
            LifecycleStage::Churning => "churning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub stage: LifecycleStage,
    /// Which rule decided the stage, in words.
    pub reason: String,
}

/// The 360° view of one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub customer_id: CustomerId,
    pub as_of: NaiveDate,
    pub basic: BasicAttributes,
    pub assets: AssetsLiabilities,
    pub behaviour: TransactionBehaviour,
    pub risk: RiskPreference,
    pub lifecycle: Lifecycle,
}

fn days_between(from: Option<NaiveDate>, to: NaiveDate) -> Option<u32> {
    from.map(|d| u32::try_from((to - d).num_days().max(0)).unwrap_or(u32::MAX))
}

fn months_between(from: NaiveDate, to: NaiveDate) -> u32 {
    if to <= from {
        return 0;
    }
    let mut months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    if to.day() < from.day() {
        months -= 1;
    }
    months.max(0) as u32
}

fn ratio(num: i64, den: i64) -> Option<Decimal> {
    if den == 0 {
        return None;
    }
    Decimal::from(num).checked_div(Decimal::from(den)).map(|r| r.round_dp(4))
}

/// Lifecycle rules, first match wins:
///
/// 1. **dormant**: no transaction and no login for 90 days or more (or never active and the
///    account is older than 90 days);
/// 2. **new**: relationship younger than 6 months;
/// 3. **churning**: AUM fell by 50% or more over 90 days, or the last 90 days had fewer than
///    half the transactions of the 90 days before (with at least 6 before);
/// 4. **growing**: relationship younger than 24 months, or AUM up 20% or more over 90 days, or
///    transactions in the last 90 days at least 1.5 times the 90 days before;
/// 5. **mature**: everything else.
pub fn lifecycle(tenure_months: u32, assets: &AssetsLiabilities, behaviour: &TransactionBehaviour) -> Lifecycle {
    let recent = u64::from(behaviour.d90().txn_count);
    let before = u64::from(behaviour.d180().txn_count).saturating_sub(recent);
    let aum_change = assets.aum_change_90d;
    let (stage, reason) = match behaviour.days_since_last_activity() {
        Some(days) if days >= 90 => (LifecycleStage::Dormant, format!("no activity for {days} days")),
        None if tenure_months >= 3 => (LifecycleStage::Dormant, "never active".to_string()),
        _ if tenure_months < 6 => (LifecycleStage::New, format!("customer for {tenure_months} months")),
        _ if aum_change.is_some_and(|c| c <= Decimal::new(-5, 1)) => {
            (LifecycleStage::Churning, "AUM fell by half or more in 90 days".to_string())
        }
        _ if before >= 6 && recent * 2 < before => {
            (LifecycleStage::Churning, format!("{recent} transactions in 90 days after {before} in the 90 before"))
        }
        _ if tenure_months < 24 => (LifecycleStage::Growing, format!("customer for {tenure_months} months")),
        _ if aum_change.is_some_and(|c| c >= Decimal::new(2, 1)) => {
            (LifecycleStage::Growing, "AUM up 20% or more in 90 days".to_string())
        }
        _ if before > 0 && recent * 2 >= before * 3 => {
            (LifecycleStage::Growing, format!("{recent} transactions in 90 days after {before} in the 90 before"))
        }
        _ => (LifecycleStage::Mature, "established and steady".to_string()),
    };
    Lifecycle { stage, reason }
}

impl Profile {
    /// Computes the profile. Deterministic: same facts, same profile.
    pub fn compute(f: &CustomerFacts) -> Profile {
        let age_years = if f.kind.is_business() { None } else { f.birth_date.and_then(|b| f.as_of.years_since(b)) };
        let tenure_months = months_between(f.opened_on, f.as_of);
        let mut linked = f.linked_channels.clone();
        linked.sort();
        linked.dedup();
        let basic = BasicAttributes {
            kind: f.kind,
            age_years,
            tenure_months,
            kyc: f.kyc,
            city_tier: f.city_tier,
            industry: f.industry.clone(),
            employees: f.employees,
            annual_revenue_minor: f.annual_revenue_minor,
            linked_channels: linked,
        };

        let deposits = f.demand_deposits_minor.saturating_add(f.time_deposits_minor);
        let aum = deposits.saturating_add(f.wealth_minor).saturating_add(f.insurance_minor);
        let liabilities = f.loans_minor.saturating_add(f.card_balance_minor);
        let mut holdings = f.holdings.clone();
        holdings.sort();
        holdings.dedup();
        let assets = AssetsLiabilities {
            aum_minor: aum,
            deposits_minor: deposits,
            demand_deposits_minor: f.demand_deposits_minor,
            time_deposits_minor: f.time_deposits_minor,
            wealth_minor: f.wealth_minor,
            insurance_minor: f.insurance_minor,
            loans_minor: f.loans_minor,
            card_balance_minor: f.card_balance_minor,
            liabilities_minor: liabilities,
            net_assets_minor: aum.saturating_sub(liabilities),
            credit_limit_minor: f.credit_limit_minor,
            overdue_minor: f.overdue_minor,
            max_days_past_due: f.max_days_past_due,
            debt_to_asset: ratio(liabilities, aum),
            credit_utilisation: ratio(f.card_balance_minor, f.credit_limit_minor),
            aum_change_90d: f.aum_90d_ago_minor.and_then(|old| ratio(aum.saturating_sub(old), old)),
            holdings,
        };

        let mut spend = f.merchant_spend_90d.clone();
        spend.sort_by(|a, b| b.amount_minor.cmp(&a.amount_minor).then_with(|| a.category.cmp(&b.category)));
        let mut categories: Vec<String> = Vec::new();
        for s in spend {
            if !categories.contains(&s.category) {
                categories.push(s.category);
            }
        }
        let mut channels = f.channels_used_90d.clone();
        channels.sort();
        channels.dedup();
        let behaviour = TransactionBehaviour {
            windows: [
                WindowStats::from_window(30, &f.tx_30d),
                WindowStats::from_window(90, &f.tx_90d),
                WindowStats::from_window(180, &f.tx_180d),
            ],
            days_since_last_txn: days_between(f.last_transaction_on, f.as_of),
            days_since_last_login: days_between(f.last_login_on, f.as_of),
            logins_30d: f.logins_30d,
            channels_90d: channels,
            merchant_categories_90d: categories,
            payroll_credits_90d: f.payroll_credits_90d,
            is_payroll: f.payroll_credits_90d >= 2,
            complaints_90d: f.complaints_90d,
        };

        let risk = RiskPreference {
            risk_level: f.risk_level,
            assessment_expired: f.risk_level.is_none()
                || days_between(f.risk_assessed_on, f.as_of).is_none_or(|d| d > 365),
            credit_grade: f.credit_grade,
            tax_grade: f.tax_grade.clone(),
        };
        let lifecycle = lifecycle(tenure_months, &assets, &behaviour);
        Profile { customer_id: f.customer_id, as_of: f.as_of, basic, assets, behaviour, risk, lifecycle }
    }
}

/// Inputs for a churn model (trained elsewhere, in the `ml` crate). Plain numbers so that any
/// model can consume them; money in CNY major units as `f64` is fine for a model feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnFeatures {
    pub tenure_months: f64,
    pub age_years: Option<f64>,
    pub is_business: bool,
    pub aum: f64,
    pub aum_change_90d: Option<f64>,
    pub liabilities: f64,
    pub product_count: f64,
    pub txn_count_30d: f64,
    pub txn_count_90d: f64,
    pub txn_count_180d: f64,
    /// txn_count_90d / (txn_count_180d - txn_count_90d); `None` without earlier activity.
    pub txn_trend: Option<f64>,
    pub inflow_90d: f64,
    pub outflow_90d: f64,
    pub days_since_last_txn: Option<f64>,
    pub days_since_last_login: Option<f64>,
    pub logins_30d: f64,
    pub channel_count_90d: f64,
    pub is_payroll: bool,
    pub complaints_90d: f64,
    pub risk_level: Option<f64>,
    pub credit_grade_rank: Option<f64>,
    pub max_days_past_due: f64,
    /// The rule-based stage, as a feature (and a baseline for the model).
    pub lifecycle: LifecycleStage,
}

fn major(minor: i64) -> f64 {
    minor as f64 / 100.0
}

impl ChurnFeatures {
    pub fn from_profile(p: &Profile) -> Self {
        let b = &p.behaviour;
        let recent = b.d90().txn_count;
        let before = b.d180().txn_count.saturating_sub(recent);
        ChurnFeatures {
            tenure_months: f64::from(p.basic.tenure_months),
            age_years: p.basic.age_years.map(f64::from),
            is_business: p.basic.kind.is_business(),
            aum: major(p.assets.aum_minor),
            aum_change_90d: p.assets.aum_change_90d.and_then(|d| d.to_string().parse().ok()),
            liabilities: major(p.assets.liabilities_minor),
            product_count: p.assets.holdings.len() as f64,
            txn_count_30d: f64::from(b.d30().txn_count),
            txn_count_90d: f64::from(recent),
            txn_count_180d: f64::from(b.d180().txn_count),
            txn_trend: (before > 0).then(|| f64::from(recent) / f64::from(before)),
            inflow_90d: major(b.d90().inflow_minor),
            outflow_90d: major(b.d90().outflow_minor),
            days_since_last_txn: b.days_since_last_txn.map(f64::from),
            days_since_last_login: b.days_since_last_login.map(f64::from),
            logins_30d: f64::from(b.logins_30d),
            channel_count_90d: b.channels_90d.len() as f64,
            is_payroll: b.is_payroll,
            complaints_90d: f64::from(b.complaints_90d),
            risk_level: p.risk.risk_level.map(|r| f64::from(r.rank())),
            credit_grade_rank: p.risk.credit_grade.map(|g| f64::from(g.rank())),
            max_days_past_due: f64::from(p.assets.max_days_past_due),
            lifecycle: p.lifecycle.stage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn active(opened: NaiveDate) -> CustomerFacts {
        let as_of = date(2025, 6, 30);
        let mut f = CustomerFacts::empty(CustomerId::from_u128(1), CustomerKind::Individual, opened, as_of);
        f.birth_date = Some(date(1990, 7, 1));
        f.demand_deposits_minor = 10_000_00;
        f.wealth_minor = 40_000_00;
        f.loans_minor = 25_000_00;
        f.last_transaction_on = Some(date(2025, 6, 28));
        f.tx_90d = TxWindow { inflow_count: 5, inflow_minor: 30_000_00, outflow_count: 10, outflow_minor: 20_000_00 };
        f.tx_180d = TxWindow { inflow_count: 10, inflow_minor: 60_000_00, outflow_count: 20, outflow_minor: 40_000_00 };
        f
    }

    #[test]
    fn computes_dimensions() {
        let p = Profile::compute(&active(date(2020, 1, 15)));
        assert_eq!(p.basic.age_years, Some(34));
        assert_eq!(p.basic.tenure_months, 65);
        assert_eq!(p.assets.aum_minor, 50_000_00);
        assert_eq!(p.assets.net_assets_minor, 25_000_00);
        assert_eq!(p.assets.debt_to_asset, Some(Decimal::new(5, 1)));
        assert_eq!(p.behaviour.d90().txn_count, 15);
        assert_eq!(p.behaviour.d90().avg_ticket_minor, 50_000_00 / 15);
        assert_eq!(p.behaviour.days_since_last_txn, Some(2));
        assert!(p.risk.assessment_expired);
        assert_eq!(p.lifecycle.stage, LifecycleStage::Mature);
        assert_eq!(Profile::compute(&active(date(2020, 1, 15))), p, "deterministic");
    }

    #[test]
    fn lifecycle_rules() {
        let stage = |f: &CustomerFacts| Profile::compute(f).lifecycle.stage;
        assert_eq!(stage(&active(date(2025, 3, 1))), LifecycleStage::New);
        assert_eq!(stage(&active(date(2024, 3, 1))), LifecycleStage::Growing);
        let mut dormant = active(date(2020, 1, 1));
        dormant.last_transaction_on = Some(date(2025, 1, 1));
        assert_eq!(stage(&dormant), LifecycleStage::Dormant);
        dormant.last_login_on = Some(date(2025, 6, 1));
        assert_ne!(stage(&dormant), LifecycleStage::Dormant, "a recent login counts as activity");
        let mut churning = active(date(2020, 1, 1));
        churning.aum_90d_ago_minor = Some(200_000_00);
        assert_eq!(stage(&churning), LifecycleStage::Churning);
        let mut slowing = active(date(2020, 1, 1));
        slowing.tx_90d = TxWindow { inflow_count: 1, outflow_count: 1, ..TxWindow::default() };
        assert_eq!(stage(&slowing), LifecycleStage::Churning);
        let mut rising = active(date(2020, 1, 1));
        rising.aum_90d_ago_minor = Some(30_000_00);
        assert_eq!(stage(&rising), LifecycleStage::Growing);
        let never =
            CustomerFacts::empty(CustomerId::from_u128(2), CustomerKind::Sme, date(2024, 1, 1), date(2025, 1, 1));
        assert_eq!(stage(&never), LifecycleStage::Dormant);
    }

    #[test]
    fn churn_features() {
        let p = Profile::compute(&active(date(2020, 1, 15)));
        let c = ChurnFeatures::from_profile(&p);
        assert_eq!(c.txn_trend, Some(1.0));
        assert_eq!(c.aum, 50_000.0);
        assert_eq!(c.lifecycle, LifecycleStage::Mature);
    }
}
