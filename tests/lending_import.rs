//! Loan-book import through the real CLI (`digibank lending import`), checked through the real
//! server: every imported loan reconciles with its ledger accounts, the clearing account holds
//! the whole book, importing again changes nothing, bad books write nothing, and end of day
//! runs over imported loans. SQLite always, PostgreSQL when DATABASE_URL is set.

mod common;

use common::*;
use serde_json::{json, Value};

/// Runs `digibank lending import FILE`; (success, stdout, stderr).
async fn import(url: &str, file: &std::path::Path) -> (bool, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(["lending", "import", "--database-url", url])
        .arg(file)
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("run import");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn report(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().expect("report line")).expect("report JSON")
}

fn write_book(dir: &std::path::Path, name: &str, lines: &[Value]) -> std::path::PathBuf {
    let path = dir.join(name);
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&path, text.join("\n") + "\n").expect("write book");
    path
}

async fn loan_count(server: &Server) -> usize {
    let (status, page) = server.call("GET", "/v1/lending/loans?limit=500", None).await;
    assert_eq!(status, 200, "{page}");
    page["loans"].as_array().or(page.as_array()).expect("loan list").len()
}

#[tokio::test]
async fn a_loan_book_imports_reconciles_and_runs_end_of_day() {
    let dir = std::env::temp_dir().join(format!("digibank-import-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for url in database_urls().await {
        let server = Server::start(&url, &[]).await;
        let deposit = open(&server, deposit("importer")).await;
        let usd = open(
            &server,
            json!({"currency": "USD", "kind": "liability", "owner_type": "customer", "owner_id": "importer"}),
        )
        .await;
        // Aged loans of every kind (annuity, equal principal, bullet, revolving; current and
        // overdue in every bucket), as another system would hand them over.
        let portfolio = lending::bench::build_portfolio(40, 3);
        let line = |loan: &lending::Loan| json!({"loan": loan, "applicant_id": "C-import", "customer_account": deposit, "repayment_account": deposit});
        let book: Vec<Value> = portfolio.iter().map(line).collect();
        let good = write_book(&dir, "book.jsonl", &book);

        // Bad books are refused whole, naming the loan, and write nothing.
        let mut negative = book.clone();
        negative[7]["loan"]["principal"] = json!(-1);
        let mut twice = book.clone();
        twice[9] = book[3].clone();
        let mut product = book.clone();
        product[5]["loan"]["product_code"] = json!("no_such_product");
        let mut currency = book.clone();
        currency[2]["customer_account"] = json!(usd);
        let mut missing = book.clone();
        missing[4]["repayment_account"] = json!(uuid::Uuid::now_v7());
        let mut garbled = book.clone();
        garbled[6] = json!({"loan": "not a loan"});
        let cases = [
            (negative, "principal is negative", 7),
            (twice, "given twice", 3),
            (product, "no_such_product", 5),
            (currency, "holds USD", 2),
            (missing, "not found", 4),
        ];
        for (i, (lines, why, culprit)) in cases.into_iter().enumerate() {
            let path = write_book(&dir, &format!("bad-{i}.jsonl"), &lines);
            let (ok, _, err) = import(&url, &path).await;
            assert!(!ok, "{why}");
            assert!(err.contains(why), "{why}: {err}");
            let id = portfolio[culprit].id.0.to_string();
            assert!(err.contains(&id), "{why} names loan {id}: {err}");
        }
        let (ok, _, err) = import(&url, &write_book(&dir, "garbled.jsonl", &garbled)).await;
        assert!(!ok && err.contains("line 7"), "{err}");
        assert_eq!(loan_count(&server).await, 0, "a refused book writes nothing");

        let (ok, out, err) = import(&url, &good).await;
        assert!(ok, "{err}");
        let first = report(&out);
        assert_eq!(first["imported"], 40, "{first}");
        assert_eq!(first["already_present"], 0);
        let mut expected_total = 0;
        for loan in &portfolio {
            let view = common::loan(&server, &loan.id.0.to_string()).await;
            assert_reconciled(&view);
            assert_eq!(view["loan"]["status"], json!(loan.status), "{view}");
            assert_eq!(view["loan"]["dpd"], json!(loan.dpd));
            expected_total += loan.principal + loan.interest_receivable() + loan.penalty + loan.fees;
        }
        assert!(portfolio.iter().any(|l| l.status == lending::LoanStatus::Overdue));
        assert_eq!(first["opening_balance_minor"], expected_total);
        let clearing =
            lending_platform::accounts::gl_account(lending_platform::MIGRATION_CLEARING, money::Currency::CNY);
        assert_eq!(posted_balance(&server, &clearing.0.to_string()).await, expected_total);

        // Again: nothing changes.
        let journal = journal_entries(&server).await;
        let (ok, out, err) = import(&url, &good).await;
        assert!(ok, "{err}");
        let again = report(&out);
        assert_eq!((again["imported"].as_i64(), again["already_present"].as_i64()), (Some(0), Some(40)), "{again}");
        assert_eq!(journal_entries(&server).await, journal);

        // End of day runs over the imported book, and every loan still reconciles.
        let date = lending::bench::bench_date().to_string();
        let out = tokio::process::Command::new(BIN)
            .args(["lending", "eod", "--database-url", &url, "--date", &date])
            .env("RUST_LOG", "error")
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let eod = report(&String::from_utf8_lossy(&out.stdout));
        let open = portfolio.iter().filter(|l| !l.is_closed()).count() as i64;
        assert_eq!(eod["loans_processed"], open, "{eod}");
        assert!(eod["interest_accrued_minor"].as_i64().unwrap() > 0, "{eod}");
        for loan in &portfolio {
            let view = common::loan(&server, &loan.id.0.to_string()).await;
            assert_reconciled(&view);
            if !loan.is_closed() {
                assert_eq!(view["loan"]["last_eod"], date, "{view}");
            }
        }
        let (ok, verified) = verify(&url).await;
        assert!(ok, "{verified}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
