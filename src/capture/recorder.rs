//! The venue side of capture: public market data of the config's symbols from BTCTurk (or the
//! simulated exchange), into a [`DatasetWriter`].
//!
//! - The websocket feed ([`MarketFeed`] with a tap) gives every book change and live trade; a
//!   quote row is written when a symbol's best bid/ask (price or size) changes.
//! - While a symbol's feed book is stale (not yet synced, resyncing, the feed down or not
//!   configured) its orderbook and trades are read over REST every `rest_interval`.
//! - Trades from both sources are de-duplicated by id ([`TradeTrack`]); trades from before the
//!   capture started (the feed's 421 on join, REST's first page) are not recorded.
//! - `ts_ms` is this machine's clock when the data arrived (feed frames carry no time), which
//!   is also what a live run's cycle sees.
//! - Bad data from the venue (a crossed or one-sided book, a zero price) is skipped and
//!   counted, never written: the dataset always validates.

use super::trades::TradeTrack;
use super::writer::{DatasetWriter, Resume, WriterOptions};
use crate::config::{Config, ExchangeSection};
use crate::domain::{Price, Qty, Side, Symbol};
use crate::exchange::btcturk::feed::{FeedConfig, FeedEvent, Level, MarketFeed, wall_ms};
use crate::exchange::btcturk::wire::{self, OrderBook, PublicTrade};
use crate::exchange::btcturk::wire_value::WireSide;
use crate::exchange::btcturk::{Endpoint, RestClient, RestConfig, rest::Request};
use crate::exchange::replay::EventKind;
use futures_util::future::join_all;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// What to capture and how often to write.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// The config directory: `bot.yaml` names the venue and the symbols.
    pub config_dir: PathBuf,
    /// The dataset (made by `replay init`, or one a previous capture wrote).
    pub out: PathBuf,
    /// Stop after this long; `None` runs until the stop signal.
    pub duration: Option<Duration>,
    /// How often symbols without a fresh feed book are read over REST.
    pub rest_interval: Duration,
    /// How often queued rows are written (each write is one gzip member).
    pub flush_interval: Duration,
    /// How often the manifest's `end_ms` is brought up to date.
    pub checkpoint_interval: Duration,
    /// Start a new events file once the current one is this large.
    pub max_segment_bytes: u64,
}

