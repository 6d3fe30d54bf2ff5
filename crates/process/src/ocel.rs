//! OCEL 2.0 JSON export (the object-centric event log standard): each case is an object of its
//! process's object type, each resource an object of type `resource`; every event relates to
//! its case (qualifier `case`) and to its resource (qualifier `performed_by`). Attributes are
//! event attributes; times are RFC 3339 UTC with microseconds.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::log::Event;

/// RFC 3339 UTC with microseconds (`2026-06-01T08:00:00.000001Z`).
pub fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The attributes of an event as (name, value) pairs, in a fixed order.
pub fn attribute_pairs(e: &Event) -> Vec<(&'static str, Value)> {
    let a = &e.attributes;
    let mut out = Vec::new();
    if let Some(v) = &a.product {
        out.push(("product", json!(v)));
    }
    if let Some(v) = a.amount_minor {
        out.push(("amount_minor", json!(v)));
    }
    if let Some(v) = &a.currency {
        out.push(("currency", json!(v)));
    }
    if let Some(v) = &a.channel {
        out.push(("channel", json!(v)));
    }
    if let Some(v) = &a.outcome {
        out.push(("outcome", json!(v)));
    }
    if let Some(v) = a.cost_minor {
        out.push(("cost_minor", json!(v)));
    }
    if let Some(v) = a.service_micros {
        out.push(("service_micros", json!(v)));
    }
    out
}

const ATTRIBUTE_TYPES: [(&str, &str); 7] = [
    ("product", "string"),
    ("amount_minor", "integer"),
    ("currency", "string"),
    ("channel", "string"),
    ("outcome", "string"),
    ("cost_minor", "integer"),
    ("service_micros", "integer"),
];

/// The OCEL 2.0 JSON document of `events`, whose cases are objects of `object_type`. Event ids
/// are `e1, e2, ...` in the given order.
pub fn export(object_type: &str, events: &[Event]) -> Value {
    let mut event_types: BTreeSet<&str> = BTreeSet::new();
    let mut cases: BTreeSet<&str> = BTreeSet::new();
    let mut resources: BTreeSet<&str> = BTreeSet::new();
    let mut out_events = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        event_types.insert(&e.activity);
        cases.insert(&e.case_id);
        resources.insert(&e.resource);
        let attributes: Vec<Value> =
            attribute_pairs(e).into_iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
        out_events.push(json!({
            "id": format!("e{}", i + 1),
            "type": e.activity,
            "time": rfc3339(e.at),
            "attributes": attributes,
            "relationships": [
                {"objectId": e.case_id, "qualifier": "case"},
                {"objectId": format!("resource:{}", e.resource), "qualifier": "performed_by"},
            ],
        }));
    }
    let attr_types: Vec<Value> = ATTRIBUTE_TYPES.iter().map(|(n, t)| json!({"name": n, "type": t})).collect();
    let mut objects: Vec<Value> =
        cases.iter().map(|c| json!({"id": c, "type": object_type, "attributes": [], "relationships": []})).collect();
    objects.extend(
        resources
            .iter()
            .map(|r| json!({"id": format!("resource:{r}"), "type": "resource", "attributes": [], "relationships": []})),
    );
    let types: BTreeMap<&str, ()> = event_types.into_iter().map(|t| (t, ())).collect();
    json!({
        "objectTypes": [
            {"name": object_type, "attributes": []},
            {"name": "resource", "attributes": []},
        ],
        "eventTypes": types.keys().map(|t| json!({"name": t, "attributes": attr_types})).collect::<Vec<_>>(),
        "objects": objects,
        "events": out_events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_relate_to_their_case_and_resource() {
        let mut e = Event::new("app-1", "scored", 1_780_000_000_000_001, "system");
        e.attributes.product = Some("instant_consumer".into());
        let doc = export("loan_application", &[e, Event::new("app-1", "reviewed", 1_780_000_100_000_000, "u-7")]);
        assert_eq!(doc["events"][0]["time"], "2026-05-28T20:26:40.000001Z");
        assert_eq!(doc["events"][0]["attributes"][0], json!({"name": "product", "value": "instant_consumer"}));
        assert_eq!(doc["events"][1]["relationships"][1]["objectId"], "resource:u-7");
        assert_eq!(doc["objects"].as_array().unwrap().len(), 3, "one case, two resources");
        assert_eq!(doc["eventTypes"].as_array().unwrap().len(), 2);
    }
}
