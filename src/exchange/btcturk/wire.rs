//! The BTCTurk wire format: the `{success, message, code, data}` envelope and one typed reader per
//! endpoint the bot uses. Scalars go through the tolerant readers in `wire_value.rs`.
//!
//! Every parser takes the raw body and returns either the typed data or a [`WireError`] naming
//! the endpoint and, for bad data, the field. Garbage, HTML pages, empty and truncated bodies are
//! errors, never panics. Each type also has a `from_data` for a bare `data` member (the mss1451
//! fixtures hold only that). exchangeinfo is parsed by `crate::exchange::exchange_info`.

use super::endpoint::Endpoint;
pub use super::wire_value::{FieldError, Fields, WireMethod, WireSide, WireStatus};
use rust_decimal::Decimal;
use serde_json::Value;
use std::fmt;

/// What went wrong reading one response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}: {kind}")]
pub struct WireError {
    pub endpoint: Endpoint,
    pub kind: WireErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireErrorKind {
    /// Nothing (or only whitespace) in the body.
    Empty,
    /// Not JSON at all (an HTML error page, plain text, garbage). `snippet` is the start.
    NotJson { detail: String, snippet: String },
    /// JSON that stops early.
    Truncated { detail: String },
    /// `success: false`: the exchange's own code and message.
    Failure { code: String, message: String },
    /// A field is missing or unusable (the envelope's `success`, or one inside `data`).
    Field(FieldError),
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireErrorKind::Empty => f.write_str("empty response body"),
            WireErrorKind::NotJson { detail, snippet } => {
                write!(f, "response is not JSON ({detail}): {snippet:?}")
            }
            WireErrorKind::Truncated { detail } => write!(f, "truncated JSON body ({detail})"),
            WireErrorKind::Failure { code, message } => {
                write!(f, "exchange reported failure: {message} (code {code})")
            }
            WireErrorKind::Field(e) => e.fmt(f),
        }
    }
}

impl WireError {
    pub fn new(endpoint: Endpoint, kind: WireErrorKind) -> Self {
        Self { endpoint, kind }
    }
    fn field(endpoint: Endpoint) -> impl FnOnce(FieldError) -> Self {
        move |e| Self::new(endpoint, WireErrorKind::Field(e))
    }
}

/// The first characters of a body, for error messages (whitespace collapsed).
pub fn snippet(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(80).collect()
}

/// Parses a body as JSON, classifying the ways it can fail.
///
/// # Errors
/// [`WireErrorKind::Empty`], [`WireErrorKind::Truncated`] or [`WireErrorKind::NotJson`].
pub fn json_body(endpoint: Endpoint, body: &str) -> Result<Value, WireError> {
    if body.trim().is_empty() {
        return Err(WireError::new(endpoint, WireErrorKind::Empty));
    }
    serde_json::from_str(body).map_err(|e| {
        let kind = if e.is_eof() {
            WireErrorKind::Truncated {
                detail: e.to_string(),
            }
        } else {
            let detail = if body.trim_start().starts_with('<') {
                "an HTML or XML page".to_string()
            } else {
                e.to_string()
            };
            WireErrorKind::NotJson {
                detail,
                snippet: snippet(body),
            }
        };
        WireError::new(endpoint, kind)
    })
}

/// A `code` as text: `0`, `"SUCCESS"`, `""`, `1123`...
pub fn code_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => other.to_string(),
    }
}

/// Reads the envelope and returns `data` (`Value::Null` when absent). Success is decided by
/// `success` alone (`code` and `message` vary too much, see btcturk-api.md §2).
///
/// # Errors
/// A body that is not a JSON object, has no boolean `success`, or says `success: false`.
pub fn envelope(endpoint: Endpoint, body: &str) -> Result<Value, WireError> {
    let root = json_body(endpoint, body)?;
    envelope_value(endpoint, root)
}

