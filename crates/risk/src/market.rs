//! Market risk: historical and parametric (variance-covariance) value at risk, expected
//! shortfall, and stress scenarios.
//!
//! Statistics are computed in `f64` on daily simple returns of a price history; every money
//! figure returned is an [`Amount`] in minor units, converted with the caller's [`Rounding`]
//! (use `Rounding::Up` to never understate a loss). Losses are reported as positive amounts.
//! Multi-day horizons scale one-day figures by the square root of the horizon.

use std::collections::HashMap;

use money::{Amount, Currency, Rounding};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::RiskError;

/// A holding of `quantity` units of an instrument priced in the portfolio currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub instrument: String,
    /// Units held; negative for a short position.
    pub quantity: f64,
    /// Modified duration, for rate shocks on interest-rate instruments.
    #[serde(default)]
    pub modified_duration: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Portfolio {
    pub currency: Currency,
    pub positions: Vec<Position>,
}

/// Daily closing prices in major units: `prices[day][i]` for `instruments[i]`, oldest day first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceHistory {
    pub instruments: Vec<String>,
    pub prices: Vec<Vec<f64>>,
}

impl PriceHistory {
    fn validate(&self, min_days: usize) -> Result<(), RiskError> {
        if self.prices.len() < min_days {
            return Err(RiskError::MarketData(format!(
                "{} days of prices, at least {min_days} needed",
                self.prices.len()
            )));
        }
        for (d, row) in self.prices.iter().enumerate() {
            if row.len() != self.instruments.len() {
                return Err(RiskError::MarketData(format!("day {d} has {} prices", row.len())));
            }
            if let Some(i) = row.iter().position(|p| !(p.is_finite() && *p > 0.0)) {
                return Err(RiskError::MarketData(format!(
                    "price of {} on day {d} must be positive",
                    self.instruments[i]
                )));
            }
        }
        Ok(())
    }

    fn latest(&self) -> &[f64] {
        self.prices.last().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Daily simple returns, `returns[t][i]`.
    fn returns(&self) -> Vec<Vec<f64>> {
        self.prices.windows(2).map(|w| w[1].iter().zip(&w[0]).map(|(b, a)| b / a - 1.0).collect()).collect()
    }
}

/// Parameters of a VaR computation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VarConfig {
    /// E.g. 0.99.
    pub confidence: f64,
    pub horizon_days: u32,
    pub rounding: Rounding,
}

