//! Next-best-product recommendations from holdings.
//!
//! Two signals are blended: item-based collaborative filtering (cosine similarity between the
//! holder sets of two products) and single-antecedent association rules (support, confidence,
//! lift). A suitability filter then removes every product whose risk level exceeds the
//! customer's; customers without a valid risk profile only get R1 products. Scores are `f64`
//! (statistics, not money).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::profile::RiskLevel;
use crate::CustomerError;

/// A product that can be held and recommended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub code: String,
    pub name: String,
    /// Investment risk (R1 for deposits, loans and services).
    pub risk: RiskLevel,
}

/// The products known to the recommender.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    products: Vec<Product>,
}

impl Catalog {
    pub fn new(products: Vec<Product>) -> Self {
        Catalog { products }
    }

    /// The bank's standard retail and corporate shelf (also used by the built-in `holds_*` tags).
    pub fn standard() -> Self {
        use RiskLevel::*;
        let items: [(&str, &str, RiskLevel); 22] = [
            ("demand_deposit", "demand deposit account", R1),
            ("time_deposit", "time deposit", R1),
            ("large_cd", "large-denomination CD", R1),
            ("money_market_fund", "money-market fund", R1),
            ("insurance_annuity", "annuity insurance", R1),
            ("bond_fund", "bond fund", R2),
            ("wealth_mgmt_r2", "fixed-income wealth product", R2),
            ("balanced_fund", "balanced fund", R3),
            ("index_fund", "index fund", R3),
            ("gold", "gold account", R3),
            ("equity_fund", "equity fund", R4),
            ("private_equity", "private equity fund", R5),
            ("credit_card", "credit card", R1),
            ("consumer_loan", "instant consumer loan", R1),
            ("mortgage", "mortgage", R1),
            ("business_account", "business current account", R1),
            ("payroll_service", "payroll service", R1),
            ("pos_acquiring", "POS acquiring", R1),
            ("working_capital_loan", "working-capital loan", R1),
            ("supply_chain_finance", "supply-chain financing", R1),
            ("cash_pooling", "cash pooling", R1),
            ("fx_service", "FX service", R1),
        ];
        Catalog::new(
            items
                .iter()
                .map(|(c, n, r)| Product { code: (*c).to_string(), name: (*n).to_string(), risk: *r })
                .collect(),
        )
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    pub fn index_of(&self, code: &str) -> Option<usize> {
        self.products.iter().position(|p| p.code == code)
    }

    fn indices(&self, codes: &[String]) -> Result<Vec<usize>, CustomerError> {
        let mut out: Vec<usize> = codes
            .iter()
            .map(|c| self.index_of(c).ok_or_else(|| CustomerError::UnknownProduct(c.clone())))
            .collect::<Result<_, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Is `product` suitable for a customer with this risk profile?
pub fn suitable(product: &Product, customer: Option<RiskLevel>) -> bool {
    product.risk <= customer.unwrap_or(RiskLevel::R1)
}

/// Tuning of [`Recommender::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecommenderConfig {
    /// Minimum share of customers holding both products for a rule to be kept.
    pub min_support: f64,
    /// Minimum P(consequent | antecedent).
    pub min_confidence: f64,
    /// Weight of the collaborative-filtering score in the blend.
    pub cf_weight: f64,
    /// Weight of the association-rule score in the blend.
    pub rule_weight: f64,
}

impl Default for RecommenderConfig {
    fn default() -> Self {
        RecommenderConfig { min_support: 0.01, min_confidence: 0.2, cf_weight: 1.0, rule_weight: 1.0 }
    }
}

/// `antecedent => consequent` mined from holdings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociationRule {
    pub antecedent: String,
    pub consequent: String,
    pub support: f64,
    pub confidence: f64,
    pub lift: f64,
}

/// One recommended product with the parts of its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub product: String,
    pub score: f64,
    pub cf_score: f64,
    pub rule_score: f64,
    /// The held product that contributed most ("because you hold ...").
    pub because_of: Option<String>,
}

/// A fitted model: product-product similarities and association rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recommender {
    catalog: Catalog,
    config: RecommenderConfig,
    /// Row-major n x n cosine similarities.
    similarity: Vec<f64>,
    /// Row-major n x n confidence of rule i => j where kept (lift > 1), else 0.
    confidence: Vec<f64>,
    rules: Vec<AssociationRule>,
    /// Holder counts per product (for the popularity fallback).
    popularity: Vec<usize>,
}

