//! Tag engine: tag definitions are `rules` conditions over the profile fields listed by
//! [`profile_schema`]; a [`TagRegistry`] versions them and evaluates them for a profile.
//!
//! Money fields in rules are CNY in major units (`aum >= 500000`), ratios are decimals
//! (`debt_to_asset >= 0.5`), counts and days are plain numbers.

use std::collections::HashMap;
use std::sync::OnceLock;

use rules::{compile_condition, Explanation, Expr, Schema, Type, Value};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::identity::{Channel, CustomerKind, KycStatus};
use crate::profile::Profile;
use crate::CustomerError;

/// The five profile dimensions a tag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Basic,
    AssetsLiabilities,
    Transactions,
    RiskPreference,
    Lifecycle,
}

/// Industries of business customers, used by synthetic data and the built-in industry tags.
pub const INDUSTRIES: [&str; 8] = [
    "manufacturing",
    "wholesale_retail",
    "construction",
    "technology",
    "agriculture",
    "logistics",
    "catering",
    "healthcare",
];

/// Merchant category codes used by synthetic data and the built-in spend tags.
pub const MERCHANT_CATEGORIES: [&str; 10] = [
    "groceries",
    "dining",
    "travel",
    "education",
    "healthcare",
    "entertainment",
    "fuel",
    "ecommerce",
    "luxury",
    "utilities",
];

fn money(minor: i64) -> Value {
    Value::Number(Decimal::new(minor, 2))
}

fn strings<T>(items: &[T], f: impl Fn(&T) -> &str) -> Value {
    Value::List(items.iter().map(|i| f(i).to_string()).collect())
}

/// The single list of profile fields visible to rules: name, type, meaning and value. Both the
/// schema and the per-profile record are produced from it, so they cannot drift apart.
fn describe(p: &Profile, emit: &mut dyn FnMut(&'static str, Type, &'static str, Value)) {
    use Type::{Bool, Number as N, String as S, StringList as L};
    let b = &p.basic;
    emit("kind", S, "individual | sole_proprietor | sme | core_enterprise", b.kind.as_str().into());
    emit("is_business", Bool, "kind is not individual", b.kind.is_business().into());
    emit("age", N, "age in whole years (individuals)", b.age_years.into());
    emit("months_active", N, "months since the relationship started", b.tenure_months.into());
    emit("kyc_status", S, "not_started | pending | verified | rejected | expired", b.kyc.as_str().into());
    emit("kyc_verified", Bool, "KYC status is verified", (b.kyc == KycStatus::Verified).into());
    emit("city_tier", N, "1 (largest cities) .. 5", b.city_tier.map(u32::from).into());
    emit("industry", S, "industry code of a business", b.industry.clone().into());
    emit("employees", N, "number of employees of a business", b.employees.into());
    emit("annual_revenue", N, "annual revenue, CNY", b.annual_revenue_minor.map(|m| Decimal::new(m, 2)).into());
    emit("linked_channels", L, "channels with a linked identity", strings(&b.linked_channels, |c| c.as_str()));

    let a = &p.assets;
    emit("aum", N, "assets under management, CNY", money(a.aum_minor));
    emit("deposits", N, "demand + time deposits, CNY", money(a.deposits_minor));
    emit("demand_deposits", N, "CNY", money(a.demand_deposits_minor));
    emit("time_deposits", N, "CNY", money(a.time_deposits_minor));
    emit("wealth", N, "funds and wealth products, CNY", money(a.wealth_minor));
    emit("insurance", N, "insurance cash value, CNY", money(a.insurance_minor));
    emit("loans", N, "loan principal outstanding, CNY", money(a.loans_minor));
    emit("card_balance", N, "credit card balance, CNY", money(a.card_balance_minor));
    emit("liabilities", N, "loans + card balance, CNY", money(a.liabilities_minor));
    emit("net_assets", N, "aum - liabilities, CNY", money(a.net_assets_minor));
    emit("credit_limit", N, "credit card limit, CNY", money(a.credit_limit_minor));
    emit("overdue_amount", N, "overdue amount, CNY", money(a.overdue_minor));
    emit("max_days_past_due", N, "worst days past due", a.max_days_past_due.into());
    emit("debt_to_asset", N, "liabilities / aum", a.debt_to_asset.into());
    emit("credit_utilisation", N, "card balance / limit", a.credit_utilisation.into());
    emit("aum_change_90d", N, "relative AUM change over 90 days", a.aum_change_90d.into());
    emit("holdings", L, "product codes held", Value::List(a.holdings.clone()));
    emit("product_count", N, "number of products held", (a.holdings.len() as u32).into());

    let t = &p.behaviour;
    for w in &t.windows {
        let (count, in_count, out_count, inflow, outflow, net, ticket) = match w.days {
            30 => (
                "txn_count_30d",
                "inflow_count_30d",
                "outflow_count_30d",
                "sum_inflow_30d",
                "sum_outflow_30d",
                "net_flow_30d",
                "avg_ticket_30d",
            ),
            90 => (
                "txn_count_90d",
                "inflow_count_90d",
                "outflow_count_90d",
                "sum_inflow_90d",
                "sum_outflow_90d",
                "net_flow_90d",
                "avg_ticket_90d",
            ),
            _ => (
                "txn_count_180d",
                "inflow_count_180d",
                "outflow_count_180d",
                "sum_inflow_180d",
                "sum_outflow_180d",
                "net_flow_180d",
                "avg_ticket_180d",
            ),
        };
        emit(count, N, "transactions in the window", w.txn_count.into());
        emit(in_count, N, "incoming transactions in the window", w.inflow_count.into());
        emit(out_count, N, "outgoing transactions in the window", w.outflow_count.into());
        emit(inflow, N, "incoming amount in the window, CNY", money(w.inflow_minor));
        emit(outflow, N, "outgoing amount in the window, CNY", money(w.outflow_minor));
        emit(net, N, "inflow - outflow in the window, CNY", money(w.net_flow_minor));
        emit(ticket, N, "average transaction amount in the window, CNY", money(w.avg_ticket_minor));
    }
    emit("days_since_last_txn", N, "null if never", t.days_since_last_txn.into());
    emit("days_since_last_login", N, "null if never", t.days_since_last_login.into());
    emit("days_since_last_activity", N, "min of the two above", t.days_since_last_activity().into());
    emit("logins_30d", N, "logins in 30 days", t.logins_30d.into());
    emit("channels_90d", L, "channels used in 90 days", strings(&t.channels_90d, |c: &Channel| c.as_str()));
    emit("channel_count_90d", N, "", (t.channels_90d.len() as u32).into());
    emit(
        "merchant_categories_90d",
        L,
        "spend categories in 90 days, largest first",
        Value::List(t.merchant_categories_90d.clone()),
    );
    emit("top_merchant_category", S, "", t.merchant_categories_90d.first().cloned().into());
    emit("payroll_credits_90d", N, "salary credits in 90 days", t.payroll_credits_90d.into());
    emit("is_payroll", Bool, "two or more salary credits in 90 days", t.is_payroll.into());
    emit("complaints_90d", N, "complaints in 90 days", t.complaints_90d.into());

    let r = &p.risk;
    emit("risk_level", S, "R1 .. R5 from the questionnaire", r.risk_level.map(|l| l.as_str()).into());
    emit("risk_level_num", N, "1 .. 5", r.risk_level.map(|l| u32::from(l.rank())).into());
    emit("risk_assessment_expired", Bool, "missing or older than a year", r.assessment_expired.into());
    emit("credit_grade", S, "AAA .. E", r.credit_grade.map(|g| g.as_str()).into());
    emit("credit_grade_rank", N, "1 (AAA) .. 10 (E)", r.credit_grade.map(|g| u32::from(g.rank())).into());
    emit("tax_grade", S, "A, B, M, C, D (businesses)", r.tax_grade.clone().into());

    emit("lifecycle", S, "new | growing | mature | dormant | churning", p.lifecycle.stage.as_str().into());
}

