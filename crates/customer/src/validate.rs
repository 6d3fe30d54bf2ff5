//! Validation of identity documents and phone numbers, and masking helpers for display and logs.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::CustomerError;

/// Province-level prefixes (first two digits) of GB/T 2260 administrative division codes.
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82, 83, 91,
];

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// A validated 18-character PRC resident identity card number (GB 11643-1999).
///
/// Checked: length, digits, province prefix, birth date (a real calendar date, year >= 1900)
/// and the ISO 7064 MOD 11-2 check character. A lower-case `x` is normalised to `X`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId(String);

impl ResidentId {
    pub fn parse(input: &str) -> Result<Self, CustomerError> {
        let bad = |reason: &str| CustomerError::InvalidResidentId(reason.to_string());
        let s = input.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(bad("must be 18 characters"));
        }
        let b = s.as_bytes();
        if !b[..17].iter().all(u8::is_ascii_digit) {
            return Err(bad("the first 17 characters must be digits"));
        }
        if !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(bad("the last character must be a digit or X"));
        }
        let province = (b[0] - b'0') * 10 + (b[1] - b'0');
        if !PROVINCES.contains(&province) {
            return Err(bad("unknown province code in the first two digits"));
        }
        let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
        let year = num(6..10) as i32;
        if year < 1900 {
            return Err(bad("birth year before 1900"));
        }
        if NaiveDate::from_ymd_opt(year, num(10..12), num(12..14)).is_none() {
            return Err(bad("digits 7-14 are not a valid birth date (YYYYMMDD)"));
        }
        if resident_id_check(&s[..17]) as u8 != b[17] {
            return Err(bad("check character does not match (ISO 7064 MOD 11-2)"));
        }
        Ok(ResidentId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The birth date encoded in digits 7-14 (validated on parse).
    pub fn birth_date(&self) -> NaiveDate {
        let num = |r: std::ops::Range<usize>| self.0[r].parse::<u32>().unwrap_or(1);
        NaiveDate::from_ymd_opt(num(6..10) as i32, num(10..12), num(12..14)).unwrap_or_default()
    }

    /// Gender from the sequence digit (odd = male).
    pub fn is_male(&self) -> bool {
        self.0.as_bytes()[16] % 2 == 1
    }

    /// Six-digit administrative division code of the issuing place.
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }
}

/// Never prints the number in clear: `Debug` is masked so it cannot leak through logs.
impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl TryFrom<String> for ResidentId {
    type Error = CustomerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ResidentId::parse(&s)
    }
}

impl From<ResidentId> for String {
    fn from(id: ResidentId) -> String {
        id.0
    }
}

const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// A validated 18-character Unified Social Credit Code (GB 32100-2015) of a business.
///
/// Checked: length, alphabet (digits and upper-case letters without I, O, Z, S, V), the
/// registration authority digit and the MOD 31 check character.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc(String);

impl Uscc {
    pub fn parse(input: &str) -> Result<Self, CustomerError> {
        let bad = |reason: &str| CustomerError::InvalidUscc(reason.to_string());
        let s = input.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(bad("must be 18 characters"));
        }
        let values: Option<Vec<u32>> =
            s.bytes().map(|c| USCC_CHARS.iter().position(|&x| x == c).map(|p| p as u32)).collect();
        let values = values.ok_or_else(|| bad("only digits and letters other than I, O, Z, S, V are allowed"))?;
        if !matches!(s.as_bytes()[0], b'1'..=b'9' | b'A' | b'N' | b'Y') {
            return Err(bad("unknown registration authority in the first character"));
        }
        if !s.as_bytes()[2..8].iter().all(u8::is_ascii_digit) {
            return Err(bad("characters 3-8 must be an administrative division code"));
        }
        let sum: u32 = values[..17].iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
        let check = (31 - sum % 31) % 31;
        if values[17] != check {
            return Err(bad("check character does not match (GB 32100 MOD 31)"));
        }
        Ok(Uscc(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({})", self.0)
    }
}

impl TryFrom<String> for Uscc {
    type Error = CustomerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Uscc::parse(&s)
    }
}

impl From<Uscc> for String {
    fn from(id: Uscc) -> String {
        id.0
    }
}

/// A validated mainland China mobile number, stored as `+86` followed by 11 digits.
///
/// Accepted input: `+8613812345678`, `008613812345678`, `13812345678`, with optional spaces or
/// hyphens. The national number must start with `13`..`19`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobilePhone(String);

impl MobilePhone {
    pub fn parse(input: &str) -> Result<Self, CustomerError> {
        let bad = |reason: &str| CustomerError::InvalidPhone(reason.to_string());
        let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let national = if let Some(rest) = compact.strip_prefix("+86") {
            rest
        } else if let Some(rest) = compact.strip_prefix("0086") {
            rest
        } else if compact.starts_with('+') {
            return Err(bad("only +86 (mainland China) numbers are supported"));
        } else {
            compact.as_str()
        };
        if national.len() != 11 || !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected 11 digits after +86"));
        }
        let b = national.as_bytes();
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(bad("a mobile number starts with 13 to 19"));
        }
        Ok(MobilePhone(format!("+86{national}")))
    }

    /// `+86` and the 11 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

impl fmt::Debug for MobilePhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobilePhone({})", self.masked())
    }
}

impl TryFrom<String> for MobilePhone {
    type Error = CustomerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MobilePhone::parse(&s)
    }
}

impl From<MobilePhone> for String {
    fn from(p: MobilePhone) -> String {
        p.0
    }
}

