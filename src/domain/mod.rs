//! Pure domain types shared by every layer: symbols and their exchange specs, market and account
//! snapshots, intents and verdicts, orders, fills and degrade modes.
//!
//! Nothing here does IO or reads a clock. Money is `rust_decimal::Decimal` everywhere.

mod market;
mod money;
mod order;
mod symbol;

pub use market::{AccountSnapshot, Balance, MarketSnapshot, TradePrint};
pub use money::{Price, Qty, bps_of, decimal_from_str};
pub use order::{
    Anomaly, Fill, Intent, Mode, Order, OrderStatus, Severity, Side, TransitionError, Verdict,
};
pub use symbol::{Symbol, SymbolSpec};
