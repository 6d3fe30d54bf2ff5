//! `digibank`: the command-line entry point of the platform.

mod bench;
mod bench_http;
mod bench_openbank;
mod openbank_cli;
mod process_cli;
mod risk_cli;
mod security;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ledger::Ledger;
use storage::Database;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "digibank", version, about = "digibank: an open-source digital banking core")]
struct Cli {
    /// Database URL: sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = storage::DEFAULT_URL)]
    database_url: String,
    /// The master key file (64 hex digits or base64 of 32 bytes, mode 0600) that wraps the
    /// field encryption keys. Else DIGIBANK_MASTER_KEY (the key itself) or
    /// DIGIBANK_MASTER_KEY_FILE, else master_key_file in [security], else master.key in the
    /// data directory (created for a database without encrypted data).
    #[arg(long, global = true)]
    master_key_file: Option<std::path::PathBuf>,
    /// The config file (default: digibank.toml in the working directory, if present). Also
    /// DIGIBANK_CONFIG.
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API server.
    Serve(Box<ServeArgs>),
    /// Generate the reproducible synthetic demo bank into the database.
    Demo(DemoArgs),
    /// Re-check the journal's hash chain and re-derive every balance from it.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys directly in the database (e.g. when the first admin key was lost).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage staff users directly in the database (the first admin person, a lost admin).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Customer data platform: recompute tags and segments, train the churn model.
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Risk models.
    Risk {
        #[command(subcommand)]
        command: RiskCommand,
    },
    /// Lending: end of day over every open loan.
    Lending {
        #[command(subcommand)]
        command: LendingCommand,
    },
    /// Open banking: sign a sandbox partner's client assertion.
    OpenBanking {
        #[command(subcommand)]
        command: openbank_cli::OpenBankingCommand,
    },
    /// Field encryption keys: rotate the data key, show key versions.
    Security {
        #[command(subcommand)]
        command: SecurityCommand,
    },
    /// The audit trail: seal pending entries, verify the hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Process intelligence: export the process event log (OCEL 2.0, XES), import logs of
    /// other systems, mine a log.
    Process {
        #[command(subcommand)]
        command: process_cli::ProcessCommand,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum RiskCommand {
    /// Train the fraud scorecard and GBDT on the labelled synthetic history (plus resolved
    /// cases), print held-out metrics and store the artefacts in the database.
    Train(risk_cli::TrainArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DIGIBANK_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The URL partners reach this server at: the issuer of open-banking tokens and the base of
    /// its endpoints (default `http://<addr>`, with 127.0.0.1 for an unspecified address).
    #[arg(long, env = "DIGIBANK_PUBLIC_URL")]
    public_url: Option<String>,
    /// Where customers' one-time codes are delivered (consent authorisation, the consent
    /// dashboard's sign-in): a file of JSON lines, the sandbox's phone (default
    /// `<data dir>/code-outbox.jsonl`).
    #[arg(long, env = "DIGIBANK_CODE_OUTBOX")]
    code_outbox: Option<std::path::PathBuf>,
    /// Transfer channels (`metadata.channel`) screened by the risk engine, comma-separated;
    /// empty = none.
    #[arg(long, env = "DIGIBANK_RISK_SCREEN_CHANNELS", default_value = "mobile,web,open_banking")]
    screen_channels: String,
    /// How long a transfer sent to review is held before the hold expires (0 = until resolved).
    #[arg(long, env = "DIGIBANK_RISK_REVIEW_HOLD_SECS", default_value_t = 86_400)]
    review_hold_secs: u32,
    /// `durable`: answer risk decisions after they are committed; `buffered`: answer at once
    /// and store them a few milliseconds later (a crash can lose the last batch).
    #[arg(long, env = "DIGIBANK_RISK_DECISION_LOG", default_value = "durable", value_parser = ["durable", "buffered"])]
    decision_log: String,
    /// Seconds between checks for a newer risk model, rule-set activations and list changes made
    /// by another process or node (0 = never).
    #[arg(long, env = "DIGIBANK_RISK_REFRESH_SECS", default_value_t = 10)]
    risk_refresh_secs: u32,
    /// Days of the decision log replayed at start-up into the relationship graph (the last 30
    /// also into the velocity counters).
    #[arg(long, env = "DIGIBANK_RISK_GRAPH_HISTORY_DAYS", default_value_t = 90)]
    risk_graph_history_days: u32,
    /// Most risk decisions in flight (being decided or waiting for the decision log) at once;
    /// beyond it decisions are refused at once with 503 `overloaded` and `Retry-After`.
    #[arg(long, env = "DIGIBANK_RISK_MAX_IN_FLIGHT", default_value_t = 1024)]
    risk_max_in_flight: u32,
    /// Where lending decisions get applicant records and external data (bureau, social
    /// security, housing fund, tax, ERP): `simulator` (deterministic, seeded) or `files` (JSON
    /// files under --lending-data-dir, layout in crates/lending/README.md).
    #[arg(long, env = "DIGIBANK_LENDING_DATA_SOURCE", default_value = "simulator", value_parser = ["simulator", "files"])]
    lending_data_source: String,
    /// Directory of the `files` lending data source; must exist.
    #[arg(long, env = "DIGIBANK_LENDING_DATA_DIR")]
    lending_data_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    eod_limits: EodLimitArgs,
    #[command(flatten)]
    alerts: AlertArgs,
    #[command(flatten)]
    sessions: SessionArgs,
    /// Rate limits per caller and route class (`[rate_limits]` of the config file sets them):
    /// `on`, or `off` for benchmarks and load tests.
    #[arg(long, env = "DIGIBANK_RATE_LIMITS", default_value = "on", value_parser = ["on", "off"])]
    rate_limits: String,
    /// Maker-checker: `on` (sensitive operations wait for a second person's approval) or `off`
    /// (they run at once: a single-person demo; the end-to-end test harness sets off).
    #[arg(long, env = "DIGIBANK_FOUR_EYES", default_value = "on", value_parser = ["on", "off"])]
    four_eyes: String,
    /// Seconds a pending approval waits for its checker before it expires.
    #[arg(long, env = "DIGIBANK_APPROVAL_EXPIRY_SECS", default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(1..))]
    approval_expiry_secs: u64,
    /// `Strict-Transport-Security` max-age in seconds on every response (0 = no header, e.g.
    /// when a proxy in front sets it).
    #[arg(long, env = "DIGIBANK_HSTS_MAX_AGE", default_value_t = 31_536_000)]
    hsts_max_age: u64,
    /// Seconds between recomputations of the KPI system (each node computes and stores the
    /// indicators of the current hour and day).
    #[arg(long, env = "DIGIBANK_KPI_REFRESH_SECS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    kpi_refresh_secs: u64,
    #[command(flatten)]
    webhooks: WebhookArgs,
    /// Load the demo bank first when the database has no accounts yet.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    demo_args: DemoArgs,
}

/// How webhook deliveries are retried.
#[derive(Args, Clone)]
struct WebhookArgs {
    /// Wait after a webhook delivery's first failure, in milliseconds; each further failure waits
    /// four times longer (at most 6 h).
    #[arg(long, env = "DIGIBANK_WEBHOOK_RETRY_BASE_MS", default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    webhook_retry_base_ms: u64,
    /// Attempts before a delivery goes to the dead letters (staff can replay it).
    #[arg(long, env = "DIGIBANK_WEBHOOK_MAX_ATTEMPTS", default_value_t = 10,
        value_parser = clap::value_parser!(i64).range(1..=50))]
    webhook_max_attempts: i64,
}

impl WebhookArgs {
    fn settings(&self) -> webhooks::WebhookSettings {
        webhooks::WebhookSettings {
            retry_base: Duration::from_millis(self.webhook_retry_base_ms),
            max_attempts: self.webhook_max_attempts,
            ..Default::default()
        }
    }
}

/// What the security alert detectors look for and where alerts go.
#[derive(Args, Clone)]
struct AlertArgs {
    /// Alert when one actor reads more than this many customers' (loans', decisions') personal
    /// data within --alert-bulk-read-minutes.
    #[arg(long, env = "DIGIBANK_ALERT_BULK_READS", default_value_t = 100)]
    alert_bulk_reads: i64,
    #[arg(long, env = "DIGIBANK_ALERT_BULK_READ_MINUTES", default_value_t = 10)]
    alert_bulk_read_minutes: u64,
    /// Alert when one address (or user) fails authentication more than this many times within
    /// --alert-failed-auth-minutes.
    #[arg(long, env = "DIGIBANK_ALERT_FAILED_AUTH", default_value_t = 20)]
    alert_failed_auth: i64,
    #[arg(long, env = "DIGIBANK_ALERT_FAILED_AUTH_MINUTES", default_value_t = 5)]
    alert_failed_auth_minutes: u64,
    /// Working hours `START-END` (local hours, Monday to Friday); admin changes outside them are
    /// alerted.
    #[arg(long, env = "DIGIBANK_WORKING_HOURS", default_value = "8-20")]
    working_hours: String,
    /// The bank's offset from UTC in hours.
    #[arg(long, env = "DIGIBANK_UTC_OFFSET_HOURS", default_value_t = 8, allow_negative_numbers = true)]
    utc_offset_hours: i32,
    /// Seconds between detector runs.
    #[arg(long, env = "DIGIBANK_ALERT_TICK_SECS", default_value_t = 15)]
    alert_tick_secs: u64,
    /// Where alerts are POSTed as JSON (retried with backoff up to 10 times).
    #[arg(long, env = "DIGIBANK_ALERT_WEBHOOK")]
    alert_webhook: Option<String>,
    /// Secret for the `X-Digibank-Signature: sha256=<HMAC>` header of webhook deliveries.
    #[arg(long, env = "DIGIBANK_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    alert_webhook_secret: Option<String>,
}

impl AlertArgs {
    fn settings(&self) -> Result<access::AlertSettings> {
        let hours = self
            .working_hours
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
            .filter(|(a, b)| a < b && *b <= 24)
            .with_context(|| {
                format!("working hours must be START-END with 0 <= START < END <= 24, got {:?}", self.working_hours)
            })?;
        if !(-12..=14).contains(&self.utc_offset_hours) {
            bail!("the UTC offset must be between -12 and 14 hours, got {}", self.utc_offset_hours);
        }
        if self.alert_tick_secs == 0 || self.alert_bulk_read_minutes == 0 || self.alert_failed_auth_minutes == 0 {
            bail!("alert tick and windows must be at least 1");
        }
        Ok(access::AlertSettings {
            bulk_read_threshold: self.alert_bulk_reads,
            bulk_read_window: Duration::from_secs(self.alert_bulk_read_minutes * 60),
            failed_auth_threshold: self.alert_failed_auth,
            failed_auth_window: Duration::from_secs(self.alert_failed_auth_minutes * 60),
            working_hours: hours,
            utc_offset_hours: self.utc_offset_hours,
            tick: Duration::from_secs(self.alert_tick_secs),
            webhook_url: self.alert_webhook.clone(),
            webhook_secret: self.alert_webhook_secret.clone(),
        })
    }
}

/// Staff sessions and sign-in throttling.
#[derive(Args, Clone, Copy)]
struct SessionArgs {
    /// A staff session unused this many seconds ends.
    #[arg(long = "session-idle-secs", env = "DIGIBANK_SESSION_IDLE_SECS", default_value_t = 1800)]
    idle_secs: u64,
    /// A staff session ends this many seconds after sign-in, used or not.
    #[arg(long = "session-max-secs", env = "DIGIBANK_SESSION_MAX_SECS", default_value_t = 43_200)]
    max_secs: u64,
    /// Failed sign-ins in a row that lock a user until an admin unlocks it.
    #[arg(long = "sign-in-max-failures", env = "DIGIBANK_SIGN_IN_MAX_FAILURES", default_value_t = 5)]
    max_failures: u32,
    /// Failed sign-ins from one address in 15 minutes after which it is refused (429).
    #[arg(long = "sign-in-max-failures-per-ip", env = "DIGIBANK_SIGN_IN_MAX_FAILURES_PER_IP", default_value_t = 20)]
    ip_max_failures: u32,
}

impl From<SessionArgs> for access::UserSettings {
    fn from(a: SessionArgs) -> Self {
        access::UserSettings {
            session_idle: Duration::from_secs(a.idle_secs.max(1)),
            session_max: Duration::from_secs(a.max_secs.max(1)),
            max_failures: a.max_failures.max(1),
            ip_max_failures: a.ip_max_failures.max(1),
            ..access::UserSettings::default()
        }
    }
}

/// How far ahead an end of day may be dated (its work grows with the days loans catch up).
#[derive(Args, Clone, Copy)]
struct EodLimitArgs {
    /// Refuse an end of day more than this many days after the last one.
    #[arg(long = "lending-eod-max-gap-days", env = "DIGIBANK_LENDING_EOD_MAX_GAP_DAYS", default_value_t = 31)]
    max_gap_days: u32,
    /// Refuse an end of day more than this many days after today (1 = tomorrow). Test systems
    /// that simulate months of business raise it.
    #[arg(long = "lending-eod-max-days-ahead", env = "DIGIBANK_LENDING_EOD_MAX_DAYS_AHEAD", default_value_t = 1)]
    max_days_ahead: u32,
}

impl From<EodLimitArgs> for lending_platform::EodLimits {
    fn from(a: EodLimitArgs) -> Self {
        lending_platform::EodLimits { max_gap_days: a.max_gap_days, max_days_ahead: a.max_days_ahead }
    }
}

#[derive(Args, Clone)]
struct DemoArgs {
    /// Number of customers to generate.
    #[arg(long = "customers", env = "DIGIBANK_DEMO_CUSTOMERS", default_value_t = 200)]
    customers: usize,
    /// Random seed: the same seed gives the same bank.
    #[arg(long, env = "DIGIBANK_DEMO_SEED", default_value_t = 42)]
    seed: u64,
    /// Months of history.
    #[arg(long, default_value_t = 6)]
    months: u32,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue a new API key and print it once.
    Create {
        #[arg(long)]
        name: String,
        /// A role's name: admin, operator, teller, auditor, monitoring or one created with
        /// `POST /v1/roles`.
        #[arg(long, default_value = "admin")]
        role: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Seal what is pending, then walk the whole hash chain, recompute every entry's hash and
    /// name each entry that was edited, deleted or moved, and a truncated chain. Exits non-zero
    /// on any problem.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a staff user and print its initial password (generated unless given). The user
    /// sets up the second factor at the first sign-in (`POST /v1/sessions`).
    Create {
        #[arg(long)]
        username: String,
        /// A role's name; omitted = no role (the user may only sign in and out).
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the initial password from the first line of standard input.
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        /// The initial password (visible in the process list; prefer --password-stdin).
        #[arg(long)]
        password: Option<String>,
    },
    /// Lift a lockout after too many failed sign-ins.
    Unlock {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum SecurityCommand {
    /// Add a new data key and re-encrypt every sealed field with it, with a progress bar.
    /// Servers keep reading and writing meanwhile (old keys stay readable until this finishes
    /// and reload keys every few seconds); an interrupted run is resumed by running it again
    /// (or by `serve`). The blind index key is never rotated: lookups depend on it.
    RotateKey,
    /// Show the data key versions and any rotation in progress.
    Status,
}

#[derive(Subcommand)]
enum CustomersCommand {
    /// Recompute tags, tiers, RFM, segments and churn scores of stored customers.
    Recompute {
        /// Recompute everyone and refit RFM cuts and the recommender (default: only customers
        /// whose facts changed, or everyone when a rule changed).
        #[arg(long)]
        full: bool,
    },
    /// Train the churn model on labelled history and store it as the next version.
    TrainChurn {
        /// Customers in the training history.
        #[arg(long, default_value_t = 20_000)]
        customers: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum LendingCommand {
    /// Close a business day: fall due, accrue interest and penalty, age every open loan, all
    /// through the ledger. Idempotent: a date already run reports `already_run` and writes nothing.
    Eod {
        /// The business day, YYYY-MM-DD.
        #[arg(long)]
        date: chrono::NaiveDate,
        #[command(flatten)]
        limits: EodLimitArgs,
    },
    /// Import a loan book from another system: one JSON object per line with `loan` (the
    /// loan's state as `GET /v1/lending/loans/{id}` shows it), `applicant_id`,
    /// `customer_account` and `repayment_account`. Balances arrive from the clearing account
    /// `gl.loan_migration`. The whole file is checked before anything is written; importing
    /// the same file again changes nothing.
    Import {
        /// The JSON-lines file.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Ledger throughput: batched path on SQLite (and PostgreSQL when DATABASE_URL is set)
    /// against a naive one-transaction-per-transfer baseline.
    Ledger(bench::LedgerBenchArgs),
    /// Customer platform: full tag recomputation over N customers with six months of
    /// transactions, incremental recomputation, and profile lookup latency.
    Tags(bench::TagsBenchArgs),
    /// Risk decisions: in-process latency and throughput, then over HTTP at a fixed rate from a
    /// separate load process.
    Risk(risk_cli::RiskBenchArgs),
    /// The load process of `bench risk` (internal).
    #[command(hide = true)]
    RiskLoad(risk_cli::RiskLoadArgs),
    /// Lending: automated decisions per second and p99 latency (all adapters simulated), and
    /// the end-of-day batch over an in-memory portfolio plus a persisted one.
    Lending(bench::LendingBenchArgs),
    /// Audit trail: write, seal and verify N entries (target: 10 million verified in < 60 s).
    Audit(bench::AuditBenchArgs),
    /// The HTTP stack under load: ledger transfers per second with the audit trail on and off
    /// (target: on is at least 80% of off), customer registration and profile lookup latency.
    Http(bench_http::HttpBenchArgs),
    /// Open banking: balance reads through the partner API at a fixed rate, open loop (target:
    /// 2,000/s, p99 under 10 ms), beside the staff API; client-credentials tokens per second
    /// (target: at least 1,000).
    OpenBanking(bench_openbank::OpenBankingBenchArgs),
}

/// Settings read from `digibank.toml` (or the file named by `DIGIBANK_CONFIG`). Precedence:
/// command-line flag, then environment variable, then this file, then the built-in default.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    addr: Option<String>,
    demo_customers: Option<usize>,
    demo_seed: Option<u64>,
    log: Option<String>,
    risk: Option<RiskFileConfig>,
    lending: Option<LendingFileConfig>,
    security: Option<SecurityFileConfig>,
    rate_limits: Option<server::limits::RateLimitConfig>,
    http: Option<HttpFileConfig>,
    alerts: Option<AlertFileConfig>,
    kpis: Option<KpiFileConfig>,
}

/// `[kpis]` in the config file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KpiFileConfig {
    refresh_secs: Option<u64>,
}

/// `[alerts]` in the config file (the security alert detectors and their webhook).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertFileConfig {
    bulk_reads: Option<i64>,
    bulk_read_minutes: Option<u64>,
    failed_auth: Option<i64>,
    failed_auth_minutes: Option<u64>,
    working_hours: Option<String>,
    utc_offset_hours: Option<i32>,
    tick_secs: Option<u64>,
    webhook: Option<String>,
    /// The name of an environment variable holding the webhook secret (the secret itself is
    /// never put in the config file).
    webhook_secret_env: Option<String>,
}

/// `[http]` in the config file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFileConfig {
    hsts_max_age: Option<u64>,
}

/// `[security]` in the config file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SecurityFileConfig {
    /// The master key file (the key itself is never put in the config file).
    master_key_file: Option<String>,
    session_idle_secs: Option<u64>,
    session_max_secs: Option<u64>,
    sign_in_max_failures: Option<u32>,
    sign_in_max_failures_per_ip: Option<u32>,
    /// Maker-checker on (default) or off.
    four_eyes: Option<bool>,
    approval_expiry_secs: Option<u64>,
}

/// `[risk]` in the config file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RiskFileConfig {
    screen_channels: Option<Vec<String>>,
    review_hold_secs: Option<u32>,
    decision_log: Option<String>,
    refresh_secs: Option<u32>,
    graph_history_days: Option<u32>,
    max_in_flight: Option<u32>,
}

/// `[lending]` in the config file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LendingFileConfig {
    data_source: Option<String>,
    data_dir: Option<String>,
    eod_max_gap_days: Option<u32>,
    eod_max_days_ahead: Option<u32>,
}

