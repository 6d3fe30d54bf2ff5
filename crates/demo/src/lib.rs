//! # demo
//!
//! Generates a reproducible synthetic bank so every feature can be seen working in minutes and
//! benchmarks run on realistic data at any scale. The same seed gives the same customers,
//! accounts and transfers (ids included), so loading twice is a no-op: every write is an
//! idempotent replay.
//!
//! The bank: general-ledger accounts (clearing, interest expense, fee income), and customers in
//! four behaviour profiles (salaried mass-market, wealth, SME, and customers who go dormant),
//! each with a current account and six months of history: salaries and business revenue coming
//! in, spending going out, peer transfers, monthly interest and fees, and card authorisations as
//! two-phase holds (most captured, some voided, a few still open).

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use ledger::{
    AccountId, AccountKind, Ledger, LedgerError, ManualClock, NewAccount, OwnerType, TransferId, TransferOutcome,
    TransferRequest, MAX_BATCH,
};
use money::Currency;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use storage::Database;
use uuid::Uuid;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub customers: usize,
    pub seed: u64,
    pub months: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { customers: 200, seed: 42, months: 6 }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DemoSummary {
    pub customers: usize,
    pub accounts: usize,
    pub transfers_created: usize,
    pub transfers_replayed: usize,
    pub transfers_rejected: usize,
    pub open_holds: usize,
    /// Well-known accounts for trying the API.
    pub sample_accounts: Vec<SampleAccount>,
    /// Customer master records created by this run (0 when they already existed).
    pub customers_registered: usize,
    /// Held-out AUC of the churn model, when this run trained it.
    pub churn_auc: Option<f64>,
    /// The full tag/segment/churn recomputation over the demo customers.
    pub recompute: Option<customer_platform::RecomputeReport>,
    /// Loans in every state, made through the lending service (ledger-backed).
    pub lending: Option<LendingSummary>,
    /// Six months of process history (loan origination, risk cases, transfer holds, onboarding).
    pub process: Option<ProcessSummary>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SampleAccount {
    pub label: String,
    pub id: AccountId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Salaried,
    Wealth,
    Sme,
    GoingDormant,
}

mod alerts;
mod customers;
mod loans;
mod process_history;

pub use alerts::{alert_rules, ensure_alert_rules};

pub use loans::LendingSummary;
pub use process_history::ProcessSummary;

struct Customer {
    id: String,
    profile: Profile,
    account: AccountId,
    /// Monthly income in fen.
    income: i64,
}

/// The bank's own accounts, fixed ids so every demo bank has the same chart of accounts.
pub struct GlAccounts {
    pub clearing: AccountId,
    pub interest_expense: AccountId,
    pub fee_income: AccountId,
}

fn fixed_id(name: &str) -> AccountId {
    AccountId(Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("digibank.demo.{name}").as_bytes()))
}

/// Demo customer ids are derived from the seed and the customer's number, so they are stable
/// without consuming the random stream that shapes the ledger history.
fn customer_id(seed: u64, i: usize) -> customer::CustomerId {
    customer::CustomerId::from_u128(
        Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("digibank.demo.{seed}.customer.{i}").as_bytes()).as_u128(),
    )
}

fn random_uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn gl(id: AccountId, code: &str, name: &str, kind: AccountKind) -> NewAccount {
    NewAccount {
        id: Some(id),
        currency: Currency::CNY,
        kind,
        owner_type: OwnerType::Bank,
        owner_id: None,
        code: Some(code.into()),
        name: Some(name.into()),
        debits_must_not_exceed_credits: false,
        credits_must_not_exceed_debits: false,
        overdraft_limit: 0,
    }
}

