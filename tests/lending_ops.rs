//! Lending operations end to end on the real binary (SQLite, and PostgreSQL when DATABASE_URL is
//! set): manual review decisions (approve → offer → accept, decline visible to the customer,
//! idempotency and 409s), write-off through the ledger (loss allowance, reconciliation, end of
//! day skips the loan, recoveries refused), and the `files` data source from configuration.

// Amounts in minor units are written `<yuan>_<fen>`.
#![allow(clippy::inconsistent_digit_grouping)]
mod common;

use common::*;
use customer::CustomerKind;
use lending::{FileSource, Simulator};
use serde_json::{json, Value};

fn loss_allowance() -> String {
    lending_platform::accounts::gl_account("gl.loan_loss_allowance", money::Currency::CNY).0.to_string()
}

async fn queue_ids(server: &Server) -> Vec<String> {
    let (status, q) = server.call("GET", "/v1/lending/review-queue", None).await;
    assert_eq!(status, 200, "{q}");
    q["items"].as_array().unwrap().iter().map(|i| i["decision_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn review_decisions_write_off_and_recoveries() {
    for db in database_urls().await {
        // Months of business are simulated: end of day may run that far ahead.
        let server =
            Server::start(&db, &["--lending-eod-max-days-ahead", "200", "--lending-eod-max-gap-days", "200"]).await;
        let cash = open(&server, gl("gl.cash")).await;
        let deposit_acct = funded_deposit(&server, "borrower-r", &cash, 10_000_00).await;

        // Applications until two land in review (and one is approved automatically).
        let mut reviews = Vec::new();
        let mut auto_approved = None;
        for i in 0..300 {
            let body = json!({"applicant_id": format!("REV-{i}"), "product_code": "instant_consumer"});
            let (status, d) = server.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!(status, 201, "{d}");
            match d["outcome"].as_str().unwrap() {
                "review" if reviews.len() < 2 => reviews.push(d),
                "approve" if auto_approved.is_none() => auto_approved = Some(d),
                _ => {}
            }
            if reviews.len() == 2 && auto_approved.is_some() {
                break;
            }
        }
        assert_eq!(reviews.len(), 2, "two applications in review among 300");
        let a = reviews[0]["id"].as_str().unwrap().to_string();
        let b = reviews[1]["id"].as_str().unwrap().to_string();
        let queue = queue_ids(&server).await;
        assert!(queue.contains(&a) && queue.contains(&b));

        // Permissions: a teller cannot decide reviews.
        let (status, key) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "channel", "role": "teller"}))).await;
        assert_eq!(status, 201, "{key}");
        let teller = key["key"].as_str().unwrap().to_string();
        let approve_path = |id: &str| format!("/v1/lending/review-queue/{id}/approve");
        let decline_path = |id: &str| format!("/v1/lending/review-queue/{id}/decline");
        let (status, _) = server.call_as(Some(&teller), "POST", &approve_path(&a), Some(json!({"note": "x"}))).await;
        assert_eq!(status, 403);

        // Unknown item, an automatically approved decision (never in review): 404.
        let (status, e) =
            server.call("POST", &approve_path(&uuid::Uuid::now_v7().to_string()), Some(json!({"note": "x"}))).await;
        assert_error(status, &e, 404, "review_item_not_found");
        if let Some(d) = &auto_approved {
            let (status, e) =
                server.call("POST", &approve_path(d["id"].as_str().unwrap()), Some(json!({"note": "x"}))).await;
            assert_error(status, &e, 404, "review_item_not_found");
        }

        // A limit above the product's grid limit, an empty note, an unknown decline reason:
        // 422 and nothing changes.
        let (status, e) =
            server.call("POST", &approve_path(&a), Some(json!({"note": "ok", "limit_minor": 500_000_01}))).await;
        assert_error(status, &e, 422, "limit_above_grid");
        let (status, e) = server.call("POST", &approve_path(&a), Some(json!({"note": " "}))).await;
        assert_error(status, &e, 422, "invalid_review");
        let (status, e) =
            server.call("POST", &decline_path(&b), Some(json!({"reason_code": "bad vibes", "note": "n"}))).await;
        assert_error(status, &e, 422, "unknown_decline_reason");
        let (_, still) = server.call("GET", &format!("/v1/lending/applications/{a}"), None).await;
        assert_eq!(still["outcome"], "review");
        assert_eq!(queue_ids(&server).await, queue);
        let (status, e) = server.call("POST", &format!("/v1/lending/applications/{a}/offer"), None).await;
        assert_error(status, &e, 409, "decision_not_approved");

        // Approve A with a lower limit.
        let proposed = reviews[0]["limit"].as_i64().unwrap();
        let lower = (proposed / 2 / 100_00 * 100_00).max(1_000_00);
        let body = json!({"note": "payslips verified by phone", "limit_minor": lower});
        let (status, approved) = server.call("POST", &approve_path(&a), Some(body)).await;
        assert_eq!(status, 200, "{approved}");
        assert_eq!(approved["outcome"], "approve");
        assert_eq!(approved["limit"], lower);
        assert_eq!(approved["decision"]["manual_review"]["note"], "payslips verified by phone");
        assert_eq!(approved["decision"]["manual_review"]["analyst_role"], "admin");
        assert!(approved["reason_codes"].as_array().unwrap().iter().any(|c| c == "manual_review_approved"));
        // Approving again returns the same result, whatever the body; declining it is a 409.
        let (status, again) =
            server.call("POST", &approve_path(&a), Some(json!({"note": "again", "limit_minor": 1_000_00}))).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again, approved);
        let (status, e) = server
            .call("POST", &decline_path(&a), Some(json!({"reason_code": "other", "note": "changed my mind"})))
            .await;
        assert_error(status, &e, 409, "review_already_decided");

        // Decline B: the customer sees the reason on the application; no offer.
        let (status, declined) = server
            .call(
                "POST",
                &decline_path(&b),
                Some(json!({"reason_code": "insufficient_income", "note": "income unclear"})),
            )
            .await;
        assert_eq!(status, 200, "{declined}");
        let (status, seen) = server.call("GET", &format!("/v1/lending/applications/{b}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(seen["outcome"], "decline");
        assert_eq!(seen["reason_codes"], json!(["insufficient_income"]), "{seen}");
        assert!(seen["reasons"][0].as_str().unwrap().contains("declined after manual review"));
        assert!(seen["limit"].is_null());
        assert_eq!(seen["decision"]["manual_review"]["note"], "income unclear");
        // Without the review permission the reasons are visible, the analyst's note is not.
        let (status, channel) =
            server.call_as(Some(&teller), "GET", &format!("/v1/lending/applications/{b}"), None).await;
        assert_eq!(status, 200, "{channel}");
        assert_eq!(channel["reason_codes"], json!(["insufficient_income"]));
        assert!(channel["decision"]["manual_review"].is_null(), "{channel}");
        let (status, e) = server.call("POST", &format!("/v1/lending/applications/{b}/offer"), None).await;
        assert_error(status, &e, 409, "decision_not_approved");
        let (status, e) = server.call("POST", &approve_path(&b), Some(json!({"note": "x"}))).await;
        assert_error(status, &e, 409, "review_already_decided");
        let (status, again) =
            server.call("POST", &decline_path(&b), Some(json!({"reason_code": "other", "note": "retry"}))).await;
        assert_eq!(status, 200);
        assert_eq!(again["reason_codes"], json!(["insufficient_income"]));
        let queue = queue_ids(&server).await;
        assert!(!queue.contains(&a) && !queue.contains(&b), "{queue:?}");

        // Approved after review → offer → accept.
        let (status, offer) = server.call("POST", &format!("/v1/lending/applications/{a}/offer"), None).await;
        assert_eq!(status, 201, "{offer}");
        assert_eq!(offer["limit"]["minor"], lower);
        let offer_id = offer["id"].as_str().unwrap();
        let term = offer["terms_months"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).max().unwrap();
        let accept = json!({"amount": lower, "term_months": term, "method": "equal_installment", "deposit_account_id": deposit_acct});
        let (status, out) = server.call("POST", &format!("/v1/lending/offers/{offer_id}/accept"), Some(accept)).await;
        assert_eq!(status, 201, "{out}");
        let loan_id = out["loan"]["id"].as_str().unwrap().to_string();
        let write_off_path = format!("/v1/lending/loans/{loan_id}/write-off");

        // Not overdue: write-off refused, nothing written. Unknown loan: 404.
        let journal_before = journal_entries(&server).await;
        let (status, e) = server.call("POST", &write_off_path, Some(json!({"reason": "uncollectable"}))).await;
        assert_error(status, &e, 422, "loan_not_overdue_enough");
        let (status, e) = server
            .call(
                "POST",
                &format!("/v1/lending/loans/{}/write-off", uuid::Uuid::now_v7()),
                Some(json!({"reason": "uncollectable"})),
            )
            .await;
        assert_error(status, &e, 404, "loan_not_found");
        // Forcing is for admins only; an operator may write off but not force.
        let (status, key) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "back office", "role": "operator"}))).await;
        assert_eq!(status, 201, "{key}");
        let operator = key["key"].as_str().unwrap().to_string();
        let (status, _) =
            server.call_as(Some(&operator), "POST", &write_off_path, Some(json!({"reason": "x", "force": true}))).await;
        assert_eq!(status, 403);
        let (status, _) =
            server.call_as(Some(&teller), "POST", &write_off_path, Some(json!({"reason": "uncollectable"}))).await;
        assert_eq!(status, 403);
        assert_eq!(journal_entries(&server).await, journal_before);

        // 130 days without payment: M3+, more than 90 days past due.
        let today = chrono::Utc::now().date_naive();
        for date in [today, today + chrono::Duration::days(130)] {
            let (status, r) = server.call("POST", "/v1/lending/eod", Some(json!({"date": date.to_string()}))).await;
            assert_eq!(status, 200, "{r}");
        }
        let before = loan(&server, &loan_id).await;
        assert_eq!(before["bucket"], "m3_plus", "{before}");
        assert!(before["loan"]["dpd"].as_u64().unwrap() >= 90);
        assert_reconciled(&before);
        let owed = |v: &Value| {
            let l = &v["ledger"];
            l["principal"].as_i64().unwrap()
                + l["interest_receivable"].as_i64().unwrap()
                + l["penalty_receivable"].as_i64().unwrap()
                + l["fee_receivable"].as_i64().unwrap()
        };
        let total = owed(&before);
        assert!(before["ledger"]["penalty_receivable"].as_i64().unwrap() > 0);
        let allowance_before = posted_balance(&server, &loss_allowance()).await;

        let (status, e) = server.call("POST", &write_off_path, Some(json!({"reason": ""}))).await;
        assert_error(status, &e, 422, "invalid_request");
        let (status, w) =
            server.call_as(Some(&operator), "POST", &write_off_path, Some(json!({"reason": "uncollectable"}))).await;
        assert_eq!(status, 200, "{w}");
        assert_eq!(w["already_written_off"], false);
        assert_eq!(w["charged_off"]["total"], total, "{w}");
        assert_eq!(w["charged_off"]["principal"], before["ledger"]["principal"]);
        assert_eq!(w["charged_off"]["penalty"], before["ledger"]["penalty_receivable"]);
        assert_eq!(w["loan"]["status"], "written_off");
        let after = loan(&server, &loan_id).await;
        assert_eq!(owed(&after), 0, "{after}");
        assert_reconciled(&after);
        assert_eq!(posted_balance(&server, &loss_allowance()).await, allowance_before + total);

        // Again: the same loan, nothing written.
        let journal_after = journal_entries(&server).await;
        let (status, w2) = server.call("POST", &write_off_path, Some(json!({"reason": "uncollectable"}))).await;
        assert_eq!(status, 200, "{w2}");
        assert_eq!(w2["already_written_off"], true);
        assert_eq!(w2["loan"], after["loan"]);

        // Recoveries are refused; nothing is written.
        let (status, e) = server
            .call("POST", &format!("/v1/lending/loans/{loan_id}/repayments"), Some(json!({"amount": 100_00})))
            .await;
        assert_error(status, &e, 409, "loan_written_off");
        assert_eq!(journal_entries(&server).await, journal_after);

        // End of day skips the written-off loan.
        let (status, r) = server
            .call("POST", "/v1/lending/eod", Some(json!({"date": (today + chrono::Duration::days(160)).to_string()})))
            .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["loans_seen"], 0, "{r}");
        assert_eq!(r["interest_accrued_minor"], 0);
        assert_eq!(journal_entries(&server).await, journal_after);
        assert_eq!(loan(&server, &loan_id).await["loan"], after["loan"]);
        let (_, list) = server.call("GET", "/v1/lending/loans?status=written_off", None).await;
        assert!(list["loans"].as_array().unwrap().iter().any(|l| l["id"] == loan_id.as_str()), "{list}");

        drop(server);
        let (ok, out) = verify(&db).await;
        assert!(ok, "digibank verify failed: {out}");
    }
}

