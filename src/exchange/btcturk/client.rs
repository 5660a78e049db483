//! [`BtcturkExchange`]: the `Exchange` trait over BTCTurk's REST API (or the simulated exchange,
//! which speaks the same API on loopback).
//!
//! Calls per trait method (N = configured symbols):
//! - `symbol_specs`: 1 exchangeinfo;
//! - `market`: N orderbooks (`limit = book_depth`), plus N `trades?last=1` only while the trades
//!   bucket has a token to spare (else the last print seen is reused), all concurrent;
//! - `account`: 1 balances; `open_orders`: N openOrders (all-or-nothing: a partial list would
//!   make the engine think the missing orders were canceled);
//! - `fills_since`: 1 user-trades call, plus `order/{id}` for a trade whose `orderClientId` is
//!   null and whose order this client has not seen;
//! - `submit`: 1 POST; when its answer is lost, openOrders then allOrders per lookup round;
//! - `cancel`: 1 DELETE (BTCTurk cancels asynchronously: a 200 means accepted).

use super::auth::Credentials;
use super::endpoint::Endpoint;
use super::feed::{self, FeedConfig, MarketFeed};
use super::map;
use super::rest::{CallError, Request, RestClient, RestConfig, local_ms};
use super::wire::{self, FieldError, WireError, WireErrorKind, WireOrder};
use crate::domain::{AccountSnapshot, Fill, MarketSnapshot, Order, Symbol, SymbolSpec, TradePrint};
use crate::exchange::exchange_info::parse_exchange_info;
use crate::exchange::{Exchange, ExchangeError, OrderRequest, SubmitAck};
use async_trait::async_trait;
use futures_util::future::join_all;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Everything [`BtcturkExchange::new`] needs.
#[derive(Debug, Clone)]
pub struct BtcturkConfig {
    pub rest: RestConfig,
    /// Needed for every private endpoint (balances, orders, trades).
    pub credentials: Option<Credentials>,
    /// The pairs whose books, open orders and fills the bot reads.
    pub symbols: Vec<Symbol>,
    /// `true` when `rest.base_url` points at the simulated exchange.
    pub simulated: bool,
    /// Orderbook `limit` (levels per side); 1 is enough for the top of book.
    pub book_depth: u32,
    /// Fetch the last public trade per symbol (when the rate budget allows).
    pub last_trade: bool,
    /// Lookup rounds (openOrders, then allOrders) after an unanswered submit.
    pub submit_lookup_rounds: u32,
    /// Wait before each lookup round, so an order still in flight can land.
    pub submit_lookup_delay: Duration,
    /// `limit` of the allOrders lookup.
    pub all_orders_limit: u32,
    /// How far before the cursor the user-trades query starts, to catch late trades.
    pub fills_lookback: Duration,
    /// With cursor 0: the earliest trade time to read (ms); `None` reads BTCTurk's default
    /// window (the last 30 days).
    pub fills_not_before_ms: Option<i64>,
    /// The websocket market feed; books come from it while fresh, from REST otherwise.
    pub feed: Option<FeedConfig>,
}

impl BtcturkConfig {
    /// Defaults for `symbols` at `base_url` (the live API or `http://127.0.0.1:PORT`).
    pub fn new(base_url: &str, credentials: Option<Credentials>, symbols: Vec<Symbol>) -> Self {
        Self {
            rest: RestConfig::with_base_url(base_url),
            credentials,
            symbols,
            simulated: false,
            book_depth: 5,
            last_trade: true,
            submit_lookup_rounds: 2,
            submit_lookup_delay: Duration::from_millis(500),
            all_orders_limit: 100,
            fills_lookback: Duration::from_secs(300),
            fills_not_before_ms: None,
            feed: None,
        }
    }
}

/// The BTCTurk venue.
pub struct BtcturkExchange {
    config: BtcturkConfig,
    rest: RestClient,
    /// Exchange order id → client order id, from acks, listings and lookups.
    client_ids: HashMap<String, String>,
    last_prints: HashMap<Symbol, TradePrint>,
    /// Trade ids already returned by `fills_since` (with their time, for pruning).
    delivered: BTreeMap<String, i64>,
    feed: Option<MarketFeed>,
}

fn exchange_info_body(body: &str) -> Result<Vec<SymbolSpec>, WireError> {
    parse_exchange_info(body).map_err(|message| {
        let ep = Endpoint::ExchangeInfo;
        match wire::envelope(ep, body) {
            Err(e) => e,
            Ok(_) => WireError::new(
                ep,
                WireErrorKind::Field(FieldError::invalid("data", message)),
            ),
        }
    })
}

