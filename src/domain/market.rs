//! What the bot observes each cycle: per-symbol top of book and last trade, and the account.

use super::{Price, Qty, Side, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The last public trade seen for a symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradePrint {
    pub price: Price,
    pub qty: Qty,
    /// Taker side when the source says it.
    pub side: Option<Side>,
    pub ts_ms: i64,
}

/// One symbol's market at the moment of observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketSnapshot {
    pub symbol: Symbol,
    pub bid: Price,
    pub bid_qty: Qty,
    pub ask: Price,
    pub ask_qty: Qty,
    pub last_trade: Option<TradePrint>,
    /// Exchange timestamp of the book (ms since the epoch).
    pub exchange_ts_ms: i64,
    /// When the bot received it (ms since the epoch, from the shell's clock).
    pub received_ts_ms: i64,
}

impl MarketSnapshot {
    pub fn mid(&self) -> Decimal {
        (self.bid.value() + self.ask.value()) / Decimal::TWO
    }
    /// Spread in basis points of the mid; zero when the book is crossed or locked.
    pub fn spread_bps(&self) -> Decimal {
        let mid = self.mid();
        let spread = self.ask.value() - self.bid.value();
        if mid <= Decimal::ZERO || spread <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        (spread / mid * Decimal::from(10_000)).round_dp(4)
    }
}

/// One asset's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub asset: String,
    pub free: Decimal,
    pub locked: Decimal,
}

impl Balance {
    pub fn total(&self) -> Decimal {
        self.free + self.locked
    }
}

/// The account as the exchange reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub balances: Vec<Balance>,
}

impl AccountSnapshot {
    pub fn balance(&self, asset: &str) -> Option<&Balance> {
        self.balances.iter().find(|b| b.asset == asset)
    }
    pub fn free(&self, asset: &str) -> Decimal {
        self.balance(asset).map_or(Decimal::ZERO, |b| b.free)
    }
}
