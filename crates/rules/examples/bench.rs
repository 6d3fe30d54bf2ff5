//! Rough evaluation throughput: `cargo run -p rules --example bench`.
//! Prints figures only; never used as a pass/fail test.

use std::hint::black_box;
use std::time::Instant;

use rules::{compile_condition, Schema, Type, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema = Schema::new()
        .with("kind", Type::String)?
        .with("months_active", Type::Number)?
        .with("credit_grade", Type::String)?
        .with("sum_inflow_90d", Type::Number)?
        .with("aum", Type::Number)?
        .with("is_payroll", Type::Bool)?;
    let mut row = schema.row();
    row.set(&schema, "kind", "sme")?;
    row.set(&schema, "months_active", 30)?;
    row.set(&schema, "credit_grade", "AA")?;
    row.set(&schema, "sum_inflow_90d", "612345.67".parse::<rust_decimal::Decimal>()?)?;
    row.set(&schema, "aum", Value::from(120_000))?;
    row.set(&schema, "is_payroll", false)?;
    let rules = [
        r#"kind == "sme" and months_active >= 24 and credit_grade in ["AAA","AA","A"]"#,
        "sum_inflow_90d >= 500000.00 or aum >= 500000",
        "not is_payroll and (aum + sum_inflow_90d) / 2 > 100000",
    ];
    for src in rules {
        let rule = compile_condition(src, &schema)?;
        let n = 3_000_000u32;
        let start = Instant::now();
        let mut hits = 0u32;
        for _ in 0..n {
            hits += u32::from(black_box(&rule).matches(black_box(&row)));
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:>6.1} M evals/s  ({:>5.0} ns/eval, {hits} hits)  {src}",
            f64::from(n) / secs / 1e6,
            secs * 1e9 / f64::from(n)
        );
    }
    Ok(())
}
