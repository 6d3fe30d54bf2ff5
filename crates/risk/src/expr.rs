//! Rule conditions in the `rules` crate's typed expression language.
//!
//! [`ExpressionCompiler`] compiles [`ConditionSpec::Expression`] sources against
//! [`expression_schema`], a schema built from the decision [`FeatureVector`]: every feature
//! name with its dots replaced by `_` (`velocity.customer.count.1h` is
//! `velocity_customer_count_1h`), flags as `bool`, counts, sums and scores as `number`, plus the
//! strings `event_kind` and `event_channel`. A feature that was not computed for an event (no
//! device, no model) reads as `null`, so `velocity_device_count_1h > 5` is simply not true for an
//! event without a device. Thresholds and conjunctions still compile through
//! [`BuiltinConditions`].
//!
//! Compile errors keep the `rules` crate's position (line, column, byte offsets):
//! [`RiskError::InvalidExpression`].

use crate::rules::{BuiltinConditions, Condition, ConditionCompiler, ConditionSpec, RuleSetRegistry};
use crate::schema::{expression_schema, FeatureRecord, PreparedRow};
use crate::{FeatureVector, RiskError};

/// A compiled expression condition.
#[derive(Debug)]
pub struct ExpressionCondition {
    expr: rules::Expr,
    fields: Vec<usize>,
}

impl ExpressionCondition {
    /// Why the condition is (not) true for these features: sub-conditions and the values read.
    pub fn explain(&self, features: &FeatureVector) -> rules::Explanation {
        self.expr.explain(&FeatureRecord::new(features))
    }
}

impl Condition for ExpressionCondition {
    fn eval(&self, features: &FeatureVector) -> bool {
        self.expr.matches(&FeatureRecord::new(features))
    }

    fn schema_fields(&self) -> &[usize] {
        &self.fields
    }

    fn eval_prepared(&self, _features: &FeatureVector, row: &PreparedRow) -> bool {
        self.expr.matches(row)
    }
}

/// Compiles expressions with the `rules` crate and everything else with [`BuiltinConditions`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ExpressionCompiler;

impl ExpressionCompiler {
    /// Compiles one expression source into a condition.
    pub fn compile_expression(source: &str) -> Result<ExpressionCondition, RiskError> {
        rules::compile_condition(source, expression_schema())
            .map(|expr| ExpressionCondition { fields: expr.fields().iter().map(|(i, _)| *i).collect(), expr })
            .map_err(|error| RiskError::InvalidExpression { rule: String::new(), error })
    }
}

impl ConditionCompiler for ExpressionCompiler {
    fn compile(&self, spec: &ConditionSpec) -> Result<Box<dyn Condition>, RiskError> {
        match spec {
            ConditionSpec::Expression { source } => Ok(Box::new(Self::compile_expression(source)?)),
            other => BuiltinConditions.compile(other),
        }
    }
}

