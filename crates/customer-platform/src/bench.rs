//! The `digibank bench tags` workload: a synthetic population with six months of individual
//! transactions, folded into facts, stored, fully recomputed (all tags, tiers, RFM, segments,
//! churn scores), then random profile lookups.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use customer::activity::ActivityFold;
use customer::{synthetic, Profile, SegmentDefinition, TagRegistry};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::store::CustomerStore;
use crate::{churn, recompute, Mode, PlatformError};

#[derive(Debug, Clone)]
pub struct TagsBenchConfig {
    pub customers: usize,
    pub seed: u64,
    pub lookups: usize,
    /// Customer master records registered (timed one by one; personal data sealed and
    /// blind-indexed) and looked up by id (opened) with every profile lookup.
    pub registrations: usize,
    pub as_of: NaiveDate,
}

/// Figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct TagsBenchReport {
    pub backend: String,
    pub customers: usize,
    pub transactions: u64,
    pub tags: usize,
    pub segments: usize,
    /// Generating the transactions, folding them into facts and storing the facts.
    pub load: Duration,
    /// Full recomputation: read facts, profile, every tag, tier, RFM, segments, churn score,
    /// write results and membership bitmaps.
    pub full_recompute: Duration,
    pub full_phases_millis: std::collections::BTreeMap<String, u128>,
    /// An incremental run after 1% of the customers changed.
    pub incremental_customers: usize,
    pub incremental_recompute: Duration,
    pub churn_auc: f64,
    pub lookup_p50: Duration,
    pub lookup_p99: Duration,
    pub lookup_max: Duration,
    pub registrations: usize,
    pub register_p50: Duration,
    pub register_p99: Duration,
    pub register_max: Duration,
    /// Peak resident memory of the process (VmHWM), if the OS reports it.
    pub peak_rss_bytes: Option<u64>,
}

/// Phases report progress as (phase, done, total).
pub async fn run(
    store: &CustomerStore,
    config: &TagsBenchConfig,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<TagsBenchReport, PlatformError> {
    let tags = TagRegistry::with_builtins()?;
    for (id, name, rule) in [
        ("affluent_digital", "Affluent and digital", "aum_ge_500k and linked_mobile_app"),
        ("payroll_at_risk", "Payroll customers at risk", "payroll_customer and (dormant_90d or lifecycle_churning)"),
    ] {
        let def = SegmentDefinition { id: id.into(), name: name.into(), rule: rule.into() };
        customer::SegmentEngine::new(&tags).add(def.clone())?;
        store.put_segment(&def).await?;
    }
    let training = churn::train(20_000, config.seed, config.as_of)?;
    store.put_model("churn", &training.artefact.to_json()?).await?;

    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x7a65);
    let mut transactions = 0u64;
    let mut page = Vec::with_capacity(5_000);
    let mut done = 0u64;
    for facts in synthetic::population_iter(config.customers, config.seed, config.as_of) {
        let activity = synthetic::activities(&facts, &mut rng);
        transactions += activity.len() as u64;
        let mut fold = ActivityFold::new(config.as_of);
        for a in &activity {
            fold.add(a);
        }
        let mut folded = facts;
        fold.apply(&mut folded);
        page.push(folded);
        if page.len() == page.capacity() {
            store.upsert_facts(&page).await?;
            done += page.len() as u64;
            page.clear();
            progress("load", done, config.customers as u64);
        }
    }
    store.upsert_facts(&page).await?;
    let load = started.elapsed();

    let started = Instant::now();
    let full = recompute(store, &tags, Mode::Full, |d, t| progress("full recompute", d, t)).await?;
    let full_recompute = started.elapsed();

    // Touch 1% of the customers: a month of silence for them.
    let touched = (config.customers / 100).max(1);
    let mut changed = Vec::with_capacity(touched);
    for _ in 0..touched {
        let id = customer::CustomerId::from_u128(rng.gen_range(0..config.customers) as u128 + 1).to_string();
        if let Some(mut s) = store.facts(&id).await? {
            s.facts.tx_30d = Default::default();
            s.facts.logins_30d = 0;
            changed.push(s.facts);
        }
    }
    let incremental_customers = store.upsert_facts(&changed).await?;
    let started = Instant::now();
    recompute(store, &tags, Mode::Incremental, |d, t| progress("incremental", d, t)).await?;
    let incremental_recompute = started.elapsed();

    // Master records of the first customers, registered one request at a time.
    let mut registering = Vec::with_capacity(config.registrations);
    for (i, facts) in synthetic::population_iter(config.registrations, config.seed, config.as_of).enumerate() {
        let (name, id_number, phone) = synthetic::identity(i, &facts);
        let record = crate::NewCustomerRecord {
            id: facts.customer_id,
            kind: facts.kind,
            name,
            id_document_type: if facts.kind.is_business() { "uscc" } else { "resident_id" },
            id_number,
            phone: Some(phone),
            kyc_status: facts.kyc,
        };
        let t = Instant::now();
        match store.register(&record).await {
            Ok(_) | Err(PlatformError::CustomerExists(_)) => {}
            Err(e) => return Err(e),
        }
        registering.push(t.elapsed());
        if i % 1000 == 0 {
            progress("registrations", i as u64, config.registrations as u64);
        }
    }
    registering.sort();
    let registered: Vec<String> = synthetic::population_iter(config.registrations, config.seed, config.as_of)
        .map(|f| f.customer_id.to_string())
        .collect();

    let mut latencies = Vec::with_capacity(config.lookups);
    for i in 0..config.lookups {
        let id = customer::CustomerId::from_u128(rng.gen_range(0..config.customers) as u128 + 1).to_string();
        let record_id = (!registered.is_empty()).then(|| registered[rng.gen_range(0..registered.len())].clone());
        let t = Instant::now();
        let facts = store.facts(&id).await?.ok_or_else(|| PlatformError::Corrupt(format!("{id} missing")))?;
        let profile = Profile::compute(&facts.facts);
        let result = store.result(&id).await?;
        let record = match &record_id {
            Some(r) => Some(store.customer(r).await?.ok_or_else(|| PlatformError::Corrupt(format!("{r} missing")))?),
            None => None,
        };
        std::hint::black_box((profile, result, record));
        latencies.push(t.elapsed());
        if i % 1000 == 0 {
            progress("lookups", i as u64, config.lookups as u64);
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let reg = |p: f64| {
        registering.get(((registering.len() as f64 * p) as usize).min(registering.len().saturating_sub(1))).copied()
    };
    Ok(TagsBenchReport {
        backend: store.db().backend_name().to_string(),
        customers: config.customers,
        transactions,
        tags: tags.len(),
        segments: store.segments().await?.len(),
        load,
        full_recompute,
        full_phases_millis: full.phases_millis,
        incremental_customers,
        incremental_recompute,
        churn_auc: training.metrics.auc,
        lookup_p50: pct(0.50),
        lookup_p99: pct(0.99),
        lookup_max: *latencies.last().unwrap_or(&Duration::ZERO),
        registrations: registering.len(),
        register_p50: reg(0.50).unwrap_or_default(),
        register_p99: reg(0.99).unwrap_or_default(),
        register_max: registering.last().copied().unwrap_or_default(),
        peak_rss_bytes: peak_rss(),
    })
}

/// Peak resident set size from `/proc/self/status` (Linux).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
