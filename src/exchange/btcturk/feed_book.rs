//! The pure half of the websocket market feed: frame parsing (§5 of `btcturk-api.md`) and the
//! per-symbol local order book with its `CS` chain. No I/O; `feed.rs` drives it.
//!
//! - Every frame is `[type, {..., "type": type}]`; route on element 0.
//! - 431 replaces the book and sets `CS`; 432 must carry `CS` = previous + 1, its rows are
//!   applied by price: `CP` 3 (deleted) or an amount of 0 removes the level, anything else
//!   (`CP` 0 updated, 1 new) sets the level's amount.
//! - Decimals are read from strings (or a JSON number's text), never through f64 arithmetic.

use crate::domain::{Price, Qty, Side, Symbol, TradePrint};
use crate::exchange::btcturk::wire_value::{FieldError, Fields, brief, id_value};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub price: Decimal,
    pub qty: Decimal,
}

/// One row of a 431 (`CP` absent) or 432 (`CP` 0 updated, 1 new, 3 deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub price: Decimal,
    pub amount: Decimal,
    pub cp: Option<u64>,
}

impl Row {
    /// `true` when the row deletes its level.
    pub fn removes(&self) -> bool {
        self.cp == Some(3) || self.amount.is_zero()
    }
}

/// A 431 or 432 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookFrame {
    pub symbol: Symbol,
    /// `obdiff` or `orderbook` (whose `CS` has another base); empty when absent.
    pub channel: String,
    pub cs: u64,
    pub asks: Vec<Row>,
    pub bids: Vec<Row>,
}

/// A 402 body: the fields the bot may use (`BA`/`AA` were added later and may be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedTicker {
    pub symbol: Symbol,
    pub bid: Decimal,
    pub ask: Decimal,
    pub bid_qty: Option<Decimal>,
    pub ask_qty: Option<Decimal>,
    pub last: Option<Decimal>,
    pub high: Option<Decimal>,
    pub low: Option<Decimal>,
    pub open: Option<Decimal>,
    pub volume: Option<Decimal>,
    /// Local wall-clock ms when the frame arrived (set by the feed; 0 from the parser).
    pub received_ms: i64,
}

/// A 421 item or a 422 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedTrade {
    pub id: String,
    pub price: Decimal,
    pub qty: Decimal,
    /// `S`: 0 = sell, 1 = buy (TRCrypto's live match); anything else is `None`.
    pub side: Option<Side>,
    pub ts_ms: i64,
}

impl FeedTrade {
    pub fn print(&self) -> Option<TradePrint> {
        Some(TradePrint {
            price: Price::new(self.price).ok()?,
            qty: Qty::new(self.qty.abs()).ok()?,
            side: self.side,
            ts_ms: self.ts_ms,
        })
    }
}

/// A parsed server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// 991 version message: the server is ready for subscriptions.
    Hello,
    /// 100 result of a join/leave: `message` is `join|obdiff:BTCTRY`.
    Ack { ok: bool, message: String },
    /// 431.
    Snapshot(BookFrame),
    /// 432.
    Diff(BookFrame),
    /// 402.
    Ticker(FeedTicker),
    /// 421 (the last ~50 trades, on join).
    TradeList {
        symbol: Symbol,
        trades: Vec<FeedTrade>,
    },
    /// 422.
    Trade { symbol: Symbol, trade: FeedTrade },
    /// Any other model (401, 428, 114, 801, ...): counted, not used.
    Other(u64),
}

/// Why a text frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not JSON, or not `[int, object]`.
    Garbage(String),
    /// A known model whose body is unusable; `symbol` when it could still be read, so a bad
    /// 432 can invalidate its book.
    Malformed {
        kind: u64,
        symbol: Option<Symbol>,
        error: String,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Garbage(e) => write!(f, "not a feed frame: {e}"),
            FrameError::Malformed {
                kind,
                symbol: Some(s),
                error,
            } => write!(f, "model {kind} for {s}: {error}"),
            FrameError::Malformed { kind, error, .. } => write!(f, "model {kind}: {error}"),
        }
    }
}

fn field_error(kind: u64, symbol: Option<Symbol>) -> impl FnOnce(FieldError) -> FrameError {
    move |e| FrameError::Malformed {
        kind,
        symbol,
        error: e.to_string(),
    }
}