impl CaptureOptions {
    pub fn new(config_dir: PathBuf, out: PathBuf) -> Self {
        Self {
            config_dir,
            out,
            duration: None,
            rest_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(10),
            max_segment_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What a capture did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSummary {
    pub quotes: u64,
    pub trades: u64,
    /// Rows from the websocket feed and from REST.
    pub from_feed: u64,
    pub from_rest: u64,
    /// Venue data not written: crossed or one-sided books, zero prices, unusable trades.
    pub skipped: u64,
    /// REST reads that failed (logged; the capture goes on).
    pub rest_errors: u64,
    /// The dataset's last event before this capture (`None`: it was empty).
    pub resumed_after_ms: Option<i64>,
    /// This capture's first and last event times.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub events_files: usize,
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Feed,
    Rest,
}

/// Captures until `duration` passes or `stop` turns true, then writes the final manifest.
/// `notice` receives one-line status messages (what is captured, a repaired crash leftover).
///
/// # Errors
/// A config that does not name a BTCTurk venue, a venue whose exchangeinfo cannot be read or
/// lacks a symbol, a dataset that cannot be opened or written.
pub async fn capture(
    options: &CaptureOptions,
    mut stop: watch::Receiver<bool>,
    notice: &mut (dyn FnMut(&str) + Send),
) -> Result<CaptureSummary, String> {
    let config = Config::load(&options.config_dir).map_err(|e| e.to_string())?;
    super::writer::require_dataset(&options.out)?;
    let bot = &config.bot;
    let ExchangeSection::Btcturk {
        base_url,
        simulated,
        request_timeout_ms,
        retry,
        feed,
        ..
    } = &bot.exchange
    else {
        return Err(format!(
            "{}: exchange.kind must be btcturk to capture from a venue (this config replays a \
             dataset)",
            options.config_dir.join("bot.yaml").display()
        ));
    };
    let mut rest_config = RestConfig::with_base_url(base_url);
    rest_config.rate_limits = !*simulated;
    rest_config.timeout = Duration::from_millis(*request_timeout_ms);
    rest_config.max_retries = retry.max_retries;
    rest_config.backoff_base = Duration::from_millis(retry.backoff_base_ms);
    rest_config.backoff_max = Duration::from_millis(retry.backoff_max_ms);
    rest_config.retry_after_cap = Duration::from_millis(retry.retry_after_cap_ms);
    let rest = RestClient::new(rest_config, None).map_err(|e| e.to_string())?;

    let info = rest
        .call(&Request::new(Endpoint::ExchangeInfo), |body| {
            wire::envelope(Endpoint::ExchangeInfo, body).map(|_| body.to_string())
        })
        .await
        .map_err(|e| format!("{base_url}: {}", e.error))?;
    let feed_section = feed.as_ref().filter(|f| f.enabled);
    let source = match feed_section {
        Some(f) => format!("btcbot replay capture from {base_url} (feed {})", f.url),
        None => format!("btcbot replay capture from {base_url} (REST only)"),
    };
    let (writer, resume) = DatasetWriter::open(
        &options.out,
        &bot.symbols,
        &WriterOptions {
            source,
            exchange_info: Some(info),
            max_segment_bytes: options.max_segment_bytes,
        },
    )?;
    announce(&resume, notice);

    let (tx, rx) = mpsc::channel(65_536);
    let feed = match feed_section {
        Some(f) => {
            let mut fc = FeedConfig::from_section(f, bot.symbols.clone());
            fc.tap = Some(tx);
            Some(MarketFeed::start(fc)?)
        }
        None => None,
    };
    notice(&format!(
        "capturing {} from {base_url}{} into {}",
        names(&bot.symbols),
        if feed.is_some() {
            " (websocket feed, REST while it is stale)"
        } else {
            " (REST only: bot.yaml has no enabled feed)"
        },
        options.out.display()
    ));

    let mut rec = Recorder::new(writer, resume.last_ts_ms);
    let result = rec
        .run(options, &rest, feed.as_ref(), rx, &bot.symbols, &mut stop)
        .await;
    if let Some(f) = feed {
        f.shutdown().await;
    }
    let events_files = rec.writer.events().len();
    let (first_ms, last_ms) = (rec.first_ms, rec.writer.span().1);
    // Whatever happened, what was captured is written and the manifest brought up to date.
    let finished = rec.writer.finish();
    result?;
    finished?;
    Ok(CaptureSummary {
        first_ms,
        last_ms: last_ms.filter(|_| first_ms.is_some()),
        events_files,
        ..rec.summary
    })
}

fn announce(resume: &Resume, notice: &mut (dyn FnMut(&str) + Send)) {
    if let Some(note) = &resume.repaired {
        notice(note);
    }
    if let Some(ms) = resume.last_ts_ms {
        notice(&format!(
            "resuming after {} ({} rows already in {})",
            crate::report::utc(ms),
            resume.rows_in_segment,
            resume.segment.display()
        ));
    }
}

fn names(symbols: &[Symbol]) -> String {
    symbols
        .iter()
        .map(Symbol::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

struct Recorder {
    writer: DatasetWriter,
    last_quote: HashMap<Symbol, [Decimal; 4]>,
    trades: HashMap<Symbol, TradeTrack>,
    summary: CaptureSummary,
    first_ms: Option<i64>,
}

impl Recorder {
    fn new(writer: DatasetWriter, resumed_after_ms: Option<i64>) -> Self {
        Self {
            writer,
            last_quote: HashMap::new(),
            trades: HashMap::new(),
            summary: CaptureSummary {
                quotes: 0,
                trades: 0,
                from_feed: 0,
                from_rest: 0,
                skipped: 0,
                rest_errors: 0,
                resumed_after_ms,
                first_ms: None,
                last_ms: None,
                events_files: 0,
            },
            first_ms: None,
        }
    }

    async fn run(
        &mut self,
        options: &CaptureOptions,
        rest: &RestClient,
        feed: Option<&MarketFeed>,
        mut rx: mpsc::Receiver<FeedEvent>,
        symbols: &[Symbol],
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let tick = |d: Duration| {
            let mut t = tokio::time::interval(d.max(Duration::from_millis(10)));
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        };
        let (mut rest_tick, mut flush_tick, mut checkpoint_tick) = (
            tick(options.rest_interval),
            tick(options.flush_interval),
            tick(options.checkpoint_interval),
        );
        // A duration too long for the clock to represent is as good as none.
        let deadline = options.duration.and_then(|d| Instant::now().checked_add(d));
        let until_deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until_deadline);
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                () = &mut until_deadline => break,
                Some(event) = rx.recv() => self.on_feed(event)?,
                _ = flush_tick.tick() => self.writer.flush()?,
                _ = checkpoint_tick.tick() => self.writer.checkpoint()?,
                _ = rest_tick.tick() => {
                    let now = wall_ms();
                    let stale: Vec<Symbol> = symbols
                        .iter()
                        .filter(|s| feed.is_none_or(|f| f.book_at(s, now).is_none_or(|b| b.stale)))
                        .cloned()
                        .collect();
                    self.poll_rest(rest, feed, &stale).await?;
                }
            }
        }
        // Events the feed delivered before it stopped are part of the capture.
        while let Ok(event) = rx.try_recv() {
            self.on_feed(event)?;
        }
        Ok(())
    }

    fn on_feed(&mut self, event: FeedEvent) -> Result<(), String> {
        match event {
            FeedEvent::Top {
                symbol,
                bid,
                ask,
                received_ms,
            } => {
                let level = |l: Option<Level>| l.map(|l| (l.price, l.qty));
                self.quote(&symbol, level(bid), level(ask), received_ms, Source::Feed)
            }
            FeedEvent::Trade {
                symbol,
                trade,
                received_ms,
            } => {
                let track = self.trades.entry(symbol.clone()).or_default();
                if !track.live(&trade.id, trade.ts_ms) {
                    return Ok(());
                }
                let (price, qty) = (trade.price, trade.qty.abs());
                self.trade(&symbol, price, qty, trade.side, received_ms, Source::Feed)
            }
            FeedEvent::RecentTrades { symbol, trades } => {
                let track = self.trades.entry(symbol).or_default();
                track.history(trades.iter().map(|t| (t.id.as_str(), t.ts_ms)));
                Ok(())
            }
        }
    }

    /// One orderbook and one trades read per symbol, concurrently.
    async fn poll_rest(
        &mut self,
        rest: &RestClient,
        feed: Option<&MarketFeed>,
        symbols: &[Symbol],
    ) -> Result<(), String> {
        let reads = symbols.iter().map(|s| async move {
            let book_req = Request::new(Endpoint::OrderBook)
                .query("pairSymbol", s.as_str())
                .query("limit", "5");
            let trades_req = Request::new(Endpoint::Trades)
                .query("pairSymbol", s.as_str())
                .query("last", "50");
            let book = rest.call(&book_req, wire::parse_orderbook).await;
            let received = wall_ms();
            let trades = rest.call(&trades_req, wire::parse_trades).await;
            (book, received, trades, wall_ms())
        });
        for (symbol, (book, book_ms, trades, trades_ms)) in
            symbols.iter().zip(join_all(reads).await)
        {
            match trades {
                Ok(list) => self.rest_trades(symbol, &list, trades_ms)?,
                Err(e) => self.rest_error(symbol, "trades", &e.error.to_string()),
            }
            // The feed caught up while REST was answering: its book changes are queued and
            // would land after this (possibly newer) REST book, so the feed's are kept.
            let fresh = feed.is_some_and(|f| f.book(symbol).is_some_and(|b| !b.stale));
            match book {
                Ok(_) if fresh => {}
                Ok(book) => {
                    let (bid, ask) = best_levels(&book);
                    self.quote(symbol, bid, ask, book_ms, Source::Rest)?;
                }
                Err(e) => self.rest_error(symbol, "orderbook", &e.error.to_string()),
            }
        }
        Ok(())
    }

    fn rest_trades(
        &mut self,
        symbol: &Symbol,
        list: &[PublicTrade],
        received_ms: i64,
    ) -> Result<(), String> {
        let keys: Vec<(&str, i64)> = list.iter().map(|t| (t.tid.as_str(), t.date_ms)).collect();
        let new = self.trades.entry(symbol.clone()).or_default().page(&keys);
        for i in new {
            let t = &list[i];
            let side = match t.side {
                Some(WireSide::Buy) => Some(Side::Buy),
                Some(WireSide::Sell) => Some(Side::Sell),
                _ => None,
            };
            self.trade(
                symbol,
                t.price,
                t.amount.abs(),
                side,
                received_ms,
                Source::Rest,
            )?;
        }
        Ok(())
    }

    fn rest_error(&mut self, symbol: &Symbol, what: &str, error: &str) {
        self.summary.rest_errors += 1;
        if loud(self.summary.rest_errors) {
            tracing::warn!(%symbol, "capture: {what} over REST failed: {error}");
        }
    }

    fn skip(&mut self, symbol: &Symbol, why: &str) {
        self.summary.skipped += 1;
        if loud(self.summary.skipped) {
            tracing::warn!(%symbol, count = self.summary.skipped, "capture: not recorded: {why}");
        }
    }

    fn quote(
        &mut self,
        symbol: &Symbol,
        bid: Option<BestLevel>,
        ask: Option<BestLevel>,
        ts_ms: i64,
        source: Source,
    ) -> Result<(), String> {
        let (Some((bid, bid_qty)), Some((ask, ask_qty))) = (bid, ask) else {
            // An empty side happens in a thin book; there is nothing to record until it fills.
            return Ok(());
        };
        let key = [bid, bid_qty, ask, ask_qty].map(|d| d.normalize());
        if self.last_quote.get(symbol) == Some(&key) {
            return Ok(());
        }
        let kind = match quote_event(bid, bid_qty, ask, ask_qty) {
            Ok(kind) => kind,
            Err(why) => {
                self.skip(symbol, &why);
                return Ok(());
            }
        };
        self.record(symbol, &kind, ts_ms, source)?;
        self.last_quote.insert(symbol.clone(), key);
        self.summary.quotes += 1;
        Ok(())
    }

    fn trade(
        &mut self,
        symbol: &Symbol,
        price: Decimal,
        qty: Decimal,
        side: Option<Side>,
        ts_ms: i64,
        source: Source,
    ) -> Result<(), String> {
        let kind = match (Price::new(price), Qty::new(qty)) {
            (Ok(price), Ok(qty)) => EventKind::Trade { price, qty, side },
            (Err(e), _) | (_, Err(e)) => {
                self.skip(symbol, &format!("trade: {e}"));
                return Ok(());
            }
        };
        self.record(symbol, &kind, ts_ms, source)?;
        self.summary.trades += 1;
        Ok(())
    }

    fn record(
        &mut self,
        symbol: &Symbol,
        kind: &EventKind,
        ts_ms: i64,
        source: Source,
    ) -> Result<(), String> {
        let ts = self.writer.push(ts_ms, symbol, kind)?;
        self.first_ms.get_or_insert(ts);
        match source {
            Source::Feed => self.summary.from_feed += 1,
            Source::Rest => self.summary.from_rest += 1,
        }
        Ok(())
    }
}

/// A book side's best level: price and size.
type BestLevel = (Decimal, Decimal);

/// The best bid and ask with a size: a zero-size level is no level (the feed drops them too,
/// and in a dataset a zero size would mean unlimited liquidity).
fn best_levels(book: &OrderBook) -> (Option<BestLevel>, Option<BestLevel>) {
    let best = |levels: &[wire::Level]| {
        levels
            .iter()
            .find(|l| l.qty > Decimal::ZERO)
            .map(|l| (l.price, l.qty))
    };
    (best(&book.bids), best(&book.asks))
}

/// A quote row, or why the venue's book cannot be one.
fn quote_event(
    bid: Decimal,
    bid_qty: Decimal,
    ask: Decimal,
    ask_qty: Decimal,
) -> Result<EventKind, String> {
    let bid = Price::new(bid).map_err(|e| format!("bid: {e}"))?;
    let ask = Price::new(ask).map_err(|e| format!("ask: {e}"))?;
    let bid_qty = Qty::new(bid_qty).map_err(|e| format!("bid size: {e}"))?;
    let ask_qty = Qty::new(ask_qty).map_err(|e| format!("ask size: {e}"))?;
    if bid > ask {
        return Err(format!("crossed book: bid {bid} > ask {ask}"));
    }
    Ok(EventKind::Quote {
        bid,
        bid_qty,
        ask,
        ask_qty,
    })
}

/// Logs the first few of a kind of problem, then every hundredth.
fn loud(n: u64) -> bool {
    n <= 10 || n.is_multiple_of(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn venue_books_that_cannot_be_rows_are_refused() {
        assert!(quote_event(d("10"), d("1"), d("11"), d("2")).is_ok());
        assert!(
            quote_event(d("10"), d("1"), d("10"), d("2")).is_ok(),
            "locked"
        );
        let e = quote_event(d("12"), d("1"), d("11"), d("2")).unwrap_err();
        assert!(e.contains("crossed"), "{e}");
        assert!(quote_event(d("0"), d("1"), d("11"), d("2")).is_err());
        assert!(quote_event(d("10"), d("-1"), d("11"), d("2")).is_err());
    }

    #[test]
    fn zero_size_levels_are_not_the_best() {
        let level = |p: &str, q: &str| wire::Level {
            price: d(p),
            qty: d(q),
        };
        let book = OrderBook {
            timestamp_ms: 0,
            bids: vec![level("10", "0"), level("9", "2")],
            asks: vec![level("11", "0")],
        };
        assert_eq!(best_levels(&book), (Some((d("9"), d("2"))), None));
    }
}
