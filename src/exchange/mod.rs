//! The `Exchange` boundary: everything the cycle needs from a venue, and nothing else.
//!
//! Implementations: `replay` (a recorded or synthetic dataset with simulated fills). The BTCTurk
//! REST adapter and the simulated BTCTurk server come later behind the same trait.

pub mod btcturk;
pub mod exchange_info;
pub mod replay;
pub mod sim;

use crate::domain::{AccountSnapshot, Fill, MarketSnapshot, Order, Side, Symbol, SymbolSpec};
use crate::domain::{Price, Qty};
use async_trait::async_trait;

/// Errors split by what the caller does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Worth retrying later (timeouts, 5xx, rate limits).
    #[error("{endpoint}: transient: {message}")]
    Transient { endpoint: String, message: String },
    /// The exchange refused this request; retrying the same request will not help.
    #[error("{endpoint}: rejected ({code}): {message}")]
    Rejected {
        endpoint: String,
        code: String,
        message: String,
    },
    /// Anything else that makes the venue unusable (bad data, bad credentials).
    #[error("{endpoint}: {message}")]
    Permanent { endpoint: String, message: String },
}

/// A limit order the bot wants placed. The client id is persisted before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub client_id: String,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
}

/// The exchange's answer to a submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitAck {
    pub exchange_id: String,
}

/// What the bot reads and does at a venue.
#[async_trait]
pub trait Exchange: Send {
    /// A short name for logs (`replay`, `btcturk`).
    fn name(&self) -> &str;
    /// `true` for venues where orders cannot spend real money (replay, simulated exchange).
    fn is_simulated(&self) -> bool;
    /// Moves a replayed market forward to `now_ms`; returns `false` once the data is exhausted.
    /// Live venues ignore it and return `true`.
    async fn advance_to(&mut self, now_ms: i64) -> Result<bool, ExchangeError>;
    /// Pair rules for every listed symbol.
    async fn symbol_specs(&mut self) -> Result<Vec<SymbolSpec>, ExchangeError>;
    /// Top of book and last trade for each requested symbol that has a market.
    async fn market(&mut self, symbols: &[Symbol]) -> Result<Vec<MarketSnapshot>, ExchangeError>;
    async fn account(&mut self) -> Result<AccountSnapshot, ExchangeError>;
    /// The venue's view of this account's open orders.
    async fn open_orders(&mut self) -> Result<Vec<Order>, ExchangeError>;
    /// Fills with a trade sequence above `after_seq` (the cursor the store keeps), oldest first.
    async fn fills_since(&mut self, after_seq: u64) -> Result<Vec<(u64, Fill)>, ExchangeError>;
    async fn submit(&mut self, order: &OrderRequest) -> Result<SubmitAck, ExchangeError>;
    async fn cancel(&mut self, exchange_id: &str) -> Result<(), ExchangeError>;
    /// The venue's view of one order by its client id, open or finished; `None` when the venue
    /// never saw it. Venues that keep finished orders override this; the default knows only
    /// open orders.
    async fn lookup_order(&mut self, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        Ok(self
            .open_orders()
            .await?
            .into_iter()
            .find(|o| o.client_id == client_id))
    }
}