/// The schema of profile fields that tag rules can use (built once).
pub fn profile_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let facts = crate::profile::CustomerFacts::empty(
            crate::CustomerId::from_u128(0),
            CustomerKind::Individual,
            chrono::NaiveDate::MIN,
            chrono::NaiveDate::MIN,
        );
        let mut schema = Schema::new();
        describe(&Profile::compute(&facts), &mut |name, ty, doc, _| {
            // Names are literals above and unique (tested); a failure here is a programming error
            // caught by the tests, so it is ignored rather than panicking in production.
            let _ = schema.add_documented(name, ty, doc);
        });
        schema
    })
}

/// The profile as a record for [`profile_schema`] (one value per field, in order).
pub fn profile_record(p: &Profile) -> Vec<Value> {
    let mut values = Vec::with_capacity(profile_schema().len());
    describe(p, &mut |_, _, _, v| values.push(v));
    values
}

/// A tag as authored: the rule is `rules` source over [`profile_schema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDefinition {
    /// snake_case identifier, usable as a boolean in segment rules.
    pub id: String,
    /// Human name, e.g. "SME / stable operations / good credit".
    pub name: String,
    pub dimension: Dimension,
    pub rule: String,
}

impl TagDefinition {
    pub fn new(id: &str, name: &str, dimension: Dimension, rule: &str) -> Self {
        TagDefinition { id: id.to_string(), name: name.to_string(), dimension, rule: rule.to_string() }
    }
}

/// One stored version of a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagVersion {
    pub version: u32,
    pub definition: TagDefinition,
}

/// A tag carried by a customer, with the rule version that assigned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedTag {
    pub tag_id: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

#[derive(Debug, Clone)]
struct Entry {
    history: Vec<TagVersion>,
    compiled: Expr,
}

/// Versioned tag definitions. Every add or update is compile-checked; updates append a new
/// version and keep the old ones, so an assignment can always be traced to its exact rule.
#[derive(Debug, Clone, Default)]
pub struct TagRegistry {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

fn check_tag_id(id: &str) -> Result<(), CustomerError> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && Schema::new().add(id, Type::Bool).is_ok();
    if ok {
        Ok(())
    } else {
        Err(CustomerError::InvalidTagId(id.to_string()))
    }
}

