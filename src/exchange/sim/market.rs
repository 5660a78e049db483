//! The public market of the simulated exchange: per pair the latest top of book, the recent
//! public trades, and rolling 24 h ticker statistics, all fed from the replay dataset.
//!
//! Timestamps served to clients are the server's wall clock at the moment an event was applied
//! (so they agree with `/api/v2/server/time`); the dataset's own times only pace the replay and
//! window the 24 h statistics.

use crate::domain::{Side, Symbol, SymbolSpec};
use crate::exchange::replay::{EventKind, ReplayEvent};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};

/// Public trades kept per pair (the REST `last` parameter is capped to this).
pub(crate) const TRADES_KEPT: usize = 1000;
/// Trades kept for the 24 h statistics, per pair.
const WINDOW_CAP: usize = 200_000;
const DAY_MS: i64 = 86_400_000;
/// Public trade ids start above 2^53, as BTCTurk's do (`tid` is a string for that reason).
const FIRST_TID: u64 = 100_163_842_129_199_001;

/// The best bid and ask with their sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Top {
    pub bid: Decimal,
    pub bid_qty: Decimal,
    pub ask: Decimal,
    pub ask_qty: Decimal,
    pub wall_ms: i64,
}

/// One public trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicTrade {
    pub tid: u64,
    pub wall_ms: i64,
    pub price: Decimal,
    pub qty: Decimal,
    pub side: Option<Side>,
}

/// Rolling statistics for the ticker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stats {
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub last: Decimal,
    pub volume: Decimal,
    pub average: Decimal,
}

#[derive(Debug, Default)]
struct Pair {
    top: Option<Top>,
    trades: VecDeque<PublicTrade>,
    /// (dataset ms, price, qty) of the trades of the last 24 h of market time.
    window: VecDeque<(i64, Decimal, Decimal)>,
    updated_wall_ms: i64,
}

/// A change to the public market, for the websocket feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MarketUpdate {
    Book(Symbol, Top),
    Trade(Symbol, PublicTrade),
}

/// Every listed pair's public market.
#[derive(Debug)]
pub(crate) struct Market {
    specs: BTreeMap<Symbol, SymbolSpec>,
    pairs: BTreeMap<Symbol, Pair>,
    next_tid: u64,
}

impl Market {
    pub(crate) fn new(specs: &[SymbolSpec]) -> Self {
        Self {
            specs: specs
                .iter()
                .map(|s| (s.symbol.clone(), s.clone()))
                .collect(),
            pairs: specs
                .iter()
                .map(|s| (s.symbol.clone(), Pair::default()))
                .collect(),
            next_tid: FIRST_TID,
        }
    }

    pub(crate) fn spec(&self, symbol: &Symbol) -> Option<&SymbolSpec> {
        self.specs.get(symbol)
    }
    pub(crate) fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.specs.keys()
    }

    /// Applies one dataset event at wall time `wall_ms`; returns the change for the feed.
    pub(crate) fn apply(&mut self, ev: &ReplayEvent, wall_ms: i64) -> Option<MarketUpdate> {
        let pair = self.pairs.get_mut(&ev.symbol)?;
        pair.updated_wall_ms = wall_ms;
        match &ev.kind {
            EventKind::Quote {
                bid,
                bid_qty,
                ask,
                ask_qty,
            } => {
                let top = Top {
                    bid: bid.value(),
                    bid_qty: bid_qty.value(),
                    ask: ask.value(),
                    ask_qty: ask_qty.value(),
                    wall_ms,
                };
                pair.top = Some(top.clone());
                Some(MarketUpdate::Book(ev.symbol.clone(), top))
            }
            EventKind::Trade { price, qty, side } => {
                let trade = PublicTrade {
                    tid: self.next_tid,
                    wall_ms,
                    price: price.value(),
                    qty: qty.value(),
                    side: *side,
                };
                self.next_tid += 1;
                if pair.trades.len() >= TRADES_KEPT {
                    pair.trades.pop_front();
                }
                pair.trades.push_back(trade.clone());
                if pair.window.len() >= WINDOW_CAP {
                    pair.window.pop_front();
                }
                pair.window
                    .push_back((ev.ts_ms, price.value(), qty.value()));
                while pair
                    .window
                    .front()
                    .is_some_and(|(ts, _, _)| *ts <= ev.ts_ms - DAY_MS)
                {
                    pair.window.pop_front();
                }
                Some(MarketUpdate::Trade(ev.symbol.clone(), trade))
            }
        }
    }

    pub(crate) fn top(&self, symbol: &Symbol) -> Option<&Top> {
        self.pairs.get(symbol)?.top.as_ref()
    }

    /// The last `n` public trades, newest first.
    pub(crate) fn trades(&self, symbol: &Symbol, n: usize) -> Vec<PublicTrade> {
        self.pairs.get(symbol).map_or_else(Vec::new, |p| {
            p.trades.iter().rev().take(n).cloned().collect()
        })
    }

    pub(crate) fn updated_wall_ms(&self, symbol: &Symbol) -> i64 {
        self.pairs.get(symbol).map_or(0, |p| p.updated_wall_ms)
    }

    /// 24 h statistics; `None` before the first trade or quote. Without trades, every price is
    /// the mid of the quote and the volume is zero.
    pub(crate) fn stats(&self, symbol: &Symbol) -> Option<Stats> {
        let pair = self.pairs.get(symbol)?;
        let scale = self.specs.get(symbol).map_or(8, |s| s.price_scale);
        let Some(&(_, open, _)) = pair.window.front() else {
            let top = pair.top.as_ref()?;
            let mid = ((top.bid + top.ask) / Decimal::TWO).round_dp(scale);
            return Some(Stats {
                open: mid,
                high: mid,
                low: mid,
                last: mid,
                volume: Decimal::ZERO,
                average: mid,
            });
        };
        let mut s = Stats {
            open,
            high: open,
            low: open,
            last: open,
            volume: Decimal::ZERO,
            average: open,
        };
        let mut value = Decimal::ZERO;
        for &(_, price, qty) in &pair.window {
            s.high = s.high.max(price);
            s.low = s.low.min(price);
            s.last = price;
            s.volume = s.volume.saturating_add(qty);
            value = value.saturating_add(price.saturating_mul(qty));
        }
        if s.volume > Decimal::ZERO {
            s.average = value
                .checked_div(s.volume)
                .unwrap_or(s.last)
                .round_dp(scale);
        }
        Some(s)
    }
}
