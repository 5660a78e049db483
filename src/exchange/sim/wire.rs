//! BTCTurk's JSON shapes for private data, field for field as in
//! `shared/reference/payloads/` (mss1451 `open_orders.json`, trcrypto `submit-order.json`,
//! `user-trades.json`, `balances.json`): decimals as strings except `preciseAmount` (a JSON
//! number), ids as JSON integers (order ids above 2^32, trade ids above 2^53, as on BTCTurk).

use super::account::{SimOrder, SimTrade};
use super::json::J;
use crate::domain::{Balance, Side, Symbol};
use rust_decimal::Decimal;

/// `BTC_TRY` for `BTCTRY` when the pair's base is known.
pub(crate) fn normalized(symbol: &Symbol, base: Option<&str>) -> String {
    let s = symbol.as_str();
    match base.and_then(|b| s.strip_prefix(b)) {
        Some(quote) if !quote.is_empty() => format!("{}_{quote}", &s[..s.len() - quote.len()]),
        _ => s.to_string(),
    }
}

/// One order in `openOrders`, `allOrders` and `order/{id}` (mss1451 `open_orders.json`).
pub(crate) fn order(o: &SimOrder, base: Option<&str>) -> J {
    J::Obj(vec![
        ("id", J::int(o.id)),
        ("price", J::dec(o.price)),
        ("amount", J::dec(o.qty)),
        ("quantity", J::dec(o.qty)),
        ("stopPrice", J::str("0")),
        ("pairSymbol", J::str(o.symbol.as_str())),
        ("pairSymbolNormalized", J::str(normalized(&o.symbol, base))),
        ("type", J::str(o.side.as_str())),
        ("method", J::str(o.method.as_str())),
        ("orderClientId", J::str(o.client_id.clone())),
        ("time", J::int(o.created_ms)),
        ("updateTime", J::int(o.updated_ms)),
        ("status", J::str(o.status.as_str())),
        ("leftAmount", J::dec((o.qty - o.filled).max(Decimal::ZERO))),
    ])
}

/// The `data` of a submit answer (trcrypto `submit-order.json`); `quantity` echoes the request
/// (quote currency for a market buy).
pub(crate) fn submitted(o: &SimOrder, quantity: Decimal, base: Option<&str>) -> J {
    J::Obj(vec![
        ("id", J::int(o.id)),
        ("datetime", J::int(o.created_ms)),
        ("type", J::str(o.side.as_str())),
        ("method", J::str(o.method.as_str())),
        ("price", J::dec(o.price)),
        ("stopPrice", J::str("0")),
        ("quantity", J::dec(quantity)),
        ("pairSymbol", J::str(o.symbol.as_str())),
        ("pairSymbolNormalized", J::str(normalized(&o.symbol, base))),
        ("newOrderClientId", J::str(o.client_id.clone())),
    ])
}

fn negated(d: Decimal) -> Decimal {
    if d.is_zero() { Decimal::ZERO } else { -d }
}

/// One user trade (trcrypto `user-trades.json`): `amount` is signed (negative for a sell), `fee`
/// is negative, `tax` is 0 (the simulator charges one fee, all of it in `fee`).
pub(crate) fn user_trade(t: &SimTrade) -> J {
    let amount = match t.side {
        Side::Buy => t.qty,
        Side::Sell => negated(t.qty),
    };
    J::Obj(vec![
        ("id", J::int(t.id)),
        ("timestamp", J::int(t.ts_ms)),
        ("amount", J::dec(amount)),
        ("preciseAmount", J::num(amount)),
        ("fee", J::dec(negated(t.fee))),
        ("tax", J::str("0")),
        ("price", J::dec(t.price)),
        ("numeratorSymbol", J::str(t.base.clone())),
        ("denominatorSymbol", J::str(t.quote.clone())),
        ("orderType", J::str(t.side.as_str())),
        ("orderId", J::int(t.order_id)),
        ("orderClientId", J::str(t.client_id.clone())),
    ])
}

/// One balance (trcrypto `balances.json`); `comma` writes BTCTurk's Turkish-locale decimals.
pub(crate) fn balance(b: &Balance, name: &str, precision: u32, now_ms: i64, comma: bool) -> J {
    let text = |d: Decimal| {
        let t = d.normalize().to_string();
        J::Str(if comma { t.replace('.', ",") } else { t })
    };
    J::Obj(vec![
        ("asset", J::str(b.asset.clone())),
        ("assetname", J::str(name)),
        ("balance", text(b.free + b.locked)),
        ("locked", text(b.locked)),
        ("free", text(b.free)),
        ("orderFund", text(b.locked)),
        ("requestFund", J::str("0")),
        ("precision", J::int(precision)),
        ("timestamp", J::int(now_ms)),
    ])
}

/// `{"success":true,"message":MESSAGE,"code":CODE,"data":DATA}` (the private endpoints' order).
pub(crate) fn ok(message: J, code: J, data: J) -> J {
    J::Obj(vec![
        ("success", J::Bool(true)),
        ("message", message),
        ("code", code),
        ("data", data),
    ])
}

/// `{"data":DATA,"success":true,"message":MESSAGE,"code":CODE}` (the public endpoints' order).
pub(crate) fn ok_data_first(data: J, message: J, code: J) -> J {
    J::Obj(vec![
        ("data", data),
        ("success", J::Bool(true)),
        ("message", message),
        ("code", code),
    ])
}
