//! Six months of process history for the demo bank, written through the same statement builder
//! the platforms use (`process_platform::event_statements`). The demo's loans, risk cases and
//! customers made through the real services log their own events; this adds the months of
//! business before them that a fresh demo bank cannot have lived through, with texture worth
//! finding:
//!
//! * a manual-review bottleneck at month end (from the 26th the review queue waits hours);
//! * rework when a data source times out (the social-security or tax query is repeated);
//! * one slower reviewer (`staff-zhao` takes two to three times as long per application).
//!
//! Everything is seeded: the same seed gives the same history, and a second run adds nothing.

use chrono::{Datelike, Duration, NaiveDate};
use process::{Activity, Attributes, DataSource, ProcessEvent};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use storage::Database;
use uuid::Uuid;

use crate::DemoError;

/// What the history holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProcessSummary {
    pub loan_applications: usize,
    pub risk_cases: usize,
    pub transfer_holds: usize,
    pub onboardings: usize,
    pub events: usize,
}

const REVIEWERS: [&str; 3] = ["staff-li", "staff-wang", "staff-zhao"];
const ANALYSTS: [&str; 2] = ["staff-chen", "staff-sun"];
/// Reviewer cost per minute of work, in fen (90 CNY an hour).
const REVIEW_COST_PER_MINUTE: i64 = 150;

fn secs(s: i64) -> i64 {
    s * 1_000_000
}

fn case_id(seed: u64, kind: &str, n: usize) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("digibank.demo.process.{seed}.{kind}.{n}").as_bytes()).to_string()
}

/// A business-hours arrival on `date`: weekdays 8:00–22:00, weighted to the day.
fn arrival(rng: &mut ChaCha8Rng, date: NaiveDate) -> i64 {
    let hour = *[8, 9, 10, 10, 11, 11, 12, 13, 14, 14, 15, 15, 16, 17, 19, 20, 21].choose(rng).unwrap_or(&10);
    let at = date.and_hms_opt(hour, rng.gen_range(0..60), rng.gen_range(0..60)).unwrap_or_default();
    at.and_utc().timestamp_micros() + rng.gen_range(0..1_000_000)
}

struct Case {
    id: String,
    events: Vec<ProcessEvent>,
    at: i64,
}

impl Case {
    fn new(id: String, at: i64) -> Self {
        Case { id, events: Vec::new(), at }
    }
    /// The next event after `wait` more micros, taking `service` micros of work.
    fn push(&mut self, activity: Activity, wait: i64, service: i64, resource: &str, attributes: Attributes) {
        self.at += wait + service;
        let attributes = if service > 0 { attributes.service(service) } else { attributes };
        self.events.push(ProcessEvent::new(activity, self.id.clone(), self.at, resource).with(attributes));
    }
}

