//! `cargo bench -p lending`: decision latency with simulated adapters, and end of day.
use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use customer::CustomerKind;
use lending::bench::{bench_date, build_portfolio};
use lending::{decide, eod, DataSources, NoFraudCheck, Product, Simulator};

fn decisions(c: &mut Criterion) {
    let sim = Simulator::new(1);
    let sources = DataSources::simulated(1);
    let product = Product::instant_consumer();
    let now: DateTime<Utc> = sim.base_date.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let applicant = sim.applicant("C0000001", CustomerKind::Individual);
    let snapshot = sources.collect(&applicant, &product, sim.base_date).unwrap();
    let mut g = c.benchmark_group("decision");
    g.bench_function("decide (snapshot ready)", |b| {
        b.iter(|| decide(&product, black_box(&snapshot), &NoFraudCheck, now))
    });
    let mut i = 0u64;
    g.bench_function("collect + decide (simulated adapters)", |b| {
        b.iter(|| {
            i += 1;
            let a = sim.applicant(&format!("C{i:08}"), CustomerKind::Individual);
            let s = sources.collect(&a, &product, sim.base_date).unwrap();
            decide(&product, &s, &NoFraudCheck, now)
        })
    });
    g.finish();
}

fn end_of_day(c: &mut Criterion) {
    let portfolio = build_portfolio(10_000, 7);
    let mut g = c.benchmark_group("eod");
    g.throughput(Throughput::Elements(portfolio.len() as u64));
    g.sample_size(20);
    g.bench_function("10k loans, one day, sequential", |b| {
        b.iter_batched(
            || portfolio.clone(),
            |mut loans| {
                for l in loans.iter_mut() {
                    black_box(eod(l, bench_date()).unwrap());
                }
                loans
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, decisions, end_of_day);
criterion_main!(benches);
