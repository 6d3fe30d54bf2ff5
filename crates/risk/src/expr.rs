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

use std::sync::LazyLock;

use rules::{Record, Schema, Type, ValueRef};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;

use crate::engine::velocity_feature;
use crate::rules::{BuiltinConditions, Condition, ConditionCompiler, ConditionSpec};
use crate::velocity::{KeyKind, Window};
use crate::{Channel, EventKind, FeatureVector, RiskError};

/// How a schema field is read from a feature vector.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Num(&'static str),
    Flag(&'static str),
    Kind,
    Channel,
}

struct Layout {
    schema: Schema,
    slots: Vec<Slot>,
}

const KIND_FLAGS: [(EventKind, &str); 5] = [
    (EventKind::Payment, "event.kind.payment"),
    (EventKind::Transfer, "event.kind.transfer"),
    (EventKind::Login, "event.kind.login"),
    (EventKind::LoanApplication, "event.kind.loan_application"),
    (EventKind::AccountOpening, "event.kind.account_opening"),
];

const CHANNEL_FLAGS: [(Channel, &str); 7] = [
    (Channel::Web, "event.channel.web"),
    (Channel::Mobile, "event.channel.mobile"),
    (Channel::Branch, "event.channel.branch"),
    (Channel::Atm, "event.channel.atm"),
    (Channel::Pos, "event.channel.pos"),
    (Channel::OpenBanking, "event.channel.open_banking"),
    (Channel::CallCenter, "event.channel.call_center"),
];

/// Numeric features other than velocity, with their documentation.
const NUMBERS: &[(&str, &str)] = &[
    ("event.amount", "amount in major units (yuan), any currency"),
    ("event.hour_utc", "hour of the event, 0..23 UTC"),
    ("list.black.hits", "live black-list entries matching the event"),
    ("list.white.hits", "live white-list entries matching the event"),
    ("list.watch.hits", "live watch-list entries matching the event"),
    ("graph.device.shared_customers", "other customers seen on this customer's devices"),
    ("graph.device.shared_flagged", "of those, rejected or confirmed fraud"),
    ("graph.phone.shared_customers", "other customers sharing a phone number"),
    ("graph.phone.shared_flagged", "of those, rejected or confirmed fraud"),
    ("graph.ip.shared_customers", "other customers seen on this customer's IPs"),
    ("graph.ip.shared_flagged", "of those, rejected or confirmed fraud"),
    ("graph.component.customers", "customers in the connected relationship component"),
    ("graph.component.flagged", "flagged customers in that component"),
    ("graph.customer.devices", "distinct devices this customer has used"),
    ("model.probability", "fraud probability of the active model (absent without a model)"),
];

const FLAGS: &[(&str, &str)] = &[
    ("event.amount_in_base_currency", "the amount is in the engine's base currency"),
    ("event.geo_merchant_country_mismatch", "geolocation country differs from the merchant's"),
    ("graph.device.new_for_customer", "first use of this device by a customer who used others before"),
    ("graph.ip.new_for_customer", "first use of this IP by a customer who used others before"),
];

/// The rule field name of a feature: dots become underscores.
pub fn rule_field_name(feature: &str) -> String {
    feature.replace('.', "_")
}

static LAYOUT: LazyLock<Layout> = LazyLock::new(|| {
    let mut schema = Schema::new();
    let mut slots = Vec::new();
    let mut add = |feature: &'static str, ty: Type, doc: &str, slot: Slot| {
        schema.add_documented(&rule_field_name(feature), ty, doc).expect("valid, unique feature name");
        slots.push(slot);
    };
    add("event_kind", Type::String, "payment, transfer, login, loan_application, account_opening", Slot::Kind);
    add("event_channel", Type::String, "web, mobile, branch, atm, pos, open_banking, call_center", Slot::Channel);
    for (_, f) in KIND_FLAGS {
        add(f, Type::Bool, "event kind flag", Slot::Flag(f));
    }
    for (_, f) in CHANNEL_FLAGS {
        add(f, Type::Bool, "event channel flag", Slot::Flag(f));
    }
    for (f, doc) in FLAGS {
        add(f, Type::Bool, doc, Slot::Flag(f));
    }
    for (f, doc) in NUMBERS {
        add(f, Type::Number, doc, Slot::Num(f));
    }
    for k in KeyKind::ALL {
        for w in Window::ALL {
            let count = velocity_feature(k, w, false);
            let sum = velocity_feature(k, w, true);
            add(count, Type::Number, "events for this key in the window, including this one", Slot::Num(count));
            add(sum, Type::Number, "amount sum in base-currency minor units (fen)", Slot::Num(sum));
        }
    }
    Layout { schema, slots }
});