/// Applies the config file by filling environment variables that are not set, which clap then
/// reads as defaults, and returns its structured part (`[rate_limits]`). Runs before any thread
/// exists, so setting variables is sound.
fn apply_config_file() -> Result<server::limits::RateLimitConfig> {
    // `--config PATH` (or `--config=PATH`) is read here, before the other flags are parsed.
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let path = match arg.strip_prefix("--config=") {
            Some(path) => Some(path.to_string()),
            None if arg == "--config" => args.next(),
            None => continue,
        };
        if let Some(path) = path {
            std::env::set_var("DIGIBANK_CONFIG", path);
        }
    }
    let explicit = std::env::var("DIGIBANK_CONFIG").ok();
    let path = explicit.clone().unwrap_or_else(|| "digibank.toml".to_string());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => return Ok(Default::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read config file {path}")),
    };
    let config: FileConfig = toml::from_str(&text).with_context(|| format!("invalid config file {path}"))?;
    let risk = config.risk.unwrap_or_default();
    let lending = config.lending.unwrap_or_default();
    let security_config = config.security.unwrap_or_default();
    let rate_limits = config.rate_limits.unwrap_or_default();
    let http = config.http.unwrap_or_default();
    let alerts = config.alerts.unwrap_or_default();
    let kpis = config.kpis.unwrap_or_default();
    let webhook_secret = alerts.webhook_secret_env.and_then(|name| std::env::var(name).ok());
    // The environment's key (DIGIBANK_MASTER_KEY) beats the file's key file.
    let master_key_file = security_config.master_key_file.filter(|_| std::env::var_os(security::ENV_KEY).is_none());
    let settings = [
        ("DIGIBANK_LENDING_DATA_SOURCE", lending.data_source),
        ("DIGIBANK_LENDING_DATA_DIR", lending.data_dir),
        ("DIGIBANK_LENDING_EOD_MAX_GAP_DAYS", lending.eod_max_gap_days.map(|n| n.to_string())),
        ("DIGIBANK_LENDING_EOD_MAX_DAYS_AHEAD", lending.eod_max_days_ahead.map(|n| n.to_string())),
        ("DIGIBANK_RISK_SCREEN_CHANNELS", risk.screen_channels.map(|c| c.join(","))),
        ("DIGIBANK_RISK_REVIEW_HOLD_SECS", risk.review_hold_secs.map(|n| n.to_string())),
        ("DIGIBANK_RISK_DECISION_LOG", risk.decision_log),
        ("DIGIBANK_RISK_REFRESH_SECS", risk.refresh_secs.map(|n| n.to_string())),
        ("DIGIBANK_RISK_GRAPH_HISTORY_DAYS", risk.graph_history_days.map(|n| n.to_string())),
        ("DIGIBANK_RISK_MAX_IN_FLIGHT", risk.max_in_flight.map(|n| n.to_string())),
        (security::ENV_KEY_FILE, master_key_file),
        ("DIGIBANK_SESSION_IDLE_SECS", security_config.session_idle_secs.map(|n| n.to_string())),
        ("DIGIBANK_SESSION_MAX_SECS", security_config.session_max_secs.map(|n| n.to_string())),
        ("DIGIBANK_SIGN_IN_MAX_FAILURES", security_config.sign_in_max_failures.map(|n| n.to_string())),
        ("DIGIBANK_SIGN_IN_MAX_FAILURES_PER_IP", security_config.sign_in_max_failures_per_ip.map(|n| n.to_string())),
        ("DIGIBANK_FOUR_EYES", security_config.four_eyes.map(|on| if on { "on" } else { "off" }.to_string())),
        ("DIGIBANK_APPROVAL_EXPIRY_SECS", security_config.approval_expiry_secs.map(|n| n.to_string())),
        ("DATABASE_URL", config.database_url),
        ("DIGIBANK_ADDR", config.addr),
        ("DIGIBANK_DEMO_CUSTOMERS", config.demo_customers.map(|n| n.to_string())),
        ("DIGIBANK_DEMO_SEED", config.demo_seed.map(|n| n.to_string())),
        ("RUST_LOG", config.log),
        ("DIGIBANK_RATE_LIMITS", (!rate_limits.enabled).then(|| "off".to_string())),
        ("DIGIBANK_HSTS_MAX_AGE", http.hsts_max_age.map(|n| n.to_string())),
        ("DIGIBANK_ALERT_BULK_READS", alerts.bulk_reads.map(|n| n.to_string())),
        ("DIGIBANK_ALERT_BULK_READ_MINUTES", alerts.bulk_read_minutes.map(|n| n.to_string())),
        ("DIGIBANK_ALERT_FAILED_AUTH", alerts.failed_auth.map(|n| n.to_string())),
        ("DIGIBANK_ALERT_FAILED_AUTH_MINUTES", alerts.failed_auth_minutes.map(|n| n.to_string())),
        ("DIGIBANK_WORKING_HOURS", alerts.working_hours),
        ("DIGIBANK_UTC_OFFSET_HOURS", alerts.utc_offset_hours.map(|n| n.to_string())),
        ("DIGIBANK_ALERT_TICK_SECS", alerts.tick_secs.map(|n| n.to_string())),
        ("DIGIBANK_ALERT_WEBHOOK", alerts.webhook),
        ("DIGIBANK_ALERT_WEBHOOK_SECRET", webhook_secret),
        ("DIGIBANK_KPI_REFRESH_SECS", kpis.refresh_secs.map(|n| n.to_string())),
    ];
    for (name, value) in settings {
        if let (Some(value), None) = (value, std::env::var_os(name)) {
            std::env::set_var(name, value);
        }
    }
    // Check the rates now, so a bad one stops every command, not only `serve`.
    server::limits::RateLimits::new(&rate_limits)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("invalid config file {path}"))?;
    Ok(rate_limits)
}