fn decimal_text(d: rust_decimal::Decimal) -> String {
    d.normalize().to_string()
}

impl BtcturkExchange {
    /// # Errors
    /// `Permanent` when the HTTP client cannot be built.
    pub fn new(config: BtcturkConfig) -> Result<Self, ExchangeError> {
        let rest = RestClient::new(config.rest.clone(), config.credentials.clone())?;
        Ok(Self {
            config,
            rest,
            client_ids: HashMap::new(),
            last_prints: HashMap::new(),
            delivered: BTreeMap::new(),
            feed: None,
        })
    }

    /// The websocket feed, once started (for metrics).
    pub fn feed(&self) -> Option<&MarketFeed> {
        self.feed.as_ref()
    }

    /// Books (and last prints) over REST, one orderbook request per symbol.
    async fn market_rest(
        &mut self,
        symbols: &[Symbol],
    ) -> Result<Vec<MarketSnapshot>, ExchangeError> {
        let depth = self.config.book_depth.max(1).to_string();
        let rest = &self.rest;
        let want_trades = self.config.last_trade;
        let fetches = symbols.iter().map(|s| {
            let book_req = Request::new(Endpoint::OrderBook)
                .query("pairSymbol", s.as_str())
                .query("limit", depth.clone());
            let trades_req = Request::new(Endpoint::Trades)
                .query("pairSymbol", s.as_str())
                .query("last", "1");
            async move {
                let book = rest.call(&book_req, wire::parse_orderbook).await;
                let received = local_ms();
                let print = if want_trades {
                    rest.call_if_free(&trades_req, wire::parse_trades).await
                } else {
                    None
                };
                (book, received, print)
            }
        });
        let results = join_all(fetches).await;
        let mut out = Vec::new();
        let mut first_error = None;
        for (symbol, (book, received, print)) in symbols.iter().zip(results) {
            match print {
                Some(Ok(trades)) => {
                    if let Some(p) = map::last_print(&trades) {
                        self.last_prints.insert(symbol.clone(), p);
                    }
                }
                Some(Err(e)) => tracing::debug!(%symbol, "btcturk: last trade: {}", e.error),
                None => {}
            }
            match book {
                Ok(book) => {
                    let last = self.last_prints.get(symbol).cloned();
                    if let Some(m) = map::snapshot(symbol, &book, last, received) {
                        out.push(m);
                    }
                }
                Err(e) => {
                    tracing::warn!(%symbol, "btcturk: orderbook: {}", e.error);
                    first_error.get_or_insert(e.error);
                }
            }
        }
        match first_error {
            Some(e) if out.is_empty() && !symbols.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    /// The transport (stats, clock offset).
    pub fn rest(&self) -> &RestClient {
        &self.rest
    }
    pub fn config(&self) -> &BtcturkConfig {
        &self.config
    }

    fn remember(&mut self, orders: &[Order]) {
        for o in orders {
            if let Some(id) = &o.exchange_id {
                self.client_ids.insert(id.clone(), o.client_id.clone());
            }
        }
    }

    async fn open_orders_of(&self, symbol: Option<&Symbol>) -> Result<Vec<Order>, ExchangeError> {
        let ep = Endpoint::OpenOrders;
        let mut req = Request::new(ep);
        if let Some(s) = symbol {
            req = req.query("pairSymbol", s.as_str());
        }
        let open = self.rest.call(&req, wire::parse_open_orders).await?;
        let sides = [("data.bids", &open.bids), ("data.asks", &open.asks)];
        let mut out = Vec::new();
        for (side, list) in sides {
            for (i, w) in list.iter().enumerate() {
                out.push(map::open_order(ep, &format!("{side}[{i}]"), w, symbol)?);
            }
        }
        Ok(out)
    }

    /// Looks `client_id` up in the open orders, then in the latest `all_orders_limit` orders of
    /// `symbol`, as the bot's [`Order`].
    async fn find_by_client_id(
        &self,
        symbol: &Symbol,
        client_id: &str,
    ) -> Result<Option<Order>, ExchangeError> {
        let matches = |w: &&WireOrder| w.client_id.as_deref() == Some(client_id);
        let ep = Endpoint::OpenOrders;
        let req = Request::new(ep).query("pairSymbol", symbol.as_str());
        let open = self.rest.call(&req, wire::parse_open_orders).await?;
        if let Some(w) = open.all().find(matches) {
            return map::open_order(ep, "data", w, Some(symbol)).map(Some);
        }
        let ep = Endpoint::AllOrders;
        let req = Request::new(ep)
            .query("pairSymbol", symbol.as_str())
            .query("limit", self.config.all_orders_limit.to_string());
        let all = self.rest.call(&req, wire::parse_all_orders).await?;
        all.iter()
            .find(matches)
            .map(|w| map::any_order(ep, "data", w, Some(symbol)))
            .transpose()
    }

    /// After a submit whose answer was lost: was the order placed?
    async fn resolve_unanswered(
        &mut self,
        order: &OrderRequest,
        failure: &ExchangeError,
    ) -> Result<SubmitAck, ExchangeError> {
        let ep = Endpoint::SubmitOrder;
        let mut lookup_error = None;
        for _ in 0..self.config.submit_lookup_rounds.max(1) {
            tokio::time::sleep(self.config.submit_lookup_delay).await;
            match self
                .find_by_client_id(&order.symbol, &order.client_id)
                .await
            {
                Ok(Some(found)) => {
                    let id = found.exchange_id.unwrap_or_default();
                    tracing::info!(client_id = %order.client_id, exchange_id = %id,
                        "btcturk: unanswered submit was placed (found by client id)");
                    self.client_ids.insert(id.clone(), order.client_id.clone());
                    return Ok(SubmitAck { exchange_id: id });
                }
                Ok(None) => lookup_error = None,
                Err(e) => lookup_error = Some(e),
            }
        }
        let message = match lookup_error {
            Some(e) => format!(
                "submit unanswered ({failure}); looking client id {} up failed ({e}): state unknown",
                order.client_id
            ),
            None => format!(
                "not placed: submit unanswered ({failure}) and client id {} is in neither open \
                 nor all orders",
                order.client_id
            ),
        };
        Err(ExchangeError::Transient {
            endpoint: ep.name().to_string(),
            message,
        })
    }

    /// The client id of a trade's order: from the trade, else from what this client has seen,
    /// else from `GET /api/v1/order/{id}`; `btcturk:<orderId>` when the exchange has none.
    async fn client_id_of(&mut self, t: &wire::UserTrade) -> Result<String, ExchangeError> {
        if let Some(c) = t
            .order_client_id
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            return Ok(c.trim().to_string());
        }
        if let Some(c) = self.client_ids.get(&t.order_id) {
            return Ok(c.clone());
        }
        let req = Request::new(Endpoint::OrderById).path_suffix(&t.order_id);
        let id = match self.rest.call(&req, wire::parse_order_by_id).await {
            Ok(w) => map::client_id_or_placeholder(w.client_id.as_deref(), &t.order_id),
            Err(CallError {
                error: ExchangeError::Rejected { .. },
                ..
            }) => map::client_id_or_placeholder(None, &t.order_id),
            Err(e) => return Err(e.error),
        };
        self.client_ids.insert(t.order_id.clone(), id.clone());
        Ok(id)
    }
}

#[async_trait]
impl Exchange for BtcturkExchange {
    fn name(&self) -> &str {
        "btcturk"
    }
    fn is_simulated(&self) -> bool {
        self.config.simulated
    }
    async fn advance_to(&mut self, _now_ms: i64) -> Result<bool, ExchangeError> {
        Ok(true)
    }