/// Parses one text frame.
///
/// # Errors
/// [`FrameError`]; never panics on any input.
pub fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| FrameError::Garbage(format!("{e}: {}", snippet(text))))?;
    let Value::Array(parts) = &root else {
        return Err(FrameError::Garbage(format!(
            "expected [type, object], got {}",
            brief(&root)
        )));
    };
    let kind = match parts.first() {
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| FrameError::Garbage(format!("no model type in {}", brief(&root))))?;
    let body = parts.get(1).unwrap_or(&Value::Null);
    let symbol = symbol_of(body);
    let fields = Fields::of(body, "").map_err(field_error(kind, symbol.clone()))?;
    let bad = |e| field_error(kind, symbol.clone())(e);
    match kind {
        991 => Ok(Frame::Hello),
        100 => Ok(Frame::Ack {
            ok: fields.opt_bool(&["ok"]).map_err(bad)?.unwrap_or(false),
            message: fields
                .opt_text(&["message"])
                .map_err(bad)?
                .unwrap_or_default(),
        }),
        431 | 432 => {
            let symbol = symbol.clone().ok_or_else(|| FrameError::Malformed {
                kind,
                symbol: None,
                error: "no pair (PS / event)".into(),
            })?;
            let frame = book_frame(&fields, symbol).map_err(bad)?;
            Ok(if kind == 431 {
                Frame::Snapshot(frame)
            } else {
                Frame::Diff(frame)
            })
        }
        402 => {
            let symbol = symbol
                .clone()
                .ok_or_else(|| bad(FieldError::missing("PS")))?;
            Ok(Frame::Ticker(ticker(&fields, symbol).map_err(bad)?))
        }
        421 => {
            let symbol = symbol
                .clone()
                .ok_or_else(|| bad(FieldError::missing("symbol")))?;
            let (path, items) = fields.opt_array(&["items"]).map_err(bad)?;
            let trades = items
                .iter()
                .enumerate()
                .map(|(i, v)| trade(v, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            Ok(Frame::TradeList { symbol, trades })
        }
        422 => {
            let symbol = symbol
                .clone()
                .ok_or_else(|| bad(FieldError::missing("PS")))?;
            let trade = trade(body, "").map_err(bad)?;
            Ok(Frame::Trade { symbol, trade })
        }
        other => Ok(Frame::Other(other)),
    }
}

fn snippet(text: &str) -> String {
    brief(&Value::String(text.to_string()))
}

/// The pair of a model body: `PS`, else `symbol` (421), else `event`.
fn symbol_of(body: &Value) -> Option<Symbol> {
    ["PS", "symbol", "event"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_str))
        .find_map(|s| Symbol::new(s).ok())
}

fn book_frame(fields: &Fields<'_>, symbol: Symbol) -> Result<BookFrame, FieldError> {
    let cs = match fields.get(&["CS"]) {
        Some((_, v)) => id_value(v)
            .map_err(|e| FieldError::invalid("CS", e))?
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| FieldError::invalid("CS", format!("not a sequence: {}", brief(v))))?,
        None => return Err(FieldError::missing("CS")),
    };
    let rows = |key: &'static str| -> Result<Vec<Row>, FieldError> {
        let (path, items) = fields.opt_array(&[key])?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let p = format!("{path}[{i}]");
                let f = Fields::of(v, &p)?;
                let cp = match f.get(&["CP"]) {
                    None => None,
                    Some((_, Value::Number(n))) if n.as_u64().is_some() => n.as_u64(),
                    Some((_, other)) => {
                        return Err(FieldError::invalid(
                            format!("{p}.CP"),
                            format!("expected 0, 1 or 3, got {}", brief(other)),
                        ));
                    }
                };
                let row = Row {
                    price: f.decimal(&["P"])?,
                    amount: f.decimal(&["A"])?,
                    cp,
                };
                if row.price <= Decimal::ZERO || row.amount < Decimal::ZERO {
                    return Err(FieldError::invalid(p, "a price <= 0 or a negative amount"));
                }
                Ok(row)
            })
            .collect()
    };
    Ok(BookFrame {
        symbol,
        channel: fields.opt_text(&["channel"])?.unwrap_or_default(),
        cs,
        asks: rows("AO")?,
        bids: rows("BO")?,
    })
}

