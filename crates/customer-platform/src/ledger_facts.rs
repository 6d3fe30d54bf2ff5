//! Facts from the ledger: deposit balances and transaction behaviour of each customer's
//! accounts (`owner_type = customer`, `owner_id = <customer id>`).
//!
//! Account codes say what a balance is: `deposit.time*` counts as time deposits, other
//! `deposit.*` as demand deposits, `loan.*` as loans. Every posted entry of the last 180 days
//! is folded with [`ActivityFold`]: credits to a deposit are inflows, debits outflows; the
//! transfer metadata gives the channel (`channel`), merchant category (`merchant_category`)
//! and salary credits (`type = salary`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use customer::activity::{channel_from_str, Activity, ActivityFold, Direction};
use customer::CustomerFacts;
use ledger::{Account, AccountId, EntrySide, Ledger, OwnerType, TransferKind, MAX_PAGE};

use crate::PlatformError;

/// Customer accounts grouped by owner id.
pub async fn customer_accounts(ledger: &Ledger) -> Result<BTreeMap<String, Vec<Account>>, PlatformError> {
    let mut out: BTreeMap<String, Vec<Account>> = BTreeMap::new();
    let mut after: Option<AccountId> = None;
    loop {
        let page = ledger.list_accounts(after, MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for a in page {
            if let (OwnerType::Customer, Some(owner)) = (a.owner_type, a.owner_id.clone()) {
                out.entry(owner).or_default().push(a);
            }
        }
    }
    Ok(out)
}

fn metadata_field(metadata: &Option<String>, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(metadata.as_deref()?).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

/// Replaces the deposit balances and behaviour windows of `facts` with what the ledger shows
/// for `accounts` as of `facts.as_of`.
pub async fn apply_ledger(
    ledger: &Ledger,
    accounts: &[Account],
    facts: &mut CustomerFacts,
) -> Result<(), PlatformError> {
    let as_of: NaiveDate = facts.as_of;
    let mut fold = ActivityFold::new(as_of);
    let (mut demand, mut time, mut loans) = (0i64, 0i64, 0i64);
    for account in accounts {
        let b = account.balances;
        let code = account.code.as_deref().unwrap_or("");
        if code.starts_with("loan.") {
            loans += b.debits_posted - b.credits_posted;
            continue;
        }
        let balance = b.credits_posted - b.debits_posted;
        if code.starts_with("deposit.time") {
            time += balance;
        } else {
            demand += balance;
        }
        let mut after = 0i64;
        loop {
            let page = ledger.entries(account.id, after, MAX_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                if !matches!(e.kind, TransferKind::Posted | TransferKind::PostPending) {
                    continue;
                }
                let Some(on) = DateTime::from_timestamp_micros(e.created_at).map(|t| t.date_naive()) else {
                    continue;
                };
                fold.add(&Activity {
                    on,
                    direction: if e.side == EntrySide::Credit { Direction::Inflow } else { Direction::Outflow },
                    amount_minor: e.amount,
                    channel: metadata_field(&e.metadata, "channel").as_deref().and_then(channel_from_str),
                    merchant_category: metadata_field(&e.metadata, "merchant_category"),
                    payroll: metadata_field(&e.metadata, "type").as_deref() == Some("salary"),
                });
            }
            if page.len() < MAX_PAGE as usize {
                break;
            }
        }
    }
    facts.demand_deposits_minor = demand;
    facts.time_deposits_minor = time;
    if loans > 0 {
        facts.loans_minor = loans;
    }
    fold.apply(facts);
    Ok(())
}