fn compile_tag(def: &TagDefinition) -> Result<Expr, CustomerError> {
    compile_condition(&def.rule, profile_schema())
        .map_err(|source| CustomerError::InvalidRule { id: def.id.clone(), source })
}

impl TagRegistry {
    pub fn new() -> Self {
        TagRegistry::default()
    }

    /// A registry holding the built-in tags ([`builtin_tags`]) at version 1.
    pub fn with_builtins() -> Result<Self, CustomerError> {
        let mut r = TagRegistry::new();
        for def in builtin_tags() {
            r.add(def)?;
        }
        Ok(r)
    }

    /// Adds a new tag at version 1. Rejects duplicates, bad ids and rules that do not compile.
    pub fn add(&mut self, def: TagDefinition) -> Result<u32, CustomerError> {
        check_tag_id(&def.id)?;
        if self.index.contains_key(&def.id) {
            return Err(CustomerError::DuplicateTag(def.id));
        }
        let compiled = compile_tag(&def)?;
        self.index.insert(def.id.clone(), self.entries.len());
        self.entries.push(Entry { history: vec![TagVersion { version: 1, definition: def }], compiled });
        Ok(1)
    }

    /// Replaces the definition of an existing tag; the version goes up by one and the old
    /// versions stay in [`TagRegistry::history`]. A rule that does not compile changes nothing.
    pub fn update(&mut self, def: TagDefinition) -> Result<u32, CustomerError> {
        let &i = self.index.get(&def.id).ok_or_else(|| CustomerError::UnknownTag(def.id.clone()))?;
        let compiled = compile_tag(&def)?;
        let entry = &mut self.entries[i];
        let version = entry.history.last().map_or(1, |v| v.version + 1);
        entry.history.push(TagVersion { version, definition: def });
        entry.compiled = compiled;
        Ok(version)
    }

    /// The current version of a tag.
    pub fn get(&self, id: &str) -> Option<&TagVersion> {
        self.index.get(id).and_then(|&i| self.entries[i].history.last())
    }

    /// All versions of a tag, oldest first.
    pub fn history(&self, id: &str) -> Option<&[TagVersion]> {
        self.index.get(id).map(|&i| self.entries[i].history.as_slice())
    }

