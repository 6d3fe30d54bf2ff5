//! Sliding-window velocity counters (count and amount sum per key) over 1 min, 1 h, 24 h and 30 d.
//!
//! Each key holds one ring of time buckets per window (1 min: 60 x 1 s, 1 h: 60 x 1 min,
//! 24 h: 96 x 15 min, 30 d: 120 x 6 h), updated incrementally in O(1). A window at time `now`
//! sums the buckets whose slot lies in the last `n` bucket slots ending with the one holding
//! `now`, so a window's edge is exact to one bucket width. Events older than a window's reach are
//! ignored by that window; events later than `now` are not counted until their time comes.
//!
//! Keys are sharded over mutex-protected maps, so concurrent updates of different keys rarely
//! contend and updates of the same key are serialised (no lost counts).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// What a counter is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Customer,
    Device,
    Ip,
    Account,
    Card,
    Merchant,
    /// The receiving account of a transfer (money flowing *in*: mule accounts).
    Counterparty,
}

impl KeyKind {
    pub const ALL: [KeyKind; 7] = [
        KeyKind::Customer,
        KeyKind::Device,
        KeyKind::Ip,
        KeyKind::Account,
        KeyKind::Card,
        KeyKind::Merchant,
        KeyKind::Counterparty,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Customer => "customer",
            KeyKind::Device => "device",
            KeyKind::Ip => "ip",
            KeyKind::Account => "account",
            KeyKind::Card => "card",
            KeyKind::Merchant => "merchant",
            KeyKind::Counterparty => "counterparty",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// A sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "24h")]
    OneDay,
    #[serde(rename = "30d")]
    ThirtyDays,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::OneMinute, Window::OneHour, Window::OneDay, Window::ThirtyDays];
    pub fn as_str(self) -> &'static str {
        match self {
            Window::OneMinute => "1m",
            Window::OneHour => "1h",
            Window::OneDay => "24h",
            Window::ThirtyDays => "30d",
        }
    }
    /// (bucket width in ms, number of buckets)
    const fn spec(self) -> (i64, usize) {
        match self {
            Window::OneMinute => (1_000, 60),
            Window::OneHour => (60_000, 60),
            Window::OneDay => (900_000, 96),
            Window::ThirtyDays => (21_600_000, 120),
        }
    }
    pub fn length_ms(self) -> i64 {
        let (w, n) = self.spec();
        w * n as i64
    }
}

/// Count and amount sum (minor units) in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WindowStats {
    pub count: u64,
    pub sum: i64,
}

/// Stats for all windows, in [`Window::ALL`] order.
pub type VelocitySnapshot = [WindowStats; 4];

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    slot: i64,
    count: u64,
    sum: i64,
}

#[derive(Debug)]
struct Counter {
    rings: [Box<[Bucket]>; 4],
    last_ms: i64,
}

impl Counter {
    fn new() -> Self {
        let ring = |w: Window| vec![Bucket { slot: i64::MIN, ..Bucket::default() }; w.spec().1].into_boxed_slice();
        Counter { rings: Window::ALL.map(ring), last_ms: i64::MIN }
    }

    fn add(&mut self, at_ms: i64, amount: i64) {
        self.last_ms = self.last_ms.max(at_ms);
        for (w, ring) in Window::ALL.iter().zip(self.rings.iter_mut()) {
            let (width, n) = w.spec();
            let slot = at_ms.div_euclid(width);
            let b = &mut ring[slot.rem_euclid(n as i64) as usize];
            if b.slot == slot {
                b.count += 1;
                b.sum = b.sum.saturating_add(amount);
            } else if b.slot < slot {
                *b = Bucket { slot, count: 1, sum: amount };
            }
            // else: the ring slot already holds a newer bucket; the event is too old for this window.
        }
    }