fn main() -> Result<()> {
    let rate_limits = apply_config_file()?;
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cli, rate_limits))
}

/// The audit action of a command that changes data; its writes commit with entries naming the
/// operating-system user (`serve` audits each request instead; benchmarks use their own data).
fn command_action(command: &Command) -> Option<&'static str> {
    match command {
        Command::Demo(_) => Some("cli demo"),
        Command::Keys { .. } => Some("cli keys create"),
        Command::Customers { .. } => Some("cli customers"),
        Command::Risk { .. } => Some("cli risk train"),
        Command::Lending { command: LendingCommand::Eod { .. } } => Some("cli lending eod"),
        Command::Lending { command: LendingCommand::Import { .. } } => Some("cli lending import"),
        Command::Security { command: SecurityCommand::RotateKey } => Some("cli security rotate-key"),
        _ => None,
    }
}

async fn run(cli: Cli, rate_limits: server::limits::RateLimitConfig) -> Result<()> {
    let Some(action) = command_action(&cli.command) else { return dispatch(cli, rate_limits).await };
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let context = storage::audit::AuditContext {
        at: ledger::Clock::now_micros(&ledger::SystemClock),
        actor_kind: "system".into(),
        actor: format!("cli:{user}"),
        role: None,
        action: action.into(),
        resource: action.trim_start_matches("cli ").into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ip: None,
        purpose: None,
    };
    storage::audit::scope(context, dispatch(cli, rate_limits)).await
}

