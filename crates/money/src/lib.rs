//! # money
//!
//! Owns the representation of money for every digibank domain:
//!
//! * [`Currency`]: an ISO 4217 code with its number of minor units (CNY has 2, JPY 0, ...).
//! * [`Amount`]: an integer count of minor units plus a currency. There are no floats anywhere;
//!   arithmetic is checked and overflow is an error ([`MoneyError::Overflow`]), never a wrap.
//! * [`Rate`] and [`Rounding`]: rates are `rust_decimal::Decimal`; every conversion from a
//!   decimal result back to minor units names its rounding rule, so each product states
//!   whether it uses banker's rounding or half-up.
//! * [`DayCount`]: day-count conventions for interest accrual.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Errors raised by money arithmetic and parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("arithmetic overflow")]
    Overflow,
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("unknown or malformed currency code {0:?}: expected a 3-letter ISO 4217 code")]
    BadCurrency(String),
    #[error("malformed amount {0:?}: {1}")]
    BadAmount(String, &'static str),
}

/// An ISO 4217 currency code, stored as three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema)]
#[schema(value_type = String, example = "CNY", pattern = "^[A-Z]{3}$")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const CNY: Currency = Currency(*b"CNY");
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const HKD: Currency = Currency(*b"HKD");
    pub const JPY: Currency = Currency(*b"JPY");

    /// Parses a 3-letter code. Any upper-case code is accepted so a bank can add currencies,
    /// but lower case or other lengths are rejected rather than silently normalised.
    pub fn new(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::BadCurrency(code.to_string()));
        }
        Ok(Currency([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn code(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).expect("currency code is ASCII")
    }

    /// Number of decimal places of the minor unit (ISO 4217 exponent).
    pub fn minor_units(&self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" | b"VND" | b"CLP" | b"ISK" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::new(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A signed amount of money in integer minor units (fen for CNY, cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Amount {
    /// Integer minor units of `currency` (12345 = 123.45 CNY).
    #[schema(example = 100000)]
    pub minor: i64,
    pub currency: Currency,
}

impl Amount {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Amount { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Amount { minor: 0, currency }
    }

    /// Parses a decimal string in major units ("1234.56") without going through a float.
    /// More decimal places than the currency has is an error, not a silent rounding.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let value = Decimal::from_str(text.trim())
            .map_err(|_| MoneyError::BadAmount(text.to_string(), "not a decimal number"))?;
        let scale = currency.minor_units();
        if value.normalize().scale() > scale {
            return Err(MoneyError::BadAmount(text.to_string(), "more decimal places than the currency allows"));
        }
        let minor =
            value.checked_mul(Decimal::from(10i64.pow(scale))).and_then(|m| m.to_i64()).ok_or(MoneyError::Overflow)?;
        Ok(Amount { minor, currency })
    }

    /// The amount in major units as an exact decimal.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.minor_units())
    }

    /// Converts a decimal amount in major units to minor units with an explicit rounding rule.
    pub fn from_decimal(value: Decimal, currency: Currency, rounding: Rounding) -> Result<Self, MoneyError> {
        let scale = currency.minor_units();
        let minor = value
            .checked_mul(Decimal::from(10i64.pow(scale)))
            .ok_or(MoneyError::Overflow)?
            .round_dp_with_strategy(0, rounding.strategy())
            .to_i64()
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount { minor, currency })
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(&other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Amount { minor, ..self })
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(&other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Amount { minor, ..self })
    }

    pub fn checked_neg(self) -> Result<Amount, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Amount { minor, ..self })
    }

    /// Multiplies by a rate (interest, fee percentage, FX) and rounds to minor units.
    pub fn mul_rate(self, rate: Rate, rounding: Rounding) -> Result<Amount, MoneyError> {
        let minor = Decimal::from(self.minor)
            .checked_mul(rate.0)
            .ok_or(MoneyError::Overflow)?
            .round_dp_with_strategy(0, rounding.strategy())
            .to_i64()
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount { minor, ..self })
    }

    /// Splits into `parts` amounts that differ by at most one minor unit and add up exactly.
    /// The first `remainder` parts carry the extra unit, so nothing is lost to rounding.
    pub fn allocate_evenly(self, parts: u32) -> Vec<Amount> {
        if parts == 0 {
            return Vec::new();
        }
        let n = i64::from(parts);
        let base = self.minor.div_euclid(n);
        let remainder = self.minor.rem_euclid(n);
        (0..n).map(|i| Amount { minor: base + i64::from(i < remainder), ..self }).collect()
    }

    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }

    fn same_currency(&self, other: &Amount) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

/// A rate (interest per period, fee ratio, FX) as an exact decimal: 0.0365 means 3.65%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "0.0365")]
pub struct Rate(pub Decimal);

impl Rate {
    pub fn new(value: Decimal) -> Self {
        Rate(value)
    }

    /// A rate from a number of basis points (1 bp = 0.01%).
    pub fn from_bps(bps: i64) -> Self {
        Rate(Decimal::new(bps, 4))
    }

    pub fn value(&self) -> Decimal {
        self.0
    }
}

