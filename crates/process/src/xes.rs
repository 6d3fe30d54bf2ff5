//! XES (IEEE 1849) export and import with quick-xml.
//!
//! Export: one `<trace>` per case (`concept:name` = case id), one `<event>` per event with
//! `concept:name` (activity), `time:timestamp`, `org:resource`, `lifecycle:transition` =
//! `complete`, and the attributes (strings, and `int` for amounts, costs and service times).
//!
//! Import: `trace`/`event` attributes at any nesting are read only where they belong (directly
//! under the `trace` or `event`; `global`, `classifier`, nested meta-attributes are skipped).
//! An event needs `concept:name` and `time:timestamp`. With lifecycle transitions, only
//! `complete` events (or events without a transition) become events; a `start` of the same
//! activity earlier in the trace gives the event its service time. Errors name the line.

use std::collections::HashMap;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event as Xml};
use quick_xml::{Reader, Writer};

use crate::log::{Case, Event};
use crate::ocel::rfc3339;
use crate::ProcessError;

fn io_err(e: impl std::fmt::Display) -> ProcessError {
    ProcessError::Invalid(format!("XES writer: {e}"))
}

/// The XES document of `cases`.
pub fn export(cases: &[Case]) -> Result<String, ProcessError> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(Xml::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).map_err(io_err)?;
    let log = BytesStart::new("log").with_attributes([
        ("xes.version", "1.0"),
        ("xes.features", "nested-attributes"),
        ("xmlns", "http://www.xes-standard.org/"),
    ]);
    w.write_event(Xml::Start(log)).map_err(io_err)?;
    for (name, prefix, uri) in [
        ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
        ("Time", "time", "http://www.xes-standard.org/time.xesext"),
        ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
        ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
    ] {
        let ext = BytesStart::new("extension").with_attributes([("name", name), ("prefix", prefix), ("uri", uri)]);
        w.write_event(Xml::Empty(ext)).map_err(io_err)?;
    }
    let attr = |w: &mut Writer<Vec<u8>>, kind: &str, key: &str, value: &str| {
        w.write_event(Xml::Empty(BytesStart::new(kind).with_attributes([("key", key), ("value", value)])))
            .map_err(io_err)
    };
    for case in cases {
        w.write_event(Xml::Start(BytesStart::new("trace"))).map_err(io_err)?;
        attr(&mut w, "string", "concept:name", &case.id)?;
        for e in &case.events {
            w.write_event(Xml::Start(BytesStart::new("event"))).map_err(io_err)?;
            attr(&mut w, "string", "concept:name", &e.activity)?;
            attr(&mut w, "date", "time:timestamp", &rfc3339(e.at))?;
            attr(&mut w, "string", "org:resource", &e.resource)?;
            attr(&mut w, "string", "lifecycle:transition", "complete")?;
            for (key, value) in crate::ocel::attribute_pairs(e) {
                match value {
                    serde_json::Value::Number(n) => attr(&mut w, "int", key, &n.to_string())?,
                    serde_json::Value::String(s) => attr(&mut w, "string", key, &s)?,
                    other => attr(&mut w, "string", key, &other.to_string())?,
                }
            }
            w.write_event(Xml::End(BytesEnd::new("event"))).map_err(io_err)?;
        }
        w.write_event(Xml::End(BytesEnd::new("trace"))).map_err(io_err)?;
    }
    w.write_event(Xml::End(BytesEnd::new("log"))).map_err(io_err)?;
    String::from_utf8(w.into_inner()).map_err(io_err)
}

/// Parses an XES timestamp: RFC 3339, or a date-time without offset taken as UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

fn line_of(text: &str, pos: usize) -> u64 {
    text.as_bytes()[..pos.min(text.len())].iter().filter(|b| **b == b'\n').count() as u64 + 1
}

#[derive(Default)]
struct PendingEvent {
    line: u64,
    attrs: HashMap<String, String>,
}

const ATTRIBUTE_ELEMENTS: [&[u8]; 7] = [b"string", b"date", b"int", b"float", b"boolean", b"id", b"list"];

