//! Versioned rule sets: condition + action + reason code + score weight, evaluated in priority
//! order, with activation of a new version and a backtest that replays stored decisions.
//!
//! Conditions are behind the [`Condition`] trait. Rule sets store a serialisable
//! [`ConditionSpec`]; a [`ConditionCompiler`] turns it into a `Box<dyn Condition>` when a version
//! is compiled. [`BuiltinConditions`] handles threshold comparisons; `ConditionSpec::Expression`
//! is compiled by [`crate::ExpressionCompiler`] with the typed expression language of the
//! `rules` crate (the default compiler of a [`RuleSetRegistry`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::schema::PreparedRow;
use crate::{FeatureVector, Outcome, RiskError};

/// A compiled, side-effect-free predicate over a decision's features.
pub trait Condition: Send + Sync + fmt::Debug {
    fn eval(&self, features: &FeatureVector) -> bool;

    /// Indices into [`crate::expression_schema`] this condition reads, if it evaluates over a
    /// [`PreparedRow`]. A rule set converts the union of these fields once per decision.
    fn schema_fields(&self) -> &[usize] {
        &[]
    }

    /// Evaluates with the decision's prepared row (defaults to [`Condition::eval`]).
    fn eval_prepared(&self, features: &FeatureVector, _row: &PreparedRow) -> bool {
        self.eval(features)
    }
}

/// Comparison operator of a [`Threshold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// `feature <op> value`; false when the feature is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub feature: String,
    pub op: CmpOp,
    pub value: f64,
}

impl Threshold {
    pub fn new(feature: impl Into<String>, op: CmpOp, value: f64) -> Self {
        Threshold { feature: feature.into(), op, value }
    }
}

impl Condition for Threshold {
    fn eval(&self, features: &FeatureVector) -> bool {
        let Some(x) = features.get(&self.feature) else { return false };
        match self.op {
            CmpOp::Gt => x > self.value,
            CmpOp::Ge => x >= self.value,
            CmpOp::Lt => x < self.value,
            CmpOp::Le => x <= self.value,
            CmpOp::Eq => x == self.value,
            CmpOp::Ne => x != self.value,
        }
    }
}

#[derive(Debug)]
struct AllOf(Vec<Threshold>);

impl Condition for AllOf {
    fn eval(&self, features: &FeatureVector) -> bool {
        self.0.iter().all(|t| t.eval(features))
    }
}

/// The stored form of a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConditionSpec {
    Threshold(Threshold),
    /// A conjunction of thresholds.
    AllOf {
        all: Vec<Threshold>,
    },
    /// Source text for an external expression compiler (the `rules` crate).
    Expression {
        source: String,
    },
}

/// Turns stored conditions into executable ones.
pub trait ConditionCompiler: Send + Sync {
    fn compile(&self, spec: &ConditionSpec) -> Result<Box<dyn Condition>, RiskError>;
}

/// Compiles `Threshold` and `AllOf`; rejects `Expression`.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuiltinConditions;

impl ConditionCompiler for BuiltinConditions {
    fn compile(&self, spec: &ConditionSpec) -> Result<Box<dyn Condition>, RiskError> {
        let check = |t: &Threshold| {
            if t.feature.is_empty() || t.value.is_nan() {
                Err(RiskError::UnsupportedCondition(format!("threshold on {:?} with value {}", t.feature, t.value)))
            } else {
                Ok(())
            }
        };
        match spec {
            ConditionSpec::Threshold(t) => {
                check(t)?;
                Ok(Box::new(t.clone()))
            }
            ConditionSpec::AllOf { all } => {
                all.iter().try_for_each(check)?;
                Ok(Box::new(AllOf(all.clone())))
            }
            ConditionSpec::Expression { .. } => Err(RiskError::UnsupportedCondition("expression".into())),
        }
    }
}

/// What a matching rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    Allow,
    Review,
    Reject,
    /// Only adds its weight to the score.
    Score,
}

