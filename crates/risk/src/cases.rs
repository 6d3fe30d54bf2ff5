//! Case management: decisions marked `review` become cases; analysts resolve them; resolutions
//! become training labels.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// In-memory case book (thread-safe), bounded.
///
/// The book keeps at most `capacity` cases: when a new case would exceed it, the oldest case is
/// dropped (in O(log n); counted in [`CaseBook::evicted`]). A service
/// that must keep every case persists them elsewhere (the server writes them to its database);
/// the book is the hot working set, so a long benchmark cannot grow memory without bound.
/// Case ids keep increasing across evictions and can be continued after a restart with
/// [`CaseBook::continue_after`].
#[derive(Debug)]
pub struct CaseBook {
    cases: RwLock<BTreeMap<u64, Case>>,
    next_id: AtomicU64,
    capacity: usize,
    evicted: AtomicU64,
}

impl Default for CaseBook {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl CaseBook {
    /// Cases kept in memory by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    pub fn new() -> Self {
        Self::default()
    }

    /// A book holding at most `capacity` (at least 1) cases.
    pub fn with_capacity(capacity: usize) -> Self {
        CaseBook {
            cases: RwLock::default(),
            next_id: AtomicU64::new(1),
            capacity: capacity.max(1),
            evicted: AtomicU64::new(0),
        }
    }

    /// Makes the next case id `last + 1` (or keeps the current one if that is higher).
    pub fn continue_after(&self, last: u64) {
        self.next_id.fetch_max(last + 1, Ordering::SeqCst);
    }

    /// Cases dropped from memory because the book was full.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.cases.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.cases.read().is_empty()
    }

    /// Opens a case for a `review` decision; returns its id, or `None` for other outcomes.
    pub fn open_from(&self, decision: &Decision) -> Option<u64> {
        if decision.outcome != Outcome::Review {
            return None;
        }
        let case = Case {
            id: 0,
            event_id: decision.event_id.clone(),
            customer_id: decision.customer_id.clone(),
            opened_at: decision.decided_at,
            score: decision.score,
            reasons: decision.reasons.clone(),
            features: decision.features.clone(),
            assignee: None,
            resolution: None,
        };
        Some(self.insert(case))
    }

    /// Adds a case (e.g. reloaded from storage) under its own id, or a new id when `case.id` is 0.
    pub fn insert(&self, mut case: Case) -> u64 {
        if case.id == 0 {
            case.id = self.next_id.fetch_add(1, Ordering::SeqCst);
        } else {
            self.continue_after(case.id);
        }
        let id = case.id;
        let mut cases = self.cases.write();
        while cases.len() >= self.capacity {
            cases.pop_first();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        cases.insert(id, case);
        id
    }

    /// Forgets a case (e.g. once it is resolved in storage).
    pub fn forget(&self, id: u64) -> Option<Case> {
        self.cases.write().remove(&id)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn review(event: &str) -> Decision {
        Decision {
            event_id: event.into(),
            customer_id: "c".into(),
            kind: crate::EventKind::Login,
            outcome: Outcome::Review,
            score: 60.0,
            model_probability: None,
            base_score: 0.0,
            reasons: Vec::new(),
            rule_set: None,
            rule_set_version: None,
            model: None,
            decided_at: DateTime::<Utc>::default(),
            elapsed_micros: 0,
            case_id: None,
            features: FeatureVector::new(),
        }
    }

    #[test]
    fn the_book_is_bounded_and_ids_keep_increasing() {
        let book = CaseBook::with_capacity(3);
        let ids: Vec<u64> = (0..3).map(|i| book.open_from(&review(&format!("e{i}"))).unwrap()).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        book.resolve(2, Resolution::FalsePositive, "ana", "", DateTime::<Utc>::default()).unwrap();
        // Full: the oldest case goes first.
        assert_eq!(book.open_from(&review("e3")), Some(4));
        assert!(book.get(1).is_none() && book.get(2).is_some());
        assert_eq!(book.open_from(&review("e4")), Some(5));
        assert!(book.get(2).is_none());
        assert_eq!((book.len(), book.evicted()), (3, 2));
        for i in 0..10_000 {
            book.open_from(&review(&format!("x{i}")));
        }
        assert_eq!(book.len(), 3);
        book.continue_after(100_000);
        assert_eq!(book.open_from(&review("after restart")), Some(100_001));
    }
}
