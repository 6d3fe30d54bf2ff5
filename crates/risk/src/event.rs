//! Events submitted for a risk decision.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use money::Amount;
use serde::{Deserialize, Serialize};

use crate::{ListSubject, RiskError};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A card or merchant payment.
    Payment,
    /// An account-to-account transfer.
    Transfer,
    Login,
    LoanApplication,
    AccountOpening,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Payment,
        EventKind::Transfer,
        EventKind::Login,
        EventKind::LoanApplication,
        EventKind::AccountOpening,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Payment => "payment",
            EventKind::Transfer => "transfer",
            EventKind::Login => "login",
            EventKind::LoanApplication => "loan_application",
            EventKind::AccountOpening => "account_opening",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The channel an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Mobile,
    Branch,
    Atm,
    Pos,
    OpenBanking,
    CallCenter,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Mobile => "mobile",
            Channel::Branch => "branch",
            Channel::Atm => "atm",
            Channel::Pos => "pos",
            Channel::OpenBanking => "open_banking",
            Channel::CallCenter => "call_center",
        }
    }
}

/// Where the event came from (device GPS or IP geolocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoLocation {
    pub lat: f64,
    pub lon: f64,
    /// ISO 3166-1 alpha-2 country code, if known.
    #[serde(default)]
    pub country: Option<String>,
}

/// The merchant of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merchant {
    pub id: String,
    /// ISO 18245 merchant category code.
    #[serde(default)]
    pub mcc: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// One event to decide on. Unknown JSON fields are rejected; which optional fields are required
/// depends on the [`EventKind`] (see [`RiskEvent::validate`]).
///
/// `id_number` and `phone` are sensitive: they feed lists and the relationship graph but are
/// never copied into a [`crate::Decision`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskEvent {
    pub event_id: String,
    pub kind: EventKind,
    pub occurred_at: DateTime<Utc>,
    pub customer_id: String,
    pub channel: Channel,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub counterparty_account: Option<String>,
    #[serde(default)]
    pub card_id: Option<String>,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub device_fingerprint: Option<String>,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub geo: Option<GeoLocation>,
    #[serde(default)]
    pub merchant: Option<Merchant>,
    #[serde(default)]
    pub id_number: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// Start of a pseudonym: a keyed blind index written as text (`bi:<hex>`), what the risk
/// platform puts in place of an ID number or phone before the engine sees the event.
pub const PSEUDONYM_PREFIX: &str = "bi:";

/// Whether a value already is a pseudonym ([`PSEUDONYM_PREFIX`]).
pub fn is_pseudonym(value: &str) -> bool {
    value.starts_with(PSEUDONYM_PREFIX)
}

impl RiskEvent {
    /// The event with its ID number and phone replaced by `pseudonym(subject, value)` (values
    /// that already are pseudonyms are kept). The risk platform passes its keyed blind index
    /// (HMAC-SHA-256), decides on the result and stores it: lists, the relationship graph and
    /// the decision log then only ever hold pseudonyms, which cannot be brute-forced back to a
    /// phone number without the key (an unkeyed hash can).
    pub fn pseudonymised(&self, pseudonym: impl Fn(ListSubject, &str) -> String) -> RiskEvent {
        let mut e = self.clone();
        let apply = |subject, v: &Option<String>| {
            v.as_deref().map(|v| if is_pseudonym(v) { v.to_string() } else { pseudonym(subject, v) })
        };
        e.id_number = apply(ListSubject::IdNumber, &self.id_number);
        e.phone = apply(ListSubject::Phone, &self.phone);
        e
    }
}

fn present(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|v| !v.trim().is_empty())
}

impl RiskEvent {
    /// A minimal event of `kind`; fill the optional fields before validating.
    pub fn new(
        event_id: impl Into<String>,
        kind: EventKind,
        occurred_at: DateTime<Utc>,
        customer_id: impl Into<String>,
        channel: Channel,
    ) -> Self {
        RiskEvent {
            event_id: event_id.into(),
            kind,
            occurred_at,
            customer_id: customer_id.into(),
            channel,
            account_id: None,
            counterparty_account: None,
            card_id: None,
            amount: None,
            device_fingerprint: None,
            ip: None,
            geo: None,
            merchant: None,
            id_number: None,
            phone: None,
        }
    }

    /// Parses and validates a JSON event.
    pub fn from_json(text: &str) -> Result<Self, RiskError> {
        let e: RiskEvent = serde_json::from_str(text).map_err(|e| RiskError::MalformedEvent(e.to_string()))?;
        e.validate()?;
        Ok(e)
    }

