//! [`MarketFeed`]: BTCTurk's websocket market feed (§5 of `btcturk-api.md`) kept as a local,
//! per-symbol order book that the cycle reads without awaiting the network.
//!
//! A background task (`feed_conn.rs`; frame parsing and the book are in `feed_book.rs`) connects, waits for the 991 hello, joins `obdiff`,
//! `ticker` and `trade` per symbol (151 frames, acked by 100), applies 431 snapshots and 432
//! diffs (`CS` must step by exactly 1; a gap, a diff before any snapshot or a malformed book
//! frame invalidates that book and resubscribes it with leave + join, so a fresh 431 arrives),
//! records the last 402 ticker and the last 421/422 trade, answers protocol pings, reconnects
//! after `silence_timeout` without any frame, and paces reconnects (≥ `reconnect_min`, doubling
//! up to `reconnect_max` while connections fail, at most `max_connects_per_min`).
//!
//! Frames carry no timestamp, so times here are the local wall clock (ms since the epoch):
//! `updated_ms` when the last 431/432 was applied, `as_of_ms` the last moment the book was known
//! to be current (the latest frame of any kind on the live connection while the book was in
//! sync). [`MarketFeed::snapshot`] returns only books in sync with an `as_of_ms` within
//! `max_age`; the caller reads the others over REST.

#[path = "feed_book.rs"]
pub mod book;
#[path = "feed_conn.rs"]
mod conn;
#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;

use crate::domain::{MarketSnapshot, Price, Qty, Symbol, TradePrint};
use book::LocalBook;
pub use book::{FeedTicker, FeedTrade, Level};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Everything [`MarketFeed::start`] needs; [`FeedConfig::new`] gives BTCTurk's defaults.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// `wss://ws-feed-pro.btcturk.com` or `ws://127.0.0.1:PORT/` (the simulated exchange).
    pub url: String,
    pub symbols: Vec<Symbol>,
    /// No frame at all (data, ping, pong) for this long → reconnect. BTCTurk pings every ~15 s.
    pub silence_timeout: Duration,
    /// The shortest wait before a reconnect (BTCTurk: keep ≥ 4 s).
    pub reconnect_min: Duration,
    /// The longest wait between reconnects while connections keep failing.
    pub reconnect_max: Duration,
    /// Connection attempts per rolling minute (BTCTurk blocks an IP for 60 s above 15).
    pub max_connects_per_min: u32,
    /// Levels per side in a [`BookView`] (the local book keeps every level the server sends).
    pub depth: usize,
    /// [`MarketFeed::snapshot`] leaves out books not confirmed within this long.
    pub max_age: Duration,
    /// A join that brings no 431 within this long is repeated (unknown pairs are acked ok and
    /// then stay silent).
    pub snapshot_timeout: Duration,
    /// TCP + websocket handshake limit.
    pub connect_timeout: Duration,
    /// Also join `ticker` (402, about once a second: it keeps quiet books confirmed).
    pub ticker: bool,
    /// Also join `trade` (421 on join, then 422) for the last trade.
    pub trades: bool,
    /// Every book change and trade as it arrives, for a recorder (`btcbot replay capture`).
    /// Sent with `try_send`: a full channel drops the event (with a warning) rather than stall
    /// the connection.
    pub tap: Option<mpsc::Sender<FeedEvent>>,
}

impl FeedConfig {
    pub fn new(url: impl Into<String>, symbols: Vec<Symbol>) -> Self {
        Self {
            url: url.into(),
            symbols,
            silence_timeout: Duration::from_secs(45),
            reconnect_min: Duration::from_secs(4),
            reconnect_max: Duration::from_secs(60),
            max_connects_per_min: 15,
            depth: 5,
            max_age: Duration::from_secs(5),
            snapshot_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            ticker: true,
            trades: true,
            tap: None,
        }
    }

    /// The feed bot.yaml's `exchange.feed` section describes, for `symbols`.
    pub fn from_section(f: &crate::config::FeedSection, symbols: Vec<Symbol>) -> Self {
        let mut fc = Self::new(f.url.clone(), symbols);
        fc.max_age = Duration::from_millis(f.max_age_ms);
        fc.silence_timeout = Duration::from_millis(f.silence_timeout_ms);
        fc.reconnect_min = Duration::from_millis(f.reconnect_min_ms);
        fc.reconnect_max = Duration::from_millis(f.reconnect_max_ms);
        fc.max_connects_per_min = f.max_connects_per_min;
        fc
    }
}

