//! Trading pairs and the exchange's rules for them (tick size, scales, minimum notional).

use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A canonical pair name: upper case, no separator (`btc_try` → `BTCTRY`). Shared text: every
/// replayed event and order carries one, so a clone must not allocate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// # Errors
    /// When the name is empty or holds characters other than letters and digits after the
    /// separators `_`, `-` and `/` are removed.
    pub fn new(raw: &str) -> Result<Self, String> {
        let canon: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | '/'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if canon.is_empty() || !canon.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("invalid symbol {raw:?}"));
        }
        Ok(Self(Arc::from(canon)))
    }
    /// Whether `other` is this very value (the same shared text), not just an equal one.
    pub fn shares_text(&self, other: &Symbol) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
    /// The same name in text of its own: threads that each clone a symbol many times then
    /// never share its reference count.
    #[must_use]
    pub fn unshared(&self) -> Symbol {
        Symbol(Arc::from(&*self.0))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Symbol {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}
impl From<Symbol> for String {
    fn from(s: Symbol) -> Self {
        s.0.to_string()
    }
}
impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the exchange says about one pair (BTCTurk `exchangeinfo` → `symbols[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolSpec {
    pub symbol: Symbol,
    /// Base currency, e.g. `BTC`.
    pub base: String,
    /// Quote currency, e.g. `TRY`.
    pub quote: String,
    /// Decimals of a quantity (`numeratorScale`).
    pub qty_scale: u32,
    /// Decimals of a price (`denominatorScale`).
    pub price_scale: u32,
    /// Price grid step (`PRICE_FILTER.tickSize`); may be coarser than `price_scale`.
    pub tick_size: Decimal,
    /// Minimum order value in the quote currency (`minExchangeValue`).
    pub min_notional: Decimal,
    /// `false` means prices must be integers.
    pub has_fraction: bool,
    /// `true` when the exchange lists the pair as `TRADING`.
    pub trading: bool,
}

impl SymbolSpec {
    /// Rounds a price onto the pair's grid: towards the passive side (down for buys, up for sells)
    /// so quantizing never makes an order more aggressive than the strategy asked.
    pub fn quantize_price(&self, price: Decimal, round_up: bool) -> Decimal {
        let mut step = self.tick_size;
        if !self.has_fraction && step < Decimal::ONE {
            step = Decimal::ONE;
        }
        let scale_step = if self.has_fraction {
            Decimal::new(1, self.price_scale)
        } else {
            Decimal::ONE
        };
        if step <= Decimal::ZERO || step < scale_step {
            step = scale_step;
        }
        let units = price / step;
        let units = if round_up {
            units.ceil()
        } else {
            units.floor()
        };
        (units * step).normalize()
    }

    /// Truncates a quantity to the pair's quantity scale (never rounds up: that would spend
    /// money the risk check did not approve).
    pub fn quantize_qty(&self, qty: Decimal) -> Decimal {
        qty.round_dp_with_strategy(self.qty_scale, RoundingStrategy::ToZero)
            .normalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn spec(tick: &str, price_scale: u32, has_fraction: bool) -> SymbolSpec {
        SymbolSpec {
            symbol: Symbol::new("BTCTRY").unwrap(),
            base: "BTC".into(),
            quote: "TRY".into(),
            qty_scale: 8,
            price_scale,
            tick_size: d(tick),
            min_notional: d("99.91"),
            has_fraction,
            trading: true,
        }
    }

    #[test]
    fn symbols_are_canonical() {
        assert_eq!(Symbol::new("btc_try").unwrap().as_str(), "BTCTRY");
        assert!(Symbol::new("").is_err());
        assert!(Symbol::new("BTC TRY").is_err());
    }

    #[test]
    fn price_rounds_to_tick_towards_passive_side() {
        let s = spec("10", 0, false);
        assert_eq!(s.quantize_price(d("2345678.9"), false), d("2345670"));
        assert_eq!(s.quantize_price(d("2345671"), true), d("2345680"));
        let s = spec("0.001", 3, true);
        assert_eq!(s.quantize_price(d("34.56789"), false), d("34.567"));
    }

    #[test]
    fn integer_price_when_no_fraction() {
        let s = spec("0.01", 2, false);
        assert_eq!(s.quantize_price(d("100.75"), false), d("100"));
    }

    #[test]
    fn qty_truncates_to_scale() {
        let s = spec("10", 0, false);
        assert_eq!(s.quantize_qty(d("0.123456789")), d("0.12345678"));
    }
}
