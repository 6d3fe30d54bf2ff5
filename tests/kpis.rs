//! The KPI system (issue 14, part 3), end to end against the real binary on SQLite and
//! PostgreSQL: data made through the API (customers, app identities, deposits and channel
//! transactions, risk decisions and a confirmed-fraud case, loan applications, a review, a loan,
//! an end of day, a treasury VaR) shows in `GET /v1/kpis` as the figures it implies, in the
//! Prometheus gauges, and in the series after a restart.

#![allow(clippy::inconsistent_digit_grouping)] // amounts written as yuan_fen

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A valid resident ID number (checksum computed).
fn resident_id(i: u32) -> String {
    let body = format!("110105198807{:02}{:03}", 1 + i % 28, 100 + i % 900);
    let body = &body[..17];
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// Issues a key with `role`.
async fn key(server: &Server, role: &str) -> String {
    let (status, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": role, "role": role}))).await;
    assert_eq!(status, 201, "{issued}");
    issued["key"].as_str().unwrap().to_string()
}

fn indicator<'a>(kpis: &'a Value, id: &str) -> &'a Value {
    kpis["indicators"].as_array().unwrap().iter().find(|k| k["id"] == id).unwrap_or_else(|| panic!("no {id}"))
}

/// The current value of `id` as text ("" when null).
fn value(kpis: &Value, id: &str) -> String {
    indicator(kpis, id)["value"].as_str().unwrap_or_default().to_string()
}

