use serde::{Deserialize, Serialize};

use crate::{check_row, param, Classifier, Dataset, LogisticConfig, LogisticRegression, MlError};

/// Up to `n_bins - 1` unique quantile cut points of `values`; bins are `(-inf, c0], (c0, c1], ..., (c_last, inf)`.
pub(crate) fn quantile_cuts(values: &[f64], n_bins: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let Some(&max) = sorted.last() else { return Vec::new() };
    let mut cuts: Vec<f64> = Vec::new();
    for k in 1..n_bins {
        let pos = (k * sorted.len()) / n_bins;
        let c = sorted[pos.min(sorted.len() - 1)];
        if c < max && cuts.last().is_none_or(|last| c > *last) {
            cuts.push(c);
        }
    }
    cuts
}

/// Index of the bin that holds `x` given ascending `cuts`.
pub(crate) fn bin_of(cuts: &[f64], x: f64) -> usize {
    cuts.partition_point(|c| *c < x)
}

/// One bin of one feature with its weight of evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WoeBin {
    /// Exclusive lower bound (`None` = minus infinity).
    pub lower: Option<f64>,
    /// Inclusive upper bound (`None` = plus infinity).
    pub upper: Option<f64>,
    pub count: u64,
    pub positives: u64,
    /// `ln(share of positives in this bin / share of negatives in this bin)`, smoothed by 0.5
    /// per cell. Positive WoE means the bin is riskier than average.
    pub woe: f64,
}

impl WoeBin {
    /// A readable label such as `(1.5, 3]`.
    pub fn label(&self) -> String {
        let lo = self.lower.map_or("-inf".to_string(), |v| format!("{v}"));
        let hi = self.upper.map_or("+inf".to_string(), |v| format!("{v}"));
        format!("({lo}, {hi}]")
    }
}

/// The bins of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    pub feature: String,
    pub cuts: Vec<f64>,
    pub bins: Vec<WoeBin>,
    /// Information value: sum over bins of (share of positives - share of negatives) * WoE.
    pub information_value: f64,
}

impl FeatureBins {
    pub fn bin_index(&self, x: f64) -> usize {
        bin_of(&self.cuts, x)
    }
    pub fn woe(&self, x: f64) -> f64 {
        self.bins[self.bin_index(x)].woe
    }
}

/// Weight-of-evidence binning of every feature of a data set (quantile bins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WoeBinning {
    pub features: Vec<FeatureBins>,
}

impl WoeBinning {
    pub fn fit(data: &Dataset, n_bins: usize) -> Result<Self, MlError> {
        data.require_both_classes()?;
        param((2..=256).contains(&n_bins), "n_bins", "must be in 2..=256")?;
        let total_pos = data.positives() as f64;
        let total_neg = (data.len() - data.positives()) as f64;
        let mut features = Vec::with_capacity(data.n_features());
        for (j, name) in data.feature_names().iter().enumerate() {
            let col = data.column(j);
            let cuts = quantile_cuts(&col, n_bins);
            let nb = cuts.len() + 1;
            let mut counts = vec![(0u64, 0u64); nb];
            for (x, &y) in col.iter().zip(data.labels()) {
                let b = bin_of(&cuts, *x);
                counts[b].0 += 1;
                counts[b].1 += u64::from(y);
            }
            let mut iv = 0.0;
            let bins = counts
                .iter()
                .enumerate()
                .map(|(b, &(count, positives))| {
                    let neg = (count - positives) as f64;
                    let dp = (positives as f64 + 0.5) / (total_pos + 0.5 * nb as f64);
                    let dn = (neg + 0.5) / (total_neg + 0.5 * nb as f64);
                    let woe = (dp / dn).ln();
                    iv += (dp - dn) * woe;
                    WoeBin {
                        lower: if b == 0 { None } else { Some(cuts[b - 1]) },
                        upper: cuts.get(b).copied(),
                        count,
                        positives,
                        woe,
                    }
                })
                .collect();
            features.push(FeatureBins { feature: name.clone(), cuts, bins, information_value: iv });
        }
        Ok(WoeBinning { features })
    }