/// Named rounding rules. Each product states which one it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Round half to even (banker's rounding): unbiased over many postings; default for accruals.
    Bankers,
    /// Round half away from zero: what customers expect on a quoted installment.
    HalfUp,
    /// Truncate toward zero: used where the bank must never overstate (e.g. advance limits).
    Down,
    /// Round away from zero.
    Up,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::Bankers => RoundingStrategy::MidpointNearestEven,
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::Down => RoundingStrategy::ToZero,
            Rounding::Up => RoundingStrategy::AwayFromZero,
        }
    }

    /// Rounds a decimal to `dp` places with this rule.
    pub fn round(self, value: Decimal, dp: u32) -> Decimal {
        value.round_dp_with_strategy(dp, self.strategy())
    }
}

/// Day-count conventions for interest accrual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayCount {
    /// Actual days / 360: the usual convention for CNY loans quoted per year.
    Act360,
    /// Actual days / 365.
    Act365,
    /// 30/360 (bond basis).
    Thirty360,
}

impl DayCount {
    /// The fraction of a year between two dates under this convention.
    pub fn year_fraction(self, from: NaiveDate, to: NaiveDate) -> Decimal {
        use chrono::Datelike;
        match self {
            DayCount::Act360 => Decimal::from((to - from).num_days()) / Decimal::from(360),
            DayCount::Act365 => Decimal::from((to - from).num_days()) / Decimal::from(365),
            DayCount::Thirty360 => {
                let d1 = from.day().min(30) as i64;
                let d2 = if d1 == 30 { to.day().min(30) } else { to.day() } as i64;
                let days = 360 * (to.year() as i64 - from.year() as i64)
                    + 30 * (to.month() as i64 - from.month() as i64)
                    + (d2 - d1);
                Decimal::from(days) / Decimal::from(360)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        // A tiny helper so tests read like decimals without pulling in another macro crate.
        pub fn dec(s: &str) -> rust_decimal::Decimal {
            s.parse().unwrap()
        }
    }

    #[test]
    fn parses_major_units_exactly() {
        let a = Amount::parse_major("1234.56", Currency::CNY).unwrap();
        assert_eq!(a.minor, 123_456);
        assert_eq!(a.to_string(), "1234.56 CNY");
        assert_eq!(Amount::parse_major("100", Currency::JPY).unwrap().minor, 100);
        assert!(matches!(Amount::parse_major("1.001", Currency::CNY), Err(MoneyError::BadAmount(_, _))));
        assert!(Amount::parse_major("abc", Currency::CNY).is_err());
    }

    #[test]
    fn rejects_bad_currency_codes() {
        assert!(Currency::new("cny").is_err());
        assert!(Currency::new("CN").is_err());
        assert!(serde_json::from_str::<Currency>("\"USDX\"").is_err());
        assert_eq!(serde_json::from_str::<Currency>("\"CNY\"").unwrap(), Currency::CNY);
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Amount::new(i64::MAX, Currency::CNY);
        assert_eq!(max.checked_add(Amount::new(1, Currency::CNY)), Err(MoneyError::Overflow));
        assert!(matches!(max.checked_add(Amount::new(1, Currency::USD)), Err(MoneyError::CurrencyMismatch(_, _))));
        assert_eq!(Amount::new(i64::MIN, Currency::CNY).checked_neg(), Err(MoneyError::Overflow));
    }

    #[test]
    fn rounding_rules_differ_on_midpoints() {
        let a = Amount::new(250, Currency::CNY); // 2.50
        let half = Rate::new(dec("0.01")); // 2.5 fen
        assert_eq!(a.mul_rate(half, Rounding::Bankers).unwrap().minor, 2);
        assert_eq!(a.mul_rate(half, Rounding::HalfUp).unwrap().minor, 3);
        assert_eq!(a.mul_rate(half, Rounding::Down).unwrap().minor, 2);
        assert_eq!(a.mul_rate(half, Rounding::Up).unwrap().minor, 3);
        let d = Amount::from_decimal(dec("10.005"), Currency::CNY, Rounding::HalfUp).unwrap();
        assert_eq!(d.minor, 1001);
    }

    #[test]
    fn day_counts() {
        let from = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(DayCount::Act360.year_fraction(from, to), dec("29") / dec("360"));
        assert_eq!(DayCount::Act365.year_fraction(from, to), dec("29") / dec("365"));
        assert_eq!(DayCount::Thirty360.year_fraction(from, to), dec("31") / dec("360"));
        assert_eq!(Rate::from_bps(150).value(), dec("0.015"));
    }

    proptest! {
        #[test]
        fn allocation_never_loses_a_cent(minor in -1_000_000_000_000i64..1_000_000_000_000, parts in 1u32..500) {
            let pieces = Amount::new(minor, Currency::CNY).allocate_evenly(parts);
            prop_assert_eq!(pieces.len(), parts as usize);
            prop_assert_eq!(pieces.iter().map(|p| p.minor).sum::<i64>(), minor);
            let max = pieces.iter().map(|p| p.minor).max().unwrap();
            let min = pieces.iter().map(|p| p.minor).min().unwrap();
            prop_assert!(max - min <= 1);
        }

        #[test]
        fn parse_and_display_round_trip(minor in any::<i64>()) {
            let a = Amount::new(minor, Currency::CNY);
            let text = a.to_decimal().to_string();
            prop_assert_eq!(Amount::parse_major(&text, Currency::CNY).unwrap(), a);
        }
    }
}
