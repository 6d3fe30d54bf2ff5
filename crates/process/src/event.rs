//! The bank's own processes, their activities, and one recorded event.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A business process digibank runs and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    /// Case: the application (decision id). Received → data → fraud check → score → decision
    /// (auto or review) → offer → acceptance → disbursement.
    LoanOrigination,
    /// Case: the customer id. Registration, KYC changes, closure, merge.
    CustomerOnboarding,
    /// Case: the risk case id. Opened, assigned, resolved.
    RiskCase,
    /// Case: the held transfer id. Held for review, then released (posted) or voided.
    TransferHold,
}

impl Process {
    pub const ALL: [Process; 4] =
        [Process::LoanOrigination, Process::CustomerOnboarding, Process::RiskCase, Process::TransferHold];

    pub fn as_str(self) -> &'static str {
        match self {
            Process::LoanOrigination => "loan_origination",
            Process::CustomerOnboarding => "customer_onboarding",
            Process::RiskCase => "risk_case",
            Process::TransferHold => "transfer_hold",
        }
    }

    pub fn parse(s: &str) -> Option<Process> {
        Process::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The object type of this process's cases in an OCEL export.
    pub fn object_type(self) -> &'static str {
        match self {
            Process::LoanOrigination => "loan_application",
            Process::CustomerOnboarding => "customer",
            Process::RiskCase => "risk_case",
            Process::TransferHold => "transfer",
        }
    }
}

/// An external data source collected for a loan application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    Bureau,
    SocialSecurity,
    HousingFund,
    Tax,
    Erp,
}

/// An activity of one of the bank's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    ApplicationReceived,
    DataCollected(DataSource),
    FraudChecked,
    Scored,
    AutoApproved,
    AutoDeclined,
    QueuedForReview,
    Reviewed,
    OfferMade,
    OfferAccepted,
    Disbursed,
    CustomerRegistered,
    KycChanged,
    CustomerClosed,
    CustomerMerged,
    CaseOpened,
    CaseAssigned,
    CaseResolved,
    TransferHeld,
    HoldReleased,
    HoldVoided,
}

impl Activity {
    /// The activity's name in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::ApplicationReceived => "application_received",
            Activity::DataCollected(DataSource::Bureau) => "bureau_data_collected",
            Activity::DataCollected(DataSource::SocialSecurity) => "social_security_data_collected",
            Activity::DataCollected(DataSource::HousingFund) => "housing_fund_data_collected",
            Activity::DataCollected(DataSource::Tax) => "tax_data_collected",
            Activity::DataCollected(DataSource::Erp) => "erp_data_collected",
            Activity::FraudChecked => "fraud_checked",
            Activity::Scored => "scored",
            Activity::AutoApproved => "auto_approved",
            Activity::AutoDeclined => "auto_declined",
            Activity::QueuedForReview => "queued_for_review",
            Activity::Reviewed => "reviewed",
            Activity::OfferMade => "offer_made",
            Activity::OfferAccepted => "offer_accepted",
            Activity::Disbursed => "disbursed",
            Activity::CustomerRegistered => "customer_registered",
            Activity::KycChanged => "kyc_changed",
            Activity::CustomerClosed => "customer_closed",
            Activity::CustomerMerged => "customer_merged",
            Activity::CaseOpened => "case_opened",
            Activity::CaseAssigned => "case_assigned",
            Activity::CaseResolved => "case_resolved",
            Activity::TransferHeld => "transfer_held",
            Activity::HoldReleased => "hold_released",
            Activity::HoldVoided => "hold_voided",
        }
    }

    /// The process the activity belongs to.
    pub fn process(self) -> Process {
        use Activity::*;
        match self {
            ApplicationReceived | DataCollected(_) | FraudChecked | Scored | AutoApproved | AutoDeclined
            | QueuedForReview | Reviewed | OfferMade | OfferAccepted | Disbursed => Process::LoanOrigination,
            CustomerRegistered | KycChanged | CustomerClosed | CustomerMerged => Process::CustomerOnboarding,
            CaseOpened | CaseAssigned | CaseResolved => Process::RiskCase,
            TransferHeld | HoldReleased | HoldVoided => Process::TransferHold,
        }
    }
}

/// What an event says besides who did what when. Typed on purpose: there is no free-form map,
/// so names, ID numbers or phone numbers cannot be logged by accident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attributes {
    /// Product code (`instant_consumer`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Amount in minor units (fen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Channel (`web`, `mobile`, `branch`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The outcome the activity reached (`approve`, `review`, `verified`, `false_positive`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Direct cost of the activity in minor units (a bureau query, a reviewer's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_minor: Option<i64>,
    /// How long the work itself took, in microseconds, when the recorder measured it; the rest
    /// of the time since the case's previous event was waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_micros: Option<i64>,
}

impl Attributes {
    pub fn product(mut self, product: impl Into<String>) -> Self {
        self.product = Some(product.into());
        self
    }
    pub fn amount(mut self, minor: i64, currency: impl Into<String>) -> Self {
        self.amount_minor = Some(minor);
        self.currency = Some(currency.into());
        self
    }
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }
    pub fn cost(mut self, minor: i64) -> Self {
        self.cost_minor = Some(minor);
        self
    }
    pub fn service(mut self, micros: i64) -> Self {
        self.service_micros = Some(micros.max(0));
        self
    }
}

/// Resource of automated steps.
pub const SYSTEM: &str = "system";
/// Resource of steps the customer takes (applying, accepting).
pub const CUSTOMER: &str = "customer";

/// One event as a platform records it, in the transaction of the state change it describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEvent {
    pub process: Process,
    pub case_id: String,
    pub activity: Activity,
    /// UTC microseconds since the epoch, from the recorder's Clock.
    pub at: i64,
    pub resource: String,
    pub attributes: Attributes,
}

impl ProcessEvent {
    /// An event of `activity` (its process follows from it) by `resource`.
    pub fn new(activity: Activity, case_id: impl Into<String>, at: i64, resource: impl Into<String>) -> Self {
        ProcessEvent {
            process: activity.process(),
            case_id: case_id.into(),
            activity,
            at,
            resource: resource.into(),
            attributes: Attributes::default(),
        }
    }

    pub fn with(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// The attributes as stored (a JSON object).
    pub fn attributes_json(&self) -> String {
        serde_json::to_string(&self.attributes).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_activities_know_their_process() {
        for p in Process::ALL {
            assert_eq!(Process::parse(p.as_str()), Some(p));
        }
        assert_eq!(Activity::Reviewed.process(), Process::LoanOrigination);
        assert_eq!(Activity::HoldVoided.process(), Process::TransferHold);
        let e = ProcessEvent::new(Activity::DataCollected(DataSource::Bureau), "a1", 5, SYSTEM)
            .with(Attributes::default().product("instant_consumer").cost(200));
        assert_eq!(e.process, Process::LoanOrigination);
        assert_eq!(e.activity.as_str(), "bureau_data_collected");
        assert_eq!(e.attributes_json(), r#"{"product":"instant_consumer","cost_minor":200}"#);
    }
}