impl RuleAction {
    fn outcome(self) -> Option<Outcome> {
        match self {
            RuleAction::Allow => Some(Outcome::Allow),
            RuleAction::Review => Some(Outcome::Review),
            RuleAction::Reject => Some(Outcome::Reject),
            RuleAction::Score => None,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique within a rule set.
    pub id: String,
    /// Higher runs first; ties keep the order of the set.
    #[serde(default)]
    pub priority: i32,
    pub condition: ConditionSpec,
    pub action: RuleAction,
    /// Machine-readable reason code, e.g. `VEL_CUSTOMER_1H`.
    pub reason_code: String,
    /// Human-readable explanation shown to analysts and in the decision log.
    #[serde(default)]
    pub explanation: String,
    /// Risk points added to the score when the rule matches.
    #[serde(default)]
    pub weight: f64,
    /// Stop evaluating lower-priority rules when this one matches; its action (unless `score`)
    /// is then final, e.g. a high-priority allow for trusted payees.
    #[serde(default)]
    pub terminal: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Score cut-offs: `score >= reject_at` rejects, `score >= review_at` reviews.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreThresholds {
    pub review_at: f64,
    pub reject_at: f64,
}

impl Default for ScoreThresholds {
    fn default() -> Self {
        ScoreThresholds { review_at: 50.0, reject_at: 100.0 }
    }
}

/// A versioned, serialisable collection of rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    pub name: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub thresholds: ScoreThresholds,
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Checks ids and weights, sorts by priority and compiles every enabled rule.
    pub fn compile(&self, compiler: &dyn ConditionCompiler) -> Result<CompiledRuleSet, RiskError> {
        let t = self.thresholds;
        if !(t.review_at.is_finite() && t.reject_at.is_finite() && t.review_at <= t.reject_at) {
            return Err(RiskError::InvalidRule {
                rule: "<thresholds>".into(),
                reason: "review_at and reject_at must be finite with review_at <= reject_at".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        for r in &self.rules {
            let invalid = |reason: &str| RiskError::InvalidRule { rule: r.id.clone(), reason: reason.into() };
            if r.id.is_empty() || !seen.insert(r.id.as_str()) {
                return Err(invalid("id must be non-empty and unique"));
            }
            if !r.weight.is_finite() {
                return Err(invalid("weight must be finite"));
            }
            if r.reason_code.is_empty() {
                return Err(invalid("reason_code must be non-empty"));
            }
            if r.enabled {
                let condition = compiler.compile(&r.condition).map_err(|e| match e {
                    RiskError::InvalidExpression { error, .. } => {
                        RiskError::InvalidExpression { rule: r.id.clone(), error }
                    }
                    other => invalid(&other.to_string()),
                })?;
                rules.push(CompiledRule { rule: r.clone(), condition });
            }
        }
        rules.sort_by_key(|c| std::cmp::Reverse(c.rule.priority));
        let mut prepared_fields: Vec<usize> =
            rules.iter().flat_map(|c| c.condition.schema_fields().iter().copied()).collect();
        prepared_fields.sort_unstable();
        prepared_fields.dedup();
        Ok(CompiledRuleSet { name: self.name.clone(), version: self.version, thresholds: t, rules, prepared_fields })
    }
}

/// A rule with its executable condition.
#[derive(Debug)]
pub struct CompiledRule {
    pub rule: Rule,
    condition: Box<dyn Condition>,
}

/// Result of running a rule set over one feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleEvaluation {
    pub outcome: Outcome,
    /// `base_score` plus the weights of the matching rules.
    pub score: f64,
    /// Indices (into [`CompiledRuleSet::rules`]) of matching rules, in evaluation order.
    pub hits: Vec<usize>,
    /// Whether a terminal rule stopped evaluation and fixed the outcome.
    pub terminal: bool,
}

/// An executable rule set (enabled rules only, in priority order).
#[derive(Debug)]
pub struct CompiledRuleSet {
    pub name: String,
    pub version: u32,
    pub thresholds: ScoreThresholds,
    pub rules: Vec<CompiledRule>,
    /// Expression-schema fields read by any rule, converted once per evaluation.
    prepared_fields: Vec<usize>,
}

impl CompiledRuleSet {
    /// Runs the rules in priority order. The outcome is the most severe of (a) the actions of the
    /// matching rules and (b) the score against the thresholds, unless a terminal rule with an
    /// allow/review/reject action matched, whose action is then final.
    pub fn evaluate(&self, features: &FeatureVector, base_score: f64) -> RuleEvaluation {
        let mut score = base_score;
        let mut hits = Vec::new();
        let mut rule_outcome = Outcome::Allow;
        let row = PreparedRow::build(features, &self.prepared_fields);
        for (i, c) in self.rules.iter().enumerate() {
            if !c.condition.eval_prepared(features, &row) {
                continue;
            }
            hits.push(i);
            score += c.rule.weight;
            let action = c.rule.action.outcome();
            if c.rule.terminal {
                if let Some(o) = action {
                    return RuleEvaluation { outcome: o, score, hits, terminal: true };
                }
                break;
            }
            if let Some(o) = action {
                rule_outcome = rule_outcome.max(o);
            }
        }
        let by_score = if score >= self.thresholds.reject_at {
            Outcome::Reject
        } else if score >= self.thresholds.review_at {
            Outcome::Review
        } else {
            Outcome::Allow
        };
        RuleEvaluation { outcome: rule_outcome.max(by_score), score, hits, terminal: false }
    }
}

/// All versions of one rule set and the active one. Activation swaps an `Arc`, so decisions in
/// flight finish on the version they started with.
pub struct RuleSetRegistry {
    compiler: Box<dyn ConditionCompiler>,
    versions: RwLock<BTreeMap<u32, RuleSet>>,
    active: RwLock<Option<Arc<CompiledRuleSet>>>,
}

impl fmt::Debug for RuleSetRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSetRegistry")
            .field("versions", &self.versions.read().keys().collect::<Vec<_>>())
            .field("active", &self.active_version())
            .finish()
    }
}

impl RuleSetRegistry {
    pub fn new(compiler: Box<dyn ConditionCompiler>) -> Self {
        RuleSetRegistry { compiler, versions: RwLock::default(), active: RwLock::default() }
    }

    /// Stores a new version after checking it compiles; versions must increase.
    pub fn add_version(&self, set: RuleSet) -> Result<(), RiskError> {
        set.compile(self.compiler.as_ref())?;
        let mut v = self.versions.write();
        if let Some((&latest, _)) = v.last_key_value() {
            if set.version <= latest {
                return Err(RiskError::VersionNotNewer { name: set.name, version: set.version, latest });
            }
        }
        v.insert(set.version, set);
        Ok(())
    }

    /// Compiles a stored version and makes it the active one.
    pub fn activate(&self, version: u32) -> Result<Arc<CompiledRuleSet>, RiskError> {
        let compiled = Arc::new(self.compile(version)?);
        *self.active.write() = Some(Arc::clone(&compiled));
        Ok(compiled)
    }

    /// Compiles a stored version without activating it (e.g. for a backtest).
    pub fn compile(&self, version: u32) -> Result<CompiledRuleSet, RiskError> {
        let v = self.versions.read();
        v.get(&version).ok_or(RiskError::UnknownVersion(version))?.compile(self.compiler.as_ref())
    }

    pub fn active(&self) -> Option<Arc<CompiledRuleSet>> {
        self.active.read().clone()
    }

    pub fn active_version(&self) -> Option<u32> {
        self.active.read().as_ref().map(|a| a.version)
    }

    /// The highest stored version.
    pub fn latest_version(&self) -> Option<u32> {
        self.versions.read().last_key_value().map(|(v, _)| *v)
    }

    pub fn get(&self, version: u32) -> Option<RuleSet> {
        self.versions.read().get(&version).cloned()
    }
}

/// A stored decision input to replay: the features and the non-rule score part (model points,
/// graph points) captured at decision time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayEvent {
    pub event_id: String,
    pub features: FeatureVector,
    pub base_score: f64,
}

/// Outcome counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub allow: u64,
    pub review: u64,
    pub reject: u64,
}

