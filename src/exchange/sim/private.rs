//! The private endpoints (§3.6–3.12 of `btcturk-api.md`) and their HMAC check (§1).

use super::account::{OrderMethod, PlaceRequest, SimOrder};
use super::error::{ApiError, json_response};
use super::faults::Lost;
use super::http::{dropped_connection, listed_pair, param, query};
use super::json::J;
use super::{Shared, now_ms, wire};
use crate::domain::{Side, Symbol, decimal_from_str};
use crate::exchange::btcturk::auth;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::Value;
use std::sync::Arc;

/// §1: "We do have a 5 seconds tolerance".
const STAMP_TOLERANCE_MS: i64 = 5_000;
const DAY_MS: i64 = 86_400_000;

/// Checks `X-PCK`, `X-Stamp`, `X-Signature`; returns the public key.
///
/// # Errors
/// 401 with BTCTurk's messages (§1): `Unauthorized - Headers are missing`, `Unauthorized -
/// Invalid Public/Private key`, `Unauthorized - Invalid Nonce` (stamp not an integer or outside
/// ±5 s of the server clock), `Unauthorized - Invalid Signature`.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(key), Some(stamp), Some(signature)) =
        (get("x-pck"), get("x-stamp"), get("x-signature"))
    else {
        return Err(ApiError::unauthorized("Unauthorized - Headers are missing"));
    };
    let secret = shared
        .lock()
        .accounts
        .get(key)
        .map(|a| a.secret_b64.clone())
        .ok_or_else(|| ApiError::unauthorized("Unauthorized - Invalid Public/Private key"))?;
    let stamp: i64 = stamp
        .parse()
        .map_err(|_| ApiError::unauthorized("Unauthorized - Invalid Nonce"))?;
    if (now_ms() - stamp).abs() > STAMP_TOLERANCE_MS {
        return Err(ApiError::unauthorized("Unauthorized - Invalid Nonce"));
    }
    if !auth::verify(key, &secret, stamp, signature) {
        return Err(ApiError::unauthorized("Unauthorized - Invalid Signature"));
    }
    Ok(key.to_string())
}

fn respond(result: Result<J, ApiError>) -> Response {
    match result {
        Ok(body) => json_response(200, &body),
        Err(e) => e.into_response(),
    }
}

/// §3.6 `GET /api/v1/users/balances`.
pub(crate) async fn balances(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    respond((|| {
        let key = authenticate(&shared, &headers)?;
        let now = now_ms();
        let comma = shared.faults.spec().comma_decimals;
        let balances = shared
            .lock()
            .accounts
            .get(&key)
            .map(|a| a.balances())
            .unwrap_or_default();
        let items = balances
            .iter()
            .map(|b| {
                let (name, precision) = shared.info.currency(&b.asset);
                wire::balance(b, &name, precision, now, comma)
            })
            .collect();
        Ok(wire::ok_data_first(J::Arr(items), J::Null, J::int(0)))
    })())
}

/// Request parameters: a JSON body (every client sends one), a form body, or the query
/// string (the docs allow both). Keys are matched case-insensitively (the official C# client
/// posts PascalCase keys and enum integers).
struct Params(Vec<(String, Value)>);

impl Params {
    fn read(headers: &HeaderMap, uri: &Uri, body: &Bytes) -> Result<Self, ApiError> {
        let mut out: Vec<(String, Value)> = query(uri)?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let text = std::str::from_utf8(body).map_err(|_| ApiError::invalid("body is not UTF-8"))?;
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("x-www-form-urlencoded"));
        if text.trim().is_empty() {
        } else if is_form {
            let uri: Uri = format!("/?{}", text.trim())
                .parse()
                .map_err(|_| ApiError::invalid("the form body is not valid"))?;
            out.extend(query(&uri)?.into_iter().map(|(k, v)| (k, Value::String(v))));
        } else {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => out.extend(map),
                _ => return Err(ApiError::invalid("the body is not a JSON object")),
            }
        }
        Ok(Self(out))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_null())
            .map(|(_, v)| v)
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A decimal from a string (exact) or a JSON number. Without `arbitrary_precision` a JSON
    /// number arrives as f64; it is accepted only when its shortest text has at most 15
    /// significant digits, which f64 represents exactly.
    fn decimal(&self, key: &str) -> Result<Option<Decimal>, ApiError> {
        let bad = || ApiError::invalid(&format!("{key} is not a decimal number"));
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => decimal_from_str(s).map(Some).map_err(|_| bad()),
            Some(Value::Number(n)) => {
                let t = n.to_string();
                let digits = t
                    .split(['e', 'E'])
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(char::is_ascii_digit)
                    .skip_while(|c| *c == '0')
                    .count();
                if n.is_f64() && digits > 15 {
                    return Err(ApiError::invalid(&format!(
                        "{key}: send numbers with more than 15 digits as strings"
                    )));
                }
                decimal_from_str(&t).map(Some).map_err(|_| bad())
            }
            Some(_) => Err(bad()),
        }
    }
}

