//! Process intelligence (issue 15), end to end against the real binary on SQLite and
//! PostgreSQL: loan applications, reviews, offers, acceptances, risk cases, transfer holds and
//! customer onboarding log their process events with the change they record; the log exports
//! as OCEL 2.0 and XES, an XES export imports back as the same log, CSV imports with a column
//! mapping, malformed files are refused naming the line with nothing imported, and the mining
//! endpoints answer with the figures the log implies.

#![allow(clippy::inconsistent_digit_grouping)] // amounts written as yuan_fen

mod common;

use common::*;
use serde_json::{json, Value};

/// A valid resident ID number (checksum computed).
fn resident_id(i: u32) -> String {
    let body = format!("110105199001{:02}{:03}", 1 + i % 28, 100 + i % 900);
    let body = &body[..17];
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

async fn key(server: &Server, role: &str) -> (String, String) {
    let (status, issued) = server.call("POST", "/v1/api-keys", Some(json!({"name": role, "role": role}))).await;
    assert_eq!(status, 201, "{issued}");
    (issued["key"].as_str().unwrap().to_string(), issued["id"].as_str().unwrap().to_string())
}

/// The activities of one case, in order.
async fn activities(server: &Server, process: &str, case: &str) -> (Vec<String>, Value) {
    let (status, body) = server.call("GET", &format!("/v1/process/cases/{case}?process={process}"), None).await;
    assert_eq!(status, 200, "{process} {case}: {body}");
    let acts = body["events"].as_array().unwrap().iter().map(|e| e["activity"].as_str().unwrap().to_string()).collect();
    (acts, body)
}

const ATTRIBUTE_KEYS: [&str; 7] =
    ["product", "amount_minor", "currency", "channel", "outcome", "cost_minor", "service_micros"];

async fn raw(server: &Server, method: &str, path: &str, body: Option<(&str, String)>) -> (u16, String, String) {
    let mut request = server.http.request(method.parse().unwrap(), server.url(path)).bearer_auth(server.key());
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn the_bank_logs_its_processes_and_mines_them() {
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let (auditor, _) = key(&server, "auditor").await;
        let (teller, _) = key(&server, "teller").await;
        let (reviewer, reviewer_id) = key(&server, "operator").await;

        // Who may read: admin, operator, auditor; not a teller. Importing is not for auditors.
        let (status, e) = server.call_as(Some(&teller), "GET", "/v1/process/dfg", None).await;
        assert_error(status, &e, 403, "forbidden");
        assert_eq!(server.call_as(Some(&auditor), "GET", "/v1/process/logs", None).await.0, 200);
        let (status, e) =
            server.call_as(Some(&auditor), "POST", "/v1/process/logs?name=x&format=xes", Some(json!("x"))).await;
        assert_error(status, &e, 403, "forbidden");

        // Loan applications until one is approved and one waits for review.
        let (mut approved, mut review, mut applied) = (None, None, 0);
        for i in 0..80 {
            let body = json!({"applicant_id": format!("PROC-APP-{i}"), "product_code": "instant_consumer",
                "channel": "mobile", "amount": 20_000_00});
            let (status, d) = server.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!(status, 201, "{d}");
            applied += 1;
            match d["outcome"].as_str().unwrap() {
                "approve" if approved.is_none() => approved = Some(d["id"].as_str().unwrap().to_string()),
                "review" if review.is_none() => review = Some(d["id"].as_str().unwrap().to_string()),
                _ => {}
            }
            if approved.is_some() && review.is_some() {
                break;
            }
        }
        let (approved, review) = (approved.expect("an approval"), review.expect("a review"));

        // Offer (twice: idempotent, logged once) and acceptance with the disbursement.
        let cash = open(&server, gl("gl.cash")).await;
        let acct = funded_deposit(&server, "PROC-APP-owner", &cash, 1_000_00).await;
        let (status, offer) = server.call("POST", &format!("/v1/lending/applications/{approved}/offer"), None).await;
        assert_eq!(status, 201, "{offer}");
        let (status, _) = server.call("POST", &format!("/v1/lending/applications/{approved}/offer"), None).await;
        assert!(status == 200 || status == 201);
        let amount = offer["limit"]["minor"].as_i64().unwrap().min(10_000_00);
        let accept = json!({"amount": amount, "term_months": offer["terms_months"][0], "method": "equal_installment",
            "deposit_account_id": acct});
        let (status, out) = server
            .call("POST", &format!("/v1/lending/offers/{}/accept", offer["id"].as_str().unwrap()), Some(accept))
            .await;
        assert_eq!(status, 201, "{out}");
        let (acts, case) = activities(&server, "loan_origination", &approved).await;
        assert_eq!(
            acts,
            [
                "application_received",
                "bureau_data_collected",
                "social_security_data_collected",
                "housing_fund_data_collected",
                "fraud_checked",
                "scored",
                "auto_approved",
                "offer_made",
                "offer_accepted",
                "disbursed"
            ],
            "{case}"
        );
        let events = case["events"].as_array().unwrap();
        let times: Vec<i64> = events.iter().map(|e| e["at"].as_i64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(events[0]["resource"], "customer");
        assert_eq!(events[0]["attributes"]["channel"], "mobile");
        assert_eq!(events[0]["attributes"]["amount_minor"], 20_000_00);
        assert_eq!(events[6]["attributes"]["outcome"], "approve");
        assert_eq!(events[9]["attributes"]["amount_minor"], amount);
        assert!(events[5]["attributes"]["service_micros"].as_i64().unwrap() >= 0);
        // No personal data: only the typed attributes, and no applicant id anywhere.
        for e in events {
            for k in e["attributes"].as_object().unwrap().keys() {
                assert!(ATTRIBUTE_KEYS.contains(&k.as_str()), "{k}");
            }
        }
        assert!(!case.to_string().contains("PROC-APP"), "{case}");

        // The review: queued by the system, decided by the reviewer (once, even if repeated).
        for _ in 0..2 {
            let (status, r) = server
                .call_as(
                    Some(&reviewer),
                    "POST",
                    &format!("/v1/lending/review-queue/{review}/approve"),
                    Some(json!({"note": "income verified"})),
                )
                .await;
            assert_eq!(status, 200, "{r}");
        }
        let (acts, case) = activities(&server, "loan_origination", &review).await;
        assert_eq!(acts.iter().filter(|a| *a == "reviewed").count(), 1, "{acts:?}");
        assert_eq!(acts[acts.len() - 2..], ["queued_for_review", "reviewed"], "{acts:?}");
        let reviewed = case["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(reviewed["resource"], reviewer_id.as_str(), "{reviewed}");
        assert_eq!(reviewed["attributes"]["outcome"], "approved");

        // A screened transfer held for review, released when the case is a false positive.
        let review_rule = json!({"rules": [{"id": "big", "condition": {"type": "expression",
            "source": "event_kind == \"transfer\" and event_amount >= 10000"}, "action": "review",
            "reason_code": "BIG", "explanation": "big transfer"}]});
        assert_eq!(server.call("POST", "/v1/risk/rule-sets", Some(review_rule)).await.0, 201);
        assert_eq!(server.call("POST", "/v1/risk/rule-sets/1/activate", None).await.0, 200);
        let alice = funded_deposit(&server, "alice", &cash, 50_000_00).await;
        let bob = open(&server, deposit("bob")).await;
        let mut held = transfer(&alice, &bob, 30_000_00);
        held["metadata"] = json!({"channel": "web", "customer_id": "C-alice"});
        let hold_id = held["id"].as_str().unwrap().to_string();
        let (status, body) = server.call("POST", "/v1/transfers", Some(held)).await;
        assert_eq!((status, body["status"].as_str()), (202, Some("held_for_review")), "{body}");
        let case_id = body["decision"]["case_id"].as_u64().expect("case").to_string();
        let (status, r) = server
            .call("POST", &format!("/v1/risk/cases/{case_id}/resolve"), Some(json!({"resolution": "false_positive"})))
            .await;
        assert_eq!((status, r["transfer_action"].as_str()), (200, Some("posted")), "{r}");
        let (acts, hold) = activities(&server, "transfer_hold", &hold_id).await;
        assert_eq!(acts, ["transfer_held", "hold_released"], "{hold}");
        assert_eq!(hold["events"][0]["attributes"]["amount_minor"], 30_000_00);
        let (acts, _) = activities(&server, "risk_case", &case_id).await;
        assert_eq!(acts, ["case_opened", "case_resolved"]);

        // Onboarding: registration and a KYC change.
        let person =
            json!({"kind": "individual", "name": "流程客户", "id_number": resident_id(7), "phone": "13912340007"});
        let (status, c) = server.call("POST", "/v1/customers", Some(person)).await;
        assert_eq!(status, 201, "{c}");
        let customer = c["id"].as_str().unwrap().to_string();
        let (status, k) =
            server.call("PUT", &format!("/v1/customers/{customer}/kyc"), Some(json!({"status": "verified"}))).await;
        assert_eq!(status, 200, "{k}");
        let (acts, onboarding) = activities(&server, "customer_onboarding", &customer).await;
        assert_eq!(acts, ["customer_registered", "kyc_changed"]);
        assert_eq!(onboarding["events"][1]["attributes"]["outcome"], "verified");
        assert!(!onboarding.to_string().contains("流程客户") && !onboarding.to_string().contains("13912340007"));

        // Counts per process.
        let (_, logs) = server.call("GET", "/v1/process/logs", None).await;
        let count = |p: &str| {
            logs["processes"].as_array().unwrap().iter().find(|x| x["process"] == p).unwrap()["events"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(count("transfer_hold"), 2);
        assert!(count("loan_origination") >= applied * 6, "{logs}");

        // Mining: the DFG and the analysis agree with what was done.
        let (status, dfg) =
            server.call_as(Some(&auditor), "GET", "/v1/process/dfg?process=loan_origination", None).await;
        assert_eq!(status, 200, "{dfg}");
        let received = dfg["activities"].as_array().unwrap().iter().find(|a| a["activity"] == "application_received");
        assert_eq!(received.unwrap()["count"], applied);
        assert_eq!(dfg["start_activities"][0]["cases"], applied);
        let edge = dfg["edges"].as_array().unwrap().iter().find(|e| e["from"] == "offer_accepted").unwrap().clone();
        assert_eq!((edge["to"].as_str(), edge["count"].as_i64()), (Some("disbursed"), Some(1)));
        let (status, a) = server.call("GET", "/v1/process/analysis?limit=5", None).await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(a["cases"], applied);
        let sla = &a["sla"];
        assert_eq!(sla["spec"]["limit_micros"], 600_000_000i64);
        assert_eq!(sla["cases"], applied);
        assert_eq!(sla["breached"], 0, "{sla}");
        let shares: f64 = a["variants"].as_array().unwrap().iter().map(|v| v["share"].as_f64().unwrap()).sum();
        assert!(shares <= 1.0 + 1e-9 && a["variants"].as_array().unwrap().len() <= 5);
        let pce = a["value_stream"]["process_cycle_efficiency"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&pce), "{a}");
        let (_, only_mobile) = server.call("GET", "/v1/process/analysis?channel=branch", None).await;
        assert_eq!(only_mobile["cases"], 0);
        let (_, future) = server.call("GET", "/v1/process/analysis?from=2100-01-01T00:00:00Z", None).await;
        assert_eq!(future["cases"], 0);

        // Export: OCEL 2.0 and XES; the XES imports back as the same log.
        let (status, ocel) = server.call("GET", "/v1/process/export?format=ocel&process=loan_origination", None).await;
        assert_eq!(status, 200, "{ocel}");
        let ocel_events = ocel["events"].as_array().unwrap();
        assert_eq!(ocel_events.len() as i64, count("loan_origination"));
        assert!(ocel["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == approved.as_str() && o["type"] == "loan_application"));
        assert_eq!(ocel_events[0]["relationships"][0]["qualifier"], "case");
        let (status, content_type, xes) =
            raw(&server, "GET", "/v1/process/export?format=xes&process=loan_origination", None).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("application/xml"), "{content_type}");
        assert!(xes.contains(&format!("value=\"{approved}\"")));
        let (status, _, imported) =
            raw(&server, "POST", "/v1/process/logs?name=roundtrip&format=xes", Some(("application/xml", xes))).await;
        assert_eq!(status, 201, "{imported}");
        let imported: Value = serde_json::from_str(&imported).unwrap();
        assert_eq!(imported["events"].as_i64().unwrap(), count("loan_origination"));
        assert_eq!(imported["cases"], applied);
        let log = imported["id"].as_str().unwrap();
        let (_, dfg_back) = server.call("GET", &format!("/v1/process/dfg?log={log}"), None).await;
        assert_eq!(dfg_back["edges"], dfg["edges"], "the imported log mines like the original");

        // CSV import with a column mapping; malformed files name the line and import nothing.
        let csv = "Case,Step,Start,End,Who\nL1,apply,2026-01-05 09:00:00,2026-01-05 09:00:10,web\n\
                   L1,review,2026-01-05 10:00:00,2026-01-05 10:20:00,ann\nL2,apply,2026-01-06 09:00:00,2026-01-06 09:00:05,web\n";
        let mapping = "case=Case&activity=Step&timestamp=End&start_timestamp=Start&resource=Who";
        let (status, _, body) = raw(
            &server,
            "POST",
            &format!("/v1/process/logs?name=legacy&format=csv&{mapping}"),
            Some(("text/csv", csv.into())),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let legacy: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((legacy["events"].as_i64(), legacy["cases"].as_i64()), (Some(3), Some(2)));
        let (_, a) =
            server.call("GET", &format!("/v1/process/analysis?log={}", legacy["id"].as_str().unwrap()), None).await;
        assert_eq!(a["cases"], 2);
        // L1: lead 09:00:10 → 10:20:00 = 4790 s; value added 1200 s (the review, start to end).
        assert_eq!(a["value_stream"]["value_added"]["total_micros"], 1_200_000_000i64, "{a}");
        assert_eq!(a["value_stream"]["lead_time"]["max_micros"], 4_790_000_000i64, "{a}");
        let bad = "Case,Step,Start,End,Who\nL1,apply,2026-01-05 09:00:00,2026-01-05 09:00:10,web\nL1,review,yesterday,2026-01-05 10:20:00,ann\n";
        let (status, _, body) = raw(
            &server,
            "POST",
            &format!("/v1/process/logs?name=bad&format=csv&{mapping}"),
            Some(("text/csv", bad.into())),
        )
        .await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_error(status, &body, 422, "malformed_log");
        assert_eq!(body["error"]["details"]["line"], 3, "{body}");
        let bad_xes = "<log>\n<trace><string key=\"concept:name\" value=\"t\"/>\n<event><string key=\"concept:name\" value=\"a\"/></event></trace></log>";
        let (status, _, body) =
            raw(&server, "POST", "/v1/process/logs?name=bad&format=xes", Some(("application/xml", bad_xes.into())))
                .await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_error(status, &body, 422, "malformed_log");
        assert_eq!(body["error"]["details"]["line"], 3, "{body}");
        let (_, logs) = server.call("GET", "/v1/process/logs", None).await;
        assert_eq!(logs["imported"].as_array().unwrap().len(), 2, "nothing of the bad files was imported");

        // Bad input is a 4xx naming what is wrong.
        for (path, status, code) in [
            ("/v1/process/dfg?process=baking", 422, "unknown_process"),
            ("/v1/process/dfg?process=risk_case&log=x", 422, "invalid_parameter"),
            ("/v1/process/analysis?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", 422, "invalid_parameter"),
            ("/v1/process/analysis?from=yesterday", 422, "invalid_parameter"),
            ("/v1/process/analysis?limit=0", 422, "parameter_out_of_range"),
            ("/v1/process/analysis?sla_minutes=100000", 422, "parameter_out_of_range"),
            ("/v1/process/export?format=pdf", 422, "invalid_parameter"),
            ("/v1/process/dfg?log=00000000-0000-0000-0000-000000000000", 404, "not_found"),
            ("/v1/process/dfg?colour=red", 400, "invalid_query"),
            ("/v1/process/cases/nope", 404, "not_found"),
        ] {
            let (s, e) = server.call("GET", path, None).await;
            assert_error(s, &e, status, code);
        }
    }
}
