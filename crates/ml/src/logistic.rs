use serde::{Deserialize, Serialize};

use crate::{check_row, param, sigmoid, Classifier, Dataset, MlError, Standardizer};

/// Training parameters for [`LogisticRegression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticConfig {
    /// L2 penalty on the weights (not the intercept), scaled per example.
    pub l2: f64,
    /// Gradient-descent step size (features are standardised when `standardize` is set).
    pub learning_rate: f64,
    pub max_iter: usize,
    /// Stop when the largest absolute gradient component falls below this.
    pub tolerance: f64,
    /// Fit a [`Standardizer`] and train on z-scores (recommended).
    pub standardize: bool,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        LogisticConfig { l2: 1e-3, learning_rate: 0.5, max_iter: 2_000, tolerance: 1e-6, standardize: true }
    }
}

/// L2-regularised logistic regression trained by batch gradient descent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    /// Weights on the (standardised, if a standardizer is present) features.
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub standardizer: Option<Standardizer>,
    /// Iterations actually run.
    pub iterations: usize,
}

impl LogisticRegression {
    pub fn fit(data: &Dataset, config: &LogisticConfig) -> Result<Self, MlError> {
        data.require_both_classes()?;
        param(config.l2 >= 0.0 && config.l2.is_finite(), "l2", "must be finite and >= 0")?;
        param(config.learning_rate > 0.0 && config.learning_rate.is_finite(), "learning_rate", "must be > 0")?;
        let standardizer = if config.standardize { Some(Standardizer::fit(data)?) } else { None };
        let xs: Vec<Vec<f64>> = match &standardizer {
            Some(s) => data.rows().iter().map(|r| s.transform(r)).collect(),
            None => data.rows().to_vec(),
        };
        let d = data.n_features();
        let n = data.len() as f64;
        let ys: Vec<f64> = data.labels().iter().map(|&l| f64::from(u8::from(l))).collect();
        let mut w = vec![0.0; d];
        // Start the intercept at the base-rate log-odds.
        let rate = ys.iter().sum::<f64>() / n;
        let mut b = (rate / (1.0 - rate)).ln();
        let mut grad = vec![0.0; d];
        let mut iterations = 0;
        for _ in 0..config.max_iter {
            iterations += 1;
            grad.iter_mut().for_each(|g| *g = 0.0);
            let mut gb = 0.0;
            for (x, y) in xs.iter().zip(&ys) {
                let z = b + x.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>();
                let e = sigmoid(z) - y;
                gb += e;
                for (g, v) in grad.iter_mut().zip(x) {
                    *g += e * v;
                }
            }
            gb /= n;
            for (g, wi) in grad.iter_mut().zip(&w) {
                *g = *g / n + config.l2 * wi;
            }
            b -= config.learning_rate * gb;
            for (wi, g) in w.iter_mut().zip(&grad) {
                *wi -= config.learning_rate * g;
            }
            let max_g = grad.iter().fold(gb.abs(), |m, g| m.max(g.abs()));
            if max_g < config.tolerance {
                break;
            }
        }
        Ok(LogisticRegression { weights: w, intercept: b, standardizer, iterations })
    }

    fn prepared(&self, x: &[f64]) -> Result<Vec<f64>, MlError> {
        check_row(x, self.weights.len())?;
        Ok(match &self.standardizer {
            Some(s) => s.transform(x),
            None => x.to_vec(),
        })
    }
}

impl Classifier for LogisticRegression {
    fn n_features(&self) -> usize {
        self.weights.len()
    }

    fn predict_log_odds(&self, x: &[f64]) -> Result<f64, MlError> {
        let z = self.prepared(x)?;
        Ok(self.intercept + z.iter().zip(&self.weights).map(|(a, c)| a * c).sum::<f64>())
    }

    /// Contribution of feature i is `w_i * z_i`: relative to an average applicant when standardised.
    fn contributions(&self, x: &[f64]) -> Result<(f64, Vec<f64>), MlError> {
        let z = self.prepared(x)?;
        Ok((self.intercept, z.iter().zip(&self.weights).map(|(a, c)| a * c).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use crate::testdata::synthetic;

    #[test]
    fn learns_synthetic_signal() {
        let data = synthetic(3_000, 7);
        let (train, test) = data.train_test_split(0.3, 11).unwrap();
        let model = LogisticRegression::fit(&train, &LogisticConfig::default()).unwrap();
        let scores: Vec<f64> = test.rows().iter().map(|r| model.predict_proba(r).unwrap()).collect();
        let auc = roc_auc(&scores, test.labels()).unwrap();
        eprintln!("logistic test AUC = {auc:.4}");
        assert!(auc > 0.75, "AUC {auc}");
        // Signs match the generating process; noise weight is small.
        assert!(model.weights[0] > 0.5 && model.weights[1] < -0.3);
        assert!(model.weights[3].abs() < 0.2);
        let (bias, contrib) = model.contributions(&test.rows()[0]).unwrap();
        let total = bias + contrib.iter().sum::<f64>();
        assert!((total - model.predict_log_odds(&test.rows()[0]).unwrap()).abs() < 1e-9);
    }

    #[test]
    fn bad_input_is_an_error() {
        let data = synthetic(100, 1);
        let model = LogisticRegression::fit(&data, &LogisticConfig::default()).unwrap();
        assert!(matches!(model.predict_proba(&[1.0]), Err(MlError::FeatureCount { .. })));
        assert!(matches!(model.predict_proba(&[1.0, f64::INFINITY, 0.0, 0.0]), Err(MlError::NonFinite { .. })));
        let one_class = Dataset::new(vec!["a".into()], vec![vec![1.0], vec![2.0]], vec![true, true]).unwrap();
        assert_eq!(LogisticRegression::fit(&one_class, &LogisticConfig::default()), Err(MlError::SingleClass));
    }
}