/// The schema rule expressions are checked against (field names, types and documentation).
pub fn expression_schema() -> &'static Schema {
    &LAYOUT.schema
}

/// A feature vector seen through [`expression_schema`].
struct FeatureRecord<'a> {
    features: &'a FeatureVector,
    slots: &'a [Slot],
}

fn flag_of<T: Copy>(
    features: &FeatureVector,
    flags: &[(T, &str)],
    name: impl Fn(T) -> &'static str,
) -> ValueRef<'static> {
    flags
        .iter()
        .find(|(_, f)| features.get(f).is_some_and(|v| v != 0.0))
        .map_or(ValueRef::Null, |(k, _)| ValueRef::String(name(*k)))
}

/// `f64` to `Decimal`, with cheap exact paths for integers and cent amounts.
fn decimal(v: f64) -> Option<Decimal> {
    const EXACT: f64 = 9.0e15;
    if v.fract() == 0.0 && v.abs() < EXACT {
        return Some(Decimal::from(v as i64));
    }
    let cents = v * 100.0;
    if cents.fract() == 0.0 && cents.abs() < EXACT {
        return Some(Decimal::new(cents as i64, 2));
    }
    Decimal::from_f64(v)
}

fn read(features: &FeatureVector, slot: Option<&Slot>) -> ValueRef<'static> {
    match slot {
        Some(Slot::Num(name)) => features.get(name).and_then(decimal).map_or(ValueRef::Null, ValueRef::Number),
        Some(Slot::Flag(name)) => features.get(name).map_or(ValueRef::Null, |v| ValueRef::Bool(v != 0.0)),
        Some(Slot::Kind) => flag_of(features, &KIND_FLAGS, EventKind::as_str),
        Some(Slot::Channel) => flag_of(features, &CHANNEL_FLAGS, Channel::as_str),
        None => ValueRef::Null,
    }
}

impl Record for FeatureRecord<'_> {
    fn get(&self, field: usize) -> ValueRef<'_> {
        read(self.features, self.slots.get(field))
    }
}

/// The fields a rule set reads, converted from a feature vector once per decision so that a
/// hundred rules do not each look up and convert the same features.
#[derive(Debug, Default)]
pub struct PreparedRow {
    values: Vec<ValueRef<'static>>,
}

impl PreparedRow {
    /// Converts `fields` (indices into [`expression_schema`]); the others read as null.
    pub fn build(features: &FeatureVector, fields: &[usize]) -> Self {
        if fields.is_empty() {
            return PreparedRow::default();
        }
        let slots = &LAYOUT.slots;
        let mut values = vec![ValueRef::Null; slots.len()];
        for &i in fields {
            values[i] = read(features, slots.get(i));
        }
        PreparedRow { values }
    }
}

impl Record for PreparedRow {
    #[inline]
    fn get(&self, field: usize) -> ValueRef<'_> {
        self.values.get(field).copied().unwrap_or(ValueRef::Null)
    }
}

/// A compiled expression condition.
#[derive(Debug)]
pub struct ExpressionCondition {
    expr: rules::Expr,
    fields: Vec<usize>,
}

impl ExpressionCondition {
    /// Why the condition is (not) true for these features: sub-conditions and the values read.
    pub fn explain(&self, features: &FeatureVector) -> rules::Explanation {
        self.expr.explain(&FeatureRecord { features, slots: &LAYOUT.slots })
    }
}

impl Condition for ExpressionCondition {
    fn eval(&self, features: &FeatureVector) -> bool {
        self.expr.matches(&FeatureRecord { features, slots: &LAYOUT.slots })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rule, RuleAction, RuleSet, ScoreThresholds};

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