/// What [`FeedConfig::tap`] receives. Times are the local wall clock when the frame arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A 431 or 432 was applied: the book's best levels after it (a side may be empty).
    Top {
        symbol: Symbol,
        bid: Option<Level>,
        ask: Option<Level>,
        received_ms: i64,
    },
    /// A live 422 trade.
    Trade {
        symbol: Symbol,
        trade: FeedTrade,
        received_ms: i64,
    },
    /// The 421 list sent on joining: trades from before the subscription.
    RecentTrades {
        symbol: Symbol,
        trades: Vec<FeedTrade>,
    },
}

/// Running totals since [`MarketFeed::start`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedCounters {
    /// Connection attempts (successful or not).
    pub connects: u64,
    /// Attempts that completed the websocket handshake.
    pub connected: u64,
    /// Connections that ended (closed, failed, silent).
    pub disconnects: u64,
    /// Silence watchdog expiries.
    pub silence_timeouts: u64,
    /// Leave + join of one symbol's `obdiff` (gap, early diff, bad frame, missing snapshot).
    pub resubscribes: u64,
    /// 432s whose `CS` did not step by exactly 1.
    pub cs_gaps: u64,
    /// Every websocket message received (text, binary, ping, pong, close).
    pub frames: u64,
    /// Garbage and malformed frames.
    pub bad_frames: u64,
    /// Well-formed frames not used (unknown models, other channels, diffs while resyncing).
    pub ignored_frames: u64,
    pub snapshots: u64,
    /// 432s applied.
    pub diffs: u64,
    /// Protocol pings received (each answered with a pong).
    pub pings: u64,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Count {
    Connects,
    Connected,
    Disconnects,
    SilenceTimeouts,
    Resubscribes,
    CsGaps,
    Frames,
    BadFrames,
    IgnoredFrames,
    Snapshots,
    Diffs,
    Pings,
}

/// A symbol's book as the cycle sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookView {
    pub symbol: Symbol,
    pub best_bid: Option<Level>,
    pub best_ask: Option<Level>,
    /// Up to `depth` levels, best first.
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    /// `CS` of the last applied frame while in sync.
    pub cs: Option<u64>,
    /// Local ms when the last 431/432 was applied (frames carry no exchange timestamp).
    pub updated_ms: i64,
    /// Local ms up to which the book is known to be current.
    pub as_of_ms: i64,
    /// `now - as_of_ms`.
    pub age_ms: i64,
    /// In sync: a snapshot and an unbroken `CS` chain on a live connection.
    pub synced: bool,
    /// Not in sync, or `age_ms` above `max_age`.
    pub stale: bool,
    pub last_trade: Option<TradePrint>,
    pub ticker: Option<FeedTicker>,
}

#[derive(Debug, Default)]
pub(super) struct SymbolState {
    pub book: LocalBook,
    pub updated_ms: i64,
    /// For a book out of sync: when it was last known to be current.
    pub valid_until_ms: i64,
    pub ticker: Option<FeedTicker>,
    pub last_trade: Option<TradePrint>,
}

