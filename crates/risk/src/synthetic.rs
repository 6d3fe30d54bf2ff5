//! A seeded, reproducible, labelled event history for training and demos, and the training
//! pipeline that turns it into model artefacts.
//!
//! The history covers 30 days from 2026-01-01 and mixes:
//! * **legitimate customers**: logins, card payments, small peer transfers and the odd loan
//!   application, each from one or two own devices and a home IP (some households share a device);
//! * **fraud rings**: 5-10 fresh customers on one shared device farm and IP opening accounts and
//!   applying for loans within hours; about half are confirmed (flagged in the graph) soon after,
//!   so later members see flagged neighbours;
//! * **account takeovers**: an established customer logs in from a new device and a new IP and
//!   moves a large amount out within minutes;
//! * **mule chains**: victims' transfers funnelled into the same few mule accounts, which forward
//!   the money along a chain.
//!
//! Every event is labelled, with realistic noise: 5% of fraud events are labelled legitimate
//! (never reported) and 0.5% of legitimate ones fraud (disputes). [`featurize`] replays the events through a fresh
//! [`RiskEngine`] (velocity, lists, graph; no rules, no model) on a clock that follows the
//! events, so each row holds exactly the features the engine would have seen at that moment.
//! [`train`] fits a WoE scorecard and a GBDT on a seeded split and evaluates both on the held-out
//! part (AUC, KS, precision / recall at the threshold).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ml::{Dataset, Gbdt, GbdtConfig, ModelArtefact, Scorecard, ScorecardConfig};
use money::{Amount, Currency};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::rules::{ConditionSpec, Rule, RuleAction, RuleSet, ScoreThresholds};
use crate::{
    Channel, CustomerFlag, EngineConfig, EventKind, FeatureVector, ManualClock, Merchant, RiskEngine, RiskError,
    RiskEvent,
};

/// Which story an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Legitimate,
    FraudRing,
    AccountTakeover,
    MuleChain,
}

/// One generated event with its ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledEvent {
    pub event: RiskEvent,
    pub is_fraud: bool,
    pub scenario: Scenario,
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryConfig {
    pub seed: u64,
    /// Approximate number of events (the result has at least this many).
    pub events: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { seed: 42, events: 50_000 }
    }
}

/// Start of the synthetic history.
pub fn history_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

const SPAN_SECS: i64 = 30 * 86_400;

struct Legit {
    id: String,
    account: String,
    card: String,
    devices: Vec<String>,
    ip: String,
    peers: Vec<String>,
    income: f64,
}

fn ip(rng: &mut ChaCha8Rng, private: bool) -> String {
    if private {
        format!("10.{}.{}.{}", rng.gen_range(0..255), rng.gen_range(0..255), rng.gen_range(1..255))
    } else {
        format!(
            "{}.{}.{}.{}",
            rng.gen_range(100..223),
            rng.gen_range(0..255),
            rng.gen_range(0..255),
            rng.gen_range(1..255)
        )
    }
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (sigma * z).exp()
}

fn cny(yuan: f64) -> Option<Amount> {
    Some(Amount::new(((yuan * 100.0).round() as i64).max(1), Currency::CNY))
}

fn id_number(rng: &mut ChaCha8Rng) -> String {
    format!("1101011990{:08}", rng.gen_range(0..100_000_000u32))
}

fn phone(rng: &mut ChaCha8Rng) -> String {
    format!("+86138{:08}", rng.gen_range(0..100_000_000u32))
}