    async fn symbol_specs(&mut self) -> Result<Vec<SymbolSpec>, ExchangeError> {
        let req = Request::new(Endpoint::ExchangeInfo);
        Ok(self.rest.call(&req, exchange_info_body).await?)
    }

    /// Symbols whose book fails to load are left out (with a warning) unless all fail.
    async fn market(&mut self, symbols: &[Symbol]) -> Result<Vec<MarketSnapshot>, ExchangeError> {
        // Fresh websocket books first; whatever the feed lacks (stale, resyncing, off) over REST.
        if self.feed.is_none()
            && let Some(fc) = self.config.feed.clone()
        {
            match MarketFeed::start(fc) {
                Ok(f) => self.feed = Some(f),
                Err(e) => {
                    tracing::warn!("btcturk: websocket feed off: {e}");
                    self.config.feed = None;
                }
            }
        }
        let live = self
            .feed
            .as_ref()
            .map_or_else(Vec::new, |f| f.snapshot(symbols, feed::wall_ms()));
        for m in &live {
            if let Some(p) = &m.last_trade {
                self.last_prints.insert(m.symbol.clone(), p.clone());
            }
        }
        let missing: Vec<Symbol> = symbols
            .iter()
            .filter(|s| !live.iter().any(|m| &m.symbol == *s))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(live);
        }
        match self.market_rest(&missing).await {
            Ok(mut v) => {
                v.extend(live);
                v.sort_by_key(|m| symbols.iter().position(|s| *s == m.symbol));
                Ok(v)
            }
            Err(e) if live.is_empty() => Err(e),
            Err(e) => {
                tracing::warn!("btcturk: REST fallback: {e}");
                Ok(live)
            }
        }
    }

