//! `digibank bench open-banking`: the partner side of the HTTP stack under load.
//!
//! * Balance reads through `/open-banking/v1/accounts/{id}/balances` (token signature, partner
//!   status and quota, consent checks, the read's audit entry) sent **open loop** at a fixed rate
//!   (target: 2,000/s with p99 under 10 ms). Latency counts from each request's scheduled time,
//!   so a stall shows as the queue behind it would (no coordinated omission). The staff API's
//!   `GET /v1/accounts/{id}/balance` at the same rate, in the same run, is the baseline: what
//!   open banking's checks add.
//! * Token issuance: client-credentials grants with `private_key_jwt` (target: at least 1,000/s),
//!   each with a fresh assertion signed beforehand, `concurrency` in flight.
//!
//! The consent is made the way a customer makes one (pushed authorization request, one-time
//! code, account choice, authorisation code with PKCE), in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::Args;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures::StreamExt;
use serde_json::{json, Value};
use storage::Database;

use crate::bench::bench_databases;
use crate::openbank_cli::{authorise_in_process, sign, Credentials};
use crate::progress_bar;

#[derive(Args)]
pub struct OpenBankingBenchArgs {
    /// Balance reads per second, sent open loop.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
    /// Seconds of balance reads (per API: open banking, then the staff baseline).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    seconds: u32,
    /// Tokens issued for the issuance figure.
    #[arg(long, default_value_t = 4_000)]
    tokens: usize,
    /// Token requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Directory for the SQLite benchmark file (deleted afterwards unless DIGIBANK_BENCH_KEEP is set).
    #[arg(long, default_value = "data/bench")]
    dir: PathBuf,
    /// Ignore DATABASE_URL and benchmark SQLite only.
    #[arg(long)]
    sqlite_only: bool,
}

struct Reads {
    label: &'static str,
    sent: usize,
    failed: usize,
    seconds: f64,
    latencies: Vec<u64>,
}

struct Row {
    backend: &'static str,
    reads: Vec<Reads>,
    tokens: usize,
    token_seconds: f64,
}

pub async fn open_banking(args: OpenBankingBenchArgs) -> Result<()> {
    anyhow::ensure!(args.tokens > 0, "nothing to measure");
    let concurrency = args.concurrency.clamp(1, 1024);
    println!(
        "open banking benchmark ({}): balance reads at {}/s open loop for {} s (then the staff API at the \
         same rate); {} client-credentials tokens, {concurrency} in flight",
        chrono::Utc::now().format("%Y-%m-%d"),
        args.rate,
        args.seconds,
        args.tokens
    );
    let mut rows = Vec::new();
    for bench_db in bench_databases(&args.dir, "openbank", args.sqlite_only).await? {
        rows.push(run(&bench_db.db, &args, concurrency).await?);
        bench_db.finish().await?;
    }
    println!();
    println!("| backend | API | sent | failed | achieved/s | p50 | p99 | max |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        for r in &row.reads {
            let mut sorted = r.latencies.clone();
            sorted.sort_unstable();
            let ms = |q: f64| crate::risk_cli::percentile(&sorted, q) as f64 / 1e6;
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |",
                row.backend,
                r.label,
                r.sent,
                r.failed,
                r.sent as f64 / r.seconds,
                ms(0.50),
                ms(0.99),
                sorted.last().copied().unwrap_or(0) as f64 / 1e6
            );
        }
    }
    println!();
    println!("| backend | tokens issued | seconds | tokens/s (target ≥ 1,000) |");
    println!("|---|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} |",
            row.backend,
            row.tokens,
            row.token_seconds,
            row.tokens as f64 / row.token_seconds
        );
    }
    Ok(())
}