async fn dispatch(cli: Cli, rate_limits: server::limits::RateLimitConfig) -> Result<()> {
    let key_file = cli.master_key_file.as_deref();
    match cli.command {
        Command::Serve(args) => serve(&cli.database_url, key_file, *args, rate_limits).await,
        Command::Demo(args) => {
            let db = connect(&cli.database_url).await?;
            let vault = security::open_vault(&db, key_file).await?;
            load_demo(&db, &vault, &args).await?;
            // The sandbox partners too, their tokens issued for `serve`'s default address
            // (`serve --public-url` names another).
            let lending = lending_platform::LendingService::new(db.clone(), Ledger::new(&db), vault.clone());
            let openbank =
                openbank_platform::OpenBanking::new(db.clone(), vault, Ledger::new(&db), "http://127.0.0.1:8080")
                    .with_lending(lending);
            openbank.load_keys().await?;
            openbank_cli::ensure_sandbox_partners(&openbank, &security::data_dir(&db)).await?;
            Ok(())
        }
        Command::OpenBanking { command } => openbank_cli::run(command),
        Command::Security { command } => security_command(&cli.database_url, key_file, command).await,
        Command::Verify { json } => verify(&cli.database_url, json).await,
        Command::Keys { command: KeysCommand::Create { name, role } } => {
            let db = connect(&cli.database_url).await?;
            let keys = access::KeyStore::new(db.clone());
            keys.roles().ensure_builtin().await?;
            let key = keys.issue(&name, &role).await?;
            println!("{}", key.key);
            Ok(())
        }
        Command::Users { command } => users_command(&cli.database_url, command).await,
        Command::Customers { command } => customers(&cli.database_url, key_file, command).await,
        Command::Bench { command: BenchCommand::Ledger(args) } => bench::ledger(args).await,
        Command::Bench { command: BenchCommand::Tags(args) } => bench::tags(args).await,
        Command::Bench { command: BenchCommand::Risk(args) } => risk_cli::bench(args).await,
        Command::Bench { command: BenchCommand::RiskLoad(args) } => risk_cli::load(args).await,
        Command::Risk { command: RiskCommand::Train(args) } => {
            let db = connect(&cli.database_url).await?;
            risk_cli::train(&db, args).await
        }
        Command::Bench { command: BenchCommand::Lending(args) } => bench::lending(args).await,
        Command::Bench { command: BenchCommand::Audit(args) } => bench::audit(args).await,
        Command::Bench { command: BenchCommand::Http(args) } => bench_http::http(args).await,
        Command::Bench { command: BenchCommand::OpenBanking(args) } => bench_openbank::open_banking(args).await,
        Command::Audit { command: AuditCommand::Verify { json } } => audit_verify(&cli.database_url, json).await,
        Command::Process { command } => process_cli::run(&cli.database_url, command).await,
        Command::Lending { command: LendingCommand::Eod { date, limits } } => {
            lending_eod(&cli.database_url, key_file, date, limits.into()).await
        }
        Command::Lending { command: LendingCommand::Import { file } } => {
            lending_import(&cli.database_url, key_file, &file).await
        }
    }
}