    async fn account(&mut self) -> Result<AccountSnapshot, ExchangeError> {
        let rows = self
            .rest
            .call(&Request::new(Endpoint::Balances), wire::parse_balances)
            .await?;
        Ok(map::account(&rows))
    }

    async fn open_orders(&mut self) -> Result<Vec<Order>, ExchangeError> {
        let symbols = self.config.symbols.clone();
        let lists: Vec<Result<Vec<Order>, ExchangeError>> = if symbols.is_empty() {
            vec![self.open_orders_of(None).await]
        } else {
            join_all(symbols.iter().map(|s| self.open_orders_of(Some(s)))).await
        };
        let mut out = Vec::new();
        for list in lists {
            out.extend(list?);
        }
        self.remember(&out);
        Ok(out)
    }

    /// See `map.rs` for the seq. Trades of other pairs are ignored. A trade first seen with a
    /// seq at or below `after_seq` (late to appear) is returned too; the engine keeps the max
    /// cursor and the ledger skips trade ids it already has.
    async fn fills_since(&mut self, after_seq: u64) -> Result<Vec<(u64, Fill)>, ExchangeError> {
        let lookback = i64::try_from(self.config.fills_lookback.as_millis()).unwrap_or(0);
        let start = if after_seq == 0 {
            self.config.fills_not_before_ms
        } else {
            Some((map::seq_ms(after_seq) - lookback).max(0))
        };
        let mut req = Request::new(Endpoint::UserTrades);
        if let Some(ms) = start {
            req = req.query("startDate", ms.to_string());
        }
        let trades = self.rest.call(&req, wire::parse_user_trades).await?;
        let mut out = Vec::new();
        for (seq, t) in map::with_seqs(&trades) {
            let symbol = map::trade_symbol(t)?;
            if !self.config.symbols.is_empty() && !self.config.symbols.contains(&symbol) {
                continue;
            }
            if seq <= after_seq && self.delivered.contains_key(&t.id) {
                continue;
            }
            let client_id = self.client_id_of(t).await?;
            out.push((seq, map::fill(t, client_id)?));
        }
        for (_, f) in &out {
            self.delivered.insert(f.trade_id.clone(), f.ts_ms);
        }
        let horizon = start.unwrap_or(0) - lookback;
        self.delivered.retain(|_, ts| *ts >= horizon);
        Ok(out)
    }

    async fn submit(&mut self, order: &OrderRequest) -> Result<SubmitAck, ExchangeError> {
        let ep = Endpoint::SubmitOrder;
        if order.client_id.is_empty() || order.client_id.chars().count() > 50 {
            return Err(ExchangeError::Rejected {
                endpoint: ep.name().to_string(),
                code: "CLIENT_ID".into(),
                message: "newOrderClientId must be 1 to 50 characters".into(),
            });
        }
        let body = serde_json::json!({
            "quantity": decimal_text(order.qty.value()),
            "price": decimal_text(order.price.value()),
            "orderMethod": "limit",
            "orderType": order.side.as_str(),
            "pairSymbol": order.symbol.as_str(),
            "newOrderClientId": order.client_id,
        });
        let req = Request::new(ep).json(&body);
        match self.rest.call(&req, wire::parse_submit).await {
            Ok(ack) => {
                self.client_ids
                    .insert(ack.id.clone(), order.client_id.clone());
                Ok(SubmitAck {
                    exchange_id: ack.id,
                })
            }
            Err(CallError {
                error,
                maybe_processed: true,
            }) => {
                tracing::warn!(client_id = %order.client_id,
                    "btcturk: submit unanswered, looking the order up: {error}");
                self.resolve_unanswered(order, &error).await
            }
            Err(e) => Err(e.error),
        }
    }

    /// Open orders of every configured pair, then each pair's latest `all_orders_limit` orders
    /// (finished ones included); `None` when no pair has it.
    async fn lookup_order(&mut self, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        if self.config.symbols.is_empty() {
            let open = self.open_orders().await?;
            return Ok(open.into_iter().find(|o| o.client_id == client_id));
        }
        for symbol in self.config.symbols.clone() {
            if let Some(o) = self.find_by_client_id(&symbol, client_id).await? {
                self.remember(std::slice::from_ref(&o));
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    async fn cancel(&mut self, exchange_id: &str) -> Result<(), ExchangeError> {
        let req = Request::new(Endpoint::CancelOrder).query("id", exchange_id);
        Ok(self.rest.call(&req, wire::parse_cancel).await?)
    }
}
