//! The in-process decision function: lists + velocity + relationship graph + model + rules.

use std::sync::Arc;
use std::time::Instant;

use chrono::Timelike;
use ml::{Classifier, ModelArtefact};
use money::Currency;
use parking_lot::RwLock;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::cases::{Case, CaseBook, Resolution};
use crate::clock::Clock;
use crate::graph::{CustomerFlag, NodeKind, RelationshipGraph, SharedStats};
use crate::lists::{ListHit, ListKind, ListSubject, Lists};
use crate::rules::{RuleSetRegistry, ScoreThresholds};
use crate::velocity::{velocity_feature, KeyKind, VelocityStore, Window};
use crate::{Decision, EventKind, FeatureVector, Outcome, Reason, ReasonSource, RiskError, RiskEvent};

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Velocity sums add amounts in this currency only (others still count); FX comes later.
    pub base_currency: Currency,
    /// Risk points for a model probability of 1 (points = probability x this).
    pub model_points: f64,
    /// How many of the model's top positive contributions become reason codes.
    pub model_reasons: usize,
    /// Risk points per flagged customer reachable through a shared device, phone or IP.
    pub graph_points_per_flagged: f64,
    /// Thresholds used when no rule set is active.
    pub default_thresholds: ScoreThresholds,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            base_currency: Currency::CNY,
            model_points: 100.0,
            model_reasons: 3,
            graph_points_per_flagged: 15.0,
            default_thresholds: ScoreThresholds::default(),
        }
    }
}

fn kind_feature(k: EventKind) -> &'static str {
    match k {
        EventKind::Payment => "event.kind.payment",
        EventKind::Transfer => "event.kind.transfer",
        EventKind::Login => "event.kind.login",
        EventKind::LoanApplication => "event.kind.loan_application",
        EventKind::AccountOpening => "event.kind.account_opening",
    }
}

fn channel_feature(c: crate::Channel) -> &'static str {
    use crate::Channel::*;
    match c {
        Web => "event.channel.web",
        Mobile => "event.channel.mobile",
        Branch => "event.channel.branch",
        Atm => "event.channel.atm",
        Pos => "event.channel.pos",
        OpenBanking => "event.channel.open_banking",
        CallCenter => "event.channel.call_center",
    }
}

/// The velocity keys of an event (empty values are no key).
fn velocity_keys<'a>(event: &'a RiskEvent, ip: Option<&'a str>) -> [(KeyKind, Option<&'a str>); 7] {
    [
        (KeyKind::Customer, Some(event.customer_id.as_str())),
        (KeyKind::Device, event.device_fingerprint.as_deref()),
        (KeyKind::Ip, ip),
        (KeyKind::Account, event.account_id.as_deref()),
        (KeyKind::Card, event.card_id.as_deref()),
        (KeyKind::Merchant, event.merchant.as_ref().map(|m| m.id.as_str())),
        (KeyKind::Counterparty, event.counterparty_account.as_deref()),
    ]
    .map(|(k, v)| (k, v.filter(|v| !v.is_empty())))
}