/// Generates the labelled history, sorted by time (ids are unique and reproducible).
pub fn generate(config: &HistoryConfig) -> Vec<LabelledEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let start = history_start();
    let n_legit = (config.events / 25).max(40);
    let mut legit: Vec<Legit> = (0..n_legit)
        .map(|i| Legit {
            id: format!("C-L{i:06}"),
            account: format!("A-L{i:06}"),
            card: format!("K-L{i:06}"),
            devices: vec![format!("dev-L{i:06}")],
            ip: ip(&mut rng, false),
            peers: Vec::new(),
            income: lognormal(&mut rng, 8_000.0, 0.5),
        })
        .collect();
    for i in 0..n_legit {
        if rng.gen_bool(0.3) {
            legit[i].devices.push(format!("dev-L{i:06}-b"));
        }
        // Households: a few customers share a tablet with a neighbour in the list.
        if i > 0 && rng.gen_bool(0.1) {
            let shared = legit[i - 1].devices[0].clone();
            legit[i].devices.push(shared);
        }
        for _ in 0..3 {
            let p = rng.gen_range(0..n_legit);
            if p != i {
                let acc = legit[p].account.clone();
                legit[i].peers.push(acc);
            }
        }
    }
    let merchants: Vec<String> = (0..200).map(|m| format!("M{m:04}")).collect();
    // Landlords, schools, utilities: legitimate accounts that collect many transfers.
    let payees: Vec<String> = (0..(n_legit / 100).max(3)).map(|m| format!("A-PAYEE{m:04}")).collect();
    let mut onboarded = 0usize;
    let mule_accounts: Vec<String> = (0..(n_legit / 40).max(3)).map(|m| format!("A-MULE{m:04}")).collect();
    let mut out: Vec<LabelledEvent> = Vec::with_capacity(config.events + 64);
    let mut seq = 0u64;
    let mut next_id = |prefix: &str| {
        seq += 1;
        format!("{prefix}-{}-{seq:08}", config.seed)
    };
    let mut rings = 0usize;
    while out.len() < config.events {
        let roll: f64 = rng.gen();
        let t = start + Duration::seconds(rng.gen_range(0..SPAN_SECS));
        if roll < 0.975 {
            // A legitimate event.
            let c = &legit[rng.gen_range(0..n_legit)];
            let channel = *[Channel::Mobile, Channel::Mobile, Channel::Web, Channel::Pos].choose(&mut rng).unwrap();
            let device = c.devices.choose(&mut rng).unwrap().clone();
            let r: f64 = rng.gen();
            let mut e;
            if r < 0.3 {
                e = RiskEvent::new(next_id("login"), EventKind::Login, t, &c.id, channel);
            } else if r < 0.75 {
                e = RiskEvent::new(next_id("pay"), EventKind::Payment, t, &c.id, channel);
                e.amount = cny(lognormal(&mut rng, 120.0, 1.0).min(c.income));
                e.card_id = Some(c.card.clone());
                e.merchant = Some(Merchant {
                    id: merchants.choose(&mut rng).unwrap().clone(),
                    mcc: Some("5411".into()),
                    country: Some("CN".into()),
                });
            } else if r < 0.985 || c.peers.is_empty() {
                e = RiskEvent::new(next_id("xfer"), EventKind::Transfer, t, &c.id, channel);
                e.amount = cny(lognormal(&mut rng, 500.0, 1.1).min(c.income * 2.0));
                e.account_id = Some(c.account.clone());
                e.counterparty_account = if rng.gen_bool(0.25) {
                    Some(payees.choose(&mut rng).unwrap().clone())
                } else {
                    Some(c.peers.choose(&mut rng).cloned().unwrap_or_else(|| merchants[0].clone()))
                };
            } else {
                e = RiskEvent::new(next_id("loan"), EventKind::LoanApplication, t, &c.id, channel);
                e.amount = cny(lognormal(&mut rng, 30_000.0, 0.6));
                e.id_number = Some(id_number(&mut rng));
            }
            e.device_fingerprint = Some(device);
            e.ip = c.ip.parse().ok();
            out.push(LabelledEvent { event: e, is_fraud: false, scenario: Scenario::Legitimate });
        } else if roll < 0.985 {
            // Legitimate look-alikes of the fraud patterns: new customers onboarding (sometimes
            // on a household device), and customers on a new phone abroad moving a larger sum.
            if rng.gen_bool(0.5) {
                onboarded += 1;
                let cust = format!("C-N{onboarded:06}");
                let device = if rng.gen_bool(0.3) {
                    legit[rng.gen_range(0..n_legit)].devices[0].clone()
                } else {
                    format!("dev-N{onboarded:06}")
                };
                let mut open = RiskEvent::new(next_id("open"), EventKind::AccountOpening, t, &cust, Channel::Mobile);
                open.id_number = Some(id_number(&mut rng));
                open.phone = Some(phone(&mut rng));
                open.device_fingerprint = Some(device);
                open.ip = ip(&mut rng, false).parse().ok();
                let mut loan = open.clone();
                loan.event_id = next_id("loan");
                loan.kind = EventKind::LoanApplication;
                loan.occurred_at = t + Duration::minutes(rng.gen_range(5..600));
                loan.phone = None;
                loan.amount = cny(lognormal(&mut rng, 50_000.0, 0.6));
                out.push(LabelledEvent { event: open, is_fraud: false, scenario: Scenario::Legitimate });
                if rng.gen_bool(0.6) {
                    out.push(LabelledEvent { event: loan, is_fraud: false, scenario: Scenario::Legitimate });
                }
            } else {
                let c = &legit[rng.gen_range(0..n_legit)];
                let device = format!("dev-NEW-{}", next_id("d"));
                let travel_ip = ip(&mut rng, false);
                let channel = if rng.gen_bool(0.5) { Channel::Web } else { Channel::Mobile };
                let mut login = RiskEvent::new(next_id("login"), EventKind::Login, t, &c.id, channel);
                login.device_fingerprint = Some(device.clone());
                login.ip = travel_ip.parse().ok();
                let mut x = RiskEvent::new(
                    next_id("xfer"),
                    EventKind::Transfer,
                    t + Duration::minutes(rng.gen_range(1..120)),
                    &c.id,
                    channel,
                );
                x.amount = cny(lognormal(&mut rng, c.income * 1.5, 0.5));
                x.account_id = Some(c.account.clone());
                x.counterparty_account = Some(payees.choose(&mut rng).unwrap().clone());
                x.device_fingerprint = Some(device);
                x.ip = travel_ip.parse().ok();
                out.push(LabelledEvent { event: login, is_fraud: false, scenario: Scenario::Legitimate });
                out.push(LabelledEvent { event: x, is_fraud: false, scenario: Scenario::Legitimate });
            }
        } else if roll < 0.989 {
            // A fraud ring: fresh identities on one device farm within a few hours.
            rings += 1;
            let farm = format!("dev-FARM{rings:04}");
            let ring_ip = ip(&mut rng, false);
            let size = rng.gen_range(5..=10);
            // Careful rings give each member an own (emulated) device and only share the IP.
            let careful = rng.gen_bool(0.3);
            for m in 0..size {
                let cust = format!("C-R{rings:04}-{m:02}");
                let farm = if careful { format!("{farm}-{m:02}") } else { farm.clone() };
                let tm = t + Duration::minutes(rng.gen_range(0..360));
                let mut open = RiskEvent::new(next_id("open"), EventKind::AccountOpening, tm, &cust, Channel::Mobile);
                open.id_number = Some(id_number(&mut rng));
                open.phone = Some(phone(&mut rng));
                open.device_fingerprint = Some(farm.clone());
                open.ip = ring_ip.parse().ok();
                let mut loan = open.clone();
                loan.event_id = next_id("loan");
                loan.kind = EventKind::LoanApplication;
                loan.occurred_at = tm + Duration::minutes(rng.gen_range(5..90));
                loan.phone = None;
                loan.amount = cny(lognormal(&mut rng, 80_000.0, 0.4));
                out.push(LabelledEvent { event: open, is_fraud: true, scenario: Scenario::FraudRing });
                out.push(LabelledEvent { event: loan, is_fraud: true, scenario: Scenario::FraudRing });
            }
        } else if roll < 0.994 {
            // Account takeover: new device + new IP, then large transfers out within minutes.
            let t = start + Duration::seconds(rng.gen_range(SPAN_SECS / 3..SPAN_SECS));
            let c = &legit[rng.gen_range(0..n_legit)];
            let device = format!("dev-ATO-{}", next_id("d"));
            let bad_ip = ip(&mut rng, false);
            let ato_channel = if rng.gen_bool(0.6) { Channel::Web } else { Channel::Mobile };
            let mut login = RiskEvent::new(next_id("login"), EventKind::Login, t, &c.id, ato_channel);
            login.device_fingerprint = Some(device.clone());
            login.ip = bad_ip.parse().ok();
            out.push(LabelledEvent { event: login, is_fraud: true, scenario: Scenario::AccountTakeover });
            for k in 0..rng.gen_range(1..=3) {
                let mut x = RiskEvent::new(
                    next_id("xfer"),
                    EventKind::Transfer,
                    t + Duration::minutes(2 + k * 3),
                    &c.id,
                    ato_channel,
                );
                x.amount = cny(lognormal(&mut rng, (c.income * 2.0).max(3_000.0), 0.5));
                x.account_id = Some(c.account.clone());
                x.counterparty_account = Some(mule_accounts.choose(&mut rng).unwrap().clone());
                x.device_fingerprint = Some(device.clone());
                x.ip = bad_ip.parse().ok();
                out.push(LabelledEvent { event: x, is_fraud: true, scenario: Scenario::AccountTakeover });
            }
        } else {
            // Mule chain: a scammed customer pays a mule, which forwards along the chain.
            let c = &legit[rng.gen_range(0..n_legit)];
            let first = rng.gen_range(0..mule_accounts.len());
            let mut x = RiskEvent::new(next_id("xfer"), EventKind::Transfer, t, &c.id, Channel::Mobile);
            x.amount = cny(lognormal(&mut rng, 6_000.0, 0.5));
            x.account_id = Some(c.account.clone());
            x.counterparty_account = Some(mule_accounts[first].clone());
            x.device_fingerprint = Some(c.devices[0].clone());
            x.ip = c.ip.parse().ok();
            let amount = x.amount;
            out.push(LabelledEvent { event: x, is_fraud: true, scenario: Scenario::MuleChain });
            let mut from = first;
            for hop in 0..rng.gen_range(1..=2) {
                let to = (from + 1 + hop) % mule_accounts.len();
                let owner = format!("C-MULE{from:04}");
                let mut f = RiskEvent::new(
                    next_id("xfer"),
                    EventKind::Transfer,
                    t + Duration::minutes(10 + 20 * hop as i64),
                    &owner,
                    Channel::OpenBanking,
                );
                f.amount = amount;
                f.account_id = Some(mule_accounts[from].clone());
                f.counterparty_account = Some(mule_accounts[to].clone());
                f.device_fingerprint = Some(format!("dev-MULE{from:04}"));
                f.ip = ip(&mut rng, false).parse().ok();
                out.push(LabelledEvent { event: f, is_fraud: true, scenario: Scenario::MuleChain });
                from = to;
            }
        }
    }
    // Labels are noisy, as in a bank: some fraud is never reported, some disputes are not fraud.
    for e in &mut out {
        let flip = if e.is_fraud { 0.05 } else { 0.005 };
        if rng.gen_bool(flip) {
            e.is_fraud = !e.is_fraud;
        }
    }
    out.sort_by(|a, b| {
        a.event.occurred_at.cmp(&b.event.occurred_at).then_with(|| a.event.event_id.cmp(&b.event.event_id))
    });
    out
}