    /// Current versions of all tags, in insertion order.
    pub fn current(&self) -> impl Iterator<Item = &TagVersion> {
        self.entries.iter().filter_map(|e| e.history.last())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tags whose current rule is definitely true for the profile.
    pub fn evaluate(&self, profile: &Profile) -> Vec<AssignedTag> {
        self.evaluate_record(&profile_record(profile), false)
    }

    /// Like [`TagRegistry::evaluate`], each tag with the explanation of why it matched.
    pub fn evaluate_explained(&self, profile: &Profile) -> Vec<AssignedTag> {
        self.evaluate_record(&profile_record(profile), true)
    }

    /// Evaluates against a prepared [`profile_record`] (reuse it when evaluating many things).
    pub fn evaluate_record(&self, record: &[Value], explain: bool) -> Vec<AssignedTag> {
        self.entries
            .iter()
            .filter(|e| e.compiled.matches(record))
            .filter_map(|e| {
                let current = e.history.last()?;
                Some(AssignedTag {
                    tag_id: current.definition.id.clone(),
                    version: current.version,
                    explanation: explain.then(|| e.compiled.explain(record)),
                })
            })
            .collect()
    }

    /// Why a tag does or does not apply to a profile.
    pub fn explain(&self, profile: &Profile, id: &str) -> Result<Explanation, CustomerError> {
        let &i = self.index.get(id).ok_or_else(|| CustomerError::UnknownTag(id.to_string()))?;
        Ok(self.entries[i].compiled.explain(&profile_record(profile)))
    }

    /// A schema with one bool field per tag id, for segment rules ([`crate::segments`]).
    pub fn tag_schema(&self) -> Schema {
        let mut schema = Schema::new();
        for v in self.current() {
            // Tag ids were validated and are unique, so this cannot fail.
            let _ = schema.add(&v.definition.id, Type::Bool);
        }
        schema
    }
}

fn cny(amount: i64) -> String {
    match amount {
        a if a >= 1_000_000 && a % 1_000_000 == 0 => format!("{}m", a / 1_000_000),
        a if a >= 1_000 && a % 1_000 == 0 => format!("{}k", a / 1_000),
        a => a.to_string(),
    }
}

/// The built-in tag library (more than 200 tags across the five dimensions). Families such as
/// AUM thresholds and per-window activity are generated; each tag still has a human name.
pub fn builtin_tags() -> Vec<TagDefinition> {
    use Dimension::*;
    let mut t: Vec<TagDefinition> = Vec::new();
    let mut add = |id: String, name: String, dim: Dimension, rule: String| {
        t.push(TagDefinition { id, name, dimension: dim, rule });
    };

    // ---- Basic attributes ----
    for kind in CustomerKind::ALL {
        let k = kind.as_str();
        let label = match kind {
            CustomerKind::Individual => "Individual customer",
            CustomerKind::SoleProprietor => "Sole proprietor",
            CustomerKind::Sme => "SME",
            CustomerKind::CoreEnterprise => "Core enterprise",
        };
        add(format!("kind_{k}"), label.into(), Basic, format!("kind == \"{k}\""));
    }
    add("business_customer".into(), "Business customer".into(), Basic, "is_business".into());
    add("minor_customer".into(), "Minor (under 18)".into(), Basic, "age < 18".into());
    for (lo, hi) in [(18, 25), (26, 35), (36, 45), (46, 55), (56, 65)] {
        add(format!("age_{lo}_{hi}"), format!("Age {lo}-{hi}"), Basic, format!("age >= {lo} and age <= {hi}"));
    }
    add("age_66_plus".into(), "Senior (66+)".into(), Basic, "age >= 66".into());
    for (id, name, rule) in [
        ("tenure_lt_3m", "Customer for under 3 months", "months_active < 3"),
        ("tenure_3_12m", "Customer for 3-12 months", "months_active >= 3 and months_active < 12"),
        ("tenure_1_3y", "Customer for 1-3 years", "months_active >= 12 and months_active < 36"),
        ("tenure_3_5y", "Customer for 3-5 years", "months_active >= 36 and months_active < 60"),
        ("tenure_5_10y", "Customer for 5-10 years", "months_active >= 60 and months_active < 120"),
        ("tenure_10y_plus", "Customer for 10+ years", "months_active >= 120"),
    ] {
        add(id.into(), name.into(), Basic, rule.into());
    }
    for kyc in KycStatus::ALL {
        let k = kyc.as_str();
        add(format!("kyc_{k}"), format!("KYC {}", k.replace('_', " ")), Basic, format!("kyc_status == \"{k}\""));
    }
    for tier in 1..=4 {
        add(format!("city_tier_{tier}"), format!("Tier-{tier} city"), Basic, format!("city_tier == {tier}"));
    }
    add("city_tier_5_plus".into(), "Tier-5 city or county".into(), Basic, "city_tier >= 5".into());
    for ch in Channel::ALL {
        let c = ch.as_str();
        add(
            format!("linked_{c}"),
            format!("Linked {} identity", c.replace('_', " ")),
            Basic,
            format!("contains(linked_channels, \"{c}\")"),
        );
    }
    add("omnichannel_identity".into(), "Identities in 3+ channels".into(), Basic, "len(linked_channels) >= 3".into());
    add(
        "branch_only_identity".into(),
        "Known only at the branch".into(),
        Basic,
        "len(linked_channels) == 1 and contains(linked_channels, \"branch\")".into(),
    );
    for (id, name, rule) in [
        ("micro_business", "Micro business (<10 staff)", "is_business and employees < 10"),
        ("small_business", "Small business (10-99 staff)", "employees >= 10 and employees < 100"),
        ("medium_business", "Medium business (100-999 staff)", "employees >= 100 and employees < 1000"),
        ("large_business", "Large business (1000+ staff)", "employees >= 1000"),
        ("revenue_lt_1m", "Revenue under 1m CNY", "is_business and annual_revenue < 1000000"),
        ("revenue_1m_10m", "Revenue 1m-10m CNY", "annual_revenue >= 1000000 and annual_revenue < 10000000"),
        ("revenue_10m_100m", "Revenue 10m-100m CNY", "annual_revenue >= 10000000 and annual_revenue < 100000000"),
        ("revenue_100m_plus", "Revenue 100m+ CNY", "annual_revenue >= 100000000"),
    ] {
        add(id.into(), name.into(), Basic, rule.into());
    }
    for ind in INDUSTRIES {
        add(
            format!("industry_{ind}"),
            format!("Industry: {}", ind.replace('_', " & ")),
            Basic,
            format!("industry == \"{ind}\""),
        );
    }

    // ---- Assets & liabilities ----
    for amount in [10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 3_000_000, 6_000_000, 10_000_000, 30_000_000] {
        let a = cny(amount);
        add(format!("aum_ge_{a}"), format!("AUM at least {a} CNY"), AssetsLiabilities, format!("aum >= {amount}"));
    }
    for (id, name, rule) in [
        ("zero_aum", "No assets with us", "aum == 0"),
        ("mass_affluent", "Mass affluent (AUM 100k-500k)", "aum >= 100000 and aum < 500000"),
        ("high_value_wealth", "High-value wealth", "aum >= 1000000 and wealth >= 300000"),
        ("private_banking", "Private banking client", "not is_business and aum >= 6000000"),
        ("time_deposit_saver", "Time-deposit saver", "deposits >= 50000 and time_deposits * 2 >= deposits"),
        ("deposit_only", "Deposits only, no investments", "deposits > 0 and wealth == 0 and insurance == 0"),
        ("product_count_ge_2", "Holds 2+ products", "product_count >= 2"),
        ("product_count_ge_3", "Holds 3+ products", "product_count >= 3"),
        ("product_count_ge_5", "Holds 5+ products", "product_count >= 5"),
        ("single_product", "Holds a single product", "product_count == 1"),
        ("borrower", "Has a loan", "loans > 0"),
        ("card_user", "Carries a card balance", "card_balance > 0"),
        ("card_high_utilisation", "Card utilisation 80%+", "credit_utilisation >= 0.8"),
        ("card_revolver", "Card utilisation 50%+", "credit_utilisation >= 0.5"),
        ("leveraged", "Liabilities at least half of assets", "debt_to_asset >= 0.5"),
        ("over_leveraged", "Liabilities exceed assets", "debt_to_asset >= 1 or (aum == 0 and liabilities > 0)"),
        ("negative_net_assets", "Negative net assets with us", "net_assets < 0"),
        ("overdue_any", "Has an overdue amount", "overdue_amount > 0"),
        ("dpd_30_plus", "30+ days past due", "max_days_past_due >= 30"),
        ("dpd_90_plus", "90+ days past due (non-performing)", "max_days_past_due >= 90"),
        ("aum_growing", "AUM up 20%+ in 90 days", "aum_change_90d >= 0.2"),
        ("aum_declining", "AUM down 30%+ in 90 days", "aum_change_90d <= -0.3"),
    ] {
        add(id.into(), name.into(), AssetsLiabilities, rule.into());
    }
    for amount in [50_000, 200_000, 1_000_000] {
        let a = cny(amount);
        add(
            format!("deposits_ge_{a}"),
            format!("Deposits at least {a} CNY"),
            AssetsLiabilities,
            format!("deposits >= {amount}"),
        );
    }
    for amount in [100_000, 500_000, 1_000_000, 5_000_000] {
        let a = cny(amount);
        add(
            format!("loans_ge_{a}"),
            format!("Loans at least {a} CNY"),
            AssetsLiabilities,
            format!("loans >= {amount}"),
        );
    }
    for p in crate::recommend::Catalog::standard().products() {
        add(
            format!("holds_{}", p.code),
            format!("Holds {}", p.name),
            AssetsLiabilities,
            format!("contains(holdings, \"{}\")", p.code),
        );
    }

    // ---- Transaction behaviour ----
    for w in [30, 90, 180] {
        add(
            format!("active_{w}d"),
            format!("Transacted in the last {w} days"),
            Transactions,
            format!("txn_count_{w}d >= 1"),
        );
        for n in [10, 30, 100] {
            add(
                format!("txn_{n}_plus_{w}d"),
                format!("{n}+ transactions in {w} days"),
                Transactions,
                format!("txn_count_{w}d >= {n}"),
            );
        }
        for amount in [10_000, 100_000, 1_000_000] {
            let a = cny(amount);
            add(
                format!("inflow_ge_{a}_{w}d"),
                format!("Inflow {a}+ CNY in {w} days"),
                Transactions,
                format!("sum_inflow_{w}d >= {amount}"),
            );
            add(
                format!("outflow_ge_{a}_{w}d"),
                format!("Outflow {a}+ CNY in {w} days"),
                Transactions,
                format!("sum_outflow_{w}d >= {amount}"),
            );
        }
        add(
            format!("net_saver_{w}d"),
            format!("More money in than out over {w} days"),
            Transactions,
            format!("txn_count_{w}d > 0 and net_flow_{w}d > 0"),
        );
        add(
            format!("net_spender_{w}d"),
            format!("More money out than in over {w} days"),
            Transactions,
            format!("net_flow_{w}d < 0"),
        );
    }
    for days in [30, 60, 90, 180, 365] {
        add(
            format!("no_txn_{days}d"),
            format!("No transaction for {days}+ days"),
            Transactions,
            format!("days_since_last_txn >= {days} or (is_null(days_since_last_txn) and months_active * 30 >= {days})"),
        );
    }
    add("never_transacted".into(), "Never transacted".into(), Transactions, "is_null(days_since_last_txn)".into());
    for days in [30, 90, 180] {
        add(
            format!("no_login_{days}d"),
            format!("No login for {days}+ days"),
            Transactions,
            format!("days_since_last_login >= {days}"),
        );
    }
    add(
        "frequent_app_user".into(),
        "Frequent digital user (10+ logins/30d)".into(),
        Transactions,
        "logins_30d >= 10".into(),
    );
    add("heavy_app_user".into(), "Daily digital user (30+ logins/30d)".into(), Transactions, "logins_30d >= 30".into());
    for ch in Channel::ALL {
        let c = ch.as_str();
        add(
            format!("uses_{c}_90d"),
            format!("Used {} in 90 days", c.replace('_', " ")),
            Transactions,
            format!("contains(channels_90d, \"{c}\")"),
        );
    }
    add(
        "digital_only".into(),
        "Digital only (no branch visits in 90 days)".into(),
        Transactions,
        "channel_count_90d >= 1 and \"branch\" not in channels_90d".into(),
    );
    add("multichannel_90d".into(), "Used 2+ channels in 90 days".into(), Transactions, "channel_count_90d >= 2".into());
    for cat in MERCHANT_CATEGORIES {
        add(
            format!("spends_{cat}"),
            format!("Spends on {cat}"),
            Transactions,
            format!("contains(merchant_categories_90d, \"{cat}\")"),
        );
    }
    add(
        "top_spend_travel".into(),
        "Travel is the top spend".into(),
        Transactions,
        "top_merchant_category == \"travel\"".into(),
    );
    for (id, name, rule) in [
        ("payroll_customer", "Payroll customer", "is_payroll"),
        ("payroll_regular", "Salary every month (3+ in 90 days)", "payroll_credits_90d >= 3"),
        ("big_ticket", "Large average transaction (5k+ CNY)", "avg_ticket_90d >= 5000"),
        ("small_frequent", "Many small payments", "txn_count_30d >= 30 and avg_ticket_30d < 200"),
        ("complainer", "Complained in 90 days", "complaints_90d >= 1"),
        ("frequent_complainer", "3+ complaints in 90 days", "complaints_90d >= 3"),
    ] {
        add(id.into(), name.into(), Transactions, rule.into());
    }

    // ---- Risk preference ----
    for level in crate::profile::RiskLevel::ALL {
        let l = level.as_str();
        add(
            format!("risk_{}", l.to_lowercase()),
            format!("Risk profile {l}"),
            RiskPreference,
            format!("risk_level == \"{l}\""),
        );
    }
    for grade in crate::profile::CreditGrade::ALL {
        let g = grade.as_str();
        add(
            format!("credit_{}", g.to_lowercase()),
            format!("Credit grade {g}"),
            RiskPreference,
            format!("credit_grade == \"{g}\""),
        );
    }
    for (id, name, rule) in [
        ("conservative_investor", "Conservative investor (R1-R2)", "risk_level_num <= 2"),
        ("aggressive_investor", "Aggressive investor (R4-R5)", "risk_level_num >= 4"),
        ("risk_assessment_missing", "No risk questionnaire", "is_null(risk_level)"),
        ("risk_assessment_expired", "Risk questionnaire expired", "risk_assessment_expired"),
        ("investment_grade", "Investment-grade credit (BBB or better)", "credit_grade in [\"AAA\", \"AA\", \"A\", \"BBB\"]"),
        ("subprime", "Weak credit (CCC or worse)", "credit_grade in [\"CCC\", \"C\", \"D\", \"E\"]"),
        ("tax_grade_a", "Tax credit grade A", "tax_grade == \"A\""),
        ("tax_grade_b", "Tax credit grade B", "tax_grade == \"B\""),
        ("tax_grade_poor", "Poor tax credit (C or D)", "tax_grade in [\"C\", \"D\"]"),
        (
            "sme_stable_good_credit",
            "SME / stable operations / good credit",
            "kind == \"sme\" and months_active >= 24 and credit_grade in [\"AAA\", \"AA\", \"A\"]",
        ),
        (
            "suitability_review",
            "Holds products above the risk profile",
            "(contains(holdings, \"equity_fund\") or contains(holdings, \"private_equity\")) and coalesce(risk_level_num, 0) <= 3",
        ),
        (
            "preapproved_loan_candidate",
            "Pre-approved loan candidate",
            "credit_grade in [\"AAA\", \"AA\"] and coalesce(debt_to_asset, 0) < 0.3 and max_days_past_due == 0",
        ),
        ("credit_watch", "Credit watch list", "max_days_past_due >= 30 or credit_grade in [\"D\", \"E\"]"),
    ] {
        add(id.into(), name.into(), RiskPreference, rule.into());
    }

    // ---- Lifecycle ----
    for stage in crate::profile::LifecycleStage::ALL {
        let s = stage.as_str();
        add(format!("lifecycle_{s}"), format!("Lifecycle: {s}"), Lifecycle, format!("lifecycle == \"{s}\""));
    }
    for (id, name, rule) in [
        ("new_activated", "New and already transacting", "lifecycle == \"new\" and txn_count_30d >= 1"),
        ("new_not_activated", "New but not yet transacting", "lifecycle == \"new\" and txn_count_30d == 0"),
        ("dormant_90d", "Dormant 90d", "days_since_last_activity >= 90"),
        ("dormant_365d", "Dormant a year", "days_since_last_activity >= 365"),
        ("win_back_candidate", "Win-back candidate (dormant, 50k+ AUM)", "lifecycle == \"dormant\" and aum >= 50000"),
        ("churn_alert_high_value", "Churn alert: high value", "lifecycle == \"churning\" and aum >= 100000"),
        ("loyal_long_tenure", "Loyal long-tenure customer", "lifecycle == \"mature\" and months_active >= 60"),
        ("rising_star", "Rising star", "lifecycle == \"growing\" and aum_change_90d >= 0.1"),
        ("sme_growth", "Growing business", "is_business and lifecycle == \"growing\" and sum_inflow_90d >= 1000000"),
    ] {
        add(id.into(), name.into(), Lifecycle, rule.into());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{CreditGrade, CustomerFacts, RiskLevel, TxWindow};
    use crate::CustomerId;
    use chrono::NaiveDate;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn ids(tags: &[AssignedTag]) -> Vec<&str> {
        tags.iter().map(|t| t.tag_id.as_str()).collect()
    }

    #[test]
    fn schema_and_record_line_up() {
        let schema = profile_schema();
        assert!(schema.len() >= 60, "{}", schema.len());
        let facts = crate::synthetic::population(50, 7, date(2025, 6, 30));
        for f in &facts {
            let record = profile_record(&Profile::compute(f));
            assert_eq!(record.len(), schema.len());
            for (value, field) in record.iter().zip(schema.fields()) {
                if let Some(t) = value.type_of() {
                    assert_eq!(t, field.ty, "field {}", field.name);
                }
            }
        }
    }

    #[test]
    fn all_builtins_compile_and_are_distinct() {
        let defs = builtin_tags();
        assert!(defs.len() >= 200, "only {} built-in tags", defs.len());
        let registry = TagRegistry::with_builtins().expect("built-ins compile");
        assert_eq!(registry.len(), defs.len());
        for dim in [
            Dimension::Basic,
            Dimension::AssetsLiabilities,
            Dimension::Transactions,
            Dimension::RiskPreference,
            Dimension::Lifecycle,
        ] {
            assert!(defs.iter().filter(|d| d.dimension == dim).count() >= 10, "{dim:?}");
        }
        let mut names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), defs.len(), "human names are unique");
    }