    /// Replaces every value by its bin's WoE.
    pub fn transform(&self, x: &[f64]) -> Result<Vec<f64>, MlError> {
        check_row(x, self.features.len())?;
        Ok(x.iter().zip(&self.features).map(|(v, f)| f.woe(*v)).collect())
    }

    pub fn transform_dataset(&self, data: &Dataset) -> Result<Dataset, MlError> {
        let rows = data.rows().iter().map(|r| self.transform(r)).collect::<Result<Vec<_>, _>>()?;
        Dataset::new(data.feature_names().to_vec(), rows, data.labels().to_vec())
    }
}

/// Scaling and training parameters for a [`Scorecard`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardConfig {
    pub n_bins: usize,
    /// Score at which the odds (negatives : positives, i.e. good : bad) equal `base_odds`.
    pub base_score: f64,
    pub base_odds: f64,
    /// Points that double the good:bad odds.
    pub points_to_double_odds: f64,
    pub logistic: LogisticConfig,
}

impl Default for ScorecardConfig {
    fn default() -> Self {
        ScorecardConfig {
            n_bins: 8,
            base_score: 600.0,
            base_odds: 50.0,
            points_to_double_odds: 20.0,
            logistic: LogisticConfig { standardize: false, ..LogisticConfig::default() },
        }
    }
}

/// Points earned by one feature in one scored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturePoints {
    pub feature: String,
    pub bin: String,
    pub points: f64,
    /// The best points this feature can earn; `max_points - points` is what the row lost here.
    pub max_points: f64,
}

impl FeaturePoints {
    pub fn shortfall(&self) -> f64 {
        self.max_points - self.points
    }
}

/// A scored row: total score (higher = safer), probability of the positive (bad) class and the
/// points per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreBreakdown {
    pub score: f64,
    pub probability: f64,
    pub base_points: f64,
    pub features: Vec<FeaturePoints>,
}

impl ScoreBreakdown {
    /// The `k` features that cost the most points, worst first: reason codes for adverse action.
    pub fn top_reasons(&self, k: usize) -> Vec<&FeaturePoints> {
        let mut v: Vec<&FeaturePoints> = self.features.iter().filter(|f| f.shortfall() > 1e-9).collect();
        v.sort_by(|a, b| b.shortfall().total_cmp(&a.shortfall()));
        v.truncate(k);
        v
    }
}

/// A WoE scorecard: logistic regression on WoE-transformed features, scaled to points.
///
/// `score = offset + factor * ln(good:bad odds)` with `factor = pdo / ln 2` and
/// `offset = base_score - factor * ln(base_odds)`; the score splits exactly into
/// `base_points + sum of per-feature points`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub binning: WoeBinning,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    pub factor: f64,
    pub offset: f64,
    /// Points per bin, per feature (`points[feature][bin]`).
    pub points: Vec<Vec<f64>>,
}

impl Scorecard {
    pub fn fit(data: &Dataset, config: &ScorecardConfig) -> Result<Self, MlError> {
        param(config.points_to_double_odds > 0.0, "points_to_double_odds", "must be > 0")?;
        param(config.base_odds > 0.0 && config.base_odds.is_finite(), "base_odds", "must be > 0")?;
        param(config.base_score.is_finite(), "base_score", "must be finite")?;
        let binning = WoeBinning::fit(data, config.n_bins)?;
        let woe_data = binning.transform_dataset(data)?;
        let lr = LogisticRegression::fit(&woe_data, &LogisticConfig { standardize: false, ..config.logistic.clone() })?;
        let factor = config.points_to_double_odds / std::f64::consts::LN_2;
        let offset = config.base_score - factor * config.base_odds.ln();
        let points = binning
            .features
            .iter()
            .zip(&lr.weights)
            .map(|(f, b)| f.bins.iter().map(|bin| -factor * b * bin.woe).collect())
            .collect();
        Ok(Scorecard { binning, coefficients: lr.weights, intercept: lr.intercept, factor, offset, points })
    }

    pub fn base_points(&self) -> f64 {
        self.offset - self.factor * self.intercept
    }

