//! A reproducible synthetic customer population (seeded ChaCha RNG) for tests, demos and
//! benchmarks. Customers follow personas (saver, investor, borrower, digital native, business)
//! so that holdings have realistic co-occurrence and every tag family has members.

use chrono::{Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{Channel, CustomerId, CustomerKind, KycStatus};
use crate::profile::{CreditGrade, CustomerFacts, MerchantSpend, RiskLevel, TxWindow};
use crate::tags::{INDUSTRIES, MERCHANT_CATEGORIES};

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
    population_iter(n, seed, as_of).collect()
}

/// The same population as [`population`], generated lazily (for millions of customers).
pub fn population_iter(n: usize, seed: u64, as_of: NaiveDate) -> impl Iterator<Item = CustomerFacts> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(move |i| customer(&mut rng, i, as_of))
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
        // A 90-day window contains the 30-day one.
        f.tx_90d.inflow_count = f.tx_90d.inflow_count.max(f.tx_30d.inflow_count);
        f.tx_90d.inflow_minor = f.tx_90d.inflow_minor.max(f.tx_30d.inflow_minor);
        f.tx_90d.outflow_count = f.tx_90d.outflow_count.max(f.tx_30d.outflow_count);
        f.tx_90d.outflow_minor = f.tx_90d.outflow_minor.max(f.tx_30d.outflow_minor);
        let tx90 = f.tx_90d.inflow_count + f.tx_90d.outflow_count;
        f.tx_180d.inflow_count = f.tx_180d.inflow_count.max(f.tx_90d.inflow_count) + f.tx_90d.inflow_count / 2;
        f.tx_180d.outflow_count = f.tx_180d.outflow_count.max(f.tx_90d.outflow_count) + f.tx_90d.outflow_count / 2;
        f.tx_180d.inflow_minor = f.tx_180d.inflow_minor.max(f.tx_90d.inflow_minor);
        f.tx_180d.outflow_minor = f.tx_180d.outflow_minor.max(f.tx_90d.outflow_minor);
        // A longer window with no more transactions than a shorter one holds the same amounts.
        fn same_count_same_amount(short: TxWindow, long: &mut TxWindow) {
            if long.inflow_count == short.inflow_count {
                long.inflow_minor = short.inflow_minor;
            }
            if long.outflow_count == short.outflow_count {
                long.outflow_minor = short.outflow_minor;
            }
        }
        same_count_same_amount(f.tx_30d, &mut f.tx_90d);
        same_count_same_amount(f.tx_90d, &mut f.tx_180d);
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

/// Whether the customer churned in the 90 days after the facts' date, drawn from a fixed hidden
/// process (activity slowing down, complaints, no salary account, few products, no recent login,
/// falling AUM, short tenure) plus noise. The churn model never sees this function: it has to
/// learn it from [`crate::ChurnFeatures`], which is what makes the held-out AUC meaningful.
pub fn churn_outcome(facts: &CustomerFacts, rng: &mut ChaCha8Rng) -> bool {
    let p = crate::Profile::compute(facts);
    let f = crate::ChurnFeatures::from_profile(&p);
    let mut z = -1.6;
    if f.txn_trend.is_some_and(|t| t < 0.5) {
        z += 1.5;
    }
    if f.txn_count_90d == 0.0 {
        z += 1.2;
    }
    z += 0.9 * f.complaints_90d.min(3.0);
    if !f.is_payroll {
        z += 0.6;
    }
    z -= 0.3 * f.product_count.min(6.0);
    if f.days_since_last_login.is_none_or(|d| d > 60.0) {
        z += 0.8;
    }
    if f.aum_change_90d.is_some_and(|c| c < -0.5) {
        z += 1.0;
    }
    if f.tenure_months > 60.0 {
        z -= 0.5;
    }
    z += rng.gen_range(-0.5..0.5);
    rng.gen_bool(1.0 / (1.0 + (-z).exp()))
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高",
];
const GIVEN: [&str; 20] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "华",
    "平",
];
const REGIONS: [&str; 6] = ["110105", "310115", "440305", "330106", "510107", "320102"];
const FIRMS: [&str; 8] = ["恒通", "华信", "瑞丰", "金桥", "东方", "新创", "宏达", "远航"];
const FIRM_SUFFIX: [&str; 4] = ["科技有限公司", "贸易有限公司", "制造有限公司", "物流有限公司"];

