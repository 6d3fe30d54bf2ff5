//! Rough tag-evaluation throughput over a synthetic population:
//! `cargo run -p customer --example tag_bench`. Prints figures only.

use std::time::Instant;

use chrono::NaiveDate;
use customer::tags::profile_record;
use customer::{synthetic, Profile, TagRegistry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let as_of = NaiveDate::from_ymd_opt(2025, 6, 30).ok_or("bad date")?;
    let registry = TagRegistry::with_builtins()?;
    let facts = synthetic::population(20_000, 1, as_of);

    let start = Instant::now();
    let profiles: Vec<Profile> = facts.iter().map(Profile::compute).collect();
    let t_profile = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let records: Vec<_> = profiles.iter().map(profile_record).collect();
    let t_record = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut assigned = 0usize;
    for r in &records {
        assigned += registry.evaluate_record(r, false).len();
    }
    let t_eval = start.elapsed().as_secs_f64();
    let n = facts.len() as f64;
    let rules = n * registry.len() as f64;
    println!(
        "{} built-in tags, {} customers, {:.1} tags per customer",
        registry.len(),
        facts.len(),
        assigned as f64 / n
    );
    println!("profile:   {:>8.0} customers/s", n / t_profile);
    println!("record:    {:>8.0} customers/s", n / t_record);
    println!("all tags:  {:>8.0} customers/s  ({:.1} M rule evaluations/s)", n / t_eval, rules / t_eval / 1e6);
    Ok(())
}