    fn query(&self, now_ms: i64) -> VelocitySnapshot {
        let mut out = [WindowStats::default(); 4];
        for ((w, ring), o) in Window::ALL.iter().zip(self.rings.iter()).zip(out.iter_mut()) {
            let (width, n) = w.spec();
            let now_slot = now_ms.div_euclid(width);
            let oldest = now_slot - n as i64;
            for b in ring.iter().filter(|b| b.slot > oldest && b.slot <= now_slot) {
                o.count += b.count;
                o.sum = o.sum.saturating_add(b.sum);
            }
        }
        out
    }
}

type Shard = [HashMap<String, Counter>; 7];

/// Concurrent velocity counters for all [`KeyKind`]s.
pub struct VelocityStore {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for VelocityStore {
    fn default() -> Self {
        Self::new(64)
    }
}

impl std::fmt::Debug for VelocityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VelocityStore").field("shards", &self.shards.len()).field("keys", &self.len()).finish()
    }
}

impl VelocityStore {
    /// A store with `shards` independently locked shards (at least 1).
    pub fn new(shards: usize) -> Self {
        VelocityStore { shards: (0..shards.max(1)).map(|_| Mutex::new(Shard::default())).collect() }
    }

    fn shard(&self, kind: KeyKind, id: &str) -> &Mutex<Shard> {
        let mut h = DefaultHasher::new();
        kind.hash(&mut h);
        id.hash(&mut h);
        &self.shards[(h.finish() % self.shards.len() as u64) as usize]
    }

    /// Records one event of `amount` minor units for the key at `at`.
    pub fn record(&self, kind: KeyKind, id: &str, at: DateTime<Utc>, amount: i64) {
        let mut shard = self.shard(kind, id).lock();
        Self::counter(&mut shard, kind, id).add(at.timestamp_millis(), amount);
    }

    /// Records the event and returns the stats at `at` including it, under one lock.
    pub fn observe(&self, kind: KeyKind, id: &str, at: DateTime<Utc>, amount: i64) -> VelocitySnapshot {
        let mut shard = self.shard(kind, id).lock();
        let c = Self::counter(&mut shard, kind, id);
        let ms = at.timestamp_millis();
        c.add(ms, amount);
        c.query(ms)
    }

    /// Stats for the key at `now` (all zero for an unknown key).
    pub fn query(&self, kind: KeyKind, id: &str, now: DateTime<Utc>) -> VelocitySnapshot {
        let shard = self.shard(kind, id).lock();
        shard[kind.index()].get(id).map(|c| c.query(now.timestamp_millis())).unwrap_or_default()
    }

    /// Stats of one window.
    pub fn window(&self, kind: KeyKind, id: &str, window: Window, now: DateTime<Utc>) -> WindowStats {
        self.query(kind, id, now)[window as usize]
    }

    /// Drops keys with no event in the last 30 days; returns how many were dropped.
    pub fn purge_idle(&self, now: DateTime<Utc>) -> usize {
        let cutoff = now.timestamp_millis() - Window::ThirtyDays.length_ms();
        let mut dropped = 0;
        for shard in self.shards.iter() {
            for map in shard.lock().iter_mut() {
                let before = map.len();
                map.retain(|_, c| c.last_ms > cutoff);
                dropped += before - map.len();
            }
        }
        dropped
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().iter().map(HashMap::len).sum::<usize>()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn counter<'a>(shard: &'a mut Shard, kind: KeyKind, id: &str) -> &'a mut Counter {
        let map = &mut shard[kind.index()];
        if !map.contains_key(id) {
            map.insert(id.to_string(), Counter::new());
        }
        map.get_mut(id).expect("inserted above")
    }
}

