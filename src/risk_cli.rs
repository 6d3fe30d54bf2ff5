//! `digibank risk train`, `digibank bench risk` (and its hidden load generator), and the demo's
//! risk set-up.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use risk::synthetic::{self, HistoryConfig, TrainConfig, TrainReport};
use risk::{EngineConfig, RiskEngine, SystemClock};
use storage::Database;

use crate::progress_bar;

fn api(e: risk_platform::RiskPlatformError) -> anyhow::Error {
    anyhow::anyhow!(e)
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Seed of the synthetic history and of the train/test split.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Events in the synthetic history.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Probability threshold for precision / recall.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Trees in the GBDT.
    #[arg(long, default_value_t = 100)]
    trees: usize,
    /// Also write the artefacts as JSON files into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Trains on the synthetic history plus the labels of resolved cases in the database.
pub async fn train_models(db: &Database, args: &TrainArgs, quiet: bool) -> Result<TrainReport> {
    let version = risk_platform::store::latest_model_version(db, synthetic::GBDT_NAME)
        .await
        .map_err(api)?
        .max(risk_platform::store::latest_model_version(db, synthetic::SCORECARD_NAME).await.map_err(api)?)
        + 1;
    let labels = risk_platform::store::case_labels(db).await.map_err(api)?;
    let config = TrainConfig {
        history: HistoryConfig { seed: args.seed, events: args.events },
        threshold: args.threshold,
        version,
        trained_at: chrono::Utc::now(),
        gbdt: ml::GbdtConfig { n_trees: args.trees, ..ml::GbdtConfig::default() },
        ..TrainConfig::default()
    };
    let bar = progress_bar(0, "training");
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let report = tokio::task::spawn_blocking(move || -> Result<TrainReport> {
        let events = synthetic::generate(&config.history);
        let mut rows = synthetic::featurize(&events, config.history.seed)?;
        rows.extend(labels);
        Ok(synthetic::train_on(&rows, &config)?)
    })
    .await??;
    bar.finish_and_clear();
    for a in [&report.scorecard, &report.gbdt] {
        risk_platform::store::store_model(db, a, chrono::Utc::now()).await.map_err(api)?;
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        for a in [&report.scorecard, &report.gbdt] {
            std::fs::write(dir.join(format!("{}-v{}.json", a.name, a.version)), a.to_json()?)?;
        }
    }
    if !quiet {
        println!(
            "trained on {} events ({} fraud) in {:.1} s: {} train rows, {} held-out rows",
            report.events,
            report.fraud_events,
            started.elapsed().as_secs_f64(),
            report.train_rows,
            report.test_rows
        );
        print_metrics(&report);
        println!("stored in the database as version {version}; the server loads {} at start-up (or POST /v1/risk/model/reload)", synthetic::GBDT_NAME);
    }
    Ok(report)
}

fn print_metrics(report: &TrainReport) {
    println!("| model | version | AUC | KS | threshold | precision | recall | F1 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for a in [&report.scorecard, &report.gbdt] {
        if let Some(m) = &a.metrics {
            println!(
                "| {} | {} | {:.4} | {:.4} | {:.2} | {:.4} | {:.4} | {:.4} |",
                a.name, a.version, m.auc, m.ks, m.threshold, m.precision, m.recall, m.f1
            );
        }
    }
}

pub async fn train(db: &Database, args: TrainArgs) -> Result<()> {
    train_models(db, &args, false).await?;
    Ok(())
}

/// Demo: a trained model and an active default rule set, unless the database already has them.
pub async fn ensure_demo_risk(db: &Database) -> Result<()> {
    if risk_platform::store::latest_model_version(db, synthetic::GBDT_NAME).await.map_err(api)? == 0 {
        let args = TrainArgs { seed: 42, events: 20_000, threshold: 0.5, trees: 60, out: None };
        let report = train_models(db, &args, true).await?;
        let m = report.gbdt.metrics.as_ref().map(|m| m.auc).unwrap_or_default();
        println!(
            "demo risk: trained {} v{} on {} labelled events (held-out AUC {m:.3})",
            report.gbdt.name, report.gbdt.version, report.events
        );
    }
    let sets = risk_platform::store::rule_set_count(db).await.map_err(api)?;
    if sets == 0 {
        let set = synthetic::default_rule_set(1, chrono::Utc::now());
        risk_platform::store::store_rule_set(db, &set, None).await.map_err(api)?;
        risk_platform::store::mark_activated(db, 1, chrono::Utc::now()).await.map_err(api)?;
        println!("demo risk: rule set v1 with {} expression rules active", set.rules.len());
    }
    Ok(())
}

/// Demo: the relationship graph learns the labelled history's customers, devices and IPs, and
/// the confirmed fraud-ring members, so ring devices are recognised from the first decision.
pub fn seed_demo_graph(engine: &RiskEngine) {
    let events = synthetic::generate(&HistoryConfig { seed: 42, events: 20_000 });
    let mut g = engine.graph.write();
    let mut flagged = 0;
    for e in &events {
        let c = e.event.customer_id.as_str();
        if let Some(d) = &e.event.device_fingerprint {
            g.link_customer(c, risk::NodeKind::Device, d);
        }
        if let Some(ip) = e.event.ip {
            g.link_customer(c, risk::NodeKind::Ip, &ip.to_string());
        }
        let ring = e.scenario == synthetic::Scenario::FraudRing && e.is_fraud;
        if ring && e.event.kind == risk::EventKind::LoanApplication && g.flag_of(c).is_none() {
            g.flag_customer(c, risk::CustomerFlag::ConfirmedFraud);
            flagged += 1;
        }
    }
    let rings = g.communities(5, 3).len();
    // The ring device with the most confirmed members, to try in the demo.
    let mut farms: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| e.scenario == synthetic::Scenario::FraudRing) {
        if let (Some(d), Some(risk::CustomerFlag::ConfirmedFraud)) =
            (e.event.device_fingerprint.as_deref(), g.flag_of(&e.event.customer_id))
        {
            if e.event.kind == risk::EventKind::LoanApplication {
                *farms.entry(d).or_default() += 1;
            }
        }
    }
    let example = farms.iter().max_by_key(|(_, n)| **n).map_or("-", |(d, _)| *d);
    println!(
        "demo risk: relationship graph seeded from the labelled history ({} nodes, {flagged} confirmed fraud-ring members, {rings} rings; try device {example})",
        g.node_count()
    );
}

