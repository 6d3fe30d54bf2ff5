//! # risk
//!
//! Pure-domain core of digibank's real-time risk engine and market risk figures. No HTTP, no
//! SQL: the server crate stores decisions, lists, rule sets, cases and models and serves them.
//!
//! ## Fraud and credit decisions
//! * [`RiskEvent`] ([`EventKind`]: payment, transfer, login, loan application, account opening)
//!   with its context; [`RiskEvent::from_json`] rejects unknown fields and reports missing
//!   required fields precisely ([`RiskError::MissingField`]).
//! * [`RiskEngine::decide`] combines [`Lists`] (black / white / watch with expiry),
//!   [`VelocityStore`] (counts and sums per customer, device, IP, account, card and merchant over
//!   1 min / 1 h / 24 h / 30 d), the [`RelationshipGraph`] (shared devices, phones, IPs, accounts,
//!   transfers; union-find components), an optional `ml` model ([`ml::ModelArtefact`]) and the
//!   active [`CompiledRuleSet`] into a [`Decision`]: [`Outcome`] allow / review / reject, a score,
//!   [`Reason`] codes with explanations and the [`FeatureVector`] used, all serialisable.
//! * Rules ([`Rule`], [`RuleSet`], [`RuleSetRegistry`]) are versioned; conditions implement
//!   [`Condition`] and are compiled from a stored [`ConditionSpec`] by a [`ConditionCompiler`];
//!   [`ExpressionCompiler`] compiles `rules`-crate expressions over the feature vector
//!   ([`expression_schema`]: `velocity_customer_count_1h > 5 and event_amount >= 50000`). [`backtest`] replays stored decisions
//!   against two rule sets.
//! * [`CaseBook`]: `review` decisions become cases; resolutions become [`Label`]s
//!   ([`labels_to_dataset`] feeds them back into `ml`).
//!
//! * `synthetic` (feature `synthetic`, for the demo, training and benchmarks): a seeded, labelled history (legitimate customers, fraud rings on shared
//!   devices, account takeovers, mule chains) and [`synthetic::train`], which fits a WoE
//!   scorecard and a GBDT on it and evaluates them on a held-out split.
//!
//! ## Market risk
//! [`market`]: historical and parametric VaR, expected shortfall, stress scenarios; statistics in
//! `f64`, money results as `money::Amount` with an explicit rounding.
//!
//! Bad input is a [`RiskError`], never a panic.

mod cases;
mod clock;
mod decision;
mod engine;
mod error;
mod event;
mod expr;
mod features;
mod graph;
mod lists;
pub mod market;
mod rules;
mod schema;
#[cfg(any(test, feature = "synthetic"))]
pub mod synthetic;

/// Name under which the fraud GBDT is stored and loaded (`digibank risk train` stores it).
pub const FRAUD_GBDT_MODEL: &str = "fraud-gbdt";
/// Name of the WoE fraud scorecard trained alongside it.
pub const FRAUD_SCORECARD_MODEL: &str = "fraud-scorecard";
mod velocity;

#[cfg(test)]
mod engine_tests;

pub use self::rules::{
    backtest, BacktestReport, BuiltinConditions, CmpOp, CompiledRule, CompiledRuleSet, Condition, ConditionCompiler,
    ConditionSpec, DecisionChange, OutcomeCounts, ReplayEvent, Rule, RuleAction, RuleEvaluation, RuleSet,
    RuleSetRegistry, ScoreThresholds, Threshold,
};
pub use cases::{labels_to_dataset, Case, CaseBook, CaseResolution, Label, Resolution};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Decision, Outcome, Reason, ReasonSource};
pub use engine::{EngineConfig, RiskEngine};
pub use error::RiskError;
pub use event::{is_pseudonym, Channel, EventKind, GeoLocation, Merchant, RiskEvent, PSEUDONYM_PREFIX};
pub use expr::{ExpressionCompiler, ExpressionCondition};
pub use features::FeatureVector;
pub use graph::{
    Community, CustomerFlag, GraphFeatures, NodeKind, RelationshipGraph, RingGraph, RingNode, SharedStats,
};
pub use lists::{ListEntry, ListHit, ListKind, ListSubject, Lists};
pub use schema::{expression_schema, rule_field_name, PreparedRow};
pub use velocity::{velocity_feature, KeyKind, VelocitySnapshot, VelocityStore, Window, WindowStats};
