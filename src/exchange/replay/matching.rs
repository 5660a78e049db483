//! A deterministic top-of-book matching engine: balances, resting limit orders and fills.
//!
//! Rules (documented in `data/replay/README.md`):
//! - a new order that crosses the current quote (buy with ask ≤ price, sell with bid ≥ price)
//!   takes liquidity at the quote's price, as taker, up to the quote's displayed size; the rest
//!   rests on the book;
//! - a resting order fills at its own limit price, as maker, when a later quote crosses it, up to
//!   that quote's displayed size (best price first, then oldest first);
//! - a displayed size of zero means the size is unknown and is treated as unlimited; liquidity
//!   taken from a quote is used up until the next quote for that symbol;
//! - fees are charged in the quote currency: `notional × bps / 10000`, exact;
//! - a buy locks `price × qty` plus a fee reserve at the higher of the two fee rates, so a fill
//!   can always pay its fee; a sell locks `qty` of the base asset.
//!
//! No clock, no randomness, ordered maps only: the same inputs give the same outputs.

use super::dataset::{EventKind, ReplayEvent};
use super::validate::{Checked, Reject, check_request, checked_bps};
use crate::domain::{
    AccountSnapshot, Balance, Fill, MarketSnapshot, Order, OrderStatus, Price, Qty, Side, Symbol,
    SymbolSpec, TradePrint,
};
use crate::exchange::{OrderRequest, SubmitAck};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, Default)]
struct Funds {
    free: Decimal,
    locked: Decimal,
}

#[derive(Debug, Clone)]
struct Quote {
    bid: Price,
    bid_qty: Qty,
    ask: Price,
    ask_qty: Qty,
    ts_ms: i64,
}

#[derive(Debug, Clone, Default)]
struct Book {
    quote: Option<Quote>,
    /// Bid liquidity left in the current quote; `None` = unlimited.
    avail_bid: Option<Decimal>,
    /// Ask liquidity left in the current quote; `None` = unlimited.
    avail_ask: Option<Decimal>,
    last_trade: Option<TradePrint>,
}

#[derive(Debug, Clone)]
struct Resting {
    client_id: String,
    symbol: Symbol,
    side: Side,
    price: Price,
    qty: Decimal,
    filled: Decimal,
    /// Funds still locked for this order (quote for buys, base for sells).
    locked: Decimal,
    created_ms: i64,
    updated_ms: i64,
}

/// Balances, resting orders, books and the fill log of one simulated account.
#[derive(Debug, Clone)]
pub struct MatchingEngine {
    specs: BTreeMap<Symbol, SymbolSpec>,
    balances: BTreeMap<String, Funds>,
    /// A handful of symbols: a list searched by shared text first beats an ordered map.
    books: Vec<(Symbol, Book)>,
    /// Other texts of the books' symbols seen in events (a feed shared by two replays decodes
    /// its own), with their book's index: found by pointer from then on.
    aliases: Vec<(Symbol, usize)>,
    orders: BTreeMap<u64, Resting>,
    client_ids: BTreeSet<String>,
    fills: Vec<(u64, Fill)>,
    next_order_id: u64,
    maker_fee_bps: Decimal,
    taker_fee_bps: Decimal,
}

impl MatchingEngine {
    /// # Errors
    /// When a starting balance is negative or a fee rate is negative.
    pub fn new(
        specs: Vec<SymbolSpec>,
        starting_balances: &[(String, Decimal)],
        maker_fee_bps: Decimal,
        taker_fee_bps: Decimal,
    ) -> Result<Self, String> {
        if maker_fee_bps < Decimal::ZERO || taker_fee_bps < Decimal::ZERO {
            return Err("fee rates must be >= 0 bps".to_string());
        }
        let mut balances: BTreeMap<String, Funds> = BTreeMap::new();
        for spec in &specs {
            balances.entry(spec.base.clone()).or_default();
            balances.entry(spec.quote.clone()).or_default();
        }
        for (asset, amount) in starting_balances {
            if *amount < Decimal::ZERO {
                return Err(format!("starting balance of {asset} is negative: {amount}"));
            }
            let asset = asset.trim().to_ascii_uppercase();
            if asset.is_empty() {
                return Err("starting balance with an empty asset name".to_string());
            }
            let funds = balances.entry(asset).or_default();
            funds.free = funds
                .free
                .checked_add(*amount)
                .ok_or_else(|| "starting balance is too large".to_string())?;
        }
        Ok(Self {
            books: specs
                .iter()
                .map(|s| (s.symbol.clone(), Book::default()))
                .collect(),
            aliases: Vec::new(),
            specs: specs.into_iter().map(|s| (s.symbol.clone(), s)).collect(),
            balances,
            orders: BTreeMap::new(),
            client_ids: BTreeSet::new(),
            fills: Vec::new(),
            next_order_id: 1,
            maker_fee_bps,
            taker_fee_bps,
        })
    }

