//! The websocket feed (BTCTurk's `wss://ws-feed-pro.btcturk.com`, §5 of `btcturk-api.md`) from
//! the same market as the REST endpoints, on its own port.
//!
//! - on connect: `[991,{"type":991,"current":"6.0.0","min":"2.3.0"}]`;
//! - `[151,{"type":151,"channel":C,"event":E,"join":true|false}]` → `[100,{"type":100,
//!   "ok":true,"message":"join|C:E"}]` (`ok:false` for a duplicate join; unknown channels and
//!   pairs are acked `ok:true` and then stay silent, as on BTCTurk);
//! - `obdiff`: a 431 snapshot, then a 432 per book change with `CS` stepping by exactly 1 and
//!   levels `{CP,P,A}` (0 update, 1 new, 3 delete); `orderbook`: a 431 per change;
//! - `ticker` (pair or `all`): 402 / 401 on join and every second; `trade`: 421 (last 50) on
//!   join, then a 422 per trade (`S`: 0 sell, 1 buy);
//! - `[114,{publicKey,nonce,signature,...}]` login is verified (signature over key + nonce) and
//!   answered `[114,{"type":114,"ok":..,"message":..}]`; user events are not simulated;
//! - a protocol Ping every 15 s. With the `ws_cs_gap=P` fault a 432 skips one `CS`.

use super::Shared;
use super::json::J;
use super::market::{MarketUpdate, Top};
use crate::domain::{Side, Symbol};
use crate::exchange::btcturk::auth;
use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Message;

pub(crate) async fn run(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, Arc::clone(&shared)));
                }
                Err(e) => tracing::warn!("sim-exchange websocket: accept failed: {e}"),
            },
            () = shared.stopped() => return,
        }
    }
}

/// One subscriber's view of one pair's `obdiff` book.
struct Diff {
    cs: u64,
    sent: Option<Top>,
}

#[derive(Default)]
struct Session {
    joined: BTreeSet<(String, String)>,
    diffs: BTreeMap<Symbol, Diff>,
    /// `orderbook` channel sequence per pair.
    full_cs: BTreeMap<Symbol, u64>,
    joins: u64,
}

fn frame(kind: u16, fields: Vec<(&'static str, J)>) -> Message {
    Message::text(J::Arr(vec![J::int(kind), J::Obj(fields)]).text())
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let mut updates = shared.lock().subscribe();
    let hello = frame(
        991,
        vec![
            ("type", J::int(991)),
            ("current", J::str("6.0.0")),
            ("min", J::str("2.3.0")),
        ],
    );
    if ws.send(hello).await.is_err() {
        return;
    }
    let mut session = Session::default();
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        let out: Vec<Message> = tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => on_request(&shared, &mut session, text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => Vec::new(),
            },
            update = updates.recv() => match update {
                Ok(u) => on_update(&shared, &mut session, &u),
                // Too far behind: start every book over with a fresh snapshot.
                Err(RecvError::Lagged(_)) => resnapshot(&shared, &mut session),
                Err(RecvError::Closed) => return,
            },
            _ = ticker.tick() => tickers(&shared, &session),
            _ = ping.tick() => vec![Message::Ping(Vec::new().into())],
            () = shared.stopped() => {
                let _ = ws.close(None).await;
                return;
            }
        };
        for m in out {
            if ws.send(m).await.is_err() {
                return;
            }
        }
    }
}

fn on_request(shared: &Shared, s: &mut Session, text: &str) -> Vec<Message> {
    let Ok(serde_json::Value::Array(parts)) = serde_json::from_str(text) else {
        return Vec::new();
    };
    let body = parts.get(1).cloned().unwrap_or_default();
    let field = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    match parts.first().and_then(serde_json::Value::as_u64) {
        Some(151) => {
            let (channel, event) = (field("channel"), field("event"));
            let join = body
                .get("join")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true);
            let key = (channel.clone(), event.clone());
            let ok = if join {
                s.joined.insert(key)
            } else {
                s.joined.remove(&key)
            };
            let verb = if join { "join" } else { "leave" };
            let mut out = vec![frame(
                100,
                vec![
                    ("type", J::int(100)),
                    ("ok", J::Bool(ok)),
                    ("message", J::str(format!("{verb}|{channel}:{event}"))),
                ],
            )];
            if ok && join {
                out.extend(on_join(shared, s, &channel, &event));
            } else if ok
                && channel == "obdiff"
                && let Ok(sym) = Symbol::new(&event)
            {
                s.diffs.remove(&sym);
            }
            out
        }
        Some(114) => {
            let key = field("publicKey");
            let nonce = body.get("nonce").and_then(serde_json::Value::as_i64);
            let secret = shared
                .lock()
                .accounts
                .get(&key)
                .map(|a| a.secret_b64.clone());
            let ok = match (secret, nonce) {
                (Some(secret), Some(nonce)) => {
                    auth::verify(&key, &secret, nonce, &field("signature"))
                }
                _ => false,
            };
            let message = if ok {
                "Success"
            } else {
                "Authentication failed"
            };
            vec![frame(
                114,
                vec![
                    ("type", J::int(114)),
                    ("ok", J::Bool(ok)),
                    ("message", J::str(message)),
                ],
            )]
        }
        _ => Vec::new(),
    }
}

