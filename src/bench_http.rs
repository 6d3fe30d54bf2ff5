//! `digibank bench http`: the real HTTP stack (routing, authentication, rate-limit layer, the
//! audit trail, field encryption) under load from a client in the same process.
//!
//! Two figures the security issue asks for:
//! * ledger transfer throughput with the audit trail on, as a share of the same run with it
//!   off (target: at least 80%). Both servers share one database; rounds alternate between
//!   them so drift on this noisy machine hits both alike;
//! * customer registration and profile lookup latency (p50, p99) with field encryption on
//!   (target: p99 under 10 ms).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use storage::Database;

use crate::bench::bench_databases;
use crate::progress_bar;

#[derive(Args)]
pub struct HttpBenchArgs {
    /// Transfers per timed round.
    #[arg(long, default_value_t = 4_000)]
    transfers: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Timed rounds per setting (audit trail on, off), alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Deposit accounts the transfers move money between.
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// Customers registered, then looked up, one request at a time (latency figures).
    #[arg(long, default_value_t = 1_000)]
    customers: usize,
    /// Directory for the SQLite benchmark file (deleted afterwards unless DIGIBANK_BENCH_KEEP is set).
    #[arg(long, default_value = "data/bench")]
    dir: PathBuf,
    /// Ignore DATABASE_URL and benchmark SQLite only.
    #[arg(long)]
    sqlite_only: bool,
}

/// A server of the benchmark: its base URL and the admin key it accepts.
struct Target {
    base: String,
    key: String,
}

pub async fn http(args: HttpBenchArgs) -> Result<()> {
    anyhow::ensure!(args.transfers > 0 && args.rounds > 0 && args.accounts >= 2, "nothing to measure");
    let concurrency = args.concurrency.clamp(1, 1024);
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    println!(
        "HTTP benchmark: {} rounds of {} transfers per setting among {} accounts, {concurrency} in flight; \
         {} customers registered and looked up one at a time",
        args.rounds, args.transfers, args.accounts, args.customers
    );
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    let databases = bench_databases(&args.dir, "http", args.sqlite_only).await?;
    for bench_db in databases {
        let db = bench_db.db.clone();
        let backend = db.backend_name();
        let (on, off) = start_servers(&db).await?;
        let accounts = open_accounts(&client, &on, args.accounts).await?;
        let mut rates = [Vec::new(), Vec::new()];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for round in 0..args.rounds {
            // on-off, then off-on: each setting goes first as often as the other.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let target = if which == 0 { &on } else { &off };
                let label = format!("{backend} audit {} {}/{}", ["on", "off"][which], round + 1, args.rounds);
                let plan: Vec<(usize, usize, i64)> = (0..args.transfers)
                    .map(|_| {
                        let from = rng.gen_range(0..accounts.len());
                        let to = (from + rng.gen_range(1..accounts.len())) % accounts.len();
                        (from, to, rng.gen_range(1..10_000))
                    })
                    .collect();
                let seconds = transfers(&client, target, &accounts, &plan, concurrency, &label).await?;
                rates[which].push(args.transfers as f64 / seconds);
            }
        }
        throughput.push((backend, rates));
        latency.push((backend, customer_latency(&client, &on, args.customers).await?));
        // The trail the "on" rounds wrote must still verify.
        let trail = access::AuditTrail::new(db.clone());
        trail.seal_pending().await?;
        let report = trail.verify(|_| {}).await?;
        anyhow::ensure!(report.ok(), "audit trail does not verify after the run: {:?}", report.problems.first());
        bench_db.finish().await?;
    }
    println!();
    println!("| backend | audit trail | transfers/s per round | median transfers/s |");
    println!("|---|---|---|---:|");
    for (backend, rates) in &throughput {
        for (which, label) in ["on", "off"].iter().enumerate() {
            let rounds: Vec<String> = rates[which].iter().map(|r| format!("{r:.0}")).collect();
            println!("| {backend} | {label} | {} | {:.0} |", rounds.join(", "), median(&rates[which]));
        }
    }
    for (backend, rates) in &throughput {
        let ratio = median(&rates[0]) / median(&rates[1]);
        println!("{backend}: audit on / off = {:.0}% (target: at least 80%)", ratio * 100.0);
    }
    println!();
    println!("| backend | request | requests | p50 | p99 |");
    println!("|---|---|---:|---:|---:|");
    for (backend, rows) in &latency {
        for (label, mut samples) in rows.clone() {
            samples.sort_unstable();
            println!(
                "| {backend} | {label} | {} | {:.2} ms | {:.2} ms |",
                samples.len(),
                millis(percentile(&samples, 0.50)),
                millis(percentile(&samples, 0.99))
            );
        }
    }
    Ok(())
}

