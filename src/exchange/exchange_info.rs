//! BTCTurk `GET /api/v2/server/exchangeinfo` → [`SymbolSpec`]s.
//!
//! Tolerant of the shapes seen in the wild: the body with or without the
//! `{data, success, message, code}` envelope, `code` as an int or a string, decimals as JSON
//! strings or numbers (numbers are read through their textual form, never through arithmetic on
//! f64), scales as ints or strings, unknown fields ignored. A `success: false` body is an error
//! carrying the exchange's message and code.

use crate::domain::{Symbol, SymbolSpec, decimal_from_str};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// A BTCTurk-shaped exchangeinfo body for BTCTRY, ETHTRY, AVAXTRY and USDTTRY, used when a dataset
/// carries no `exchangeinfo.json` and by the synthetic dataset generator.
pub fn bundled_exchange_info() -> &'static str {
    include_str!("bundled_exchangeinfo.json")
}

/// Parses an exchangeinfo body into one spec per listed symbol, in the order of the payload.
///
/// # Errors
/// When the body is not JSON, reports `success: false`, has no `symbols` array, or a symbol entry
/// lacks a required field or holds a malformed one. Messages name the symbol and the field.
pub fn parse_exchange_info(json: &str) -> Result<Vec<SymbolSpec>, String> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| format!("exchangeinfo: not valid JSON: {e}"))?;
    let root = root
        .as_object()
        .ok_or_else(|| "exchangeinfo: the body is not a JSON object".to_string())?;

    if let Some(success) = root.get("success") {
        let ok = match success {
            Value::Bool(b) => *b,
            Value::String(s) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        if !ok {
            let message = root
                .get("message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or("no message");
            let code = root.get("code").map_or_else(String::new, value_text);
            return Err(format!(
                "exchangeinfo: exchange reported failure: {message} (code {code})"
            ));
        }
    }

    let data = match root.get("data") {
        Some(Value::Object(d)) => d,
        Some(Value::Null) | None if root.contains_key("symbols") => root,
        Some(Value::Null) | None => return Err("exchangeinfo: no data in the body".to_string()),
        Some(_) => return Err("exchangeinfo: data is not an object".to_string()),
    };
    let symbols = data
        .get("symbols")
        .and_then(Value::as_array)
        .ok_or_else(|| "exchangeinfo: data.symbols is missing or not an array".to_string())?;

    symbols
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let obj = entry
                .as_object()
                .ok_or_else(|| format!("exchangeinfo: symbols[{i}] is not an object"))?;
            parse_symbol(obj).map_err(|e| {
                let name = obj.get("name").and_then(Value::as_str).unwrap_or("?");
                format!("exchangeinfo: symbols[{i}] ({name}): {e}")
            })
        })
        .collect()
}

fn parse_symbol(obj: &Map<String, Value>) -> Result<SymbolSpec, String> {
    let name = required_str(obj, "name")?;
    let symbol = Symbol::new(name).map_err(|e| format!("name: {e}"))?;
    let base = required_str(obj, "numerator")?.trim().to_ascii_uppercase();
    let quote = required_str(obj, "denominator")?
        .trim()
        .to_ascii_uppercase();
    if base.is_empty() || quote.is_empty() {
        return Err("numerator/denominator must not be empty".to_string());
    }
    let qty_scale = scale(obj, "numeratorScale")?;
    let price_scale = scale(obj, "denominatorScale")?;
    let has_fraction = match obj.get("hasFraction") {
        None | Some(Value::Null) => price_scale > 0,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(other) => return Err(format!("hasFraction: not a boolean: {other}")),
    };
    let trading = obj
        .get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("TRADING"));

    let price_filter = obj
        .get("filters")
        .and_then(Value::as_array)
        .and_then(|filters| {
            filters.iter().filter_map(Value::as_object).find(|f| {
                f.get("filterType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("PRICE_FILTER"))
            })
        });

    let default_tick = if has_fraction {
        Decimal::new(1, price_scale)
    } else {
        Decimal::ONE
    };
    let (tick_size, min_notional) = match price_filter {
        Some(f) => (
            optional_decimal(f, "tickSize")?.unwrap_or(default_tick),
            optional_decimal(f, "minExchangeValue")?.unwrap_or(Decimal::ZERO),
        ),
        None => (default_tick, Decimal::ZERO),
    };
    if tick_size <= Decimal::ZERO {
        return Err(format!("tickSize must be > 0, got {tick_size}"));
    }
    if min_notional < Decimal::ZERO {
        return Err(format!("minExchangeValue must be >= 0, got {min_notional}"));
    }

    Ok(SymbolSpec {
        symbol,
        base,
        quote,
        qty_scale,
        price_scale,
        tick_size,
        min_notional,
        has_fraction,
        trading,
    })
}

fn required_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("{key}: expected a string, got {other}")),
        None => Err(format!("{key}: missing")),
    }
}

/// A scale (number of decimals): a JSON int or an integer string, 0..=28.
fn scale(obj: &Map<String, Value>, key: &str) -> Result<u32, String> {
    let text = match obj.get(key) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => return Err(format!("{key}: expected an integer, got {other}")),
        None => return Err(format!("{key}: missing")),
    };
    let n: u32 = text
        .parse()
        .map_err(|_| format!("{key}: not a non-negative integer: {text:?}"))?;
    if n > 28 {
        return Err(format!("{key}: {n} is above the supported 28 decimals"));
    }
    Ok(n)
}

