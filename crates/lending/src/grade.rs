use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The bank's 10-grade credit scale, best first. `D` and `E` are never offered credit by the
/// shipped products; where the review band starts is a per-product setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum RiskGrade {
    AAA,
    AA,
    A,
    BBB,
    BB,
    B,
    CCC,
    C,
    D,
    E,
}

impl RiskGrade {
    pub const ALL: [RiskGrade; 10] = [
        RiskGrade::AAA,
        RiskGrade::AA,
        RiskGrade::A,
        RiskGrade::BBB,
        RiskGrade::BB,
        RiskGrade::B,
        RiskGrade::CCC,
        RiskGrade::C,
        RiskGrade::D,
        RiskGrade::E,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskGrade::AAA => "AAA",
            RiskGrade::AA => "AA",
            RiskGrade::A => "A",
            RiskGrade::BBB => "BBB",
            RiskGrade::BB => "BB",
            RiskGrade::B => "B",
            RiskGrade::CCC => "CCC",
            RiskGrade::C => "C",
            RiskGrade::D => "D",
            RiskGrade::E => "E",
        }
    }

    /// 0 for AAA .. 9 for E.
    pub fn rank(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RiskGrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