/// [`envelope`] over an already parsed body.
///
/// # Errors
/// As [`envelope`].
pub fn envelope_value(endpoint: Endpoint, root: Value) -> Result<Value, WireError> {
    let Value::Object(mut obj) = root else {
        let e = FieldError::invalid("body", format!("expected an object, got {}", brief(&root)));
        return Err(WireError::field(endpoint)(e));
    };
    let success = match obj.get("success") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        None | Some(Value::Null) => {
            return Err(WireError::field(endpoint)(FieldError::missing("success")));
        }
        Some(other) => {
            let e = FieldError::invalid("success", format!("not a boolean: {}", brief(other)));
            return Err(WireError::field(endpoint)(e));
        }
    };
    if !success {
        let mut message = obj
            .get("message")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("no message")
            .to_string();
        if let Some(details) = obj.get("details").and_then(Value::as_str) {
            message = format!("{message}: {details}");
        }
        let code = code_text(obj.get("code"));
        return Err(WireError::new(
            endpoint,
            WireErrorKind::Failure { code, message },
        ));
    }
    Ok(obj.remove("data").unwrap_or(Value::Null))
}

use super::wire_value::brief;

/// Envelope, then `read` over `data` (which must be present).
pub(super) fn enveloped<T>(
    endpoint: Endpoint,
    body: &str,
    read: impl FnOnce(&Value) -> Result<T, FieldError>,
) -> Result<T, WireError> {
    let data = envelope(endpoint, body)?;
    read(&data).map_err(WireError::field(endpoint))
}

/// Each element of an array field through `read`, with `path[i]` as its path.
pub(super) fn each<T>(
    (path, items): (String, &[Value]),
    read: impl Fn(&Value, &str) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| read(v, &format!("{path}[{i}]")))
        .collect()
}

pub(super) fn array_of<'a>(
    data: &'a Value,
    path: &str,
) -> Result<(String, &'a [Value]), FieldError> {
    match data {
        Value::Array(items) => Ok((path.to_string(), items.as_slice())),
        Value::Null => Err(FieldError::missing(path)),
        other => Err(FieldError::invalid(
            path,
            format!("expected an array, got {}", brief(other)),
        )),
    }
}

/// `GET /api/v2/server/time`: `{"serverTime": ms, "serverTime2": "..."}`, no envelope (an
/// enveloped form is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerTime {
    pub server_time_ms: i64,
}

/// # Errors
/// Not JSON, or no usable `serverTime`.
pub fn parse_server_time(body: &str) -> Result<ServerTime, WireError> {
    let ep = Endpoint::ServerTime;
    let root = json_body(ep, body)?;
    let bare = Fields::of(&root, "").map_err(WireError::field(ep))?;
    if bare.get(&["serverTime"]).is_none() && bare.get(&["success"]).is_some() {
        let data = envelope_value(ep, root.clone())?;
        let f = Fields::of(&data, "data").map_err(WireError::field(ep))?;
        let server_time_ms = f.ts(&["serverTime"]).map_err(WireError::field(ep))?;
        return Ok(ServerTime { server_time_ms });
    }
    let server_time_ms = bare.ts(&["serverTime"]).map_err(WireError::field(ep))?;
    Ok(ServerTime { server_time_ms })
}

/// One pair from `GET /api/v2/ticker` (values are JSON numbers there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticker {
    pub pair: String,
    pub timestamp_ms: Option<i64>,
    pub last: Decimal,
    pub high: Option<Decimal>,
    pub low: Option<Decimal>,
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
    pub open: Option<Decimal>,
    pub volume: Option<Decimal>,
    pub average: Option<Decimal>,
    pub daily: Option<Decimal>,
    pub daily_percent: Option<Decimal>,
    pub numerator: Option<String>,
    pub denominator: Option<String>,
}