/// `digibank serve` with bad lending data settings exits with a clear message.
async fn serve_fails(args: &[&str], db: &str) -> String {
    serve_fails_with(args, db, &[]).await
}

async fn serve_fails_with(args: &[&str], db: &str, env: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--database-url", db])
        .args(args)
        .env("RUST_LOG", "error")
        .env_remove("DIGIBANK_LENDING_DATA_SOURCE")
        .env_remove("DIGIBANK_LENDING_DATA_DIR")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run digibank");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test]
async fn decisions_from_json_files_configured_at_start_up() {
    let dir = std::env::temp_dir().join(format!("digibank-lending-files-{}", uuid::Uuid::now_v7().simple()));
    for db in database_urls().await {
        let err = serve_fails(&["--lending-data-source", "files"], &db).await;
        assert!(err.contains("needs a data directory"), "{err}");
        let missing = dir.join("nope");
        let err =
            serve_fails(&["--lending-data-source", "files", "--lending-data-dir", missing.to_str().unwrap()], &db)
                .await;
        assert!(err.contains("does not exist"), "{err}");
        // The same settings from the environment and from `[lending]` in the config file.
        let env = [("DIGIBANK_LENDING_DATA_SOURCE", "files"), ("DIGIBANK_LENDING_DATA_DIR", missing.to_str().unwrap())];
        let err = serve_fails_with(&[], &db, &env).await;
        assert!(err.contains("does not exist"), "{err}");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("digibank.toml");
        std::fs::write(&config, "[lending]\ndata_source = \"files\"\n").unwrap();
        let err = serve_fails_with(&[], &db, &[("DIGIBANK_CONFIG", config.to_str().unwrap())]).await;
        assert!(err.contains("needs a data directory"), "{err}");

        // One applicant on file, with a severe current delinquency in the bureau file.
        let files = FileSource::new(&dir);
        let sim = Simulator::new(7);
        let mut applicant = sim.applicant("FILE-1", CustomerKind::Individual);
        applicant.name = "On File".into();
        files.write("applicant", "FILE-1", &applicant).unwrap();
        let mut bureau = lending::BureauSource::bureau_report(&sim, "FILE-1").unwrap().unwrap();
        bureau.current_dpd = 365;
        files.write("bureau", "FILE-1", &bureau).unwrap();

        let server =
            Server::start(&db, &["--lending-data-source", "files", "--lending-data-dir", dir.to_str().unwrap()]).await;
        let body = json!({"applicant_id": "FILE-1", "product_code": "instant_consumer"});
        let (status, d) = server.call("POST", "/v1/lending/applications", Some(body)).await;
        assert_eq!(status, 201, "{d}");
        assert_eq!(d["outcome"], "decline", "{d}");
        assert!(d["reason_codes"].as_array().unwrap().iter().any(|c| c == "severe_current_delinquency"), "{d}");
        assert_eq!(d["decision"]["inputs"]["applicant"]["name"], "On File");
        assert_eq!(d["decision"]["inputs"]["bureau"]["current_dpd"], 365);
        assert!(d["decision"]["inputs"]["social_security"].is_null());

        // No applicant file: a clear 422, no decision stored.
        let queue_before = queue_ids(&server).await;
        let body = json!({"applicant_id": "FILE-2", "product_code": "instant_consumer"});
        let (status, e) = server.call("POST", "/v1/lending/applications", Some(body)).await;
        assert_error(status, &e, 422, "data_source_error");
        assert!(e["error"]["message"].as_str().unwrap().contains("applicant/FILE-2.json"), "{e}");
        assert_eq!(queue_ids(&server).await, queue_before);

        // OWASP API10 (unsafe consumption): the files are another system's output. An id that
        // would leave the directory, a malformed record and an oversized one are clear 422s that
        // store nothing and name no server path.
        std::fs::write(dir.join("applicant").join("FILE-3.json"), "{\"name\": ").unwrap();
        std::fs::write(dir.join("applicant").join("FILE-4.json"), vec![b' '; 2 << 20]).unwrap();
        for (id, code, says) in [
            ("../../etc/passwd", "invalid_key", ""),
            ("FILE-3", "data_source_error", "applicant/FILE-3.json"),
            ("FILE-4", "data_source_error", "larger than"),
        ] {
            let body = json!({"applicant_id": id, "product_code": "instant_consumer"});
            let (status, e) = server.call("POST", "/v1/lending/applications", Some(body)).await;
            assert_eq!((status, e["error"]["code"].as_str()), (422, Some(code)), "{id}: {e}");
            let message = e["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{id}: {e}");
            assert!(!message.contains(dir.to_str().unwrap()), "{id}: the server's path leaks: {e}");
        }
        assert_eq!(queue_ids(&server).await, queue_before);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