/// Why generating the demo bank failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Customers(#[from] customer_platform::PlatformError),
    #[error(transparent)]
    Lending(#[from] lending_platform::LendingPlatformError),
    #[error(transparent)]
    Risk(#[from] risk_platform::RiskPlatformError),
    #[error("process log: {0}")]
    Process(String),
    #[error(transparent)]
    Storage(#[from] storage::UnitOfWorkError),
}

/// Generates the demo bank into `db`, personal data sealed by `vault`. `progress(done, total)`
/// reports transfers submitted. History ends today; the ledger's timestamps follow the
/// simulated days.
pub async fn generate(
    db: &Database,
    vault: &access::Vault,
    config: &DemoConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<DemoSummary, DemoError> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let days = i64::from(config.months) * 30;
    let today = Utc::now().date_naive();
    let start = today - Duration::days(days);
    let clock = Arc::new(ManualClock::at_micros(micros_at(start, 0)));
    let ledger = Ledger::with_clock(db, clock.clone());

    let gls = GlAccounts {
        clearing: fixed_id("gl.clearing"),
        interest_expense: fixed_id("gl.interest_expense"),
        fee_income: fixed_id("gl.fee_income"),
    };
    ledger
        .open_accounts(&[
            gl(gls.clearing, "gl.clearing", "Clearing account with the central bank", AccountKind::Asset),
            gl(gls.interest_expense, "gl.interest_expense", "Interest paid to depositors", AccountKind::Expense),
            gl(gls.fee_income, "gl.fee_income", "Fee income", AccountKind::Income),
        ])
        .await?;

    let mut customers = Vec::with_capacity(config.customers);
    for i in 0..config.customers {
        let roll: f64 = rng.gen();
        let profile = match roll {
            r if r < 0.62 => Profile::Salaried,
            r if r < 0.75 => Profile::Wealth,
            r if r < 0.90 => Profile::Sme,
            _ => Profile::GoingDormant,
        };
        let income = match profile {
            Profile::Salaried | Profile::GoingDormant => rng.gen_range(yuan(4_000)..yuan(20_000)),
            Profile::Wealth => rng.gen_range(yuan(40_000)..yuan(150_000)),
            Profile::Sme => rng.gen_range(yuan(80_000)..yuan(600_000)),
        };
        customers.push(Customer {
            id: customer_id(config.seed, i).to_string(),
            profile,
            account: AccountId(random_uuid(&mut rng)),
            income,
        });
    }
    for chunk in customers.chunks(5000) {
        let requests: Vec<NewAccount> = chunk
            .iter()
            .map(|c| NewAccount {
                id: Some(c.account),
                currency: Currency::CNY,
                kind: AccountKind::Liability,
                owner_type: OwnerType::Customer,
                owner_id: Some(c.id.clone()),
                code: Some(if c.profile == Profile::Sme { "deposit.business" } else { "deposit.current" }.into()),
                name: None,
                debits_must_not_exceed_credits: true,
                credits_must_not_exceed_debits: false,
                overdraft_limit: 0,
            })
            .collect();
        ledger.open_accounts(&requests).await?;
    }

    // Opening balances on day zero: wealth customers bring their AUM, the others a few months
    // of income.
    let mut days_plan: Vec<Vec<(u32, TransferRequest)>> = vec![Vec::new(); days as usize + 1];
    for c in &customers {
        {
            let amount = match c.profile {
                Profile::Wealth => rng.gen_range(yuan(500_000)..yuan(5_000_000)),
                _ => c.income * rng.gen_range(1..4),
            };
            days_plan[0].push((
                9 * 3600,
                TransferRequest::posted(
                    TransferId(random_uuid(&mut rng)),
                    gls.clearing,
                    c.account,
                    amount,
                    Currency::CNY,
                )
                .with_reference("opening balance")
                .with_metadata(serde_json::json!({"channel": "branch", "type": "deposit"})),
            ));
        }
    }
    let channels = ["mobile_app", "mobile_app", "mobile_app", "web", "branch", "partner"];
    let merchants = ["grocery", "restaurant", "travel", "utilities", "ecommerce", "education", "healthcare"];
    for (day, today_plan) in days_plan.iter_mut().enumerate().skip(1) {
        let month_day = (day % 30) as u32;
        for c in &customers {
            let dormant = c.profile == Profile::GoingDormant && day > 60;
            if dormant {
                continue;
            }
            let mut push = |secs: u32, r: TransferRequest| today_plan.push((secs, r));
            if month_day == 10 && c.profile != Profile::Sme {
                push(
                    8 * 3600 + rng.gen_range(0..3600),
                    TransferRequest::posted(
                        TransferId(random_uuid(&mut rng)),
                        gls.clearing,
                        c.account,
                        c.income,
                        Currency::CNY,
                    )
                    .with_reference("salary")
                    .with_metadata(serde_json::json!({"channel": "payroll", "type": "salary"})),
                );
            }
            if c.profile == Profile::Sme && rng.gen_bool(0.25) {
                let amount = c.income / 8 + rng.gen_range(0..c.income / 8);
                push(
                    rng.gen_range(9 * 3600..17 * 3600),
                    TransferRequest::posted(
                        TransferId(random_uuid(&mut rng)),
                        gls.clearing,
                        c.account,
                        amount,
                        Currency::CNY,
                    )
                    .with_reference("sales receipt")
                    .with_metadata(serde_json::json!({"channel": "web", "type": "revenue"})),
                );
            }
            let spend_rate = if c.profile == Profile::Sme { 0.30 } else { 0.35 };
            if rng.gen_bool(spend_rate) {
                let amount = (c.income / 60).max(100) * rng.gen_range(1..4);
                let merchant = merchants.choose(&mut rng).copied().unwrap_or("grocery");
                let channel = channels.choose(&mut rng).copied().unwrap_or("mobile_app");
                let secs = rng.gen_range(7 * 3600..23 * 3600);
                if rng.gen_bool(0.3) {
                    // Card authorisation: a hold that is captured later today, or voided.
                    let hold = TransferId(random_uuid(&mut rng));
                    push(
                        secs,
                        TransferRequest::pending(hold, c.account, gls.clearing, amount, Currency::CNY)
                            .with_reference(format!("card auth {merchant}"))
                            .with_metadata(serde_json::json!({"channel": "card", "merchant_category": merchant}))
                            .with_timeout(if day + 2 >= days as usize { 7 * 86_400 } else { 0 }),
                    );
                    if day + 2 < days as usize {
                        let resolve_id = TransferId(random_uuid(&mut rng));
                        let resolution = if rng.gen_bool(0.9) {
                            TransferRequest::post(resolve_id, hold, Some(amount - rng.gen_range(0..amount / 20 + 1)))
                        } else {
                            TransferRequest::void(resolve_id, hold)
                        };
                        push((secs + 1800).min(86_399), resolution);
                    }
                } else {
                    push(
                        secs,
                        TransferRequest::posted(
                            TransferId(random_uuid(&mut rng)),
                            c.account,
                            gls.clearing,
                            amount,
                            Currency::CNY,
                        )
                        .with_reference(format!("payment {merchant}"))
                        .with_metadata(serde_json::json!({"channel": channel, "merchant_category": merchant})),
                    );
                }
            }
            if rng.gen_bool(0.03) {
                if let Some(peer) = customers.choose(&mut rng) {
                    if peer.account != c.account {
                        let amount = rng.gen_range(yuan(50)..yuan(2_000));
                        push(
                            rng.gen_range(7 * 3600..23 * 3600),
                            TransferRequest::posted(
                                TransferId(random_uuid(&mut rng)),
                                c.account,
                                peer.account,
                                amount,
                                Currency::CNY,
                            )
                            .with_reference("p2p transfer")
                            .with_metadata(serde_json::json!({"channel": "mobile_app", "type": "p2p"})),
                        );
                    }
                }
            }
            if month_day == 0 {
                push(
                    23 * 3600 + 1800,
                    TransferRequest::posted(
                        TransferId(random_uuid(&mut rng)),
                        gls.interest_expense,
                        c.account,
                        (c.income / 400).max(1),
                        Currency::CNY,
                    )
                    .with_reference("monthly interest"),
                );
                if c.profile == Profile::Sme {
                    push(
                        23 * 3600 + 1900,
                        TransferRequest::posted(
                            TransferId(random_uuid(&mut rng)),
                            c.account,
                            gls.fee_income,
                            yuan(30),
                            Currency::CNY,
                        )
                        .with_reference("account maintenance fee"),
                    );
                }
            }
        }
    }

    let total: u64 = days_plan.iter().map(|d| d.len() as u64).sum();
    let mut summary = DemoSummary { customers: customers.len(), accounts: customers.len() + 3, ..Default::default() };
    let mut done = 0u64;
    for (day, mut plan) in days_plan.into_iter().enumerate() {
        // A stable sort keeps holds before their capture when both fall on the same second.
        plan.sort_by_key(|(secs, _)| *secs);
        let date = start + Duration::days(day as i64);
        for chunk in plan.chunks(MAX_BATCH) {
            clock.set_micros(micros_at(date, chunk[0].0));
            let requests: Vec<TransferRequest> = chunk.iter().map(|(_, r)| r.clone()).collect();
            for outcome in ledger.submit_batch(&requests).await? {
                match outcome {
                    TransferOutcome::Created { .. } => summary.transfers_created += 1,
                    TransferOutcome::Replayed { .. } => summary.transfers_replayed += 1,
                    TransferOutcome::Failed { .. } => summary.transfers_rejected += 1,
                }
            }
            done += chunk.len() as u64;
            progress(done, total);
        }
    }
    summary.open_holds = count_open_holds(&ledger).await?;
    summary.sample_accounts = vec![
        SampleAccount { label: "gl.clearing".into(), id: gls.clearing },
        SampleAccount { label: "gl.fee_income".into(), id: gls.fee_income },
    ];
    for profile in [Profile::Salaried, Profile::Wealth, Profile::Sme, Profile::GoingDormant] {
        if let Some(c) = customers.iter().find(|c| c.profile == profile) {
            summary.sample_accounts.push(SampleAccount { label: format!("{} ({profile:?})", c.id), id: c.account });
        }
    }
    let platform = customers::load(db, vault, &ledger, &customers, config.seed, today).await?;
    summary.customers_registered = platform.registered;
    summary.churn_auc = platform.churn_auc;
    summary.recompute = Some(platform.recompute);
    // Demo applications are fraud-checked by the risk engine like any other.
    let risk_config = risk_platform::RiskConfig { refresh_secs: 0, ..risk_platform::RiskConfig::default() };
    let risk = std::sync::Arc::new(risk_platform::RiskService::load(db, &ledger, risk_config, vault.clone()).await?);
    let lending = lending_platform::LendingService::new(db.clone(), ledger.clone(), vault.clone()).with_risk(risk);
    let (_, entries_before) = ledger.store().counts().await?;
    let mut book = loans::load(&lending, &customers, today).await?;
    let (_, entries_after) = ledger.store().counts().await?;
    if book.ledger_transfers as i64 != entries_after - entries_before {
        tracing::debug!(counted = book.ledger_transfers, journal = entries_after - entries_before, "lending transfers");
    }
    book.ledger_transfers = (entries_after - entries_before) as usize;
    summary.lending = Some(book);
    summary.process = Some(process_history::load(db, config.seed, start, Utc::now().timestamp_micros()).await?);
    Ok(summary)
}

async fn count_open_holds(ledger: &Ledger) -> Result<usize, LedgerError> {
    let mut open = 0;
    let mut after = None;
    loop {
        let page = ledger.list_accounts(after, 1000).await?;
        open += page.iter().filter(|a| a.owner_type == OwnerType::Customer && a.balances.debits_pending > 0).count();
        if page.len() < 1000 {
            return Ok(open);
        }
        after = page.last().map(|a| a.id);
    }
}

/// Whole yuan in fen.
const fn yuan(amount: i64) -> i64 {
    amount * 100
}

fn micros_at(date: NaiveDate, secs: u32) -> i64 {
    date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_micros() + i64::from(secs) * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demo_bank_is_reproducible_and_verifies() {
        let db = storage::testing::sqlite().await;
        let config = DemoConfig { customers: 40, seed: 7, months: 2 };
        let vault = access::Vault::for_tests(&db.db).await;
        let first = generate(&db.db, &vault, &config, |_, _| {}).await.unwrap();
        assert!(first.transfers_created > 500, "{first:?}");
        assert_eq!(first.transfers_replayed, 0);
        // Loading the same seed again replays every committed transfer; only transfers that were
        // rejected the first time (not stored) can be accepted now.
        let second = generate(&db.db, &vault, &config, |_, _| {}).await.unwrap();
        assert_eq!(second.transfers_replayed, first.transfers_created);
        assert!(second.transfers_created <= first.transfers_rejected);
        assert!(first.transfers_rejected * 50 < first.transfers_created, "{first:?}");
        let ledger = Ledger::new(&db.db);
        let report = ledger.verify(|_, _| {}).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        // The lending book (loaded once) adds its disbursements, draws, repayments and accruals.
        let lending = first.lending.as_ref().unwrap();
        assert!(lending.loans >= 5, "{lending:?}");
        assert_eq!(second.lending.as_ref().unwrap().loans, 0, "loaded once");
        // The process history (loaded once) has the texture the mining is meant to find.
        let history = first.process.as_ref().unwrap();
        assert!(history.loan_applications > 500 && history.risk_cases > 0, "{history:?}");
        assert!(history.transfer_holds > 0 && history.onboardings > 0, "{history:?}");
        assert_eq!(second.process.as_ref().unwrap().events, 0, "loaded once");
        let mining = process_platform::ProcessService::new(db.db.clone(), Arc::new(ledger::SystemClock));
        let source = process_platform::LogSource::Live(::process::Process::LoanOrigination);
        let log = mining.load(&source, &::process::Filter::default()).await.unwrap();
        let (rework, _) = ::process::mining::rework(&log);
        assert!(rework.iter().any(|r| r.activity == "social_security_data_collected"), "{rework:?}");
        let review_service = |who: &str| {
            let only = log.filtered(&::process::Filter { resource: Some(who.into()), ..Default::default() });
            let graph = ::process::mining::dfg(&only);
            graph.activities.iter().find(|a| a.activity == "reviewed").map_or(0, |a| a.service.median_micros)
        };
        assert!(review_service("staff-zhao") > 2 * review_service("staff-li"), "one slower reviewer");
        let month_end = |from_day: u32| {
            let waits: Vec<i64> = log
                .cases
                .iter()
                .filter(|c| {
                    let day = chrono::Datelike::day(&chrono::DateTime::from_timestamp_micros(c.start()).unwrap());
                    (day >= 26) == (from_day >= 26)
                })
                .flat_map(|c| (0..c.events.len()).filter(|i| c.events[*i].activity == "reviewed").map(|i| c.waiting(i)))
                .collect();
            ::process::mining::Stats::of(waits).median_micros
        };
        assert!(month_end(26) > 3 * month_end(1), "the review queue backs up at month end");
        let service = lending_platform::LendingService::new(db.db.clone(), Ledger::new(&db.db), vault.clone());
        for (label, id) in &lending.samples {
            let view = service.view(lending::LoanId(id.parse().unwrap())).await.unwrap();
            assert!(view.reconciled, "{label}: {:?} vs {:?}", view.ledger, view.loan);
        }
        assert_eq!(
            report.entries as usize,
            first.transfers_created + second.transfers_created + lending.ledger_transfers
        );
        // A different seed gives a different bank.
        let other = storage::testing::sqlite().await;
        let other_vault = access::Vault::for_tests(&other.db).await;
        let third = generate(&other.db, &other_vault, &DemoConfig { seed: 8, ..config }, |_, _| {}).await.unwrap();
        assert_ne!(third.transfers_created, first.transfers_created);
    }
}
