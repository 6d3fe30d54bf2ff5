//! The operations cockpit in a real browser (issue 14, part 5): headless Chromium driven over
//! WebDriver (Debian's `chromium` and `chromium-driver`, installed by `.ci/run`; the protocol is
//! spoken with reqwest, no client library). A key without `kpis_read` is told which permission is
//! missing; an admin signs in with an API key, sees the KPI system with the figures the API
//! gives, switches to English; a member of staff signs in with password and authenticator code
//! (enrolled at the first sign-in); an expired session returns to sign-in and back; screenshots of both languages go to `docs/screenshots/` (with
//! `DIGIBANK_UPDATE_SCREENSHOTS=1`; else to the temp directory).

#![allow(clippy::inconsistent_digit_grouping)] // amounts written as yuan_fen

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session.
struct Browser {
    http: reqwest::Client,
    session: String,
    /// chromedriver's process group, which holds the browser it starts: ended as a whole when
    /// the test ends, passed or failed, so no browser outlives it.
    group: u32,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", "--", &format!("-{}", self.group)]).status();
    }
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Browser {
    async fn start() -> Option<Browser> {
        let driver_bin = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])?;
        let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let driver = std::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?;
        let group = driver.id();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1440,1100", "--lang=zh-CN"]}}}});
        let created: Value =
            http.post(format!("{base}/session")).json(&capabilities).send().await.ok()?.json().await.ok()?;
        let session = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}"));
        Some(Browser { session: format!("{base}/session/{session}"), http, group })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let request = self.http.request(method.parse().unwrap(), url);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let answer: Value = request.send().await.expect("webdriver").json().await.expect("webdriver json");
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// The first element matching `css`, waiting up to 30 s for it.
    async fn wait(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css}))).await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no element {css}: {found}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        let id = self.wait(css).await;
        self.call("GET", &format!("/element/{id}/text"), None).await.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the element's text satisfies `ok`.
    async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if ok(&text) {
                return text;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{css} shows {text:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn attribute(&self, css: &str, name: &str) -> String {
        let id = self.wait(css).await;
        self.call("GET", &format!("/element/{id}/attribute/{name}"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.wait(css).await;
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({}))).await;
        self.call("POST", &format!("/element/{id}/value"), Some(json!({"text": text}))).await;
    }

    async fn click(&self, css: &str) {
        let id = self.wait(css).await;
        self.call("POST", &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    /// Scrolls the first element matching `css` to the top of the window.
    async fn scroll_to(&self, css: &str) {
        self.wait(css).await;
        let script = "document.querySelector(arguments[0]).scrollIntoView(); return true;";
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": [css]}))).await;
    }

    async fn screenshot(&self, path: &Path) {
        let png = self.call("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().expect("png")).expect("base64");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

#[tokio::test]
async fn cockpit_overview_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        // .ci/run installs them (and sets DIGIBANK_REQUIRE_BROWSER); elsewhere the test is skipped.
        assert!(
            std::env::var_os("DIGIBANK_REQUIRE_BROWSER").is_none(),
            "chromium and chromium-driver are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: chromium and chromium-driver are not installed");
        return;
    };
    let db = database_urls().await.remove(0);
    // Sessions end after 8 idle seconds, so the test can see one expire.
    let server = Server::start(&db, &["--kpi-refresh-secs", "1", "--session-idle-secs", "8"]).await;
    let (status, teller) = server.call("POST", "/v1/api-keys", Some(json!({"name": "t", "role": "teller"}))).await;
    assert_eq!(status, 201, "{teller}");
    // Some data, so the figures are not all zero: a deposit funded at the branch, an app payment.
    let cash = open(&server, gl("gl.cash")).await;
    let acct = open(&server, deposit("C-browser")).await;
    for (debit, credit, amount, channel) in [(&cash, &acct, 12_345_67, "branch"), (&acct, &cash, 1_00, "mobile_app")] {
        let mut t = transfer(debit, credit, amount);
        t["metadata"] = json!({"channel": channel});
        assert_eq!(server.call("POST", "/v1/transfers", Some(t)).await.0, 201);
    }
    let started = Instant::now();
    let (_, kpis) = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "KPIs not refreshed");
        let (status, kpis) = server.call("GET", "/v1/kpis", None).await;
        let deposits = kpis["indicators"].as_array().unwrap().iter().find(|k| k["id"] == "deposit_balance").cloned();
        if deposits.is_some_and(|d| d["value"] == "1234467") {
            break (status, kpis);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // Not signed in: the sign-in page, in Chinese.
    browser.go(&server.url("/")).await;
    assert_eq!(browser.text("#signin h1").await, "登录运营驾驶舱");
    // Inline validation: an empty key is refused before anything is sent.
    browser.click("#tab-key").await;
    browser.click("#signin-button").await;
    assert_eq!(browser.text("#key-hint").await, "必填");

    // A teller's key signs in, and the overview says which permission is missing.
    browser.type_into("#key", teller["key"].as_str().unwrap()).await;
    browser.click("#signin-button").await;
    browser.wait_text("#page-error", |t| t.contains("kpis_read")).await;
    browser.click("#signout").await;
    browser.wait("#signin").await;

    // A wrong key is an error in words.
    browser.click("#tab-key").await;
    browser.type_into("#key", "dbk_0000_nope").await;
    browser.click("#signin-button").await;
    browser.wait_text("#signin-error", |t| t.contains("重新登录")).await;

    // The admin signs in and sees the indicators the API gives.
    browser.type_into("#key", server.key()).await;
    browser.click("#signin-button").await;
    let shown = browser.wait_text("[data-kpi=deposit_balance] .value", |t| t.contains("¥")).await;
    assert_eq!(shown, "¥12,344.67");
    let cards = kpis["indicators"].as_array().unwrap();
    for k in cards {
        let css = format!("[data-kpi={}] .value", k["id"].as_str().unwrap());
        assert_eq!(browser.attribute(&css, "data-value").await, k["value"].as_str().unwrap_or_default(), "{css}");
    }
    assert_eq!(browser.text("#category-business h2").await, "经营指标");
    assert_eq!(browser.text("[data-kpi=digital_channel_share] .value").await, "50.00%");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The README's screenshots are retaken with DIGIBANK_UPDATE_SCREENSHOTS=1; other runs keep
    // theirs in the temp directory, so a test run leaves the work tree as it was.
    let shots = match std::env::var_os("DIGIBANK_UPDATE_SCREENSHOTS") {
        Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"),
        None => std::env::temp_dir().join("digibank-screenshots"),
    };
    browser.screenshot(&shots.join("cockpit-overview-zh.png")).await;

    // English.
    browser.click("#switch-lang").await;
    browser.wait_text("#category-business h2", |t| t == "Business").await;
    assert!(browser.text("[data-kpi=loan_balance] .name").await.contains("Loan balance"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.screenshot(&shots.join("cockpit-overview-en.png")).await;

    // A member of staff signs in with password and authenticator code, enrolling the second
    // factor at the first sign-in; the page stays in the language chosen.
    let person =
        json!({"username": "wang.li", "display_name": "王丽", "role": "operator", "password": "cockpit password 1"});
    let (status, user) = server.call("POST", "/v1/users", Some(person)).await;
    assert_eq!(status, 201, "{user}");
    browser.click("#signout").await;
    assert_eq!(browser.text("#signin h1").await, "Sign in to the cockpit");
    browser.type_into("#username", "wang.li").await;
    browser.type_into("#password", "cockpit password 1").await;
    browser.type_into("#totp", "12345").await;
    browser.click("#signin-button").await;
    assert_eq!(browser.text("#totp-hint").await, "Enter the 6-digit code");
    browser.type_into("#totp", "").await;
    browser.click("#signin-button").await;
    let secret = browser.text("#signin-message code").await;
    assert!(!secret.is_empty());
    browser.type_into("#totp", &totp(&secret)).await;
    browser.click("#signin-button").await;
    browser.wait_text(".who", |t| t.contains("王丽")).await;
    browser.wait_text("[data-kpi=deposit_balance] .value", |t| t == "¥12,344.67").await;

    // The session expires: the next page load goes back to sign-in, says why, and returns to
    // the page after signing in again.
    tokio::time::sleep(Duration::from_secs(9)).await;
    browser.go(&server.url("/?again#/overview")).await;
    browser.wait_text("#signin .alert", |t| t.contains("sign in again")).await;
    browser.click("#tab-key").await;
    browser.type_into("#key", server.key()).await;
    browser.click("#signin-button").await;
    browser.wait_text("[data-kpi=deposit_balance] .value", |t| t == "¥12,344.67").await;
    browser.quit().await;
}

/// Polls the API until `ok` holds for the answer of `GET path`, or fails after 60 s.
async fn until(server: &Server, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = server.call("GET", path, None).await;
        if status == 200 && ok(&body) {
            return body;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{path}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every page of the cockpit on the demo bank: Alerts (edit a rule in the browser and see it
/// fire), Risk (resolve a case; a rule that does not type-check is shown at its line:column),
/// Lending (approve the review item), Customers (search, the 360° profile), Ledger (a statement,
/// the balance as of a date), in Chinese and English, each checked against the API; a teller is
/// told which permission a page needs. Screenshots of each page go to `docs/screenshots/` with
/// `DIGIBANK_UPDATE_SCREENSHOTS=1`.
#[tokio::test]
async fn cockpit_pages_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        assert!(
            std::env::var_os("DIGIBANK_REQUIRE_BROWSER").is_none(),
            "chromium and chromium-driver are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: chromium and chromium-driver are not installed");
        return;
    };
    let db = database_urls().await.remove(0);
    let server = Server::start(&db, &["--demo", "--customers", "60", "--months", "3", "--kpi-refresh-secs", "1"]).await;
    let shots = match std::env::var_os("DIGIBANK_UPDATE_SCREENSHOTS") {
        Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"),
        None => std::env::temp_dir().join("digibank-screenshots"),
    };
    // A risk case to resolve: the demo's rule set plus a rule that sends big transfers to review.
    let (_, active) = server.call("GET", "/v1/risk/rule-sets/1", None).await;
    let mut rules = active["rule_set"]["rules"].as_array().unwrap().clone();
    rules.push(json!({"id": "big_transfer_review", "condition": {"type": "expression",
        "source": "event_kind == \"transfer\" and event_amount >= 10000"}, "action": "review",
        "reason_code": "BIG_TRANSFER", "explanation": "大额转账人工复核"}));
    let (status, v2) = server.call("POST", "/v1/risk/rule-sets", Some(json!({"name": "fraud", "rules": rules}))).await;
    assert_eq!(status, 201, "{v2}");
    let version = v2["rule_set"]["version"].as_u64().unwrap();
    assert_eq!(server.call("POST", &format!("/v1/risk/rule-sets/{version}/activate"), None).await.0, 200);
    let event = json!({"event_id": "browser-big-1", "kind": "transfer", "occurred_at": "2026-11-20T10:00:00Z",
        "customer_id": "C-browser-1", "channel": "mobile", "amount": {"minor": 3_000_000, "currency": "CNY"},
        "account_id": "A1", "counterparty_account": "A2", "device_fingerprint": "dev-browser", "ip": "10.1.2.3"});
    let (status, decision) = server.call("POST", "/v1/risk/decisions", Some(event)).await;
    assert_eq!((status, decision["outcome"].as_str()), (200, Some("review")), "{decision}");
    let case = decision["case_id"].as_u64().unwrap();

    // The admin signs in; the overview shows the demo's firing alerts as badges.
    browser.go(&server.url("/#/alerts")).await;
    browser.click("#tab-key").await;
    browser.type_into("#key", server.key()).await;
    browser.click("#signin-button").await;

    // Alerts: the demo's rules, at least one firing, as the API says.
    let rules = until(&server, "/v1/kpi-alerts/rules", |r| {
        r["rules"].as_array().unwrap().iter().any(|r| r["state"] == "firing")
    })
    .await;
    let rules = rules["rules"].as_array().unwrap();
    assert!(rules.len() >= 5, "{rules:?}");
    let firing = rules.iter().find(|r| r["state"] == "firing").unwrap();
    let css = format!("[data-rule='{}'] .state", firing["id"].as_str().unwrap());
    browser.wait_text(&css, |t| t.contains("告警中")).await;
    browser.wait("#alert-events tbody tr").await;
    // Edit a rule that is normal so that it holds at once: it fires, in the page and in the API.
    let quiet = rules.iter().find(|r| r["kpi"] == "fraud_reject_rate").expect("the demo's fraud reject rule");
    let quiet_id = quiet["id"].as_str().unwrap();
    browser.click(&format!("[data-rule='{quiet_id}'] .edit")).await;
    browser.wait("#rule-form").await;
    browser.type_into("#rule-threshold", "abc").await;
    browser.wait_text("#rule-threshold-preview", |t| t.contains("请输入数字")).await;
    browser.click("#rule-save").await;
    browser.wait_text("#rule-error", |t| t.contains("阈值必须是数字")).await;
    browser.type_into("#rule-threshold", "-1").await;
    browser.type_into("#rule-for", "0").await;
    browser.click("#rule-save").await;
    let fired = until(&server, &format!("/v1/kpi-alerts/rules/{quiet_id}"), |r| r["state"] == "firing").await;
    assert_eq!((fired["threshold"].as_str(), fired["for_secs"].as_i64()), (Some("-1"), Some(0)), "{fired}");
    browser.wait_text(&format!("[data-rule='{quiet_id}'] .state"), |t| t.contains("告警中")).await;
    let (_, events) = server.call("GET", &format!("/v1/kpi-alerts/events?rule={quiet_id}"), None).await;
    assert_eq!(events["events"][0]["to"], "firing", "{events}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.screenshot(&shots.join("cockpit-alerts-zh.png")).await;

    // Overview: the firing indicators carry a badge.
    browser.click("#menu-overview").await;
    browser.wait_text("[data-kpi=npl_ratio] .badge", |t| t.contains("告警中")).await;

    // Risk: the case is resolved in the page and is resolved in the API.
    browser.click("#menu-risk").await;
    let row = format!("[data-case='{case}']");
    browser.type_into(&format!("{row} .case-note"), "客户来电确认").await;
    browser.click(&format!("{row} .false-positive")).await;
    browser.wait_text("#risk-ok", |t| t.contains(&case.to_string())).await;
    let resolved = until(&server, "/v1/risk/cases?status=resolved", |c| {
        c["cases"].as_array().unwrap().iter().any(|c| c["id"] == case)
    })
    .await;
    let resolved = resolved["cases"].as_array().unwrap().iter().find(|c| c["id"] == case).unwrap().clone();
    assert_eq!(
        (resolved["resolution"].as_str(), resolved["note"].as_str()),
        (Some("false_positive"), Some("客户来电确认"))
    );
    browser.wait("#ring-graph canvas").await;
    browser.wait("#outcome-chart canvas").await;
    // The rule editor: an expression that does not type-check is refused at its line:column.
    browser.wait("#rule-set-source").await;
    let broken = r#"{"rules": [{"id": "broken", "condition": {"type": "expression", "source": "event_amount >= \"big\""}, "action": "reject", "reason_code": "X", "explanation": "x"}]}"#;
    browser.type_into("#rule-set-source", broken).await;
    browser.click("#rule-set-save").await;
    browser.wait_text("#rule-error-at", |t| t.contains("第 1 行")).await;
    let (_, sets) = server.call("GET", "/v1/risk/rule-sets", None).await;
    assert_eq!(sets["rule_sets"].as_array().unwrap().len() as u64, version, "nothing stored: {sets}");
    browser.scroll_to(".breadcrumb").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    browser.screenshot(&shots.join("cockpit-risk-zh.png")).await;

    // Lending: the demo's review item is approved in the page, and approved in the API.
    let (_, queue) = server.call("GET", "/v1/lending/review-queue", None).await;
    let item = queue["items"][0]["decision_id"].as_str().expect("a review item in the demo").to_string();
    browser.click("#menu-lending").await;
    let row = format!("[data-review='{item}']");
    browser.click(&format!("{row} .approve")).await;
    browser.wait_text(".action-error", |t| t.contains("审核意见")).await;
    browser.type_into(&format!("{row} .review-note"), "收入证明已核实,同意").await;
    browser.click(&format!("{row} .approve")).await;
    browser.wait("#lending-ok").await;
    let (_, application) = server.call("GET", &format!("/v1/lending/applications/{item}"), None).await;
    assert_eq!(application["outcome"], "approve", "{application}");
    let (_, funnel) = server.call("GET", "/v1/lending/funnel", None).await;
    let applied = funnel["applied"].to_string();
    browser.wait_text("[data-stage=applied] .number", |t| t == applied).await;
    browser.wait("#portfolio-chart canvas").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    browser.screenshot(&shots.join("cockpit-lending-zh.png")).await;

    // Customers: a search by tag, the 360° profile with its tags and why.
    browser.click("#menu-customers").await;
    browser.click("#search-button").await;
    browser.click("#customer-list .open-profile").await;
    browser.wait("#profile-360 #profile-tags tbody tr").await;
    browser.wait("#churn-risk tbody tr").await;
    browser.scroll_to("#profile-360").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    browser.screenshot(&shots.join("cockpit-customers-zh.png")).await;

    // Ledger: an account's balance and statement as the API gives them, the balance as of today.
    browser.click("#menu-ledger").await;
    browser.click("#account-list .open-account").await;
    let account = browser.text("#account-panel h2").await;
    let account_id = account.rsplit(' ').next().unwrap().to_string();
    let (_, balance) = server.call("GET", &format!("/v1/accounts/{account_id}/balance"), None).await;
    assert_eq!(browser.attribute("#posted-balance", "data-posted").await, balance["posted"].to_string());
    browser.click("#as-of-show").await;
    assert_eq!(browser.attribute("#as-of-value", "data-posted").await, balance["posted"].to_string());
    browser.wait("#statement tbody tr").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.screenshot(&shots.join("cockpit-ledger-zh.png")).await;

    // English, on every page.
    browser.click("#switch-lang").await;
    browser.wait_text(".breadcrumb", |t| t.contains("Ledger")).await;
    for (menu, heading) in [
        ("alerts", "Alert rules"),
        ("risk", "Open cases"),
        ("lending", "Application funnel"),
        ("customers", "Segment sizes"),
    ] {
        browser.click(&format!("#menu-{menu}")).await;
        browser.wait_text(".content h2", |t| t.starts_with(heading)).await;
    }
    browser.click("#menu-alerts").await;
    browser.wait_text(&format!("[data-rule='{quiet_id}'] .state"), |t| t.contains("Firing")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.screenshot(&shots.join("cockpit-alerts-en.png")).await;

    // A teller may not see the risk page: the page says which permission is missing.
    let (status, teller) = server.call("POST", "/v1/api-keys", Some(json!({"name": "t", "role": "teller"}))).await;
    assert_eq!(status, 201, "{teller}");
    browser.click("#signout").await;
    browser.click("#tab-key").await;
    browser.type_into("#key", teller["key"].as_str().unwrap()).await;
    browser.click("#signin-button").await;
    // Back on the page it signed out from (alerts), which needs kpis_read; then the risk page.
    browser.wait_text("#page-error", |t| t.contains("kpis_read")).await;
    browser.click("#menu-risk").await;
    browser.wait_text("#page-error", |t| t.contains("risk_read")).await;
    browser.quit().await;
}

/// The authenticator app's current code for a base32 secret.
fn totp(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string()).to_bytes().expect("base32 secret");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .generate(chrono::Utc::now().timestamp() as u64)
}

/// `/` is the cockpit: a page whose scripts and styles are this server's own files, embedded in
/// the binary, under a policy that lets the browser talk to this server only.
#[tokio::test]
async fn cockpit_is_served_from_the_binary() {
    let db = database_urls().await.remove(0);
    let server = Server::start(&db, &[]).await;
    let response = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains("<html lang=\"zh-CN\">"), "{page}");
    let links: Vec<&str> = page
        .split("src=\"")
        .skip(1)
        .chain(page.split("href=\"").skip(1))
        .map(|piece| &piece[..piece.find('"').unwrap()])
        .collect();
    // The styles, ECharts, the app's core and one script per page group.
    assert!(links.len() >= 4 && links.iter().any(|l| l.contains("alerts.js")), "{links:?}");
    for link in links {
        assert!(link.starts_with("/cockpit/assets/") && link.contains("?v="), "{link}");
        let asset = server.http.get(server.url(link)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{link}");
        let kind = asset.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("application/javascript") || kind.starts_with("text/css"), "{link}: {kind}");
        let body = asset.text().await.unwrap();
        if !link.contains("echarts") {
            assert!(!body.contains("http://") && !body.contains("https://"), "{link} names another host");
        }
    }
    let (status, e) = server.call("GET", "/cockpit/assets/nope.js", None).await;
    assert_error(status, &e, 404, "not_found");
}
