//! `digibank bench ...`: benchmarks that print figures (never timed tests).

// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use ledger::{
    AccountId, AccountKind, Ledger, NewAccount, OwnerType, TransferId, TransferOutcome, TransferRequest, MAX_BATCH,
};
use money::Currency;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use storage::Database;

use crate::progress_bar;

#[derive(Args)]
pub struct LedgerBenchArgs {
    /// Transfers for the batched path.
    #[arg(long, default_value_t = 1_000_000)]
    transfers: usize,
    /// Customer accounts the transfers move money between.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Transfers per batch (one database transaction each), at most 8190.
    #[arg(long, default_value_t = MAX_BATCH)]
    batch_size: usize,
    /// Transfers for the naive baseline (one SQL transaction each); default min(transfers, 20000).
    #[arg(long)]
    naive_transfers: Option<usize>,
    /// Directory for the SQLite benchmark files. Keep it on a real disk: fsync is part of what
    /// is measured.
    #[arg(long, default_value = "data/bench")]
    dir: PathBuf,
    /// Ignore DATABASE_URL and benchmark SQLite only.
    #[arg(long)]
    sqlite_only: bool,
}

struct Row {
    backend: &'static str,
    path: String,
    transfers: usize,
    seconds: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.transfers as f64 / self.seconds
    }
}

pub async fn ledger(args: LedgerBenchArgs) -> Result<()> {
    let batch_size = args.batch_size.clamp(1, MAX_BATCH);
    let naive_n = args.naive_transfers.unwrap_or(args.transfers.min(20_000));
    println!(
        "ledger benchmark: {} transfers among {} accounts, batches of {batch_size}, every commit durable \
         (SQLite WAL synchronous=FULL; PostgreSQL synchronous_commit=on)",
        args.transfers, args.accounts
    );
    std::fs::create_dir_all(&args.dir)?;
    let mut rows = Vec::new();

    let batched_path = args.dir.join("batched.db");
    remove_sqlite(&batched_path);
    let db = Database::connect_sqlite(&batched_path.to_string_lossy()).await?;
    rows.push(batched(&db, &args, batch_size).await?);
    db.close().await;
    let naive_path = args.dir.join("naive.db");
    remove_sqlite(&naive_path);
    let db = Database::connect_sqlite(&naive_path.to_string_lossy()).await?;
    rows.push(naive(&db, args.accounts, naive_n).await?);
    db.close().await;

    let postgres = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres") && !args.sqlite_only);
    if let Some(base) = postgres {
        let schema = format!("bench_{}", std::process::id());
        let url = storage::postgres_url_with_schema(&base, &schema).await?;
        let db = Database::connect(&url).await?;
        rows.push(batched(&db, &args, batch_size).await?);
        rows.push(naive(&db, args.accounts, naive_n).await?);
        db.close().await;
        storage::drop_postgres_schema(&base, &schema).await?;
    } else {
        println!("(PostgreSQL skipped: set DATABASE_URL=postgres://... to include it)");
    }

    println!();
    println!("{:<10} {:<34} {:>10} {:>9} {:>13}", "backend", "path", "transfers", "seconds", "transfers/s");
    for r in &rows {
        println!("{:<10} {:<34} {:>10} {:>9.2} {:>13.0}", r.backend, r.path, r.transfers, r.seconds, r.rate());
    }
    for backend in ["sqlite", "postgres"] {
        let find = |prefix: &str| rows.iter().find(|r| r.backend == backend && r.path.starts_with(prefix));
        if let (Some(b), Some(n)) = (find("batched"), find("naive")) {
            println!("{backend}: batched is {:.1}x the naive baseline", b.rate() / n.rate());
        }
    }
    Ok(())
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A database a benchmark runs on: a fresh SQLite file, or a fresh schema of the PostgreSQL
/// server `DATABASE_URL` names.
pub struct BenchDatabase {
    pub db: Database,
    sqlite_file: Option<PathBuf>,
    postgres_schema: Option<(String, String)>,
}

impl BenchDatabase {
    /// Closes the database and deletes it (the SQLite file stays when DIGIBANK_BENCH_KEEP is set).
    pub async fn finish(self) -> Result<()> {
        self.db.close().await;
        if let Some((base, schema)) = self.postgres_schema {
            storage::drop_postgres_schema(&base, &schema).await?;
        }
        if let Some(path) = self.sqlite_file.filter(|_| std::env::var_os("DIGIBANK_BENCH_KEEP").is_none()) {
            remove_sqlite(&path);
        }
        Ok(())
    }
}

/// `<dir>/<name>.db` (fresh), plus a fresh `bench_<name>_<pid>` schema when `DATABASE_URL`
/// names a PostgreSQL server and `sqlite_only` is off.
pub async fn bench_databases(dir: &std::path::Path, name: &str, sqlite_only: bool) -> Result<Vec<BenchDatabase>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.db"));
    remove_sqlite(&path);
    let db = Database::connect_sqlite(&path.to_string_lossy()).await?;
    let mut out = vec![BenchDatabase { db, sqlite_file: Some(path), postgres_schema: None }];
    if let Some(base) = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres") && !sqlite_only) {
        let schema = format!("bench_{name}_{}", std::process::id());
        let url = storage::postgres_url_with_schema(&base, &schema).await?;
        let db = Database::connect(&url).await?;
        out.push(BenchDatabase { db, sqlite_file: None, postgres_schema: Some((base, schema)) });
    }
    Ok(out)
}

