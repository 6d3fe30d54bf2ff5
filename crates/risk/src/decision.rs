//! Decisions and their explanations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{EventKind, FeatureVector, ReplayEvent};

/// The decision outcome, ordered by severity (`Allow < Review < Reject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Review,
    Reject,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Review => "review",
            Outcome::Reject => "reject",
        }
    }
}

/// Which component produced a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonSource {
    List,
    Rule,
    Model,
    Graph,
}

/// One reason code with a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub explanation: String,
    pub source: ReasonSource,
    /// Risk points this reason added to the score (model reasons: log-odds contribution).
    pub weight: f64,
}

/// A logged, explainable decision. It carries no raw ID numbers or phone numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub event_id: String,
    pub customer_id: String,
    pub kind: EventKind,
    pub outcome: Outcome,
    /// Total risk points (rule weights + model points + graph points).
    pub score: f64,
    /// The model's probability of fraud, when a model is active.
    pub model_probability: Option<f64>,
    /// Points from the model and graph (the part of the score that rules did not add).
    pub base_score: f64,
    pub reasons: Vec<Reason>,
    pub rule_set: Option<String>,
    pub rule_set_version: Option<u32>,
    pub model: Option<String>,
    pub decided_at: DateTime<Utc>,
    /// Wall time spent in the decision function, in microseconds.
    pub elapsed_micros: u64,
    /// The review case opened for this decision, if any.
    pub case_id: Option<u64>,
    pub features: FeatureVector,
}

impl Decision {
    /// The stored input for backtesting other rule sets against this decision.
    pub fn to_replay(&self) -> ReplayEvent {
        ReplayEvent { event_id: self.event_id.clone(), features: self.features.clone(), base_score: self.base_score }
    }

    pub fn reason_codes(&self) -> impl Iterator<Item = &str> {
        self.reasons.iter().map(|r| r.code.as_str())
    }
}
