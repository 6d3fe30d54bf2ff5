//! Mining an [`EventLog`]: directly-follows graph with frequencies and durations, variants,
//! bottlenecks, rework loops, SLA breaches and value-stream figures. Every function is linear
//! (or `n log n` for the percentiles) in the events it is given; callers bound the log.
//!
//! Percentiles are nearest-rank: the p-th percentile of `n` sorted values is the value at rank
//! `ceil(p/100 × n)`; the median is the 50th percentile. Means are truncated to the microsecond.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::log::{Case, EventLog};

/// Count, mean, median, p95 and maximum of durations in microseconds (all 0 when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub count: u64,
    pub mean_micros: i64,
    pub median_micros: i64,
    pub p95_micros: i64,
    pub max_micros: i64,
    pub total_micros: i64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted values.
pub fn percentile(sorted: &[i64], p: u32) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    let rank = (u64::from(p.min(100)) * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

impl Stats {
    pub fn of(mut values: Vec<i64>) -> Stats {
        if values.is_empty() {
            return Stats::default();
        }
        values.sort_unstable();
        let total: i128 = values.iter().map(|v| i128::from(*v)).sum();
        let total_micros = i64::try_from(total).unwrap_or(i64::MAX);
        Stats {
            count: values.len() as u64,
            mean_micros: i64::try_from(total / values.len() as i128).unwrap_or(i64::MAX),
            median_micros: percentile(&values, 50),
            p95_micros: percentile(&values, 95),
            max_micros: *values.last().unwrap_or(&0),
            total_micros,
        }
    }
}

/// One activity of the directly-follows graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivityStats {
    pub activity: String,
    /// Occurrences.
    pub count: u64,
    /// Cases with at least one occurrence.
    pub cases: u64,
    /// Time from the case's previous event to this one, less the service time.
    pub waiting: Stats,
    pub service: Stats,
}

/// One edge `from → to` of the directly-follows graph: `to` came right after `from` in a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EdgeStats {
    pub from: String,
    pub to: String,
    pub count: u64,
    /// Time between the two events.
    pub duration: Stats,
    /// The waiting part of it (see [`ActivityStats::waiting`]).
    pub waiting: Stats,
}

/// An activity and how many cases start or end with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    pub activity: String,
    pub cases: u64,
}

/// The directly-follows graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Dfg {
    /// By count, most frequent first (then name).
    pub activities: Vec<ActivityStats>,
    /// By count, most frequent first (then from, to).
    pub edges: Vec<EdgeStats>,
    pub start_activities: Vec<Endpoint>,
    pub end_activities: Vec<Endpoint>,
}

/// The directly-follows graph of `log`.
pub fn dfg(log: &EventLog) -> Dfg {
    #[derive(Default)]
    struct Acc {
        count: u64,
        cases: u64,
        waiting: Vec<i64>,
        service: Vec<i64>,
    }
    let mut acts: HashMap<&str, Acc> = HashMap::new();
    // (durations, waiting times) per edge.
    type EdgeTimes = (Vec<i64>, Vec<i64>);
    let mut edges: HashMap<(&str, &str), EdgeTimes> = HashMap::new();
    let mut starts: HashMap<&str, u64> = HashMap::new();
    let mut ends: HashMap<&str, u64> = HashMap::new();
    for case in &log.cases {
        let Some(first) = case.events.first() else { continue };
        *starts.entry(&first.activity).or_default() += 1;
        *ends.entry(&case.events[case.events.len() - 1].activity).or_default() += 1;
        let mut seen: Vec<&str> = Vec::new();
        for (i, e) in case.events.iter().enumerate() {
            let a = acts.entry(&e.activity).or_default();
            a.count += 1;
            if !seen.contains(&e.activity.as_str()) {
                seen.push(&e.activity);
                a.cases += 1;
            }
            a.waiting.push(case.waiting(i));
            a.service.push(case.service(i));
            if i > 0 {
                let prev = &case.events[i - 1];
                let edge = edges.entry((&prev.activity, &e.activity)).or_default();
                edge.0.push(e.at - prev.at);
                edge.1.push(case.waiting(i));
            }
        }
    }
    let mut activities: Vec<ActivityStats> = acts
        .into_iter()
        .map(|(name, a)| ActivityStats {
            activity: name.to_string(),
            count: a.count,
            cases: a.cases,
            waiting: Stats::of(a.waiting),
            service: Stats::of(a.service),
        })
        .collect();
    activities.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.activity.cmp(&b.activity)));
    let mut edges: Vec<EdgeStats> = edges
        .into_iter()
        .map(|((from, to), (duration, waiting))| EdgeStats {
            from: from.to_string(),
            to: to.to_string(),
            count: duration.len() as u64,
            duration: Stats::of(duration),
            waiting: Stats::of(waiting),
        })
        .collect();
    edges.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to))));
    let endpoints = |m: HashMap<&str, u64>| {
        let mut v: Vec<Endpoint> =
            m.into_iter().map(|(activity, cases)| Endpoint { activity: activity.to_string(), cases }).collect();
        v.sort_by(|a, b| b.cases.cmp(&a.cases).then_with(|| a.activity.cmp(&b.activity)));
        v
    };
    Dfg { activities, edges, start_activities: endpoints(starts), end_activities: endpoints(ends) }
}

