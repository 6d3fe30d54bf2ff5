//! Segments: value tiers, RFM scores and named RFM segments, and arbitrary segments written as
//! boolean rules over tags (`payroll_customer and not dormant_90d`).

use std::collections::BTreeMap;

use rules::{compile_condition, Expr, Schema, Value};
use serde::{Deserialize, Serialize};

use crate::identity::{CustomerId, CustomerKind};
use crate::profile::Profile;
use crate::tags::{AssignedTag, TagRegistry};
use crate::CustomerError;

/// AUM from which an individual is served as a wealth client: 500,000 CNY.
pub const WEALTH_THRESHOLD_MINOR: i64 = 500_000_00;

/// Service tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Mass,
    Wealth,
    Sme,
}

/// Businesses (sole proprietors, SMEs, core enterprises) are served by the SME tier;
/// individuals with AUM >= 500,000 CNY are wealth clients; everyone else is mass.
pub fn tier(profile: &Profile) -> Tier {
    if profile.basic.kind != CustomerKind::Individual {
        Tier::Sme
    } else if profile.assets.aum_minor >= WEALTH_THRESHOLD_MINOR {
        Tier::Wealth
    } else {
        Tier::Mass
    }
}

/// Customers per tier.
pub fn tier_counts<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> BTreeMap<Tier, usize> {
    let mut counts = BTreeMap::new();
    for p in profiles {
        *counts.entry(tier(p)).or_insert(0) += 1;
    }
    counts
}

/// Inputs of RFM for one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmInput {
    pub customer_id: CustomerId,
    /// Days since the last transaction; `None` = never (worst).
    pub recency_days: Option<u32>,
    /// Transactions in 180 days.
    pub frequency: u32,
    /// Turnover (inflow + outflow) in 180 days, minor units.
    pub monetary_minor: i64,
}

impl RfmInput {
    pub fn from_profile(p: &Profile) -> Self {
        let w = p.behaviour.d180();
        RfmInput {
            customer_id: p.customer_id,
            recency_days: p.behaviour.days_since_last_txn,
            frequency: w.txn_count,
            monetary_minor: w.inflow_minor.saturating_add(w.outflow_minor),
        }
    }
}

/// Named RFM segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmSegment {
    Champions,
    Loyal,
    PotentialLoyalist,
    NewCustomers,
    Promising,
    NeedAttention,
    AboutToSleep,
    CantLoseThem,
    AtRisk,
    Hibernating,
    Lost,
}

/// Scores 1..=5 (5 best) and the named segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmScore {
    pub customer_id: CustomerId,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: RfmSegment,
}

/// Named segment from R/F/M scores; first matching row wins:
///
/// | segment            | rule                         |
/// |--------------------|------------------------------|
/// | champions          | R >= 4, F >= 4, M >= 4       |
/// | can't lose them    | R <= 2, F >= 4, M >= 4       |
/// | loyal              | R >= 3, F >= 4               |
/// | at risk            | R <= 2, F >= 3               |
/// | new customers      | R = 5, F = 1                 |
/// | promising          | R = 4, F = 1                 |
/// | potential loyalist | R >= 4, F 2..3               |
/// | need attention     | R = 3, F = 3                 |
/// | about to sleep     | R = 3, F <= 2                |
/// | lost               | R = 1, F = 1                 |
/// | hibernating        | everything else (R <= 2, F <= 2) |
pub fn rfm_segment(r: u8, f: u8, m: u8) -> RfmSegment {
    use RfmSegment::*;
    match (r, f, m) {
        (4.., 4.., 4..) => Champions,
        (..=2, 4.., 4..) => CantLoseThem,
        (3.., 4.., _) => Loyal,
        (..=2, 3.., _) => AtRisk,
        (5, 1, _) => NewCustomers,
        (4, 1, _) => Promising,
        (4.., 2..=3, _) => PotentialLoyalist,
        (3, 3, _) => NeedAttention,
        (3, ..=2, _) => AboutToSleep,
        (1, 1, _) => Lost,
        _ => Hibernating,
    }
}

/// Quintile cut points of a population: a value scores `1 + (number of cuts it reaches)`, which
/// is `ceil(5 * (values at or below it) / n)` for members of the population. Equal values share
/// a score, and a large tie at the top (everyone transacted today) scores 5, not the rank where
/// the tie starts. Kept after a full recomputation so customers whose facts
/// change later are scored against the same population without re-reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmCuts {
    /// Freshness cuts: `u32::MAX - recency_days` (never transacted = 0), larger is better.
    pub freshness: [u32; 4],
    pub frequency: [u32; 4],
    pub monetary_minor: [i64; 4],
}