    fn sme() -> CustomerFacts {
        let mut f =
            CustomerFacts::empty(CustomerId::from_u128(1), CustomerKind::Sme, date(2021, 3, 1), date(2025, 6, 30));
        f.employees = Some(45);
        f.industry = Some("manufacturing".into());
        f.annual_revenue_minor = Some(30_000_000_00);
        f.credit_grade = Some(CreditGrade::AA);
        f.demand_deposits_minor = 800_000_00;
        f.loans_minor = 2_000_000_00;
        f.holdings = vec!["business_account".into(), "working_capital_loan".into(), "payroll_service".into()];
        f.tx_90d =
            TxWindow { inflow_count: 40, inflow_minor: 3_000_000_00, outflow_count: 60, outflow_minor: 2_800_000_00 };
        f.tx_180d =
            TxWindow { inflow_count: 80, inflow_minor: 6_000_000_00, outflow_count: 110, outflow_minor: 5_500_000_00 };
        f.last_transaction_on = Some(date(2025, 6, 29));
        f.channels_used_90d = vec![Channel::Web, Channel::Branch];
        f
    }

    #[test]
    fn sample_profiles_get_expected_tags() {
        let registry = TagRegistry::with_builtins().unwrap();
        let tags = registry.evaluate(&Profile::compute(&sme()));
        let got = ids(&tags);
        for want in [
            "kind_sme",
            "business_customer",
            "small_business",
            "industry_manufacturing",
            "revenue_10m_100m",
            "sme_stable_good_credit",
            "investment_grade",
            "credit_aa",
            "holds_working_capital_loan",
            "loans_ge_1m",
            "over_leveraged",
            "multichannel_90d",
            "inflow_ge_1m_90d",
            "lifecycle_mature",
            "tenure_3_5y",
        ] {
            assert!(got.contains(&want), "missing {want} in {got:?}");
        }
        for absent in ["kind_individual", "dormant_90d", "payroll_customer", "aum_ge_1m", "digital_only"] {
            assert!(!got.contains(&absent), "unexpected {absent}");
        }

        let mut wealthy = CustomerFacts::empty(
            CustomerId::from_u128(2),
            CustomerKind::Individual,
            date(2012, 1, 1),
            date(2025, 6, 30),
        );
        wealthy.birth_date = Some(date(1970, 5, 5));
        wealthy.wealth_minor = 2_000_000_00;
        wealthy.time_deposits_minor = 600_000_00;
        wealthy.risk_level = Some(RiskLevel::R4);
        wealthy.risk_assessed_on = Some(date(2025, 1, 1));
        wealthy.payroll_credits_90d = 3;
        wealthy.last_login_on = Some(date(2025, 6, 1));
        wealthy.last_transaction_on = Some(date(2025, 3, 1));
        wealthy.channels_used_90d = vec![Channel::MobileApp];
        let got = registry.evaluate(&Profile::compute(&wealthy));
        let got = ids(&got);
        for want in [
            "high_value_wealth",
            "aum_ge_1m",
            "payroll_customer",
            "risk_r4",
            "aggressive_investor",
            "age_46_55",
            "digital_only",
            "no_txn_90d",
            "tenure_10y_plus",
        ] {
            assert!(got.contains(&want), "missing {want} in {got:?}");
        }
        assert!(!got.contains(&"dormant_90d"), "logged in 29 days ago");
        assert!(!got.contains(&"private_banking"));

        let mut dormant = wealthy.clone();
        dormant.last_login_on = Some(date(2025, 1, 1));
        let got = registry.evaluate(&Profile::compute(&dormant));
        assert!(ids(&got).contains(&"dormant_90d"));
        assert!(ids(&got).contains(&"win_back_candidate"));
    }