/// One variant: a sequence of activities and the cases that followed it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Variant {
    pub activities: Vec<String>,
    pub cases: u64,
    /// Share of the log's cases (0..1).
    pub share: f64,
    pub lead_time: Stats,
}

/// Variants by frequency (then by sequence), at most `limit`; also the number of distinct ones.
pub fn variants(log: &EventLog, limit: usize) -> (Vec<Variant>, usize) {
    let mut by_seq: HashMap<Vec<&str>, Vec<i64>> = HashMap::new();
    for case in &log.cases {
        let seq: Vec<&str> = case.events.iter().map(|e| e.activity.as_str()).collect();
        by_seq.entry(seq).or_default().push(case.lead_time());
    }
    let total = log.cases.len().max(1) as f64;
    let distinct = by_seq.len();
    let mut out: Vec<(Vec<&str>, Vec<i64>)> = by_seq.into_iter().collect();
    out.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    let variants = out
        .into_iter()
        .take(limit)
        .map(|(seq, leads)| Variant {
            activities: seq.into_iter().map(str::to_string).collect(),
            cases: leads.len() as u64,
            share: leads.len() as f64 / total,
            lead_time: Stats::of(leads),
        })
        .collect();
    (variants, distinct)
}

/// An activity ranked by the waiting it causes: mean waiting × occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Bottleneck {
    pub activity: String,
    pub count: u64,
    pub mean_waiting_micros: i64,
    pub p95_waiting_micros: i64,
    /// Total waiting before this activity over the log (mean × count).
    pub total_waiting_micros: i64,
}

/// Activities by total waiting, most first; activities that never wait are left out.
pub fn bottlenecks(dfg: &Dfg, limit: usize) -> Vec<Bottleneck> {
    let mut out: Vec<Bottleneck> = dfg
        .activities
        .iter()
        .filter(|a| a.waiting.total_micros > 0)
        .map(|a| Bottleneck {
            activity: a.activity.clone(),
            count: a.count,
            mean_waiting_micros: a.waiting.mean_micros,
            p95_waiting_micros: a.waiting.p95_micros,
            total_waiting_micros: a.waiting.total_micros,
        })
        .collect();
    out.sort_by(|a, b| b.total_waiting_micros.cmp(&a.total_waiting_micros).then_with(|| a.activity.cmp(&b.activity)));
    out.truncate(limit);
    out
}

/// An activity done more than once in some cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rework {
    pub activity: String,
    /// Cases that repeated it.
    pub cases: u64,
    /// Occurrences beyond the first, over those cases.
    pub repetitions: u64,
}

/// Rework: per activity, the cases that repeated it; and how many cases had any rework.
pub fn rework(log: &EventLog) -> (Vec<Rework>, u64) {
    let mut per: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut cases_with = 0u64;
    for case in &log.cases {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &case.events {
            *counts.entry(&e.activity).or_default() += 1;
        }
        let mut any = false;
        for (a, n) in counts.into_iter().filter(|(_, n)| *n > 1) {
            let r = per.entry(a).or_default();
            r.0 += 1;
            r.1 += n - 1;
            any = true;
        }
        cases_with += u64::from(any);
    }
    let mut out: Vec<Rework> = per
        .into_iter()
        .map(|(activity, (cases, repetitions))| Rework { activity: activity.to_string(), cases, repetitions })
        .collect();
    out.sort_by(|a, b| b.cases.cmp(&a.cases).then_with(|| a.activity.cmp(&b.activity)));
    (out, cases_with)
}

