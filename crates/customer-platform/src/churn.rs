//! Churn warning: a gradient-boosted tree model over [`ChurnFeatures`], trained on a labelled
//! history (customers as they were, and whether they left in the following 90 days), with the
//! top contributing factors of every score.
//!
//! The demo bank's history comes from [`customer::synthetic`]: its churn outcomes follow a
//! hidden process the model does not see, so the held-out AUC measures real learning. The
//! rule-based lifecycle stage ("churning") is scored as a baseline next to the model.

use chrono::{NaiveDate, Utc};
use customer::synthetic;
use customer::{ChurnFeatures, LifecycleStage, Profile};
use ml::{BinaryMetrics, Classifier, Dataset, Gbdt, GbdtConfig, ModelArtefact};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::store::{ChurnFactor, ChurnScore};
use crate::PlatformError;

/// Model inputs, in order. Missing values (never logged in, no earlier activity) are -1, which
/// trees separate from every real value.
pub const FEATURES: [&str; 22] = [
    "tenure_months",
    "age_years",
    "is_business",
    "aum",
    "aum_change_90d",
    "liabilities",
    "product_count",
    "txn_count_30d",
    "txn_count_90d",
    "txn_count_180d",
    "txn_trend",
    "inflow_90d",
    "outflow_90d",
    "days_since_last_txn",
    "days_since_last_login",
    "logins_30d",
    "channel_count_90d",
    "is_payroll",
    "complaints_90d",
    "risk_level",
    "credit_grade_rank",
    "max_days_past_due",
];

/// Human-readable names of the features, for reason texts.
pub fn feature_label(feature: &str) -> &'static str {
    match feature {
        "tenure_months" => "months as a customer",
        "age_years" => "age",
        "is_business" => "business customer",
        "aum" => "assets under management",
        "aum_change_90d" => "change of AUM over 90 days",
        "liabilities" => "liabilities",
        "product_count" => "number of products held",
        "txn_count_30d" => "transactions in 30 days",
        "txn_count_90d" => "transactions in 90 days",
        "txn_count_180d" => "transactions in 180 days",
        "txn_trend" => "activity trend (last 90 days vs the 90 before)",
        "inflow_90d" => "inflows in 90 days",
        "outflow_90d" => "outflows in 90 days",
        "days_since_last_txn" => "days since the last transaction",
        "days_since_last_login" => "days since the last login",
        "logins_30d" => "logins in 30 days",
        "channel_count_90d" => "channels used in 90 days",
        "is_payroll" => "salary paid into the bank",
        "complaints_90d" => "complaints in 90 days",
        "risk_level" => "risk tolerance level",
        "credit_grade_rank" => "credit grade",
        "max_days_past_due" => "days past due",
        _ => "other",
    }
}

/// The model's input vector for a profile.
pub fn features(p: &Profile) -> Vec<f64> {
    let f = ChurnFeatures::from_profile(p);
    let opt = |v: Option<f64>| v.unwrap_or(-1.0);
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    vec![
        f.tenure_months,
        opt(f.age_years),
        flag(f.is_business),
        f.aum,
        opt(f.aum_change_90d),
        f.liabilities,
        f.product_count,
        f.txn_count_30d,
        f.txn_count_90d,
        f.txn_count_180d,
        opt(f.txn_trend),
        f.inflow_90d,
        f.outflow_90d,
        opt(f.days_since_last_txn),
        opt(f.days_since_last_login),
        f.logins_30d,
        f.channel_count_90d,
        flag(f.is_payroll),
        f.complaints_90d,
        opt(f.risk_level),
        opt(f.credit_grade_rank),
        f.max_days_past_due,
    ]
}

/// What training produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnTraining {
    pub artefact: ModelArtefact,
    pub train_rows: usize,
    pub test_rows: usize,
    pub churn_rate: f64,
    /// Held-out metrics of the model (AUC, KS, precision/recall at the threshold).
    pub metrics: BinaryMetrics,
    /// AUC of the rule-based lifecycle stage ("churning" or "dormant" = 1) on the same split.
    pub rule_baseline_auc: f64,
}

/// Trains the churn model on `customers` synthetic customers as of `as_of`, holding out 30%.
pub fn train(customers: usize, seed: u64, as_of: NaiveDate) -> Result<ChurnTraining, PlatformError> {
    let population = synthetic::population(customers, seed, as_of);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00c4_0a11);
    let mut rows = Vec::with_capacity(customers);
    let mut labels = Vec::with_capacity(customers);
    let mut stages = Vec::with_capacity(customers);
    for f in &population {
        let p = Profile::compute(f);
        rows.push(features(&p));
        stages.push(p.lifecycle.stage);
        labels.push(synthetic::churn_outcome(f, &mut rng));
    }
    let names: Vec<String> = FEATURES.iter().map(|s| s.to_string()).collect();
    let data = Dataset::new(names.clone(), rows, labels)?;
    let (train, test) = data.train_test_split(0.3, seed)?;
    let config = GbdtConfig { n_trees: 120, learning_rate: 0.08, max_depth: 3, ..GbdtConfig::default() };
    let model = Gbdt::fit(&train, &config)?;
    let mut artefact = ModelArtefact::new("churn_90d", 1, Utc::now(), names, model)?;
    let positives = data.positives() as f64 / data.len() as f64;
    let metrics = artefact.evaluate(&test, 0.5)?.clone();
    // The baseline scores the same held-out rows.
    let (_, test_idx) = ml::split_indices(data.len(), 0.3, seed)?;
    let baseline_scores: Vec<f64> = test_idx
        .iter()
        .map(|&i| f64::from(u8::from(matches!(stages[i], LifecycleStage::Churning | LifecycleStage::Dormant))))
        .collect();
    let rule_baseline_auc = ml::metrics::roc_auc(&baseline_scores, test.labels())?;
    Ok(ChurnTraining {
        artefact,
        train_rows: train.len(),
        test_rows: test.len(),
        churn_rate: positives,
        metrics,
        rule_baseline_auc,
    })
}

/// Scores a profile: churn probability and the three factors that raise it most.
pub fn score(model: &ModelArtefact, p: &Profile) -> Result<ChurnScore, PlatformError> {
    let x = features(p);
    let probability = model.predict_proba(&x)?;
    let (_, contributions) = model.model.contributions(&x)?;
    let mut factors: Vec<ChurnFactor> = contributions
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0.0)
        .map(|(i, c)| ChurnFactor { feature: FEATURES[i].to_string(), value: x[i], contribution: *c })
        .collect();
    factors.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    factors.truncate(3);
    Ok(ChurnScore { probability, factors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_beats_the_rule_baseline_on_held_out_data() {
        let t = train(6_000, 7, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()).unwrap();
        assert!(t.metrics.auc > 0.75, "AUC {}", t.metrics.auc);
        assert!(t.metrics.auc > t.rule_baseline_auc, "{} vs {}", t.metrics.auc, t.rule_baseline_auc);
        assert_eq!(t.train_rows + t.test_rows, 6_000);
        let json = t.artefact.to_json().unwrap();
        let back = ModelArtefact::from_json(&json).unwrap();
        let f = &synthetic::population(1, 3, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap())[0];
        let p = Profile::compute(f);
        let s = score(&back, &p).unwrap();
        assert!((0.0..=1.0).contains(&s.probability));
        assert!(s.factors.len() <= 3);
        assert!(s.factors.windows(2).all(|w| w[0].contribution >= w[1].contribution));
    }
}
