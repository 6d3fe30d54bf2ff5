use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{param, BinaryMetrics, Classifier, Dataset, Gbdt, LogisticRegression, MlError, Scorecard};

/// Version of the JSON layout of [`ModelArtefact`]; bumped on incompatible changes.
pub const ARTEFACT_FORMAT_VERSION: u32 = 1;

/// Any model this crate can train, tagged by `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnyModel {
    Logistic(LogisticRegression),
    Scorecard(Scorecard),
    Gbdt(Gbdt),
}

impl AnyModel {
    fn inner(&self) -> &dyn Classifier {
        match self {
            AnyModel::Logistic(m) => m,
            AnyModel::Scorecard(m) => m,
            AnyModel::Gbdt(m) => m,
        }
    }
}

impl Classifier for AnyModel {
    fn n_features(&self) -> usize {
        self.inner().n_features()
    }
    fn predict_log_odds(&self, x: &[f64]) -> Result<f64, MlError> {
        self.inner().predict_log_odds(x)
    }
    fn contributions(&self, x: &[f64]) -> Result<(f64, Vec<f64>), MlError> {
        self.inner().contributions(x)
    }
}

impl From<LogisticRegression> for AnyModel {
    fn from(m: LogisticRegression) -> Self {
        AnyModel::Logistic(m)
    }
}
impl From<Scorecard> for AnyModel {
    fn from(m: Scorecard) -> Self {
        AnyModel::Scorecard(m)
    }
}
impl From<Gbdt> for AnyModel {
    fn from(m: Gbdt) -> Self {
        AnyModel::Gbdt(m)
    }
}

/// A trained model with the metadata needed to deploy, audit and reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtefact {
    pub format_version: u32,
    pub name: String,
    pub version: u32,
    pub trained_at: DateTime<Utc>,
    /// Input features in the order the model expects them.
    pub feature_names: Vec<String>,
    /// Hold-out metrics, if evaluated.
    pub metrics: Option<BinaryMetrics>,
    pub model: AnyModel,
}

impl ModelArtefact {
    pub fn new(
        name: impl Into<String>,
        version: u32,
        trained_at: DateTime<Utc>,
        feature_names: Vec<String>,
        model: impl Into<AnyModel>,
    ) -> Result<Self, MlError> {
        let model = model.into();
        param(feature_names.len() == model.n_features(), "feature_names", "one name per model input is required")?;
        Ok(ModelArtefact {
            format_version: ARTEFACT_FORMAT_VERSION,
            name: name.into(),
            version,
            trained_at,
            feature_names,
            metrics: None,
            model,
        })
    }

    /// Scores `test` and stores AUC, KS and thresholded metrics in the artefact.
    pub fn evaluate(&mut self, test: &Dataset, threshold: f64) -> Result<&BinaryMetrics, MlError> {
        param(test.feature_names() == self.feature_names.as_slice(), "test", "feature names differ from the model's")?;
        let scores = test.rows().iter().map(|r| self.model.predict_proba(r)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.metrics.insert(BinaryMetrics::evaluate(&scores, test.labels(), threshold)?))
    }

    pub fn predict_proba(&self, x: &[f64]) -> Result<f64, MlError> {
        self.model.predict_proba(x)
    }

    pub fn to_json(&self) -> Result<String, MlError> {
        serde_json::to_string(self).map_err(|e| MlError::Serde(e.to_string()))
    }

    /// Parses and checks an artefact (format version, feature count, tree structure).
    pub fn from_json(text: &str) -> Result<Self, MlError> {
        let a: ModelArtefact = serde_json::from_str(text).map_err(|e| MlError::Serde(e.to_string()))?;
        if a.format_version != ARTEFACT_FORMAT_VERSION {
            return Err(MlError::UnsupportedFormat { found: a.format_version, expected: ARTEFACT_FORMAT_VERSION });
        }
        param(a.feature_names.len() == a.model.n_features(), "feature_names", "one name per model input is required")?;
        if let AnyModel::Gbdt(g) = &a.model {
            g.validate()?;
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::synthetic;
    use crate::{GbdtConfig, LogisticConfig, ScorecardConfig};
    use chrono::TimeZone;

    #[test]
    fn artefacts_round_trip_with_identical_predictions() {
        let data = synthetic(1_500, 21);
        let (train, test) = data.train_test_split(0.3, 1).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let names = train.feature_names().to_vec();
        let models: Vec<AnyModel> = vec![
            LogisticRegression::fit(&train, &LogisticConfig::default()).unwrap().into(),
            Scorecard::fit(&train, &ScorecardConfig::default()).unwrap().into(),
            Gbdt::fit(&train, &GbdtConfig { n_trees: 20, ..GbdtConfig::default() }).unwrap().into(),
        ];
        for (v, m) in models.into_iter().enumerate() {
            let mut a = ModelArtefact::new("fraud", v as u32 + 1, at, names.clone(), m).unwrap();
            let auc = a.evaluate(&test, 0.5).unwrap().auc;
            assert!(auc > 0.7, "AUC {auc}");
            let json = a.to_json().unwrap();
            let b = ModelArtefact::from_json(&json).unwrap();
            assert_eq!(a, b);
            for r in test.rows() {
                assert_eq!(a.predict_proba(r).unwrap().to_bits(), b.predict_proba(r).unwrap().to_bits());
            }
        }
    }

    #[test]
    fn rejects_bad_artefacts() {
        let data = synthetic(300, 2);
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let m = LogisticRegression::fit(&data, &LogisticConfig::default()).unwrap();
        assert!(ModelArtefact::new("x", 1, at, vec!["a".into()], m.clone()).is_err());
        let a = ModelArtefact::new("x", 1, at, data.feature_names().to_vec(), m).unwrap();
        let json = a.to_json().unwrap().replace("\"format_version\":1", "\"format_version\":99");
        assert_eq!(ModelArtefact::from_json(&json), Err(MlError::UnsupportedFormat { found: 99, expected: 1 }));
        assert!(matches!(ModelArtefact::from_json("{"), Err(MlError::Serde(_))));
    }
}