impl Default for VarConfig {
    fn default() -> Self {
        VarConfig { confidence: 0.99, horizon_days: 1, rounding: Rounding::Up }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarMethod {
    Historical,
    Parametric,
}

/// A VaR / ES result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarReport {
    pub method: VarMethod,
    pub confidence: f64,
    pub horizon_days: u32,
    pub portfolio_value: Amount,
    pub value_at_risk: Amount,
    pub expected_shortfall: Amount,
    /// Number of return observations used.
    pub observations: usize,
}

/// Converts a major-unit `f64` into minor units with an explicit rounding.
pub fn to_amount(value: f64, currency: Currency, rounding: Rounding) -> Result<Amount, RiskError> {
    let d = Decimal::from_f64(value)
        .ok_or_else(|| RiskError::MarketData(format!("figure {value} cannot be represented as money")))?;
    Ok(Amount::from_decimal(d, currency, rounding)?)
}

/// Current exposure (quantity x latest price, major units) per instrument of the history.
fn exposures(portfolio: &Portfolio, history: &PriceHistory) -> Result<Vec<f64>, RiskError> {
    let pos: HashMap<&str, usize> = history.instruments.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let latest = history.latest();
    let mut e = vec![0.0; history.instruments.len()];
    for p in &portfolio.positions {
        if !p.quantity.is_finite() {
            return Err(RiskError::MarketData(format!("quantity of {} must be finite", p.instrument)));
        }
        let i = *pos
            .get(p.instrument.as_str())
            .ok_or_else(|| RiskError::MarketData(format!("no price history for {}", p.instrument)))?;
        e[i] += p.quantity * latest[i];
    }
    Ok(e)
}

fn check_config(cfg: &VarConfig) -> Result<(), RiskError> {
    if !(cfg.confidence > 0.5 && cfg.confidence < 1.0) || cfg.horizon_days == 0 {
        return Err(RiskError::MarketData("confidence must be in (0.5, 1) and horizon_days >= 1".into()));
    }
    Ok(())
}

/// Historical-simulation VaR and ES: today's positions revalued with each past day's returns.
/// VaR is the empirical `confidence` quantile of losses (the smallest loss with at least
/// `confidence` of observations at or below it, no interpolation); ES is the mean of the losses
/// worse than VaR (VaR itself when none is).
pub fn historical_var(portfolio: &Portfolio, history: &PriceHistory, cfg: &VarConfig) -> Result<VarReport, RiskError> {
    check_config(cfg)?;
    history.validate(2)?;
    let e = exposures(portfolio, history)?;
    let mut losses: Vec<f64> =
        history.returns().iter().map(|r| -r.iter().zip(&e).map(|(ri, ei)| ri * ei).sum::<f64>()).collect();
    losses.sort_by(f64::total_cmp);
    let n = losses.len();
    let k = ((cfg.confidence * n as f64).ceil() as usize).clamp(1, n) - 1;
    let scale = f64::from(cfg.horizon_days).sqrt();
    let var = losses[k] * scale;
    let tail = if k + 1 < n { &losses[k + 1..] } else { &losses[k..] };
    let es = tail.iter().sum::<f64>() / tail.len() as f64 * scale;
    report(VarMethod::Historical, portfolio, &e, var, es, n, cfg)
}

/// Variance-covariance VaR and ES under zero-mean normal returns:
/// `VaR = z * sigma_p * sqrt(h)`, `ES = phi(z) / (1 - c) * sigma_p * sqrt(h)` with
/// `sigma_p^2 = e' Sigma e` over the sample covariance of daily returns.
pub fn parametric_var(portfolio: &Portfolio, history: &PriceHistory, cfg: &VarConfig) -> Result<VarReport, RiskError> {
    check_config(cfg)?;
    history.validate(3)?;
    let e = exposures(portfolio, history)?;
    let r = history.returns();
    let n = r.len();
    let d = e.len();
    let means: Vec<f64> = (0..d).map(|i| r.iter().map(|row| row[i]).sum::<f64>() / n as f64).collect();
    let mut var_p = 0.0;
    for i in 0..d {
        for j in 0..d {
            let cov = r.iter().map(|row| (row[i] - means[i]) * (row[j] - means[j])).sum::<f64>() / (n as f64 - 1.0);
            var_p += e[i] * e[j] * cov;
        }
    }
    let sigma = var_p.max(0.0).sqrt() * f64::from(cfg.horizon_days).sqrt();
    let z = inverse_normal_cdf(cfg.confidence);
    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    report(VarMethod::Parametric, portfolio, &e, z * sigma, pdf / (1.0 - cfg.confidence) * sigma, n, cfg)
}

fn report(
    method: VarMethod,
    portfolio: &Portfolio,
    e: &[f64],
    var: f64,
    es: f64,
    observations: usize,
    cfg: &VarConfig,
) -> Result<VarReport, RiskError> {
    let c = portfolio.currency;
    Ok(VarReport {
        method,
        confidence: cfg.confidence,
        horizon_days: cfg.horizon_days,
        portfolio_value: to_amount(e.iter().sum(), c, Rounding::Bankers)?,
        value_at_risk: to_amount(var, c, cfg.rounding)?,
        expected_shortfall: to_amount(es, c, cfg.rounding)?,
        observations,
    })
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let p_low = 0.02425;
    if p < p_low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - p_low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -inverse_normal_cdf(1.0 - p)
    }
}

