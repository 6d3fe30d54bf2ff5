//! # harness
//!
//! What the end-to-end tests and the HTTP benchmarks share, kept in one place:
//!
//! * [`ServerProcess::start`]: runs `digibank serve` on a free port as a child process and reads
//!   the address it listens on and, on first start, the admin API key it prints once;
//! * [`database_urls`]: a fresh SQLite file always, plus a fresh PostgreSQL schema when
//!   `DATABASE_URL` points at a server, so every end-to-end test runs on both backends;
//! * [`storage::testing`] (re-exported as [`db`]) for in-process tests of a platform crate.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use storage::testing as db;

/// The line `digibank serve` prints once it listens.
pub const LISTENING: &str = "digibank listening on ";
/// The line that carries the admin key on a database's first start.
pub const ADMIN_KEY: &str = "admin API key (shown once, store it now): ";
/// The line printed instead when an admin key exists already.
pub const ADMIN_KEY_EXISTS: &str = "admin API key: already issued";

/// A running `digibank serve` child process (killed when dropped).
pub struct ServerProcess {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The admin key, when this start issued it.
    pub key: Option<String>,
    pub child: Child,
    /// Everything the child wrote to stdout and stderr, line by line, when started with
    /// [`ServerProcess::start_capturing`] (empty otherwise).
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `exe serve --addr 127.0.0.1:0 --database-url <url> <extra...>` with `RUST_LOG=log`
    /// and `DIGIBANK_FOUR_EYES=off` (pass `--four-eyes on` to test maker-checker), and waits
    /// (at most two minutes) until it prints its address and admin-key line. The rest
    /// of its output keeps being drained so the child never blocks on a full pipe.
    pub async fn start(exe: &Path, database_url: &str, extra: &[&str], log: &str) -> std::io::Result<ServerProcess> {
        Self::spawn(exe, database_url, extra, log, false).await
    }

    /// [`ServerProcess::start`], keeping every line the server writes (its log on stderr, its
    /// announcements on stdout) in [`ServerProcess::output`]: for tests that read the log.
    pub async fn start_capturing(
        exe: &Path,
        database_url: &str,
        extra: &[&str],
        log: &str,
    ) -> std::io::Result<ServerProcess> {
        Self::spawn(exe, database_url, extra, log, true).await
    }

    async fn spawn(exe: &Path, database_url: &str, extra: &[&str], log: &str, capture: bool) -> std::io::Result<Self> {
        let mut child = Command::new(exe)
            .args(["serve", "--addr", "127.0.0.1:0", "--database-url", database_url])
            .args(extra)
            .env("RUST_LOG", log)
            // Maker-checker off unless a test turns it on (`--four-eyes on` beats the variable):
            // the scenarios of other features run their sensitive steps without a checker.
            .env("DIGIBANK_FOUR_EYES", "off")
            .stdout(Stdio::piped())
            .stderr(if capture { Stdio::piped() } else { Stdio::inherit() })
            .kill_on_drop(true)
            .spawn()?;
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().expect("output").push(line);
                }
            });
        }
        let keep = |line: &str| {
            if capture {
                output.lock().expect("output").push(line.to_string());
            }
        };
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut base, mut key) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, lines.next_line()).await {
            keep(&line);
            if let Some(rest) = line.strip_prefix(LISTENING) {
                base = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix(ADMIN_KEY) {
                key = Some(rest.trim().to_string());
                break;
            }
            if line.starts_with(ADMIN_KEY_EXISTS) {
                break;
            }
        }
        let kept = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if capture {
                    kept.lock().expect("output").push(line);
                }
            }
        });
        let base = base.ok_or_else(|| {
            std::io::Error::other("the server exited or never printed its address (its stderr is above)")
        })?;
        Ok(ServerProcess { base, key, child, output })
    }
}

/// Database URLs to run an end-to-end test against: a fresh SQLite file always, and a fresh
/// PostgreSQL schema when `DATABASE_URL` points at a server.
pub async fn database_urls() -> Vec<String> {
    remove_stale_test_dirs();
    let dir = std::env::temp_dir().join(format!("digibank-e2e-{}", uuid::Uuid::now_v7().simple()));
    let mut urls = vec![format!("sqlite://{}/bank.db", dir.display())];
    if let Some(base) = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) {
        let schema = format!("e2e_{}", uuid::Uuid::now_v7().simple());
        urls.push(storage::postgres_url_with_schema(&base, &schema).await.expect("schema"));
    }
    urls
}

/// Test directories (`digibank-*` under the temp directory) older than this are removed when a
/// test starts: the last runs stay for inspection, and repeated runs do not fill the disk.
const TEST_DIR_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3 * 3600);

fn remove_stale_test_dirs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let is_ours =
                name.to_str().is_some_and(|n| n.starts_with("digibank-e2e-") || n.starts_with("digibank-limits-"));
            let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if is_ours && age.is_some_and(|a| a > TEST_DIR_LIFETIME) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// A fresh, empty directory under the system temp directory (kept for inspection on failure;
/// removed by a later run once older than [`TEST_DIR_LIFETIME`]).
pub fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::now_v7().simple()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A CNY account for in-process tests: a customer account (owner `c1`) or a bank account of
/// `kind`; `limited` = debits must not exceed credits (a deposit that cannot go negative).
pub fn test_account(kind: ledger::AccountKind, owner: ledger::OwnerType, limited: bool) -> ledger::NewAccount {
    ledger::NewAccount {
        id: Some(ledger::AccountId(uuid::Uuid::now_v7())),
        currency: money::Currency::CNY,
        kind,
        owner_type: owner,
        owner_id: (owner == ledger::OwnerType::Customer).then(|| "c1".to_string()),
        code: None,
        name: None,
        debits_must_not_exceed_credits: limited,
        credits_must_not_exceed_debits: false,
        overdraft_limit: 0,
    }
}
