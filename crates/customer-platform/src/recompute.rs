//! Tag, segment, tier, RFM and churn recomputation over stored customers.
//!
//! * **Full**: every customer. Pass 1 reads the facts to fit the RFM quintile cuts of the whole
//!   population; pass 2 computes everything and replaces all membership bitmaps.
//! * **Incremental**: only customers whose facts changed since the last run (the `dirty` flag),
//!   scored against the stored RFM cuts, with their bits moved in the touched bitmap chunks. If
//!   a tag rule or segment changed since the last run, every customer is re-evaluated (still
//!   without refitting RFM), since any of them may now gain or lose the tag.
//!
//! Computing one customer is a pure function ([`Computer::compute`]); pages of customers are
//! computed in parallel (rayon) between reads and writes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use customer::segments::{tier, RfmCuts, RfmInput};
use customer::{Catalog, Profile, Recommender, RecommenderConfig, SegmentEngine, TagRegistry};
use ml::ModelArtefact;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::store::{ComputedResult, CustomerStore, Memberships, StoredFacts, CHUNK_BITS};
use crate::{churn, PlatformError};

/// Customers read, computed and written per step.
const PAGE: i64 = 5_000;

/// The recommender is fitted on an evenly spaced sample of at most this many customers' holdings
/// during a full run (co-occurrence statistics converge long before a million customers).
const RECOMMENDER_SAMPLE: usize = 50_000;

/// Everything needed to compute one customer.
pub struct Computer<'a> {
    pub tags: &'a TagRegistry,
    pub segments: &'a SegmentEngine,
    pub churn: Option<&'a ModelArtefact>,
    pub rfm: RfmCuts,
}

impl Computer<'_> {
    /// Profile, tags, tier, RFM, lifecycle, churn score and segment memberships of one customer.
    pub fn compute(&self, stored: &StoredFacts) -> Result<(ComputedResult, Vec<String>), PlatformError> {
        let p = Profile::compute(&stored.facts);
        let assigned = self.tags.evaluate(&p);
        let segments = self.segments.memberships(&assigned).into_iter().map(|s| format!("segment:{s}")).collect();
        let rfm = self.rfm.score(&RfmInput::from_profile(&p));
        let churn = self.churn.map(|m| churn::score(m, &p)).transpose()?;
        Ok((
            ComputedResult {
                customer_id: stored.facts.customer_id.to_string(),
                ordinal: stored.ordinal,
                tags: assigned.into_iter().map(|t| t.tag_id).collect(),
                tier: enum_text(&tier(&p)),
                rfm: (rfm.r, rfm.f, rfm.m),
                rfm_segment: enum_text(&rfm.segment),
                lifecycle: p.lifecycle.stage.as_str().to_string(),
                aum_minor: p.assets.aum_minor,
                churn,
            },
            segments,
        ))
    }
}

/// The snake_case serde name of an enum value.
pub fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Incremental,
}

/// What a recomputation did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecomputeReport {
    pub mode: Mode,
    pub customers: usize,
    pub rules: usize,
    /// Rules (tags and segments) that changed since the previous run.
    pub changed_rules: Vec<String>,
    pub millis: u128,
    /// Where the time went: fitting RFM cuts and the recommender (full runs), reading facts,
    /// computing, writing results and bitmaps.
    pub phases_millis: BTreeMap<String, u128>,
}

/// Current rule versions: every tag (`tag:<id>`) and segment (`segment:<id>`).
fn rule_versions(tags: &TagRegistry, segments: &[(customer::SegmentDefinition, u32)]) -> BTreeMap<String, u32> {
    let mut out: BTreeMap<String, u32> =
        tags.current().map(|v| (format!("tag:{}", v.definition.id), v.version)).collect();
    out.extend(segments.iter().map(|(d, v)| (format!("segment:{}", d.id), *v)));
    out
}

/// Loads the segment definitions and compiles them against the tags.
pub async fn segment_engine(
    store: &CustomerStore,
    tags: &TagRegistry,
) -> Result<(SegmentEngine, Vec<(customer::SegmentDefinition, u32)>), PlatformError> {
    let defs = store.segments().await?;
    let mut engine = SegmentEngine::new(tags);
    for (d, _) in &defs {
        engine.add(d.clone())?;
    }
    Ok((engine, defs))
}

/// Loads the latest churn model, if one was trained.
pub async fn latest_churn_model(store: &CustomerStore) -> Result<Option<ModelArtefact>, PlatformError> {
    store.latest_model("churn").await?.map(|(_, body)| Ok(ModelArtefact::from_json(&body)?)).transpose()
}