/// Name of the velocity feature for a key kind, window and metric, e.g.
/// `velocity.customer.count.1h` or `velocity.device.sum.24h` (sums in base-currency minor units).
pub fn velocity_feature(kind: KeyKind, window: Window, sum: bool) -> &'static str {
    static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
        let mut v = Vec::with_capacity(KeyKind::ALL.len() * 8);
        for k in KeyKind::ALL {
            for w in Window::ALL {
                for m in ["count", "sum"] {
                    v.push(format!("velocity.{}.{m}.{}", k.as_str(), w.as_str()));
                }
            }
        }
        v
    });
    &NAMES[(kind as usize) * 8 + (window as usize) * 2 + usize::from(sum)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use chrono::{Duration, TimeZone};
    use std::sync::Arc;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn windows_slide_with_the_clock() {
        let clock = ManualClock::new(start());
        let v = VelocityStore::new(4);
        v.record(KeyKind::Customer, "c1", clock.now(), 100);
        clock.advance(Duration::seconds(30));
        let s = v.observe(KeyKind::Customer, "c1", clock.now(), 250);
        assert_eq!(s[0], WindowStats { count: 2, sum: 350 });
        assert_eq!(s[3], WindowStats { count: 2, sum: 350 });
        // 45 s later the first event has left the 1-minute window, not the 1-hour one.
        clock.advance(Duration::seconds(45));
        let s = v.query(KeyKind::Customer, "c1", clock.now());
        assert_eq!(s[0], WindowStats { count: 1, sum: 250 });
        assert_eq!(s[1].count, 2);
        clock.advance(Duration::minutes(61));
        let s = v.query(KeyKind::Customer, "c1", clock.now());
        assert_eq!((s[0].count, s[1].count, s[2].count, s[3].count), (0, 0, 2, 2));
        clock.advance(Duration::hours(24));
        assert_eq!(v.window(KeyKind::Customer, "c1", Window::OneDay, clock.now()).count, 0);
        assert_eq!(v.window(KeyKind::Customer, "c1", Window::ThirtyDays, clock.now()).sum, 350);
        clock.advance(Duration::days(30));
        assert_eq!(v.query(KeyKind::Customer, "c1", clock.now()), VelocitySnapshot::default());
        // Keys are independent per kind.
        assert_eq!(v.query(KeyKind::Device, "c1", start()), VelocitySnapshot::default());
        assert_eq!(v.purge_idle(clock.now()), 1);
        assert!(v.is_empty());
    }

    #[test]
    fn ring_slots_are_reused_after_a_full_turn() {
        let v = VelocityStore::new(1);
        let t0 = start();
        v.record(KeyKind::Ip, "1.2.3.4", t0, 1);
        // Exactly one minute later the same 1 s slot is reused for the new bucket.
        let t1 = t0 + Duration::seconds(60);
        let s = v.observe(KeyKind::Ip, "1.2.3.4", t1, 2);
        assert_eq!(s[0], WindowStats { count: 1, sum: 2 });
        assert_eq!(s[1], WindowStats { count: 2, sum: 3 });
        // A late event older than the minute window is ignored there but counted in the hour.
        v.record(KeyKind::Ip, "1.2.3.4", t0, 4);
        let s = v.query(KeyKind::Ip, "1.2.3.4", t1);
        assert_eq!(s[0].count, 1);
        assert_eq!(s[1].count, 3);
    }

    #[test]
    fn concurrent_updates_are_not_lost() {
        let v = Arc::new(VelocityStore::new(8));
        let t = start();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let v = Arc::clone(&v);
                std::thread::spawn(move || {
                    for k in 0..1_000 {
                        v.record(KeyKind::Merchant, "m1", t + Duration::milliseconds(k), 1);
                        v.record(KeyKind::Device, &format!("d{i}"), t, 2);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = v.query(KeyKind::Merchant, "m1", t + Duration::seconds(1));
        assert_eq!(s[0], WindowStats { count: 8_000, sum: 8_000 });
        for i in 0..8 {
            assert_eq!(v.window(KeyKind::Device, &format!("d{i}"), Window::OneHour, t).sum, 2_000);
        }
        assert_eq!(v.len(), 9);
    }
}