/// A service level: from the case's first event (or `from`) to the first of `to` within
/// `limit_micros`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlaSpec {
    pub from: Option<String>,
    pub to: Vec<String>,
    pub limit_micros: i64,
}

/// A case that broke its service level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlaBreach {
    pub case_id: String,
    /// Time to the target activity, or, when it has not happened yet, time so far.
    pub elapsed_micros: i64,
    /// `true` when the target activity has not happened yet.
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlaReport {
    pub spec: SlaSpec,
    /// Cases the SLA applies to (they reached `from`).
    pub cases: u64,
    pub met: u64,
    pub breached: u64,
    /// Of the breaches, those still waiting for the target activity at `now`.
    pub open_breaches: u64,
    /// Share of cases breached (0..1; 0 without cases).
    pub breach_share: f64,
    /// Time to the target over the cases that reached it.
    pub elapsed: Stats,
    /// The worst breaches, longest first.
    pub worst: Vec<SlaBreach>,
}

/// Checks every case against `spec` at time `now`; lists at most `worst` breaches.
pub fn sla(log: &EventLog, spec: &SlaSpec, now: i64, worst: usize) -> SlaReport {
    let (mut cases, mut met) = (0u64, 0u64);
    let mut breaches = Vec::new();
    let mut elapsed = Vec::new();
    for case in &log.cases {
        let start = match &spec.from {
            None => case.events.first().map(|e| (0, e.at)),
            Some(f) => case.events.iter().position(|e| &e.activity == f).map(|i| (i, case.events[i].at)),
        };
        let Some((i, start)) = start else { continue };
        cases += 1;
        match case.events[i..].iter().find(|e| spec.to.contains(&e.activity)) {
            Some(end) => {
                let took = end.at - start;
                elapsed.push(took);
                if took <= spec.limit_micros {
                    met += 1;
                } else {
                    breaches.push(SlaBreach { case_id: case.id.clone(), elapsed_micros: took, open: false });
                }
            }
            None if now - start > spec.limit_micros => {
                breaches.push(SlaBreach { case_id: case.id.clone(), elapsed_micros: now - start, open: true })
            }
            None => met += 1,
        }
    }
    let breached = breaches.len() as u64;
    let open_breaches = breaches.iter().filter(|b| b.open).count() as u64;
    breaches.sort_by(|a, b| b.elapsed_micros.cmp(&a.elapsed_micros).then_with(|| a.case_id.cmp(&b.case_id)));
    breaches.truncate(worst);
    SlaReport {
        spec: spec.clone(),
        cases,
        met,
        breached,
        open_breaches,
        breach_share: if cases == 0 { 0.0 } else { breached as f64 / cases as f64 },
        elapsed: Stats::of(elapsed),
        worst: breaches,
    }
}

/// Value-stream figures of a log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValueStream {
    pub cases: u64,
    /// Last event minus first, per case.
    pub lead_time: Stats,
    /// Sum of service times, per case.
    pub value_added: Stats,
    /// Lead time less value-added time, per case.
    pub waiting: Stats,
    /// Process cycle efficiency: total value-added time over total lead time (0..1); null
    /// when no case took any time.
    pub process_cycle_efficiency: Option<f64>,
}

pub fn value_stream(log: &EventLog) -> ValueStream {
    let (mut lead, mut va, mut wait) = (Vec::new(), Vec::new(), Vec::new());
    for case in &log.cases {
        let l = case.lead_time();
        // The first event's own service happened before the case's first timestamp.
        let v: i64 = (1..case.events.len()).map(|i| case.service(i)).sum::<i64>().min(l);
        lead.push(l);
        va.push(v);
        wait.push(l - v);
    }
    let lead = Stats::of(lead);
    let value_added = Stats::of(va);
    let pce = (lead.total_micros > 0).then(|| value_added.total_micros as f64 / lead.total_micros as f64);
    ValueStream {
        cases: log.cases.len() as u64,
        lead_time: lead,
        value_added,
        waiting: Stats::of(wait),
        process_cycle_efficiency: pce,
    }
}

