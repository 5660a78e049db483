//! One simulated account: its own [`MatchingEngine`] (fed the same quotes as every other
//! account), plus what BTCTurk shows about orders and trades that the engine does not keep:
//! closed and canceled orders, the client's `newOrderClientId`, exchange-style ids, user trades.
//!
//! The engine sees a unique internal client id per order, so (like BTCTurk) a client may reuse
//! its `newOrderClientId`; [`Account::placed`] counts how many orders each one placed.

use super::error::ApiError;
use super::market::Market;
use crate::domain::{Balance, Price, Qty, Side, Symbol, SymbolSpec};
use crate::exchange::OrderRequest;
use crate::exchange::replay::{MatchingEngine, Reject};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::{BTreeMap, HashMap};

/// BTCTurk's order states (`status` in order bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOrderStatus {
    Untouched,
    Partial,
    Closed,
    Canceled,
}

impl SimOrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SimOrderStatus::Untouched => "Untouched",
            SimOrderStatus::Partial => "Partial",
            SimOrderStatus::Closed => "Closed",
            SimOrderStatus::Canceled => "Canceled",
        }
    }
    pub fn is_open(self) -> bool {
        matches!(self, SimOrderStatus::Untouched | SimOrderStatus::Partial)
    }
}

/// `orderMethod`: market orders are emulated as immediate-or-cancel limits at the touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderMethod {
    Limit,
    Market,
}

impl OrderMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderMethod::Limit => "limit",
            OrderMethod::Market => "market",
        }
    }
}

/// An order as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    pub id: u64,
    pub client_id: String,
    pub symbol: Symbol,
    pub side: Side,
    pub method: OrderMethod,
    /// Limit price (the touch for a market order).
    pub price: Decimal,
    /// Base quantity.
    pub qty: Decimal,
    pub filled: Decimal,
    pub status: SimOrderStatus,
    pub created_ms: i64,
    pub updated_ms: i64,
    engine_id: String,
}

/// One execution of one of the account's orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTrade {
    pub id: u64,
    pub order_id: u64,
    pub client_id: String,
    pub symbol: Symbol,
    pub base: String,
    pub quote: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    /// Charged in `fee_asset` (the quote currency), positive.
    pub fee: Decimal,
    pub fee_asset: String,
    pub maker: bool,
    pub ts_ms: i64,
}

/// What a client asked for, after parsing.
#[derive(Debug, Clone)]
pub(crate) struct PlaceRequest {
    pub client_id: String,
    pub symbol: Symbol,
    pub side: Side,
    pub method: OrderMethod,
    pub price: Option<Decimal>,
    /// Base quantity; for a market buy, the amount of quote to spend (as BTCTurk defines it).
    pub quantity: Decimal,
}

/// Server-wide id counters (ids are unique across accounts).
#[derive(Debug)]
pub(crate) struct Ids {
    pub next_order: u64,
    pub next_trade: u64,
    pub next_key: u64,
}

impl Default for Ids {
    fn default() -> Self {
        // Above 2^32 and 2^53 respectively, like BTCTurk's, to keep clients honest.
        Self {
            next_order: 10_938_696_001,
            next_trade: 1_181_163_798_924_649_001,
            next_key: 1,
        }
    }
}

pub(crate) struct Account {
    pub secret_b64: String,
    pub engine: MatchingEngine,
    orders: BTreeMap<u64, SimOrder>,
    by_key: HashMap<String, u64>,
    trades: Vec<SimTrade>,
    fill_cursor: u64,
    placed: HashMap<String, usize>,
}

impl Account {
    pub(crate) fn new(secret_b64: String, engine: MatchingEngine) -> Self {
        Self {
            secret_b64,
            engine,
            orders: BTreeMap::new(),
            by_key: HashMap::new(),
            trades: Vec::new(),
            fill_cursor: 0,
            placed: HashMap::new(),
        }
    }

    pub(crate) fn orders(&self) -> impl DoubleEndedIterator<Item = &SimOrder> {
        self.orders.values()
    }
    pub(crate) fn order(&self, id: u64) -> Option<&SimOrder> {
        self.orders.get(&id)
    }
    pub(crate) fn trades(&self) -> &[SimTrade] {
        &self.trades
    }
    pub(crate) fn placed(&self, client_id: &str) -> usize {
        self.placed.get(client_id).copied().unwrap_or(0)
    }
    pub(crate) fn balances(&self) -> Vec<Balance> {
        self.engine.account().balances
    }