async fn run(db: &Database, args: &OpenBankingBenchArgs, concurrency: usize) -> Result<Row> {
    let backend = db.backend_name();
    let vault = access::Vault::load(db, Arc::new(access::MasterKey::random())).await?;
    let ledger = ledger::Ledger::new(db);
    let mut state = server::AppState::load(db.clone(), ledger, vault).await.map_err(|e| anyhow::anyhow!(e.message))?;
    // The figures are about the work behind the edge, not about being refused at it.
    state.edge = server::limits::Edge { rates: server::limits::RateLimits::off(), hsts_max_age: 0 };
    let key = state.keys.ensure_admin_key().await?.context("a fresh database issues an admin key")?.key;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    state.openbank.set_issuer(&base);
    state.audit.spawn_sealer();
    let openbank = state.openbank.clone();
    let app = server::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;

    // A partner, a customer with a funded account, and the customer's consent to read it.
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": "bench-1",
        "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes())});
    let spec = openbank::check_partner(openbank::NewPartner {
        name: "Bench Partner".into(),
        roles: vec![openbank::PartnerRole::AccountInformation],
        redirect_uris: vec!["http://localhost:8080/callback".into()],
        jwks: json!({ "keys": [public] }),
        environment: openbank::Environment::Sandbox,
        daily_quota: Some(openbank::MAX_DAILY_QUOTA),
    })?;
    let partner = openbank.register(spec).await?;
    let credentials = Credentials {
        client_id: partner.id.clone(),
        name: partner.name.clone(),
        kid: "bench-1".into(),
        private_key_pkcs8: URL_SAFE_NO_PAD.encode(signing.to_pkcs8_der()?.as_bytes()),
        token_endpoint: openbank.token_endpoint(),
    };
    let admin = |method: reqwest::Method, path: &str| client.request(method, format!("{base}{path}")).bearer_auth(&key);
    let first17 = "11010519900101100";
    let id_number = format!("{first17}{}", customer::validate::resident_id_check(first17));
    let person = json!({"kind": "individual", "name": "压测客户", "id_number": id_number, "phone": "+8613700000001"});
    let customer = checked(admin(reqwest::Method::POST, "/v1/customers").json(&person)).await?;
    let customer_id = customer["id"].as_str().context("customer id")?.to_string();
    let deposit = json!({"currency": "CNY", "kind": "liability", "owner_type": "customer", "owner_id": customer_id,
        "code": "deposit.current", "debits_must_not_exceed_credits": true});
    let account = checked(admin(reqwest::Method::POST, "/v1/accounts").json(&deposit)).await?["id"]
        .as_str()
        .context("account id")?
        .to_string();
    let consent = openbank
        .create_consent(
            &partner,
            openbank::consent::ConsentSpec {
                permissions: vec![openbank::consent::Permission::ReadBalances],
                expires_at: chrono::Utc::now().timestamp_micros() + 86_400_000_000,
                transaction_from: None,
                transaction_to: None,
                frequency_per_day: openbank::consent::DEFAULT_FREQUENCY_PER_DAY,
            },
        )
        .await?;
    let (redirect, verifier) = authorise_in_process(
        &openbank,
        &credentials,
        &consent.consent_id,
        "accounts",
        &customer_id,
        std::slice::from_ref(&account),
    )
    .await?;
    let code = redirect
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .context("the redirect carries a code")?
        .to_string();
    let form = [
        ("grant_type", "authorization_code".to_string()),
        ("code", code),
        ("redirect_uri", "http://localhost:8080/callback".into()),
        ("code_verifier", verifier),
        ("client_assertion_type", openbank_platform::JWT_BEARER_ASSERTION.into()),
        ("client_assertion", sign(&credentials, &openbank.token_endpoint())?),
    ];
    let tokens = checked(client.post(openbank.token_endpoint()).form(&form)).await?;
    let token = tokens["access_token"].as_str().context("an access token")?.to_string();

    // Balance reads: open banking (the customer present, so no daily cap), then the baseline.
    let ob_path = format!("{base}/open-banking/v1/accounts/{account}/balances");
    let staff_path = format!("{base}/v1/accounts/{account}/balance");
    let mut reads = Vec::new();
    for (label, url, bearer, present) in [
        ("GET /open-banking/v1/accounts/{id}/balances (partner token, consent)", &ob_path, &token, true),
        ("GET /v1/accounts/{id}/balance (staff API key, baseline)", &staff_path, &key, false),
    ] {
        reads.push(open_loop(&client, label, url, bearer, present, args.rate, args.seconds, backend).await?);
    }

    // Token issuance: assertions signed first (the partner's work), then the grants timed.
    let assertions: Vec<String> =
        (0..args.tokens).map(|_| sign(&credentials, &openbank.token_endpoint())).collect::<Result<_>>()?;
    let bar = progress_bar(args.tokens as u64, &format!("{backend} tokens"));
    let endpoint = openbank.token_endpoint();
    let started = Instant::now();
    let mut results = futures::stream::iter(assertions.into_iter().map(|assertion| {
        let (client, endpoint) = (&client, &endpoint);
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("scope", "accounts"),
                ("client_assertion_type", openbank_platform::JWT_BEARER_ASSERTION),
                ("client_assertion", assertion.as_str()),
            ];
            checked(client.post(endpoint).form(&form)).await
        }
    }))
    .buffer_unordered(concurrency);
    while let Some(result) = results.next().await {
        result?;
        bar.inc(1);
    }
    let token_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(Row { backend, reads, tokens: args.tokens, token_seconds })
}

/// Sends `rate` requests a second for `seconds`, each at its scheduled instant whatever the
/// ones before it are doing; latency is from the scheduled instant to the answer.
#[allow(clippy::too_many_arguments)]
async fn open_loop(
    client: &reqwest::Client,
    label: &'static str,
    url: &str,
    bearer: &str,
    customer_present: bool,
    rate: u32,
    seconds: u32,
    backend: &str,
) -> Result<Reads> {
    let total = rate as usize * seconds as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let bar = progress_bar(total as u64, &format!("{backend} {}", label.split(' ').nth(1).unwrap_or(label)));
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    for i in 0..total {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let mut request = client.get(url).bearer_auth(bearer);
        if customer_present {
            request = request.header("x-fapi-customer-ip-address", "198.51.100.7");
        }
        tasks.spawn(async move {
            let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
            (ok, due.elapsed().as_nanos() as u64)
        });
        // Reap what finished, so the set does not grow with the run.
        while let Some(done) = tasks.try_join_next() {
            let (ok, nanos) = done?;
            failed += usize::from(!ok);
            latencies.push(nanos);
            bar.inc(1);
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (ok, nanos) = done?;
        failed += usize::from(!ok);
        latencies.push(nanos);
        bar.inc(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if failed == total {
        bail!("every {label} request failed");
    }
    Ok(Reads { label, sent: total, failed, seconds, latencies })
}

async fn checked(request: reqwest::RequestBuilder) -> Result<Value> {
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("answered {status}: {body}");
    }
    Ok(body)
}
