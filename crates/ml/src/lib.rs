//! # ml
//!
//! Small, dependency-light binary classifiers and their evaluation, shared by the risk engine
//! (fraud and credit scorecards) and the customer domain (churn risk).
//!
//! * [`Dataset`]: named features (`f64`, finite) and boolean labels (`true` = the event of
//!   interest: fraud, default, churn), with a deterministic seeded [`Dataset::train_test_split`].
//! * [`Standardizer`]: z-score scaling fitted on training data.
//! * [`LogisticRegression`]: L2-regularised logistic regression trained by batch gradient descent.
//! * [`WoeBinning`] and [`Scorecard`]: weight-of-evidence binning and a points-based scorecard
//!   (base score at base odds, points to double the odds) whose per-feature points serve as
//!   reason codes ("top contributing factors").
//! * [`Gbdt`]: gradient-boosted depth-limited regression trees on histogram bins with log-loss,
//!   gain-based importances and exact per-prediction feature contributions (path attribution).
//! * [`metrics`]: ROC AUC, KS statistic, confusion matrix, precision / recall / F1.
//! * [`ModelArtefact`]: a versioned, serde-JSON-serialisable wrapper (name, version, trained_at,
//!   feature names, metrics) around any [`AnyModel`].
//!
//! Scores are probabilities, not money, so everything here is `f64`. Bad input (wrong number of
//! features, non-finite values, a single-class training set) is an [`MlError`], never a panic.
//!
//! ```
//! use ml::{Classifier, Dataset, LogisticConfig, LogisticRegression};
//! let data = Dataset::new(
//!     vec!["x".into()],
//!     vec![vec![0.0], vec![1.0], vec![2.0], vec![3.0]],
//!     vec![false, false, true, true],
//! ).unwrap();
//! let model = LogisticRegression::fit(&data, &LogisticConfig::default()).unwrap();
//! assert!(model.predict_proba(&[3.0]).unwrap() > model.predict_proba(&[0.0]).unwrap());
//! ```

mod artefact;
mod data;
mod gbdt;
mod logistic;
pub mod metrics;
mod scorecard;

pub use artefact::{AnyModel, ModelArtefact, ARTEFACT_FORMAT_VERSION};
pub use data::{split_indices, Dataset, Standardizer};
pub use gbdt::{Gbdt, GbdtConfig, Tree, TreeNode};
pub use logistic::{LogisticConfig, LogisticRegression};
pub use metrics::{BinaryMetrics, ConfusionMatrix};
pub use scorecard::{FeatureBins, FeaturePoints, ScoreBreakdown, Scorecard, ScorecardConfig, WoeBin, WoeBinning};

/// Errors raised by training, prediction, evaluation and (de)serialisation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MlError {
    #[error("empty data set")]
    Empty,
    #[error("row {row} has {got} features, expected {expected}")]
    FeatureCount { row: usize, expected: usize, got: usize },
    #[error("{rows} rows but {labels} labels")]
    LabelCount { rows: usize, labels: usize },
    #[error("non-finite value in feature {feature:?} (row {row})")]
    NonFinite { row: usize, feature: String },
    #[error("training data has only one class; both positives and negatives are needed")]
    SingleClass,
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    #[error("model artefact format {found} is not supported (expected {expected})")]
    UnsupportedFormat { found: u32, expected: u32 },
    #[error("serialisation: {0}")]
    Serde(String),
}

/// A trained binary classifier.
pub trait Classifier {
    /// Number of input features the model expects, in the order of its feature names.
    fn n_features(&self) -> usize;

    /// Raw score on the log-odds scale.
    fn predict_log_odds(&self, x: &[f64]) -> Result<f64, MlError>;

    /// Probability of the positive class.
    fn predict_proba(&self, x: &[f64]) -> Result<f64, MlError> {
        Ok(sigmoid(self.predict_log_odds(x)?))
    }

    /// Per-feature contributions on the log-odds scale plus a bias term, such that
    /// `bias + contributions.sum() == predict_log_odds(x)` (up to rounding).
    fn contributions(&self, x: &[f64]) -> Result<(f64, Vec<f64>), MlError>;
}

/// The logistic function, numerically safe for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

pub(crate) fn check_row(x: &[f64], expected: usize) -> Result<(), MlError> {
    if x.len() != expected {
        return Err(MlError::FeatureCount { row: 0, expected, got: x.len() });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(MlError::NonFinite { row: 0, feature: format!("#{i}") });
    }
    Ok(())
}

pub(crate) fn param(ok: bool, name: &'static str, reason: &str) -> Result<(), MlError> {
    if ok {
        Ok(())
    } else {
        Err(MlError::InvalidParameter { name, reason: reason.to_string() })
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    use super::Dataset;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
        // Box-Muller; avoids pulling rand_distr.
        let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Synthetic data: 4 features, the label depends on x0 (linear), x1 (linear, negative),
    /// and an interaction/threshold on x2; x3 is noise.
    pub fn synthetic(n: usize, seed: u64) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let x: Vec<f64> = (0..4).map(|_| normal(&mut rng)).collect();
            let z = -1.0 + 1.5 * x[0] - 1.0 * x[1] + if x[2] > 0.5 { 1.5 } else { 0.0 };
            let p = super::sigmoid(z);
            labels.push(rng.gen::<f64>() < p);
            rows.push(x);
        }
        Dataset::new(vec!["x0".into(), "x1".into(), "x2".into(), "noise".into()], rows, labels).unwrap()
    }
}
