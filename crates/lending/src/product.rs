//! Product definitions: plain serde data so a bank can load them from TOML or JSON.

use customer::CustomerKind;
use money::{Currency, DayCount, Rounding};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{LendingError, RepaymentMethod, RiskGrade};

/// Which product family (and therefore which eligibility rules, scorecard and limit base) applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// 秒贷: individuals, bureau + social security + housing fund.
    InstantConsumer,
    /// 税贷通: small businesses and sole proprietors, tax data, revolving line with daily interest.
    TaxSme,
    /// 链融: suppliers financing receivables confirmed by a core enterprise.
    SupplyChain,
}

/// How the rates in the pricing grid are quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateBasis {
    /// Nominal annual rate (0.06 = 6% a year).
    Annual,
    /// Rate per day (0.00015 = 0.015% a day); the annual equivalent is `rate × days in year` of
    /// the product's day count (360 for ACT/360 and 30/360, 365 for ACT/365).
    PerDay,
}

/// One row of a product's pricing grid: the grade reached with at least `min_score` points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PricingRow {
    pub grade: RiskGrade,
    /// Lowest scorecard total that reaches this grade (rows are checked best grade first).
    pub min_score: i32,
    /// `false` for grades that are declined (D and E in the shipped products).
    pub offered: bool,
    /// Rate in the product's `rate_basis` (decimal string).
    #[schema(value_type = String, example = "0.0500")]
    pub rate: Decimal,
    /// Limit = capacity base × multiplier (capacity base depends on the product kind: monthly
    /// income, annual tax paid, or receivable × advance ratio), capped by `max_limit_minor`.
    /// Decimal string.
    #[schema(value_type = String, example = "12")]
    pub limit_multiplier: Decimal,
    pub max_limit_minor: i64,
}

/// Eligibility rules checked before any scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EligibilityRules {
    /// Customer kinds that may apply: `individual`, `sole_proprietor`, `sme`, `core_enterprise`.
    #[schema(value_type = Vec<String>, example = json!(["individual"]))]
    pub allowed_kinds: Vec<CustomerKind>,
    /// Age limits for individuals (and the owner of a sole proprietorship when known).
    pub min_age: Option<u32>,
    pub max_age: Option<u32>,
    pub require_kyc_verified: bool,
    pub require_bureau_report: bool,
    /// Minimum tax paid in the last full year (tax_sme: 20,000 CNY).
    pub min_annual_tax_minor: Option<i64>,
    pub require_confirmed_receivable: bool,
    /// A current delinquency of at least this many days past due anywhere is "severe": decline.
    pub severe_dpd: u32,
    /// Policy knockout: more delinquencies than this in the last 12 months is a decline.
    pub max_delinquencies_12m: Option<u32>,
}

/// A loan product. All amounts are minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub code: String,
    pub name: String,
    pub kind: ProductKind,
    pub currency: Currency,
    pub min_amount_minor: i64,
    pub max_amount_minor: i64,
    /// Terms offered in months (for a revolving line: the line tenor).
    pub terms_months: Vec<u32>,
    pub methods: Vec<RepaymentMethod>,
    pub rate_basis: RateBasis,
    /// Day count for daily accruals (revolving interest, penalty interest, payoff to date).
    pub day_count: DayCount,
    /// Rounding of scheduled interest per period and of installments.
    pub rounding: Rounding,
    /// Penalty rate = contractual annual rate × this multiplier (1.5 in the shipped products).
    /// Decimal string.
    #[schema(value_type = String, example = "1.5")]
    pub penalty_multiplier: Decimal,
    /// One-off fee at disbursement as a fraction of the principal (included in the APR).
    /// Decimal string.
    #[schema(value_type = String, example = "0")]
    pub upfront_fee_rate: Decimal,
    pub offer_validity_hours: u32,
    /// Supply chain: the share of a confirmed receivable that can be financed (decimal string).
    #[schema(value_type = Option<String>, example = "0.8")]
    pub advance_ratio: Option<Decimal>,
    pub eligibility: EligibilityRules,
    /// Best grade first; the first row whose `min_score` the score reaches gives the grade.
    pub pricing: Vec<PricingRow>,
    /// Grades that go to manual review instead of automatic approval (the borderline band).
    pub review_grades: Vec<RiskGrade>,
    pub scorecard_version: String,
}

