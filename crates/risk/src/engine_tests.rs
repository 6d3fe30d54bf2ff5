//! End-to-end tests of the decision function with a controllable clock.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ml::{Dataset, LogisticConfig, LogisticRegression, ModelArtefact};
use money::{Amount, Currency};

use crate::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn engine() -> (RiskEngine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let e = RiskEngine::new(EngineConfig::default(), clock.clone());
    (e, clock)
}

fn rule(id: &str, cond: ConditionSpec, action: RuleAction, weight: f64) -> Rule {
    Rule {
        id: id.into(),
        priority: 0,
        condition: cond,
        action,
        reason_code: id.to_uppercase(),
        explanation: format!("rule {id}"),
        weight,
        terminal: false,
        enabled: true,
    }
}

fn th(feature: &str, op: CmpOp, value: f64) -> ConditionSpec {
    ConditionSpec::Threshold(Threshold::new(feature, op, value))
}

fn rule_set(version: u32, rules: Vec<Rule>) -> RuleSet {
    RuleSet { name: "fraud".into(), version, created_at: t0(), thresholds: ScoreThresholds::default(), rules }
}

fn payment(id: &str, customer: &str, device: &str, minor: i64) -> RiskEvent {
    let mut e = RiskEvent::new(id, EventKind::Payment, t0(), customer, Channel::Mobile);
    e.amount = Some(Amount::new(minor, Currency::CNY));
    e.card_id = Some(format!("card-{customer}"));
    e.device_fingerprint = Some(device.into());
    e.ip = Some("10.0.0.1".parse().unwrap());
    e.merchant = Some(Merchant { id: "m1".into(), mcc: Some("5999".into()), country: Some("CN".into()) });
    e
}

fn application(id: &str, customer: &str, device: &str) -> RiskEvent {
    let mut e = RiskEvent::new(id, EventKind::LoanApplication, t0(), customer, Channel::Web);
    e.amount = Some(Amount::new(5_000_000, Currency::CNY));
    e.id_number = Some(format!("id-{customer}"));
    e.device_fingerprint = Some(device.into());
    e
}

#[test]
fn velocity_rule_reviews_bursts_and_opens_cases() {
    let (e, clock) = engine();
    e.rules
        .add_version(rule_set(
            1,
            vec![
                rule("burst", th("velocity.customer.count.1m", CmpOp::Ge, 5.0), RuleAction::Review, 10.0),
                rule("big", th("event.amount", CmpOp::Gt, 10_000.0), RuleAction::Score, 60.0),
            ],
        ))
        .unwrap();
    e.rules.activate(1).unwrap();
    for i in 0..4 {
        let d = e.decide(&payment(&format!("p{i}"), "c1", "d1", 10_000)).unwrap();
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(d.features.get("velocity.customer.count.1m"), Some(f64::from(i + 1)));
        clock.advance(Duration::seconds(5));
    }
    let d = e.decide(&payment("p4", "c1", "d1", 10_000)).unwrap();
    assert_eq!(d.outcome, Outcome::Review);
    assert_eq!(d.features.get("velocity.customer.sum.1m"), Some(50_000.0));
    assert_eq!(d.reason_codes().collect::<Vec<_>>(), vec!["BURST"]);
    assert_eq!(d.rule_set_version, Some(1));
    let case = d.case_id.expect("review opens a case");
    assert_eq!(e.cases.open_cases().len(), 1);

    // A minute later the burst has cleared.
    clock.advance(Duration::seconds(61));
    let d = e.decide(&payment("p5", "c1", "d1", 10_000)).unwrap();
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.features.get("velocity.customer.count.1h"), Some(6.0));

    // Large amount: score 60 >= review threshold 50.
    let d = e.decide(&payment("p6", "c2", "d2", 2_000_000)).unwrap();
    assert_eq!((d.outcome, d.score), (Outcome::Review, 60.0));

    // The analyst confirms fraud: a label and a graph flag follow.
    e.resolve_case(case, Resolution::ConfirmedFraud, "ana", "card testing").unwrap();
    assert!(matches!(
        e.resolve_case(case, Resolution::FalsePositive, "ana", ""),
        Err(RiskError::CaseAlreadyResolved(_))
    ));
    assert!(matches!(e.resolve_case(999, Resolution::FalsePositive, "ana", ""), Err(RiskError::CaseNotFound(999))));
    let labels = e.cases.labels();
    assert_eq!(labels.len(), 1);
    assert!(labels[0].is_fraud);
    assert_eq!(e.graph.read().flag_of("c1"), Some(CustomerFlag::ConfirmedFraud));
}