/// Generates the history from `start` to `now` into `db` (nothing when it is already there).
pub(crate) async fn load(db: &Database, seed: u64, start: NaiveDate, now: i64) -> Result<ProcessSummary, DemoError> {
    let mut s = ProcessSummary::default();
    let first = case_id(seed, "loan", 0);
    let store = process_platform::ProcessStore::new(db.clone());
    if !store.case_events("loan_origination", &first).await.map_err(platform)?.is_empty() {
        return Ok(s);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0051_0CE5);
    let mut events: Vec<ProcessEvent> = Vec::new();
    let days = (now / 86_400_000_000) - start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp() / 86_400;
    for day in 0..days.max(0) {
        let date = start + Duration::days(day);
        let weekend = date.weekday().number_from_monday() >= 6;
        let month_end = date.day() >= 26;
        // Loan applications: about 20 a weekday, fewer at weekends, more at month end.
        let applications = match (weekend, month_end) {
            (true, _) => rng.gen_range(6..12),
            (false, true) => rng.gen_range(26..36),
            (false, false) => rng.gen_range(16..26),
        };
        for _ in 0..applications {
            let mut c = Case::new(case_id(seed, "loan", s.loan_applications), arrival(&mut rng, date));
            s.loan_applications += 1;
            let sme = rng.gen_bool(0.2);
            let product = if sme { "tax_sme" } else { "instant_consumer" };
            let channel = *["mobile", "mobile", "mobile", "web", "web", "branch", "open_banking"]
                .choose(&mut rng)
                .unwrap_or(&"mobile");
            let amount = if sme { rng.gen_range(100_000..1_000_000) * 100 } else { rng.gen_range(5_000..50_000) * 100 };
            let base = Attributes::default().product(product).channel(channel).amount(amount, "CNY");
            c.events.push(
                ProcessEvent::new(Activity::ApplicationReceived, c.id.clone(), c.at, process::event::CUSTOMER)
                    .with(base.clone()),
            );
            let sources: &[(DataSource, i64)] = if sme {
                &[(DataSource::Bureau, 300), (DataSource::Tax, 200)]
            } else {
                &[(DataSource::Bureau, 300), (DataSource::SocialSecurity, 100), (DataSource::HousingFund, 100)]
            };
            for (source, cost) in sources {
                let service = rng.gen_range(200_000..1_500_000);
                let flaky = matches!(source, DataSource::SocialSecurity | DataSource::Tax);
                if flaky && rng.gen_bool(0.07) {
                    // The source timed out after 30 s; the query is repeated minutes later.
                    c.push(
                        Activity::DataCollected(*source),
                        0,
                        secs(30),
                        process::event::SYSTEM,
                        base.clone().cost(*cost).outcome("timeout"),
                    );
                    c.push(
                        Activity::DataCollected(*source),
                        secs(rng.gen_range(60..300)),
                        service,
                        process::event::SYSTEM,
                        base.clone().cost(*cost),
                    );
                } else {
                    c.push(
                        Activity::DataCollected(*source),
                        0,
                        service,
                        process::event::SYSTEM,
                        base.clone().cost(*cost),
                    );
                }
            }
            c.push(
                Activity::FraudChecked,
                0,
                rng.gen_range(20_000..80_000),
                process::event::SYSTEM,
                base.clone().outcome("allow"),
            );
            c.push(Activity::Scored, 0, rng.gen_range(5_000..20_000), process::event::SYSTEM, base.clone());
            let roll: f64 = rng.gen();
            let (review_share, decline_share) = if sme { (0.40, 0.15) } else { (0.18, 0.18) };
            let approved = if roll < review_share {
                c.push(Activity::QueuedForReview, 0, 1_000, process::event::SYSTEM, base.clone().outcome("review"));
                let reviewer = *REVIEWERS.choose(&mut rng).unwrap_or(&REVIEWERS[0]);
                let wait =
                    if month_end { secs(rng.gen_range(2 * 3600..6 * 3600)) } else { secs(rng.gen_range(600..2400)) };
                let minutes = if reviewer == "staff-zhao" { rng.gen_range(14..32) } else { rng.gen_range(4..12) };
                let approve = rng.gen_bool(0.7);
                c.push(
                    Activity::Reviewed,
                    wait,
                    secs(minutes * 60),
                    reviewer,
                    base.clone()
                        .outcome(if approve { "approved" } else { "declined" })
                        .cost(minutes * REVIEW_COST_PER_MINUTE),
                );
                approve
            } else if roll < review_share + decline_share {
                c.push(Activity::AutoDeclined, 0, 1_000, process::event::SYSTEM, base.clone().outcome("decline"));
                false
            } else {
                c.push(Activity::AutoApproved, 0, 1_000, process::event::SYSTEM, base.clone().outcome("approve"));
                true
            };
            if approved {
                c.push(Activity::OfferMade, secs(rng.gen_range(1..4)), 50_000, process::event::SYSTEM, base.clone());
                if rng.gen_bool(0.75) {
                    c.push(
                        Activity::OfferAccepted,
                        secs(rng.gen_range(300..172_800)),
                        0,
                        process::event::CUSTOMER,
                        base.clone(),
                    );
                    c.push(
                        Activity::Disbursed,
                        0,
                        rng.gen_range(500_000..3_000_000),
                        process::event::SYSTEM,
                        base.clone(),
                    );
                }
            }
            events.extend(c.events.into_iter().filter(|e| e.at <= now));
        }
        // Risk review cases and transfer holds.
        for _ in 0..rng.gen_range(1..5) {
            let mut c = Case::new(case_id(seed, "risk", s.risk_cases), arrival(&mut rng, date));
            s.risk_cases += 1;
            let kind = if rng.gen_bool(0.6) { "transfer" } else { "loan_application" };
            let base = Attributes::default().product(kind);
            c.events.push(
                ProcessEvent::new(Activity::CaseOpened, c.id.clone(), c.at, process::event::SYSTEM)
                    .with(base.clone().outcome("review")),
            );
            let analyst = *ANALYSTS.choose(&mut rng).unwrap_or(&ANALYSTS[0]);
            c.push(Activity::CaseAssigned, secs(rng.gen_range(300..3600)), 0, analyst, base.clone());
            let fraud = rng.gen_bool(0.2);
            let minutes = rng.gen_range(5..40);
            c.push(
                Activity::CaseResolved,
                secs(rng.gen_range(60..7200)),
                secs(minutes * 60),
                analyst,
                base.clone()
                    .outcome(if fraud { "confirmed_fraud" } else { "false_positive" })
                    .cost(minutes * REVIEW_COST_PER_MINUTE),
            );
            if kind == "transfer" {
                // The held transfer: held when the case opened, released or voided when resolved.
                let opened = c.events[0].at;
                let (resolved, who) = (c.at, analyst);
                let mut h = Case::new(case_id(seed, "hold", s.transfer_holds), opened);
                s.transfer_holds += 1;
                let amount = rng.gen_range(5_000..200_000) * 100;
                let base = Attributes::default().amount(amount, "CNY").channel("mobile");
                h.events.push(
                    ProcessEvent::new(Activity::TransferHeld, h.id.clone(), opened, process::event::SYSTEM)
                        .with(base.clone().outcome("review")),
                );
                let activity = if fraud { Activity::HoldVoided } else { Activity::HoldReleased };
                let outcome = if fraud { "confirmed_fraud" } else { "false_positive" };
                h.push(activity, resolved - opened, 0, who, base.outcome(outcome));
                events.extend(h.events.into_iter().filter(|e| e.at <= now));
            }
            events.extend(c.events.into_iter().filter(|e| e.at <= now));
        }
        // Customer onboarding: registration, then KYC verification (or rejection).
        for _ in 0..rng.gen_range(8..16) {
            let mut c = Case::new(case_id(seed, "customer", s.onboardings), arrival(&mut rng, date));
            s.onboardings += 1;
            let kind = if rng.gen_bool(0.15) { "sme" } else { "individual" };
            let (resource, channel) =
                if rng.gen_bool(0.7) { (process::event::CUSTOMER, "mobile") } else { ("staff-branch-1", "branch") };
            let base = Attributes::default().product(kind).channel(channel);
            c.events.push(
                ProcessEvent::new(Activity::CustomerRegistered, c.id.clone(), c.at, resource)
                    .with(base.clone().outcome("pending")),
            );
            let verified = rng.gen_bool(0.93);
            c.push(
                Activity::KycChanged,
                secs(rng.gen_range(60..172_800)),
                secs(rng.gen_range(60..600)),
                "staff-kyc-1",
                base.outcome(if verified { "verified" } else { "rejected" }),
            );
            events.extend(c.events.into_iter().filter(|e| e.at <= now));
        }
    }
    s.events = events.len();
    for chunk in events.chunks(20_000) {
        storage::execute_all(db, &process_platform::event_statements(chunk)).await?;
    }
    Ok(s)
}

fn platform(e: process_platform::ProcessPlatformError) -> DemoError {
    DemoError::Process(e.to_string())
}