    /// Pair rules, sorted by symbol.
    pub fn specs(&self) -> Vec<SymbolSpec> {
        self.specs.values().cloned().collect()
    }

    /// Applies one market event: a quote updates the book and matches resting orders; a trade
    /// only updates the last trade print (trades never fill orders).
    pub fn apply(&mut self, event: &ReplayEvent) {
        match &event.kind {
            EventKind::Quote {
                bid,
                bid_qty,
                ask,
                ask_qty,
            } => self.on_quote(&event.symbol, *bid, *bid_qty, *ask, *ask_qty, event.ts_ms),
            EventKind::Trade { price, qty, side } => {
                let print = TradePrint {
                    price: *price,
                    qty: *qty,
                    side: *side,
                    ts_ms: event.ts_ms,
                };
                if let Some(book) = self.book_mut(&event.symbol) {
                    book.last_trade = Some(print);
                }
            }
        }
    }

    /// The book whose symbol (or an alias of it) shares `symbol`'s text.
    fn book_by_pointer(&self, symbol: &Symbol) -> Option<usize> {
        self.books
            .iter()
            .position(|(k, _)| k.shares_text(symbol))
            .or_else(|| {
                self.aliases
                    .iter()
                    .find_map(|(a, i)| a.shares_text(symbol).then_some(*i))
            })
    }

    fn book_index(&self, symbol: &Symbol) -> Option<usize> {
        // A replayed event's symbol shares its text with the book's (the dataset's symbol
        // table) or with an alias: pointer compares, and text compares only the first time.
        self.book_by_pointer(symbol)
            .or_else(|| self.books.iter().position(|(k, _)| k == symbol))
    }

    fn book(&self, symbol: &Symbol) -> Option<&Book> {
        self.book_index(symbol).map(|i| &self.books[i].1)
    }

    fn book_mut(&mut self, symbol: &Symbol) -> Option<&mut Book> {
        /// Enough for every symbol of a shared feed; symbols made afresh for each event (none
        /// of the readers does) would only fall back to text compares.
        const MAX_ALIASES: usize = 64;
        let i = match self.book_by_pointer(symbol) {
            Some(i) => i,
            None => match self.books.iter().position(|(k, _)| k == symbol) {
                Some(i) => {
                    if self.aliases.len() < MAX_ALIASES {
                        self.aliases.push((symbol.clone(), i));
                    }
                    i
                }
                None => {
                    self.books.push((symbol.clone(), Book::default()));
                    self.books.len() - 1
                }
            },
        };
        self.books.get_mut(i).map(|(_, b)| b)
    }

    /// A new top of book for `symbol`; resting orders it crosses fill as maker.
    pub fn on_quote(
        &mut self,
        symbol: &Symbol,
        bid: Price,
        bid_qty: Qty,
        ask: Price,
        ask_qty: Qty,
        ts_ms: i64,
    ) {
        let unlimited_if_zero = |q: Qty| (!q.value().is_zero()).then_some(q.value());
        let Some(book) = self.book_mut(symbol) else {
            return;
        };
        book.quote = Some(Quote {
            bid,
            bid_qty,
            ask,
            ask_qty,
            ts_ms,
        });
        book.avail_bid = unlimited_if_zero(bid_qty);
        book.avail_ask = unlimited_if_zero(ask_qty);
        if self.orders.is_empty() {
            return;
        }
        let mut crossing: Vec<(u64, Side, Price)> = self
            .orders
            .iter()
            .filter(|(_, o)| &o.symbol == symbol)
            .filter(|(_, o)| match o.side {
                Side::Buy => o.price >= ask,
                Side::Sell => o.price <= bid,
            })
            .map(|(id, o)| (*id, o.side, o.price))
            .collect();
        // Best price first (highest buy, lowest sell), then oldest.
        crossing.sort_by(|a, b| match a.1 {
            Side::Buy => b.2.cmp(&a.2).then(a.0.cmp(&b.0)),
            Side::Sell => a.2.cmp(&b.2).then(a.0.cmp(&b.0)),
        });
        for (id, side, price) in crossing {
            self.take(id, side, price, true, ts_ms);
        }
    }