/// Reads an XES document into events (at most `max_events`, else [`ProcessError::TooLarge`]).
pub fn import(text: &str, max_events: usize) -> Result<Vec<Event>, ProcessError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut out: Vec<Event> = Vec::new();
    let mut trace_name: Option<String> = None;
    let mut trace_events: Vec<PendingEvent> = Vec::new();
    let mut event: Option<PendingEvent> = None;
    let mut saw_log = false;
    loop {
        let pos = reader.buffer_position() as usize;
        let malformed = |message: String| ProcessError::Malformed { line: line_of(text, pos), message };
        let ev = reader.read_event().map_err(|e| malformed(format!("not well-formed XML: {e}")))?;
        let (start, empty) = match &ev {
            Xml::Start(s) => (Some(s.clone()), false),
            Xml::Empty(s) => (Some(s.clone()), true),
            _ => (None, false),
        };
        if let Some(s) = start {
            let name = s.name().as_ref().to_vec();
            let parent = stack.last().map(Vec::as_slice);
            if stack.is_empty() {
                if name != b"log" {
                    return Err(malformed(format!(
                        "the root element is <{}>, not <log>",
                        String::from_utf8_lossy(&name)
                    )));
                }
                saw_log = true;
            }
            if ATTRIBUTE_ELEMENTS.contains(&name.as_slice()) && matches!(parent, Some(b"trace") | Some(b"event")) {
                let mut key = None;
                let mut value = None;
                for a in s.attributes() {
                    let a = a.map_err(|e| malformed(format!("bad attribute: {e}")))?;
                    let v =
                        a.unescape_value().map_err(|e| malformed(format!("bad attribute value: {e}")))?.into_owned();
                    match a.key.as_ref() {
                        b"key" => key = Some(v),
                        b"value" => value = Some(v),
                        _ => {}
                    }
                }
                let (Some(key), Some(value)) = (key, value) else {
                    return Err(malformed(format!(
                        "<{}> needs key and value attributes",
                        String::from_utf8_lossy(&name)
                    )));
                };
                if parent == Some(b"event") {
                    if let Some(e) = event.as_mut() {
                        e.attrs.insert(key, value);
                    }
                } else if key == "concept:name" {
                    trace_name = Some(value);
                }
            } else if name == b"trace" {
                if parent != Some(b"log") {
                    return Err(malformed("<trace> outside <log>".into()));
                }
                trace_name = None;
                trace_events.clear();
            } else if name == b"event" && parent == Some(b"trace") {
                event = Some(PendingEvent { line: line_of(text, pos), attrs: HashMap::new() });
            }
            if empty {
                if name == b"event" && parent == Some(b"trace") {
                    trace_events.extend(event.take());
                }
            } else {
                stack.push(name);
            }
            continue;
        }
        match ev {
            Xml::End(e) => {
                let name = e.name().as_ref().to_vec();
                if stack.pop().as_deref() != Some(name.as_slice()) {
                    return Err(malformed(format!("unexpected </{}>", String::from_utf8_lossy(&name))));
                }
                if name == b"event" && stack.last().map(Vec::as_slice) == Some(b"trace") {
                    trace_events.extend(event.take());
                } else if name == b"trace" {
                    let case = trace_name.take().ok_or_else(|| malformed("a <trace> without concept:name".into()))?;
                    finish_trace(&case, &mut trace_events, &mut out)?;
                    if out.len() > max_events {
                        return Err(ProcessError::TooLarge { events: out.len(), limit: max_events });
                    }
                }
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    if !saw_log {
        return Err(ProcessError::Malformed { line: 1, message: "no <log> element".into() });
    }
    if !stack.is_empty() {
        return Err(ProcessError::Malformed {
            line: line_of(text, text.len()),
            message: format!("<{}> is not closed", String::from_utf8_lossy(stack.last().map_or(&[][..], |v| v))),
        });
    }
    Ok(out)
}

fn finish_trace(case: &str, pending: &mut Vec<PendingEvent>, out: &mut Vec<Event>) -> Result<(), ProcessError> {
    let mut started: HashMap<String, i64> = HashMap::new();
    for p in pending.drain(..) {
        let bad = |message: String| ProcessError::Malformed { line: p.line, message };
        let activity =
            p.attrs.get("concept:name").ok_or_else(|| bad("an <event> without concept:name".into()))?.clone();
        let time = p.attrs.get("time:timestamp").ok_or_else(|| bad("an <event> without time:timestamp".into()))?;
        let at = parse_time(time).ok_or_else(|| bad(format!("time:timestamp {time:?} is not a date")))?;
        let transition = p.attrs.get("lifecycle:transition").map(|t| t.to_ascii_lowercase());
        match transition.as_deref() {
            Some("start") => {
                started.insert(activity, at);
                continue;
            }
            None | Some("complete") => {}
            Some(_) => continue,
        }
        let mut e = Event::new(case, activity, at, p.attrs.get("org:resource").map_or("unknown", String::as_str));
        let int = |k: &str| -> Result<Option<i64>, ProcessError> {
            p.attrs
                .get(k)
                .map(|v| v.parse::<i64>().map_err(|_| bad(format!("{k} {v:?} is not an integer"))))
                .transpose()
        };
        e.attributes.product = p.attrs.get("product").cloned();
        e.attributes.channel = p.attrs.get("channel").cloned();
        e.attributes.outcome = p.attrs.get("outcome").cloned();
        e.attributes.currency = p.attrs.get("currency").cloned();
        e.attributes.amount_minor = int("amount_minor")?;
        e.attributes.cost_minor = int("cost_minor")?;
        e.attributes.service_micros = match started.remove(&e.activity) {
            Some(s) => Some((at - s).max(0)),
            None => int("service_micros")?,
        };
        out.push(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::EventLog;

    #[test]
    fn export_then_import_is_the_same_log() {
        let mut a = Event::new("c<1>", "scored", 1_780_000_000_000_001, "system");
        a.attributes.amount_minor = Some(500_000);
        a.attributes.product = Some("instant & co".into());
        a.attributes.service_micros = Some(12);
        let events = vec![Event::new("c<1>", "application_received", 1_780_000_000_000_000, "customer"), a];
        let log = EventLog::from_events(events.clone());
        let xml = export(&log.cases).unwrap();
        assert!(xml.contains("<string key=\"concept:name\" value=\"c&lt;1&gt;\"/>"), "{xml}");
        assert_eq!(import(&xml, 10).unwrap(), events);
        assert!(matches!(import(&xml, 1), Err(ProcessError::TooLarge { .. })));
    }

    #[test]
    fn lifecycle_start_gives_service_time_and_globals_are_skipped() {
        let xml = r#"<?xml version="1.0"?>
<log xes.version="1.0">
  <global scope="event"><string key="concept:name" value="x"/></global>
  <trace>
    <string key="concept:name" value="t1"/>
    <event><string key="concept:name" value="review"/><string key="lifecycle:transition" value="start"/>
      <date key="time:timestamp" value="2026-01-01T10:00:00+08:00"/></event>
    <event><string key="concept:name" value="review"/><string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2026-01-01T10:05:00+08:00"/><string key="org:resource" value="ann"/>
      <int key="cost_minor" value="3000"/></event>
  </trace>
</log>"#;
        let events = import(xml, 100).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].attributes.service_micros, Some(300_000_000));
        assert_eq!(events[0].resource, "ann");
        assert_eq!(events[0].attributes.cost_minor, Some(3000));
        assert_eq!(events[0].at, parse_time("2026-01-01T02:05:00Z").unwrap());
    }

    #[test]
    fn malformed_documents_name_the_line() {
        let missing_time = "<log>\n<trace><string key=\"concept:name\" value=\"t\"/>\n<event><string key=\"concept:name\" value=\"a\"/></event>\n</trace></log>";
        assert_eq!(
            import(missing_time, 10),
            Err(ProcessError::Malformed { line: 3, message: "an <event> without time:timestamp".into() })
        );
        let broken = "<log>\n<trace>\n</event></log>";
        assert!(matches!(import(broken, 10), Err(ProcessError::Malformed { line: 3, .. })), "{:?}", import(broken, 10));
        assert!(matches!(import("<foo/>", 10), Err(ProcessError::Malformed { line: 1, .. })));
        assert!(matches!(import("<log><trace>", 10), Err(ProcessError::Malformed { .. })));
        let bad_date = "<log><trace><string key=\"concept:name\" value=\"t\"/><event><string key=\"concept:name\" value=\"a\"/><date key=\"time:timestamp\" value=\"soon\"/></event></trace></log>";
        assert!(matches!(import(bad_date, 10), Err(ProcessError::Malformed { line: 1, .. })));
    }
}