/// Two servers over one database: the audit trail on (as `serve` runs) and off.
async fn start_servers(db: &Database) -> Result<(Target, Target)> {
    let vault = access::Vault::load(db, Arc::new(access::MasterKey::random())).await?;
    let ledger = ledger::Ledger::new(db);
    let mut state = server::AppState::load(db.clone(), ledger, vault).await.map_err(|e| anyhow::anyhow!(e.message))?;
    // The figures are about the work behind the edge, not about being refused at it.
    state.edge = server::limits::Edge { rates: server::limits::RateLimits::off(), hsts_max_age: 0 };
    let key = state.keys.ensure_admin_key().await?.context("a fresh database issues an admin key")?.key;
    state.audit.spawn_sealer();
    let mut off = state.clone();
    off.audit_trail = false;
    let mut targets = Vec::new();
    for state in [state, off] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = server::router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        targets.push(Target { base, key: key.clone() });
    }
    let off = targets.pop().expect("two servers");
    Ok((targets.pop().expect("two servers"), off))
}

async fn call(
    client: &reqwest::Client,
    target: &Target,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let url = format!("{}{path}", target.base);
    let request = match method {
        "POST" => client.post(&url).json(&body.unwrap_or(Value::Null)),
        _ => client.get(&url),
    };
    let response = request.bearer_auth(&target.key).send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{method} {path} answered {status}: {body}");
    }
    Ok(body)
}

/// A bank GL account and `n` deposit accounts, each funded with 10 million yuan from it.
async fn open_accounts(client: &reqwest::Client, target: &Target, n: usize) -> Result<Vec<String>> {
    let gl = json!({"currency": "CNY", "kind": "asset", "owner_type": "bank", "code": "gl.bench.cash"});
    let gl =
        call(client, target, "POST", "/v1/accounts", Some(gl)).await?["id"].as_str().unwrap_or_default().to_string();
    let bar = progress_bar(n as u64, "accounts");
    let mut accounts = Vec::with_capacity(n);
    for i in 0..n {
        let deposit = json!({
            "currency": "CNY", "kind": "liability", "owner_type": "customer", "owner_id": format!("C-BENCH-{i}"),
            "code": "deposit.current", "debits_must_not_exceed_credits": true
        });
        let id = call(client, target, "POST", "/v1/accounts", Some(deposit)).await?["id"]
            .as_str()
            .context("account id")?
            .to_string();
        let funding = json!({
            "id": uuid::Uuid::now_v7(), "debit_account_id": gl, "credit_account_id": id,
            "amount": 1_000_000_000i64, "currency": "CNY"
        });
        call(client, target, "POST", "/v1/transfers", Some(funding)).await?;
        accounts.push(id);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(accounts)
}

/// Posts the planned transfers with `concurrency` in flight; the seconds it took.
async fn transfers(
    client: &reqwest::Client,
    target: &Target,
    accounts: &[String],
    plan: &[(usize, usize, i64)],
    concurrency: usize,
    label: &str,
) -> Result<f64> {
    let bar = progress_bar(plan.len() as u64, label);
    let started = Instant::now();
    let mut results = futures::stream::iter(plan.iter().map(|&(from, to, amount)| {
        let body = json!({
            "id": uuid::Uuid::now_v7(), "debit_account_id": accounts[from], "credit_account_id": accounts[to],
            "amount": amount, "currency": "CNY"
        });
        async move { call(client, target, "POST", "/v1/transfers", Some(body)).await }
    }))
    .buffer_unordered(concurrency);
    while let Some(result) = results.next().await {
        result?;
        bar.inc(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(seconds)
}

/// Registers `n` people (name, resident ID, phone: all sealed at rest), then looks each up.
async fn customer_latency(client: &reqwest::Client, target: &Target, n: usize) -> Result<Vec<(String, Vec<Duration>)>> {
    let bar = progress_bar(2 * n as u64, "customers");
    let (mut registrations, mut lookups, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let birth = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).expect("date") + chrono::Days::new((i / 1000) as u64);
        let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), i % 1000);
        let person = json!({
            "kind": "individual", "name": format!("测试{i}"),
            "id_number": format!("{first17}{}", customer::validate::resident_id_check(&first17)),
            "phone": format!("+86137{:08}", i),
        });
        let started = Instant::now();
        let created = call(client, target, "POST", "/v1/customers", Some(person)).await?;
        registrations.push(started.elapsed());
        ids.push(created["id"].as_str().context("customer id")?.to_string());
        bar.inc(1);
    }
    for id in &ids {
        let started = Instant::now();
        call(client, target, "GET", &format!("/v1/customers/{id}"), None).await?;
        lookups.push(started.elapsed());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(vec![
        ("POST /v1/customers (register)".to_string(), registrations),
        ("GET /v1/customers/{id} (profile)".to_string(), lookups),
    ])
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let nanos: Vec<u64> = sorted.iter().map(|d| d.as_nanos() as u64).collect();
    Duration::from_nanos(crate::risk_cli::percentile(&nanos, q))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