    /// Scores a row and explains it feature by feature.
    pub fn score(&self, x: &[f64]) -> Result<ScoreBreakdown, MlError> {
        check_row(x, self.coefficients.len())?;
        let base_points = self.base_points();
        let mut total = base_points;
        let features = self
            .binning
            .features
            .iter()
            .zip(&self.points)
            .zip(x)
            .map(|((fb, pts), v)| {
                let b = fb.bin_index(*v);
                total += pts[b];
                FeaturePoints {
                    feature: fb.feature.clone(),
                    bin: fb.bins[b].label(),
                    points: pts[b],
                    max_points: pts.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                }
            })
            .collect();
        Ok(ScoreBreakdown { score: total, probability: self.probability_of_score(total), base_points, features })
    }

    /// Probability of the positive (bad) class implied by a score.
    pub fn probability_of_score(&self, score: f64) -> f64 {
        crate::sigmoid(-(score - self.offset) / self.factor)
    }
}

impl Classifier for Scorecard {
    fn n_features(&self) -> usize {
        self.coefficients.len()
    }
    fn predict_log_odds(&self, x: &[f64]) -> Result<f64, MlError> {
        let (b, c) = self.contributions(x)?;
        Ok(b + c.iter().sum::<f64>())
    }
    fn contributions(&self, x: &[f64]) -> Result<(f64, Vec<f64>), MlError> {
        let w = self.binning.transform(x)?;
        Ok((self.intercept, w.iter().zip(&self.coefficients).map(|(a, b)| a * b).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use crate::testdata::synthetic;

    #[test]
    fn quantile_cuts_are_unique_and_sorted() {
        assert_eq!(quantile_cuts(&[1.0, 1.0, 1.0, 1.0], 4), Vec::<f64>::new());
        let c = quantile_cuts(&(0..100).map(f64::from).collect::<Vec<_>>(), 4);
        assert_eq!(c, vec![25.0, 50.0, 75.0]);
        assert_eq!(bin_of(&c, 25.0), 0);
        assert_eq!(bin_of(&c, 25.5), 1);
        assert_eq!(bin_of(&c, 1000.0), 3);
    }

    #[test]
    fn scorecard_ranks_and_explains() {
        let data = synthetic(4_000, 3);
        let (train, test) = data.train_test_split(0.3, 5).unwrap();
        let card = Scorecard::fit(&train, &ScorecardConfig::default()).unwrap();
        // Higher score = safer, so rank by probability of bad.
        let probs: Vec<f64> = test.rows().iter().map(|r| card.predict_proba(r).unwrap()).collect();
        let auc = roc_auc(&probs, test.labels()).unwrap();
        eprintln!("scorecard test AUC = {auc:.4}");
        assert!(auc > 0.75, "AUC {auc}");
        // The noise feature has the lowest information value.
        let iv: Vec<f64> = card.binning.features.iter().map(|f| f.information_value).collect();
        assert!(iv[3] < iv[0] && iv[3] < iv[1] && iv[3] < 0.05, "{iv:?}");

        let risky = card.score(&[2.5, -2.0, 1.0, 0.0]).unwrap();
        let safe = card.score(&[-2.5, 2.0, -1.0, 0.0]).unwrap();
        assert!(safe.score > risky.score + 40.0, "{} vs {}", safe.score, risky.score);
        let total = risky.base_points + risky.features.iter().map(|f| f.points).sum::<f64>();
        assert!((total - risky.score).abs() < 1e-9);
        // Score and probability agree.
        assert!((risky.probability - card.predict_proba(&[2.5, -2.0, 1.0, 0.0]).unwrap()).abs() < 1e-9);
        let reasons = risky.top_reasons(2);
        assert_eq!(reasons.len(), 2);
        assert!(reasons.iter().all(|r| r.feature != "noise"));
        // Scaling: base odds 50:1 at 600, 20 points doubles the odds.
        assert!((card.probability_of_score(600.0) - 1.0 / 51.0).abs() < 1e-12);
        assert!((card.probability_of_score(620.0) - 1.0 / 101.0).abs() < 1e-12);
    }
}