/// The first frames after a join. The event must be an upper-case pair (the feed is case
/// sensitive) or `all` for the ticker.
fn on_join(shared: &Shared, s: &mut Session, channel: &str, event: &str) -> Vec<Message> {
    if channel == "ticker" && event == "all" {
        return tickers(shared, s);
    }
    let Ok(symbol) = Symbol::new(event) else {
        return Vec::new();
    };
    if symbol.as_str() != event || shared.lock().market.spec(&symbol).is_none() {
        return Vec::new();
    }
    match channel {
        "obdiff" => {
            // Each subscription counts from its own base.
            s.joins += 1;
            let base = 100_000 * s.joins;
            let top = shared.lock().market.top(&symbol).cloned();
            let snapshot = book_frame(431, "obdiff", &symbol, base, top.as_ref());
            s.diffs.insert(
                symbol,
                Diff {
                    cs: base,
                    sent: top,
                },
            );
            vec![snapshot]
        }
        "orderbook" => {
            let top = shared.lock().market.top(&symbol).cloned();
            s.full_cs.insert(symbol.clone(), 1);
            vec![book_frame(431, "orderbook", &symbol, 1, top.as_ref())]
        }
        "ticker" => ticker_frame(shared, &symbol).into_iter().collect(),
        "trade" => {
            let trades = shared.lock().market.trades(&symbol, 50);
            let items = trades
                .iter()
                .map(|t| {
                    J::Obj(vec![
                        ("D", J::str(t.wall_ms.to_string())),
                        ("I", J::str(t.tid.to_string())),
                        ("A", J::dec(t.qty)),
                        ("P", J::dec(t.price)),
                        ("S", J::int(side_code(t.side))),
                    ])
                })
                .collect();
            vec![frame(
                421,
                vec![
                    ("symbol", J::str(event)),
                    ("items", J::Arr(items)),
                    ("channel", J::str("trade")),
                    ("event", J::str(event)),
                    ("type", J::int(421)),
                ],
            )]
        }
        _ => Vec::new(),
    }
}

/// 0 = sell, 1 = buy (TRCrypto's live match, §5); an unknown side is reported as a sell.
fn side_code(side: Option<Side>) -> u8 {
    u8::from(side == Some(Side::Buy))
}

fn levels(price_qty: &[(rust_decimal::Decimal, rust_decimal::Decimal)]) -> J {
    J::Arr(
        price_qty
            .iter()
            .map(|(p, a)| J::Obj(vec![("A", J::dec(*a)), ("P", J::dec(*p))]))
            .collect(),
    )
}

fn book_frame(kind: u16, channel: &str, symbol: &Symbol, cs: u64, top: Option<&Top>) -> Message {
    let asks: Vec<_> = top.map(|t| (t.ask, t.ask_qty)).into_iter().collect();
    let bids: Vec<_> = top.map(|t| (t.bid, t.bid_qty)).into_iter().collect();
    frame(
        kind,
        vec![
            ("CS", J::int(cs)),
            ("PS", J::str(symbol.as_str())),
            ("AO", levels(&asks)),
            ("BO", levels(&bids)),
            ("channel", J::str(channel)),
            ("event", J::str(symbol.as_str())),
            ("type", J::int(kind)),
        ],
    )
}

/// The 432 rows that turn level `old` into `new` on one side, applied by price.
type Level = (rust_decimal::Decimal, rust_decimal::Decimal);

fn diff_rows(old: Option<Level>, new: Option<Level>) -> Vec<J> {
    let row = |cp: u8, (p, a): Level| {
        J::Obj(vec![("CP", J::int(cp)), ("P", J::dec(p)), ("A", J::dec(a))])
    };
    match (old, new) {
        (Some(o), Some(n)) if o.0 == n.0 && o.1 == n.1 => Vec::new(),
        (Some(o), Some(n)) if o.0 == n.0 => vec![row(0, n)],
        (Some(o), Some(n)) => vec![row(3, o), row(1, n)],
        (Some(o), None) => vec![row(3, o)],
        (None, Some(n)) => vec![row(1, n)],
        (None, None) => Vec::new(),
    }
}

