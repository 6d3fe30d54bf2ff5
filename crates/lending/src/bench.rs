//! Benchmark helpers the CLI (`digibank bench lending ...`) and the criterion bench call:
//! [`bench_decisions`] (decisions per second and latency percentiles with every adapter
//! simulated) and [`bench_eod`] (one end of day over many in-memory loans, in parallel with rayon).

use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use customer::CustomerKind;
use money::{Amount, Currency};
use rayon::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::data::{DataSources, Simulator};
use crate::decision::{decide, NoFraudCheck, Outcome};
use crate::loan::{eod, Loan, LoanId};
use crate::offer::direct_contract;
use crate::product::Product;
use crate::schedule::RepaymentMethod;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionBenchReport {
    pub decisions: usize,
    pub threads: usize,
    pub seconds: f64,
    pub per_second: f64,
    /// Latency of one decision including the (simulated) data collection, in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub approve: usize,
    pub review: usize,
    pub decline: usize,
}

/// Runs `n` decisions (instant consumer, tax SME and supply chain in turn) for distinct
/// simulated applicants, single-threaded, each timed individually.
pub fn bench_decisions(n: usize, seed: u64) -> DecisionBenchReport {
    let sources = DataSources::simulated(seed);
    let sim = Simulator::new(seed);
    let products = [Product::instant_consumer(), Product::tax_sme(), Product::supply_chain()];
    let as_of = sim.base_date;
    let now: DateTime<Utc> = as_of.and_hms_opt(12, 0, 0).expect("valid time").and_utc();
    let mut lat = Vec::with_capacity(n);
    let (mut approve, mut review, mut decline) = (0, 0, 0);
    let start = Instant::now();
    for i in 0..n {
        let t0 = Instant::now();
        let product = &products[i % 3];
        let kind = if i % 3 == 0 { CustomerKind::Individual } else { CustomerKind::Sme };
        let applicant = sim.applicant(&format!("B{i:08}"), kind);
        let snapshot = sources.collect(&applicant, product, as_of).expect("simulated data");
        let d = decide(product, &snapshot, &NoFraudCheck, now);
        match d.outcome {
            Outcome::Approve => approve += 1,
            Outcome::Review => review += 1,
            Outcome::Decline => decline += 1,
        }
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let seconds = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    DecisionBenchReport {
        decisions: n,
        threads: 1,
        seconds,
        per_second: n as f64 / seconds.max(1e-9),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: lat.last().copied().unwrap_or(0.0),
        approve,
        review,
        decline,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EodBenchReport {
    pub loans: usize,
    pub threads: usize,
    pub build_seconds: f64,
    pub eod_seconds: f64,
    pub loans_per_second: f64,
    pub postings: usize,
    pub interest_posted_minor: i64,
    pub penalty_posted_minor: i64,
    pub overdue_loans: usize,
}

/// The business date the benchmark portfolio is aged to (its end of day runs on this date).
pub fn bench_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date")
}

/// Builds a synthetic portfolio of `n` loans aged to `bench_date() - 1`: annuity, equal
/// principal, interest-only and revolving lines with start dates over the last year; about one
/// in five borrowers stops paying, so the portfolio has overdue loans in every bucket. Built from
/// 500 templates that are aged day by day (with repayments), then cloned with distinct ids.
pub fn build_portfolio(n: usize, seed: u64) -> Vec<Loan> {
    let consumer = Product::instant_consumer();
    let sme = Product::tax_sme();
    let sc = Product::supply_chain();
    let end = bench_date() - Duration::days(1);
    let cny = |m: i64| Amount::new(m, Currency::CNY);
    let templates: Vec<Loan> = (0..500u64)
        .into_par_iter()
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
            let start = end - Duration::days(1 + (h % 360) as i64);
            let amount = 10_000_00 + (h % 490) as i64 * 1_000_00;
            let (product, method, rate, term) = match i % 10 {
                0..=4 => (&consumer, RepaymentMethod::EqualInstallment, Decimal::new(36 + (h % 120) as i64, 3), 12),
                5 | 6 => (&consumer, RepaymentMethod::EqualPrincipal, Decimal::new(50 + (h % 80) as i64, 3), 24),
                7 => (&sc, RepaymentMethod::InterestOnlyBullet, Decimal::new(45, 3), 12),
                _ => (&sme, RepaymentMethod::Revolving, Decimal::new(10 + (h % 10) as i64, 5), 12),
            };
            let c =
                direct_contract(product, &format!("T{i}"), cny(amount), rate, term, method, start).expect("contract");
            let (mut loan, _) = Loan::open(&c);
            if method == RepaymentMethod::Revolving {
                loan.draw(cny(amount * 6 / 10), start).expect("draw");
            }
            let pays = i % 5 != 0;
            let mut t = start;
            while t <= end {
                if pays {
                    let owed_now = match method {
                        RepaymentMethod::Revolving => loan.penalty + loan.fees + loan.overdue_interest(),
                        _ if loan.schedule.get(loan.next_installment).is_some_and(|l| l.due_date == t) => {
                            loan.total_outstanding()
                        }
                        _ => loan.penalty + loan.fees + loan.overdue_interest() + loan.overdue_principal(),
                    };
                    if owed_now > 0 && !loan.is_closed() {
                        loan.repay(cny(owed_now), t).expect("repay");
                    }
                }
                eod(&mut loan, t).expect("eod");
                t += Duration::days(1);
            }
            loan
        })
        .collect();
    (0..n)
        .into_par_iter()
        .map(|k| {
            let mut loan = templates[k % templates.len()].clone();
            // Spread over the id space like real (UUID v5) contract ids.
            loan.id = LoanId(Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("bench-loan:{seed}:{k}").as_bytes()));
            loan
        })
        .collect()
}

/// Builds `loans` loans ([`build_portfolio`]) and runs one end of day ([`bench_date`]) over all
/// of them in parallel.
pub fn bench_eod(loans: usize) -> EodBenchReport {
    let t0 = Instant::now();
    let mut portfolio = build_portfolio(loans, 7);
    let build_seconds = t0.elapsed().as_secs_f64();
    let date = bench_date();
    let t1 = Instant::now();
    let (postings, interest, penalty, overdue) = portfolio
        .par_iter_mut()
        .map(|loan| {
            let out = eod(loan, date).expect("eod");
            let mut interest = 0;
            let mut penalty = 0;
            for p in &out.postings {
                match p.purpose {
                    crate::PostingPurpose::InterestAccrual => interest += p.amount.minor,
                    crate::PostingPurpose::PenaltyAccrual => penalty += p.amount.minor,
                    _ => {}
                }
            }
            (out.postings.len(), interest, penalty, usize::from(loan.status == crate::LoanStatus::Overdue))
        })
        .reduce(|| (0, 0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3));
    let eod_seconds = t1.elapsed().as_secs_f64();
    EodBenchReport {
        loans,
        threads: rayon::current_num_threads(),
        build_seconds,
        eod_seconds,
        loans_per_second: loans as f64 / eod_seconds.max(1e-9),
        postings,
        interest_posted_minor: interest,
        penalty_posted_minor: penalty,
        overdue_loans: overdue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_benchmarks_run() {
        let d = bench_decisions(60, 1);
        assert_eq!(d.decisions, 60);
        assert_eq!(d.approve + d.review + d.decline, 60);
        assert!(d.p99_us >= d.p50_us);
        let e = bench_eod(2_000);
        assert_eq!(e.loans, 2_000);
        assert!(e.postings > 1_000 && e.interest_posted_minor > 0);
        assert!(e.overdue_loans > 0 && e.penalty_posted_minor > 0);
    }
}