impl OutcomeCounts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Allow => self.allow += 1,
            Outcome::Review => self.review += 1,
            Outcome::Reject => self.reject += 1,
        }
    }
}

/// One event whose outcome differs between the two rule sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionChange {
    pub event_id: String,
    pub before: Outcome,
    pub after: Outcome,
}

/// How decisions change from one rule set to another over the same events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    pub events: u64,
    pub before_version: u32,
    pub after_version: u32,
    pub before: OutcomeCounts,
    pub after: OutcomeCounts,
    /// `"allow->reject"` etc., only for changed outcomes.
    pub transitions: BTreeMap<String, u64>,
    /// Hit counts per rule id.
    pub rule_hits_before: BTreeMap<String, u64>,
    pub rule_hits_after: BTreeMap<String, u64>,
    pub changes: Vec<DecisionChange>,
}

/// Replays `events` against two rule sets and reports how decisions change.
pub fn backtest(events: &[ReplayEvent], before: &CompiledRuleSet, after: &CompiledRuleSet) -> BacktestReport {
    let mut report = BacktestReport {
        events: events.len() as u64,
        before_version: before.version,
        after_version: after.version,
        before: OutcomeCounts::default(),
        after: OutcomeCounts::default(),
        transitions: BTreeMap::new(),
        rule_hits_before: before.rules.iter().map(|r| (r.rule.id.clone(), 0)).collect(),
        rule_hits_after: after.rules.iter().map(|r| (r.rule.id.clone(), 0)).collect(),
        changes: Vec::new(),
    };
    for e in events {
        let b = before.evaluate(&e.features, e.base_score);
        let a = after.evaluate(&e.features, e.base_score);
        report.before.add(b.outcome);
        report.after.add(a.outcome);
        for &i in &b.hits {
            *report.rule_hits_before.entry(before.rules[i].rule.id.clone()).or_default() += 1;
        }
        for &i in &a.hits {
            *report.rule_hits_after.entry(after.rules[i].rule.id.clone()).or_default() += 1;
        }
        if a.outcome != b.outcome {
            *report.transitions.entry(format!("{}->{}", b.outcome.as_str(), a.outcome.as_str())).or_default() += 1;
            report.changes.push(DecisionChange { event_id: e.event_id.clone(), before: b.outcome, after: a.outcome });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rule(id: &str, feature: &str, op: CmpOp, value: f64, action: RuleAction, weight: f64) -> Rule {
        Rule {
            id: id.into(),
            priority: 0,
            condition: ConditionSpec::Threshold(Threshold::new(feature, op, value)),
            action,
            reason_code: id.to_uppercase(),
            explanation: format!("{feature} {op:?} {value}"),
            weight,
            terminal: false,
            enabled: true,
        }
    }

    fn set(version: u32, rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            name: "fraud".into(),
            version,
            created_at: DateTime::<Utc>::default(),
            thresholds: ScoreThresholds::default(),
            rules,
        }
    }

    fn fv(pairs: &[(&str, f64)]) -> FeatureVector {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn evaluates_in_priority_order_with_terminal_rules() {
        let mut trusted = rule("trusted", "payee.trusted", CmpOp::Eq, 1.0, RuleAction::Allow, 0.0);
        trusted.priority = 100;
        trusted.terminal = true;
        let rules = vec![
            rule("big", "event.amount", CmpOp::Gt, 10_000.0, RuleAction::Score, 30.0),
            rule("fast", "velocity.customer.count.1m", CmpOp::Ge, 5.0, RuleAction::Review, 10.0),
            rule("huge", "event.amount", CmpOp::Gt, 50_000.0, RuleAction::Score, 80.0),
            trusted,
        ];
        let c = set(1, rules).compile(&BuiltinConditions).unwrap();
        assert_eq!(c.rules[0].rule.id, "trusted");

        let e = c.evaluate(&fv(&[("event.amount", 100.0)]), 0.0);
        assert_eq!((e.outcome, e.hits.len()), (Outcome::Allow, 0));
        let e = c.evaluate(&fv(&[("event.amount", 20_000.0), ("velocity.customer.count.1m", 1.0)]), 25.0);
        assert_eq!((e.outcome, e.score), (Outcome::Review, 55.0));
        let e = c.evaluate(&fv(&[("event.amount", 60_000.0)]), 0.0);
        assert_eq!((e.outcome, e.score), (Outcome::Reject, 110.0));
        let e = c.evaluate(&fv(&[("event.amount", 60_000.0), ("payee.trusted", 1.0)]), 0.0);
        assert_eq!((e.outcome, e.terminal, e.hits.len()), (Outcome::Allow, true, 1));
    }

    #[test]
    fn registry_versions_and_activation() {
        let reg = RuleSetRegistry::default();
        assert!(reg.active().is_none());
        reg.add_version(set(1, vec![rule("a", "x", CmpOp::Gt, 1.0, RuleAction::Reject, 0.0)])).unwrap();
        reg.add_version(set(2, vec![rule("a", "x", CmpOp::Gt, 2.0, RuleAction::Reject, 0.0)])).unwrap();
        assert!(matches!(reg.add_version(set(2, vec![])), Err(RiskError::VersionNotNewer { .. })));
        assert_eq!(reg.activate(3).unwrap_err(), RiskError::UnknownVersion(3));
        let v1 = reg.activate(1).unwrap();
        reg.activate(2).unwrap();
        assert_eq!(reg.active_version(), Some(2));
        // The old Arc is still usable by in-flight decisions.
        assert_eq!(v1.evaluate(&fv(&[("x", 1.5)]), 0.0).outcome, Outcome::Reject);
        assert_eq!(reg.active().unwrap().evaluate(&fv(&[("x", 1.5)]), 0.0).outcome, Outcome::Allow);
        // Invalid rule sets are refused up front.
        let dup = set(3, vec![rule("a", "x", CmpOp::Gt, 1.0, RuleAction::Reject, 0.0); 2]);
        assert!(matches!(reg.add_version(dup), Err(RiskError::InvalidRule { .. })));
        let mut expr = rule("e", "x", CmpOp::Gt, 1.0, RuleAction::Reject, 0.0);
        expr.condition = ConditionSpec::Expression { source: "x > 1 && y < 2".into() };
        assert!(matches!(reg.add_version(set(4, vec![expr.clone()])), Err(RiskError::InvalidExpression { .. })));
        expr.condition = ConditionSpec::Expression { source: "event_amount > 1 && list_black_hits < 2".into() };
        reg.add_version(set(4, vec![expr])).unwrap();
        // Rule sets serialise.
        let json = serde_json::to_string(&reg.get(2).unwrap()).unwrap();
        assert_eq!(serde_json::from_str::<RuleSet>(&json).unwrap(), reg.get(2).unwrap());
    }

    #[test]
    fn backtest_reports_changes() {
        let before = set(1, vec![rule("big", "amount", CmpOp::Gt, 1_000.0, RuleAction::Review, 0.0)])
            .compile(&BuiltinConditions)
            .unwrap();
        let after = set(
            2,
            vec![
                rule("big", "amount", CmpOp::Gt, 5_000.0, RuleAction::Review, 0.0),
                rule("night", "hour", CmpOp::Lt, 5.0, RuleAction::Reject, 0.0),
            ],
        )
        .compile(&BuiltinConditions)
        .unwrap();
        let events: Vec<ReplayEvent> = [(500.0, 12.0), (2_000.0, 12.0), (8_000.0, 12.0), (100.0, 3.0)]
            .iter()
            .enumerate()
            .map(|(i, (a, h))| ReplayEvent {
                event_id: format!("e{i}"),
                features: fv(&[("amount", *a), ("hour", *h)]),
                base_score: 0.0,
            })
            .collect();
        let r = backtest(&events, &before, &after);
        assert_eq!(r.before, OutcomeCounts { allow: 2, review: 2, reject: 0 });
        assert_eq!(r.after, OutcomeCounts { allow: 2, review: 1, reject: 1 });
        assert_eq!(r.transitions.get("review->allow"), Some(&1));
        assert_eq!(r.transitions.get("allow->reject"), Some(&1));
        assert_eq!(r.rule_hits_before["big"], 2);
        assert_eq!(r.rule_hits_after["big"], 1);
        assert_eq!(r.rule_hits_after["night"], 1);
        assert_eq!(r.changes.len(), 2);
    }
}
