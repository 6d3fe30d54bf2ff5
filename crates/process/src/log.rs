//! An event log as cases, and the filter every analysis takes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Attributes;

/// One event of a log (the bank's own or an imported one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub case_id: String,
    pub activity: String,
    /// UTC microseconds since the epoch.
    pub at: i64,
    pub resource: String,
    pub attributes: Attributes,
}

impl Event {
    pub fn new(case_id: impl Into<String>, activity: impl Into<String>, at: i64, resource: impl Into<String>) -> Self {
        Event {
            case_id: case_id.into(),
            activity: activity.into(),
            at,
            resource: resource.into(),
            attributes: Attributes::default(),
        }
    }

    /// Service time (see the crate docs): measured, else 0.
    pub fn service(&self) -> i64 {
        self.attributes.service_micros.unwrap_or(0).max(0)
    }
}

/// One case: its events in time order (ties keep the order they were recorded in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub id: String,
    pub events: Vec<Event>,
}

impl Case {
    pub fn start(&self) -> i64 {
        self.events.first().map_or(0, |e| e.at)
    }
    pub fn end(&self) -> i64 {
        self.events.last().map_or(0, |e| e.at)
    }
    pub fn lead_time(&self) -> i64 {
        self.end() - self.start()
    }
    /// Waiting time before event `i`: its duration since the previous event less its service
    /// time (never negative). The first event waits 0.
    pub fn waiting(&self, i: usize) -> i64 {
        if i == 0 {
            return 0;
        }
        let gap = self.events[i].at - self.events[i - 1].at;
        (gap - self.events[i].service()).max(0)
    }
    /// Service time of event `i`, capped by its duration since the previous event.
    pub fn service(&self, i: usize) -> i64 {
        let s = self.events[i].service();
        if i == 0 {
            s
        } else {
            s.min((self.events[i].at - self.events[i - 1].at).max(0))
        }
    }
    /// The first value of an attribute over the case's events.
    fn attribute<'a>(&'a self, get: impl Fn(&'a Attributes) -> Option<&'a String>) -> impl Iterator<Item = &'a String> {
        self.events.iter().filter_map(move |e| get(&e.attributes))
    }
}

/// A log: cases in order of their first event (then id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventLog {
    pub cases: Vec<Case>,
}

impl EventLog {
    /// Groups events into cases. Within a case events are ordered by time; equal times keep
    /// the order of `events` (the order they were recorded in).
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> EventLog {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut cases: Vec<Case> = Vec::new();
        for e in events {
            let at = *index.entry(e.case_id.clone()).or_insert_with(|| {
                cases.push(Case { id: e.case_id.clone(), events: Vec::new() });
                cases.len() - 1
            });
            cases[at].events.push(e);
        }
        for c in &mut cases {
            c.events.sort_by_key(|e| e.at);
        }
        cases.sort_by(|a, b| a.start().cmp(&b.start()).then_with(|| a.id.cmp(&b.id)));
        EventLog { cases }
    }

    pub fn event_count(&self) -> usize {
        self.cases.iter().map(|c| c.events.len()).sum()
    }

    /// The cases that pass `filter`.
    pub fn filtered(&self, filter: &Filter) -> EventLog {
        EventLog { cases: self.cases.iter().filter(|c| filter.accepts(c)).cloned().collect() }
    }
}

/// Which cases an analysis looks at. Every field narrows; an empty filter keeps everything.
/// Attribute filters match a case when any of its events carries the value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Filter {
    pub product: Option<String>,
    pub channel: Option<String>,
    pub outcome: Option<String>,
    /// A case one of whose events this resource performed.
    pub resource: Option<String>,
    /// Cases that started at or after this time (UTC microseconds).
    pub from: Option<i64>,
    /// Cases that started before this time (UTC microseconds).
    pub to: Option<i64>,
}

impl Filter {
    pub fn accepts(&self, case: &Case) -> bool {
        let has = |want: &Option<String>, get: fn(&Attributes) -> Option<&String>| {
            want.as_ref().is_none_or(|w| case.attribute(get).any(|v| v == w))
        };
        has(&self.product, |a| a.product.as_ref())
            && has(&self.channel, |a| a.channel.as_ref())
            && has(&self.outcome, |a| a.outcome.as_ref())
            && self.resource.as_ref().is_none_or(|r| case.events.iter().any(|e| &e.resource == r))
            && self.from.is_none_or(|f| case.start() >= f)
            && self.to.is_none_or(|t| case.start() < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_group_sort_and_filter() {
        let mut a2 = Event::new("a", "y", 20, "r1");
        a2.attributes.product = Some("p".into());
        let log = EventLog::from_events(vec![
            Event::new("b", "x", 5, "system"),
            a2,
            Event::new("a", "x", 10, "system"),
            Event::new("b", "z", 5, "system"),
        ]);
        assert_eq!(log.cases.len(), 2);
        assert_eq!(log.cases[0].id, "b");
        let acts: Vec<&str> = log.cases[0].events.iter().map(|e| e.activity.as_str()).collect();
        assert_eq!(acts, ["x", "z"], "ties keep the recorded order");
        assert_eq!(log.cases[1].lead_time(), 10);
        let only_p = log.filtered(&Filter { product: Some("p".into()), ..Filter::default() });
        assert_eq!(only_p.cases.len(), 1);
        let by_r1 = log.filtered(&Filter { resource: Some("r1".into()), ..Filter::default() });
        assert_eq!(by_r1.cases[0].id, "a");
        let window = log.filtered(&Filter { from: Some(6), to: Some(11), ..Filter::default() });
        assert_eq!(window.cases.len(), 1);
        assert_eq!(window.cases[0].id, "a");
    }
}
