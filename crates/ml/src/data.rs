use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{param, MlError};

/// A labelled data set: one row of finite `f64` features per example and a boolean label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    feature_names: Vec<String>,
    rows: Vec<Vec<f64>>,
    labels: Vec<bool>,
}

impl Dataset {
    /// Validates shapes and values: every row has one value per feature name and all values
    /// are finite (encode missing values explicitly, e.g. as an indicator feature).
    pub fn new(feature_names: Vec<String>, rows: Vec<Vec<f64>>, labels: Vec<bool>) -> Result<Self, MlError> {
        if rows.len() != labels.len() {
            return Err(MlError::LabelCount { rows: rows.len(), labels: labels.len() });
        }
        for (r, row) in rows.iter().enumerate() {
            if row.len() != feature_names.len() {
                return Err(MlError::FeatureCount { row: r, expected: feature_names.len(), got: row.len() });
            }
            if let Some(i) = row.iter().position(|v| !v.is_finite()) {
                return Err(MlError::NonFinite { row: r, feature: feature_names[i].clone() });
            }
        }
        Ok(Dataset { feature_names, rows, labels })
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }
    pub fn labels(&self) -> &[bool] {
        &self.labels
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }
    /// Number of positive labels.
    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|l| **l).count()
    }

    /// Column `j` as a vector.
    pub fn column(&self, j: usize) -> Vec<f64> {
        self.rows.iter().map(|r| r[j]).collect()
    }

    /// Errors unless the set is non-empty and has both classes.
    pub fn require_both_classes(&self) -> Result<(), MlError> {
        if self.is_empty() {
            return Err(MlError::Empty);
        }
        let p = self.positives();
        if p == 0 || p == self.len() {
            return Err(MlError::SingleClass);
        }
        Ok(())
    }

    /// Deterministic shuffled split: the same seed always yields the same partition.
    /// `test_fraction` must lie in (0, 1).
    pub fn train_test_split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset), MlError> {
        let (train_idx, test_idx) = split_indices(self.len(), test_fraction, seed)?;
        Ok((self.subset(&train_idx), self.subset(&test_idx)))
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            feature_names: self.feature_names.clone(),
            rows: indices.iter().map(|&i| self.rows[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// Z-score scaling: `(x - mean) / std`, with `std` replaced by 1 for constant features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
}

impl Standardizer {
    pub fn fit(data: &Dataset) -> Result<Self, MlError> {
        if data.is_empty() {
            return Err(MlError::Empty);
        }
        let n = data.len() as f64;
        let d = data.n_features();
        let mut means = vec![0.0; d];
        for row in data.rows() {
            for (m, v) in means.iter_mut().zip(row) {
                *m += v / n;
            }
        }
        let mut vars = vec![0.0; d];
        for row in data.rows() {
            for ((s, v), m) in vars.iter_mut().zip(row).zip(&means) {
                *s += (v - m) * (v - m) / n;
            }
        }
        let stds = vars.into_iter().map(|v| if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 }).collect();
        Ok(Standardizer { means, stds })
    }

    /// Scales one row into `out` (cleared first).
    pub fn transform_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(x.iter().zip(&self.means).zip(&self.stds).map(|((v, m), s)| (v - m) / s));
    }

    pub fn transform(&self, x: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(x.len());
        self.transform_into(x, &mut out);
        out
    }
}

/// The row indices [`Dataset::train_test_split`] puts on each side, `(train, test)`, for callers
/// that need to line other per-row data (a baseline's scores, ids) up with the split.
pub fn split_indices(n: usize, test_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>), MlError> {
    param(test_fraction > 0.0 && test_fraction < 1.0, "test_fraction", "must be in (0, 1)")?;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_test = ((n as f64) * test_fraction).round() as usize;
    // The first n_test shuffled rows are the test set.
    let train = idx.split_off(n_test.min(n));
    Ok((train, idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_shapes_and_values() {
        assert!(matches!(
            Dataset::new(vec!["a".into()], vec![vec![1.0, 2.0]], vec![true]),
            Err(MlError::FeatureCount { .. })
        ));
        assert!(matches!(Dataset::new(vec!["a".into()], vec![vec![1.0]], vec![]), Err(MlError::LabelCount { .. })));
        assert!(matches!(
            Dataset::new(vec!["a".into()], vec![vec![f64::NAN]], vec![true]),
            Err(MlError::NonFinite { .. })
        ));
    }

    #[test]
    fn split_is_deterministic_and_partitions() {
        let data = crate::testdata::synthetic(200, 1);
        let (a1, b1) = data.train_test_split(0.25, 42).unwrap();
        let (a2, b2) = data.train_test_split(0.25, 42).unwrap();
        assert_eq!(a1, a2);
        assert_eq!(b1, b2);
        assert_eq!(a1.len(), 150);
        assert_eq!(b1.len(), 50);
        let (a3, _) = data.train_test_split(0.25, 43).unwrap();
        assert_ne!(a1, a3);
        assert!(data.train_test_split(1.0, 1).is_err());
    }

    #[test]
    fn standardizer_centres_and_scales() {
        let data = Dataset::new(vec!["a".into(), "c".into()], vec![vec![1.0, 5.0], vec![3.0, 5.0]], vec![true, false])
            .unwrap();
        let s = Standardizer::fit(&data).unwrap();
        assert_eq!(s.transform(&[1.0, 5.0]), vec![-1.0, 0.0]);
        assert_eq!(s.transform(&[3.0, 5.0]), vec![1.0, 0.0]);
    }
}
