//! The connection task of [`super::MarketFeed`]: connect, join, read frames into the
//! shared books, watch for silence and missing snapshots, reconnect at a bounded pace.

use super::book::{DiffError, Frame, FrameError, parse_frame};
use super::{Count, FeedConfig, FeedEvent, Shared, wall_ms};
use crate::domain::Symbol;
use futures_util::SinkExt;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Without a 991 hello this long after connecting, join anyway.
const HELLO_WAIT: Duration = Duration::from_secs(5);
const MINUTE: Duration = Duration::from_secs(60);

/// When the next connection attempt may start: exponential backoff from `min` (doubling per
/// failed connection, up to `max`) and at most `per_min` attempts in any rolling minute.
#[derive(Debug)]
pub(super) struct Pacer {
    min: Duration,
    max: Duration,
    per_min: usize,
    attempts: VecDeque<Instant>,
    failures: u32,
}

impl Pacer {
    pub fn new(min: Duration, max: Duration, per_min: u32) -> Self {
        Self {
            min,
            max: max.max(min),
            per_min: usize::try_from(per_min.max(1)).unwrap_or(usize::MAX),
            attempts: VecDeque::new(),
            failures: 0,
        }
    }

    /// Records an attempt starting at `at`.
    pub fn attempt(&mut self, at: Instant) {
        self.attempts.push_back(at);
        while self.attempts.len() > self.per_min {
            self.attempts.pop_front();
        }
    }

    /// After a connection ended at `now`: a healthy one (it delivered data) resets the backoff.
    pub fn next_after(&mut self, now: Instant, healthy: bool) -> Instant {
        self.failures = if healthy {
            0
        } else {
            self.failures.saturating_add(1)
        };
        let factor = 1u32 << self.failures.saturating_sub(1).min(16);
        let delay = self.min.saturating_mul(factor).min(self.max).max(self.min);
        let mut at = now + delay;
        if self.attempts.len() >= self.per_min
            && let Some(oldest) = self.attempts.front()
        {
            at = at.max(*oldest + MINUTE);
        }
        at
    }
}

pub(super) async fn run(shared: Arc<Shared>, config: FeedConfig, mut stop: watch::Receiver<bool>) {
    let mut pacer = Pacer::new(
        config.reconnect_min,
        config.reconnect_max,
        config.max_connects_per_min,
    );
    loop {
        pacer.attempt(Instant::now());
        shared.bump(Count::Connects);
        let connecting = tokio_tungstenite::connect_async(config.url.as_str());
        let connected = tokio::select! {
            r = tokio::time::timeout(config.connect_timeout, connecting) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let healthy = match connected {
            Ok(Ok((ws, _))) => {
                shared.bump(Count::Connected);
                let healthy = Session::new(&shared, &config).run(ws, &mut stop).await;
                shared.bump(Count::Disconnects);
                healthy
            }
            Ok(Err(e)) => {
                tracing::warn!(url = %config.url, "feed: connect failed: {e}");
                false
            }
            Err(_) => {
                tracing::warn!(url = %config.url, "feed: connect timed out");
                false
            }
        };
        mark_all_stale(&shared);
        if *stop.borrow() {
            return;
        }
        let at = pacer.next_after(Instant::now(), healthy);
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn mark_all_stale(shared: &Shared) {
    let mut st = shared.lock();
    st.connected = false;
    let last = st.last_frame_ms;
    for s in st.books.values_mut() {
        s.invalidate(last);
    }
}

fn subscription(channel: &str, event: &str, join: bool) -> Message {
    let body =
        serde_json::json!([151, {"type": 151, "channel": channel, "event": event, "join": join}]);
    Message::text(body.to_string())
}

/// Logs the first few of a kind of problem, then every hundredth.
fn loud(n: u64) -> bool {
    n <= 10 || n.is_multiple_of(100)
}

/// An `obdiff` join sent and its 431 not yet received.
#[derive(Debug, Clone, Copy)]
struct Pending {
    since: Instant,
    /// The server acked the join (`join|obdiff:SYMBOL`): from now on a 432 before the 431 is a
    /// protocol error, while before it a 432 may still be in flight from the left subscription.
    acked: bool,
}

impl Pending {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            acked: false,
        }
    }
}

struct Session<'a> {
    shared: &'a Shared,
    config: &'a FeedConfig,
    joined: bool,
    /// `obdiff` joins awaiting their 431.
    pending: HashMap<Symbol, Pending>,
    /// Data arrived on this connection.
    healthy: bool,
}

impl<'a> Session<'a> {
    fn new(shared: &'a Shared, config: &'a FeedConfig) -> Self {
        Self {
            shared,
            config,
            joined: false,
            pending: HashMap::new(),
            healthy: false,
        }
    }