/// The swagger `OrderInputModel` → a request; §3.7 codes for what is not supported.
fn order_request(p: &Params, next_guid: u64) -> Result<PlaceRequest, ApiError> {
    let method = match p.get("orderMethod") {
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::invalid("orderMethod is required")),
    };
    let method = match method.as_str() {
        "limit" | "0" => OrderMethod::Limit,
        "market" | "1" => OrderMethod::Market,
        _ => return Err(ApiError::method_not_supported()),
    };
    let side = match p
        .text("orderType")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("buy" | "0") => Side::Buy,
        Some("sell" | "1") => Side::Sell,
        _ => return Err(ApiError::type_not_supported()),
    };
    let pair = p
        .text("pairSymbol")
        .ok_or_else(|| ApiError::invalid("pairSymbol is required"))?;
    if pair.len() > 20 {
        return Err(ApiError::invalid("pairSymbol is longer than 20 characters"));
    }
    let symbol =
        Symbol::new(&pair).map_err(|_| ApiError::unknown_pair(&pair.to_ascii_uppercase()))?;
    let quantity = p
        .decimal("quantity")?
        .ok_or_else(|| ApiError::invalid("quantity is required"))?;
    let price = p.decimal("price")?;
    let client_id = match p.text("newOrderClientId") {
        Some(c) if c.chars().count() > 50 => {
            return Err(ApiError::invalid(
                "newOrderClientId is longer than 50 characters",
            ));
        }
        Some(c) => c,
        // BTCTurk assigns a GUID when the client sends none.
        None => format!("00000000-0000-4000-8000-{next_guid:012x}"),
    };
    Ok(PlaceRequest {
        client_id,
        symbol,
        side,
        method,
        price,
        quantity,
    })
}

/// §3.7 `POST /api/v1/order`: answers like trcrypto `submit-order.json` (`message:"OK"`).
pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let placed = (|| {
        let key = authenticate(&shared, &headers)?;
        let params = Params::read(&headers, &uri, &body)?;
        let mut guard = shared.lock();
        let st = &mut *guard;
        let req = order_request(&params, st.ids.next_key)?;
        let account = st
            .accounts
            .get_mut(&key)
            .ok_or_else(|| ApiError::system("account vanished"))?;
        let order = account.place(&req, &st.market, &mut st.ids, now_ms())?;
        let base = st.market.spec(&order.symbol).map(|s| s.base.clone());
        Ok::<_, ApiError>(wire::ok(
            J::str("OK"),
            J::int(0),
            wire::submitted(&order, req.quantity, base.as_deref()),
        ))
    })();
    match placed {
        Ok(body) => match shared.faults.lose_order_response() {
            None => json_response(200, &body),
            Some(Lost::Drop) => dropped_connection(),
            Some(Lost::Empty5xx) => StatusCode::BAD_GATEWAY.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// §3.8 `DELETE /api/v1/order?id=`: 200 means "accepted" (BTCTurk cancels asynchronously;
/// with `cancel_delay` the cancel lands that much later, and a fill may come first).
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let accepted = (|| {
        let key = authenticate(&shared, &headers)?;
        let params = Params::read(&headers, &uri, &body)?;
        let id: u64 = params
            .text("id")
            .ok_or_else(|| ApiError::invalid("id is required"))?
            .parse()
            .map_err(|_| ApiError::no_order_matches())?;
        let delay = shared.faults.spec().cancel_delay;
        let mut st = shared.lock();
        let account = st
            .accounts
            .get_mut(&key)
            .ok_or_else(|| ApiError::system("account vanished"))?;
        if delay.is_zero() {
            account.cancel(id, now_ms())?;
        } else {
            account.check_cancel(id)?;
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(a) = shared.lock().accounts.get_mut(&key) {
                    // Filled in the meantime: nothing left to cancel.
                    let _ = a.cancel(id, now_ms());
                }
            });
        }
        // trcrypto cancel-order.json: `code` is an empty string, `data` is `{}`.
        Ok(wire::ok(J::str("SUCCESS"), J::str(""), J::Obj(Vec::new())))
    })();
    respond(accepted)
}

fn order_list(shared: &Shared, orders: &[SimOrder]) -> Vec<J> {
    let st = shared.lock();
    orders
        .iter()
        .map(|o| wire::order(o, st.market.spec(&o.symbol).map(|s| s.base.as_str())))
        .collect()
}

/// The account's orders matching `keep`, oldest first.
fn orders_of(shared: &Shared, key: &str, keep: impl Fn(&SimOrder) -> bool) -> Vec<SimOrder> {
    shared
        .lock()
        .accounts
        .get(key)
        .map(|a| a.orders().filter(|o| keep(o)).cloned().collect())
        .unwrap_or_default()
}