/// Inputs of the fraud models, in order. All are computed by [`RiskEngine::decide`].
pub const MODEL_FEATURES: &[&str] = &[
    "event.amount",
    "event.hour_utc",
    "event.kind.transfer",
    "event.kind.login",
    "event.kind.loan_application",
    "event.kind.account_opening",
    "event.channel.web",
    "graph.device.shared_customers",
    "graph.device.shared_flagged",
    "graph.ip.shared_customers",
    "graph.component.flagged",
    "graph.device.new_for_customer",
    "graph.ip.new_for_customer",
    "graph.customer.devices",
    "velocity.customer.count.1h",
    "velocity.customer.count.30d",
    "velocity.customer.sum.24h",
    "velocity.device.count.24h",
    "velocity.counterparty.count.24h",
    "velocity.counterparty.sum.24h",
];

/// Features of every event as the engine computes them at that moment, with the labels.
///
/// Fraud-ring members are confirmed (flagged in the graph) with probability one half right
/// after their loan application, as analysts would; nothing else is flagged.
pub fn featurize(events: &[LabelledEvent], seed: u64) -> Result<Vec<(FeatureVector, bool)>, RiskError> {
    let clock = Arc::new(ManualClock::new(history_start()));
    let engine = RiskEngine::new(EngineConfig::default(), clock.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        clock.set(e.event.occurred_at);
        let d = engine.decide(&e.event)?;
        if e.scenario == Scenario::FraudRing && e.event.kind == EventKind::LoanApplication && rng.gen_bool(0.5) {
            engine.graph.write().flag_customer(&e.event.customer_id, CustomerFlag::ConfirmedFraud);
        }
        out.push((d.features, e.is_fraud));
    }
    Ok(out)
}