    /// Reads until the connection ends or the feed stops; `true` if it delivered data.
    async fn run(&mut self, mut ws: Ws, stop: &mut watch::Receiver<bool>) -> bool {
        let started = Instant::now();
        {
            let mut st = self.shared.lock();
            st.connected = true;
            st.last_frame_ms = wall_ms();
        }
        let mut last_frame = started;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // `None`: the feed is stopping or the connection went silent.
            let out: Option<Vec<Message>> = tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(m)) => {
                        last_frame = Instant::now();
                        match self.on_message(m) {
                            Some(out) => Some(out),
                            None => return self.healthy,
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!("feed: connection failed: {e}");
                        return self.healthy;
                    }
                    None => {
                        tracing::warn!("feed: connection closed by the server");
                        return self.healthy;
                    }
                },
                () = tokio::time::sleep_until(last_frame + self.config.silence_timeout) => {
                    self.shared.bump(Count::SilenceTimeouts);
                    tracing::warn!(after = ?self.config.silence_timeout,
                        "feed: no frame, reconnecting");
                    None
                }
                _ = tick.tick() => Some(self.on_tick(started)),
                r = stop.wait_for(|s| *s) => {
                    drop(r);
                    None
                }
            };
            let Some(out) = out else {
                let _ = tokio::time::timeout(Duration::from_millis(300), ws.close(None)).await;
                return self.healthy;
            };
            for m in out {
                if let Err(e) = ws.feed(m).await {
                    tracing::warn!("feed: send failed: {e}");
                    return self.healthy;
                }
            }
            if let Err(e) = ws.flush().await {
                tracing::warn!("feed: send failed: {e}");
                return self.healthy;
            }
        }
    }

    /// The frames to send in answer; `None` when the connection is over.
    fn on_message(&mut self, m: Message) -> Option<Vec<Message>> {
        self.shared.bump(Count::Frames);
        self.shared.lock().last_frame_ms = wall_ms();
        match m {
            Message::Text(t) => Some(self.on_text(t.as_str())),
            Message::Binary(b) => match std::str::from_utf8(&b) {
                Ok(t) => Some(self.on_text(t)),
                Err(_) => {
                    self.bad(&FrameError::Garbage("a binary frame".into()));
                    Some(Vec::new())
                }
            },
            // tungstenite queues the pong itself and sends it on the next read or write.
            Message::Ping(_) => {
                self.shared.bump(Count::Pings);
                Some(Vec::new())
            }
            Message::Pong(_) | Message::Frame(_) => Some(Vec::new()),
            Message::Close(reason) => {
                tracing::warn!(?reason, "feed: the server closed the connection");
                None
            }
        }
    }

    fn on_tick(&mut self, started: Instant) -> Vec<Message> {
        let now = Instant::now();
        if !self.joined {
            if now.duration_since(started) >= HELLO_WAIT {
                tracing::warn!("feed: no 991 hello, joining anyway");
                return self.join_all();
            }
            return Vec::new();
        }
        let late: Vec<Symbol> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= self.config.snapshot_timeout)
            .map(|(s, _)| s.clone())
            .collect();
        let mut out = Vec::new();
        for s in late {
            tracing::warn!(symbol = %s, "feed: no snapshot after joining, resubscribing");
            out.extend(self.resubscribe(&s));
        }
        out
    }

    fn join_all(&mut self) -> Vec<Message> {
        self.joined = true;
        let mut out = Vec::new();
        for s in &self.config.symbols {
            out.push(subscription("obdiff", s.as_str(), true));
            if self.config.ticker {
                out.push(subscription("ticker", s.as_str(), true));
            }
            if self.config.trades {
                out.push(subscription("trade", s.as_str(), true));
            }
            self.pending.insert(s.clone(), Pending::new());
        }
        out
    }

    /// Invalidates `symbol`'s book and asks for a fresh 431 (leave + join).
    fn resubscribe(&mut self, symbol: &Symbol) -> Vec<Message> {
        self.shared.bump(Count::Resubscribes);
        {
            let mut st = self.shared.lock();
            let last = st.last_frame_ms;
            if let Some(s) = st.books.get_mut(symbol) {
                s.invalidate(last);
            }
        }
        self.pending.insert(symbol.clone(), Pending::new());
        vec![
            subscription("obdiff", symbol.as_str(), false),
            subscription("obdiff", symbol.as_str(), true),
        ]
    }

    fn ignore(&self, why: &str) {
        let n = self.shared.bump(Count::IgnoredFrames);
        if loud(n) {
            tracing::debug!("feed: ignored a frame ({why})");
        }
    }

    fn bad(&self, e: &FrameError) {
        let n = self.shared.bump(Count::BadFrames);
        if loud(n) {
            tracing::warn!(count = n, "feed: bad frame: {e}");
        }
    }

    /// Hands `event` to the recorder, if one listens; never waits for it.
    fn tap(&self, event: FeedEvent) {
        let Some(tap) = &self.config.tap else { return };
        if let Err(TrySendError::Full(_)) = tap.try_send(event) {
            let n = self.shared.bump(Count::IgnoredFrames);
            if loud(n) {
                tracing::warn!("feed: the recorder is behind; an event was dropped");
            }
        }
    }

    /// A `Top` event for `symbol`'s book as it is now.
    fn top(&self, symbol: &Symbol, received_ms: i64) -> Option<FeedEvent> {
        self.config.tap.as_ref()?;
        let st = self.shared.lock();
        let s = st.books.get(symbol)?;
        Some(FeedEvent::Top {
            symbol: symbol.clone(),
            bid: s.book.best_bid(),
            ask: s.book.best_ask(),
            received_ms,
        })
    }

    fn follows(&self, symbol: &Symbol) -> bool {
        self.config.symbols.contains(symbol)
    }

    fn on_text(&mut self, text: &str) -> Vec<Message> {
        let frame = match parse_frame(text) {
            Ok(f) => f,
            Err(e) => {
                self.bad(&e);
                return match e {
                    FrameError::Malformed {
                        kind: 431 | 432,
                        symbol: Some(s),
                        ..
                    } if self.follows(&s) && !self.pending.contains_key(&s) => self.resubscribe(&s),
                    _ => Vec::new(),
                };
            }
        };
        let now_ms = wall_ms();
        match frame {
            Frame::Hello if !self.joined => return self.join_all(),
            Frame::Hello => self.ignore("a second hello"),
            Frame::Ack { ok: true, message } => {
                let joined = message.strip_prefix("join|obdiff:").map(Symbol::new);
                if let Some(Ok(s)) = joined
                    && let Some(p) = self.pending.get_mut(&s)
                {
                    p.acked = true;
                }
            }
            Frame::Ack { ok: false, message } => {
                tracing::warn!(%message, "feed: subscription refused");
            }
            Frame::Snapshot(f) => {
                if !self.follows(&f.symbol) || f.channel.eq_ignore_ascii_case("orderbook") {
                    self.ignore("a snapshot of another subscription");
                    return Vec::new();
                }
                self.pending.remove(&f.symbol);
                self.shared.bump(Count::Snapshots);
                self.healthy = true;
                {
                    let mut st = self.shared.lock();
                    if let Some(s) = st.books.get_mut(&f.symbol) {
                        s.book.reset(&f);
                        s.updated_ms = now_ms;
                    }
                }
                if let Some(top) = self.top(&f.symbol, now_ms) {
                    self.tap(top);
                }
            }
            Frame::Diff(f) => {
                if !self.follows(&f.symbol) || f.channel.eq_ignore_ascii_case("orderbook") {
                    self.ignore("a diff of another subscription");
                    return Vec::new();
                }
                match self.pending.get(&f.symbol) {
                    Some(p) if p.acked => {
                        tracing::warn!(symbol = %f.symbol,
                            "feed: a diff before the snapshot; resubscribing");
                        return self.resubscribe(&f.symbol);
                    }
                    Some(_) => {
                        // Sent before the server saw our leave: not ours to apply.
                        self.ignore("a diff while awaiting a snapshot");
                        return Vec::new();
                    }
                    None => {}
                }
                let applied = {
                    let mut st = self.shared.lock();
                    let Some(s) = st.books.get_mut(&f.symbol) else {
                        return Vec::new();
                    };
                    let r = s.book.apply_diff(&f);
                    if r.is_ok() {
                        s.updated_ms = now_ms;
                    }
                    r
                };
                match applied {
                    Ok(()) => {
                        self.shared.bump(Count::Diffs);
                        self.healthy = true;
                        if let Some(top) = self.top(&f.symbol, now_ms) {
                            self.tap(top);
                        }
                    }
                    Err(e) => {
                        if matches!(e, DiffError::Gap { .. }) {
                            self.shared.bump(Count::CsGaps);
                        }
                        tracing::warn!(symbol = %f.symbol, "feed: {e}; resubscribing");
                        return self.resubscribe(&f.symbol);
                    }
                }
            }
            Frame::Ticker(mut t) => {
                t.received_ms = now_ms;
                self.healthy = true;
                if let Some(s) = self.shared.lock().books.get_mut(&t.symbol) {
                    s.ticker = Some(t);
                }
            }
            Frame::TradeList { symbol, trades } => {
                let newest = trades
                    .iter()
                    .max_by_key(|t| t.ts_ms)
                    .and_then(|t| t.print());
                if let (Some(p), Some(s)) = (newest, self.shared.lock().books.get_mut(&symbol)) {
                    s.record_trade(p);
                }
                if self.follows(&symbol) {
                    self.tap(FeedEvent::RecentTrades { symbol, trades });
                }
            }
            Frame::Trade { symbol, trade } => {
                self.healthy = true;
                if let (Some(p), Some(s)) =
                    (trade.print(), self.shared.lock().books.get_mut(&symbol))
                {
                    s.record_trade(p);
                }
                if self.follows(&symbol) {
                    self.tap(FeedEvent::Trade {
                        symbol,
                        trade,
                        received_ms: now_ms,
                    });
                }
            }
            Frame::Other(kind) => self.ignore(&format!("model {kind}")),
        }
        Vec::new()
    }
}