/// A decimal given as a JSON string or number; `null`, absence and `""` are `None`.
fn optional_decimal(obj: &Map<String, Value>, key: &str) -> Result<Option<Decimal>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => decimal_from_str(s)
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
        Some(Value::Number(n)) => decimal_from_str(&n.to_string())
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
        Some(other) => Err(format!("{key}: expected a decimal, got {other}")),
    }
}

/// The text of a scalar (for error messages): strings without quotes, anything else as JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/fixtures/exchangeinfo/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn parses_trcrypto_live_payload() {
        let specs = parse_exchange_info(&fixture("trcrypto_exchangeinfo.json")).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.symbol.as_str()).collect();
        assert_eq!(names, ["BTCTRY", "USDTTRY", "ETHUSDT"]);
        let btc = &specs[0];
        assert_eq!((btc.base.as_str(), btc.quote.as_str()), ("BTC", "TRY"));
        assert_eq!((btc.qty_scale, btc.price_scale), (8, 0));
        assert_eq!(btc.tick_size, d("10"));
        assert_eq!(btc.min_notional, d("99.91"));
        assert!(!btc.has_fraction && btc.trading);
        let eth = &specs[2];
        assert_eq!(eth.tick_size, d("0.1"));
        assert_eq!(eth.min_notional, d("9.91"));
        assert_eq!(eth.quote, "USDT");
    }

    #[test]
    fn parses_mss1451_bare_payload() {
        let specs = parse_exchange_info(&fixture("mss1451_exchange_info.json")).unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].price_scale, 2);
        let xtz = &specs[2];
        assert_eq!(xtz.symbol.as_str(), "XTZBTC");
        assert_eq!(xtz.tick_size, d("0.000001"));
        assert_eq!(xtz.min_notional, d("0.000291"));
        assert_eq!((xtz.qty_scale, xtz.price_scale), (4, 7));
    }

    #[test]
    fn failure_body_is_an_error_with_message() {
        let err = parse_exchange_info(&fixture("trcrypto_exchangeinfo_error.json")).unwrap_err();
        assert!(
            err.contains("SYSTEM_ERROR") && err.contains("1000"),
            "{err}"
        );
    }

    #[test]
    fn bundled_payload_has_the_four_pairs() {
        let specs = parse_exchange_info(bundled_exchange_info()).unwrap();
        let by = |n: &str| {
            specs
                .iter()
                .find(|s| s.symbol.as_str() == n)
                .unwrap()
                .clone()
        };
        assert_eq!(specs.len(), 4);
        assert_eq!(by("BTCTRY").tick_size, d("10"));
        assert_eq!(by("ETHTRY").tick_size, d("1"));
        let avax = by("AVAXTRY");
        assert_eq!(
            (avax.qty_scale, avax.price_scale, avax.has_fraction),
            (4, 1, true)
        );
        assert_eq!(avax.tick_size, d("0.1"));
        let usdt = by("USDTTRY");
        assert_eq!((usdt.qty_scale, usdt.price_scale), (2, 3));
        assert_eq!(usdt.tick_size, d("0.001"));
        assert!(
            specs
                .iter()
                .all(|s| s.trading && s.min_notional == d("99.91"))
        );
    }

    #[test]
    fn tolerates_numbers_strings_and_odd_codes() {
        let body = r#"{"data":{"symbols":[{"name":"btc_try","status":"trading",
            "numerator":"BTC","denominator":"TRY","numeratorScale":"8","denominatorScale":0,
            "hasFraction":"false","extra":{"x":1},
            "filters":[{"filterType":"price_filter","tickSize":10,"minExchangeValue":99.91}]},
            {"name":"XTRY","status":"HALT","numerator":"X","denominator":"TRY",
             "numeratorScale":2,"denominatorScale":2,"filters":[]}]},
            "success":true,"message":null,"code":"SUCCESS"}"#;
        let specs = parse_exchange_info(body).unwrap();
        assert_eq!(specs[0].symbol.as_str(), "BTCTRY");
        assert!(specs[0].trading && !specs[0].has_fraction);
        assert_eq!(specs[0].tick_size, d("10"));
        assert_eq!(specs[0].min_notional, d("99.91"));
        assert!(!specs[1].trading);
        assert_eq!(specs[1].tick_size, d("0.01"));
        assert_eq!(specs[1].min_notional, Decimal::ZERO);
    }

    #[test]
    fn malformed_fields_are_named() {
        let body = r#"{"symbols":[{"name":"BTCTRY","numerator":"BTC","denominator":"TRY",
            "numeratorScale":8,"denominatorScale":0,
            "filters":[{"filterType":"PRICE_FILTER","tickSize":"ten"}]}]}"#;
        let err = parse_exchange_info(body).unwrap_err();
        assert!(err.contains("BTCTRY") && err.contains("tickSize"), "{err}");
        assert!(parse_exchange_info("[1,2]").is_err());
        assert!(parse_exchange_info("{").is_err());
        let err = parse_exchange_info(r#"{"success":false,"code":1037}"#).unwrap_err();
        assert!(err.contains("1037"), "{err}");
    }
}