fn on_update(shared: &Shared, s: &mut Session, update: &MarketUpdate) -> Vec<Message> {
    match update {
        MarketUpdate::Book(symbol, top) => {
            let mut out = Vec::new();
            if let Some(diff) = s.diffs.get_mut(symbol) {
                let old = diff.sent.as_ref();
                let asks = diff_rows(
                    old.map(|t| (t.ask, t.ask_qty)),
                    Some((top.ask, top.ask_qty)),
                );
                let bids = diff_rows(
                    old.map(|t| (t.bid, t.bid_qty)),
                    Some((top.bid, top.bid_qty)),
                );
                if !asks.is_empty() || !bids.is_empty() {
                    let gap = u64::from(shared.faults.ws_cs_gap());
                    diff.cs += 1 + gap;
                    diff.sent = Some(top.clone());
                    out.push(frame(
                        432,
                        vec![
                            ("CS", J::int(diff.cs)),
                            ("PS", J::str(symbol.as_str())),
                            ("AO", J::Arr(asks)),
                            ("BO", J::Arr(bids)),
                            ("channel", J::str("obdiff")),
                            ("event", J::str(symbol.as_str())),
                            ("type", J::int(432)),
                        ],
                    ));
                }
            }
            if let Some(cs) = s.full_cs.get_mut(symbol) {
                *cs += 1;
                out.push(book_frame(431, "orderbook", symbol, *cs, Some(top)));
            }
            out
        }
        MarketUpdate::Trade(symbol, t) => {
            if !s
                .joined
                .contains(&("trade".to_string(), symbol.as_str().to_string()))
            {
                return Vec::new();
            }
            vec![frame(
                422,
                vec![
                    ("PS", J::str(symbol.as_str())),
                    ("A", J::dec(t.qty)),
                    ("D", J::str(t.wall_ms.to_string())),
                    ("P", J::dec(t.price)),
                    ("I", J::str(t.tid.to_string())),
                    ("S", J::int(side_code(t.side))),
                    ("channel", J::str("trade")),
                    ("event", J::str(symbol.as_str())),
                    ("type", J::int(422)),
                ],
            )]
        }
    }
}

fn resnapshot(shared: &Shared, s: &mut Session) -> Vec<Message> {
    let st = shared.lock();
    s.diffs
        .iter_mut()
        .map(|(symbol, diff)| {
            diff.cs += 1;
            diff.sent = st.market.top(symbol).cloned();
            book_frame(431, "obdiff", symbol, diff.cs, diff.sent.as_ref())
        })
        .collect()
}

/// 402 / 401 frames for the ticker subscriptions.
fn tickers(shared: &Shared, s: &Session) -> Vec<Message> {
    let mut out = Vec::new();
    for (channel, event) in &s.joined {
        if channel != "ticker" {
            continue;
        }
        if event == "all" {
            let symbols: Vec<Symbol> = shared.lock().market.symbols().cloned().collect();
            let items = symbols.iter().filter_map(|sym| ticker_fields(shared, sym));
            let items = items
                .map(|(mut f, order)| {
                    f.push(("Ord", J::int(order)));
                    J::Obj(f)
                })
                .collect();
            out.push(frame(
                401,
                vec![
                    ("items", J::Arr(items)),
                    ("channel", J::str("ticker")),
                    ("event", J::str("all")),
                    ("type", J::int(401)),
                ],
            ));
        } else if let Ok(sym) = Symbol::new(event) {
            out.extend(ticker_frame(shared, &sym));
        }
    }
    out
}

fn ticker_frame(shared: &Shared, symbol: &Symbol) -> Option<Message> {
    let (mut fields, _) = ticker_fields(shared, symbol)?;
    fields.push(("channel", J::str("ticker")));
    fields.push(("event", J::str(symbol.as_str())));
    fields.push(("type", J::int(402)));
    Some(frame(402, fields))
}

/// The fields of socket-ticker.json (strings, `PId` an int) and the pair's `order`.
fn ticker_fields(shared: &Shared, symbol: &Symbol) -> Option<(Vec<(&'static str, J)>, i64)> {
    let st = shared.lock();
    let spec = st.market.spec(symbol)?;
    let stats = st.market.stats(symbol)?;
    let top = st.market.top(symbol)?;
    let daily = stats.last - stats.open;
    let pct = if stats.open.is_zero() {
        daily
    } else {
        (daily * rust_decimal::Decimal::ONE_HUNDRED / stats.open).round_dp(2)
    };
    let (id, order) = shared.info.pair(symbol.as_str());
    let fields = vec![
        ("B", J::dec(top.bid)),
        ("A", J::dec(top.ask)),
        ("BA", J::dec(top.bid_qty)),
        ("AA", J::dec(top.ask_qty)),
        ("PS", J::str(symbol.as_str())),
        ("H", J::dec(stats.high)),
        ("L", J::dec(stats.low)),
        ("LA", J::dec(stats.last)),
        ("O", J::dec(stats.open)),
        ("V", J::dec(stats.volume)),
        ("AV", J::dec(stats.average)),
        ("D", J::dec(daily)),
        ("DP", J::dec(pct)),
        ("DS", J::str(spec.quote.clone())),
        ("NS", J::str(spec.base.clone())),
        ("PId", J::int(id)),
    ];
    Some((fields, order))
}