/// Builds an `ml` data set over [`MODEL_FEATURES`] (absent features read as 0).
pub fn dataset(rows: &[(FeatureVector, bool)]) -> Result<Dataset, RiskError> {
    let names: Vec<String> = MODEL_FEATURES.iter().map(|s| s.to_string()).collect();
    let x = rows.iter().map(|(f, _)| MODEL_FEATURES.iter().map(|n| f.get(n).unwrap_or(0.0)).collect()).collect();
    Ok(Dataset::new(names, x, rows.iter().map(|(_, y)| *y).collect())?)
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub history: HistoryConfig,
    /// Share of rows held out for evaluation.
    pub test_fraction: f64,
    /// Probability at which precision and recall are reported.
    pub threshold: f64,
    /// Version given to both artefacts.
    pub version: u32,
    pub trained_at: DateTime<Utc>,
    pub gbdt: GbdtConfig,
    pub scorecard: ScorecardConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            history: HistoryConfig::default(),
            test_fraction: 0.3,
            threshold: 0.5,
            version: 1,
            trained_at: history_start() + Duration::days(30),
            gbdt: GbdtConfig::default(),
            scorecard: ScorecardConfig::default(),
        }
    }
}

/// Two evaluated artefacts and what they were trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub events: usize,
    pub fraud_events: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    pub scorecard: ModelArtefact,
    pub gbdt: ModelArtefact,
}