/// Recomputes stored customers. `progress(done, total)` is called after every page.
pub async fn recompute(
    store: &CustomerStore,
    tags: &TagRegistry,
    mode: Mode,
    mut progress: impl FnMut(u64, u64),
) -> Result<RecomputeReport, PlatformError> {
    // One recomputation at a time (and none during a close or merge): they rewrite shared
    // membership bitmaps.
    let _bitmaps = store.bitmaps.lock().await;
    let started = Instant::now();
    let run_started = store.now_micros();
    let (segments, segment_defs) = segment_engine(store, tags).await?;
    let churn_model = latest_churn_model(store).await?;
    let versions = rule_versions(tags, &segment_defs);
    let previous = store.computed_rules().await?;
    let changed_rules: Vec<String> = versions
        .iter()
        .filter(|(k, v)| previous.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(previous.keys().filter(|k| !versions.contains_key(*k)).cloned())
        .collect();
    let stored_cuts =
        store.latest_model("rfm_cuts").await?.map(|(_, b)| serde_json::from_str::<RfmCuts>(&b)).transpose()?;
    let mode = if stored_cuts.is_none() { Mode::Full } else { mode };
    let everyone = mode == Mode::Full || !changed_rules.is_empty();

    let mut phases: BTreeMap<String, u128> = BTreeMap::new();
    let mut clock = Instant::now();
    let mut lap = |phases: &mut BTreeMap<String, u128>, name: &str| {
        *phases.entry(name.to_string()).or_default() += clock.elapsed().as_millis();
        clock = Instant::now();
    };
    let rfm = match (mode, stored_cuts) {
        (Mode::Incremental, Some(cuts)) => cuts,
        _ => {
            let cuts = RfmCuts::fit(&store.rfm_inputs().await?);
            store.put_model("rfm_cuts", &serde_json::to_string(&cuts)?).await?;
            let total = store.count_profiles(false).await?.max(1);
            let holdings =
                store.holdings_sample((total + RECOMMENDER_SAMPLE as i64 - 1) / RECOMMENDER_SAMPLE as i64).await?;
            if !holdings.is_empty() {
                let recommender = Recommender::fit(&Catalog::standard(), &holdings, RecommenderConfig::default())?;
                store.put_model("recommender", &serde_json::to_string(&recommender)?).await?;
            }
            cuts
        }
    };
    lap(&mut phases, "fit");
    let computer = Computer { tags, segments: &segments, churn: churn_model.as_ref(), rfm };
    let total = store.count_profiles(!everyone).await? as u64;

    // Three stages overlap: a reader task fetches and parses the next page while this task
    // computes the current one on the rayon pool and a writer task stores the previous one.
    let (page_tx, mut pages) = tokio::sync::mpsc::channel::<Result<Vec<StoredFacts>, PlatformError>>(2);
    let reader_store = store.clone();
    let reader = tokio::spawn(async move {
        let mut after = -1i64;
        loop {
            let page = reader_store.facts_page(after, PAGE, !everyone).await;
            let stop = match &page {
                Ok(p) => match p.last() {
                    Some(last) => {
                        after = i64::from(last.ordinal);
                        false
                    }
                    None => true,
                },
                Err(_) => true,
            };
            if stop {
                let _ = page_tx.send(page).await;
                return;
            }
            if page_tx.send(page).await.is_err() {
                return;
            }
        }
    });
    let (result_tx, mut results_rx) = tokio::sync::mpsc::channel::<Vec<ComputedResult>>(2);
    let writer_store = store.clone();
    let clear_each = (mode == Mode::Incremental).then_some(run_started);
    let writer = tokio::spawn(async move {
        while let Some(results) = results_rx.recv().await {
            writer_store.write_results(&results, clear_each).await?;
        }
        Ok::<(), PlatformError>(())
    });
    let mut all_bits = Memberships::new();
    let mut done = 0usize;
    while let Some(page) = pages.recv().await {
        let page = page?;
        lap(&mut phases, "read_wait");
        if page.is_empty() {
            break;
        }
        let computed = page.par_iter().map(|s| computer.compute(s)).collect::<Result<Vec<_>, _>>()?;
        lap(&mut phases, "compute");
        if mode == Mode::Full {
            for (r, segs) in &computed {
                add_bits(&mut all_bits, r, segs);
            }
        } else {
            move_bits(store, &computed).await?;
        }
        done += computed.len();
        let results: Vec<ComputedResult> = computed.into_iter().map(|(r, _)| r).collect();
        if result_tx.send(results).await.is_err() {
            break;
        }
        lap(&mut phases, "write_wait");
        progress(done as u64, total);
    }
    drop(result_tx);
    reader.abort();
    writer.await.map_err(|e| PlatformError::Corrupt(format!("writer task: {e}")))??;
    if mode == Mode::Full {
        store.replace_memberships(&all_bits).await?;
        store.clear_dirty(run_started).await?;
    }
    lap(&mut phases, "write");
    store.set_computed_rules(&versions).await?;
    let millis = started.elapsed().as_millis();
    let mode_text = match (mode, everyone) {
        (Mode::Full, _) => "full",
        (Mode::Incremental, true) => "incremental_rules_changed",
        (Mode::Incremental, false) => "incremental",
    };
    store.record_run(mode_text, done, versions.len(), millis).await?;
    Ok(RecomputeReport { mode, customers: done, rules: versions.len(), changed_rules, millis, phases_millis: phases })
}

fn chunk_of(ordinal: u32) -> (u32, u32) {
    (ordinal >> CHUNK_BITS, ordinal)
}

fn add_bits(bits: &mut Memberships, r: &ComputedResult, segments: &[String]) {
    let (chunk, ordinal) = chunk_of(r.ordinal);
    for key in r.membership_keys().into_iter().chain(segments.iter().cloned()) {
        bits.entry((key, chunk)).or_default().insert(ordinal);
    }
}

/// Incremental: clears the customers' bits in every key of their chunks, then sets the new ones.
async fn move_bits(store: &CustomerStore, computed: &[(ComputedResult, Vec<String>)]) -> Result<(), PlatformError> {
    let chunks: BTreeSet<u32> = computed.iter().map(|(r, _)| chunk_of(r.ordinal).0).collect();
    let chunks: Vec<u32> = chunks.into_iter().collect();
    let mut bits = store.memberships_of_chunks(&chunks).await?;
    let before = bits.clone();
    for (r, _) in computed {
        let (chunk, ordinal) = chunk_of(r.ordinal);
        for ((_, c), bitmap) in bits.iter_mut() {
            if *c == chunk {
                bitmap.remove(ordinal);
            }
        }
    }
    for (r, segs) in computed {
        add_bits(&mut bits, r, segs);
    }
    bits.retain(|k, v| before.get(k) != Some(v));
    store.put_memberships(&bits).await
}