fn ticker(f: &Fields<'_>, symbol: Symbol) -> Result<FeedTicker, FieldError> {
    Ok(FeedTicker {
        symbol,
        bid: f.decimal(&["B"])?,
        ask: f.decimal(&["A"])?,
        bid_qty: f.opt_decimal(&["BA"])?,
        ask_qty: f.opt_decimal(&["AA"])?,
        last: f.opt_decimal(&["LA"])?,
        high: f.opt_decimal(&["H"])?,
        low: f.opt_decimal(&["L"])?,
        open: f.opt_decimal(&["O"])?,
        volume: f.opt_decimal(&["V"])?,
        received_ms: 0,
    })
}

fn trade(v: &Value, path: &str) -> Result<FeedTrade, FieldError> {
    let f = Fields::of(v, path)?;
    let side = match f.get(&["S"]) {
        Some((_, s)) => match s
            .as_u64()
            .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
        {
            Some(0) => Some(Side::Sell),
            Some(1) => Some(Side::Buy),
            _ => None,
        },
        None => None,
    };
    Ok(FeedTrade {
        id: f.opt_id(&["I"])?.unwrap_or_default(),
        price: f.decimal(&["P"])?,
        qty: f.decimal(&["A"])?,
        side,
        ts_ms: f.ts(&["D"])?,
    })
}

/// Why a 432 was not applied. The book is invalid afterwards and must be resubscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffError {
    /// No 431 since the book was (re)started or invalidated.
    NoSnapshot,
    /// `CS` did not step by exactly 1.
    Gap { expected: u64, got: u64 },
}

impl std::fmt::Display for DiffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiffError::NoSnapshot => write!(f, "a diff before any snapshot"),
            DiffError::Gap { expected, got } => write!(f, "CS gap: expected {expected}, got {got}"),
        }
    }
}

/// One symbol's book, kept by price. `cs` is `None` while the book is not in sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalBook {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    cs: Option<u64>,
}

fn apply_rows(side: &mut BTreeMap<Decimal, Decimal>, rows: &[Row]) {
    for row in rows {
        if row.removes() {
            side.remove(&row.price);
        } else {
            side.insert(row.price, row.amount);
        }
    }
}

impl LocalBook {
    /// A 431: the book becomes exactly the frame's levels, in sync at its `CS`.
    pub fn reset(&mut self, frame: &BookFrame) {
        self.bids.clear();
        self.asks.clear();
        apply_rows(&mut self.bids, &frame.bids);
        apply_rows(&mut self.asks, &frame.asks);
        self.cs = Some(frame.cs);
    }

    /// A 432, applied only when the book is in sync and `CS` steps by exactly 1.
    ///
    /// # Errors
    /// [`DiffError`]; the book is then invalid (its levels are kept for display only).
    pub fn apply_diff(&mut self, frame: &BookFrame) -> Result<(), DiffError> {
        let Some(cs) = self.cs else {
            return Err(DiffError::NoSnapshot);
        };
        let expected = cs.saturating_add(1);
        if frame.cs != expected {
            self.cs = None;
            return Err(DiffError::Gap {
                expected,
                got: frame.cs,
            });
        }
        apply_rows(&mut self.bids, &frame.bids);
        apply_rows(&mut self.asks, &frame.asks);
        self.cs = Some(frame.cs);
        Ok(())
    }

    /// Marks the book out of sync (a gap, a bad frame, a lost connection).
    pub fn invalidate(&mut self) {
        self.cs = None;
    }
    pub fn is_synced(&self) -> bool {
        self.cs.is_some()
    }
    /// The `CS` of the last applied frame while in sync.
    pub fn cs(&self) -> Option<u64> {
        self.cs
    }
    pub fn best_bid(&self) -> Option<Level> {
        self.bids
            .iter()
            .next_back()
            .map(|(p, q)| Level { price: *p, qty: *q })
    }
    pub fn best_ask(&self) -> Option<Level> {
        self.asks
            .iter()
            .next()
            .map(|(p, q)| Level { price: *p, qty: *q })
    }
    /// Up to `n` bids, best (highest) first.
    pub fn bids(&self, n: usize) -> Vec<Level> {
        let it = self.bids.iter().rev().take(n);
        it.map(|(p, q)| Level { price: *p, qty: *q }).collect()
    }
    /// Up to `n` asks, best (lowest) first.
    pub fn asks(&self, n: usize) -> Vec<Level> {
        let it = self.asks.iter().take(n);
        it.map(|(p, q)| Level { price: *p, qty: *q }).collect()
    }
    /// Levels per side (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }
}