/// Days in a year for a day count, used to annualise a per-day rate and to accrue one day.
pub fn days_in_year(day_count: DayCount) -> Decimal {
    match day_count {
        DayCount::Act365 => Decimal::from(365),
        DayCount::Act360 | DayCount::Thirty360 => Decimal::from(360),
    }
}

fn d(s: &str) -> Decimal {
    s.parse().expect("literal decimal")
}

fn row(grade: RiskGrade, min_score: i32, rate: &str, mult: &str, max_limit_minor: i64) -> PricingRow {
    PricingRow { grade, min_score, offered: true, rate: d(rate), limit_multiplier: d(mult), max_limit_minor }
}

fn declined(grade: RiskGrade, min_score: i32) -> PricingRow {
    PricingRow {
        grade,
        min_score,
        offered: false,
        rate: Decimal::ZERO,
        limit_multiplier: Decimal::ZERO,
        max_limit_minor: 0,
    }
}

impl Product {
    /// 秒贷 instant consumer loan: up to 500,000 CNY, 3–36 months, annuity or equal principal.
    /// Limit = monthly income (social-security contribution base) × multiplier.
    pub fn instant_consumer() -> Product {
        use RiskGrade::*;
        Product {
            code: "instant_consumer".into(),
            name: "秒贷 Instant consumer loan".into(),
            kind: ProductKind::InstantConsumer,
            currency: Currency::CNY,
            min_amount_minor: 1_000_00,
            max_amount_minor: 500_000_00,
            terms_months: vec![3, 6, 12, 24, 36],
            methods: vec![RepaymentMethod::EqualInstallment, RepaymentMethod::EqualPrincipal],
            rate_basis: RateBasis::Annual,
            day_count: DayCount::Act360,
            rounding: Rounding::HalfUp,
            penalty_multiplier: d("1.5"),
            upfront_fee_rate: Decimal::ZERO,
            offer_validity_hours: 72,
            advance_ratio: None,
            eligibility: EligibilityRules {
                allowed_kinds: vec![CustomerKind::Individual],
                min_age: Some(22),
                max_age: Some(60),
                require_kyc_verified: true,
                require_bureau_report: true,
                min_annual_tax_minor: None,
                require_confirmed_receivable: false,
                severe_dpd: 60,
                max_delinquencies_12m: Some(1),
            },
            pricing: vec![
                row(AAA, 760, "0.0360", "20", 500_000_00),
                row(AA, 720, "0.0420", "16", 400_000_00),
                row(A, 680, "0.0500", "12", 300_000_00),
                row(BBB, 640, "0.0650", "10", 200_000_00),
                row(BB, 600, "0.0800", "8", 100_000_00),
                row(B, 560, "0.1000", "6", 60_000_00),
                row(CCC, 520, "0.1300", "4", 30_000_00),
                row(C, 480, "0.1600", "2", 10_000_00),
                declined(D, 440),
                declined(E, i32::MIN),
            ],
            review_grades: vec![CCC, C],
            scorecard_version: "consumer-v1".into(),
        }
    }

    /// 税贷通 tax-data SME line: annual tax ≥ 20,000 CNY, up to 3,000,000 CNY, revolving,
    /// interest quoted and accrued per day (ACT/360).
    /// Limit = last year's tax paid × multiplier, also capped at 20% of last year's revenue.
    pub fn tax_sme() -> Product {
        use RiskGrade::*;
        Product {
            code: "tax_sme".into(),
            name: "税贷通 Tax-data SME revolving line".into(),
            kind: ProductKind::TaxSme,
            currency: Currency::CNY,
            min_amount_minor: 10_000_00,
            max_amount_minor: 3_000_000_00,
            terms_months: vec![12],
            methods: vec![RepaymentMethod::Revolving],
            rate_basis: RateBasis::PerDay,
            day_count: DayCount::Act360,
            rounding: Rounding::Bankers,
            penalty_multiplier: d("1.5"),
            upfront_fee_rate: Decimal::ZERO,
            offer_validity_hours: 168,
            advance_ratio: None,
            eligibility: EligibilityRules {
                allowed_kinds: vec![CustomerKind::Sme, CustomerKind::SoleProprietor],
                min_age: Some(18),
                max_age: Some(65),
                require_kyc_verified: true,
                require_bureau_report: true,
                min_annual_tax_minor: Some(20_000_00),
                require_confirmed_receivable: false,
                severe_dpd: 60,
                max_delinquencies_12m: Some(1),
            },
            pricing: vec![
                row(AAA, 760, "0.00010", "10", 3_000_000_00),
                row(AA, 720, "0.00011", "8", 2_500_000_00),
                row(A, 680, "0.00012", "7", 2_000_000_00),
                row(BBB, 640, "0.00013", "6", 1_500_000_00),
                row(BB, 600, "0.00015", "5", 1_000_000_00),
                row(B, 560, "0.00017", "4", 600_000_00),
                row(CCC, 520, "0.00019", "3", 300_000_00),
                row(C, 480, "0.00021", "2", 100_000_00),
                declined(D, 440),
                declined(E, i32::MIN),
            ],
            review_grades: vec![CCC, C],
            scorecard_version: "sme-tax-v1".into(),
        }
    }