    /// Validates and places an order against the current market.
    pub(crate) fn place(
        &mut self,
        req: &PlaceRequest,
        market: &Market,
        ids: &mut Ids,
        now_ms: i64,
    ) -> Result<SimOrder, ApiError> {
        let spec = market
            .spec(&req.symbol)
            .ok_or_else(|| ApiError::unknown_pair(req.symbol.as_str()))?;
        let touch = market.top(&req.symbol).map(|t| (t.bid, t.ask));
        let (price, qty) = match req.method {
            OrderMethod::Limit => {
                let price = req
                    .price
                    .ok_or_else(|| ApiError::invalid("price is required"))?;
                (price, req.quantity)
            }
            OrderMethod::Market => {
                let (bid, ask) = touch.ok_or_else(ApiError::market_unavailable)?;
                match req.side {
                    Side::Sell => (bid, req.quantity),
                    Side::Buy => {
                        let qty = req
                            .quantity
                            .checked_div(ask)
                            .unwrap_or_default()
                            .round_dp_with_strategy(spec.qty_scale, RoundingStrategy::ToZero);
                        (ask, qty)
                    }
                }
            }
        };
        let price = Price::new(price).map_err(|_| ApiError::invalid("price must be > 0"))?;
        let qty = Qty::new(qty).map_err(|_| ApiError::invalid("quantity must be > 0"))?;
        let key = format!("sim-{}", ids.next_key);
        ids.next_key += 1;
        let engine_req = OrderRequest {
            client_id: key.clone(),
            symbol: req.symbol.clone(),
            side: req.side,
            price,
            qty,
        };
        let ack = self
            .engine
            .submit(&engine_req, now_ms)
            .map_err(|r| self.map_reject(r, spec, req.side))?;
        let id = ids.next_order;
        ids.next_order += 1;
        self.by_key.insert(key, id);
        *self.placed.entry(req.client_id.clone()).or_default() += 1;
        self.orders.insert(
            id,
            SimOrder {
                id,
                client_id: req.client_id.clone(),
                symbol: req.symbol.clone(),
                side: req.side,
                method: req.method,
                price: price.value(),
                qty: qty.value().normalize(),
                filled: Decimal::ZERO,
                status: SimOrderStatus::Untouched,
                created_ms: now_ms,
                updated_ms: now_ms,
                engine_id: ack.exchange_id,
            },
        );
        self.sync_fills(market, ids);
        if req.method == OrderMethod::Market {
            self.finish_market(id, now_ms);
        }
        self.orders
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::system("order vanished"))
    }

    /// A market order takes what the touch offers; the rest is canceled (`Closed` when anything
    /// filled, else `Canceled`).
    fn finish_market(&mut self, id: u64, now_ms: i64) {
        let Some(order) = self.orders.get_mut(&id) else {
            return;
        };
        if order.status.is_open() {
            let _ = self.engine.cancel(&order.engine_id, now_ms);
            order.status = if order.filled > Decimal::ZERO {
                SimOrderStatus::Closed
            } else {
                SimOrderStatus::Canceled
            };
            order.updated_ms = now_ms;
        }
    }

    /// Whether order `id` can be canceled now.
    ///
    /// # Errors
    /// `NO_ORDER_MATCHES_YOUR_REQUEST` (unknown id) or `ORDER_COULD_NOT_BE_CANCELED` (closed,
    /// canceled, or a market order).
    pub(crate) fn check_cancel(&self, id: u64) -> Result<(), ApiError> {
        let order = self
            .orders
            .get(&id)
            .ok_or_else(ApiError::no_order_matches)?;
        if !order.status.is_open() || order.method == OrderMethod::Market {
            return Err(ApiError::could_not_cancel());
        }
        Ok(())
    }

    /// Cancels order `id` and unlocks what it held.
    ///
    /// # Errors
    /// As [`Account::check_cancel`].
    pub(crate) fn cancel(&mut self, id: u64, now_ms: i64) -> Result<(), ApiError> {
        self.check_cancel(id)?;
        let order = self
            .orders
            .get_mut(&id)
            .ok_or_else(ApiError::no_order_matches)?;
        self.engine
            .cancel(&order.engine_id, now_ms)
            .map_err(|_| ApiError::could_not_cancel())?;
        order.status = SimOrderStatus::Canceled;
        order.updated_ms = now_ms;
        Ok(())
    }

    /// Books the engine's new fills into orders and user trades.
    pub(crate) fn sync_fills(&mut self, market: &Market, ids: &mut Ids) {
        for (seq, fill) in self.engine.fills_since(self.fill_cursor) {
            self.fill_cursor = seq;
            let Some(order) = self
                .by_key
                .get(&fill.client_order_id)
                .and_then(|id| self.orders.get_mut(id))
            else {
                continue;
            };
            let qty = fill.qty.value();
            order.filled += qty;
            order.updated_ms = fill.ts_ms;
            if order.status.is_open() {
                order.status = if order.filled >= order.qty {
                    SimOrderStatus::Closed
                } else {
                    SimOrderStatus::Partial
                };
            }
            let (base, quote) = market
                .spec(&order.symbol)
                .map(|s| (s.base.clone(), s.quote.clone()))
                .unwrap_or_default();
            self.trades.push(SimTrade {
                id: ids.next_trade,
                order_id: order.id,
                client_id: order.client_id.clone(),
                symbol: order.symbol.clone(),
                base,
                quote,
                side: order.side,
                price: fill.price.value(),
                qty,
                fee: fill.fee,
                fee_asset: fill.fee_asset,
                maker: fill.maker,
                ts_ms: fill.ts_ms,
            });
            ids.next_trade += 1;
        }
    }

    /// BTCTurk's answer for an engine rejection.
    fn map_reject(&self, r: Reject, spec: &SymbolSpec, side: Side) -> ApiError {
        match r.code.as_str() {
            "INSUFFICIENT_BALANCE" => {
                let asset = match side {
                    Side::Buy => &spec.quote,
                    Side::Sell => &spec.base,
                };
                let has_locked = self
                    .engine
                    .account()
                    .balance(asset)
                    .is_some_and(|b| b.locked > Decimal::ZERO);
                ApiError::insufficient(has_locked)
            }
            _ => ApiError::from_reject(&r),
        }
    }
}