#[test]
fn lists_override_rules() {
    let (e, clock) = engine();
    let entry = |kind, subject, value: &str| ListEntry {
        kind,
        subject,
        value: value.into(),
        display: None,
        reason: "test".into(),
        added_at: t0(),
        expires_at: Some(t0() + Duration::hours(1)),
    };
    e.lists.add(entry(ListKind::Black, ListSubject::Device, "evil"));
    e.lists.add(entry(ListKind::White, ListSubject::Customer, "vip"));
    e.lists.add(entry(ListKind::Watch, ListSubject::Ip, "10.0.0.1"));
    let d = e.decide(&payment("a", "c1", "evil", 100)).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert!(d.reason_codes().any(|c| c == "LIST_BLACK_DEVICE"));
    let d = e.decide(&payment("b", "vip", "ok", 100)).unwrap();
    assert_eq!(d.outcome, Outcome::Allow);
    let d = e.decide(&payment("c", "c3", "ok", 100)).unwrap();
    assert_eq!(d.outcome, Outcome::Review);
    assert!(d.reason_codes().any(|c| c == "LIST_WATCH_IP"));
    // After expiry the lists no longer apply.
    clock.advance(Duration::hours(2));
    assert_eq!(e.decide(&payment("d", "c1", "evil", 100)).unwrap().outcome, Outcome::Allow);
}

#[test]
fn shared_device_with_flagged_customers_is_explained() {
    let (e, _) = engine();
    e.rules
        .add_version(rule_set(
            1,
            vec![rule("ring", th("graph.device.shared_flagged", CmpOp::Ge, 3.0), RuleAction::Reject, 0.0)],
        ))
        .unwrap();
    e.rules.activate(1).unwrap();
    for i in 0..7 {
        e.decide(&application(&format!("a{i}"), &format!("c{i}"), "farm")).unwrap();
    }
    for i in 0..3 {
        e.graph.write().flag_customer(&format!("c{i}"), CustomerFlag::ConfirmedFraud);
    }
    let d = e.decide(&application("a7", "new", "farm")).unwrap();
    assert_eq!(d.features.get("graph.device.shared_customers"), Some(7.0));
    assert_eq!(d.features.get("graph.device.shared_flagged"), Some(3.0));
    assert_eq!(d.outcome, Outcome::Reject);
    let graph_reason = d.reasons.iter().find(|r| r.code == "GRAPH_SHARED_DEVICE_FLAGGED").unwrap();
    assert_eq!(graph_reason.explanation, "shares a device with 7 customers, 3 of them rejected or confirmed fraud");
    assert_eq!(graph_reason.weight, 45.0);
    // A rejected application flags the applicant, which the next applicant sees.
    assert_eq!(e.graph.read().flag_of("new"), Some(CustomerFlag::Rejected));
    let d = e.decide(&application("a8", "next", "farm")).unwrap();
    assert_eq!(d.features.get("graph.device.shared_flagged"), Some(4.0));
    let rings = e.graph.read().communities(5, 3);
    assert_eq!(rings.len(), 1);
    assert_eq!(rings[0].customers.len(), 9);
}

#[test]
fn model_scores_and_explains_and_decisions_serialise() {
    let (e, _) = engine();
    // A toy model: risk rises with amount (major units) and device velocity.
    let names = vec!["event.amount".to_string(), "velocity.device.count.1h".to_string()];
    let rows: Vec<Vec<f64>> = (0..200).map(|i| vec![f64::from(i % 20) * 1_000.0, f64::from(i % 7)]).collect();
    let labels: Vec<bool> = rows.iter().map(|r| r[0] + r[1] * 2_000.0 > 18_000.0).collect();
    let data = Dataset::new(names.clone(), rows, labels).unwrap();
    let model = LogisticRegression::fit(&data, &LogisticConfig::default()).unwrap();
    e.set_model(ModelArtefact::new("fraud-lr", 3, t0(), names, model).unwrap());

    let low = e.decide(&payment("l", "c1", "d1", 100)).unwrap();
    let high = e.decide(&payment("h", "c2", "d2", 3_000_000)).unwrap();
    assert!(high.model_probability.unwrap() > low.model_probability.unwrap());
    assert!(high.reasons.iter().any(|r| r.code == "MODEL_EVENT_AMOUNT" && r.source == ReasonSource::Model));
    assert_eq!(high.model.as_deref(), Some("fraud-lr@3"));
    assert!((high.base_score - high.model_probability.unwrap() * 100.0).abs() < 1e-9);

    let json = serde_json::to_string(&high).unwrap();
    assert!(!json.contains("id-"), "no ID numbers in decisions");
    let back: Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, high);
}

