use serde::{Deserialize, Serialize};

use crate::scorecard::{bin_of, quantile_cuts};
use crate::{check_row, param, sigmoid, Classifier, Dataset, MlError};

/// Training parameters for [`Gbdt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtConfig {
    pub n_trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    /// Histogram bins per feature (2..=256).
    pub max_bins: usize,
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values (lambda).
    pub l2: f64,
    /// A split must improve the regularised loss by at least this much.
    pub min_gain: f64,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        GbdtConfig {
            n_trees: 100,
            learning_rate: 0.1,
            max_depth: 3,
            max_bins: 32,
            min_samples_leaf: 20,
            l2: 1.0,
            min_gain: 1e-6,
        }
    }
}

/// One node of a regression tree. `value` is the (learning-rate-scaled) log-odds output the
/// node would give as a leaf; internal values are used for per-prediction attributions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum TreeNode {
    Leaf { value: f64 },
    Split { feature: usize, threshold: f64, left: usize, right: usize, value: f64, gain: f64 },
}

impl TreeNode {
    fn value(&self) -> f64 {
        match self {
            TreeNode::Leaf { value } | TreeNode::Split { value, .. } => *value,
        }
    }
}

/// A depth-limited regression tree; node 0 is the root. Rows with `x[feature] <= threshold` go left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<TreeNode>,
}

impl Tree {
    fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0;
        // Node indices are produced by training and checked on load; `get` keeps a corrupt
        // artefact from panicking.
        while let Some(node) = self.nodes.get(i) {
            match node {
                TreeNode::Leaf { value } => return *value,
                TreeNode::Split { feature, threshold, left, right, .. } => {
                    i = if x.get(*feature).copied().unwrap_or(0.0) <= *threshold { *left } else { *right };
                }
            }
        }
        0.0
    }

    fn attribute(&self, x: &[f64], contrib: &mut [f64]) -> f64 {
        let Some(root) = self.nodes.first() else { return 0.0 };
        let mut node = root;
        while let TreeNode::Split { feature, threshold, left, right, value, .. } = node {
            let next_i = if x.get(*feature).copied().unwrap_or(0.0) <= *threshold { *left } else { *right };
            let Some(next) = self.nodes.get(next_i) else { break };
            if let Some(c) = contrib.get_mut(*feature) {
                *c += next.value() - value;
            }
            node = next;
        }
        root.value()
    }

    fn is_valid(&self, n_features: usize) -> bool {
        // Children always come after their parent, which rules out cycles.
        self.nodes.iter().enumerate().all(|(i, n)| match n {
            TreeNode::Leaf { value } => value.is_finite(),
            TreeNode::Split { feature, left, right, value, threshold, .. } => {
                *feature < n_features
                    && *left > i
                    && *right > i
                    && *left < self.nodes.len()
                    && *right < self.nodes.len()
                    && value.is_finite()
                    && !threshold.is_nan()
            }
        }) && !self.nodes.is_empty()
    }
}

/// Gradient-boosted regression trees for binary classification (log-loss, Newton leaf values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    pub n_features: usize,
    /// Initial log-odds (the training base rate).
    pub init: f64,
    pub trees: Vec<Tree>,
    /// Total split gain per feature over all trees.
    pub gain_importance: Vec<f64>,
    pub config: GbdtConfig,
}

struct Builder<'a> {
    bins: &'a [Vec<u8>],
    cuts: &'a [Vec<f64>],
    grad: &'a [f64],
    hess: &'a [f64],
    cfg: &'a GbdtConfig,
    nodes: Vec<TreeNode>,
    importance: &'a mut [f64],
    raw: &'a mut [f64],
}