#[derive(Args)]
pub struct RiskBenchArgs {
    /// Decisions for the in-process measurement.
    #[arg(long, default_value_t = 200_000)]
    decisions: usize,
    /// Rules in the active rule set.
    #[arg(long, default_value_t = 100)]
    rules: usize,
    /// Fixed request rate of the HTTP load process (requests per second).
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// Overload rows: the durable log offered these multiples of --rate (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "2,3")]
    overload: Vec<u32>,
    /// Seconds of HTTP load (0 = skip the HTTP part).
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Directory for the benchmark database.
    #[arg(long, default_value = "data/bench-risk")]
    dir: PathBuf,
}

#[derive(Args)]
pub struct RiskLoadArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    key: String,
    #[arg(long)]
    rate: u32,
    #[arg(long)]
    duration: u64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn micros(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1_000.0)
}

/// Events for load: the synthetic history with fresh ids.
fn load_events(n: usize, seed: u64, tag: &str) -> Vec<risk::RiskEvent> {
    let mut events: Vec<risk::RiskEvent> =
        synthetic::generate(&HistoryConfig { seed, events: n }).into_iter().map(|e| e.event).collect();
    for (i, e) in events.iter_mut().enumerate() {
        e.event_id = format!("{tag}-{i}");
        e.occurred_at = chrono::Utc::now();
    }
    events.truncate(n);
    events
}