#[test]
fn backtest_from_logged_decisions() {
    let (e, clock) = engine();
    e.rules
        .add_version(rule_set(1, vec![rule("big", th("event.amount", CmpOp::Gt, 1_000.0), RuleAction::Review, 0.0)]))
        .unwrap();
    e.rules
        .add_version(rule_set(
            2,
            vec![
                rule("big", th("event.amount", CmpOp::Gt, 5_000.0), RuleAction::Review, 0.0),
                rule(
                    "fast_big",
                    ConditionSpec::AllOf {
                        all: vec![
                            Threshold::new("event.amount", CmpOp::Gt, 500.0),
                            Threshold::new("velocity.card.count.1h", CmpOp::Ge, 3.0),
                        ],
                    },
                    RuleAction::Reject,
                    0.0,
                ),
            ],
        ))
        .unwrap();
    e.rules.activate(1).unwrap();
    let mut log = Vec::new();
    for (i, minor) in [50_000, 200_000, 900_000, 80_000, 300_000].into_iter().enumerate() {
        log.push(e.decide(&payment(&format!("p{i}"), "c1", "d1", minor)).unwrap().to_replay());
        clock.advance(Duration::minutes(1));
    }
    let v1 = e.rules.compile(1).unwrap();
    let v2 = e.rules.compile(2).unwrap();
    let r = backtest(&log, &v1, &v2);
    // Amounts 500, 2000, 9000, 800, 3000; card counts 1..=5.
    assert_eq!(r.before, OutcomeCounts { allow: 2, review: 3, reject: 0 });
    assert_eq!(r.after, OutcomeCounts { allow: 2, review: 0, reject: 3 });
    assert_eq!(r.rule_hits_after["fast_big"], 3);
    assert_eq!(r.rule_hits_after["big"], 1);
    assert_eq!(r.transitions["review->allow"], 1);
    assert_eq!(r.transitions["allow->reject"], 1);
    assert_eq!(r.transitions["review->reject"], 2);
    assert_eq!(r.changes.len(), 4);
    serde_json::to_string(&r).unwrap();
}

#[test]
fn bad_events_are_errors_not_panics() {
    let (e, _) = engine();
    let mut p = payment("x", "c1", "d1", 100);
    p.merchant = None;
    assert_eq!(e.decide(&p), Err(RiskError::MissingField { kind: EventKind::Payment, field: "merchant" }));
    assert!(matches!(e.decide_json("{}"), Err(RiskError::MalformedEvent(_))));
    assert!(matches!(e.decide_json("not json"), Err(RiskError::MalformedEvent(_))));
    let ok = serde_json::to_string(&payment("y", "c1", "d1", 100)).unwrap();
    assert_eq!(e.decide_json(&ok).unwrap().outcome, Outcome::Allow);
}

#[test]
fn concurrent_decisions_count_every_event() {
    let (e, _) = engine();
    let e = Arc::new(e);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 0..250 {
                    e.decide(&payment(&format!("{t}-{i}"), &format!("c{t}"), "shared", 100)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = e.velocity.window(KeyKind::Device, "shared", Window::OneMinute, e.now());
    assert_eq!(s, WindowStats { count: 1_000, sum: 100_000 });
    assert_eq!(e.graph.read().customer_features("c0").device.customers, 3);
}

#[test]
fn known_links_only_take_the_graph_read_lock_and_new_devices_are_features() {
    let (e, _) = engine();
    let e = Arc::new(e);
    let mut first = payment("g1", "c1", "d1", 100);
    first.ip = Some("10.0.0.1".parse().unwrap());
    let d = e.decide(&first).unwrap();
    assert_eq!(d.features.get("graph.device.new_for_customer"), Some(0.0), "a first device is not 'new'");
    // With a reader holding the graph, a decision whose links all exist still completes.
    let guard = e.graph.read();
    let (tx, rx) = std::sync::mpsc::channel();
    let e2 = Arc::clone(&e);
    let mut again = first.clone();
    again.event_id = "g2".into();
    std::thread::spawn(move || tx.send(e2.decide(&again).map(|d| d.outcome)).unwrap());
    let outcome = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("no write lock needed");
    assert_eq!(outcome, Ok(Outcome::Allow));
    drop(guard);
    // A new device and a new IP for a customer who used others before: takeover features.
    let mut takeover = payment("g3", "c1", "d-new", 100);
    takeover.ip = Some("203.0.113.1".parse().unwrap());
    let d = e.decide(&takeover).unwrap();
    assert_eq!(d.features.get("graph.device.new_for_customer"), Some(1.0));
    assert_eq!(d.features.get("graph.ip.new_for_customer"), Some(1.0));
    assert_eq!(d.features.get("graph.customer.devices"), Some(2.0));
}

#[test]
fn expression_rules_drive_decisions() {
    let (e, _) = engine();
    let mut r = rule(
        "big_mobile",
        ConditionSpec::Expression { source: "event_channel == \"mobile\" and event_amount >= 1000".into() },
        RuleAction::Reject,
        0.0,
    );
    r.explanation = "large mobile payment".into();
    e.rules.add_version(rule_set(1, vec![r])).unwrap();
    e.rules.activate(1).unwrap();
    assert_eq!(e.decide(&payment("x1", "c1", "d1", 99_999)).unwrap().outcome, Outcome::Allow);
    let d = e.decide(&payment("x2", "c1", "d1", 100_000)).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(d.reasons.last().unwrap().explanation, "large mobile payment");
}