impl Builder<'_> {
    fn build(&mut self, idx: &mut [usize], depth: usize) -> usize {
        let (g, h) = idx.iter().fold((0.0, 0.0), |(g, h), &i| (g + self.grad[i], h + self.hess[i]));
        let lambda = self.cfg.l2;
        let value = -g / (h + lambda) * self.cfg.learning_rate;
        let me = self.nodes.len();
        self.nodes.push(TreeNode::Leaf { value });
        if depth >= self.cfg.max_depth || idx.len() < 2 * self.cfg.min_samples_leaf.max(1) {
            idx.iter().for_each(|&i| self.raw[i] += value);
            return me;
        }
        let parent_score = g * g / (h + lambda);
        let mut best: Option<(f64, usize, usize)> = None; // gain, feature, bin
        for (f, col) in self.bins.iter().enumerate() {
            let nb = self.cuts[f].len() + 1;
            if nb < 2 {
                continue;
            }
            let mut hist = vec![(0.0f64, 0.0f64, 0usize); nb];
            for &i in idx.iter() {
                let e = &mut hist[col[i] as usize];
                e.0 += self.grad[i];
                e.1 += self.hess[i];
                e.2 += 1;
            }
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0usize);
            for (b, &(hg, hh, hn)) in hist.iter().enumerate().take(nb - 1) {
                gl += hg;
                hl += hh;
                nl += hn;
                let nr = idx.len() - nl;
                if nl < self.cfg.min_samples_leaf || nr < self.cfg.min_samples_leaf {
                    continue;
                }
                let (gr, hr) = (g - gl, h - hl);
                let gain = 0.5 * (gl * gl / (hl + lambda) + gr * gr / (hr + lambda) - parent_score);
                if gain > self.cfg.min_gain && best.is_none_or(|(bg, _, _)| gain > bg) {
                    best = Some((gain, f, b));
                }
            }
        }
        let Some((gain, f, b)) = best else {
            idx.iter().for_each(|&i| self.raw[i] += value);
            return me;
        };
        self.importance[f] += gain;
        let col = &self.bins[f];
        // Partition in place: rows with bin <= b first.
        let mut split = 0;
        for k in 0..idx.len() {
            if (col[idx[k]] as usize) <= b {
                idx.swap(k, split);
                split += 1;
            }
        }
        let (l_idx, r_idx) = idx.split_at_mut(split);
        let left = self.build(l_idx, depth + 1);
        let right = self.build(r_idx, depth + 1);
        self.nodes[me] = TreeNode::Split { feature: f, threshold: self.cuts[f][b], left, right, value, gain };
        me
    }
}

impl Gbdt {
    pub fn fit(data: &Dataset, config: &GbdtConfig) -> Result<Self, MlError> {
        data.require_both_classes()?;
        param(config.n_trees >= 1, "n_trees", "must be >= 1")?;
        param(config.learning_rate > 0.0 && config.learning_rate <= 1.0, "learning_rate", "must be in (0, 1]")?;
        param((2..=256).contains(&config.max_bins), "max_bins", "must be in 2..=256")?;
        param(config.max_depth >= 1 && config.max_depth <= 16, "max_depth", "must be in 1..=16")?;
        param(config.l2 >= 0.0 && config.l2.is_finite(), "l2", "must be finite and >= 0")?;
        let n = data.len();
        let d = data.n_features();
        let cuts: Vec<Vec<f64>> = (0..d).map(|j| quantile_cuts(&data.column(j), config.max_bins)).collect();
        let bins: Vec<Vec<u8>> =
            (0..d).map(|j| data.rows().iter().map(|r| bin_of(&cuts[j], r[j]) as u8).collect()).collect();
        let ys: Vec<f64> = data.labels().iter().map(|&l| f64::from(u8::from(l))).collect();
        let rate = data.positives() as f64 / n as f64;
        let init = (rate / (1.0 - rate)).ln();
        let mut raw = vec![init; n];
        let mut grad = vec![0.0; n];
        let mut hess = vec![0.0; n];
        let mut importance = vec![0.0; d];
        let mut trees = Vec::with_capacity(config.n_trees);
        let mut idx: Vec<usize> = (0..n).collect();
        for _ in 0..config.n_trees {
            for i in 0..n {
                let p = sigmoid(raw[i]);
                grad[i] = p - ys[i];
                hess[i] = (p * (1.0 - p)).max(1e-12);
            }
            idx.sort_unstable();
            let mut b = Builder {
                bins: &bins,
                cuts: &cuts,
                grad: &grad,
                hess: &hess,
                cfg: config,
                nodes: Vec::new(),
                importance: &mut importance,
                raw: &mut raw,
            };
            b.build(&mut idx, 0);
            trees.push(Tree { nodes: b.nodes });
        }
        Ok(Gbdt { n_features: d, init, trees, gain_importance: importance, config: config.clone() })
    }

