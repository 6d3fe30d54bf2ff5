//! The expression schema over the decision [`FeatureVector`] and the rows rules read.
//!
//! [`expression_schema`] is built from the feature vector: every feature name with its dots
//! replaced by `_` (`velocity.customer.count.1h` is `velocity_customer_count_1h`), flags as
//! `bool`, counts, sums and scores as `number`, plus the strings `event_kind` and
//! `event_channel`. A feature that was not computed for an event (no device, no model) reads as
//! `null`. [`PreparedRow`] converts the fields a rule set reads once per decision.
//!
//! This module sits below both the rule sets (`rules.rs`) and the expression compiler
//! (`expr.rs`), so neither imports the other's internals.

use std::sync::LazyLock;

use rules::{Record, Schema, Type, ValueRef};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;

use crate::velocity::velocity_feature;
use crate::velocity::{KeyKind, Window};
use crate::{Channel, EventKind, FeatureVector};

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
pub(crate) struct FeatureRecord<'a> {
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
pub(crate) fn decimal(v: f64) -> Option<Decimal> {
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

impl<'a> FeatureRecord<'a> {
    /// The features as an expression record over [`expression_schema`].
    pub(crate) fn new(features: &'a FeatureVector) -> Self {
        FeatureRecord { features, slots: &LAYOUT.slots }
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