impl Recommender {
    /// Fits on the holdings of a population (one list of product codes per customer).
    pub fn fit(catalog: &Catalog, holdings: &[Vec<String>], config: RecommenderConfig) -> Result<Self, CustomerError> {
        let n = catalog.products.len();
        let baskets: Vec<Vec<usize>> = holdings.iter().map(|h| catalog.indices(h)).collect::<Result<_, _>>()?;
        let mut count = vec![0usize; n];
        let mut co = vec![0usize; n * n];
        for basket in &baskets {
            for &i in basket {
                count[i] += 1;
                for &j in basket {
                    if i != j {
                        co[i * n + j] += 1;
                    }
                }
            }
        }
        let customers = baskets.len().max(1) as f64;
        let mut similarity = vec![0.0; n * n];
        let mut confidence = vec![0.0; n * n];
        let mut rules = Vec::new();
        for i in 0..n {
            for j in 0..n {
                let both = co[i * n + j];
                if i == j || both == 0 {
                    continue;
                }
                similarity[i * n + j] = both as f64 / ((count[i] as f64) * (count[j] as f64)).sqrt();
                let support = both as f64 / customers;
                let conf = both as f64 / count[i] as f64;
                let lift = conf / (count[j] as f64 / customers);
                if support >= config.min_support && conf >= config.min_confidence && lift > 1.0 {
                    confidence[i * n + j] = conf;
                    rules.push(AssociationRule {
                        antecedent: catalog.products[i].code.clone(),
                        consequent: catalog.products[j].code.clone(),
                        support,
                        confidence: conf,
                        lift,
                    });
                }
            }
        }
        rules.sort_by(|a, b| b.lift.total_cmp(&a.lift).then_with(|| a.antecedent.cmp(&b.antecedent)));
        Ok(Recommender { catalog: catalog.clone(), config, similarity, confidence, rules, popularity: count })
    }

    /// Cosine similarity of two products' holder sets (0 if unknown).
    pub fn similarity(&self, a: &str, b: &str) -> f64 {
        let n = self.catalog.products.len();
        match (self.catalog.index_of(a), self.catalog.index_of(b)) {
            (Some(i), Some(j)) => self.similarity[i * n + j],
            _ => 0.0,
        }
    }

    /// Mined rules, highest lift first.
    pub fn rules(&self) -> &[AssociationRule] {
        &self.rules
    }

    /// Up to `k` suitable products the customer does not hold, best first. Ties and customers
    /// without signal fall back to popularity, so the list is full whenever enough suitable
    /// products exist. Unknown held codes are ignored.
    pub fn recommend(&self, held: &[String], risk: Option<RiskLevel>, k: usize) -> Vec<Recommendation> {
        let n = self.catalog.products.len();
        let held: Vec<usize> = held.iter().filter_map(|c| self.catalog.index_of(c)).collect();
        let total = self.popularity.iter().sum::<usize>().max(1) as f64;
        let mut scored: Vec<Recommendation> = (0..n)
            .filter(|j| !held.contains(j) && suitable(&self.catalog.products[*j], risk))
            .map(|j| {
                let mut cf = 0.0;
                let mut rule: f64 = 0.0;
                let mut best: Option<(usize, f64)> = None;
                for &i in &held {
                    let s = self.similarity[i * n + j];
                    cf += s;
                    rule = rule.max(self.confidence[i * n + j]);
                    if s > 0.0 && best.is_none_or(|(_, b)| s > b) {
                        best = Some((i, s));
                    }
                }
                if !held.is_empty() {
                    cf /= held.len() as f64;
                }
                // Popularity as a tiny tie-breaker (< any real signal).
                let pop = 1e-6 * self.popularity[j] as f64 / total;
                Recommendation {
                    product: self.catalog.products[j].code.clone(),
                    score: self.config.cf_weight * cf + self.config.rule_weight * rule + pop,
                    cf_score: cf,
                    rule_score: rule,
                    because_of: best.map(|(i, _)| self.catalog.products[i].code.clone()),
                }
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.product.cmp(&b.product)));
        scored.truncate(k);
        scored
    }

    /// The `k` most held suitable products the customer does not hold (baseline).
    pub fn popular(&self, held: &[String], risk: Option<RiskLevel>, k: usize) -> Vec<String> {
        let mut items: Vec<(usize, &Product)> = self
            .catalog
            .products
            .iter()
            .enumerate()
            .filter(|(_, p)| !held.contains(&p.code) && suitable(p, risk))
            .collect();
        items.sort_by(|a, b| self.popularity[b.0].cmp(&self.popularity[a.0]).then_with(|| a.1.code.cmp(&b.1.code)));
        items.into_iter().take(k).map(|(_, p)| p.code.clone()).collect()
    }
}

/// One customer for evaluation: holdings and risk profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalCustomer {
    pub holdings: Vec<String>,
    pub risk: Option<RiskLevel>,
}

/// Precision and recall at k.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub precision_at_k: f64,
    pub recall_at_k: f64,
}

/// Result of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub k: usize,
    /// Customers with at least two holdings, one of which was hidden.
    pub test_customers: usize,
    pub model: Metrics,
    pub popularity_baseline: Metrics,
}