impl Default for RuleSetRegistry {
    /// A registry that compiles thresholds and `rules`-crate expressions.
    fn default() -> Self {
        Self::new(Box::new(ExpressionCompiler))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{decimal, rule_field_name};
    use crate::velocity::{velocity_feature, KeyKind, Window};
    use crate::{Rule, RuleAction, RuleSet, ScoreThresholds};
    use rust_decimal::prelude::FromPrimitive;
    use rust_decimal::Decimal;

    fn fv(pairs: &[(&str, f64)]) -> FeatureVector {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn cond(src: &str) -> Box<dyn Condition> {
        ExpressionCompiler.compile(&ConditionSpec::Expression { source: src.into() }).unwrap()
    }

    #[test]
    fn expressions_read_features_by_rule_name() {
        let f = fv(&[
            ("event.kind.transfer", 1.0),
            ("event.channel.mobile", 1.0),
            ("event.amount", 60_000.5),
            ("velocity.customer.count.1h", 6.0),
            ("graph.device.new_for_customer", 1.0),
            ("graph.ip.new_for_customer", 0.0),
        ]);
        assert!(cond("event_kind == \"transfer\" and event_amount > 50000").eval(&f));
        assert!(cond("event_channel in [\"mobile\", \"web\"] and velocity_customer_count_1h >= 6").eval(&f));
        assert!(cond("graph_device_new_for_customer and not graph_ip_new_for_customer").eval(&f));
        assert!(cond("event_kind_transfer and event_amount == 60000.5").eval(&f));
        assert!(!cond("event_kind == \"login\"").eval(&f));
        // Absent features are null: comparisons are unknown, hence not a match; coalesce helps.
        assert!(!cond("velocity_device_count_1h > 0").eval(&f));
        assert!(!cond("not (velocity_device_count_1h > 0)").eval(&f));
        assert!(cond("coalesce(velocity_device_count_1h, 0) == 0").eval(&f));
        assert!(cond("is_null(model_probability)").eval(&f));
        assert!(cond("velocity_counterparty_sum_24h >= 0 or true").eval(&f));
    }

    #[test]
    fn prepared_rows_agree_with_direct_reads() {
        let f = fv(&[("event.amount", 1234.56), ("event.kind.payment", 1.0), ("velocity.ip.sum.24h", 3.0e7)]);
        for src in [
            "event_amount == 1234.56",
            "event_kind == \"payment\" and velocity_ip_sum_24h > 29999999",
            "is_null(model_probability)",
        ] {
            let c = ExpressionCompiler::compile_expression(src).unwrap();
            let row = PreparedRow::build(&f, c.schema_fields());
            assert!(c.eval(&f) && c.eval_prepared(&f, &row), "{src}");
        }
        assert_eq!(decimal(0.1), Decimal::from_f64(0.1));
        assert_eq!(decimal(1e300), Decimal::from_f64(1e300));
    }

    #[test]
    fn errors_keep_positions_and_rule_ids() {
        match ExpressionCompiler::compile_expression("event_amount > 100 and velocity_customer_count_2h > 3") {
            Err(RiskError::InvalidExpression { error, .. }) => {
                assert_eq!((error.line, error.column), (1, 24), "{error}");
                assert!(error.message.contains("velocity_customer_count_2h"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        match ExpressionCompiler::compile_expression("event_amount >= \"big\"") {
            Err(RiskError::InvalidExpression { error, .. }) => assert_eq!(error.kind, rules::ErrorKind::Type),
            other => panic!("{other:?}"),
        }
        let e = ExpressionCompiler::compile_expression("event_amount +").unwrap_err();
        assert!(e.to_string().contains("at 1:"), "{e}");
        assert!(ExpressionCompiler::compile_expression("event_amount").is_err(), "a condition must be bool");

        let rule = |id: &str, src: &str| Rule {
            id: id.into(),
            priority: 0,
            condition: ConditionSpec::Expression { source: src.into() },
            action: RuleAction::Review,
            reason_code: "X".into(),
            explanation: String::new(),
            weight: 0.0,
            terminal: false,
            enabled: true,
        };
        let set = RuleSet {
            name: "fraud".into(),
            version: 1,
            created_at: chrono::DateTime::default(),
            thresholds: ScoreThresholds::default(),
            rules: vec![rule("ok", "event_amount > 1"), rule("broken", "event_amount >\n  nope")],
        };
        match set.compile(&ExpressionCompiler) {
            Err(RiskError::InvalidExpression { rule, error }) => {
                assert_eq!(rule, "broken");
                assert_eq!((error.line, error.column), (2, 3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn schema_covers_every_engine_feature() {
        let s = expression_schema();
        for k in KeyKind::ALL {
            for w in Window::ALL {
                assert!(s.index_of(&rule_field_name(velocity_feature(k, w, true))).is_some());
            }
        }
        assert!(s.index_of("graph_device_shared_flagged").is_some());
        assert!(s.index_of("model_probability").is_some());
    }
}