impl SymbolState {
    /// Invalidates the book, remembering how long it was good.
    pub fn invalidate(&mut self, last_frame_ms: i64) {
        if self.book.is_synced() {
            self.valid_until_ms = last_frame_ms;
        }
        self.book.invalidate();
    }
    pub fn record_trade(&mut self, print: TradePrint) {
        if self
            .last_trade
            .as_ref()
            .is_none_or(|t| t.ts_ms <= print.ts_ms)
        {
            self.last_trade = Some(print);
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub connected: bool,
    /// Local ms of the latest frame on the current connection.
    pub last_frame_ms: i64,
    pub books: HashMap<Symbol, SymbolState>,
}

pub(super) struct Shared {
    state: Mutex<State>,
    counts: [AtomicU64; 12],
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    pub fn bump(&self, c: Count) -> u64 {
        self.counts[c as usize].fetch_add(1, Ordering::Relaxed) + 1
    }
    fn counters(&self) -> FeedCounters {
        let g = |c: Count| self.counts[c as usize].load(Ordering::Relaxed);
        FeedCounters {
            connects: g(Count::Connects),
            connected: g(Count::Connected),
            disconnects: g(Count::Disconnects),
            silence_timeouts: g(Count::SilenceTimeouts),
            resubscribes: g(Count::Resubscribes),
            cs_gaps: g(Count::CsGaps),
            frames: g(Count::Frames),
            bad_frames: g(Count::BadFrames),
            ignored_frames: g(Count::IgnoredFrames),
            snapshots: g(Count::Snapshots),
            diffs: g(Count::Diffs),
            pings: g(Count::Pings),
        }
    }
}

/// Milliseconds since the Unix epoch from the wall clock.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The running feed. Dropping it stops the background task.
pub struct MarketFeed {
    shared: Arc<Shared>,
    depth: usize,
    max_age_ms: i64,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MarketFeed {
    /// Spawns the connection task on the current tokio runtime and returns at once.
    ///
    /// # Errors
    /// A URL that is not `ws://` or `wss://`, or no symbols.
    pub fn start(config: FeedConfig) -> Result<MarketFeed, String> {
        let url = config.url.trim().to_ascii_lowercase();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(format!(
                "feed url {:?}: expected ws:// or wss://",
                config.url
            ));
        }
        if config.symbols.is_empty() {
            return Err("feed: no symbols to subscribe".into());
        }
        let books = config
            .symbols
            .iter()
            .map(|s| (s.clone(), SymbolState::default()))
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                books,
                ..State::default()
            }),
            counts: Default::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let max_age_ms = i64::try_from(config.max_age.as_millis()).unwrap_or(i64::MAX);
        let depth = config.depth.max(1);
        let task = tokio::spawn(conn::run(Arc::clone(&shared), config, stopped));
        Ok(MarketFeed {
            shared,
            depth,
            max_age_ms,
            stop,
            task: Some(task),
        })
    }

    /// The book of `symbol` now (wall clock); `None` for a symbol the feed does not follow.
    pub fn book(&self, symbol: &Symbol) -> Option<BookView> {
        self.book_at(symbol, wall_ms())
    }

    /// The book of `symbol` with its age measured at `now_ms`.
    pub fn book_at(&self, symbol: &Symbol, now_ms: i64) -> Option<BookView> {
        let st = self.shared.lock();
        let s = st.books.get(symbol)?;
        let synced = st.connected && s.book.is_synced();
        let as_of_ms = if synced {
            st.last_frame_ms.max(s.updated_ms)
        } else {
            s.valid_until_ms
        };
        let age_ms = now_ms.saturating_sub(as_of_ms).max(0);
        Some(BookView {
            symbol: symbol.clone(),
            best_bid: s.book.best_bid(),
            best_ask: s.book.best_ask(),
            bids: s.book.bids(self.depth),
            asks: s.book.asks(self.depth),
            cs: s.book.cs(),
            updated_ms: s.updated_ms,
            as_of_ms,
            age_ms,
            synced,
            stale: !synced || age_ms > self.max_age_ms,
            last_trade: s.last_trade.clone(),
            ticker: s.ticker.clone(),
        })
    }

    /// Fresh books only (in sync, confirmed within `max_age` of `now_ms`, both sides present),
    /// in the order asked; the caller reads the missing symbols over REST. `exchange_ts_ms` and
    /// `received_ts_ms` are the book's `as_of_ms`.
    pub fn snapshot(&self, symbols: &[Symbol], now_ms: i64) -> Vec<MarketSnapshot> {
        symbols
            .iter()
            .filter_map(|s| {
                let v = self.book_at(s, now_ms)?;
                if v.stale {
                    return None;
                }
                let (bid, ask) = (v.best_bid?, v.best_ask?);
                Some(MarketSnapshot {
                    symbol: v.symbol,
                    bid: Price::new(bid.price).ok()?,
                    bid_qty: Qty::new(bid.qty).ok()?,
                    ask: Price::new(ask.price).ok()?,
                    ask_qty: Qty::new(ask.qty).ok()?,
                    last_trade: v.last_trade,
                    exchange_ts_ms: v.as_of_ms,
                    received_ts_ms: v.as_of_ms,
                })
            })
            .collect()
    }

    pub fn counters(&self) -> FeedCounters {
        self.shared.counters()
    }

    /// A websocket is open (books may still be resyncing).
    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Stops the task and closes the connection (politely, within a second).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for MarketFeed {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
