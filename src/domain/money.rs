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
        if value > Decimal::ZERO {
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
        if value >= Decimal::ZERO {
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

/// `value * bps / 10000`, exact.
pub fn bps_of(value: Decimal, bps: Decimal) -> Decimal {
    value * bps / Decimal::from(10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

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
