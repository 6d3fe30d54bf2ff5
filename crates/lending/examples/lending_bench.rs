//! `cargo run --release -p lending --example lending_bench -- [decisions] [loans]`
fn main() {
    let mut args = std::env::args().skip(1);
    let decisions: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let loans: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let d = lending::bench::bench_decisions(decisions, 2026);
    println!("{}", serde_json::to_string_pretty(&d).unwrap());
    let e = lending::bench::bench_eod(loans);
    println!("{}", serde_json::to_string_pretty(&e).unwrap());
}