pub async fn bench(args: RiskBenchArgs) -> Result<()> {
    println!("risk benchmark: {} rules (expressions), velocity + graph features, GBDT model active", args.rules);
    let train_args = TrainArgs { seed: 42, events: 20_000, threshold: 0.5, trees: 100, out: None };
    let started = Instant::now();
    let report = tokio::task::spawn_blocking(move || {
        synthetic::train(&TrainConfig {
            history: HistoryConfig { seed: train_args.seed, events: train_args.events },
            gbdt: ml::GbdtConfig { n_trees: train_args.trees, ..ml::GbdtConfig::default() },
            ..TrainConfig::default()
        })
    })
    .await??;
    println!("model: {} trees trained in {:.1} s", 100, started.elapsed().as_secs_f64());
    let rule_set = synthetic::benchmark_rule_set(args.rules, 1, chrono::Utc::now());

    // In-process.
    let engine = Arc::new(RiskEngine::new(EngineConfig::default(), Arc::new(SystemClock)));
    engine.set_model(report.gbdt.clone());
    engine.rules.add_version(rule_set.clone())?;
    engine.rules.activate(1)?;
    let events = Arc::new(load_events(args.decisions, 11, "inproc"));
    let bar = progress_bar(events.len() as u64, "in-process");
    let mut lat = Vec::with_capacity(events.len());
    let t = Instant::now();
    for (i, e) in events.iter().enumerate() {
        let s = Instant::now();
        std::hint::black_box(engine.decide(e)?);
        lat.push(s.elapsed().as_nanos() as u64);
        if i % 4096 == 0 {
            bar.set_position(i as u64);
        }
    }
    let one_thread = events.len() as f64 / t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    lat.sort_unstable();
    // Two threads over a second copy of the events (fresh ids).
    let events2 = Arc::new(load_events(args.decisions, 12, "inproc2"));
    let t = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|k| {
            let (engine, events) = (Arc::clone(&engine), Arc::clone(&events2));
            std::thread::spawn(move || {
                for e in events.iter().skip(k).step_by(2) {
                    let _ = engine.decide(e);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("bench thread panicked"))?;
    }
    let two_threads = events2.len() as f64 / t.elapsed().as_secs_f64();
    println!();
    println!("| path | decisions | decisions/s | p50 | p99 | p99.9 |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| in-process, 1 thread | {} | {:.0} | {} | {} | {} |",
        lat.len(),
        one_thread,
        micros(percentile(&lat, 0.50)),
        micros(percentile(&lat, 0.99)),
        micros(percentile(&lat, 0.999))
    );
    println!("| in-process, 2 threads | {} | {:.0} | | | |", events2.len(), two_threads);
    if args.duration == 0 {
        return Ok(());
    }

    // Over HTTP: a server child process, driven by a separate load process at a fixed rate.
    std::fs::create_dir_all(&args.dir)?;
    let path = args.dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    let db = Database::connect(&url).await?;
    risk_platform::store::store_model(&db, &report.gbdt, chrono::Utc::now()).await.map_err(api)?;
    risk_platform::store::store_rule_set(&db, &rule_set, None).await.map_err(api)?;
    risk_platform::store::mark_activated(&db, 1, chrono::Utc::now()).await.map_err(api)?;
    db.close().await;
    println!(
        "HTTP: `digibank serve` child process on SQLite ({}), driven by a separate `bench risk-load` process at {}/s for {} s per row",
        path.display(),
        args.rate,
        args.duration
    );
    let mut key: Option<String> = None;
    let exe = std::env::current_exe()?;
    // At the target rate in both modes, then the durable log offered 2x and 3x the rate: beyond
    // capacity the server must shed early (503) and keep the accepted requests' latency.
    let rows: Vec<(&str, u32)> = [("durable", 1), ("buffered", 1)]
        .into_iter()
        .chain(args.overload.iter().filter(|&&m| m > 1).map(|&m| ("durable", m)))
        .collect();
    for (mode, times) in rows {
        let rate = args.rate * times;
        let log = std::env::var("DIGIBANK_BENCH_SERVER_LOG").unwrap_or_else(|_| "error".into());
        let server =
            harness::ServerProcess::start(&exe, &url, &["--decision-log", mode, "--rate-limits", "off"], &log).await?;
        let (base, mut child) = (Some(server.base), server.child);
        if server.key.is_some() {
            key = server.key;
        }
        let (Some(base), Some(key)) = (base, key.clone()) else { bail!("benchmark server did not start") };
        let out = tokio::process::Command::new(&exe)
            .args(["bench", "risk-load", "--url", &base, "--key", &key])
            .args(["--rate", &rate.to_string(), "--duration", &args.duration.to_string()])
            .args(["--seed", &(6 + times + u32::from(mode == "buffered") * 10).to_string()])
            .stderr(Stdio::inherit())
            .output()
            .await?;
        let _ = child.kill().await;
        let _ = child.wait().await;
        if !out.status.success() {
            bail!("load process failed");
        }
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).context("load process output")?;
        let offered = if times == 1 { String::new() } else { format!(" ({times}x)") };
        let shed = match r["shed"].as_u64().unwrap_or_default() {
            0 => String::new(),
            n => format!(", {n} shed with 503 (p99 {})", micros(r["shed_p99_ns"].as_u64().unwrap_or_default())),
        };
        println!(
            "| HTTP, {mode} decision log, open loop at {rate}/s{offered} | {} accepted{shed}, {} errors | {:.0} | {} | {} | {} |",
            r["ok"],
            r["errors"],
            r["throughput"].as_f64().unwrap_or_default(),
            micros(r["p50_ns"].as_u64().unwrap_or_default()),
            micros(r["p99_ns"].as_u64().unwrap_or_default()),
            micros(r["p999_ns"].as_u64().unwrap_or_default())
        );
    }
    println!("(decisions/s counts accepted decisions; p50 / p99 / p99.9 are of accepted decisions)");
    println!("(HTTP latency is measured from each request's scheduled send time, so a stalled server cannot hide queueing: no coordinated omission)");
    Ok(())
}

/// The load process: sends decisions at a fixed rate (open loop) and prints JSON figures.
pub async fn load(args: RiskLoadArgs) -> Result<()> {
    let total = (u64::from(args.rate) * args.duration) as usize;
    let warmup = (args.rate / 2) as usize;
    let events = load_events(total + warmup, args.seed, &format!("http-{}", std::process::id()));
    let bodies: Vec<bytes_body::Body> =
        events.iter().map(|e| serde_json::to_vec(e).map(bytes_body::Body)).collect::<Result<_, _>>()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).tcp_nodelay(true).build()?;
    let endpoint = format!("{}/v1/risk/decisions", args.url);
    let auth = format!("Bearer {}", args.key);
    // One authenticated request first: the server verifies a key with argon2 once and caches it.
    let warm = client.get(format!("{}/v1/risk/model", args.url)).header("authorization", &auth).send().await?;
    if !warm.status().is_success() {
        bail!("warm-up request failed: HTTP {}", warm.status());
    }
    // (request index, HTTP status or 0 for a transport error, latency from the intended send time)
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u16, u64)>();
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let bar = progress_bar(bodies.len() as u64, "HTTP load");
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    for (i, body) in bodies.into_iter().enumerate() {
        let intended = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(intended).await;
        let (client, endpoint, auth, tx) = (client.clone(), endpoint.clone(), auth.clone(), tx.clone());
        tokio::spawn(async move {
            let result = client
                .post(&endpoint)
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body(body.0)
                .send()
                .await;
            let status = match result {
                Ok(r) => {
                    let status = r.status().as_u16();
                    if r.bytes().await.is_ok() {
                        status
                    } else {
                        0
                    }
                }
                Err(_) => 0,
            };
            let _ = tx.send((i, status, intended.elapsed().as_nanos() as u64));
        });
        if i % 512 == 0 {
            bar.set_position(i as u64);
        }
    }
    drop(tx);
    let sent_done = start.elapsed();
    let mut lat = Vec::with_capacity(total);
    let (mut errors, mut shed, mut accepted_warmup) = (0u64, 0u64, 0usize);
    let mut shed_lat = Vec::new();
    while let Some((i, status, ns)) = rx.recv().await {
        match status {
            200..=299 if i >= warmup => lat.push(ns),
            200..=299 => accepted_warmup += 1,
            503 => {
                shed += 1;
                shed_lat.push(ns);
            }
            _ => errors += 1,
        }
    }
    shed_lat.sort_unstable();
    let elapsed = start.elapsed().max(sent_done);
    bar.finish_and_clear();
    lat.sort_unstable();
    let ok = lat.len();
    let report = serde_json::json!({
        "ok": ok, "errors": errors, "shed": shed,
        "shed_p99_ns": percentile(&shed_lat, 0.99),
        "throughput": (ok + accepted_warmup) as f64 / elapsed.as_secs_f64(),
        "p50_ns": percentile(&lat, 0.5), "p99_ns": percentile(&lat, 0.99), "p999_ns": percentile(&lat, 0.999),
        "max_ns": lat.last().copied().unwrap_or_default(),
    });
    println!("{report}");
    Ok(())
}

mod bytes_body {
    pub struct Body(pub Vec<u8>);
}