/// Name of the scorecard artefact.
pub const SCORECARD_NAME: &str = crate::FRAUD_SCORECARD_MODEL;
/// Name of the GBDT artefact.
pub const GBDT_NAME: &str = crate::FRAUD_GBDT_MODEL;

/// Generates the history, featurises it, trains a WoE scorecard and a GBDT on a seeded split
/// and evaluates both on the held-out rows.
pub fn train(config: &TrainConfig) -> Result<TrainReport, RiskError> {
    let events = generate(&config.history);
    let rows = featurize(&events, config.history.seed)?;
    train_on(&rows, config)
}

/// [`train`] on already featurised rows (e.g. case labels plus history).
pub fn train_on(rows: &[(FeatureVector, bool)], config: &TrainConfig) -> Result<TrainReport, RiskError> {
    let data = dataset(rows)?;
    let (train, test) = data.train_test_split(config.test_fraction, config.history.seed)?;
    let names = data.feature_names().to_vec();
    let scorecard = Scorecard::fit(&train, &config.scorecard)?;
    let mut sc = ModelArtefact::new(SCORECARD_NAME, config.version, config.trained_at, names.clone(), scorecard)?;
    sc.evaluate(&test, config.threshold)?;
    let gbdt = Gbdt::fit(&train, &config.gbdt)?;
    let mut gb = ModelArtefact::new(GBDT_NAME, config.version, config.trained_at, names, gbdt)?;
    gb.evaluate(&test, config.threshold)?;
    Ok(TrainReport {
        events: rows.len(),
        fraud_events: data.positives(),
        train_rows: train.len(),
        test_rows: test.len(),
        scorecard: sc,
        gbdt: gb,
    })
}

fn expr_rule(id: &str, source: &str, action: RuleAction, weight: f64, explanation: &str) -> Rule {
    Rule {
        id: id.into(),
        priority: 0,
        condition: ConditionSpec::Expression { source: source.into() },
        action,
        reason_code: id.to_uppercase(),
        explanation: explanation.into(),
        weight,
        terminal: false,
        enabled: true,
    }
}

/// A sensible starting rule set in the expression language (used by the demo).
pub fn default_rule_set(version: u32, created_at: DateTime<Utc>) -> RuleSet {
    RuleSet {
        name: "fraud".into(),
        version,
        created_at,
        thresholds: ScoreThresholds::default(),
        rules: vec![
            expr_rule(
                "ring_device",
                "graph_device_shared_flagged >= 2",
                RuleAction::Reject,
                0.0,
                "device shared with two or more rejected or confirmed-fraud customers",
            ),
            expr_rule(
                "takeover_pattern",
                "event_kind == \"transfer\" and graph_device_new_for_customer and graph_ip_new_for_customer \
                 and event_amount >= 5000",
                RuleAction::Review,
                40.0,
                "large transfer from a device and an IP this customer never used before",
            ),
            expr_rule(
                "mule_funnel",
                "event_kind == \"transfer\" and velocity_counterparty_count_24h >= 5",
                RuleAction::Review,
                30.0,
                "the receiving account collected five or more transfers in 24 hours",
            ),
            expr_rule(
                "burst",
                "velocity_customer_count_1m >= 10",
                RuleAction::Review,
                20.0,
                "ten or more events from this customer within a minute",
            ),
            expr_rule(
                "model_very_high",
                "coalesce(model_probability, 0) >= 0.95",
                RuleAction::Reject,
                0.0,
                "the fraud model is at least 95% sure",
            ),
            expr_rule(
                "very_large_transfer",
                "event_kind == \"transfer\" and event_amount >= 200000",
                RuleAction::Score,
                60.0,
                "transfer of 200,000 or more",
            ),
        ],
    }
}