/// Leave-one-out evaluation: for every customer with two or more holdings, one holding is
/// hidden (chosen deterministically from the customer's position, so runs are reproducible),
/// the model is fitted on everything that remains, and the top `k` recommendations are checked
/// against the hidden product. With one hidden item, precision@k = hits / k and recall@k = hits.
pub fn evaluate(
    catalog: &Catalog,
    population: &[EvalCustomer],
    k: usize,
    config: RecommenderConfig,
) -> Result<Evaluation, CustomerError> {
    let mut train: Vec<Vec<String>> = Vec::with_capacity(population.len());
    let mut hidden: Vec<Option<String>> = Vec::with_capacity(population.len());
    for (i, c) in population.iter().enumerate() {
        let mut h = c.holdings.clone();
        h.sort();
        h.dedup();
        if h.len() >= 2 {
            // A fixed multiplicative hash of the index picks which holding to hide.
            let pick = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
            let removed = h.remove((pick % h.len() as u64) as usize);
            hidden.push(Some(removed));
        } else {
            hidden.push(None);
        }
        train.push(h);
    }
    let model = Recommender::fit(catalog, &train, config)?;
    let (mut hits_model, mut hits_pop, mut tested) = (0usize, 0usize, 0usize);
    for ((c, h), target) in population.iter().zip(&train).zip(&hidden) {
        let Some(target) = target else { continue };
        tested += 1;
        if model.recommend(h, c.risk, k).iter().any(|r| &r.product == target) {
            hits_model += 1;
        }
        if model.popular(h, c.risk, k).contains(target) {
            hits_pop += 1;
        }
    }
    let metrics = |hits: usize| {
        let t = tested.max(1) as f64;
        Metrics { precision_at_k: hits as f64 / (t * k.max(1) as f64), recall_at_k: hits as f64 / t }
    };
    Ok(Evaluation { k, test_customers: tested, model: metrics(hits_model), popularity_baseline: metrics(hits_pop) })
}

/// Convenience: how many customers hold each product.
pub fn holding_counts(holdings: &[Vec<String>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for h in holdings {
        for code in h {
            *counts.entry(code.clone()).or_insert(0) += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;
    use chrono::NaiveDate;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn cosine_and_rules_on_a_tiny_population() {
        let catalog = Catalog::standard();
        let holdings = vec![
            s(&["demand_deposit", "time_deposit"]),
            s(&["demand_deposit", "time_deposit"]),
            s(&["demand_deposit", "credit_card"]),
            s(&["credit_card", "consumer_loan"]),
        ];
        let r = Recommender::fit(&catalog, &holdings, RecommenderConfig::default()).unwrap();
        // demand 3 holders, time 2, both 2 -> 2 / sqrt(6)
        assert!((r.similarity("demand_deposit", "time_deposit") - 2.0 / 6f64.sqrt()).abs() < 1e-12);
        assert_eq!(r.similarity("time_deposit", "consumer_loan"), 0.0);
        let rule = r.rules().iter().find(|x| x.antecedent == "time_deposit" && x.consequent == "demand_deposit");
        let rule = rule.expect("time => demand");
        assert_eq!((rule.support, rule.confidence), (0.5, 1.0));
        assert!((rule.lift - 4.0 / 3.0).abs() < 1e-12);
        let recs = r.recommend(&s(&["time_deposit"]), Some(RiskLevel::R1), 3);
        assert_eq!(recs[0].product, "demand_deposit");
        assert_eq!(recs[0].because_of.as_deref(), Some("time_deposit"));
        assert!(matches!(
            Recommender::fit(&catalog, &[s(&["spaceship"])], RecommenderConfig::default()),
            Err(CustomerError::UnknownProduct(_))
        ));
    }

    #[test]
    fn never_recommends_above_the_risk_level() {
        let facts = synthetic::population(1500, 3, NaiveDate::from_ymd_opt(2025, 6, 30).unwrap());
        let holdings: Vec<Vec<String>> = facts.iter().map(|f| f.holdings.clone()).collect();
        let catalog = Catalog::standard();
        let r = Recommender::fit(&catalog, &holdings, RecommenderConfig::default()).unwrap();
        for f in &facts {
            for rec in r.recommend(&f.holdings, f.risk_level, 5) {
                let p = &catalog.products()[catalog.index_of(&rec.product).unwrap()];
                assert!(suitable(p, f.risk_level), "{} for {:?}", p.code, f.risk_level);
                assert!(!f.holdings.contains(&rec.product));
            }
        }
        assert!(r.recommend(&s(&["equity_fund"]), None, 22).iter().all(|x| x.product != "private_equity"));
    }

    #[test]
    fn beats_popularity_on_held_out_holdings() {
        let facts = synthetic::population(3000, 42, NaiveDate::from_ymd_opt(2025, 6, 30).unwrap());
        let population: Vec<EvalCustomer> =
            facts.iter().map(|f| EvalCustomer { holdings: f.holdings.clone(), risk: f.risk_level }).collect();
        let e = evaluate(&Catalog::standard(), &population, 5, RecommenderConfig::default()).unwrap();
        let again = evaluate(&Catalog::standard(), &population, 5, RecommenderConfig::default()).unwrap();
        assert_eq!(e, again, "deterministic");
        assert!(e.test_customers > 2000);
        assert!((e.model.precision_at_k * 5.0 - e.model.recall_at_k).abs() < 1e-12);
        println!("{e:?}");
        assert!(e.model.recall_at_k > 0.7, "{e:?}");
        assert!(e.model.recall_at_k > e.popularity_baseline.recall_at_k, "{e:?}");
    }
}
