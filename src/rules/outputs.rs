//! Validation of what scripts return. Any output of the wrong shape is an error (and so fails
//! closed): unknown keys, missing keys, wrong types, non-positive money.

use super::api::VerdictOut;
use crate::domain::{Anomaly, Intent, Mode, Price, Qty, Severity, Side, Symbol, Verdict};
use rhai::{Array, Dynamic, Map};
use rust_decimal::Decimal;

fn as_map(v: Dynamic, what: &str) -> Result<Map, String> {
    let type_name = v.type_name();
    v.try_cast::<Map>()
        .ok_or_else(|| format!("{what} must be a map, got {type_name}"))
}

fn as_array(v: Dynamic, what: &str) -> Result<Array, String> {
    let type_name = v.type_name();
    v.try_cast::<Array>()
        .ok_or_else(|| format!("{what} must be an array, got {type_name}"))
}

fn check_keys(m: &Map, allowed: &[&str], required: &[&str], what: &str) -> Result<(), String> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "{what}: unknown key `{k}` (allowed: {})",
                allowed.join(", ")
            ));
        }
    }
    for r in required {
        if !m.contains_key(*r) {
            return Err(format!("{what}: missing key `{r}`"));
        }
    }
    Ok(())
}

fn text(m: &Map, key: &str, what: &str) -> Result<String, String> {
    let v = &m[key];
    if v.is_string() {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{what}.{key} must be a string, got {}",
            v.type_name()
        ))
    }
}

/// A decimal from a Decimal or an integer; anything else (a string, `()`) is an error.
pub fn money(v: &Dynamic, what: &str) -> Result<Decimal, String> {
    if let Ok(d) = v.as_decimal() {
        return Ok(d);
    }
    if let Ok(i) = v.as_int() {
        return Ok(Decimal::from(i));
    }
    Err(format!("{what} must be a number, got {}", v.type_name()))
}

/// `anomalies(ctx)` → `[#{code, severity, symbol?, detail?}]`.
///
/// # Errors
/// When the value is not an array of well-formed anomaly maps.
pub fn parse_anomalies(v: Dynamic) -> Result<Vec<Anomaly>, String> {
    let items = as_array(v, "anomalies() result")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let what = format!("anomalies()[{i}]");
        let m = as_map(item, &what)?;
        check_keys(
            &m,
            &["code", "severity", "symbol", "detail"],
            &["code", "severity"],
            &what,
        )?;
        let code = text(&m, "code", &what)?;
        if code.is_empty()
            || !code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!(
                "{what}.code must be UPPER_SNAKE_CASE, got {code:?}"
            ));
        }
        let severity = Severity::parse(&text(&m, "severity", &what)?)
            .map_err(|e| format!("{what}.severity: {e}"))?;
        let symbol = match m.get("symbol") {
            Some(s) if !s.is_unit() => {
                Some(Symbol::new(&s.to_string()).map_err(|e| format!("{what}.symbol: {e}"))?)
            }
            _ => None,
        };
        let detail = match m.get("detail") {
            Some(d) if !d.is_unit() => as_map(d.clone(), &format!("{what}.detail"))?
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _ => Vec::new(),
        };
        out.push(Anomaly {
            code,
            severity,
            symbol,
            detail,
        });
    }
    Ok(out)
}

/// `degrade(anomalies, ctx)` → `#{mode, reasons?}`.
///
/// # Errors
/// When the value is not such a map or names no mode.
pub fn parse_mode(v: Dynamic) -> Result<(Mode, Vec<String>), String> {
    let what = "degrade() result";
    let m = as_map(v, what)?;
    check_keys(&m, &["mode", "reasons"], &["mode"], what)?;
    let mode = Mode::parse(&text(&m, "mode", what)?).map_err(|e| format!("{what}.mode: {e}"))?;
    let reasons = match m.get("reasons") {
        Some(r) if !r.is_unit() => as_array(r.clone(), "degrade() result.reasons")?
            .iter()
            .map(|x| {
                if x.is_string() {
                    Ok(x.to_string())
                } else {
                    Err(format!("{what}.reasons must hold strings"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok((mode, reasons))
}

/// `strategy(ctx)` → `[#{symbol, side, price, qty, tag?}]`.
///
/// # Errors
/// When any intent is malformed; then the whole output is refused (no partial trading).
pub fn parse_intents(v: Dynamic) -> Result<Vec<Intent>, String> {
    let items = as_array(v, "strategy() result")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let what = format!("strategy()[{i}]");
        let m = as_map(item, &what)?;
        check_keys(
            &m,
            &["symbol", "side", "price", "qty", "tag"],
            &["symbol", "side", "price", "qty"],
            &what,
        )?;
        let symbol =
            Symbol::new(&text(&m, "symbol", &what)?).map_err(|e| format!("{what}.symbol: {e}"))?;
        let side =
            Side::parse(&text(&m, "side", &what)?).map_err(|e| format!("{what}.side: {e}"))?;
        let price = Price::new(money(&m["price"], &format!("{what}.price"))?)
            .map_err(|e| format!("{what}.price: {e}"))?;
        let qty_value = money(&m["qty"], &format!("{what}.qty"))?;
        if qty_value <= Decimal::ZERO {
            return Err(format!("{what}.qty must be > 0, got {qty_value}"));
        }
        let qty = Qty::new(qty_value).map_err(|e| format!("{what}.qty: {e}"))?;
        let tag = match m.get("tag") {
            Some(t) if !t.is_unit() => text(&m, "tag", &what)?,
            _ => String::new(),
        };
        out.push(Intent {
            symbol,
            side,
            price,
            qty,
            tag,
        });
    }
    Ok(out)
}

/// `risk(intent, ctx)` → the value of `accept()`, `resize(q)` or `reject("CODE")`.
///
/// # Errors
/// Anything else, or a resize that would enlarge the order.
pub fn parse_verdict(v: Dynamic, intent: &Intent) -> Result<Verdict, String> {
    let type_name = v.type_name();
    let verdict = v
        .try_cast::<VerdictOut>()
        .ok_or_else(|| {
            format!("risk() must return accept(), resize(qty) or reject(\"CODE\"), got {type_name}")
        })?
        .0;
    if let Verdict::Resize { qty } = &verdict {
        if *qty > intent.qty {
            return Err(format!(
                "risk() may only shrink an order: resize({qty}) > intent qty {}",
                intent.qty
            ));
        }
        if qty.value().is_zero() {
            return Ok(Verdict::Reject {
                reason: "RESIZED_TO_ZERO".into(),
            });
        }
    }
    Ok(verdict)
}