/// Everything at once, as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Analysis {
    pub cases: u64,
    pub events: u64,
    pub value_stream: ValueStream,
    pub bottlenecks: Vec<Bottleneck>,
    pub rework: Vec<Rework>,
    /// Cases with any rework.
    pub rework_cases: u64,
    pub sla: Option<SlaReport>,
    pub variants: Vec<Variant>,
    pub distinct_variants: u64,
}

/// The summary analysis of `log` (the DFG is computed once and kept out of the answer).
pub fn analyse(log: &EventLog, sla_spec: Option<&SlaSpec>, now: i64, limit: usize) -> Analysis {
    let graph = dfg(log);
    let (variants, distinct) = variants(log, limit);
    let (rework, rework_cases) = rework(log);
    Analysis {
        cases: log.cases.len() as u64,
        events: log.event_count() as u64,
        value_stream: value_stream(log),
        bottlenecks: bottlenecks(&graph, limit),
        rework,
        rework_cases,
        sla: sla_spec.map(|s| sla(log, s, now, limit)),
        variants,
        distinct_variants: distinct as u64,
    }
}

/// Whether a case reached one of `activities` (helper for callers building filters).
pub fn reached(case: &Case, activities: &[&str]) -> bool {
    case.events.iter().any(|e| activities.contains(&e.activity.as_str()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::log::Event;

    fn ev(case: &str, act: &str, at: i64, service: Option<i64>) -> Event {
        let mut e = Event::new(case, act, at, "system");
        e.attributes.service_micros = service;
        e
    }

    fn sample() -> EventLog {
        EventLog::from_events(vec![
            ev("1", "a", 0, None),
            ev("1", "b", 10, Some(4)),
            ev("1", "c", 30, Some(20)),
            ev("2", "a", 100, None),
            ev("2", "b", 150, Some(10)),
            ev("2", "b", 160, Some(10)),
            ev("2", "c", 170, Some(10)),
            ev("3", "a", 200, None),
            ev("3", "b", 205, Some(5)),
            ev("3", "c", 300, Some(5)),
        ])
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), 10);
        assert_eq!(percentile(&v, 95), 19);
        assert_eq!(percentile(&v, 100), 20);
        assert_eq!(percentile(&[7], 95), 7);
        let s = Stats::of(vec![3, 1, 2]);
        assert_eq!((s.count, s.mean_micros, s.median_micros, s.p95_micros, s.max_micros), (3, 2, 2, 3, 3));
    }

    #[test]
    fn dfg_counts_and_durations() {
        let g = dfg(&sample());
        let edge = |f: &str, t: &str| g.edges.iter().find(|e| e.from == f && e.to == t).unwrap().clone();
        assert_eq!(edge("a", "b").count, 3);
        assert_eq!(edge("b", "b").count, 1);
        assert_eq!(edge("b", "c").count, 3);
        // a→b gaps 10, 50, 5: mean 21, median 10; waiting = gap − service = 6, 40, 0.
        assert_eq!(edge("a", "b").duration.mean_micros, 21);
        assert_eq!(edge("a", "b").duration.median_micros, 10);
        assert_eq!(edge("a", "b").waiting.total_micros, 46);
        let b = g.activities.iter().find(|a| a.activity == "b").unwrap();
        assert_eq!((b.count, b.cases), (4, 3));
        assert_eq!(g.start_activities, vec![Endpoint { activity: "a".into(), cases: 3 }]);
        // c waits 0 + 0 + 90 = 90, b waits 6 + 40 + 0 + 0 = 46.
        let top = bottlenecks(&g, 10);
        assert_eq!(top[0].activity, "c");
        assert_eq!(top[0].total_waiting_micros, 90);
        assert_eq!(top[1].activity, "b");
    }

    #[test]
    fn variants_rework_sla_and_value_stream() {
        let log = sample();
        let (v, distinct) = variants(&log, 10);
        assert_eq!(distinct, 2);
        assert_eq!(v[0].activities, ["a", "b", "c"]);
        assert_eq!(v[0].cases, 2);
        let (r, with) = rework(&log);
        assert_eq!(with, 1);
        assert_eq!(r, vec![Rework { activity: "b".into(), cases: 1, repetitions: 1 }]);
        let spec = SlaSpec { from: None, to: vec!["c".into()], limit_micros: 50 };
        let report = sla(&log, &spec, 1_000, 5);
        assert_eq!((report.cases, report.met, report.breached), (3, 1, 2));
        assert_eq!(report.worst[0].case_id, "3");
        assert_eq!(report.worst[0].elapsed_micros, 100);
        let open = EventLog::from_events(vec![ev("x", "a", 0, None)]);
        let r = sla(&open, &spec, 60, 5);
        assert_eq!((r.breached, r.open_breaches), (1, 1));
        let vs = value_stream(&log);
        // lead 30 + 70 + 100 = 200; value added (4+20) + (10+10+10) + (5+5) = 64.
        assert_eq!(vs.lead_time.total_micros, 200);
        assert_eq!(vs.value_added.total_micros, 64);
        assert_eq!(vs.process_cycle_efficiency, Some(0.32));
    }

    fn arb_log() -> impl Strategy<Value = EventLog> {
        prop::collection::vec((0u8..6, 0u8..5, 0i64..10_000, prop::option::of(0i64..500)), 0..200).prop_map(|raw| {
            EventLog::from_events(raw.into_iter().map(|(c, a, at, s)| {
                let mut e = Event::new(format!("c{c}"), format!("a{a}"), at, "r");
                e.attributes.service_micros = s;
                e
            }))
        })
    }

    proptest! {
        #[test]
        fn dfg_and_variant_counts_add_up(log in arb_log()) {
            let g = dfg(&log);
            let events = log.event_count() as u64;
            let transitions: u64 = log.cases.iter().map(|c| c.events.len() as u64 - 1).sum();
            prop_assert_eq!(g.activities.iter().map(|a| a.count).sum::<u64>(), events);
            prop_assert_eq!(g.edges.iter().map(|e| e.count).sum::<u64>(), transitions);
            prop_assert_eq!(g.start_activities.iter().map(|e| e.cases).sum::<u64>(), log.cases.len() as u64);
            let (v, distinct) = variants(&log, usize::MAX);
            prop_assert_eq!(v.len(), distinct);
            prop_assert_eq!(v.iter().map(|v| v.cases).sum::<u64>(), log.cases.len() as u64);
            if !log.cases.is_empty() {
                let share: f64 = v.iter().map(|v| v.share).sum();
                prop_assert!((share - 1.0).abs() < 1e-9);
            }
            for a in &g.activities {
                prop_assert!(a.waiting.median_micros <= a.waiting.p95_micros);
                prop_assert!(a.waiting.p95_micros <= a.waiting.max_micros);
                prop_assert!(a.waiting.mean_micros >= 0 && a.service.mean_micros >= 0);
            }
        }

        #[test]
        fn value_added_never_exceeds_lead_time(log in arb_log()) {
            let vs = value_stream(&log);
            prop_assert!(vs.value_added.total_micros <= vs.lead_time.total_micros);
            prop_assert_eq!(vs.value_added.total_micros + vs.waiting.total_micros, vs.lead_time.total_micros);
            if let Some(pce) = vs.process_cycle_efficiency {
                prop_assert!((0.0..=1.0).contains(&pce));
            }
        }

        #[test]
        fn filters_keep_a_subset_and_sla_partitions(log in arb_log(), from in 0i64..10_000, limit in 0i64..5_000) {
            let f = crate::Filter { from: Some(from), ..crate::Filter::default() };
            let sub = log.filtered(&f);
            prop_assert!(sub.cases.iter().all(|c| c.start() >= from && log.cases.contains(c)));
            let spec = SlaSpec { from: None, to: vec!["a1".into()], limit_micros: limit };
            let r = sla(&log, &spec, 20_000, 3);
            prop_assert_eq!(r.met + r.breached, r.cases);
            prop_assert!(r.worst.len() <= 3);
        }
    }
}