/// `110105194912310021` -> `110***********0021`: first 3 and last 4 characters kept.
/// Shorter inputs keep less so that at least half is always hidden.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.trim().chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= 12 { (3, 4) } else { (n / 4, n / 4) };
    chars.iter().enumerate().map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' }).collect()
}

/// `+8613812345678` -> `+86 138****5678`; anything else keeps its first 3 and last 4 digits.
pub fn mask_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.strip_prefix("86") {
        Some(rest) if rest.len() == 11 => rest.to_string(),
        _ => digits,
    };
    let n = national.len();
    let masked =
        if n >= 8 { format!("{}{}{}", &national[..3], "*".repeat(n - 7), &national[n - 4..]) } else { "*".repeat(n) };
    if phone.trim_start().starts_with("+86") {
        format!("+86 {masked}")
    } else {
        masked
    }
}

/// `张三` -> `张*`, `欧阳娜娜` -> `欧***`, `Alice Smith` -> `A**** S****`: keeps the first character
/// (of each word for space-separated names); a one-character name is fully hidden.
pub fn mask_name(name: &str) -> String {
    if name.trim().chars().count() <= 1 {
        return "*".repeat(name.trim().chars().count());
    }
    name.trim()
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().enumerate().map(|(i, c)| if i == 0 { c } else { '*' }).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The check character (ISO 7064 MOD 11-2) of a resident ID's first 17 digits. The caller
/// passes 17 ASCII digits.
pub fn resident_id_check(first17: &str) -> char {
    let sum: u32 = first17.bytes().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w).sum();
    ID_CHECK[(sum % 11) as usize] as char
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", resident_id_check(first17))
    }

    proptest! {
        #[test]
        fn generated_ids_validate_and_single_edits_fail(
            province in proptest::sample::select(PROVINCES.to_vec()),
            region in 0u32..10_000,
            days in 0i64..40_000,
            seq in 0u32..1000,
            pos in 0usize..17,
            delta in 1u8..10,
        ) {
            let birth = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
            let first17 = format!("{province:02}{region:04}{}{seq:03}", birth.format("%Y%m%d"));
            let id = with_check(&first17);
            let parsed = ResidentId::parse(&id).unwrap();
            prop_assert_eq!(parsed.birth_date(), birth);
            prop_assert_eq!(parsed.masked().len(), 18);
            // MOD 11-2 detects every single-digit substitution.
            let mut bytes = id.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let edited = String::from_utf8(bytes).unwrap();
            prop_assert!(ResidentId::parse(&edited).is_err(), "{}", edited);
        }

        #[test]
        fn parsers_and_masks_never_panic(s in "\\PC{0,24}") {
            let _ = ResidentId::parse(&s);
            let _ = Uscc::parse(&s);
            let _ = MobilePhone::parse(&s);
            prop_assert_eq!(mask_id_number(&s).chars().count(), s.trim().chars().count());
            let _ = mask_phone(&s);
            let _ = mask_name(&s);
        }
    }

    #[test]
    fn resident_ids() {
        let id = ResidentId::parse("11010519491231002x").expect("valid id");
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert!(!id.is_male());
        assert_eq!(id.region_code(), "110105");
        assert!(ResidentId::parse("110101199003074477").unwrap().is_male());
        let reason = |s: &str| ResidentId::parse(s).unwrap_err().to_string();
        assert!(reason("11010519491231002").contains("18 characters"));
        assert!(reason("110105194912310021").contains("check character"));
        assert!(reason("110105194902300021").contains("valid birth date"));
        assert!(reason("99010519491231002X").contains("province"));
        assert!(reason("1101051949123100AX").contains("digits"));
        assert!(reason("110105189912310021").contains("before 1900"));
        assert_eq!(format!("{id:?}"), "ResidentId(110***********002X)");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"11010519491231002X\"");
        assert!(serde_json::from_str::<ResidentId>("\"110105194912310021\"").is_err());
    }

    #[test]
    fn social_credit_codes() {
        for ok in ["91350100M000100Y43", "91110000802100433B", "91440300708461136t"] {
            assert!(Uscc::parse(ok).is_ok(), "{ok}");
        }
        let reason = |s: &str| Uscc::parse(s).unwrap_err().to_string();
        assert!(reason("91350100M000100Y44").contains("check character"));
        assert!(reason("91350100M000100YI3").contains("letters other than"));
        assert!(reason("9135").contains("18 characters"));
    }

    #[test]
    fn phones() {
        for ok in ["+8613812345678", "+86 138-1234-5678", "13812345678", "008619912345678"] {
            assert!(MobilePhone::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(MobilePhone::parse("138 1234 5678").unwrap().as_str(), "+8613812345678");
        let reason = |s: &str| MobilePhone::parse(s).unwrap_err().to_string();
        assert!(reason("+8612812345678").contains("13 to 19"));
        assert!(reason("+86138123456").contains("11 digits"));
        assert!(reason("+14155550100").contains("+86"));
        assert_eq!(MobilePhone::parse("13812345678").unwrap().masked(), "+86 138****5678");
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id_number("110105194912311234"), "110***********1234");
        assert_eq!(mask_id_number("12345678"), "12****78");
        assert_eq!(mask_id_number(""), "");
        assert_eq!(mask_phone("+8613812345678"), "+86 138****5678");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("Alice  Smith"), "A**** S****");
        assert_eq!(mask_name("李"), "*");
    }
}