fn cuts<T: Ord + Copy + Default>(mut values: Vec<T>) -> [T; 4] {
    values.sort_unstable();
    let n = values.len();
    let mut out = [T::default(); 4];
    if n == 0 {
        return out;
    }
    for (k, slot) in out.iter_mut().enumerate() {
        // A value reaches this cut iff more than (k+1)/5 of the population is at or below it.
        *slot = values[((k + 1) * n / 5).min(n - 1)];
    }
    out
}

fn score<T: Ord>(cuts: &[T; 4], v: &T) -> u8 {
    1 + cuts.iter().filter(|c| v >= *c).count() as u8
}

fn freshness(i: &RfmInput) -> u32 {
    i.recency_days.map_or(0, |d| u32::MAX - d)
}

impl RfmCuts {
    pub fn fit(inputs: &[RfmInput]) -> Self {
        RfmCuts {
            freshness: cuts(inputs.iter().map(freshness).collect()),
            frequency: cuts(inputs.iter().map(|i| i.frequency).collect()),
            monetary_minor: cuts(inputs.iter().map(|i| i.monetary_minor).collect()),
        }
    }

    pub fn score(&self, i: &RfmInput) -> RfmScore {
        let (r, f, m) = (
            score(&self.freshness, &freshness(i)),
            score(&self.frequency, &i.frequency),
            score(&self.monetary_minor, &i.monetary_minor),
        );
        RfmScore { customer_id: i.customer_id, r, f, m, segment: rfm_segment(r, f, m) }
    }
}

/// RFM quintile scores over a population. Recency is inverted (more recent = higher score);
/// never-transacted customers get R = 1.
pub fn rfm_scores(inputs: &[RfmInput]) -> Vec<RfmScore> {
    let cuts = RfmCuts::fit(inputs);
    inputs.iter().map(|i| cuts.score(i)).collect()
}

/// Customers per named RFM segment.
pub fn rfm_segment_counts(scores: &[RfmScore]) -> BTreeMap<RfmSegment, usize> {
    let mut counts = BTreeMap::new();
    for s in scores {
        *counts.entry(s.segment).or_insert(0) += 1;
    }
    counts
}

/// A segment defined as a boolean rule over tag ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentDefinition {
    pub id: String,
    pub name: String,
    /// e.g. `payroll_customer and (aum_ge_100k or investment_grade) and not dormant_90d`.
    pub rule: String,
}

/// How many customers fall into a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCount {
    pub id: String,
    pub name: String,
    pub count: usize,
}

/// Compiled tag-based segments. Tags a customer does not carry read as `false`.
#[derive(Debug, Clone)]
pub struct SegmentEngine {
    schema: Schema,
    segments: Vec<(SegmentDefinition, Expr)>,
}

impl SegmentEngine {
    /// Segment rules may use any tag id of `registry` as a boolean.
    pub fn new(registry: &TagRegistry) -> Self {
        SegmentEngine { schema: registry.tag_schema(), segments: Vec::new() }
    }

    /// Adds a segment; the rule must compile against the tag ids.
    pub fn add(&mut self, def: SegmentDefinition) -> Result<(), CustomerError> {
        let expr = compile_condition(&def.rule, &self.schema)
            .map_err(|source| CustomerError::InvalidRule { id: def.id.clone(), source })?;
        self.segments.retain(|(d, _)| d.id != def.id);
        self.segments.push((def, expr));
        Ok(())
    }

    fn record(&self, tags: &[AssignedTag]) -> Vec<Value> {
        let mut values = vec![Value::Bool(false); self.schema.len()];
        for t in tags {
            if let Some(i) = self.schema.index_of(&t.tag_id) {
                values[i] = Value::Bool(true);
            }
        }
        values
    }

    /// Ids of the segments a customer with these tags belongs to.
    pub fn memberships(&self, tags: &[AssignedTag]) -> Vec<&str> {
        let record = self.record(tags);
        self.segments.iter().filter(|(_, e)| e.matches(&record)).map(|(d, _)| d.id.as_str()).collect()
    }