    #[test]
    fn versions_and_explanations() {
        let mut registry = TagRegistry::with_builtins().unwrap();
        let profile = Profile::compute(&sme());
        let before = registry.get("sme_stable_good_credit").unwrap().version;
        assert_eq!(before, 1);
        let mut def = registry.get("sme_stable_good_credit").unwrap().definition.clone();
        def.rule = "kind == \"sme\" and months_active >= 60".into();
        assert_eq!(registry.update(def).unwrap(), 2);
        assert_eq!(registry.history("sme_stable_good_credit").unwrap().len(), 2);
        assert!(!ids(&registry.evaluate(&profile)).contains(&"sme_stable_good_credit"));

        let bad = TagDefinition::new("sme_stable_good_credit", "x", Dimension::Basic, "months_active >= \"24\"");
        let err = registry.update(bad).unwrap_err();
        match &err {
            CustomerError::InvalidRule { source, .. } => assert_eq!((source.line, source.column), (1, 18)),
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("at 1:18"), "{err}");
        assert_eq!(registry.get("sme_stable_good_credit").unwrap().version, 2, "failed update changes nothing");

        let unknown = TagDefinition::new("x_tag", "x", Dimension::Basic, "foo > 1");
        assert!(matches!(registry.add(unknown), Err(CustomerError::InvalidRule { .. })));
        assert!(matches!(
            registry.add(TagDefinition::new("Bad-Id", "x", Dimension::Basic, "true")),
            Err(CustomerError::InvalidTagId(_))
        ));
        assert!(matches!(
            registry.add(TagDefinition::new("kind_sme", "x", Dimension::Basic, "true")),
            Err(CustomerError::DuplicateTag(_))
        ));

        let explained = registry.evaluate_explained(&profile);
        let tag = explained.iter().find(|t| t.tag_id == "inflow_ge_1m_90d").unwrap();
        let ex = tag.explanation.as_ref().unwrap();
        assert_eq!(ex.result, Some(true));
        assert_eq!(ex.inputs[0].field, "sum_inflow_90d");
        let why_not = registry.explain(&profile, "payroll_customer").unwrap();
        assert_eq!(why_not.result, Some(false));
    }