async fn batched(db: &Database, args: &LedgerBenchArgs, batch_size: usize) -> Result<Row> {
    let backend = db.backend_name();
    let ledger = Ledger::new(db);
    let funding = ledger
        .open_account(NewAccount {
            id: None,
            currency: Currency::CNY,
            kind: AccountKind::Asset,
            owner_type: OwnerType::Bank,
            owner_id: None,
            code: Some("gl.bench.funding".into()),
            name: None,
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: false,
            overdraft_limit: 0,
        })
        .await?
        .id;
    let mut accounts = Vec::with_capacity(args.accounts);
    let all: Vec<NewAccount> = (0..args.accounts)
        .map(|i| NewAccount {
            id: Some(AccountId::new()),
            currency: Currency::CNY,
            kind: AccountKind::Liability,
            owner_type: OwnerType::Customer,
            owner_id: Some(format!("B{i:07}")),
            code: Some("deposit.current".into()),
            name: None,
            debits_must_not_exceed_credits: true,
            credits_must_not_exceed_debits: false,
            overdraft_limit: 0,
        })
        .collect();
    for chunk in all.chunks(5000) {
        accounts.extend(ledger.open_accounts(chunk).await?.into_iter().map(|a| a.id));
    }
    let funding_transfers: Vec<TransferRequest> = accounts
        .iter()
        .map(|a| TransferRequest::posted(TransferId::new(), funding, *a, 1_000_000_000, Currency::CNY))
        .collect();
    for chunk in funding_transfers.chunks(MAX_BATCH) {
        ledger.submit_batch(chunk).await?;
    }

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let requests: Vec<TransferRequest> = (0..args.transfers)
        .map(|_| {
            let from = rng.gen_range(0..accounts.len());
            let mut to = rng.gen_range(0..accounts.len() - 1);
            if to >= from {
                to += 1;
            }
            TransferRequest::posted(
                TransferId::new(),
                accounts[from],
                accounts[to],
                rng.gen_range(1..10_000),
                Currency::CNY,
            )
        })
        .collect();

    let bar = progress_bar(requests.len() as u64, backend);
    let start = Instant::now();
    let mut created = 0usize;
    for chunk in requests.chunks(batch_size) {
        let outcomes = ledger.submit_batch(chunk).await?;
        created += outcomes.iter().filter(|o| matches!(o, TransferOutcome::Created { .. })).count();
        bar.inc(chunk.len() as u64);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    println!("{backend}: batched {created} of {} transfers committed in {seconds:.2} s", requests.len());

    let verify_start = Instant::now();
    let report = ledger.verify(|_, _| {}).await?;
    anyhow::ensure!(report.is_ok(), "verification failed after the benchmark: {:?}", report.problems);
    println!(
        "{backend}: verify re-derived {} entries and {} accounts in {:.2} s: OK",
        report.entries,
        report.accounts,
        verify_start.elapsed().as_secs_f64()
    );
    Ok(Row { backend, path: format!("batched ({batch_size}/commit)"), transfers: requests.len(), seconds })
}

async fn naive(db: &Database, accounts: usize, transfers: usize) -> Result<Row> {
    let backend = db.backend_name();
    ledger::baseline::setup(db, accounts as i64, 1_000_000_000).await?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let bar = progress_bar(transfers as u64, "naive");
    let start = Instant::now();
    for _ in 0..transfers {
        let from = rng.gen_range(0..accounts as i64);
        let to = (from + rng.gen_range(1..accounts as i64)) % accounts as i64;
        ledger::baseline::transfer(db, from, to, rng.gen_range(1..10_000), chrono::Utc::now().timestamp_micros())
            .await?;
        bar.inc(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(Row { backend, path: "naive (1 SQL transaction/transfer)".into(), transfers, seconds })
}

#[derive(Args)]
pub struct TagsBenchArgs {
    /// Customers in the population (each with six months of transactions).
    #[arg(long, default_value_t = 1_000_000)]
    customers: usize,
    /// Random profile lookups to time (each also reads one registered master record).
    #[arg(long, default_value_t = 10_000)]
    lookups: usize,
    /// Customer master records to register (timed one by one) before the lookups.
    #[arg(long, default_value_t = 10_000)]
    registrations: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory for the SQLite benchmark file (deleted afterwards unless DIGIBANK_BENCH_KEEP is set).
    #[arg(long, default_value = "data/bench")]
    dir: PathBuf,
    /// Ignore DATABASE_URL and benchmark SQLite only.
    #[arg(long)]
    sqlite_only: bool,
}

pub async fn tags(args: TagsBenchArgs) -> Result<()> {
    let targets = bench_databases(&args.dir, "tags", args.sqlite_only).await?;
    let config = customer_platform::bench::TagsBenchConfig {
        customers: args.customers,
        seed: args.seed,
        lookups: args.lookups,
        registrations: args.registrations.min(args.customers),
        as_of: chrono::Utc::now().date_naive(),
    };
    println!(
        "tags benchmark: {} customers with six months of transactions, {} profile lookups",
        args.customers, args.lookups
    );
    for target in targets {
        let db = target.db.clone();
        // Field encryption on, as in production: a master key that exists only in this run.
        let vault = access::Vault::load(&db, std::sync::Arc::new(access::MasterKey::random())).await?;
        let store = customer_platform::CustomerStore::new(db.clone(), vault);
        let bar = progress_bar(args.customers as u64, "load");
        let report = customer_platform::bench::run(&store, &config, |phase, done, total| {
            bar.set_message(phase.to_string());
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
        bar.finish_and_clear();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        println!();
        println!(
            "backend {}: {} customers, {} transactions, {} tags, {} segments",
            report.backend, report.customers, report.transactions, report.tags, report.segments
        );
        println!("  load (generate + fold transactions + store facts) {:>9.1} s", report.load.as_secs_f64());
        println!(
            "  full recomputation (all tags, tiers, RFM, segments, churn) {:>7.1} s  ({:.0} customers/s)",
            report.full_recompute.as_secs_f64(),
            report.customers as f64 / report.full_recompute.as_secs_f64()
        );
        let phases: Vec<String> = report.full_phases_millis.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("    phases (ms): {}", phases.join(", "));
        println!(
            "  incremental recomputation ({} changed customers) {:>9.2} s",
            report.incremental_customers,
            report.incremental_recompute.as_secs_f64()
        );
        println!(
            "  profile lookup (facts + profile + results + one master record) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(report.lookup_p50),
            ms(report.lookup_p99),
            ms(report.lookup_max)
        );
        println!(
            "  customer registration ({} records, personal data encrypted) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            report.registrations,
            ms(report.register_p50),
            ms(report.register_p99),
            ms(report.register_max)
        );
        println!("  churn model held-out AUC {:.3}", report.churn_auc);
        if let Some(rss) = report.peak_rss_bytes {
            println!("  peak memory (process VmHWM so far) {:.0} MiB", rss as f64 / 1048576.0);
        }
        target.finish().await?;
    }
    Ok(())
}

#[derive(Args)]
pub struct LendingBenchArgs {
    /// Credit decisions to time (every external data source simulated).
    #[arg(long, default_value_t = 200_000)]
    applications: usize,
    /// Active loans in the in-memory end-of-day batch.
    #[arg(long, default_value_t = 1_000_000)]
    loans: usize,
    /// Loans in the stored end-of-day run: imported as an aged loan book, then one business
    /// day through the ledger (about 7 GB of SQLite and 10 minutes of import at 1M); 0 skips it.
    #[arg(long, default_value_t = 1_000_000)]
    persisted_loans: usize,
    /// Directory for the SQLite benchmark file.
    #[arg(long, default_value = "data/bench")]
    dir: PathBuf,
}

pub async fn lending(args: LendingBenchArgs) -> Result<()> {
    let n = args.applications;
    let d = tokio::task::spawn_blocking(move || lending::bench::bench_decisions(n, 7)).await?;
    println!(
        "decisions: {} in {:.2} s on {} threads = {:.0} decisions/s; latency p50 {:.1} us, p99 {:.1} us, max {:.1} us \
         (approve {}, review {}, decline {}; bureau, social security, housing fund, tax and ERP adapters simulated)",
        d.decisions, d.seconds, d.threads, d.per_second, d.p50_us, d.p99_us, d.max_us, d.approve, d.review, d.decline
    );
    let loans = args.loans;
    let e = tokio::task::spawn_blocking(move || lending::bench::bench_eod(loans)).await?;
    println!(
        "end of day (in memory, pure domain: fall due + accrual + ageing, no I/O): {} active loans in {:.2} s on {} threads \
         = {:.0} loans/s; {} postings, interest {} fen, penalty {} fen, {} overdue (portfolio built in {:.1} s)",
        e.loans,
        e.eod_seconds,
        e.threads,
        e.loans_per_second,
        e.postings,
        e.interest_posted_minor,
        e.penalty_posted_minor,
        e.overdue_loans,
        e.build_seconds
    );
    if args.persisted_loans > 0 {
        persisted_eod(&args).await?;
    }
    Ok(())
}

/// Imports `persisted_loans` aged loans ([`lending::bench::build_portfolio`], the in-memory
/// portfolio) as a loan book (ledger accounts, opening balances, loan rows), then times one
/// stored end of day over them: read pages, compute, post to the ledger and save.
async fn persisted_eod(args: &LendingBenchArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let path = args.dir.join(format!("lending-{}.db", uuid::Uuid::now_v7().simple()));
    let db = Database::connect(&format!("sqlite://{}", path.display())).await?;
    let ledger = Ledger::new(&db);
    let vault = access::Vault::load(&db, std::sync::Arc::new(access::MasterKey::random())).await?;
    let service = lending_platform::LendingService::new(db.clone(), ledger.clone(), vault);
    let deposit = AccountId(uuid::Uuid::now_v7());
    ledger
        .open_account(NewAccount {
            id: Some(deposit),
            currency: Currency::CNY,
            kind: AccountKind::Liability,
            owner_type: OwnerType::Customer,
            owner_id: Some("bench".into()),
            code: Some("deposit.current".into()),
            name: None,
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: false,
            overdraft_limit: 0,
        })
        .await?;
    let n = args.persisted_loans;
    let book: Vec<lending_platform::ImportedLoan> =
        tokio::task::spawn_blocking(move || lending::bench::build_portfolio(n, 11))
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, loan)| lending_platform::ImportedLoan {
                loan,
                applicant_id: format!("B{i}"),
                customer_account: deposit,
                repayment_account: deposit,
            })
            .collect();
    let bar = progress_bar(n as u64, "import loans");
    let t0 = Instant::now();
    let imported = service.import_loans(&book, |done, _| bar.set_position(done)).await?;
    bar.finish_and_clear();
    drop(book);
    let import_s = t0.elapsed().as_secs_f64();
    let date = lending::bench::bench_date();
    let bar = progress_bar(n as u64, "end of day");
    let t1 = Instant::now();
    let r = service.run_eod(date, |done, _| bar.set_position(done)).await?;
    let s = t1.elapsed().as_secs_f64();
    bar.finish_and_clear();
    println!(
        "end of day (persisted, SQLite, through the ledger): {} loans imported in {:.1} s ({:.0} loans/s, {} opening-balance transfers); \
         one business day over {} open loans: {:.2} s = {:.0} loans/s ({} postings, {} overdue; ms read {}, compute {}, ledger and save {})",
        imported.imported,
        import_s,
        imported.imported as f64 / import_s.max(1e-9),
        imported.transfers,
        r.loans_processed,
        s,
        r.loans_processed as f64 / s.max(1e-9),
        r.postings,
        r.overdue_loans,
        r.phases_millis.read,
        r.phases_millis.compute,
        r.phases_millis.ledger,
    );
    db.close().await;
    if std::env::var_os("DIGIBANK_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

#[derive(Args)]
pub struct AuditBenchArgs {
    /// Audit entries to write, seal and verify.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Directory for the SQLite benchmark file (deleted afterwards unless DIGIBANK_BENCH_KEEP is set).
    #[arg(long, default_value = "data/bench")]
    dir: PathBuf,
    /// Ignore DATABASE_URL and benchmark SQLite only.
    #[arg(long)]
    sqlite_only: bool,
}

/// Writes N entries, seals them into the hash chain, and times `audit verify` over them (target:
/// 10 million entries verified in under 60 s). The journal's `verify` is the reference: the
/// same kind of walk (SHA-256 per entry, keyset pages).
pub async fn audit(args: AuditBenchArgs) -> Result<()> {
    let targets = bench_databases(&args.dir, "audit", args.sqlite_only).await?;
    println!("audit benchmark: {} entries", args.entries);
    println!("| backend | write | seal | verify | verify rate |");
    println!("|---|---|---|---|---|");
    for target in targets {
        let db = target.db.clone();
        let trail = access::AuditTrail::new(db.clone());
        let bar = progress_bar(args.entries, "writing");
        let started = Instant::now();
        trail.append_synthetic(args.entries, |n| bar.set_position(n)).await?;
        let write = started.elapsed();
        bar.finish_and_clear();
        let bar = progress_bar(args.entries, "sealing");
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        let started = Instant::now();
        let sealed = trail.seal_pending().await?;
        let seal = started.elapsed();
        bar.finish_and_clear();
        let bar = progress_bar(args.entries, "verifying");
        let started = Instant::now();
        let report = trail.verify(|n| bar.set_position(n)).await?;
        let verify = started.elapsed();
        bar.finish_and_clear();
        anyhow::ensure!(report.ok() && report.checked == sealed, "verification failed: {:?}", report.problems.first());
        println!(
            "| {} | {:.1} s | {:.1} s | {:.1} s | {:.0} entries/s |",
            db.backend_name(),
            write.as_secs_f64(),
            seal.as_secs_f64(),
            verify.as_secs_f64(),
            report.checked as f64 / verify.as_secs_f64()
        );
        target.finish().await?;
    }
    Ok(())
}