impl Ticker {
    /// # Errors
    /// A missing `pair`/`last` or a malformed field.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, FieldError> {
        let f = Fields::of(v, path)?;
        Ok(Self {
            pair: f.text(&["pair", "pairSymbol"])?,
            timestamp_ms: f.opt_ts(&["timestamp"])?,
            last: f.decimal(&["last"])?,
            high: f.opt_decimal(&["high"])?,
            low: f.opt_decimal(&["low"])?,
            bid: f.opt_decimal(&["bid"])?,
            ask: f.opt_decimal(&["ask"])?,
            open: f.opt_decimal(&["open"])?,
            volume: f.opt_decimal(&["volume"])?,
            average: f.opt_decimal(&["average"])?,
            daily: f.opt_decimal(&["daily"])?,
            daily_percent: f.opt_decimal(&["dailyPercent"])?,
            numerator: f.opt_text(&["numeratorSymbol", "numerator"])?,
            denominator: f.opt_text(&["denominatorSymbol", "denominator"])?,
        })
    }
    /// `data` as an array of tickers (a single object is accepted too).
    ///
    /// # Errors
    /// As [`Ticker::from_value`].
    pub fn list_from_data(data: &Value) -> Result<Vec<Self>, FieldError> {
        if data.is_object() {
            return Ok(vec![Self::from_value(data, "data")?]);
        }
        each(array_of(data, "data")?, Self::from_value)
    }
}

/// # Errors
/// See [`WireError`].
pub fn parse_ticker(body: &str) -> Result<Vec<Ticker>, WireError> {
    enveloped(Endpoint::Ticker, body, Ticker::list_from_data)
}

/// One book level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub price: Decimal,
    pub qty: Decimal,
}

/// `GET /api/v2/orderbook`: levels are `[price, qty]` pairs of strings; bids best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBook {
    pub timestamp_ms: i64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

fn level(v: &Value, path: &str) -> Result<Level, FieldError> {
    let read = |v: &Value, what: &str| {
        super::wire_value::decimal_value(v)
            .map_err(|e| FieldError::invalid(format!("{path}.{what}"), e))?
            .ok_or_else(|| FieldError::missing(format!("{path}.{what}")))
    };
    match v {
        Value::Array(pair) if pair.len() >= 2 => Ok(Level {
            price: read(&pair[0], "price")?,
            qty: read(&pair[1], "qty")?,
        }),
        Value::Object(_) => {
            let f = Fields::of(v, path)?;
            Ok(Level {
                price: f.decimal(&["price", "P"])?,
                qty: f.decimal(&["amount", "quantity", "A"])?,
            })
        }
        other => Err(FieldError::invalid(
            path,
            format!("expected [price, qty], got {}", brief(other)),
        )),
    }
}

impl OrderBook {
    /// # Errors
    /// A missing `timestamp`, or a malformed level.
    pub fn from_data(data: &Value) -> Result<Self, FieldError> {
        let f = Fields::of(data, "data")?;
        Ok(Self {
            timestamp_ms: f.ts(&["timestamp"])?,
            bids: each(f.opt_array(&["bids"])?, level)?,
            asks: each(f.opt_array(&["asks"])?, level)?,
        })
    }
}

/// # Errors
/// See [`WireError`].
pub fn parse_orderbook(body: &str) -> Result<OrderBook, WireError> {
    enveloped(Endpoint::OrderBook, body, OrderBook::from_data)
}

/// One public trade from `GET /api/v2/trades`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicTrade {
    pub pair: Option<String>,
    pub date_ms: i64,
    /// Kept as text: it exceeds 2^53.
    pub tid: String,
    pub price: Decimal,
    pub amount: Decimal,
    /// Taker side when sent (`side` is absent from older payloads).
    pub side: Option<WireSide>,
}

impl PublicTrade {
    /// # Errors
    /// A missing `date`/`tid`/`price`/`amount`, or a malformed field.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, FieldError> {
        let f = Fields::of(v, path)?;
        Ok(Self {
            pair: f.opt_text(&["pair", "pairSymbol"])?,
            date_ms: f.ts(&["date", "timestamp"])?,
            tid: f.id(&["tid", "id"])?,
            price: f.decimal(&["price"])?,
            amount: f.decimal(&["amount"])?,
            side: f.opt_text(&["side"])?.map(|s| WireSide::parse(&s)),
        })
    }
    /// # Errors
    /// As [`PublicTrade::from_value`].
    pub fn list_from_data(data: &Value) -> Result<Vec<Self>, FieldError> {
        each(array_of(data, "data")?, Self::from_value)
    }
}