/// A synthetic but valid identity for customer number `i`: a name, a resident ID (with the
/// facts' birth date and a correct MOD 11-2 check character) or a USCC for businesses, and a
/// mobile number. Deterministic in `(i, facts)`.
pub fn identity(i: usize, facts: &CustomerFacts) -> (String, String, String) {
    let region = REGIONS[i % REGIONS.len()];
    let phone = format!("+86139{:08}", (i as u64 * 7_919) % 100_000_000);
    if facts.kind.is_business() {
        let name = format!("{}{}{}", FIRMS[i % FIRMS.len()], FIRMS[(i / 8) % FIRMS.len()], FIRM_SUFFIX[i % 4]);
        return (name, uscc(region, i), phone);
    }
    let name = format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / 20) % GIVEN.len()]);
    let birth = facts.birth_date.unwrap_or_else(|| NaiveDate::from_ymd_opt(1980, 1, 1).expect("valid date"));
    let body = format!("{region}{}{:03}", birth.format("%Y%m%d"), i % 1000);
    let check = crate::validate::resident_id_check(&body);
    (name, format!("{body}{check}"), phone)
}

fn uscc(region: &str, i: usize) -> String {
    const CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let body = format!("91{region}{:09}", (i as u64 * 104_729) % 1_000_000_000);
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(c, w)| CHARS.iter().position(|&x| x == c).expect("digits only") as u32 * w)
        .sum();
    format!("{body}{}", CHARS[((31 - sum % 31) % 31) as usize] as char)
}

/// Six months of individual transactions consistent with the facts' 30/90/180-day windows
/// (counts exactly, amounts to the fen), so folding them with [`crate::activity::ActivityFold`]
/// reproduces the windows. Used by benchmarks that start from raw transactions.
pub fn activities(facts: &CustomerFacts, rng: &mut ChaCha8Rng) -> Vec<crate::activity::Activity> {
    use crate::activity::{Activity, Direction};
    let mut out = Vec::new();
    let windows = [(0i64, 30i64, facts.tx_30d), (30, 90, facts.tx_90d), (90, 180, facts.tx_180d)];
    let mut prev = TxWindow::default();
    for (from, to, w) in windows {
        for (direction, count, total) in [
            (Direction::Inflow, w.inflow_count.saturating_sub(prev.inflow_count), w.inflow_minor - prev.inflow_minor),
            (
                Direction::Outflow,
                w.outflow_count.saturating_sub(prev.outflow_count),
                w.outflow_minor - prev.outflow_minor,
            ),
        ] {
            let total = total.max(0);
            for k in 0..count {
                let share = total / i64::from(count) + if k == 0 { total % i64::from(count) } else { 0 };
                let merchant = (direction == Direction::Outflow && !facts.merchant_spend_90d.is_empty())
                    .then(|| facts.merchant_spend_90d[k as usize % facts.merchant_spend_90d.len()].category.clone());
                out.push(Activity {
                    on: facts.as_of - Duration::days(rng.gen_range(from..to)),
                    direction,
                    amount_minor: share,
                    channel: facts.channels_used_90d.first().copied(),
                    merchant_category: merchant,
                    payroll: false,
                });
            }
        }
        prev = w;
    }
    out
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

    #[test]
    fn identities_are_valid_documents() {
        let d = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        for (i, f) in population(300, 3, d).iter().enumerate() {
            let (name, number, phone) = identity(i, f);
            assert!(!name.is_empty());
            if f.kind.is_business() {
                crate::Uscc::parse(&number).unwrap();
            } else {
                assert_eq!(crate::ResidentId::parse(&number).unwrap().birth_date(), f.birth_date.unwrap());
            }
            crate::MobilePhone::parse(&phone).unwrap();
        }
    }

    #[test]
    fn activities_fold_back_into_the_windows() {
        let d = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for f in population(200, 4, d) {
            let mut fold = crate::activity::ActivityFold::new(d);
            for a in activities(&f, &mut rng) {
                fold.add(&a);
            }
            let mut g = f.clone();
            fold.apply(&mut g);
            assert_eq!((g.tx_30d, g.tx_90d), (f.tx_30d, f.tx_90d));
            assert_eq!(g.tx_180d, f.tx_180d);
        }
    }

    #[test]
    fn churn_rate_is_plausible() {
        let d = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pop = population(5_000, 2, d);
        let churned = pop.iter().filter(|f| churn_outcome(f, &mut rng)).count();
        assert!((500..2_500).contains(&churned), "{churned} of 5000");
    }
}
