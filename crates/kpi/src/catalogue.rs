//! The indicator catalogue: four categories, twenty-two indicators (the twenty of issue 14,
//! with decision time and the review queue each as two), each with what it means and how it is
//! computed from stored data.

use serde::Serialize;
use utoipa::ToSchema;

/// The four categories of the KPI system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Business,
    Customer,
    Operations,
    Risk,
}

impl Category {
    pub const ALL: [Category; 4] = [Category::Business, Category::Customer, Category::Operations, Category::Risk];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Business => "business",
            Category::Customer => "customer",
            Category::Operations => "operations",
            Category::Risk => "risk",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a value counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A number of things (customers, items).
    Count,
    /// Money in CNY minor units (fen).
    CnyMinor,
    /// A fraction between 0 and 1.
    Ratio,
    /// A duration in seconds.
    Seconds,
    /// Products held per customer.
    ProductsPerCustomer,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::CnyMinor => "cny_minor",
            Unit::Ratio => "ratio",
            Unit::Seconds => "seconds",
            Unit::ProductsPerCustomer => "products_per_customer",
        }
    }
}

/// Which way is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher_is_better",
            Direction::LowerIsBetter => "lower_is_better",
        }
    }
}

macro_rules! kpi_ids {
    ($($variant:ident => $id:literal,)*) => {
        /// An indicator of the KPI system.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum KpiId { $($variant,)* }

        impl KpiId {
            /// Every indicator, in catalogue order.
            pub const ALL: &'static [KpiId] = &[$(KpiId::$variant,)*];

            /// The stable snake_case id used in the API, the database and metric labels.
            pub fn as_str(self) -> &'static str {
                match self { $(KpiId::$variant => $id,)* }
            }

            pub fn parse(s: &str) -> Option<KpiId> {
                match s { $($id => Some(KpiId::$variant),)* _ => None }
            }
        }
    };
}

kpi_ids! {
    DigitalChannelShare => "digital_channel_share",
    NewCustomers => "new_customers_30d",
    DepositBalance => "deposit_balance",
    LoanBalance => "loan_balance",
    ProductsPerCustomer => "products_per_customer",
    ActiveCustomers => "active_customers_30d",
    ChurnRiskShare => "churn_risk_share",
    QuarterRetention => "quarter_retention",
    DigitalAdoption => "digital_adoption",
    AverageAum => "average_aum",
    StraightThroughShare => "straight_through_share",
    DecisionTimeP50 => "decision_time_p50",
    DecisionTimeP95 => "decision_time_p95",
    ReviewBacklog => "review_backlog",
    ReviewOldestAge => "review_oldest_age",
    EodDuration => "eod_duration",
    ApiErrorRate => "api_error_rate",
    FraudRejectRate => "fraud_reject_rate",
    ConfirmedFraudAmount => "confirmed_fraud_amount_30d",
    NplRatio => "npl_ratio",
    OverdueRatio => "overdue_ratio",
    TreasuryVar99 => "treasury_var_99",
}

impl serde::Serialize for KpiId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What an indicator is.
#[derive(Debug, Clone, Serialize)]
pub struct Definition {
    pub id: KpiId,
    pub category: Category,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    /// What it measures, in English.
    pub definition_en: &'static str,
    /// What it measures, in Chinese.
    pub definition_zh: &'static str,
    pub unit: Unit,
    pub direction: Direction,
    /// How it is computed from stored data.
    pub formula: &'static str,
}

