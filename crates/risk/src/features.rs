//! Named numeric features computed for one decision.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Named `f64` features (booleans as 0/1). Names are dotted paths such as
/// `velocity.customer.count.1h` or `graph.device.shared_flagged`; a feature that was not computed
/// is absent, and a [`crate::Threshold`] on an absent feature is false.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureVector(BTreeMap<Cow<'static, str>, f64>);

impl FeatureVector {
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets a feature with a static name (no allocation).
    pub fn set(&mut self, name: &'static str, value: f64) {
        self.0.insert(Cow::Borrowed(name), value);
    }
    /// Sets a feature with a computed name.
    pub fn set_owned(&mut self, name: String, value: f64) {
        self.0.insert(Cow::Owned(name), value);
    }
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), *v))
    }
}

impl<S: Into<String>> FromIterator<(S, f64)> for FeatureVector {
    fn from_iter<T: IntoIterator<Item = (S, f64)>>(iter: T) -> Self {
        FeatureVector(iter.into_iter().map(|(k, v)| (Cow::Owned(k.into()), v)).collect())
    }
}
