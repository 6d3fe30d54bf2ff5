//! Lending end to end over HTTP on the real binary (SQLite, and PostgreSQL when DATABASE_URL is
//! set): application → offer → acceptance with the disbursement in the ledger, repayments, end of
//! day twice for the same date, overdue buckets, supply-chain financing, bad inputs that each get
//! their exact 4xx code and write nothing, and loan balances that reconcile with the ledger.

// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]
mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn loan_from_application_to_repayment_through_the_ledger() {
    for db in database_urls().await {
        // This bank simulates forty days of business: end of day may run that far ahead.
        let server =
            Server::start(&db, &["--lending-eod-max-days-ahead", "60", "--lending-eod-max-gap-days", "45"]).await;
        let cash = open(&server, gl("gl.cash")).await;
        let deposit_acct = funded_deposit(&server, "borrower-1", &cash, 10_000_00).await;

        // Products.
        let (status, products) = server.call("GET", "/v1/lending/products", None).await;
        assert_eq!(status, 200);
        assert_eq!(products.as_array().unwrap().len(), 3);

        // Applications until one is approved; reviews land in the review queue.
        let mut approved = None;
        let mut reviewed = 0;
        for i in 0..60 {
            let body = json!({"applicant_id": format!("APP-{i}"), "product_code": "instant_consumer"});
            let (status, d) = server.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!(status, 201, "{d}");
            assert!(!d["reasons"].as_array().unwrap().is_empty() || d["outcome"] == "approve", "{d}");
            match d["outcome"].as_str().unwrap() {
                "approve" if approved.is_none() => approved = Some(d),
                "review" => reviewed += 1,
                _ => {}
            }
        }
        let d = approved.expect("an approved applicant among 60");
        assert!(d["grade"].is_string() && d["limit"].as_i64().unwrap() > 0 && d["annual_rate"].is_string(), "{d}");
        let app_id = d["id"].as_str().unwrap();
        let (status, again) = server.call("GET", &format!("/v1/lending/applications/{app_id}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(again["outcome"], "approve");
        let (_, queue) = server.call("GET", "/v1/lending/review-queue", None).await;
        assert_eq!(queue["items"].as_array().unwrap().len(), reviewed, "{queue}");

        // Offer.
        let (status, offer) = server.call("POST", &format!("/v1/lending/applications/{app_id}/offer"), None).await;
        assert_eq!(status, 201, "{offer}");
        let offer_id = offer["id"].as_str().unwrap();
        let limit = offer["limit"]["minor"].as_i64().unwrap();
        let term = offer["terms_months"][0].as_u64().unwrap();
        let accept = |amount: i64, term: u64| json!({"amount": amount, "term_months": term, "method": "equal_installment", "deposit_account_id": deposit_acct});
        let journal_before = journal_entries(&server).await;

        // Bad acceptances: exact codes, nothing written.
        let (status, e) =
            server.call("POST", &format!("/v1/lending/offers/{offer_id}/accept"), Some(accept(limit + 1, term))).await;
        assert_error(status, &e, 422, "amount_above_limit");
        let (status, e) =
            server.call("POST", &format!("/v1/lending/offers/{offer_id}/accept"), Some(accept(limit, 7))).await;
        assert_error(status, &e, 422, "term_not_offered");
        let (_, list) = server.call("GET", "/v1/lending/loans?applicant_id=APP-missing", None).await;
        assert!(list["loans"].as_array().unwrap().is_empty());
        assert_eq!(journal_entries(&server).await, journal_before);
        assert_eq!(posted_balance(&server, &deposit_acct).await, 10_000_00);

        // Acceptance: contract, loan, disbursement in the ledger.
        let amount = limit.min(20_000_00);
        let (status, out) =
            server.call("POST", &format!("/v1/lending/offers/{offer_id}/accept"), Some(accept(amount, term))).await;
        assert_eq!(status, 201, "{out}");
        let loan_id = out["loan"]["id"].as_str().unwrap().to_string();
        let fee = out["contract"]["upfront_fee"]["minor"].as_i64().unwrap();
        assert_eq!(posted_balance(&server, &deposit_acct).await, 10_000_00 + amount - fee);
        // Retrying the same acceptance is idempotent.
        let (status, retry) =
            server.call("POST", &format!("/v1/lending/offers/{offer_id}/accept"), Some(accept(amount, term))).await;
        assert_eq!(status, 200, "{retry}");
        assert_eq!(posted_balance(&server, &deposit_acct).await, 10_000_00 + amount - fee);
        let view = loan(&server, &loan_id).await;
        assert_eq!(view["ledger"]["principal"].as_i64().unwrap(), amount);
        assert_eq!(view["schedule"].as_array().unwrap().len() as u64, term);
        assert_reconciled(&view);

        // Repayment in the wrong currency: 422, nothing written.
        let journal_before = journal_entries(&server).await;
        let repay_path = format!("/v1/lending/loans/{loan_id}/repayments");
        let (status, e) = server.call("POST", &repay_path, Some(json!({"amount": 100_00, "currency": "USD"}))).await;
        assert_error(status, &e, 422, "currency_mismatch");
        // Repayment from an empty account: the ledger refuses, the loan is unchanged.
        let empty = funded_deposit(&server, "borrower-1", &cash, 0).await;
        let (status, e) =
            server.call("POST", &repay_path, Some(json!({"amount": 100_00, "from_account_id": empty}))).await;
        assert_error(status, &e, 422, "insufficient_funds");
        assert_eq!(journal_entries(&server).await, journal_before);
        assert_eq!(loan(&server, &loan_id).await["loan"], view["loan"]);

        // A repayment today.
        let (status, r) = server.call("POST", &repay_path, Some(json!({"amount": 1_000_00}))).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            r["allocation"]["current_principal"].as_i64().unwrap()
                + r["allocation"]["leftover"].as_i64().unwrap()
                + r["allocation"]["current_interest"].as_i64().unwrap(),
            1_000_00,
            "{r}"
        );
        assert_eq!(
            posted_balance(&server, &deposit_acct).await,
            10_000_00 + amount - fee - 1_000_00 + r["allocation"]["leftover"].as_i64().unwrap()
        );
        assert_reconciled(&loan(&server, &loan_id).await);

        // Supply chain: documents, receivable, confirmation, financing once.
        let core_acct = funded_deposit(&server, "core-1", &cash, 1_000_000_00).await;
        let supplier_acct = funded_deposit(&server, "supplier-1", &cash, 0).await;
        let doc = json!({"kind": "invoice", "content": "invoice INV-1 100000.00", "party_id": "supplier-1", "reference": "X"});
        let (status, e) = server.call("POST", "/v1/lending/documents", Some(doc.clone())).await;
        assert_eq!(status, 201, "{e}");
        let (status, e) = server.call("POST", "/v1/lending/documents", Some(doc)).await;
        assert_error(status, &e, 409, "document_already_registered");
        let today = chrono::Utc::now().date_naive();
        let receivable = json!({
            "id": "R-1", "core_enterprise_id": "core-1", "supplier_id": "supplier-1", "amount": 500_000_00,
            "issue_date": today.to_string(), "due_date": (today + chrono::Duration::days(120)).to_string(),
            "documents": [{"kind": "order", "content": "order PO-1"}, {"kind": "delivery_receipt", "content": "receipt GR-1"}]
        });
        let (status, r) = server.call("POST", "/v1/lending/receivables", Some(receivable)).await;
        assert_eq!(status, 201, "{r}");
        let finance = json!({"supplier_id": "supplier-1", "amount": 300_000_00, "deposit_account_id": supplier_acct,
            "repayment_account_id": core_acct});
        let journal_before = journal_entries(&server).await;
        let (status, e) = server.call("POST", "/v1/lending/receivables/R-1/finance", Some(finance.clone())).await;
        assert_error(status, &e, 422, "receivable_not_confirmed");
        assert_eq!(journal_entries(&server).await, journal_before);
        let (status, c) = server
            .call("POST", "/v1/lending/receivables/R-1/confirm", Some(json!({"core_enterprise_id": "core-1"})))
            .await;
        assert_eq!(status, 200, "{c}");
        let (status, f) = server.call("POST", "/v1/lending/receivables/R-1/finance", Some(finance.clone())).await;
        assert_eq!(status, 201, "{f}");
        let sc_loan = f["financing"]["loan"]["id"].as_str().unwrap().to_string();
        let sc_fee = f["financing"]["contract"]["upfront_fee"]["minor"].as_i64().unwrap();
        assert_eq!(posted_balance(&server, &supplier_acct).await, 300_000_00 - sc_fee);
        let (status, e) = server.call("POST", "/v1/lending/receivables/R-1/finance", Some(finance)).await;
        assert_error(status, &e, 409, "receivable_already_financed");

        // End of day today, twice: the second run is a no-op.
        let (status, first) = server.call("POST", "/v1/lending/eod", Some(json!({"date": today.to_string()}))).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["already_run"], false);
        assert_eq!(first["loans_processed"], 2, "{first}");
        assert!(first["interest_accrued_minor"].as_i64().unwrap() > 0);
        let journal_after_eod = journal_entries(&server).await;
        let (status, second) = server.call("POST", "/v1/lending/eod", Some(json!({"date": today.to_string()}))).await;
        assert_eq!(status, 200, "{second}");
        assert_eq!(second["already_run"], true, "{second}");
        assert_eq!(journal_entries(&server).await, journal_after_eod);

        // A date whose work would grow without bound is refused at once, naming the allowed range.
        let (status, e) = server.call("POST", "/v1/lending/eod", Some(json!({"date": "6505-01-01"}))).await;
        assert_error(status, &e, 422, "eod_date_out_of_range");
        assert_eq!(e["error"]["details"]["latest"], (today + chrono::Duration::days(45)).to_string(), "{e}");
        assert_eq!(journal_entries(&server).await, journal_after_eod);

        // Forty days later the first installment is overdue (M1) and accrues penalty.
        let later = today + chrono::Duration::days(40);
        let (status, r) = server.call("POST", "/v1/lending/eod", Some(json!({"date": later.to_string()}))).await;
        assert_eq!(status, 200, "{r}");
        let (status, e) = server.call("POST", "/v1/lending/eod", Some(json!({"date": today.to_string()}))).await;
        assert_eq!(status, 200, "a done date stays already_run: {e}");
        let (status, e) = server
            .call("POST", "/v1/lending/eod", Some(json!({"date": (today + chrono::Duration::days(1)).to_string()})))
            .await;
        assert_error(status, &e, 409, "eod_date_in_past");
        let view = loan(&server, &loan_id).await;
        assert_eq!(view["loan"]["status"], "overdue", "{view}");
        assert_eq!(view["bucket"], "m1");
        assert!(view["loan"]["penalty"].as_i64().unwrap() > 0);
        assert_reconciled(&view);
        let (_, m1) = server.call("GET", "/v1/lending/loans?bucket=m1", None).await;
        assert!(m1["loans"].as_array().unwrap().iter().any(|l| l["id"] == loan_id.as_str()), "{m1}");
        // The supply-chain financing's monthly interest was not paid either.
        assert_eq!(m1["buckets"]["m1"], 2, "{m1}");

        // Paying what is overdue cures the loan; balances still reconcile.
        let owed = view["ledger"]["penalty_receivable"].as_i64().unwrap()
            + view["loan"]["dues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["principal"].as_i64().unwrap() + d["interest"].as_i64().unwrap())
                .sum::<i64>();
        let (status, r) = server.call("POST", &repay_path, Some(json!({"amount": owed}))).await;
        assert_eq!(status, 200, "{r}");
        let view = loan(&server, &loan_id).await;
        assert_eq!(view["loan"]["status"], "active", "{view}");
        assert_reconciled(&view);
        assert_reconciled(&loan(&server, &sc_loan).await);

        drop(server);
        let (ok, out) = verify(&db).await;
        assert!(ok, "digibank verify failed: {out}");
    }
}

/// Every application's fraud check is a `loan_application` decision of the risk engine. Five
/// customers confirmed as fraud share device `dev-FARM0071`; an applicant on that device is
/// referred or declined with the graph reason in words, the risk decision and its case are
/// cited on the lending decision; applicants on their own devices are allowed by the engine.
#[tokio::test]
async fn applications_are_fraud_checked_by_the_risk_engine() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        // A fraud ring: logins are reviewed, the five ring members' cases confirmed as fraud.
        let rule = json!({"id": "logins", "condition": {"type": "expression", "source": "event_kind == \"login\""},
                          "action": "review", "reason_code": "LOGIN_REVIEW", "explanation": "logins are reviewed"});
        let (status, set) = server.call("POST", "/v1/risk/rule-sets", Some(json!({"rules": [rule]}))).await;
        assert_eq!(status, 201, "{set}");
        let version = set["rule_set"]["version"].as_u64().unwrap();
        assert_eq!(server.call("POST", &format!("/v1/risk/rule-sets/{version}/activate"), None).await.0, 200);
        for m in 0..5 {
            let login = json!({"event_id": format!("ring-login-{m}"), "kind": "login", "occurred_at": "2026-11-20T10:00:00Z",
                               "customer_id": format!("RING-MEMBER-{m}"), "channel": "mobile", "device_fingerprint": "dev-FARM0071"});
            let (status, d) = server.call("POST", "/v1/risk/decisions", Some(login)).await;
            assert_eq!((status, d["outcome"].as_str()), (200, Some("review")), "{d}");
            let case = d["case_id"].as_u64().unwrap();
            let (status, r) = server
                .call("POST", &format!("/v1/risk/cases/{case}/resolve"), Some(json!({"resolution": "confirmed_fraud"})))
                .await;
            assert_eq!(status, 200, "{r}");
        }

        // Applicants on the ring's device: the first eligible one is referred or declined by the graph.
        let mut ring_checked = None;
        for i in 0..40 {
            let body = json!({"applicant_id": format!("RING-APP-{i}"), "product_code": "instant_consumer",
                              "channel": "mobile", "device_fingerprint": "dev-FARM0071", "ip": "10.9.8.7", "phone": "13800000071"});
            let (status, d) = server.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!(status, 201, "{d}");
            if d["risk_decision_id"].is_string() {
                ring_checked = Some(d);
                break;
            }
        }
        let d = ring_checked.expect("an eligible applicant among 40");
        assert!(matches!(d["fraud_verdict"].as_str(), Some("review" | "reject")), "{d}");
        assert!(matches!(d["outcome"].as_str(), Some("review" | "decline")), "{d}");
        assert!(d["reason_codes"].as_array().unwrap().contains(&json!("GRAPH_SHARED_DEVICE_FLAGGED")), "{d}");
        let words = d["reasons"].as_array().unwrap().iter().filter_map(|r| r.as_str()).collect::<Vec<_>>().join(" | ");
        assert!(words.contains("shares a device with") && words.contains("confirmed fraud"), "{words}");
        // The risk decision is in the decision log, with the application's device, and opened a case on review.
        let risk_id = d["risk_decision_id"].as_str().unwrap();
        let (status, rd) = server.call("GET", &format!("/v1/risk/decisions/{risk_id}"), None).await;
        assert_eq!((status, rd["kind"].as_str()), (200, Some("loan_application")), "{rd}");
        assert_eq!(rd["event_id"], format!("loan-application:{}", d["id"].as_str().unwrap()));
        if d["fraud_verdict"] == "review" {
            let case = d["risk_case_id"].as_u64().expect("a review opens a case");
            let (_, cases) = server.call("GET", "/v1/risk/cases?status=open", None).await;
            assert!(cases["cases"].as_array().unwrap().iter().any(|c| c["id"] == case && c["decision_id"] == rd["id"]));
        }

        // Clean applicants on their own devices: the engine allows them; approvals still happen.
        let mut approved = 0;
        for i in 0..40 {
            let body = json!({"applicant_id": format!("CLEAN-{i}"), "product_code": "instant_consumer",
                              "device_fingerprint": format!("dev-clean-{i}")});
            let (status, d) = server.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!(status, 201, "{d}");
            if d["risk_decision_id"].is_string() {
                assert_eq!(d["fraud_verdict"], "allow", "{d}");
                assert!(!d["reason_codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c.as_str().unwrap().starts_with("GRAPH")));
            }
            approved += usize::from(d["outcome"] == "approve");
        }
        assert!(approved > 0, "clean applicants are approved");

        // Bad device data is refused before anything is decided.
        let bad = json!({"applicant_id": "X-1", "product_code": "instant_consumer", "ip": "not-an-ip"});
        let (status, e) = server.call("POST", "/v1/lending/applications", Some(bad)).await;
        assert_error(status, &e, 422, "invalid_request");
    }
}
