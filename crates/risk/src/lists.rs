//! Black, white and watch lists of devices, IPs, ID numbers, accounts, phones and customers,
//! with optional expiry.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Always reject.
    Black,
    /// Trusted: allow unless also blacklisted.
    White,
    /// Send to review.
    Watch,
}

/// What a list entry identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListSubject {
    Device,
    Ip,
    IdNumber,
    Account,
    Phone,
    Customer,
}

impl ListSubject {
    pub const ALL: [ListSubject; 6] = [
        ListSubject::Device,
        ListSubject::Ip,
        ListSubject::IdNumber,
        ListSubject::Account,
        ListSubject::Phone,
        ListSubject::Customer,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ListSubject::Device => "device",
            ListSubject::Ip => "ip",
            ListSubject::IdNumber => "id_number",
            ListSubject::Account => "account",
            ListSubject::Phone => "phone",
            ListSubject::Customer => "customer",
        }
    }
}

/// One list entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub kind: ListKind,
    pub subject: ListSubject,
    /// What lookups match. For ID numbers and phones the risk platform stores a pseudonym
    /// (`bi:<hex>`, see [`crate::RiskEvent::pseudonymised`]), never the value.
    pub value: String,
    /// The value in clear when `value` is a pseudonym, for display only (stored sealed);
    /// matching never looks at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    pub reason: String,
    pub added_at: DateTime<Utc>,
    /// `None` = never expires. An entry is live while `now < expires_at`.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ListEntry {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// A live entry matched by a lookup. Values are not repeated here: they may be sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListHit {
    pub kind: ListKind,
    pub subject: ListSubject,
    pub reason: String,
}

/// Thread-safe lists; at most one entry per (kind, subject, value).
#[derive(Debug, Default)]
pub struct Lists {
    by_subject: RwLock<[HashMap<String, Vec<ListEntry>>; 6]>,
}

impl Lists {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the entry of the same kind for the same subject value.
    pub fn add(&self, entry: ListEntry) {
        let mut g = self.by_subject.write();
        let entries = g[entry.subject as usize].entry(entry.value.clone()).or_default();
        entries.retain(|e| e.kind != entry.kind);
        entries.push(entry);
    }

    /// Removes an entry; returns whether one existed.
    pub fn remove(&self, kind: ListKind, subject: ListSubject, value: &str) -> bool {
        let mut g = self.by_subject.write();
        let map = &mut g[subject as usize];
        let Some(entries) = map.get_mut(value) else { return false };
        let before = entries.len();
        entries.retain(|e| e.kind != kind);
        let removed = entries.len() < before;
        if entries.is_empty() {
            map.remove(value);
        }
        removed
    }

    /// Appends the live entries for `value` to `out`.
    pub fn check(&self, subject: ListSubject, value: &str, now: DateTime<Utc>, out: &mut Vec<ListHit>) {
        let g = self.by_subject.read();
        if let Some(entries) = g[subject as usize].get(value) {
            out.extend(entries.iter().filter(|e| e.is_live(now)).map(|e| ListHit {
                kind: e.kind,
                subject,
                reason: e.reason.clone(),
            }));
        }
    }

    /// Whether `value` is on the `kind` list at `now`.
    pub fn contains(&self, kind: ListKind, subject: ListSubject, value: &str, now: DateTime<Utc>) -> bool {
        let g = self.by_subject.read();
        g[subject as usize].get(value).is_some_and(|es| es.iter().any(|e| e.kind == kind && e.is_live(now)))
    }

    /// Drops expired entries; returns how many.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> usize {
        let mut g = self.by_subject.write();
        let mut n = 0;
        for map in g.iter_mut() {
            for entries in map.values_mut() {
                let before = entries.len();
                entries.retain(|e| e.is_live(now));
                n += before - entries.len();
            }
            map.retain(|_, es| !es.is_empty());
        }
        n
    }

    /// All entries (for persistence), sorted by subject, value and kind.
    pub fn entries(&self) -> Vec<ListEntry> {
        let g = self.by_subject.read();
        let mut v: Vec<ListEntry> = g.iter().flat_map(|m| m.values().flatten().cloned()).collect();
        v.sort_by(|a, b| (a.subject, &a.value, a.kind).cmp(&(b.subject, &b.value, b.kind)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn entries_expire_and_can_be_removed() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let lists = Lists::new();
        lists.add(ListEntry {
            kind: ListKind::Black,
            subject: ListSubject::Device,
            value: "dev-bad".into(),
            display: None,
            reason: "chargeback fraud".into(),
            added_at: t,
            expires_at: Some(t + Duration::days(7)),
        });
        lists.add(ListEntry {
            kind: ListKind::Watch,
            subject: ListSubject::Device,
            value: "dev-bad".into(),
            display: None,
            reason: "emulator".into(),
            added_at: t,
            expires_at: None,
        });
        let mut hits = Vec::new();
        lists.check(ListSubject::Device, "dev-bad", t + Duration::days(1), &mut hits);
        assert_eq!(hits.len(), 2);
        assert!(lists.contains(ListKind::Black, ListSubject::Device, "dev-bad", t));
        assert!(!lists.contains(ListKind::Black, ListSubject::Ip, "dev-bad", t));
        assert!(!lists.contains(ListKind::Black, ListSubject::Device, "dev-bad", t + Duration::days(7)));
        assert_eq!(lists.purge_expired(t + Duration::days(8)), 1);
        assert_eq!(lists.entries().len(), 1);
        assert!(lists.remove(ListKind::Watch, ListSubject::Device, "dev-bad"));
        assert!(!lists.remove(ListKind::Watch, ListSubject::Device, "dev-bad"));
        assert!(lists.entries().is_empty());
    }
}