/// §3.9 `GET /api/v1/openOrders[?pairSymbol=]`: `{asks, bids}`, oldest first.
pub(crate) async fn open_orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond((|| {
        let key = authenticate(&shared, &headers)?;
        let q = query(&uri)?;
        let pair = match param(&q, "pairSymbol") {
            Some(p) => Some(listed_pair(&shared, Some(p))?),
            None => None,
        };
        let open = orders_of(&shared, &key, |o| {
            o.status.is_open() && pair.as_ref().is_none_or(|p| &o.symbol == p)
        });
        let (bids, asks): (Vec<SimOrder>, Vec<SimOrder>) =
            open.into_iter().partition(|o| o.side == Side::Buy);
        let data = J::Obj(vec![
            ("asks", J::Arr(order_list(&shared, &asks))),
            ("bids", J::Arr(order_list(&shared, &bids))),
        ]);
        Ok(wire::ok(J::Null, J::int(0), data))
    })())
}

/// `startTime`-style parameters: ms, or seconds when small (clients disagree, §3.10).
fn time_param(q: &[(String, String)], key: &str) -> Result<Option<i64>, ApiError> {
    param(q, key)
        .map(|v| {
            v.parse::<i64>()
                .map(|t| {
                    if t < 100_000_000_000 {
                        t.saturating_mul(1000)
                    } else {
                        t
                    }
                })
                .map_err(|_| ApiError::invalid(&format!("{key} must be a whole number")))
        })
        .transpose()
}

/// §3.10 `GET /api/v1/allOrders?pairSymbol=`: newest first; `orderId` (id >=), `startTime`,
/// `endTime`, `page` (from 1), `limit` (default 100, max 1000).
pub(crate) async fn all_orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond((|| {
        let key = authenticate(&shared, &headers)?;
        let q = query(&uri)?;
        let pair = listed_pair(&shared, param(&q, "pairSymbol"))?;
        let number = |k: &str, default: u64| {
            param(&q, k).map_or(Ok(default), |v| {
                v.parse::<u64>()
                    .map_err(|_| ApiError::invalid(&format!("{k} must be a whole number")))
            })
        };
        let min_id = number("orderId", 0)?;
        let page = number("page", 1)?.max(1);
        let limit = number("limit", 100)?.clamp(1, 1000);
        let start = time_param(&q, "startTime")?.unwrap_or(i64::MIN);
        let end = time_param(&q, "endTime")?.unwrap_or(i64::MAX);
        let mut orders = orders_of(&shared, &key, |o| {
            o.symbol == pair && o.id >= min_id && (start..=end).contains(&o.created_ms)
        });
        orders.reverse();
        let skip = usize::try_from((page - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(1000);
        let page: Vec<SimOrder> = orders.into_iter().skip(skip).take(take).collect();
        Ok(wire::ok(
            J::Null,
            J::int(0),
            J::Arr(order_list(&shared, &page)),
        ))
    })())
}

/// §3.11 `GET /api/v1/order/{id}`; unknown → 400 "Order not found" 1152.
pub(crate) async fn order_by_id(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let key = authenticate(&shared, &headers)?;
        let id: u64 = id.trim().parse().map_err(|_| ApiError::order_not_found())?;
        let order = shared
            .lock()
            .accounts
            .get(&key)
            .and_then(|a| a.order(id).cloned())
            .ok_or_else(ApiError::order_not_found)?;
        let data = order_list(&shared, std::slice::from_ref(&order));
        let data = data.into_iter().next().unwrap_or(J::Null);
        Ok(wire::ok_data_first(data, J::Null, J::int(0)))
    })())
}

/// §3.12 `GET /api/v1/users/transactions/trade`: newest first. `orderId` alone, or any of
/// `type` (repeatable), `symbol` (repeatable currency), `pairSymbol`, `startDate`, `endDate`
/// (ms; default the last 30 days).
pub(crate) async fn user_trades(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond((|| {
        let key = authenticate(&shared, &headers)?;
        let q = query(&uri)?;
        let order_id = param(&q, "orderId")
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| ApiError::invalid("orderId must be a number"))
            })
            .transpose()?;
        let values = |k: &str| -> Vec<String> {
            q.iter()
                .filter(|(qk, v)| qk.eq_ignore_ascii_case(k) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_ascii_uppercase())
                .collect()
        };
        let (types, currencies) = (values("type"), values("symbol"));
        let pair = param(&q, "pairSymbol")
            .map(Symbol::new)
            .transpose()
            .ok()
            .flatten();
        let now = now_ms();
        let start = time_param(&q, "startDate")?.unwrap_or(now - 30 * DAY_MS);
        let end = time_param(&q, "endDate")?.unwrap_or(i64::MAX);
        let st = shared.lock();
        let trades = st
            .accounts
            .get(&key)
            .map(|a| a.trades())
            .unwrap_or_default();
        let items = trades
            .iter()
            .rev()
            .filter(|t| match order_id {
                Some(id) => t.order_id == id,
                None => {
                    (start..=end).contains(&t.ts_ms)
                        && (types.is_empty()
                            || types
                                .iter()
                                .any(|s| s.eq_ignore_ascii_case(t.side.as_str())))
                        && (currencies.is_empty()
                            || currencies.iter().any(|c| *c == t.base || *c == t.quote))
                        && pair.as_ref().is_none_or(|p| *p == t.symbol)
                }
            })
            .map(wire::user_trade)
            .collect();
        Ok(wire::ok(J::str("SUCCESS"), J::int(0), J::Arr(items)))
    })())
}