async fn users_command(url: &str, command: UsersCommand) -> Result<()> {
    let db = connect(url).await?;
    let roles = access::Roles::new(db.clone());
    roles.ensure_builtin().await?;
    let users = access::UserStore::new(db.clone(), roles);
    match command {
        UsersCommand::Create { username, role, display_name, password_stdin, password } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                password
            };
            let created =
                users.create(&username, display_name.as_deref(), role.as_deref(), password.as_deref()).await?;
            println!(
                "user {} created ({}, role {})",
                created.user.username,
                created.user.id,
                created.user.role.as_deref().unwrap_or("none")
            );
            if let Some(initial) = created.initial_password {
                println!("initial password (shown once): {initial}");
            }
            println!("the second factor is set up at the first sign-in (POST /v1/sessions)");
        }
        UsersCommand::Unlock { username } => {
            let user = users.list().await?.into_iter().find(|u| u.username == username.to_ascii_lowercase());
            let user = user.with_context(|| format!("no user {username:?}"))?;
            users.unlock(user.id).await?;
            println!("user {} unlocked", user.username);
        }
    }
    Ok(())
}

async fn security_command(url: &str, key_file: Option<&std::path::Path>, command: SecurityCommand) -> Result<()> {
    let db = connect(url).await?;
    let vault = security::open_vault(&db, key_file).await?;
    match command {
        SecurityCommand::RotateKey => {
            let resumed = vault.pending_rotation().await?.is_some();
            let version = vault.begin_rotation().await?;
            println!(
                "{} the rotation to data key v{version} (master key: {})",
                if resumed { "resuming" } else { "started" },
                vault.provider_description()
            );
            let bar = progress_bar(0, "re-encrypt");
            security::run_rotation(&vault, version, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await?;
            bar.finish_and_clear();
            println!(
                "data key v{version} is current; every sealed field is re-encrypted with it and older data keys are retired"
            );
        }
        SecurityCommand::Status => {
            let status = vault.status().await?;
            println!("master key: {}", status.provider);
            let at = |m: i64| {
                chrono::DateTime::from_timestamp_micros(m).map(|t| t.to_rfc3339()).unwrap_or_else(|| m.to_string())
            };
            for (version, created, retired) in &status.field_keys {
                match retired {
                    Some(r) => println!("data key v{version}: created {}, retired {}", at(*created), at(*r)),
                    None => println!("data key v{version}: created {}, in use", at(*created)),
                }
            }
            println!("blind index key: v1 (never rotated)");
            match status.rotation {
                Some((version, started, done)) => println!(
                    "rotation to v{version} in progress since {}: {done} rows re-encrypted; \
                     digibank security rotate-key resumes it",
                    at(started)
                ),
                None => println!("no rotation in progress"),
            }
        }
    }
    db.close().await;
    Ok(())
}

async fn customers(url: &str, key_file: Option<&std::path::Path>, command: CustomersCommand) -> Result<()> {
    let db = connect(url).await?;
    let vault = security::open_vault(&db, key_file).await?;
    let store = customer_platform::CustomerStore::new(db.clone(), vault);
    match command {
        CustomersCommand::Recompute { full } => {
            let tags = customer_platform::load_registry(&db).await?;
            let mode = if full { customer_platform::Mode::Full } else { customer_platform::Mode::Incremental };
            let bar = progress_bar(0, "recompute");
            let report = customer_platform::recompute(&store, &tags, mode, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await?;
            bar.finish_and_clear();
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        CustomersCommand::TrainChurn { customers, seed } => {
            let as_of = chrono::Utc::now().date_naive();
            let t = customer_platform::churn::train(customers, seed, as_of)?;
            let version = store.put_model("churn", &t.artefact.to_json()?).await?;
            println!(
                "churn model v{version}: {} training / {} held-out customers, churn rate {:.1}%",
                t.train_rows,
                t.test_rows,
                t.churn_rate * 100.0
            );
            println!(
                "held-out AUC {:.3} (rule-based lifecycle baseline {:.3}), KS {:.3}, precision {:.3} / recall {:.3} at {:.2}",
                t.metrics.auc, t.rule_baseline_auc, t.metrics.ks, t.metrics.precision, t.metrics.recall, t.metrics.threshold
            );
            println!("scores update at the next recomputation: digibank customers recompute --full");
        }
    }
    Ok(())
}

async fn lending_eod(
    url: &str,
    key_file: Option<&std::path::Path>,
    date: chrono::NaiveDate,
    limits: lending_platform::EodLimits,
) -> Result<()> {
    let db = connect(url).await?;
    let vault = security::open_vault(&db, key_file).await?;
    let service = lending_platform::LendingService::new(db.clone(), Ledger::new(&db), vault).with_eod_limits(limits);
    let bar = progress_bar(0, "end of day");
    let report = service
        .run_eod(date, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    if report.already_run {
        println!("end of day {date}: already_run (nothing written)");
    } else {
        println!(
            "end of day {date}: {} loans processed ({} failed) in {} ms, {} postings, interest {} fen, penalty {} fen, {} overdue",
            report.loans_processed,
            report.loans_failed,
            report.millis,
            report.postings,
            report.interest_accrued_minor,
            report.penalty_accrued_minor,
            report.overdue_loans
        );
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Loans read from an import file at a time.
const IMPORT_READ_CHUNK: usize = 10_000;

/// Calls `each` with the file's loans, [`IMPORT_READ_CHUNK`] at a time, so a large book never
/// sits in memory whole. Errors name the line.
async fn for_each_import_chunk(
    file: &std::path::Path,
    mut each: impl AsyncFnMut(&[lending_platform::ImportedLoan]) -> Result<()>,
) -> Result<()> {
    use std::io::BufRead;
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?);
    let mut chunk = Vec::with_capacity(IMPORT_READ_CHUNK);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        chunk.push(serde_json::from_str(&line).with_context(|| format!("{} line {}", file.display(), n + 1))?);
        if chunk.len() == IMPORT_READ_CHUNK {
            each(&chunk).await?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        each(&chunk).await?;
    }
    Ok(())
}

async fn lending_import(url: &str, key_file: Option<&std::path::Path>, file: &std::path::Path) -> Result<()> {
    let db = connect(url).await?;
    let vault = security::open_vault(&db, key_file).await?;
    let service = lending_platform::LendingService::new(db.clone(), Ledger::new(&db), vault);
    let mut check = lending_platform::ImportCheck::default();
    let bar = progress_bar(0, "check");
    for_each_import_chunk(file, async |chunk| {
        service.check_import(&mut check, chunk).await?;
        bar.inc(chunk.len() as u64);
        Ok(())
    })
    .await?;
    let total = bar.position();
    bar.finish_and_clear();
    let bar = progress_bar(total, "import");
    let mut report = lending_platform::ImportReport::default();
    for_each_import_chunk(file, async |chunk| {
        // `done` counts from the start of the file: the report accumulates.
        service.import_checked(chunk, &mut report, |done, _| bar.set_position(done)).await?;
        Ok(())
    })
    .await?;
    bar.finish_and_clear();
    println!(
        "imported {} loans ({} already present) in {} ms: {} opening-balance transfers, {} minor units from {}",
        report.imported,
        report.already_present,
        report.millis,
        report.transfers,
        report.opening_balance_minor,
        lending_platform::MIGRATION_CLEARING
    );
    println!("{}", serde_json::to_string(&report)?);
    db.close().await;
    Ok(())
}

async fn connect(url: &str) -> Result<Database> {
    Database::connect(url).await.with_context(|| format!("cannot open database {url}"))
}

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

async fn load_demo(db: &Database, vault: &access::Vault, args: &DemoArgs) -> Result<demo::DemoSummary> {
    let bar = progress_bar(0, "demo bank");
    let config = demo::DemoConfig { customers: args.customers, seed: args.seed, months: args.months };
    let summary = demo::generate(db, vault, &config, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    println!(
        "demo bank: {} customers, {} accounts, {} transfers ({} replayed, {} rejected), {} accounts with open card holds",
        summary.customers,
        summary.accounts,
        summary.transfers_created,
        summary.transfers_replayed,
        summary.transfers_rejected,
        summary.open_holds
    );
    for sample in &summary.sample_accounts {
        println!("  {:<52} {}", sample.label, sample.id);
    }
    if let Some(r) = &summary.recompute {
        println!(
            "customer platform: {} customers registered, tags/segments/churn computed for {} ({} rules) in {} ms{}",
            summary.customers_registered,
            r.customers,
            r.rules,
            r.millis,
            summary.churn_auc.map(|auc| format!("; churn model held-out AUC {auc:.3}")).unwrap_or_default()
        );
    }
    if let Some(l) = summary.lending.as_ref().filter(|l| l.applications == 0) {
        println!("lending: demo loans already loaded ({} ledger transfers now)", l.ledger_transfers);
    } else if let Some(l) = &summary.lending {
        println!(
            "lending: {} applications ({} approved, {} declined, {} in review), {} loans",
            l.applications, l.approved, l.declined, l.review, l.loans
        );
        for (label, id) in &l.samples {
            println!("  {label:<52} {id}");
        }
    }
    Ok(summary)
}

async fn serve(
    url: &str,
    key_file: Option<&std::path::Path>,
    args: ServeArgs,
    rate_limits: server::limits::RateLimitConfig,
) -> Result<()> {
    let db = connect(url).await?;
    let vault = security::open_vault(&db, key_file).await?;
    let ledger = Ledger::new(&db);
    if args.demo {
        let (accounts, _) = ledger.store().counts().await?;
        if accounts == 0 {
            load_demo(&db, &vault, &args.demo_args).await?;
        } else {
            println!("demo bank: database already has {accounts} accounts, not generating");
        }
        risk_cli::ensure_demo_risk(&db).await?;
    }
    let screen_channels =
        risk_platform::RiskConfig::parse_channels(&args.screen_channels).map_err(anyhow::Error::msg)?;
    let risk_config = risk_platform::RiskConfig {
        screen_channels,
        review_hold_secs: args.review_hold_secs,
        decision_log: if args.decision_log == "buffered" {
            risk_platform::DecisionLog::Buffered
        } else {
            risk_platform::DecisionLog::Durable
        },
        refresh_secs: args.risk_refresh_secs,
        graph_history_days: args.risk_graph_history_days,
        max_in_flight: args.risk_max_in_flight,
        ..risk_platform::RiskConfig::default()
    };
    let lending_data_dir = match (args.lending_data_source.as_str(), &args.lending_data_dir) {
        ("files", None) => bail!(
            "lending data source `files` needs a data directory: --lending-data-dir, DIGIBANK_LENDING_DATA_DIR \
             or data_dir in [lending] of the config file"
        ),
        ("files", Some(dir)) if !dir.is_dir() => {
            bail!("lending data directory {} does not exist or is not a directory", dir.display())
        }
        ("files", Some(dir)) => Some(dir.clone()),
        _ => None,
    };
    let alert_settings = args.alerts.settings()?;
    let mut state = server::AppState::load_with(db.clone(), ledger, risk_config, vault.clone())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    // Follow `rotate-key` runs elsewhere; finish one a restart interrupted.
    vault.spawn_refresher(Duration::from_secs(5));
    security::resume_rotation_in_background(&vault).await?;
    state.alerts = access::SecurityAlerts::new(db.clone(), state.ledger.clock(), alert_settings);
    state.lending = state.lending.clone().with_eod_limits(args.eod_limits.into());
    state.users = state.users.clone().with_settings(args.sessions.into());
    let rates = match args.rate_limits.as_str() {
        "off" => server::limits::RateLimits::off(),
        _ => server::limits::RateLimits::new(&server::limits::RateLimitConfig { enabled: true, ..rate_limits })
            .map_err(anyhow::Error::msg)?,
    };
    state.edge = server::limits::Edge { rates, hsts_max_age: args.hsts_max_age };
    state.kpi_refresh = Duration::from_secs(args.kpi_refresh_secs);
    state.webhooks = webhooks::Webhooks::new(db.clone(), vault.clone(), state.ledger.clock(), args.webhooks.settings());
    let approval_settings = access::ApprovalSettings {
        enabled: args.four_eyes == "on",
        expiry: Duration::from_secs(args.approval_expiry_secs),
    };
    state.approvals = access::Approvals::new(db.clone(), state.ledger.clock(), approval_settings);
    if !approval_settings.enabled {
        println!("maker-checker: off (sensitive operations run without a second person's approval)");
    }
    if let Some(dir) = lending_data_dir {
        state.lending = state.lending.clone().with_data_dir(&dir)?;
        println!("lending data: JSON files under {}", dir.display());
    }
    // Embedded lending decides with the lending service as configured above.
    state.openbank = state.openbank.clone().with_lending(state.lending.clone());
    match (&args.public_url, args.addr.port()) {
        (Some(url), _) => state.openbank.set_issuer(url),
        // Port 0: `server::serve` names the address once bound.
        (None, 0) => {}
        (None, _) => {
            let ip = if args.addr.ip().is_unspecified() { "127.0.0.1".parse()? } else { args.addr.ip() };
            state.openbank.set_issuer(&format!("http://{}", SocketAddr::new(ip, args.addr.port())));
        }
    }
    // The one notifier shipped: codes go to a file the sandbox (and its developers) read. A bank
    // plugs its SMS gateway in through `openbank_platform::notify::CodeNotifier`.
    let outbox = args.code_outbox.clone().unwrap_or_else(|| security::data_dir(&db).join("code-outbox.jsonl"));
    state.openbank =
        state.openbank.clone().with_notifier(std::sync::Arc::new(openbank_platform::notify::FileOutbox::new(&outbox)));
    println!("customer one-time codes: {} (the sandbox's phone)", outbox.display());
    if args.demo {
        risk_cli::seed_demo_graph(&state.risk.engine);
        let scope = storage::audit::AuditContext {
            at: ledger::Clock::now_micros(&ledger::SystemClock),
            actor_kind: "system".into(),
            actor: "cli:serve --demo".into(),
            role: None,
            action: "cli serve --demo".into(),
            resource: "sandbox partners".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ip: None,
            purpose: None,
        };
        let data = security::data_dir(&db);
        storage::audit::scope(scope.clone(), openbank_cli::ensure_sandbox_partners(&state.openbank, &data)).await?;
        let alerts = state.kpis.alerts();
        let stored = storage::audit::scope(scope, demo::ensure_alert_rules(&alerts, state.kpis.now()))
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        if stored > 0 {
            println!("demo KPI alerts: {stored} threshold rules (see the cockpit's Alerts page)");
        }
    }
    let admin = state.keys.ensure_admin_key().await?;
    server::serve(state, args.addr, |bound| {
        println!("digibank listening on http://{bound}  (database: {})", db.backend_name());
        println!("operations cockpit: http://{bound}/");
        println!("API explorer: http://{bound}/docs");
        match &admin {
            Some(key) => println!("admin API key (shown once, store it now): {}", key.key),
            None => println!("admin API key: already issued (digibank keys create --role admin makes another)"),
        }
    })
    .await?;
    Ok(())
}

async fn audit_verify(url: &str, json: bool) -> Result<()> {
    let db = connect(url).await?;
    let trail = access::AuditTrail::new(db.clone());
    let sealed = trail.seal_pending().await?;
    let bar = progress_bar(0, "verifying");
    bar.enable_steady_tick(Duration::from_millis(200));
    let report = trail.verify(|n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "sealed {sealed} pending entries; checked {} sealed entries ({} not sealed)",
            report.checked, report.unsealed
        );
        for problem in &report.problems {
            println!("PROBLEM: {}", problem.message);
        }
    }
    if !report.ok() {
        bail!("audit verification failed: {} problem(s)", report.problems.len());
    }
    if !json {
        println!("OK: every audit entry matches its place in the hash chain");
    }
    Ok(())
}

async fn verify(url: &str, json: bool) -> Result<()> {
    let db = connect(url).await?;
    let ledger = Ledger::new(&db);
    let bar = progress_bar(0, "verifying");
    bar.enable_steady_tick(Duration::from_millis(200));
    let report = ledger
        .verify(|done, total| {
            bar.set_length(total.max(0) as u64);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "checked {} journal entries and {} accounts (journal head at seq {})",
            report.entries, report.accounts, report.last_seq
        );
        for problem in &report.problems {
            println!("PROBLEM: {}", serde_json::to_string(problem)?);
        }
    }
    if !report.is_ok() {
        bail!("verification failed: {} problem(s)", report.problems.len());
    }
    println!("OK: hash chain intact, every balance matches the journal, debits equal credits per currency");
    Ok(())
}