/// The attributes an event links to its customer in the relationship graph.
fn graph_attributes<'a>(
    event: &'a RiskEvent,
    ip: Option<&'a str>,
    phone: Option<&'a str>,
) -> [(NodeKind, Option<&'a str>); 4] {
    [
        (NodeKind::Device, event.device_fingerprint.as_deref()),
        (NodeKind::Ip, ip),
        (NodeKind::Phone, phone),
        (NodeKind::Account, event.account_id.as_deref()),
    ]
}

/// Money moving between two accounts links them in the graph (mule chains, funnels).
fn transfer_link(event: &RiskEvent) -> Option<(&str, &str)> {
    match (event.kind, event.account_id.as_deref(), event.counterparty_account.as_deref()) {
        (EventKind::Transfer, Some(a), Some(b)) => Some((a, b)),
        _ => None,
    }
}

fn link_event(
    g: &mut RelationshipGraph,
    customer: &str,
    attrs: [(NodeKind, Option<&str>); 4],
    transfer: Option<(&str, &str)>,
) {
    for (k, v) in attrs {
        if let Some(v) = v {
            g.link_customer(customer, k, v);
        }
    }
    if let Some((a, b)) = transfer {
        g.link_transfer(a, b);
    }
}

/// A rejected loan application or account opening marks its customer for the graph's
/// "shares a device with N customers, M of them rejected" features.
fn flags_customer(event: &RiskEvent, outcome: Outcome) -> bool {
    outcome == Outcome::Reject && matches!(event.kind, EventKind::LoanApplication | EventKind::AccountOpening)
}

/// The real-time risk engine. All methods take `&self` and are safe to call from many threads.
pub struct RiskEngine {
    pub config: EngineConfig,
    clock: Arc<dyn Clock>,
    pub velocity: VelocityStore,
    pub lists: Lists,
    pub graph: RwLock<RelationshipGraph>,
    pub rules: RuleSetRegistry,
    pub cases: CaseBook,
    model: RwLock<Option<Arc<ModelArtefact>>>,
}

impl std::fmt::Debug for RiskEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskEngine").field("config", &self.config).field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl RiskEngine {
    pub fn new(config: EngineConfig, clock: Arc<dyn Clock>) -> Self {
        RiskEngine {
            config,
            clock,
            velocity: VelocityStore::default(),
            lists: Lists::new(),
            graph: RwLock::new(RelationshipGraph::new()),
            rules: RuleSetRegistry::default(),
            cases: CaseBook::new(),
            model: RwLock::new(None),
        }
    }

    /// Activates a model; its inputs are looked up by feature name (absent features read as 0).
    pub fn set_model(&self, artefact: ModelArtefact) {
        *self.model.write() = Some(Arc::new(artefact));
    }

    /// The active model, if any.
    pub fn model(&self) -> Option<Arc<ModelArtefact>> {
        self.model.read().clone()
    }

    pub fn clear_model(&self) {
        *self.model.write() = None;
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Parses, validates and decides a JSON event.
    pub fn decide_json(&self, text: &str) -> Result<Decision, RiskError> {
        self.decide(&RiskEvent::from_json(text)?)
    }

    /// Decides one event, updating velocity counters and the relationship graph, and opening a
    /// case when the outcome is `review`.
    ///
    /// Order: features (event, lists, velocity, graph) -> model points -> rules. The outcome
    /// comes from the rule set (or the default thresholds), then list overrides apply: a black
    /// list hit rejects, else a white list hit allows, else a watch list hit reviews at least.
    pub fn decide(&self, event: &RiskEvent) -> Result<Decision, RiskError> {
        let started = Instant::now();
        event.validate()?;
        let now = self.clock.now();
        let mut f = FeatureVector::new();
        let mut reasons = Vec::new();

        // Event features.
        f.set(kind_feature(event.kind), 1.0);
        f.set(channel_feature(event.channel), 1.0);
        f.set("event.hour_utc", f64::from(event.occurred_at.hour()));
        let base_amount = self.base_amount(event);
        if let Some(a) = event.amount {
            f.set("event.amount", a.to_decimal().to_f64().unwrap_or(f64::MAX));
            let in_base = a.currency == self.config.base_currency;
            f.set("event.amount_in_base_currency", f64::from(u8::from(in_base)));
        }
        if let (Some(g), Some(m)) = (&event.geo, &event.merchant) {
            if let (Some(a), Some(b)) = (&g.country, &m.country) {
                f.set("event.geo_merchant_country_mismatch", f64::from(u8::from(a != b)));
            }
        }

        // Lists.
        let ip = event.ip.map(|ip| ip.to_string());
        let subjects = [
            (ListSubject::Customer, Some(event.customer_id.as_str())),
            (ListSubject::Device, event.device_fingerprint.as_deref()),
            (ListSubject::Ip, ip.as_deref()),
            (ListSubject::IdNumber, event.id_number.as_deref()),
            (ListSubject::Account, event.account_id.as_deref()),
            (ListSubject::Account, event.counterparty_account.as_deref()),
            (ListSubject::Phone, event.phone.as_deref()),
        ];
        let mut hits: Vec<ListHit> = Vec::new();
        for (subject, value) in subjects {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                self.lists.check(subject, v, now, &mut hits);
            }
        }
        let count = |k: ListKind| hits.iter().filter(|h| h.kind == k).count();
        let (black, white, watch) = (count(ListKind::Black), count(ListKind::White), count(ListKind::Watch));
        f.set("list.black.hits", black as f64);
        f.set("list.white.hits", white as f64);
        f.set("list.watch.hits", watch as f64);
        for h in hits.iter().filter(|h| h.kind != ListKind::White) {
            let (code, list) = match h.kind {
                ListKind::Black => ("LIST_BLACK_", "black"),
                _ => ("LIST_WATCH_", "watch"),
            };
            reasons.push(Reason {
                code: format!("{code}{}", h.subject.as_str().to_uppercase()),
                explanation: format!("{} is on the {list} list: {}", h.subject.as_str(), h.reason),
                source: ReasonSource::List,
                weight: 0.0,
            });
        }

        // Velocity (includes this event).
        for (kind, id) in velocity_keys(event, ip.as_deref()) {
            if let Some(id) = id {
                let snap = self.velocity.observe(kind, id, now, base_amount);
                for (w, s) in Window::ALL.iter().zip(snap) {
                    f.set(velocity_feature(kind, *w, false), s.count as f64);
                    f.set(velocity_feature(kind, *w, true), s.sum as f64);
                }
            }
        }

        // Relationship graph. Most events only re-use links the graph already has, so the links
        // are checked under the read lock and the write lock is taken only when one is new.
        let c = event.customer_id.as_str();
        let phone = event.phone.as_deref();
        let attrs = graph_attributes(event, ip.as_deref(), phone);
        let transfer_link = transfer_link(event);
        let graph_read = |g: &RelationshipGraph, new: [bool; 4]| {
            let devices = g.attribute_count(c, NodeKind::Device);
            let ips = g.attribute_count(c, NodeKind::Ip);
            (g.customer_features(c), new, devices, ips)
        };
        let (gf, new_links, devices, ips) = {
            let g = self.graph.read();
            let new = attrs.map(|(k, v)| v.is_some_and(|v| !g.has_link((NodeKind::Customer, c), (k, v))));
            let new_transfer =
                transfer_link.is_some_and(|(a, b)| !g.has_link((NodeKind::Account, a), (NodeKind::Account, b)));
            if !new.contains(&true) && !new_transfer {
                graph_read(&g, new)
            } else {
                drop(g);
                let mut g = self.graph.write();
                link_event(&mut g, c, attrs, transfer_link);
                graph_read(&g, new)
            }
        };
        if event.device_fingerprint.is_some() {
            f.set("graph.device.new_for_customer", f64::from(u8::from(new_links[0] && devices > 1)));
        }
        if ip.is_some() {
            f.set("graph.ip.new_for_customer", f64::from(u8::from(new_links[1] && ips > 1)));
        }
        f.set("graph.customer.devices", f64::from(devices));
        let mut base_score = 0.0;
        let shared: [(&str, &'static str, &'static str, SharedStats); 3] = [
            ("device", "graph.device.shared_customers", "graph.device.shared_flagged", gf.device),
            ("phone", "graph.phone.shared_customers", "graph.phone.shared_flagged", gf.phone),
            ("ip", "graph.ip.shared_customers", "graph.ip.shared_flagged", gf.ip),
        ];
        for (what, n_customers, n_flagged, s) in shared {
            f.set(n_customers, f64::from(s.customers));
            f.set(n_flagged, f64::from(s.flagged));
            if s.flagged > 0 {
                let weight = f64::from(s.flagged) * self.config.graph_points_per_flagged;
                base_score += weight;
                reasons.push(Reason {
                    code: format!("GRAPH_SHARED_{}_FLAGGED", what.to_uppercase()),
                    explanation: format!(
                        "shares a {what} with {} customers, {} of them rejected or confirmed fraud",
                        s.customers, s.flagged
                    ),
                    source: ReasonSource::Graph,
                    weight,
                });
            }
        }
        f.set("graph.component.customers", f64::from(gf.component_customers));
        f.set("graph.component.flagged", f64::from(gf.component_flagged));

        // Model.
        let model = self.model.read().clone();
        let mut model_probability = None;
        if let Some(m) = &model {
            let x: Vec<f64> = m.feature_names.iter().map(|n| f.get(n).unwrap_or(0.0)).collect();
            let p = m.model.predict_proba(&x)?;
            model_probability = Some(p);
            f.set("model.probability", p);
            base_score += p * self.config.model_points;
            let (_, contrib) = m.model.contributions(&x)?;
            let mut top: Vec<(usize, f64)> = contrib.into_iter().enumerate().filter(|(_, c)| *c > 0.0).collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1));
            for (i, c) in top.into_iter().take(self.config.model_reasons) {
                let name = &m.feature_names[i];
                reasons.push(Reason {
                    code: format!("MODEL_{}", name.to_uppercase().replace('.', "_")),
                    explanation: format!("{name} = {} raised the model's fraud score", x[i]),
                    source: ReasonSource::Model,
                    weight: c,
                });
            }
        }

        // Rules.
        let rule_set = self.rules.active();
        let (mut outcome, score) = match &rule_set {
            Some(rs) => {
                let ev = rs.evaluate(&f, base_score);
                for &i in &ev.hits {
                    let r = &rs.rules[i].rule;
                    reasons.push(Reason {
                        code: r.reason_code.clone(),
                        explanation: r.explanation.clone(),
                        source: ReasonSource::Rule,
                        weight: r.weight,
                    });
                }
                (ev.outcome, ev.score)
            }
            None => {
                let t = self.config.default_thresholds;
                let o = if base_score >= t.reject_at {
                    Outcome::Reject
                } else if base_score >= t.review_at {
                    Outcome::Review
                } else {
                    Outcome::Allow
                };
                (o, base_score)
            }
        };
        if black > 0 {
            outcome = Outcome::Reject;
        } else if white > 0 {
            outcome = Outcome::Allow;
        } else if watch > 0 {
            outcome = outcome.max(Outcome::Review);
        }

        if flags_customer(event, outcome) {
            self.graph.write().flag_customer(&event.customer_id, CustomerFlag::Rejected);
        }

        let mut decision = Decision {
            event_id: event.event_id.clone(),
            customer_id: event.customer_id.clone(),
            kind: event.kind,
            outcome,
            score,
            model_probability,
            base_score,
            reasons,
            rule_set: rule_set.as_ref().map(|r| r.name.clone()),
            rule_set_version: rule_set.as_ref().map(|r| r.version),
            model: model.as_ref().map(|m| format!("{}@{}", m.name, m.version)),
            decided_at: now,
            elapsed_micros: 0,
            case_id: None,
            features: f,
        };
        decision.case_id = self.cases.open_from(&decision);
        decision.elapsed_micros = started.elapsed().as_micros() as u64;
        Ok(decision)
    }

    /// Feeds a decision made earlier (by this process before a restart, or by another node)
    /// back into the velocity counters and the relationship graph, exactly as `decide` recorded
    /// it: the same keys, amounts and links, at the time it was decided, and a rejected
    /// application flags its customer again. Call in decision order. Lists, rules, the model and
    /// cases are untouched: they are loaded from their own tables.
    pub fn replay(&self, event: &RiskEvent, decided_at: chrono::DateTime<chrono::Utc>, outcome: Outcome) {
        let ip = event.ip.map(|ip| ip.to_string());
        let cutoff = self.clock.now() - chrono::Duration::milliseconds(Window::ThirtyDays.length_ms());
        if decided_at > cutoff {
            let amount = self.base_amount(event);
            for (kind, id) in velocity_keys(event, ip.as_deref()) {
                if let Some(id) = id {
                    self.velocity.record(kind, id, decided_at, amount);
                }
            }
        }
        let phone = event.phone.as_deref();
        let attrs = graph_attributes(event, ip.as_deref(), phone);
        let mut g = self.graph.write();
        link_event(&mut g, &event.customer_id, attrs, transfer_link(event));
        if flags_customer(event, outcome) {
            g.flag_customer(&event.customer_id, CustomerFlag::Rejected);
        }
    }

    /// Amount that velocity sums add: minor units in the base currency, 0 otherwise.
    fn base_amount(&self, event: &RiskEvent) -> i64 {
        event.amount.filter(|a| a.currency == self.config.base_currency).map_or(0, |a| a.minor)
    }

    /// Resolves a case; confirmed fraud flags the customer in the relationship graph.
    pub fn resolve_case(&self, id: u64, resolution: Resolution, analyst: &str, note: &str) -> Result<Case, RiskError> {
        let case = self.cases.resolve(id, resolution, analyst, note, self.clock.now())?;
        if resolution == Resolution::ConfirmedFraud {
            self.graph.write().flag_customer(&case.customer_id, CustomerFlag::ConfirmedFraud);
        }
        Ok(case)
    }
}