/// # Errors
/// See [`WireError`].
pub fn parse_trades(body: &str) -> Result<Vec<PublicTrade>, WireError> {
    enveloped(Endpoint::Trades, body, PublicTrade::list_from_data)
}

/// One asset from `GET /api/v1/users/balances` (decimals may use a comma).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub asset: String,
    pub asset_name: Option<String>,
    pub balance: Option<Decimal>,
    pub locked: Decimal,
    pub free: Decimal,
    pub order_fund: Option<Decimal>,
    pub request_fund: Option<Decimal>,
    pub timestamp_ms: Option<i64>,
}

impl BalanceRow {
    /// # Errors
    /// A missing `asset`/`free`/`locked`, or a malformed field.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, FieldError> {
        let f = Fields::of(v, path)?;
        Ok(Self {
            asset: f.text(&["asset"])?.to_ascii_uppercase(),
            asset_name: f.opt_text(&["assetname"])?,
            balance: f.opt_decimal(&["balance"])?,
            locked: f.decimal(&["locked"])?,
            free: f.decimal(&["free"])?,
            order_fund: f.opt_decimal(&["orderFund"])?,
            request_fund: f.opt_decimal(&["requestFund"])?,
            timestamp_ms: f.opt_ts(&["timestamp"])?,
        })
    }
    /// # Errors
    /// As [`BalanceRow::from_value`].
    pub fn list_from_data(data: &Value) -> Result<Vec<Self>, FieldError> {
        each(array_of(data, "data")?, Self::from_value)
    }
}

/// # Errors
/// See [`WireError`].
pub fn parse_balances(body: &str) -> Result<Vec<BalanceRow>, WireError> {
    enveloped(Endpoint::Balances, body, BalanceRow::list_from_data)
}

/// The `data` of a successful `POST /api/v1/order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedOrder {
    pub id: String,
    pub datetime_ms: Option<i64>,
    pub side: Option<WireSide>,
    pub method: Option<WireMethod>,
    pub price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub quantity: Option<Decimal>,
    pub pair_symbol: Option<String>,
    pub client_id: Option<String>,
}

impl SubmittedOrder {
    /// # Errors
    /// A missing `id`, or a malformed field.
    pub fn from_data(data: &Value) -> Result<Self, FieldError> {
        let f = Fields::of(data, "data")?;
        Ok(Self {
            id: f.id(&["id", "orderId"])?,
            datetime_ms: f.opt_ts(&["datetime", "time"])?,
            side: f
                .opt_text(&["type", "orderType"])?
                .map(|s| WireSide::parse(&s)),
            method: f
                .opt_text(&["method", "orderMethod"])?
                .map(|s| WireMethod::parse(&s)),
            price: f.opt_decimal(&["price"])?,
            stop_price: f.opt_decimal(&["stopPrice"])?,
            quantity: f.opt_decimal(&["quantity", "amount"])?,
            pair_symbol: f.opt_text(&["pairSymbol"])?,
            client_id: f.opt_text(&["newOrderClientId", "orderClientId"])?,
        })
    }
}

/// # Errors
/// See [`WireError`].
pub fn parse_submit(body: &str) -> Result<SubmittedOrder, WireError> {
    enveloped(Endpoint::SubmitOrder, body, SubmittedOrder::from_data)
}

/// `DELETE /api/v1/order?id=`: only `success` matters (`data` is `{}`, `null` or absent and
/// `code` may be `""`). A 200 means the cancel was accepted; it completes asynchronously.
///
/// # Errors
/// See [`WireError`].
pub fn parse_cancel(body: &str) -> Result<(), WireError> {
    envelope(Endpoint::CancelOrder, body).map(|_| ())
}

pub use super::wire_orders::{OpenOrders, UserTrade, WireOrder};
pub use super::wire_orders::{
    parse_all_orders, parse_open_orders, parse_order_by_id, parse_user_trades,
};