    /// Fills order `id` against the current quote's remaining liquidity on the opposite side,
    /// at `price`.
    fn take(&mut self, id: u64, side: Side, price: Price, maker: bool, ts_ms: i64) {
        let Some(order) = self.orders.get(&id) else {
            return;
        };
        let remaining = order.qty - order.filled;
        let symbol = order.symbol.clone();
        let Some(book) = self.book(&symbol) else {
            return;
        };
        let avail = match side {
            Side::Buy => book.avail_ask,
            Side::Sell => book.avail_bid,
        };
        let qty = avail.map_or(remaining, |left| remaining.min(left));
        if qty <= Decimal::ZERO || !self.execute(id, qty, price, maker, ts_ms) {
            return;
        }
        if let Some(book) = self.book_mut(&symbol) {
            let slot = match side {
                Side::Buy => &mut book.avail_ask,
                Side::Sell => &mut book.avail_bid,
            };
            if let Some(left) = slot {
                *left -= qty;
            }
        }
    }

    /// Books one fill of `qty` at `price` for order `id`: balances, the order, the fill log.
    /// Returns `false` (and changes nothing) when the amounts overflow a `Decimal`.
    fn execute(&mut self, id: u64, qty: Decimal, price: Price, maker: bool, ts_ms: i64) -> bool {
        let fee_bps = if maker {
            self.maker_fee_bps
        } else {
            self.taker_fee_bps
        };
        let Some(order) = self.orders.get(&id) else {
            return false;
        };
        let Some(spec) = self.specs.get(&order.symbol) else {
            return false;
        };
        let Some((notional, fee, release)) =
            fill_amounts(order, qty, price, fee_bps, self.fee_reserve_bps())
        else {
            return false;
        };
        let (base, quote) = (spec.base.clone(), spec.quote.clone());
        let Some(order) = self.orders.get_mut(&id) else {
            return false;
        };
        order.filled += qty;
        order.updated_ms = ts_ms;
        order.locked -= release;
        let done = order.filled >= order.qty;
        match order.side {
            Side::Buy => {
                let q = self.balances.entry(quote.clone()).or_default();
                q.locked -= release;
                q.free += release - notional - fee;
                self.balances.entry(base).or_default().free += qty;
            }
            Side::Sell => {
                self.balances.entry(base).or_default().locked -= release;
                self.balances.entry(quote.clone()).or_default().free += notional - fee;
            }
        }
        let seq = self.fills.len() as u64 + 1;
        let fill = Fill {
            trade_id: format!("replay-{seq}"),
            client_order_id: order.client_id.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            price,
            qty: Qty::new(qty.normalize()).unwrap_or(Qty::ZERO),
            fee,
            fee_asset: quote,
            maker,
            ts_ms,
        };
        self.fills.push((seq, fill));
        if done {
            self.orders.remove(&id);
        }
        true
    }

    fn fee_reserve_bps(&self) -> Decimal {
        self.maker_fee_bps.max(self.taker_fee_bps)
    }

    /// Places a limit order: validates it, locks funds, takes what the current quote offers and
    /// rests the remainder.
    ///
    /// # Errors
    /// [`Reject`] with a BTCTurk-like code: `1037` unknown pair, `SYMBOL_NOT_TRADING`, `1126`
    /// price off the tick grid, `1127` quantity scale, `FAILED_ORDER_PARAMETER` zero quantity,
    /// `1123` below the minimum notional, `INSUFFICIENT_BALANCE`, `DUPLICATE_CLIENT_ORDER_ID`.
    pub fn submit(&mut self, req: &OrderRequest, now_ms: i64) -> Result<SubmitAck, Reject> {
        if self.client_ids.contains(&req.client_id) {
            return Err(Reject::new(
                "DUPLICATE_CLIENT_ORDER_ID",
                format!("client order id {:?} was already used", req.client_id),
            ));
        }
        let Checked { asset, need, qty } =
            check_request(self.specs.get(&req.symbol), req, self.fee_reserve_bps())?;
        let funds = self.balances.entry(asset.clone()).or_default();
        if funds.free < need {
            return Err(Reject::new(
                "INSUFFICIENT_BALANCE",
                format!(
                    "needs {} {asset} free, has {}",
                    need.normalize(),
                    funds.free.normalize()
                ),
            ));
        }
        funds.free -= need;
        funds.locked += need;

        let id = self.next_order_id;
        self.next_order_id += 1;
        self.client_ids.insert(req.client_id.clone());
        self.orders.insert(
            id,
            Resting {
                client_id: req.client_id.clone(),
                symbol: req.symbol.clone(),
                side: req.side,
                price: req.price,
                qty,
                filled: Decimal::ZERO,
                locked: need,
                created_ms: now_ms,
                updated_ms: now_ms,
            },
        );
        if let Some(q) = self.book(&req.symbol).and_then(|b| b.quote.as_ref()) {
            match req.side {
                Side::Buy if q.ask <= req.price => {
                    let ask = q.ask;
                    self.take(id, Side::Buy, ask, false, now_ms);
                }
                Side::Sell if q.bid >= req.price => {
                    let bid = q.bid;
                    self.take(id, Side::Sell, bid, false, now_ms);
                }
                _ => {}
            }
        }
        Ok(SubmitAck {
            exchange_id: id.to_string(),
        })
    }

