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
    assert_eq!(links.len(), 3, "{links:?}");
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
