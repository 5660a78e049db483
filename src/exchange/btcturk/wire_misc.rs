//! Wire types the bot does not call today but whose recorded payloads are kept as fixtures:
//! graph-api klines and daily OHLC (no envelope, times in seconds, values as JSON floats) and the
//! crypto/fiat transfer history. Same tolerant scalar readers as the rest of the wire layer.

use super::wire_value::{FieldError, Fields, decimal_value, ts_value};
use rust_decimal::Decimal;
use serde_json::Value;

/// One candle; `time_s` is in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candle {
    pub time_s: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

/// graph-api `/v1/klines/history`: UDF parallel arrays `s, t, o, h, l, c, v`.
///
/// # Errors
/// Not an object, `s` other than `ok`/`no_data`, arrays missing, of unequal length or holding
/// something that is not a number.
pub fn klines_from_value(root: &Value) -> Result<Vec<Candle>, FieldError> {
    let f = Fields::of(root, "")?;
    let status = f.opt_text(&["s"])?.unwrap_or_else(|| "ok".into());
    if status.eq_ignore_ascii_case("no_data") {
        return Ok(Vec::new());
    }
    if !status.eq_ignore_ascii_case("ok") {
        return Err(FieldError::invalid("s", format!("status {status:?}")));
    }
    let (_, t) = f.array(&["t"])?;
    let column = |key: &'static str| -> Result<Vec<Decimal>, FieldError> {
        let (path, items) = f.array(&[key])?;
        if items.len() != t.len() {
            return Err(FieldError::invalid(path, "length differs from t"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                decimal_value(v)
                    .map_err(|e| FieldError::invalid(format!("{key}[{i}]"), e))?
                    .ok_or_else(|| FieldError::missing(format!("{key}[{i}]")))
            })
            .collect()
    };
    let (o, h, l, c, v) = (
        column("o")?,
        column("h")?,
        column("l")?,
        column("c")?,
        column("v")?,
    );
    t.iter()
        .enumerate()
        .map(|(i, ts)| {
            let time_s = ts_value(ts)
                .map_err(|e| FieldError::invalid(format!("t[{i}]"), e))?
                .ok_or_else(|| FieldError::missing(format!("t[{i}]")))?;
            Ok(Candle {
                time_s,
                open: o[i],
                high: h[i],
                low: l[i],
                close: c[i],
                volume: v[i],
            })
        })
        .collect()
}

/// One daily candle of graph-api `/v1/ohlcs` (a bare array of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ohlc {
    pub pair: String,
    pub candle: Candle,
    pub total: Option<Decimal>,
    pub average: Option<Decimal>,
}

impl Ohlc {
    /// # Errors
    /// A missing or malformed field.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, FieldError> {
        let f = Fields::of(v, path)?;
        Ok(Self {
            pair: f.text(&["pair"])?,
            candle: Candle {
                time_s: f.ts(&["time"])?,
                open: f.decimal(&["open"])?,
                high: f.decimal(&["high"])?,
                low: f.decimal(&["low"])?,
                close: f.decimal(&["close"])?,
                volume: f.decimal(&["volume"])?,
            },
            total: f.opt_decimal(&["total"])?,
            average: f.opt_decimal(&["average"])?,
        })
    }
}

/// One deposit or withdrawal from `/api/v1/users/transactions/{crypto,fiat}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    /// `deposit` or `withdrawal`.
    pub balance_type: String,
    pub currency: String,
    pub amount: Decimal,
    pub fee: Decimal,
    pub tax: Decimal,
    pub timestamp_ms: i64,
    pub tx_hash: Option<String>,
    pub confirmed: Option<bool>,
}

impl Transfer {
    /// # Errors
    /// A missing or malformed field.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, FieldError> {
        let f = Fields::of(v, path)?;
        Ok(Self {
            id: f.id(&["id"])?,
            balance_type: f.text(&["balanceType"])?,
            currency: f.text(&["currencySymbol"])?.to_ascii_uppercase(),
            amount: f.decimal(&["amount"])?,
            fee: f.opt_decimal(&["fee"])?.unwrap_or(Decimal::ZERO),
            tax: f.opt_decimal(&["tax"])?.unwrap_or(Decimal::ZERO),
            timestamp_ms: f.ts(&["timestamp"])?,
            tx_hash: f.opt_text(&["txHash"])?,
            confirmed: f.opt_bool(&["isConfirmed"])?,
        })
    }
}
