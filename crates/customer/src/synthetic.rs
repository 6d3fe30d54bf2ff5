//! A reproducible synthetic customer population (seeded ChaCha RNG) for tests, demos and
//! benchmarks. Customers follow personas (saver, investor, borrower, digital native, business)
//! so that holdings have realistic co-occurrence and every tag family has members.

use chrono::{Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{Channel, CustomerId, CustomerKind, KycStatus};
use crate::profile::{CreditGrade, CustomerFacts, MerchantSpend, RiskLevel, TxWindow};
use crate::tags::MERCHANT_CATEGORIES;

const INDUSTRIES: [&str; 8] = [
    "manufacturing",
    "wholesale_retail",
    "construction",
    "technology",
    "agriculture",
    "logistics",
    "catering",
    "healthcare",
];

#[derive(Clone, Copy)]
enum Persona {
    Saver,
    Investor,
    Borrower,
    Digital,
    Business,
}

/// `n` customers as of `as_of`; the same `(n, seed, as_of)` always gives the same population.
pub fn population(n: usize, seed: u64, as_of: NaiveDate) -> Vec<CustomerFacts> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|i| customer(&mut rng, i, as_of)).collect()
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

fn window(rng: &mut ChaCha8Rng, days: u32, per_month: f64, ticket: i64) -> TxWindow {
    let months = f64::from(days) / 30.0;
    let mut count = |rate: f64| -> u32 { (rate * months * rng.gen_range(0.6..1.4)).round() as u32 };
    let inflow_count = count(per_month * 0.3);
    let outflow_count = count(per_month * 0.7);
    let amount = |c: u32, rng: &mut ChaCha8Rng| i64::from(c) * ticket * rng.gen_range(50..150) / 100;
    TxWindow {
        inflow_count,
        inflow_minor: amount(inflow_count, rng) * 2,
        outflow_count,
        outflow_minor: amount(outflow_count, rng),
    }
}

