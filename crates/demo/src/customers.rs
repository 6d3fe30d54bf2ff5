//! The demo bank's customers in the customer data platform: a master record with a valid
//! resident ID (or USCC) and phone per ledger customer, facts whose balances and behaviour come
//! from the ledger history just generated (attributes such as age, holdings and risk level from
//! the synthetic population), a churn model trained on labelled history, a few defined
//! segments, and a full recomputation so tags, tiers, RFM and churn scores are there at once.

use chrono::NaiveDate;
use customer::{synthetic, Channel, CustomerKind, KycStatus, SegmentDefinition, TagRegistry};
use customer_platform::ledger_facts::{apply_ledger, customer_accounts};
use customer_platform::{churn, recompute, CustomerStore, Mode, NewCustomerRecord, PlatformError, RecomputeReport};
use ledger::Ledger;
use storage::Database;

use crate::{Customer, Profile};

pub struct Loaded {
    pub registered: usize,
    pub churn_auc: Option<f64>,
    pub recompute: RecomputeReport,
}

/// Segments every demo bank defines, to show boolean combinations of tags.
fn demo_segments() -> Vec<SegmentDefinition> {
    let seg =
        |id: &str, name: &str, rule: &str| SegmentDefinition { id: id.into(), name: name.into(), rule: rule.into() };
    vec![
        seg(
            "payroll_not_investing",
            "Payroll customers without investments",
            "payroll_customer and not (holds_index_fund or holds_equity_fund or holds_balanced_fund)",
        ),
        seg(
            "wealth_at_risk",
            "High-value customers showing churn signals",
            "high_value_wealth and (dormant_90d or churn_alert_high_value)",
        ),
        seg("digital_sme", "SMEs active on digital channels", "kind_sme and linked_mobile_app and active_30d"),
    ]
}

pub(crate) async fn load(
    db: &Database,
    vault: &access::Vault,
    ledger: &Ledger,
    customers: &[Customer],
    seed: u64,
    as_of: NaiveDate,
) -> Result<Loaded, PlatformError> {
    let store = CustomerStore::new(db.clone(), vault.clone());
    let tags = TagRegistry::with_builtins()?;
    // Attribute pools from the synthetic population, by kind, so an SME in the ledger is a
    // business here too.
    let pool = synthetic::population(customers.len() * 4 + 20, seed, as_of);
    let mut people = pool.iter().filter(|f| !f.kind.is_business());
    let mut firms = pool.iter().filter(|f| matches!(f.kind, CustomerKind::Sme | CustomerKind::SoleProprietor));
    let accounts = customer_accounts(ledger).await?;
    let mut registered = 0;
    let mut all_facts = Vec::with_capacity(customers.len());
    for (i, c) in customers.iter().enumerate() {
        let template = if c.profile == Profile::Sme { firms.next() } else { people.next() };
        let Some(template) = template else { break };
        let mut facts = template.clone();
        facts.customer_id = c.id.parse()?;
        facts.kyc = if i % 23 == 7 { KycStatus::Pending } else { KycStatus::Verified };
        if c.profile == Profile::Wealth && facts.wealth_minor == 0 {
            facts.holdings.push("wealth_mgmt_r2".into());
            facts.wealth_minor = c.income * 12;
        }
        if c.profile == Profile::Salaried && !facts.linked_channels.contains(&Channel::MobileApp) {
            facts.linked_channels.push(Channel::MobileApp);
        }
        if let Some(own) = accounts.get(&c.id) {
            apply_ledger(ledger, own, &mut facts).await?;
        }
        let (name, id_number, phone) = synthetic::identity(i, &facts);
        let record = NewCustomerRecord {
            id: facts.customer_id,
            kind: facts.kind,
            name,
            id_document_type: if facts.kind.is_business() { "uscc" } else { "resident_id" },
            id_number,
            phone: Some(phone),
            kyc_status: facts.kyc,
        };
        match store.register(&record).await {
            Ok(_) => registered += 1,
            Err(PlatformError::CustomerExists(_)) => {}
            Err(e) => return Err(e),
        }
        if i % 3 == 0 {
            store.link_identity(&c.id, Channel::MobileApp, &format!("app-{seed}-{i}")).await?;
        }
        all_facts.push(facts);
    }
    store.upsert_facts(&all_facts).await?;
    let known: Vec<String> = store.segments().await?.into_iter().map(|(d, _)| d.id).collect();
    for def in demo_segments() {
        if !known.contains(&def.id) {
            store.put_segment(&def).await?;
        }
    }
    let mut churn_auc = None;
    if store.latest_model("churn").await?.is_none() {
        let training = churn::train(20_000, seed, as_of)?;
        churn_auc = Some(training.metrics.auc);
        store.put_model("churn", &training.artefact.to_json()?).await?;
    }
    let recompute = recompute(&store, &tags, Mode::Full, |_, _| {}).await?;
    Ok(Loaded { registered, churn_auc, recompute })
}