    proptest::proptest! {
        #[test]
        fn any_facts_evaluate_without_panicking(
            balances in proptest::collection::vec(proptest::num::i64::ANY, 8),
            counts in proptest::collection::vec(proptest::num::u32::ANY, 6),
            days in proptest::collection::vec(-100_000i64..100_000, 4),
        ) {
            let as_of = date(2025, 6, 30);
            let mut f = CustomerFacts::empty(CustomerId::from_u128(9), CustomerKind::Individual, as_of, as_of);
            f.opened_on = as_of - chrono::Duration::days(days[0]);
            f.birth_date = Some(as_of - chrono::Duration::days(days[1]));
            f.last_transaction_on = Some(as_of - chrono::Duration::days(days[2]));
            f.last_login_on = Some(as_of - chrono::Duration::days(days[3]));
            f.demand_deposits_minor = balances[0];
            f.time_deposits_minor = balances[1];
            f.wealth_minor = balances[2];
            f.insurance_minor = balances[3];
            f.loans_minor = balances[4];
            f.card_balance_minor = balances[5];
            f.credit_limit_minor = balances[6];
            f.aum_90d_ago_minor = Some(balances[7]);
            f.tx_90d = TxWindow { inflow_count: counts[0], inflow_minor: balances[0], outflow_count: counts[1], outflow_minor: balances[1] };
            f.tx_180d = TxWindow { inflow_count: counts[2], inflow_minor: balances[2], outflow_count: counts[3], outflow_minor: balances[3] };
            f.payroll_credits_90d = counts[4];
            f.logins_30d = counts[5];
            let registry = TagRegistry::with_builtins().unwrap();
            let profile = Profile::compute(&f);
            let tags = registry.evaluate_explained(&profile);
            proptest::prop_assert!(tags.iter().all(|t| t.explanation.as_ref().and_then(|e| e.result) == Some(true)));
            let _ = crate::ChurnFeatures::from_profile(&profile);
        }
    }

    #[test]
    fn population_coverage() {
        let registry = TagRegistry::with_builtins().unwrap();
        let facts = crate::synthetic::population(2000, 11, date(2025, 6, 30));
        let mut counts: HashMap<String, usize> = HashMap::new();
        for f in &facts {
            for t in registry.evaluate(&Profile::compute(f)) {
                *counts.entry(t.tag_id).or_default() += 1;
            }
        }
        let used = registry.current().filter(|v| counts.contains_key(&v.definition.id)).count();
        assert!(used * 10 >= registry.len() * 8, "only {used} of {} tags ever fire", registry.len());
    }
}