    /// Members per segment over a population (one tag list per customer).
    pub fn counts(&self, population: &[Vec<AssignedTag>]) -> Vec<SegmentCount> {
        let mut counts = vec![0usize; self.segments.len()];
        for tags in population {
            let record = self.record(tags);
            for (c, (_, e)) in counts.iter_mut().zip(&self.segments) {
                *c += usize::from(e.matches(&record));
            }
        }
        self.segments
            .iter()
            .zip(counts)
            .map(|((d, _), count)| SegmentCount { id: d.id.clone(), name: d.name.clone(), count })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::CustomerFacts;
    use crate::synthetic;
    use chrono::NaiveDate;

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
    }

    fn profiles(n: usize) -> Vec<Profile> {
        synthetic::population(n, 5, as_of()).iter().map(Profile::compute).collect()
    }

    #[test]
    fn tiers() {
        let mut f = CustomerFacts::empty(CustomerId::from_u128(1), CustomerKind::Individual, as_of(), as_of());
        f.time_deposits_minor = WEALTH_THRESHOLD_MINOR - 1;
        assert_eq!(tier(&Profile::compute(&f)), Tier::Mass);
        f.demand_deposits_minor = 1;
        assert_eq!(tier(&Profile::compute(&f)), Tier::Wealth);
        f.kind = CustomerKind::SoleProprietor;
        assert_eq!(tier(&Profile::compute(&f)), Tier::Sme);
        let counts = tier_counts(&profiles(1000));
        assert_eq!(counts.values().sum::<usize>(), 1000);
        assert_eq!(counts.len(), 3);
    }

    #[test]
    fn rfm_quintiles() {
        let inputs: Vec<RfmInput> = (0..10u32)
            .map(|i| RfmInput {
                customer_id: CustomerId::from_u128(u128::from(i)),
                recency_days: if i == 0 { None } else { Some(100 - i * 10) },
                frequency: i,
                monetary_minor: i64::from(i) * 1000,
            })
            .collect();
        let scores = rfm_scores(&inputs);
        assert_eq!((scores[0].r, scores[0].f, scores[0].m), (1, 1, 1));
        assert_eq!(scores[0].segment, RfmSegment::Lost);
        assert_eq!((scores[9].r, scores[9].f, scores[9].m), (5, 5, 5));
        assert_eq!(scores[9].segment, RfmSegment::Champions);
        assert_eq!(scores[4].f, 3);
        // Ties share a score.
        let same: Vec<RfmInput> = inputs.iter().map(|i| RfmInput { frequency: 7, ..*i }).collect();
        assert!(rfm_scores(&same).iter().all(|s| s.f == 5));
        assert_eq!(rfm_segment(1, 5, 5), RfmSegment::CantLoseThem);
        assert_eq!(rfm_segment(2, 3, 1), RfmSegment::AtRisk);
        assert_eq!(rfm_segment(2, 2, 5), RfmSegment::Hibernating);
        assert_eq!(rfm_segment(5, 1, 1), RfmSegment::NewCustomers);

        let ps = profiles(2000);
        let scores = rfm_scores(&ps.iter().map(RfmInput::from_profile).collect::<Vec<_>>());
        let counts = rfm_segment_counts(&scores);
        assert!(counts.len() >= 8, "{counts:?}");
        assert_eq!(counts.values().sum::<usize>(), 2000);
    }

    #[test]
    fn tag_segments() {
        let registry = TagRegistry::with_builtins().unwrap();
        let mut engine = SegmentEngine::new(&registry);
        engine
            .add(SegmentDefinition {
                id: "payroll_active".into(),
                name: "Active payroll customers".into(),
                rule: "payroll_customer and not dormant_90d".into(),
            })
            .unwrap();
        engine
            .add(SegmentDefinition {
                id: "cross_sell_wealth".into(),
                name: "Wealth cross-sell".into(),
                rule: "(aum_ge_100k or payroll_customer) and not holds_equity_fund and not risk_assessment_missing"
                    .into(),
            })
            .unwrap();
        let err = engine
            .add(SegmentDefinition { id: "bad".into(), name: "bad".into(), rule: "payroll_customer and nope".into() })
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `nope` at 1:22"), "{err}");

        let population: Vec<Vec<AssignedTag>> = profiles(1000).iter().map(|p| registry.evaluate(p)).collect();
        let counts = engine.counts(&population);
        assert_eq!(counts.len(), 2);
        let payroll = population.iter().filter(|t| t.iter().any(|x| x.tag_id == "payroll_customer")).count();
        assert!(counts[0].count > 0 && counts[0].count <= payroll, "{counts:?}");
        let direct = population.iter().filter(|t| engine.memberships(t).contains(&"payroll_active")).count();
        assert_eq!(direct, counts[0].count);
    }
}
