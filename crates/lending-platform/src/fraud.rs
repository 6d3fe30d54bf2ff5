//! The fraud check of a loan application is a `loan_application` decision of the risk engine
//! (lists, velocity, device / phone / IP relationship graph, model, rules): stored in the
//! decision log with its reasons, opening a review case when its outcome is `review`, and cited
//! on the lending decision (its id, case and reasons).

use chrono::{DateTime, Utc};
use lending::{Applicant, FraudOutcome, FraudVerdict, Product, Reason};
use money::{Amount, Currency};
use risk::{EventKind, Outcome, RiskEvent};
use risk_platform::RiskService;

use crate::service::ApplyInput;
use crate::{LendingPlatformError, Result};

/// The risk event of an application: who applies, for how much, from which channel and, when
/// the channel knows them, on which device, from which IP and with which phone.
pub(crate) fn application_event(
    event_id: String,
    input: &ApplyInput,
    applicant: &Applicant,
    product: &Product,
    now: DateTime<Utc>,
) -> Result<RiskEvent> {
    let channel = input.channel.unwrap_or(risk::Channel::Web);
    let mut event = RiskEvent::new(event_id, EventKind::LoanApplication, now, applicant.id.clone(), channel);
    let requested = input.amount.unwrap_or(product.max_amount_minor);
    if requested <= 0 {
        return Err(LendingPlatformError::Invalid("amount must be positive (minor units)".into()));
    }
    event.amount = Some(Amount::new(requested, Currency::CNY));
    // The applicant id is the customer id or ID number external data is looked up under.
    event.id_number = Some(input.id_number.clone().unwrap_or_else(|| applicant.id.clone()));
    event.phone = input.phone.clone();
    event.device_fingerprint = input.device_fingerprint.clone();
    event.ip = match input.ip.as_deref() {
        Some(text) => Some(
            text.parse().map_err(|_| LendingPlatformError::Invalid(format!("ip: {text:?} is not an IP address")))?,
        ),
        None => None,
    };
    Ok(event)
}

/// Asks the engine and turns its decision into the lending decision's fraud verdict; returns
/// once the risk decision (and any case) is stored.
pub(crate) async fn check(risk: &RiskService, event: &RiskEvent) -> Result<FraudOutcome> {
    let view = risk.decide_durably(event).await?;
    let verdict = match view.outcome {
        Outcome::Allow => FraudVerdict::Allow,
        Outcome::Review => FraudVerdict::Review,
        Outcome::Reject => FraudVerdict::Reject,
    };
    let word = match verdict {
        FraudVerdict::Allow => "noted",
        FraudVerdict::Review => "review",
        FraudVerdict::Reject => "rejected",
    };
    // An allowed application keeps its reasons off the decision (they are in the risk log).
    let reasons = if verdict == FraudVerdict::Allow {
        Vec::new()
    } else {
        view.reasons.iter().map(|r| Reason::new(&r.code, format!("{word} by risk engine: {}", r.explanation))).collect()
    };
    Ok(FraudOutcome { verdict, reasons, risk_decision_id: Some(view.id), risk_case_id: view.case_id })
}