    /// Gain importances normalised to sum to 1 (all zeros if no split was made).
    pub fn feature_importance(&self) -> Vec<f64> {
        let total: f64 = self.gain_importance.iter().sum();
        self.gain_importance.iter().map(|g| if total > 0.0 { g / total } else { 0.0 }).collect()
    }

    /// Checks the structure of a deserialised model so prediction cannot go astray.
    pub fn validate(&self) -> Result<(), MlError> {
        let ok = self.init.is_finite()
            && self.gain_importance.len() == self.n_features
            && self.trees.iter().all(|t| t.is_valid(self.n_features));
        param(ok, "trees", "malformed tree structure")
    }
}

impl Classifier for Gbdt {
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn predict_log_odds(&self, x: &[f64]) -> Result<f64, MlError> {
        check_row(x, self.n_features)?;
        Ok(self.init + self.trees.iter().map(|t| t.predict(x)).sum::<f64>())
    }
    /// Path attribution (Saabas): each split credits its feature with the change in node value.
    fn contributions(&self, x: &[f64]) -> Result<(f64, Vec<f64>), MlError> {
        check_row(x, self.n_features)?;
        let mut contrib = vec![0.0; self.n_features];
        let bias = self.init + self.trees.iter().map(|t| t.attribute(x, &mut contrib)).sum::<f64>();
        Ok((bias, contrib))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use crate::testdata::synthetic;

    #[test]
    fn learns_nonlinear_signal_and_attributes() {
        let data = synthetic(4_000, 9);
        let (train, test) = data.train_test_split(0.3, 2).unwrap();
        let model = Gbdt::fit(&train, &GbdtConfig { n_trees: 60, ..GbdtConfig::default() }).unwrap();
        model.validate().unwrap();
        let scores: Vec<f64> = test.rows().iter().map(|r| model.predict_proba(r).unwrap()).collect();
        let auc = roc_auc(&scores, test.labels()).unwrap();
        eprintln!("gbdt test AUC = {auc:.4}");
        assert!(auc > 0.75, "AUC {auc}");
        let imp = model.feature_importance();
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(imp[0] > imp[3] && imp[1] > imp[3], "{imp:?}");
        for row in test.rows().iter().take(20) {
            let (bias, c) = model.contributions(row).unwrap();
            let total = bias + c.iter().sum::<f64>();
            assert!((total - model.predict_log_odds(row).unwrap()).abs() < 1e-9);
        }
        // The threshold feature x2 contributes positively above 0.5 for an otherwise neutral row.
        let (_, c) = model.contributions(&[0.0, 0.0, 1.5, 0.0]).unwrap();
        assert!(c[2] > 0.0, "{c:?}");
    }

    #[test]
    fn rejects_bad_config_and_input() {
        let data = synthetic(200, 1);
        assert!(matches!(
            Gbdt::fit(&data, &GbdtConfig { max_bins: 1, ..GbdtConfig::default() }),
            Err(MlError::InvalidParameter { name: "max_bins", .. })
        ));
        let model = Gbdt::fit(&data, &GbdtConfig { n_trees: 3, ..GbdtConfig::default() }).unwrap();
        assert!(model.predict_proba(&[0.0; 3]).is_err());
        let mut broken = model.clone();
        broken.trees[0].nodes =
            vec![TreeNode::Split { feature: 0, threshold: 0.0, left: 0, right: 0, value: 0.0, gain: 0.0 }];
        assert!(broken.validate().is_err());
    }
}