/// `n` rules for benchmarks: the default rules plus velocity, amount and graph variations, all
/// expressions, so every decision evaluates `n` compiled conditions.
pub fn benchmark_rule_set(n: usize, version: u32, created_at: DateTime<Utc>) -> RuleSet {
    let mut set = default_rule_set(version, created_at);
    let windows = ["1m", "1h", "24h", "30d"];
    let keys = ["customer", "device", "ip", "account", "card", "merchant", "counterparty"];
    let mut i = 0usize;
    while set.rules.len() < n {
        let w = windows[i % windows.len()];
        let k = keys[(i / windows.len()) % keys.len()];
        let limit = 20 + (i % 7) * 10;
        let source = match i % 3 {
            0 => format!("velocity_{k}_count_{w} >= {limit} and event_amount > {}", 1_000 * (1 + i % 5)),
            1 => format!("velocity_{k}_sum_{w} >= {} or list_watch_hits > 0", 5_000_000 * (1 + i % 4)),
            _ => format!(
                "event_channel in [\"web\", \"open_banking\"] and coalesce(graph_component_flagged, 0) >= {} \
                 and event_hour_utc < {}",
                3 + i % 4,
                4 + i % 3
            ),
        };
        set.rules.push(expr_rule(&format!("bench_{i:03}"), &source, RuleAction::Score, 5.0, "benchmark rule"));
        i += 1;
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExpressionCompiler;

    #[test]
    fn history_is_reproducible_and_labelled() {
        let cfg = HistoryConfig { seed: 7, events: 3_000 };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a, b);
        assert!(a.len() >= 3_000);
        let fraud = a.iter().filter(|e| e.is_fraud).count();
        assert!(fraud > 60 && fraud < a.len() / 5, "{fraud} of {}", a.len());
        for s in [Scenario::FraudRing, Scenario::AccountTakeover, Scenario::MuleChain, Scenario::Legitimate] {
            assert!(a.iter().any(|e| e.scenario == s), "{s:?}");
        }
        assert!(a.windows(2).all(|w| w[0].event.occurred_at <= w[1].event.occurred_at));
        a.iter().for_each(|e| e.event.validate().unwrap());
        assert_ne!(generate(&HistoryConfig { seed: 8, events: 3_000 }), a);
    }

    #[test]
    fn trained_models_separate_fraud_on_held_out_data() {
        let cfg = TrainConfig {
            history: HistoryConfig { seed: 3, events: 6_000 },
            gbdt: GbdtConfig { n_trees: 30, ..GbdtConfig::default() },
            ..TrainConfig::default()
        };
        let report = train(&cfg).unwrap();
        for a in [&report.scorecard, &report.gbdt] {
            let m = a.metrics.as_ref().unwrap();
            assert!(m.auc > 0.85, "{} AUC {}", a.name, m.auc);
            assert!(m.ks > 0.5, "{} KS {}", a.name, m.ks);
            assert_eq!(a.feature_names.len(), MODEL_FEATURES.len());
        }
        assert_eq!(report.train_rows + report.test_rows, report.events);
        // The artefact drives the engine.
        let engine = RiskEngine::new(EngineConfig::default(), Arc::new(crate::SystemClock));
        engine.set_model(report.gbdt.clone());
        let ev = generate(&HistoryConfig { seed: 3, events: 200 });
        let d = engine.decide(&ev[0].event).unwrap();
        assert!(d.model_probability.is_some());
    }

    #[test]
    fn rule_sets_compile() {
        default_rule_set(1, history_start()).compile(&ExpressionCompiler).unwrap();
        let big = benchmark_rule_set(100, 2, history_start());
        assert_eq!(big.rules.len(), 100);
        assert_eq!(big.compile(&ExpressionCompiler).unwrap().rules.len(), 100);
    }
}