fn customer(rng: &mut ChaCha8Rng, i: usize, as_of: NaiveDate) -> CustomerFacts {
    let persona = match rng.gen_range(0..100) {
        0..=24 => Persona::Saver,
        25..=44 => Persona::Investor,
        45..=64 => Persona::Borrower,
        65..=79 => Persona::Digital,
        _ => Persona::Business,
    };
    let kind = match persona {
        Persona::Business => pick(
            rng,
            &[CustomerKind::SoleProprietor, CustomerKind::Sme, CustomerKind::Sme, CustomerKind::CoreEnterprise],
        ),
        _ => CustomerKind::Individual,
    };
    let opened_on = as_of - Duration::days(rng.gen_range(5..5000));
    let mut f = CustomerFacts::empty(CustomerId::from_u128(i as u128 + 1), kind, opened_on, as_of);
    f.kyc = pick(rng, &[KycStatus::Verified; 12].iter().copied().chain(KycStatus::ALL).collect::<Vec<_>>());
    f.city_tier = Some(rng.gen_range(1..=6));
    if kind.is_business() {
        f.industry = Some(pick(rng, &INDUSTRIES).to_string());
        let (emp, rev) = match kind {
            CustomerKind::SoleProprietor => (rng.gen_range(1..10), rng.gen_range(10_000..2_000_000)),
            CustomerKind::Sme => (rng.gen_range(5..800), rng.gen_range(500_000..150_000_000)),
            _ => (rng.gen_range(500..20_000), rng.gen_range(50_000_000..5_000_000_000i64)),
        };
        f.employees = Some(emp);
        f.annual_revenue_minor = Some(rev * 100);
        f.tax_grade = Some(pick(rng, &["A", "A", "B", "B", "M", "C", "D"]).to_string());
    } else {
        let age_days = rng.gen_range(16 * 365..85 * 365);
        f.birth_date = Some(as_of - Duration::days(age_days));
    }
    let mut channels: Vec<Channel> = Channel::ALL.iter().copied().filter(|_| rng.gen_bool(0.45)).collect();
    if channels.is_empty() {
        channels.push(pick(rng, &Channel::ALL));
    }
    f.linked_channels = channels.clone();

    // Holdings by persona, plus a little noise.
    let (risk_choices, wanted): (&[RiskLevel], &[(&str, f64)]) = match persona {
        Persona::Saver => (
            &[RiskLevel::R1, RiskLevel::R2],
            &[
                ("demand_deposit", 0.95),
                ("time_deposit", 0.75),
                ("large_cd", 0.35),
                ("money_market_fund", 0.6),
                ("insurance_annuity", 0.45),
                ("bond_fund", 0.35),
            ],
        ),
        Persona::Investor => (
            &[RiskLevel::R3, RiskLevel::R4, RiskLevel::R5],
            &[
                ("demand_deposit", 0.95),
                ("money_market_fund", 0.5),
                ("balanced_fund", 0.6),
                ("index_fund", 0.55),
                ("equity_fund", 0.6),
                ("gold", 0.3),
                ("private_equity", 0.3),
                ("wealth_mgmt_r2", 0.4),
            ],
        ),
        Persona::Borrower => (
            &[RiskLevel::R1, RiskLevel::R2, RiskLevel::R3],
            &[
                ("demand_deposit", 0.95),
                ("credit_card", 0.8),
                ("consumer_loan", 0.65),
                ("mortgage", 0.45),
                ("insurance_annuity", 0.2),
            ],
        ),
        Persona::Digital => (
            &[RiskLevel::R2, RiskLevel::R3],
            &[
                ("demand_deposit", 0.9),
                ("money_market_fund", 0.8),
                ("credit_card", 0.55),
                ("index_fund", 0.4),
                ("consumer_loan", 0.3),
            ],
        ),
        Persona::Business => (
            &[RiskLevel::R2, RiskLevel::R3],
            &[
                ("business_account", 0.97),
                ("payroll_service", 0.6),
                ("pos_acquiring", 0.5),
                ("working_capital_loan", 0.5),
                ("supply_chain_finance", 0.35),
                ("cash_pooling", 0.3),
                ("fx_service", 0.25),
            ],
        ),
    };
    let risk = pick(rng, risk_choices);
    let catalog = crate::recommend::Catalog::standard();
    for (code, p) in wanted {
        if rng.gen_bool(*p) {
            f.holdings.push((*code).to_string());
        }
    }
    for product in catalog.products() {
        if product.risk <= risk && !f.holdings.contains(&product.code) && rng.gen_bool(0.02) {
            f.holdings.push(product.code.clone());
        }
    }
    if rng.gen_bool(0.9) {
        f.risk_level = Some(risk);
        f.risk_assessed_on = Some(as_of - Duration::days(rng.gen_range(0..700)));
    }
    f.credit_grade = Some(pick(rng, &CreditGrade::ALL));

    // Balances (minor units). Wealth scales follow a long tail.
    let scale: i64 = match rng.gen_range(0..100) {
        0..=49 => rng.gen_range(0..50_000),
        50..=79 => rng.gen_range(50_000..500_000),
        80..=94 => rng.gen_range(500_000..3_000_000),
        _ => rng.gen_range(3_000_000..50_000_000),
    } * 100;
    let has = |code: &str| f.holdings.iter().any(|h| h == code);
    let (held_time, held_wealth, held_ins, held_card, held_loan, held_mortgage, held_wc) = (
        has("time_deposit") || has("large_cd"),
        [
            "money_market_fund",
            "bond_fund",
            "wealth_mgmt_r2",
            "balanced_fund",
            "index_fund",
            "equity_fund",
            "gold",
            "private_equity",
        ]
        .iter()
        .any(|c| has(c)),
        has("insurance_annuity"),
        has("credit_card"),
        has("consumer_loan"),
        has("mortgage"),
        has("working_capital_loan") || has("supply_chain_finance"),
    );
    f.demand_deposits_minor = scale / rng.gen_range(2..10);
    f.time_deposits_minor = if held_time { scale / rng.gen_range(2..4) } else { 0 };
    f.wealth_minor = if held_wealth { scale / rng.gen_range(1..3) } else { 0 };
    f.insurance_minor = if held_ins { scale / rng.gen_range(5..20) } else { 0 };
    let aum = f.demand_deposits_minor + f.time_deposits_minor + f.wealth_minor + f.insurance_minor;
    if rng.gen_bool(0.8) {
        f.aum_90d_ago_minor = Some(aum * rng.gen_range(40..200) / 100);
    }
    if held_card {
        f.credit_limit_minor = rng.gen_range(5_000..100_000) * 100;
        f.card_balance_minor = f.credit_limit_minor * rng.gen_range(0..100) / 100;
    }
    f.loans_minor = (if held_loan { rng.gen_range(5_000..300_000) } else { 0 }
        + if held_mortgage { rng.gen_range(300_000..5_000_000) } else { 0 }
        + if held_wc { rng.gen_range(200_000..20_000_000) } else { 0 })
        * 100;
    if f.loans_minor > 0 && rng.gen_bool(0.12) {
        f.max_days_past_due = pick(rng, &[5, 15, 35, 65, 120]);
        f.overdue_minor = f.loans_minor / rng.gen_range(10..50);
    }

    // Behaviour: activity level, possibly dormant or slowing down.
    let (per_month, ticket) = match persona {
        Persona::Digital => (rng.gen_range(20.0..90.0), rng.gen_range(50..800) * 100),
        Persona::Business => (rng.gen_range(10.0..120.0), rng.gen_range(2_000..200_000) * 100),
        _ => (rng.gen_range(1.0..40.0), rng.gen_range(100..8_000) * 100),
    };
    let mode = rng.gen_range(0..100);
    let dormant = mode < 12;
    let slowing = (12..22).contains(&mode);
    f.tx_180d = window(rng, 180, per_month, ticket);
    if dormant {
        f.tx_30d = TxWindow::default();
        f.tx_90d = TxWindow::default();
        if rng.gen_bool(0.5) {
            f.tx_180d = TxWindow::default();
        }
        if f.tx_180d.inflow_count + f.tx_180d.outflow_count > 0 {
            f.last_transaction_on = Some(as_of - Duration::days(rng.gen_range(91..180)));
        } else if rng.gen_bool(0.8) {
            f.last_transaction_on = Some(as_of - Duration::days(rng.gen_range(180..900)));
        }
        if rng.gen_bool(0.6) {
            f.last_login_on = Some(as_of - Duration::days(rng.gen_range(90..500)));
        }
    } else {
        let factor = if slowing { 0.2 } else { rng.gen_range(0.8..1.6) };
        f.tx_90d = window(rng, 90, per_month * factor, ticket);
        f.tx_30d = window(rng, 30, per_month * factor, ticket);
        let tx90 = f.tx_90d.inflow_count + f.tx_90d.outflow_count;
        f.tx_180d.inflow_count = f.tx_180d.inflow_count.max(f.tx_90d.inflow_count) + f.tx_90d.inflow_count / 2;
        f.tx_180d.outflow_count = f.tx_180d.outflow_count.max(f.tx_90d.outflow_count) + f.tx_90d.outflow_count / 2;
        f.tx_180d.inflow_minor = f.tx_180d.inflow_minor.max(f.tx_90d.inflow_minor);
        f.tx_180d.outflow_minor = f.tx_180d.outflow_minor.max(f.tx_90d.outflow_minor);
        if tx90 > 0 {
            f.last_transaction_on = Some(as_of - Duration::days(rng.gen_range(0..30)));
        }
        f.last_login_on = Some(as_of - Duration::days(rng.gen_range(0..60)));
        f.logins_30d = match persona {
            Persona::Digital => rng.gen_range(8..60),
            _ => rng.gen_range(0..15),
        };
        let mut used: Vec<Channel> = channels.iter().copied().filter(|_| rng.gen_bool(0.7)).collect();
        if used.is_empty() {
            used.push(channels[0]);
        }
        f.channels_used_90d = used;
        if !kind.is_business() {
            let mut cats = MERCHANT_CATEGORIES.to_vec();
            cats.shuffle(rng);
            let k = rng.gen_range(0..5);
            f.merchant_spend_90d = cats
                .into_iter()
                .take(k)
                .map(|c| MerchantSpend {
                    category: c.to_string(),
                    count: rng.gen_range(1..30),
                    amount_minor: rng.gen_range(100..50_000) * 100,
                })
                .collect();
            if rng.gen_bool(0.45) {
                f.payroll_credits_90d = rng.gen_range(1..=4);
            }
        }
    }
    if rng.gen_bool(0.08) {
        f.complaints_90d = rng.gen_range(1..5);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible() {
        let d = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        assert_eq!(population(100, 9, d), population(100, 9, d));
        assert_ne!(population(100, 9, d), population(100, 10, d));
    }
}
