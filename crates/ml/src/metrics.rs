//! Evaluation metrics for binary classifiers: ROC AUC, KS, confusion matrix, precision/recall/F1.
//!
//! Scores are "higher means more likely positive". Labels are `true` for positives.

use serde::{Deserialize, Serialize};

use crate::MlError;

fn check(scores: &[f64], labels: &[bool]) -> Result<(usize, usize), MlError> {
    if scores.len() != labels.len() {
        return Err(MlError::LabelCount { rows: scores.len(), labels: labels.len() });
    }
    if scores.is_empty() {
        return Err(MlError::Empty);
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(MlError::NonFinite { row: i, feature: "score".into() });
    }
    let pos = labels.iter().filter(|l| **l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(MlError::SingleClass);
    }
    Ok((pos, neg))
}

/// Indices sorted by ascending score.
fn order(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    idx
}

/// Area under the ROC curve via the Mann-Whitney U statistic (ties count one half).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64, MlError> {
    let (pos, neg) = check(scores, labels)?;
    let idx = order(scores);
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        // Average 1-based rank of the tie group [i, j].
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Ok((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}

/// Kolmogorov-Smirnov statistic: the largest gap between the cumulative score distributions
/// of positives and negatives (max |TPR - FPR| over all thresholds), in [0, 1].
pub fn ks_statistic(scores: &[f64], labels: &[bool]) -> Result<f64, MlError> {
    let (pos, neg) = check(scores, labels)?;
    let idx = order(scores);
    let (mut cp, mut cn, mut ks) = (0.0, 0.0, 0.0f64);
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if labels[idx[i]] {
                cp += 1.0;
            } else {
                cn += 1.0;
            }
            i += 1;
        }
        ks = ks.max((cp / pos as f64 - cn / neg as f64).abs());
    }
    Ok(ks)
}

/// Counts of a thresholded classifier: predicted positive when `score >= threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

impl ConfusionMatrix {
    pub fn at_threshold(scores: &[f64], labels: &[bool], threshold: f64) -> Result<Self, MlError> {
        if scores.len() != labels.len() {
            return Err(MlError::LabelCount { rows: scores.len(), labels: labels.len() });
        }
        let mut m = ConfusionMatrix::default();
        for (s, l) in scores.iter().zip(labels) {
            match (*s >= threshold, *l) {
                (true, true) => m.true_positives += 1,
                (true, false) => m.false_positives += 1,
                (false, false) => m.true_negatives += 1,
                (false, true) => m.false_negatives += 1,
            }
        }
        Ok(m)
    }

    fn ratio(a: u64, b: u64) -> f64 {
        if a + b == 0 {
            0.0
        } else {
            a as f64 / (a + b) as f64
        }
    }

    /// TP / (TP + FP); 0 when nothing is predicted positive.
    pub fn precision(&self) -> f64 {
        Self::ratio(self.true_positives, self.false_positives)
    }
    /// TP / (TP + FN); 0 when there are no positives.
    pub fn recall(&self) -> f64 {
        Self::ratio(self.true_positives, self.false_negatives)
    }
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    pub fn accuracy(&self) -> f64 {
        Self::ratio(self.true_positives + self.true_negatives, self.false_positives + self.false_negatives)
    }
}

/// A summary stored with model artefacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub n: usize,
    pub positives: usize,
    pub auc: f64,
    pub ks: f64,
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub confusion: ConfusionMatrix,
}

impl BinaryMetrics {
    pub fn evaluate(scores: &[f64], labels: &[bool], threshold: f64) -> Result<Self, MlError> {
        let auc = roc_auc(scores, labels)?;
        let ks = ks_statistic(scores, labels)?;
        let confusion = ConfusionMatrix::at_threshold(scores, labels, threshold)?;
        Ok(BinaryMetrics {
            n: scores.len(),
            positives: labels.iter().filter(|l| **l).count(),
            auc,
            ks,
            threshold,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            confusion,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_known_values() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels).unwrap(), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels).unwrap(), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &labels).unwrap(), 0.5);
        // One of four pairs misordered.
        assert_eq!(roc_auc(&[0.1, 0.6, 0.5, 0.9], &labels).unwrap(), 0.75);
        assert_eq!(roc_auc(&[0.1], &[true]), Err(MlError::SingleClass));
        assert_eq!(roc_auc(&[], &[]), Err(MlError::Empty));
    }

    #[test]
    fn ks_known_values() {
        let labels = [false, false, true, true];
        assert_eq!(ks_statistic(&[0.1, 0.2, 0.8, 0.9], &labels).unwrap(), 1.0);
        assert_eq!(ks_statistic(&[0.5, 0.5, 0.5, 0.5], &labels).unwrap(), 0.0);
        assert_eq!(ks_statistic(&[0.1, 0.6, 0.5, 0.9], &labels).unwrap(), 0.5);
    }

    #[test]
    fn confusion_and_f1() {
        let scores = [0.9, 0.8, 0.3, 0.7, 0.1];
        let labels = [true, false, true, true, false];
        let m = ConfusionMatrix::at_threshold(&scores, &labels, 0.5).unwrap();
        assert_eq!(m, ConfusionMatrix { true_positives: 2, false_positives: 1, true_negatives: 1, false_negatives: 1 });
        assert!((m.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(ConfusionMatrix::default().f1(), 0.0);
        let summary = BinaryMetrics::evaluate(&scores, &labels, 0.5).unwrap();
        assert_eq!(summary.positives, 3);
    }
}