/// The definition of one indicator.
pub fn definition(id: KpiId) -> Definition {
    use Category::*;
    use Direction::*;
    use KpiId::*;
    let d = |category, name_zh, name_en, definition_en, definition_zh, unit, direction, formula| Definition {
        id,
        category,
        name_zh,
        name_en,
        definition_en,
        definition_zh,
        unit,
        direction,
        formula,
    };
    match id {
        DigitalChannelShare => d(
            Business,
            "电子渠道交易占比",
            "Digital-channel share of transactions",
            "Share of the customer transactions of the last 30 days that came through a digital channel (mobile app, web, partner and open-banking APIs).",
            "近30天客户交易中通过电子渠道(手机银行、网银、合作方及开放银行接口)发起的占比。",
            Unit::Ratio,
            HigherIsBetter,
            "journal entries (posted or pending) of the last 30 days whose metadata.channel is mobile, mobile_app, web, partner or open_banking ÷ those with any metadata.channel",
        ),
        NewCustomers => d(
            Business,
            "新增客户数",
            "New customers",
            "Customers registered in the last 30 days that are still active (not closed or merged).",
            "近30天新注册且仍有效(未销户、未合并)的客户数。",
            Unit::Count,
            HigherIsBetter,
            "count(customers where created_at ≥ now − 30 d and status = active)",
        ),
        DepositBalance => d(
            Business,
            "存款余额",
            "Deposit balance",
            "Posted balance of every customer deposit account (customer-owned liability accounts) in CNY.",
            "全部客户存款账户(客户所有的负债类账户)的人民币入账余额合计。",
            Unit::CnyMinor,
            HigherIsBetter,
            "Σ (credits_posted − debits_posted) over ledger accounts with owner_type = customer, kind = liability, currency = CNY",
        ),
        LoanBalance => d(
            Business,
            "贷款余额",
            "Loan balance",
            "Outstanding principal of every active or overdue loan, read from the loans' principal accounts in the ledger.",
            "全部正常及逾期贷款的未偿本金,取自账本中各贷款的本金账户。",
            Unit::CnyMinor,
            HigherIsBetter,
            "Σ (debits_posted − credits_posted) of the loan.principal ledger account of each loan with status active or overdue",
        ),
        ProductsPerCustomer => d(
            Business,
            "户均产品数",
            "Products per customer",
            "Products held per active customer: open deposit accounts plus active or overdue loans, divided by the active customers.",
            "每位有效客户持有的产品数:未销户存款账户数加正常及逾期贷款笔数,除以有效客户数。",
            Unit::ProductsPerCustomer,
            HigherIsBetter,
            "(customer liability accounts not closed + loans with status active or overdue) ÷ customers with status active",
        ),
        ActiveCustomers => d(
            Customer,
            "活跃客户数(30天)",
            "Active customers (30 days)",
            "Customers who initiated at least one transaction (a debit of one of their accounts) in the last 30 days.",
            "近30天至少主动发起一笔交易(其账户有借记)的客户数。",
            Unit::Count,
            HigherIsBetter,
            "count(distinct owner of a customer account debited by a posted or pending journal entry with created_at ≥ now − 30 d)",
        ),
        ChurnRiskShare => d(
            Customer,
            "流失风险客户占比",
            "Churn-risk share",
            "Share of scored active customers whose churn probability from the churn model is 0.5 or more.",
            "已评分的有效客户中,流失模型预测流失概率不低于0.5的占比。",
            Unit::Ratio,
            LowerIsBetter,
            "count(customer_results with churn_score ≥ 0.5) ÷ count(customer_results with a churn_score), customers not retired",
        ),
        QuarterRetention => d(
            Customer,
            "上季度活跃客户留存率",
            "Retention of last quarter's active customers",
            "Of the customers active in the previous calendar quarter, the share that has been active in the current quarter so far.",
            "上一自然季度的活跃客户中,本季度至今仍有交易的占比。",
            Unit::Ratio,
            HigherIsBetter,
            "count(active in the previous quarter and in the current one) ÷ count(active in the previous quarter); active = debited an own account",
        ),
        DigitalAdoption => d(
            Customer,
            "数字化渗透率",
            "Digital adoption",
            "Share of active customers with a mobile-app identity linked to their customer id.",
            "已绑定手机银行身份的有效客户占比。",
            Unit::Ratio,
            HigherIsBetter,
            "count(distinct active customers with a customer_identities row of channel mobile_app) ÷ count(customers with status active)",
        ),
        AverageAum => d(
            Customer,
            "户均资产(AUM)",
            "Average AUM per customer",
            "Average assets under management per profiled customer, from the customer data platform's last computation.",
            "按客户数据平台最近一次计算,每位客户的平均管理资产。",
            Unit::CnyMinor,
            HigherIsBetter,
            "Σ customer_results.aum_minor ÷ count(customer_results), customers not retired, rounded half up to a fen",
        ),
        StraightThroughShare => d(
            Operations,
            "自动审批直通率",
            "Straight-through decision share",
            "Share of the loan decisions of the last 30 days made fully automatically (never sent to manual review).",
            "近30天贷款决策中全自动完成、未进入人工审核的占比。",
            Unit::Ratio,
            HigherIsBetter,
            "count(lending_decisions of the last 30 d without a lending_review_queue row) ÷ count(lending_decisions of the last 30 d)",
        ),
        DecisionTimeP50 => d(
            Operations,
            "贷款决策时长中位数",
            "Median loan decision time",
            "Median time from application to final decision over the decisions of the last 30 days: the automated decision's own time, plus the wait in manual review for those reviewed.",
            "近30天贷款决策从申请到最终决定所用时间的中位数(自动决策耗时,人工审核的再加上排队审核时间)。",
            Unit::Seconds,
            LowerIsBetter,
            "p50 of decision_micros (+ review decided_at − decision created_at when reviewed) over decided lending_decisions of the last 30 d",
        ),
        DecisionTimeP95 => d(
            Operations,
            "贷款决策时长P95",
            "p95 loan decision time",
            "95th percentile of the loan decision time of the last 30 days (as the median indicator).",
            "近30天贷款决策时长的95分位数(口径同中位数)。",
            Unit::Seconds,
            LowerIsBetter,
            "p95 (nearest rank) of the same decision times",
        ),
        ReviewBacklog => d(
            Operations,
            "人工审核积压量",
            "Manual review backlog",
            "Loan applications waiting in the manual review queue.",
            "人工审核队列中等待处理的贷款申请数。",
            Unit::Count,
            LowerIsBetter,
            "count(lending_review_queue where status = open)",
        ),
        ReviewOldestAge => d(
            Operations,
            "最久待审时长",
            "Oldest review item age",
            "How long the oldest application in the manual review queue has been waiting.",
            "人工审核队列中最早一笔申请已等待的时间。",
            Unit::Seconds,
            LowerIsBetter,
            "now − min(lending_review_queue.created_at where status = open)",
        ),
        EodDuration => d(
            Operations,
            "日终批处理时长",
            "End-of-day duration",
            "Wall-clock duration of the last completed lending end of day.",
            "最近一次完成的贷款日终批处理耗时。",
            Unit::Seconds,
            LowerIsBetter,
            "finished_at − started_at of the lending_eod_runs row with status done and the latest business_date",
        ),
        ApiErrorRate => d(
            Operations,
            "接口错误率",
            "API error rate",
            "Share of the API responses of the last 24 hours that were server errors (HTTP 5xx), over every node.",
            "近24小时所有节点接口响应中服务端错误(HTTP 5xx)的占比。",
            Unit::Ratio,
            LowerIsBetter,
            "Σ kpi_api_requests.server_errors ÷ Σ kpi_api_requests.requests over the hours of the last 24 h",
        ),
        FraudRejectRate => d(
            Risk,
            "欺诈拒绝率",
            "Fraud reject rate",
            "Share of the risk engine's decisions of the last 30 days that rejected the event.",
            "近30天风控引擎决策中拒绝的占比。",
            Unit::Ratio,
            LowerIsBetter,
            "count(risk_decisions of the last 30 d with outcome = reject) ÷ count(risk_decisions of the last 30 d)",
        ),
        ConfirmedFraudAmount => d(
            Risk,
            "确认欺诈金额(30天)",
            "Confirmed fraud amount (30 days)",
            "Amount of the events whose review case was resolved as confirmed fraud in the last 30 days (CNY).",
            "近30天审核案件确认为欺诈的事件金额合计(人民币)。",
            Unit::CnyMinor,
            LowerIsBetter,
            "Σ event.amount.minor (CNY) of the risk_decisions of risk_cases resolved confirmed_fraud with resolved_at ≥ now − 30 d",
        ),
        NplRatio => d(
            Risk,
            "不良贷款率",
            "NPL ratio",
            "Share of the loan balance in loans 90 or more days past due (bucket M3+).",
            "逾期90天以上(M3+)贷款余额占贷款余额的比例。",
            Unit::Ratio,
            LowerIsBetter,
            "loan balance of loans in bucket m3_plus ÷ loan balance",
        ),
        OverdueRatio => d(
            Risk,
            "逾期率(M1+)",
            "Overdue ratio (M1+)",
            "Share of the loan balance in loans past due (buckets M1, M2 and M3+).",
            "逾期(M1、M2、M3+)贷款余额占贷款余额的比例。",
            Unit::Ratio,
            LowerIsBetter,
            "loan balance of loans in buckets m1, m2, m3_plus ÷ loan balance",
        ),
        TreasuryVar99 => d(
            Risk,
            "资金业务99%风险价值",
            "99% VaR of the treasury positions",
            "The latest one-day 99% historical-simulation VaR recorded for the treasury positions (POST /v1/risk/market/var with record = true).",
            "最近一次记录的资金业务头寸1日99%历史模拟法风险价值。",
            Unit::CnyMinor,
            LowerIsBetter,
            "historical VaR of the latest risk_var_reports row with confidence 0.99, in fen",
        ),
    }
}

/// Every definition, in catalogue order.
pub fn definitions() -> Vec<Definition> {
    KpiId::ALL.iter().map(|id| definition(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_every_category_is_used() {
        for id in KpiId::ALL {
            assert_eq!(KpiId::parse(id.as_str()), Some(*id));
            let d = definition(*id);
            assert_eq!(d.id, *id);
            assert!(!d.name_zh.is_empty() && !d.name_en.is_empty() && !d.formula.is_empty());
        }
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            assert!(definitions().iter().filter(|d| d.category == c).count() >= 5, "{c:?}");
        }
        assert!(KpiId::ALL.len() >= 20);
    }
}
