//! Transfer screening: a transfer from a screened channel becomes a `transfer` risk event; a
//! `reject` stops it before the ledger, a `review` holds the funds as a two-phase pending
//! transfer until an analyst resolves the case ([`RiskService::resolve_case`]).

use ledger::{TransferKind, TransferOutcome, TransferRequest};
use risk::{EventKind, Outcome, RiskEvent};

use crate::error::{Result, RiskPlatformError};
use crate::{DecisionView, RiskService};

/// What screening decided for a transfer request.
pub enum Screening {
    /// Not screened (channel not configured, not a new money movement, or a retry).
    Skipped,
    Allowed(Box<DecisionView>),
    Review(Box<DecisionView>),
}

fn metadata_str<'a>(request: &'a TransferRequest, key: &str) -> Option<&'a str> {
    request.metadata.as_ref()?.get(key)?.as_str()
}

impl RiskService {
    /// Screens a transfer whose `metadata.channel` is configured for screening. A `reject` is
    /// [`RiskPlatformError::Rejected`] (with the decision): nothing reaches the ledger.
    pub async fn screen_transfer(&self, request: &TransferRequest) -> Result<Screening> {
        if !matches!(request.kind, TransferKind::Posted | TransferKind::Pending) {
            return Ok(Screening::Skipped);
        }
        let Some(channel_text) = metadata_str(request, "channel") else { return Ok(Screening::Skipped) };
        let Ok(channel) = serde_json::from_value::<risk::Channel>(serde_json::Value::String(channel_text.to_string()))
        else {
            return Ok(Screening::Skipped);
        };
        if !self.screens(channel) {
            return Ok(Screening::Skipped);
        }
        // A retry of a transfer that already exists is not a new event: the ledger replays it.
        if self.ledger().transfer(request.id).await.is_ok() {
            return Ok(Screening::Skipped);
        }
        let (Some(debit), Some(credit), Some(amount), Some(currency)) =
            (request.debit_account_id, request.credit_account_id, request.amount, request.currency)
        else {
            return Ok(Screening::Skipped);
        };
        let customer =
            metadata_str(request, "customer_id").map_or_else(|| format!("account:{}", debit.0), str::to_string);
        let mut event = RiskEvent::new(request.id.0.to_string(), EventKind::Transfer, self.now(), customer, channel);
        event.account_id = Some(debit.0.to_string());
        event.counterparty_account = Some(credit.0.to_string());
        event.amount = Some(money::Amount::new(amount, currency));
        event.device_fingerprint = metadata_str(request, "device_fingerprint").map(str::to_string);
        event.ip = metadata_str(request, "ip").and_then(|ip| ip.parse().ok());
        if event.amount.is_some_and(|a| !a.is_positive()) {
            return Ok(Screening::Skipped); // the ledger rejects it with its own error
        }
        let view = self.decide(&event, Some(request.id.0)).await?;
        match view.outcome {
            Outcome::Reject => Err(RiskPlatformError::Rejected(Box::new(view))),
            Outcome::Review => Ok(Screening::Review(Box::new(view))),
            Outcome::Allow => Ok(Screening::Allowed(Box::new(view))),
        }
    }

    /// Submits a transfer the engine sent to review as a pending hold that lasts at most
    /// `review_hold_secs`.
    /// The hold and its `transfer_held` process event commit together.
    pub async fn hold_for_review(&self, mut request: TransferRequest) -> Result<TransferOutcome> {
        request.kind = TransferKind::Pending;
        request.timeout_secs = self.config.review_hold_secs;
        let mut attributes = process::Attributes::default().outcome("review");
        if let (Some(amount), Some(currency)) = (request.amount, request.currency) {
            attributes = attributes.amount(amount, currency.code());
        }
        if let Some(channel) = metadata_str(&request, "channel") {
            attributes = attributes.channel(channel);
        }
        let event = process::ProcessEvent::new(
            process::Activity::TransferHeld,
            request.id.0.to_string(),
            self.now().timestamp_micros(),
            process::event::SYSTEM,
        )
        .with(attributes);
        let held = process_platform::event_statement(&event);
        let outcomes = self
            .ledger()
            .submit_batch_with(
                vec![request],
                Box::new(move |outcomes| match outcomes.first() {
                    Some(TransferOutcome::Created { .. }) => vec![held],
                    _ => Vec::new(),
                }),
            )
            .await?;
        outcomes.into_iter().next().ok_or_else(|| RiskPlatformError::Corrupt("the ledger answered no outcome".into()))
    }
}