    /// Cancels a resting order and unlocks what it still held.
    ///
    /// # Errors
    /// `ORDER_NOT_FOUND` when no resting order has that id (unknown, filled or canceled).
    pub fn cancel(&mut self, exchange_id: &str, _now_ms: i64) -> Result<(), Reject> {
        let not_found = || Reject::new("ORDER_NOT_FOUND", format!("no open order {exchange_id:?}"));
        let id: u64 = exchange_id.trim().parse().map_err(|_| not_found())?;
        let order = self.orders.remove(&id).ok_or_else(not_found)?;
        let asset = match (self.specs.get(&order.symbol), order.side) {
            (Some(s), Side::Buy) => s.quote.clone(),
            (Some(s), Side::Sell) => s.base.clone(),
            (None, _) => return Ok(()),
        };
        let funds = self.balances.entry(asset).or_default();
        funds.locked -= order.locked;
        funds.free += order.locked;
        Ok(())
    }

    /// Snapshots for the requested symbols that have seen a quote, in the requested order.
    pub fn market(&self, symbols: &[Symbol], now_ms: i64) -> Vec<MarketSnapshot> {
        symbols
            .iter()
            .filter_map(|s| {
                let book = self.book(s)?;
                let q = book.quote.as_ref()?;
                Some(MarketSnapshot {
                    symbol: s.clone(),
                    bid: q.bid,
                    bid_qty: q.bid_qty,
                    ask: q.ask,
                    ask_qty: q.ask_qty,
                    last_trade: book.last_trade.clone(),
                    exchange_ts_ms: q.ts_ms,
                    received_ts_ms: now_ms,
                })
            })
            .collect()
    }

    /// Every asset the account knows (listed pairs' assets and starting balances), sorted.
    pub fn account(&self) -> AccountSnapshot {
        AccountSnapshot {
            balances: self
                .balances
                .iter()
                .map(|(asset, f)| Balance {
                    asset: asset.clone(),
                    free: f.free.normalize(),
                    locked: f.locked.normalize(),
                })
                .collect(),
        }
    }

    /// Resting orders, oldest first.
    pub fn open_orders(&self) -> Vec<Order> {
        self.orders
            .iter()
            .map(|(id, o)| Order {
                client_id: o.client_id.clone(),
                exchange_id: Some(id.to_string()),
                symbol: o.symbol.clone(),
                side: o.side,
                price: o.price,
                qty: Qty::new(o.qty).unwrap_or(Qty::ZERO),
                filled_qty: Qty::new(o.filled.normalize()).unwrap_or(Qty::ZERO),
                status: if o.filled.is_zero() {
                    OrderStatus::Open
                } else {
                    OrderStatus::PartiallyFilled
                },
                cycle_id: 0,
                created_ms: o.created_ms,
                updated_ms: o.updated_ms,
            })
            .collect()
    }

    /// Fills with a sequence number above `after_seq`, oldest first (sequences start at 1).
    pub fn fills_since(&self, after_seq: u64) -> Vec<(u64, Fill)> {
        let start = usize::try_from(after_seq)
            .unwrap_or(usize::MAX)
            .min(self.fills.len());
        self.fills.get(start..).map_or_else(Vec::new, <[_]>::to_vec)
    }
}

/// For a fill of `qty` at `price`: its notional, its fee, and the funds it releases from the
/// order's lock (all that is left when the fill completes the order).
fn fill_amounts(
    order: &Resting,
    qty: Decimal,
    price: Price,
    fee_bps: Decimal,
    reserve_bps: Decimal,
) -> Option<(Decimal, Decimal, Decimal)> {
    let notional = price.value().checked_mul(qty)?;
    let fee = checked_bps(notional, fee_bps)?.normalize();
    let share = match order.side {
        Side::Buy => {
            let at_limit = order.price.value().checked_mul(qty)?;
            at_limit.checked_add(checked_bps(at_limit, reserve_bps)?)?
        }
        Side::Sell => qty,
    };
    let done = order.filled + qty >= order.qty;
    let release = if done || share > order.locked {
        order.locked
    } else {
        share
    };
    // A sell's proceeds must be representable too.
    notional.checked_sub(fee)?;
    Some((notional, fee, release))
}
