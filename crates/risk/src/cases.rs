//! Case management: decisions marked `review` become cases; analysts resolve them; resolutions
//! become training labels.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::{Decision, FeatureVector, Outcome, Reason, RiskError};

/// An analyst's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    ConfirmedFraud,
    FalsePositive,
}

/// How and by whom a case was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResolution {
    pub resolution: Resolution,
    pub analyst: String,
    pub note: String,
    pub resolved_at: DateTime<Utc>,
}

/// A review case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: u64,
    pub event_id: String,
    pub customer_id: String,
    pub opened_at: DateTime<Utc>,
    pub score: f64,
    pub reasons: Vec<Reason>,
    pub features: FeatureVector,
    pub assignee: Option<String>,
    pub resolution: Option<CaseResolution>,
}

impl Case {
    pub fn is_open(&self) -> bool {
        self.resolution.is_none()
    }
}

/// A supervised-learning label derived from a resolved case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub event_id: String,
    pub customer_id: String,
    pub is_fraud: bool,
    pub features: FeatureVector,
    pub labelled_at: DateTime<Utc>,
}

/// In-memory case book (thread-safe).
#[derive(Debug, Default)]
pub struct CaseBook {
    cases: RwLock<BTreeMap<u64, Case>>,
}

impl CaseBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a case for a `review` decision; returns its id, or `None` for other outcomes.
    pub fn open_from(&self, decision: &Decision) -> Option<u64> {
        if decision.outcome != Outcome::Review {
            return None;
        }
        let mut cases = self.cases.write();
        let id = cases.last_key_value().map_or(1, |(k, _)| k + 1);
        cases.insert(
            id,
            Case {
                id,
                event_id: decision.event_id.clone(),
                customer_id: decision.customer_id.clone(),
                opened_at: decision.decided_at,
                score: decision.score,
                reasons: decision.reasons.clone(),
                features: decision.features.clone(),
                assignee: None,
                resolution: None,
            },
        );
        Some(id)
    }

    pub fn get(&self, id: u64) -> Option<Case> {
        self.cases.read().get(&id).cloned()
    }

    pub fn assign(&self, id: u64, analyst: &str) -> Result<(), RiskError> {
        let mut cases = self.cases.write();
        let case = cases.get_mut(&id).ok_or(RiskError::CaseNotFound(id))?;
        if !case.is_open() {
            return Err(RiskError::CaseAlreadyResolved(id));
        }
        case.assignee = Some(analyst.to_string());
        Ok(())
    }

    /// Closes a case; a case is resolved at most once.
    pub fn resolve(
        &self,
        id: u64,
        resolution: Resolution,
        analyst: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Case, RiskError> {
        let mut cases = self.cases.write();
        let case = cases.get_mut(&id).ok_or(RiskError::CaseNotFound(id))?;
        if !case.is_open() {
            return Err(RiskError::CaseAlreadyResolved(id));
        }
        case.resolution =
            Some(CaseResolution { resolution, analyst: analyst.to_string(), note: note.to_string(), resolved_at: at });
        Ok(case.clone())
    }

    /// Open cases, oldest first.
    pub fn open_cases(&self) -> Vec<Case> {
        self.cases.read().values().filter(|c| c.is_open()).cloned().collect()
    }

    /// Labels from all resolved cases, in case order.
    pub fn labels(&self) -> Vec<Label> {
        self.cases
            .read()
            .values()
            .filter_map(|c| {
                c.resolution.as_ref().map(|r| Label {
                    event_id: c.event_id.clone(),
                    customer_id: c.customer_id.clone(),
                    is_fraud: r.resolution == Resolution::ConfirmedFraud,
                    features: c.features.clone(),
                    labelled_at: r.resolved_at,
                })
            })
            .collect()
    }
}

/// Builds an `ml` training set from labels, taking `feature_names` in order (absent features = 0).
pub fn labels_to_dataset(labels: &[Label], feature_names: &[String]) -> Result<ml::Dataset, RiskError> {
    let rows =
        labels.iter().map(|l| feature_names.iter().map(|n| l.features.get(n).unwrap_or(0.0)).collect()).collect();
    Ok(ml::Dataset::new(feature_names.to_vec(), rows, labels.iter().map(|l| l.is_fraud).collect())?)
}
