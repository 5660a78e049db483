//! Money newtypes over `Decimal`. Constructors check the invariants, so a `Price` is always > 0
//! and a `Qty` is never negative.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A strictly positive price in the quote currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Price(Decimal);

impl Price {
    /// # Errors
    /// When `value` is zero or negative.
    pub fn new(value: Decimal) -> Result<Self, String> {
        // Sign tests, not comparisons: replays construct millions of these.
        if value.is_sign_positive() && !value.is_zero() {
            Ok(Self(value))
        } else {
            Err(format!("price must be > 0, got {value}"))
        }
    }
    pub fn value(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for Price {
    type Error = String;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}
impl From<Price> for Decimal {
    fn from(p: Price) -> Self {
        p.0
    }
}
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A non-negative quantity in the base currency.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Qty(Decimal);

impl Qty {
    pub const ZERO: Qty = Qty(Decimal::ZERO);
    /// # Errors
    /// When `value` is negative.
    pub fn new(value: Decimal) -> Result<Self, String> {
        if value.is_sign_positive() || value.is_zero() {
            Ok(Self(value))
        } else {
            Err(format!("quantity must be >= 0, got {value}"))
        }
    }
    pub fn value(self) -> Decimal {
        self.0
    }
}
impl TryFrom<Decimal> for Qty {
    type Error = String;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}
impl From<Qty> for Decimal {
    fn from(q: Qty) -> Self {
        q.0
    }
}
impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses a decimal as exchanges and CSV files write it: plain or scientific notation, with `.`
/// as the separator (a lone `,` is accepted as the separator too). Never goes through f64.
///
/// # Errors
/// When the text is not a number.
pub fn decimal_from_str(text: &str) -> Result<Decimal, String> {
    if let Some(d) = plain_decimal(text.as_bytes()) {
        return Ok(d);
    }
    let t = text.trim();
    let owned;
    let t = if t.contains(',') && !t.contains('.') {
        owned = t.replace(',', ".");
        owned.as_str()
    } else {
        t
    };
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map(|d| d.normalize())
        .map_err(|_| format!("not a decimal number: {text:?}"))
}

/// The common case of [`decimal_from_str`] without its general parser: `-?digits[.digits]`
/// with at most 18 significant digits, already normalized (no trailing fractional zeros).
/// `None` for anything else, which the general parser then reads. Replays parse millions of
/// prices and quantities, and this is most of their decoding time.
fn plain_decimal(bytes: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &[][..]),
    };
    if int_part.is_empty() || (frac_part.is_empty() && int_part.len() < digits.len()) {
        return None;
    }
    // Trailing fractional zeros carry no value: normalizing drops them.
    let frac_len = frac_part
        .iter()
        .rposition(|&b| b != b'0')
        .map_or(0, |i| i + 1);
    let frac_part = &frac_part[..frac_len];
    if int_part.len() + frac_part.len() > 18 {
        return None;
    }
    let mut mantissa: i64 = 0;
    for &b in int_part.iter().chain(frac_part) {
        if !b.is_ascii_digit() {
            return None;
        }
        mantissa = mantissa * 10 + i64::from(b - b'0');
    }
    if mantissa == 0 {
        return Some(Decimal::ZERO);
    }
    let scale = u32::try_from(frac_part.len()).ok()?;
    Some(Decimal::new(
        if negative { -mantissa } else { mantissa },
        scale,
    ))
}

/// `value * bps / 10000`, exact.
pub fn bps_of(value: Decimal, bps: Decimal) -> Decimal {
    value * bps / Decimal::from(10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(text: &str) -> Option<Decimal> {
        Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map(|d| d.normalize())
            .ok()
    }

    proptest::proptest! {
        /// The fast path reads exactly what the general parser reads (value and scale), and
        /// leaves to it what it does not take.
        #[test]
        fn plain_decimal_agrees_with_the_general_parser(text in "-?[0-9]{0,12}(\\.[0-9]{0,12})?") {
            if let Some(fast) = plain_decimal(text.as_bytes()) {
                let slow = general(&text);
                proptest::prop_assert_eq!(Some(fast), slow);
                proptest::prop_assert_eq!(fast.scale(), slow.map_or(99, |d| d.scale()));
                proptest::prop_assert_eq!(fast.to_string(), slow.map(|d| d.to_string()).unwrap_or_default());
            }
            proptest::prop_assert_eq!(decimal_from_str(&text).ok(), general(&text));
        }
    }

    #[test]
    fn plain_decimal_takes_the_usual_forms_and_leaves_the_rest() {
        for (text, expected) in [
            ("42.500", "42.5"),
            ("3500030", "3500030"),
            ("-0.00100", "-0.001"),
            ("-0", "0"),
            ("0.000", "0"),
            ("007.10", "7.1"),
        ] {
            assert_eq!(
                plain_decimal(text.as_bytes()).map(|d| d.to_string()),
                Some(expected.to_string()),
                "{text}"
            );
        }
        for text in [
            "",
            "-",
            ".5",
            "5.",
            "1e3",
            "+1",
            "1,5",
            "1.2.3",
            "1234567890123456789",
        ] {
            assert_eq!(plain_decimal(text.as_bytes()), None, "{text}");
        }
        assert_eq!(decimal_from_str(".5"), Ok(Decimal::new(5, 1)));
        assert_eq!(
            decimal_from_str("1234567890123456789.5").map(|d| d.to_string()),
            Ok("1234567890123456789.5".to_string())
        );
    }

    macro_rules! dec {
        ($s:literal) => {
            Decimal::from_str(stringify!($s)).unwrap()
        };
    }

    #[test]
    fn price_rejects_non_positive() {
        assert!(Price::new(Decimal::ZERO).is_err());
        assert!(Price::new(dec!(-1)).is_err());
        assert_eq!(Price::new(dec!(1.5)).unwrap().value(), dec!(1.5));
    }

    #[test]
    fn parses_exchange_number_forms() {
        assert_eq!(decimal_from_str("1,5").unwrap(), dec!(1.5));
        assert_eq!(decimal_from_str(" 0.10 ").unwrap(), dec!(0.1));
        assert_eq!(decimal_from_str("1e-8").unwrap(), dec!(0.00000001));
        assert!(decimal_from_str("abc").is_err());
    }

    #[test]
    fn bps_is_exact() {
        assert_eq!(bps_of(dec!(1000), dec!(15)), dec!(1.5));
    }
}