    /// 链融 supply-chain receivables financing: advance up to 80% of a receivable confirmed by
    /// the core enterprise, interest monthly, principal repaid by the core enterprise at maturity.
    pub fn supply_chain() -> Product {
        use RiskGrade::*;
        Product {
            code: "supply_chain".into(),
            name: "链融 Supply-chain receivables financing".into(),
            kind: ProductKind::SupplyChain,
            currency: Currency::CNY,
            min_amount_minor: 10_000_00,
            max_amount_minor: 10_000_000_00,
            terms_months: vec![1, 2, 3, 6, 12],
            methods: vec![RepaymentMethod::InterestOnlyBullet],
            rate_basis: RateBasis::Annual,
            day_count: DayCount::Act360,
            rounding: Rounding::Bankers,
            penalty_multiplier: d("1.5"),
            upfront_fee_rate: d("0.002"),
            offer_validity_hours: 48,
            advance_ratio: Some(d("0.8")),
            eligibility: EligibilityRules {
                allowed_kinds: vec![CustomerKind::Sme, CustomerKind::SoleProprietor],
                min_age: None,
                max_age: None,
                require_kyc_verified: true,
                require_bureau_report: false,
                min_annual_tax_minor: None,
                require_confirmed_receivable: true,
                severe_dpd: 60,
                max_delinquencies_12m: Some(1),
            },
            pricing: vec![
                row(AAA, 760, "0.0380", "1.0", 10_000_000_00),
                row(AA, 720, "0.0420", "1.0", 8_000_000_00),
                row(A, 680, "0.0460", "1.0", 6_000_000_00),
                row(BBB, 640, "0.0520", "0.95", 4_000_000_00),
                row(BB, 600, "0.0600", "0.9", 2_000_000_00),
                row(B, 560, "0.0700", "0.8", 1_000_000_00),
                row(CCC, 520, "0.0850", "0.7", 500_000_00),
                row(C, 480, "0.1000", "0.5", 200_000_00),
                declined(D, 440),
                declined(E, i32::MIN),
            ],
            review_grades: vec![CCC, C],
            scorecard_version: "supply-chain-v1".into(),
        }
    }

    /// The three shipped products.
    pub fn defaults() -> Vec<Product> {
        vec![Product::instant_consumer(), Product::tax_sme(), Product::supply_chain()]
    }

    /// Converts a grid rate to a nominal annual rate.
    pub fn annual_rate(&self, grid_rate: Decimal) -> Decimal {
        match self.rate_basis {
            RateBasis::Annual => grid_rate,
            RateBasis::PerDay => grid_rate * days_in_year(self.day_count),
        }
    }

    /// The grid row for a score (best grade first).
    pub fn row_for_score(&self, score: i32) -> &PricingRow {
        self.pricing.iter().find(|r| score >= r.min_score).unwrap_or_else(|| self.pricing.last().expect("validated"))
    }

    pub fn row_for_grade(&self, grade: RiskGrade) -> Option<&PricingRow> {
        self.pricing.iter().find(|r| r.grade == grade)
    }

