//! CSV import with a column mapping: which column holds the case id, the activity, the
//! (completion) timestamp and, optionally, the start timestamp (gives the service time), the
//! resource and the attributes. Timestamps are RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` taken as
//! UTC. Amounts and costs are integers in minor units. Errors name the line.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::log::Event;
use crate::xes::parse_time;
use crate::ProcessError;

/// Which column holds what (header names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CsvMapping {
    pub case: String,
    pub activity: String,
    pub timestamp: String,
    pub start_timestamp: Option<String>,
    pub resource: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub outcome: Option<String>,
    pub amount_minor: Option<String>,
    pub cost_minor: Option<String>,
}

/// Reads `text` (with a header row) into events, at most `max_events`.
pub fn import(text: &str, mapping: &CsvMapping, max_events: usize) -> Result<Vec<Event>, ProcessError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ProcessError::Malformed { line: 1, message: format!("unreadable header: {e}") })?
        .clone();
    let column = |name: &str| -> Result<usize, ProcessError> {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| ProcessError::Malformed {
            line: 1,
            message: format!(
                "no column {name:?} in the header (it has: {})",
                headers.iter().take(50).collect::<Vec<_>>().join(", ")
            ),
        })
    };
    let optional = |name: &Option<String>| name.as_deref().map(column).transpose();
    let (case, activity, timestamp) = (column(&mapping.case)?, column(&mapping.activity)?, column(&mapping.timestamp)?);
    let start = optional(&mapping.start_timestamp)?;
    let resource = optional(&mapping.resource)?;
    let (product, channel, outcome) =
        (optional(&mapping.product)?, optional(&mapping.channel)?, optional(&mapping.outcome)?);
    let (amount, cost) = (optional(&mapping.amount_minor)?, optional(&mapping.cost_minor)?);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ProcessError::Malformed {
            line: e.position().map_or(0, |p| p.line()),
            message: format!("unreadable row: {e}"),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let bad = |message: String| ProcessError::Malformed { line, message };
        let get = |i: usize| record.get(i).map(str::trim).unwrap_or("");
        let text = |i: Option<usize>| i.map(get).filter(|v| !v.is_empty()).map(str::to_string);
        let time = |i: usize, what: &str| {
            let v = get(i);
            parse_time(v).ok_or_else(|| bad(format!("{what} {v:?} is not a date-time")))
        };
        let int = |i: Option<usize>, what: &str| -> Result<Option<i64>, ProcessError> {
            text(i).map(|v| v.parse::<i64>().map_err(|_| bad(format!("{what} {v:?} is not an integer")))).transpose()
        };
        let (case_id, act) = (get(case), get(activity));
        if case_id.is_empty() || act.is_empty() {
            return Err(bad("empty case id or activity".into()));
        }
        let at = time(timestamp, "timestamp")?;
        let mut e = Event::new(case_id, act, at, text(resource).unwrap_or_else(|| "unknown".into()));
        if let Some(s) = start {
            let started = time(s, "start timestamp")?;
            if started > at {
                return Err(bad("the start timestamp is after the timestamp".into()));
            }
            e.attributes.service_micros = Some(at - started);
        }
        e.attributes.product = text(product);
        e.attributes.channel = text(channel);
        e.attributes.outcome = text(outcome);
        e.attributes.amount_minor = int(amount, "amount")?;
        e.attributes.cost_minor = int(cost, "cost")?;
        out.push(e);
        if out.len() > max_events {
            return Err(ProcessError::TooLarge { events: out.len(), limit: max_events });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> CsvMapping {
        CsvMapping {
            case: "Case".into(),
            activity: "Step".into(),
            timestamp: "Done".into(),
            start_timestamp: Some("Began".into()),
            resource: Some("Who".into()),
            amount_minor: Some("Amount".into()),
            ..CsvMapping::default()
        }
    }

    #[test]
    fn rows_become_events_with_service_time() {
        let csv = "Case,Step,Began,Done,Who,Amount\nL1,apply,2026-01-01 09:00:00,2026-01-01 09:00:05,web,100\n\
                   L1,\"review, manual\",2026-01-01T10:00:00Z,2026-01-01T10:30:00Z,ann,\n";
        let events = import(csv, &mapping(), 10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].attributes.service_micros, Some(5_000_000));
        assert_eq!(events[0].attributes.amount_minor, Some(100));
        assert_eq!(events[1].activity, "review, manual");
        assert_eq!(events[1].attributes.amount_minor, None);
    }

    #[test]
    fn errors_name_the_line() {
        let csv = "Case,Step,Began,Done,Who,Amount\nL1,a,2026-01-01 09:00:00,2026-01-01 09:00:05,w,1\nL1,b,x,2026-01-01 09:00:05,w,1\n";
        assert_eq!(
            import(csv, &mapping(), 10),
            Err(ProcessError::Malformed { line: 3, message: "start timestamp \"x\" is not a date-time".into() })
        );
        let e = import("A,B\n1,2\n", &mapping(), 10).unwrap_err();
        assert!(matches!(e, ProcessError::Malformed { line: 1, .. }), "{e:?}");
        let csv = "Case,Step,Began,Done,Who,Amount\nL1,a,2026-01-01 09:00:00,2026-01-01 09:00:05,w,1.5\n";
        assert!(matches!(import(csv, &mapping(), 10), Err(ProcessError::Malformed { line: 2, .. })));
        let many = "Case,Step,Began,Done,Who,Amount\n".to_string()
            + &"L1,a,2026-01-01 09:00:00,2026-01-01 09:00:05,w,1\n".repeat(3);
        assert!(matches!(import(&many, &mapping(), 2), Err(ProcessError::TooLarge { .. })));
    }
}