/// How a scenario moves one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShockKind {
    /// Price x (1 + change), e.g. -0.3 for a 30% fall.
    Relative { change: f64 },
    /// Price + delta (major units).
    Absolute { delta: f64 },
    /// Yield moves by `bps` basis points; price changes by `-duration x dy x price`
    /// (requires the position's modified duration).
    RateBps { bps: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shock {
    pub instrument: String,
    #[serde(flatten)]
    pub kind: ShockKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressScenario {
    pub name: String,
    pub shocks: Vec<Shock>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionPnl {
    pub instrument: String,
    pub pnl: Amount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StressResult {
    pub scenario: String,
    pub value_before: Amount,
    pub value_after: Amount,
    /// `value_after - value_before` (negative = loss), rounded per position then summed, so the
    /// per-position figures add up exactly.
    pub pnl: Amount,
    pub positions: Vec<PositionPnl>,
}

/// Revalues the portfolio at `prices` (major units) after applying the scenario's shocks.
pub fn stress_test(
    portfolio: &Portfolio,
    prices: &HashMap<String, f64>,
    scenario: &StressScenario,
    rounding: Rounding,
) -> Result<StressResult, RiskError> {
    let c = portfolio.currency;
    let mut before = 0.0;
    let mut pnl_total = Amount::zero(c);
    let mut positions = Vec::with_capacity(portfolio.positions.len());
    for p in &portfolio.positions {
        let price = *prices
            .get(&p.instrument)
            .filter(|v| v.is_finite() && **v > 0.0)
            .ok_or_else(|| RiskError::MarketData(format!("no valid price for {}", p.instrument)))?;
        let mut shocked = price;
        for s in scenario.shocks.iter().filter(|s| s.instrument == p.instrument) {
            shocked = match s.kind {
                ShockKind::Relative { change } => shocked * (1.0 + change),
                ShockKind::Absolute { delta } => shocked + delta,
                ShockKind::RateBps { bps } => {
                    let d = p.modified_duration.ok_or_else(|| {
                        RiskError::MarketData(format!("rate shock on {} needs a modified duration", p.instrument))
                    })?;
                    shocked * (1.0 - d * bps / 10_000.0)
                }
            };
        }
        if !shocked.is_finite() {
            return Err(RiskError::MarketData(format!("shocked price of {} is not finite", p.instrument)));
        }
        shocked = shocked.max(0.0);
        before += p.quantity * price;
        let pnl = to_amount(p.quantity * (shocked - price), c, rounding)?;
        pnl_total = pnl_total.checked_add(pnl)?;
        positions.push(PositionPnl { instrument: p.instrument.clone(), pnl });
    }
    let value_before = to_amount(before, c, Rounding::Bankers)?;
    Ok(StressResult {
        scenario: scenario.name.clone(),
        value_before,
        value_after: value_before.checked_add(pnl_total)?,
        pnl: pnl_total,
        positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn history(days: usize, seed: u64) -> PriceHistory {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut prices = vec![vec![100.0, 50.0]];
        for _ in 1..days {
            let last = prices.last().unwrap().clone();
            let common: f64 = rng.gen_range(-0.02..0.02);
            prices.push(vec![
                last[0] * (1.0 + common + rng.gen_range(-0.01..0.01)),
                last[1] * (1.0 + 0.5 * common + rng.gen_range(-0.01..0.01)),
            ]);
        }
        PriceHistory { instruments: vec!["EQ".into(), "BOND".into()], prices }
    }

    fn portfolio() -> Portfolio {
        Portfolio {
            currency: Currency::CNY,
            positions: vec![
                Position { instrument: "EQ".into(), quantity: 1_000.0, modified_duration: None },
                Position { instrument: "BOND".into(), quantity: 2_000.0, modified_duration: Some(5.0) },
            ],
        }
    }

    #[test]
    fn historical_var_on_a_known_distribution() {
        // One instrument, returns -5%, -4%, ..., +4% (10 days) on a 1000-unit position at price 100.
        let mut prices = vec![100.0];
        for r in [-0.05, -0.04, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04] {
            let last = *prices.last().unwrap();
            prices.push(last * (1.0 + r));
        }
        let h = PriceHistory { instruments: vec!["X".into()], prices: prices.into_iter().map(|p| vec![p]).collect() };
        let latest = h.latest()[0];
        let p = Portfolio {
            currency: Currency::CNY,
            positions: vec![Position { instrument: "X".into(), quantity: 10.0, modified_duration: None }],
        };
        let cfg = VarConfig { confidence: 0.8, horizon_days: 1, rounding: Rounding::Up };
        let r = historical_var(&p, &h, &cfg).unwrap();
        // Losses sorted: -4%, ..., 5%; the 80% quantile is the 8th of 10 = a 3% loss; ES = mean(4%, 5%).
        let exposure = 10.0 * latest;
        assert_eq!(r.value_at_risk, to_amount(0.03 * exposure, Currency::CNY, Rounding::Up).unwrap());
        assert_eq!(r.expected_shortfall, to_amount(0.045 * exposure, Currency::CNY, Rounding::Up).unwrap());
        assert_eq!(r.observations, 10);
        let r4 = historical_var(&p, &h, &VarConfig { horizon_days: 4, ..cfg }).unwrap();
        assert!((r4.value_at_risk.minor - 2 * r.value_at_risk.minor).abs() <= 1);
    }

    #[test]
    fn parametric_and_historical_agree_roughly() {
        let h = history(500, 3);
        let cfg = VarConfig::default();
        let hist = historical_var(&portfolio(), &h, &cfg).unwrap();
        let para = parametric_var(&portfolio(), &h, &cfg).unwrap();
        assert!(hist.value_at_risk.minor > 0 && para.value_at_risk.minor > 0);
        assert!(para.expected_shortfall.minor > para.value_at_risk.minor);
        assert!(hist.expected_shortfall.minor >= hist.value_at_risk.minor);
        let ratio = hist.value_at_risk.minor as f64 / para.value_at_risk.minor as f64;
        assert!((0.6..1.5).contains(&ratio), "hist {hist:?} para {para:?}");
        assert_eq!(hist.portfolio_value, para.portfolio_value);
        assert!((inverse_normal_cdf(0.99) - 2.326_347_874).abs() < 1e-6);
        assert!((inverse_normal_cdf(0.5)).abs() < 1e-12);
    }

    #[test]
    fn bad_market_data_is_an_error() {
        let mut h = history(10, 1);
        assert!(historical_var(&portfolio(), &h, &VarConfig { confidence: 1.0, ..VarConfig::default() }).is_err());
        h.prices[3][1] = -1.0;
        assert!(matches!(historical_var(&portfolio(), &h, &VarConfig::default()), Err(RiskError::MarketData(_))));
        let mut p = portfolio();
        p.positions[0].instrument = "UNKNOWN".into();
        assert!(parametric_var(&p, &history(10, 1), &VarConfig::default()).is_err());
        assert!(parametric_var(&portfolio(), &history(2, 1), &VarConfig::default()).is_err());
    }

    #[test]
    fn stress_scenarios_revalue() {
        let prices: HashMap<String, f64> = [("EQ".to_string(), 100.0), ("BOND".to_string(), 50.0)].into();
        let s = StressScenario {
            name: "crash".into(),
            shocks: vec![
                Shock { instrument: "EQ".into(), kind: ShockKind::Relative { change: -0.3 } },
                Shock { instrument: "BOND".into(), kind: ShockKind::RateBps { bps: 100.0 } },
            ],
        };
        let r = stress_test(&portfolio(), &prices, &s, Rounding::HalfUp).unwrap();
        assert_eq!(r.value_before, Amount::new(20_000_000, Currency::CNY)); // 100k + 100k
        assert_eq!(r.positions[0].pnl, Amount::new(-3_000_000, Currency::CNY)); // -30% of 100k
        assert_eq!(r.positions[1].pnl, Amount::new(-500_000, Currency::CNY)); // -5 x 1% of 100k
        assert_eq!(r.pnl, Amount::new(-3_500_000, Currency::CNY));
        assert_eq!(r.value_after, Amount::new(16_500_000, Currency::CNY));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<StressScenario>(&json).unwrap(), s);
        let mut no_duration = portfolio();
        no_duration.positions[1].modified_duration = None;
        assert!(stress_test(&no_duration, &prices, &s, Rounding::HalfUp).is_err());
    }
}