/// Polls `GET /v1/kpis` as `reader` until every `(id, value)` of `want` is shown ("" = null),
/// or fails after 60 s naming what differs.
async fn wait_for(server: &Server, reader: &str, want: &[(&str, String)]) -> Value {
    let started = Instant::now();
    loop {
        let (status, kpis) = server.call_as(Some(reader), "GET", "/v1/kpis", None).await;
        assert_eq!(status, 200, "{kpis}");
        let differs: Vec<String> = want
            .iter()
            .filter(|(id, v)| value(&kpis, id) != *v)
            .map(|(id, v)| format!("{id}: want {v:?}, shown {:?}", value(&kpis, id)))
            .collect();
        if differs.is_empty() {
            return kpis;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "KPIs not as expected within 60 s: {differs:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn ratio(n: i64, d: i64) -> String {
    // Six places, half up, trailing zeros dropped: as the API writes it.
    let scaled = (n as i128 * 1_000_000 * 2 + d as i128) / (2 * d as i128);
    let text = format!("{}.{:06}", scaled / 1_000_000, scaled % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[test]
fn ratio_text() {
    assert_eq!(ratio(2, 3), "0.666667");
    assert_eq!(ratio(1, 4), "0.25");
    assert_eq!(ratio(4, 4), "1");
    assert_eq!(ratio(0, 4), "0");
}

#[tokio::test]
async fn kpis_follow_the_data_made_through_the_api() {
    for url in database_urls().await {
        let server = Server::start(&url, &["--kpi-refresh-secs", "1"]).await;
        let admin = server.key().to_string();
        let auditor = key(&server, "auditor").await;
        let operator = key(&server, "operator").await;
        let teller = key(&server, "teller").await;

        // Who may read them: admin, operator, auditor; not a teller.
        let (status, e) = server.call_as(Some(&teller), "GET", "/v1/kpis", None).await;
        assert_error(status, &e, 403, "forbidden");
        assert_eq!(server.call_as(Some(&operator), "GET", "/v1/kpis", None).await.0, 200);
        let (status, e) = server.call("GET", "/v1/kpis?hours=0", None).await;
        assert_error(status, &e, 422, "parameter_out_of_range");

        // An empty bank: counts are 0, ratios without a denominator have no value.
        let kpis = wait_for(
            &server,
            &auditor,
            &[
                ("new_customers_30d", "0".into()),
                ("deposit_balance", "0".into()),
                ("digital_adoption", "".into()),
                ("npl_ratio", "".into()),
                ("eod_duration", "".into()),
                ("treasury_var_99", "".into()),
            ],
        )
        .await;
        assert!(kpis["indicators"].as_array().unwrap().len() >= 20);
        let loan_balance = indicator(&kpis, "loan_balance");
        assert_eq!(loan_balance["category"], "business");
        assert_eq!(loan_balance["unit"], "cny_minor");
        assert_eq!(loan_balance["direction"], "higher_is_better");
        assert_eq!(loan_balance["name_zh"], "贷款余额");
        assert!(loan_balance["formula"].as_str().unwrap().contains("loan.principal"));
        assert_eq!(indicator(&kpis, "npl_ratio")["direction"], "lower_is_better");
        for category in ["business", "customer", "operations", "risk"] {
            let n = kpis["indicators"].as_array().unwrap().iter().filter(|k| k["category"] == category).count();
            assert!(n >= 5, "{category}: {n}");
        }

        // Three customers, two of them on the mobile app.
        let mut customers = Vec::new();
        for i in 0..3 {
            let person = json!({"kind": "individual", "name": format!("客户{i}"), "id_number": resident_id(i),
                "phone": format!("1391234{i:04}")});
            let (status, c) = server.call("POST", "/v1/customers", Some(person)).await;
            assert_eq!(status, 201, "{c}");
            customers.push(c["id"].as_str().unwrap().to_string());
        }
        for c in &customers[..2] {
            let link = json!({"channel": "mobile_app", "external_id": format!("app-{c}")});
            let (status, r) = server.call("POST", &format!("/v1/customers/{c}/identities"), Some(link)).await;
            assert!(status == 200 || status == 201, "{status} {r}");
        }

        // Each customer gets a deposit funded at the branch; the first pays twice in the app.
        let cash = open(&server, gl("gl.cash")).await;
        let mut deposits = Vec::new();
        for (i, c) in customers.iter().enumerate() {
            let acct = open(&server, deposit(c)).await;
            let mut t = transfer(&cash, &acct, 1_000_00 * (i as i64 + 1));
            t["metadata"] = json!({"channel": "branch"});
            let (status, r) = server.call("POST", "/v1/transfers", Some(t)).await;
            assert_eq!(status, 201, "{r}");
            deposits.push(acct);
        }
        for amount in [120_00, 35_50] {
            let mut t = transfer(&deposits[0], &cash, amount);
            t["metadata"] = json!({"channel": "mobile_app", "merchant_category": "grocery"});
            let (status, r) = server.call("POST", "/v1/transfers", Some(t)).await;
            assert_eq!(status, 201, "{r}");
        }
        let deposit_total = 1_000_00 + 2_000_00 + 3_000_00 - 120_00 - 35_50;
        wait_for(
            &server,
            &auditor,
            &[
                ("new_customers_30d", "3".into()),
                ("digital_adoption", ratio(2, 3)),
                ("deposit_balance", deposit_total.to_string()),
                ("digital_channel_share", ratio(2, 5)),
                ("active_customers_30d", "1".into()),
                ("products_per_customer", "1".into()),
                ("loan_balance", "0".into()),
            ],
        )
        .await;

        // Risk: one allowed event, one rejected (black-listed device), one reviewed (watched
        // device) whose case is confirmed as fraud.
        for entry in [
            json!({"kind": "black", "subject": "device", "value": "dev-black", "reason": "chargebacks"}),
            json!({"kind": "watch", "subject": "device", "value": "dev-watch", "reason": "ring"}),
        ] {
            assert_eq!(server.call("POST", "/v1/risk/lists", Some(entry)).await.0, 201);
        }
        let mut case = None;
        for (i, (device, minor)) in
            [("dev-ok", 500_00), ("dev-black", 800_00), ("dev-watch", 4_321_99)].iter().enumerate()
        {
            let event = json!({"event_id": format!("kpi-ev-{i}"), "kind": "transfer", "occurred_at": chrono::Utc::now().to_rfc3339(),
                "customer_id": customers[0], "channel": "mobile", "amount": {"minor": minor, "currency": "CNY"},
                "account_id": deposits[0], "counterparty_account": "EXT-1", "device_fingerprint": device, "ip": "10.1.2.3"});
            let (status, d) = server.call("POST", "/v1/risk/decisions", Some(event)).await;
            assert_eq!(status, 200, "{d}");
            if *device == "dev-watch" {
                assert_eq!(d["outcome"], "review", "{d}");
                case = d["case_id"].as_u64();
            }
        }
        let case = case.expect("a review case");
        let resolve = json!({"resolution": "confirmed_fraud", "note": "ring member"});
        let (status, r) = server.call("POST", &format!("/v1/risk/cases/{case}/resolve"), Some(resolve)).await;
        assert_eq!(status, 200, "{r}");
        wait_for(
            &server,
            &auditor,
            &[("fraud_reject_rate", ratio(1, 3)), ("confirmed_fraud_amount_30d", "432199".into())],
        )
        .await;

        // Lending: applications until one is approved; reviews wait in the queue, one of them
        // is approved by hand.
        let mut approved = None;
        let (mut applied, mut reviews) = (0, Vec::new());
        for i in 0..60 {
            let body = json!({"applicant_id": format!("KPI-APP-{i}"), "product_code": "instant_consumer"});
            let (status, d) = server.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!(status, 201, "{d}");
            applied += 1;
            match d["outcome"].as_str().unwrap() {
                "approve" => approved = Some(d),
                "review" => reviews.push(d["id"].as_str().unwrap().to_string()),
                _ => {}
            }
            if approved.is_some() && !reviews.is_empty() {
                break;
            }
        }
        let approved = approved.expect("an approved application among 60");
        let app_id = approved["id"].as_str().unwrap();
        let (status, offer) = server.call("POST", &format!("/v1/lending/applications/{app_id}/offer"), None).await;
        assert_eq!(status, 201, "{offer}");
        let amount = offer["limit"]["minor"].as_i64().unwrap().min(20_000_00);
        let accept = json!({"amount": amount, "term_months": offer["terms_months"][0], "method": "equal_installment",
            "deposit_account_id": deposits[1]});
        let (status, out) = server
            .call("POST", &format!("/v1/lending/offers/{}/accept", offer["id"].as_str().unwrap()), Some(accept))
            .await;
        assert_eq!(status, 201, "{out}");
        let fee = out["contract"]["upfront_fee"]["minor"].as_i64().unwrap();
        let mut want = vec![
            ("loan_balance", amount.to_string()),
            ("deposit_balance", (deposit_total + amount - fee).to_string()),
            ("products_per_customer", ratio(4, 3)),
            ("npl_ratio", "0".into()),
            ("overdue_ratio", "0".into()),
            ("straight_through_share", ratio(applied - reviews.len() as i64, applied)),
        ];
        if reviews.is_empty() {
            want.push(("review_backlog", "0".into()));
        } else {
            // One review decided by hand: the backlog is the others.
            let (status, r) = server
                .call(
                    "POST",
                    &format!("/v1/lending/review-queue/{}/approve", reviews[0]),
                    Some(json!({"note": "income verified by phone"})),
                )
                .await;
            assert_eq!(status, 200, "{r}");
            want.push(("review_backlog", (reviews.len() - 1).to_string()));
        }
        let kpis = wait_for(&server, &auditor, &want).await;
        let p50: f64 = value(&kpis, "decision_time_p50").parse().expect("a median decision time");
        let p95: f64 = value(&kpis, "decision_time_p95").parse().expect("a p95 decision time");
        assert!(p50 > 0.0 && p50 <= p95, "p50 {p50} p95 {p95}");

        // End of day: its duration is recorded.
        let today = chrono::Utc::now().date_naive();
        let (status, r) = server.call("POST", "/v1/lending/eod", Some(json!({"date": today.to_string()}))).await;
        assert_eq!(status, 200, "{r}");
        let started = Instant::now();
        let kpis = loop {
            let (_, kpis) = server.call_as(Some(&auditor), "GET", "/v1/kpis", None).await;
            if !value(&kpis, "eod_duration").is_empty() {
                break kpis;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no end-of-day duration");
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let eod: f64 = value(&kpis, "eod_duration").parse().unwrap();
        assert!(eod > 0.0 && eod < 600.0, "{eod}");

        // The treasury's 99% VaR, recorded by a risk officer.
        let var = json!({"record": true, "portfolio": {"currency": "CNY", "positions": [{"instrument": "CGB10Y", "quantity": 1000.0}]},
            "history": {"instruments": ["CGB10Y"], "prices": [[100.0], [101.0], [99.5], [100.2], [98.9], [99.9], [100.4],
            [99.1], [100.8], [100.1], [99.7], [100.9]]}});
        let (status, r) = server.call("POST", "/v1/risk/market/var", Some(var)).await;
        assert_eq!(status, 200, "{r}");
        let recorded = r["historical"]["value_at_risk"]["minor"].as_i64().unwrap();
        assert!(recorded > 0, "{r}");
        // The API's error rate: every response so far succeeded or was the caller's error.
        let kpis =
            wait_for(&server, &auditor, &[("treasury_var_99", recorded.to_string()), ("api_error_rate", "0".into())])
                .await;

        // The same figures as Prometheus gauges.
        let (status, metrics) = server.call("GET", "/metrics", None).await;
        assert_eq!(status, 200);
        let metrics = metrics.as_str().unwrap();
        let gauge = |id: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with("digibank_kpi{") && l.contains(&format!("kpi=\"{id}\"")))
                .and_then(|l| l.rsplit(' ').next())
                .map(|v| v.parse::<f64>().unwrap())
        };
        assert_eq!(gauge("new_customers_30d"), Some(3.0), "{metrics}");
        assert_eq!(gauge("loan_balance"), Some(amount as f64));
        assert_eq!(gauge("digital_adoption"), Some(0.666667));

        // The series: a point this hour and today, and they survive a restart.
        let hourly = indicator(&kpis, "new_customers_30d")["hourly"].as_array().unwrap().clone();
        let daily = indicator(&kpis, "new_customers_30d")["daily"].as_array().unwrap().clone();
        assert!(!hourly.is_empty() && !daily.is_empty(), "{kpis}");
        assert_eq!(hourly.last().unwrap()["value"], "3");
        let mut server = server;
        server.kill().await;
        let restarted = Server::start(&url, &["--kpi-refresh-secs", "3600"]).await;
        let (status, after) = restarted.call_as(Some(&admin), "GET", "/v1/kpis?hours=48&days=7", None).await;
        assert_eq!(status, 200, "{after}");
        let kept = indicator(&after, "new_customers_30d");
        assert_eq!(kept["value"], "3", "{kept}");
        assert!(!kept["daily"].as_array().unwrap().is_empty(), "{kept}");
        assert_eq!(value(&after, "loan_balance"), amount.to_string());
    }
}
