//! Runs the real `digibank` binary against a real database for end-to-end tests.
#![allow(dead_code)]

use serde_json::Value;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_digibank");

pub use harness::database_urls;

pub mod openbank;

pub struct Server {
    pub base: String,
    pub key: Option<String>,
    pub child: Child,
    pub http: reqwest::Client,
    /// The server's output lines, when started with [`Server::start_logged`].
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `digibank serve` on a free port and waits until it prints its address and key.
    pub async fn start(database_url: &str, extra: &[&str]) -> Server {
        let process = harness::ServerProcess::start(std::path::Path::new(BIN), database_url, extra, "warn")
            .await
            .expect("start digibank");
        Server::from(process)
    }

    /// Starts `digibank serve` with `RUST_LOG=log`, keeping its output (log and stdout) in
    /// [`Server::output`].
    pub async fn start_logged(database_url: &str, extra: &[&str], log: &str) -> Server {
        let process = harness::ServerProcess::start_capturing(std::path::Path::new(BIN), database_url, extra, log)
            .await
            .expect("start digibank");
        Server::from(process)
    }

    fn from(process: harness::ServerProcess) -> Server {
        Server {
            base: process.base,
            key: process.key,
            child: process.child,
            http: reqwest::Client::new(),
            output: process.output,
        }
    }

    /// Every line the server wrote so far (empty unless started with [`Server::start_logged`]).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().expect("output").clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn key(&self) -> &str {
        self.key.as_deref().expect("admin key")
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(self.key.as_deref(), method, path, body).await
    }

    pub async fn call_as(&self, key: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method.parse().expect("method"), self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill");
    }
}

pub fn deposit(owner: &str) -> Value {
    serde_json::json!({
        "currency": "CNY", "kind": "liability", "owner_type": "customer", "owner_id": owner,
        "code": "deposit.current", "debits_must_not_exceed_credits": true
    })
}

pub fn gl(code: &str) -> Value {
    serde_json::json!({"currency": "CNY", "kind": "asset", "owner_type": "bank", "code": code})
}

pub fn transfer(debit: &str, credit: &str, amount: i64) -> Value {
    serde_json::json!({
        "id": uuid::Uuid::now_v7(), "debit_account_id": debit, "credit_account_id": credit,
        "amount": amount, "currency": "CNY"
    })
}

pub async fn open(server: &Server, body: Value) -> String {
    let (status, account) = server.call("POST", "/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{account}");
    account["id"].as_str().expect("id").to_string()
}

pub async fn posted_balance(server: &Server, account: &str) -> i64 {
    let (status, b) = server.call("GET", &format!("/v1/accounts/{account}/balance"), None).await;
    assert_eq!(status, 200, "{b}");
    b["posted"].as_i64().expect("posted")
}

/// Runs `digibank verify` and returns (success, stdout).
pub async fn verify(database_url: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["verify", "--database-url", database_url])
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("run verify");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

/// The `digibank_ledger_journal_entries` gauge from /metrics.
pub async fn journal_entries(server: &Server) -> i64 {
    let (status, metrics) = server.call("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    metrics
        .as_str()
        .expect("metrics text")
        .lines()
        .find_map(|l| l.strip_prefix("digibank_ledger_journal_entries "))
        .expect("journal gauge")
        .parse()
        .expect("integer gauge")
}

/// A customer deposit account funded with `amount` from `cash` (none when 0).
pub async fn funded_deposit(server: &Server, owner: &str, cash: &str, amount: i64) -> String {
    let acct = open(server, deposit(owner)).await;
    if amount > 0 {
        let (status, t) = server.call("POST", "/v1/transfers", Some(transfer(cash, &acct, amount))).await;
        assert_eq!(status, 201, "{t}");
    }
    acct
}

/// `GET /v1/lending/loans/{id}`, which must succeed.
pub async fn loan(server: &Server, id: &str) -> serde_json::Value {
    let (status, view) = server.call("GET", &format!("/v1/lending/loans/{id}"), None).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Loan balances equal the loan's ledger accounts to the fen (written-off loans: all zero).
pub fn assert_reconciled(view: &serde_json::Value) {
    let l = &view["loan"];
    let overdue_interest: i64 = l["dues"].as_array().unwrap().iter().map(|d| d["interest"].as_i64().unwrap()).sum();
    assert_eq!(view["ledger"]["principal"], l["principal"], "{view}");
    assert_eq!(
        view["ledger"]["interest_receivable"].as_i64().unwrap(),
        l["accrued_interest"].as_i64().unwrap() + overdue_interest
    );
    assert_eq!(view["ledger"]["penalty_receivable"], l["penalty"]);
    assert_eq!(view["ledger"]["fee_receivable"], l["fees"]);
    assert_eq!(view["reconciled"], true, "{view}");
}

/// The response is `want_status` with error code `code`.
pub fn assert_error(status: u16, body: &serde_json::Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}