    /// Checks the fields each kind requires:
    ///
    /// | kind | required |
    /// |---|---|
    /// | all | non-empty `event_id`, `customer_id` |
    /// | payment | `amount`, `merchant`, `account_id` or `card_id` |
    /// | transfer | `amount`, `account_id`, `counterparty_account` |
    /// | login | `device_fingerprint` or `ip` (reported as `ip`) |
    /// | loan_application | `amount`, `id_number` |
    /// | account_opening | `id_number`, `phone` |
    ///
    /// Amounts must be positive and coordinates in range.
    pub fn validate(&self) -> Result<(), RiskError> {
        let kind = self.kind;
        let missing = |field| Err(RiskError::MissingField { kind, field });
        if self.event_id.trim().is_empty() {
            return missing("event_id");
        }
        if self.customer_id.trim().is_empty() {
            return missing("customer_id");
        }
        let needs_amount = matches!(kind, EventKind::Payment | EventKind::Transfer | EventKind::LoanApplication);
        if needs_amount && self.amount.is_none() {
            return missing("amount");
        }
        match kind {
            EventKind::Payment => {
                if self.merchant.is_none() {
                    return missing("merchant");
                }
                if !present(&self.account_id) && !present(&self.card_id) {
                    return missing("account_id");
                }
            }
            EventKind::Transfer => {
                if !present(&self.account_id) {
                    return missing("account_id");
                }
                if !present(&self.counterparty_account) {
                    return missing("counterparty_account");
                }
            }
            EventKind::Login => {
                if !present(&self.device_fingerprint) && self.ip.is_none() {
                    return missing("ip");
                }
            }
            EventKind::LoanApplication => {
                if !present(&self.id_number) {
                    return missing("id_number");
                }
            }
            EventKind::AccountOpening => {
                if !present(&self.id_number) {
                    return missing("id_number");
                }
                if !present(&self.phone) {
                    return missing("phone");
                }
            }
        }
        if let Some(a) = &self.amount {
            if !a.is_positive() {
                return Err(RiskError::InvalidField { field: "amount", reason: format!("must be positive, got {a}") });
            }
        }
        if let Some(g) = &self.geo {
            if !(-90.0..=90.0).contains(&g.lat) || !(-180.0..=180.0).contains(&g.lon) {
                return Err(RiskError::InvalidField {
                    field: "geo",
                    reason: format!("coordinates out of range: {}, {}", g.lat, g.lon),
                });
            }
        }
        if let Some(m) = &self.merchant {
            if m.id.trim().is_empty() {
                return Err(RiskError::InvalidField { field: "merchant.id", reason: "must not be empty".into() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYMENT: &str = r#"{"event_id":"e1","kind":"payment","occurred_at":"2026-03-01T10:00:00Z",
        "customer_id":"c1","channel":"mobile","card_id":"card9","amount":{"minor":12345,"currency":"CNY"},
        "device_fingerprint":"dev1","ip":"10.1.2.3","geo":{"lat":31.2,"lon":121.5,"country":"CN"},
        "merchant":{"id":"m1","mcc":"5999"}}"#;

    #[test]
    fn parses_a_valid_payment() {
        let e = RiskEvent::from_json(PAYMENT).unwrap();
        assert_eq!(e.kind, EventKind::Payment);
        assert_eq!(e.amount.unwrap().minor, 12345);
        assert_eq!(e.ip.unwrap().to_string(), "10.1.2.3");
    }

    #[test]
    fn unknown_and_missing_fields_are_precise_errors() {
        let unknown = PAYMENT.replace("\"channel\"", "\"colour\":\"red\",\"channel\"");
        match RiskEvent::from_json(&unknown) {
            Err(RiskError::MalformedEvent(m)) => assert!(m.contains("unknown field `colour`"), "{m}"),
            other => panic!("{other:?}"),
        }
        let no_kind = PAYMENT.replace("\"kind\":\"payment\",", "");
        match RiskEvent::from_json(&no_kind) {
            Err(RiskError::MalformedEvent(m)) => assert!(m.contains("missing field `kind`"), "{m}"),
            other => panic!("{other:?}"),
        }
        let bad_kind = PAYMENT.replace("\"payment\"", "\"wire\"");
        assert!(matches!(RiskEvent::from_json(&bad_kind), Err(RiskError::MalformedEvent(_))));
        let no_merchant = PAYMENT.replace(",\n        \"merchant\":{\"id\":\"m1\",\"mcc\":\"5999\"}", "");
        assert_eq!(
            RiskEvent::from_json(&no_merchant),
            Err(RiskError::MissingField { kind: EventKind::Payment, field: "merchant" })
        );
        let bad_ip = PAYMENT.replace("10.1.2.3", "10.1.2");
        assert!(matches!(RiskEvent::from_json(&bad_ip), Err(RiskError::MalformedEvent(_))));
    }

    #[test]
    fn per_kind_requirements() {
        let t = DateTime::<Utc>::default();
        let mut e = RiskEvent::new("e", EventKind::Transfer, t, "c", Channel::Web);
        assert_eq!(e.validate(), Err(RiskError::MissingField { kind: EventKind::Transfer, field: "amount" }));
        e.amount = Some(Amount::new(-5, money::Currency::CNY));
        e.account_id = Some("a".into());
        e.counterparty_account = Some("b".into());
        assert!(matches!(e.validate(), Err(RiskError::InvalidField { field: "amount", .. })));
        let mut o = RiskEvent::new("e", EventKind::AccountOpening, t, "c", Channel::Branch);
        o.id_number = Some("110101199001011234".into());
        assert_eq!(o.validate(), Err(RiskError::MissingField { kind: EventKind::AccountOpening, field: "phone" }));
        let l = RiskEvent::new("e", EventKind::Login, t, " ", Channel::Web);
        assert_eq!(l.validate(), Err(RiskError::MissingField { kind: EventKind::Login, field: "customer_id" }));
    }
}