    /// Checks internal consistency; call after loading a product from a file.
    pub fn validate(&self) -> Result<(), LendingError> {
        let bad = |reason: &str| Err(LendingError::InvalidProduct { code: self.code.clone(), reason: reason.into() });
        if self.code.is_empty() || !self.code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return bad("code must be snake_case");
        }
        if self.min_amount_minor <= 0 || self.max_amount_minor < self.min_amount_minor {
            return bad("need 0 < min_amount <= max_amount");
        }
        if self.terms_months.is_empty() || self.terms_months.iter().any(|&t| t == 0 || t > 480) {
            return bad("terms must be 1..=480 months and at least one");
        }
        if self.methods.is_empty() {
            return bad("at least one repayment method");
        }
        let revolving = self.methods.contains(&RepaymentMethod::Revolving);
        if revolving && self.methods.len() > 1 {
            return bad("a revolving product offers no other method");
        }
        if self.pricing.is_empty() || self.pricing.last().map(|r| r.min_score) != Some(i32::MIN) {
            return bad("pricing grid must end with a catch-all row (min_score = i32::MIN)");
        }
        if self.pricing.windows(2).any(|w| w[0].min_score <= w[1].min_score || w[0].grade >= w[1].grade) {
            return bad("pricing rows must be ordered best grade first with strictly decreasing min_score");
        }
        if self.pricing.iter().any(|r| r.offered && (r.rate < Decimal::ZERO || r.max_limit_minor <= 0)) {
            return bad("offered rows need a non-negative rate and a positive max limit");
        }
        if self.pricing.iter().any(|r| r.offered && r.grade >= RiskGrade::D) {
            return bad("grades D and E are never offered");
        }
        if self.penalty_multiplier < Decimal::ONE || self.upfront_fee_rate < Decimal::ZERO {
            return bad("penalty multiplier must be >= 1 and fee rate >= 0");
        }
        if self.kind == ProductKind::SupplyChain
            && !matches!(self.advance_ratio, Some(r) if r > Decimal::ZERO && r <= Decimal::ONE)
        {
            return bad("supply-chain products need an advance ratio in (0, 1]");
        }
        Ok(())
    }
}

/// A set of products by code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub products: Vec<Product>,
}

impl Catalog {
    /// The three shipped products.
    pub fn builtin() -> Catalog {
        Catalog { products: Product::defaults() }
    }

    /// Parses and validates a catalog from JSON (`{"products": [...]}`).
    pub fn from_json(text: &str) -> Result<Catalog, LendingError> {
        let catalog: Catalog = serde_json::from_str(text)
            .map_err(|e| LendingError::InvalidProduct { code: "<catalog>".into(), reason: e.to_string() })?;
        for p in &catalog.products {
            p.validate()?;
        }
        Ok(catalog)
    }

    pub fn get(&self, code: &str) -> Result<&Product, LendingError> {
        self.products.iter().find(|p| p.code == code).ok_or_else(|| LendingError::UnknownProduct(code.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_products_are_valid_and_round_trip() {
        for p in Product::defaults() {
            p.validate().unwrap();
            let json = serde_json::to_string(&p).unwrap();
            let back: Product = serde_json::from_str(&json).unwrap();
            assert_eq!(back, p);
            let toml_text = toml::to_string(&p).unwrap();
            let back: Product = toml::from_str(&toml_text).unwrap();
            assert_eq!(back, p);
        }
        let json = serde_json::to_string(&Catalog::builtin()).unwrap();
        let cat = Catalog::from_json(&json).unwrap();
        assert_eq!(cat.get("tax_sme").unwrap().kind, ProductKind::TaxSme);
        assert!(matches!(cat.get("nope"), Err(LendingError::UnknownProduct(_))));
    }

    #[test]
    fn per_day_rates_annualise_by_day_count() {
        let p = Product::tax_sme();
        assert_eq!(p.annual_rate(d("0.00015")), d("0.054"));
        assert_eq!(p.row_for_score(800).grade, RiskGrade::AAA);
        assert_eq!(p.row_for_score(610).grade, RiskGrade::BB);
        assert_eq!(p.row_for_score(-5).grade, RiskGrade::E);
    }

    #[test]
    fn validation_rejects_inconsistent_products() {
        let mut p = Product::instant_consumer();
        p.pricing[8].offered = true;
        p.pricing[8].max_limit_minor = 1;
        assert!(p.validate().is_err());
        let mut p = Product::supply_chain();
        p.advance_ratio = None;
        assert!(p.validate().is_err());
        let mut p = Product::instant_consumer();
        p.terms_months.clear();
        assert!(p.validate().is_err());
    }
}
