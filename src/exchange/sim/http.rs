//! The REST server: routes, the fault-injection layer, and the public endpoints (§3.1–3.4 of
//! `btcturk-api.md`). Paths BTCTurk treats case-insensitively are routed in both spellings
//! clients use (`exchangeinfo`/`exchangeInfo`, `orderbook`/`orderBook`, ...).

use super::error::{ApiError, json_response};
use super::faults::Injected;
use super::json::{J, iso_utc};
use super::market::TRADES_KEPT;
use super::{Shared, now_ms, private, wire};
use crate::domain::Symbol;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

pub(crate) async fn run(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = router(Arc::clone(&shared));
    let stop = async move { shared.stopped().await };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("sim-exchange: the REST server stopped: {e}");
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v2/server/time", get(server_time))
        .route("/api/v2/server/ping", get(ping))
        .route("/api/v2/server/exchangeinfo", get(exchange_info))
        .route("/api/v2/server/exchangeInfo", get(exchange_info))
        .route("/api/v2/ticker", get(ticker))
        .route("/api/v2/orderbook", get(orderbook))
        .route("/api/v2/orderBook", get(orderbook))
        .route("/api/v2/trades", get(trades))
        .route("/api/v1/trades", get(trades))
        .route("/api/v1/users/balances", get(private::balances))
        .route(
            "/api/v1/order",
            axum::routing::post(private::submit).delete(private::cancel),
        )
        .route("/api/v1/order/{id}", get(private::order_by_id))
        .route("/api/v1/openOrders", get(private::open_orders))
        .route("/api/v1/openorders", get(private::open_orders))
        .route("/api/v1/allOrders", get(private::all_orders))
        .route("/api/v1/allorders", get(private::all_orders))
        .route(
            "/api/v1/users/transactions/trade",
            get(private::user_trades),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            inject_faults,
        ))
        .with_state(shared)
}

async fn not_found() -> Response {
    json_response(
        404,
        &J::Obj(vec![
            ("success", J::Bool(false)),
            ("message", J::str("NOT_FOUND")),
            ("code", J::int(404)),
        ]),
    )
}

/// Latency, timeouts, 5xx and 429 bursts, decided before the handler runs.
async fn inject_faults(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let (latency, injected) = shared.faults.before();
    if !latency.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(latency) => {}
            () = shared.stopped() => return dropped_connection(),
        }
    }
    match injected {
        Injected::Pass => next.run(req).await,
        Injected::Timeout(hold) => {
            tokio::select! {
                () = tokio::time::sleep(hold) => {}
                () = shared.stopped() => {}
            }
            dropped_connection()
        }
        Injected::ServerError(status, variant) => server_error(status, variant),
        Injected::TooMany { retry_after_s } => too_many(retry_after_s),
    }
}

/// A 200 whose body fails: hyper aborts the connection, the client sees a transport error.
pub(crate) fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("dropped by fault injection"))
    });
    Response::new(Body::from_stream(failing))
}

/// A 5xx the way a client meets them: BTCTurk's JSON, Cloudflare's HTML page, or nothing.
pub(crate) fn server_error(status: u16, variant: u8) -> Response {
    match variant {
        0 => ApiError::system("injected fault").into_response_with(status),
        1 => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let html = format!(
                "<html>\r\n<head><title>{code}</title></head>\r\n<body>\r\n<center><h1>{code}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
            );
            let mut resp = (code, html).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            resp
        }
        _ => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
    }
}

impl ApiError {
    fn into_response_with(self, status: u16) -> Response {
        json_response(status, &self.body())
    }
}

/// §4: 429 with `Retry-After` and BTCTurk's IP-block body.
fn too_many(retry_after_s: u64) -> Response {
    let body = J::Obj(vec![
        ("message", J::str("TOO_MANY_REQUESTS")),
        ("success", J::Bool(false)),
        ("code", J::int(429)),
        (
            "details",
            J::str("Quota exceeded. Maximum allowed: 120 per 1m."),
        ),
        ("limit", J::str("120")),
        ("period", J::str("1m")),
        ("policy", J::str("ip")),
    ]);
    let mut resp = json_response(429, &body);
    if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The query string as (key, value) pairs, repeated keys kept.
pub(crate) fn query(uri: &Uri) -> Result<Vec<(String, String)>, ApiError> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|_| ApiError::invalid("the query string is not valid"))
}

/// The first value of `key` (case-insensitive), empty values ignored.
pub(crate) fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// `pairSymbol` of a listed pair: missing → INVALID_REQUEST_ERROR, unknown → "Pair X does not
/// exists." (both 1037, §3.3).
pub(crate) fn listed_pair(shared: &Shared, raw: Option<&str>) -> Result<Symbol, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::invalid("pairSymbol is required"))?;
    let unknown = || ApiError::unknown_pair(&raw.to_ascii_uppercase());
    let symbol = Symbol::new(raw).map_err(|_| unknown())?;
    if shared.lock().market.spec(&symbol).is_none() {
        return Err(unknown());
    }
    Ok(symbol)
}

/// §1: a bare object, no envelope.
async fn server_time() -> Response {
    let now = now_ms();
    json_response(
        200,
        &J::Obj(vec![
            ("serverTime", J::int(now)),
            ("serverTime2", J::str(iso_utc(now))),
        ]),
    )
}

async fn ping() -> Response {
    json_response(200, &J::Obj(vec![("pong", J::Bool(true))]))
}

/// §3.1: the dataset's exchangeinfo in the envelope, `message:""`, `code:0`.
async fn exchange_info(State(shared): State<Arc<Shared>>) -> Response {
    let mut resp = (StatusCode::OK, shared.info.body(now_ms())).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// §3.2: `data` is always an array; prices are JSON numbers; an unknown pair gives `[]`.
async fn ticker(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let pairs = match query(&uri) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let wanted = param(&pairs, "pairSymbol").map(Symbol::new);
    let st = shared.lock();
    let symbols: Vec<Symbol> = match wanted {
        Some(Ok(s)) => vec![s],
        Some(Err(_)) => Vec::new(),
        None => st.market.symbols().cloned().collect(),
    };
    let mut items = Vec::new();
    for symbol in &symbols {
        let (Some(spec), Some(stats)) = (st.market.spec(symbol), st.market.stats(symbol)) else {
            continue;
        };
        let top = st.market.top(symbol);
        let daily = stats.last - stats.open;
        let daily_pct = if stats.open.is_zero() {
            daily
        } else {
            (daily * rust_decimal::Decimal::ONE_HUNDRED / stats.open).round_dp(2)
        };
        let (_, order) = shared.info.pair(symbol.as_str());
        items.push(J::Obj(vec![
            ("pair", J::str(symbol.as_str())),
            (
                "pairNormalized",
                J::str(wire::normalized(symbol, Some(&spec.base))),
            ),
            ("timestamp", J::int(st.market.updated_wall_ms(symbol))),
            ("last", J::num(stats.last)),
            ("high", J::num(stats.high)),
            ("low", J::num(stats.low)),
            ("bid", J::num(top.map_or(stats.last, |t| t.bid))),
            ("ask", J::num(top.map_or(stats.last, |t| t.ask))),
            ("open", J::num(stats.open)),
            ("volume", J::num(stats.volume)),
            ("average", J::num(stats.average)),
            ("daily", J::num(daily)),
            ("dailyPercent", J::num(daily_pct)),
            ("denominatorSymbol", J::str(spec.quote.clone())),
            ("numeratorSymbol", J::str(spec.base.clone())),
            ("order", J::int(order)),
        ]));
    }
    drop(st);
    json_response(200, &wire::ok_data_first(J::Arr(items), J::Null, J::int(0)))
}

/// §3.3: `code:"SUCCESS"`, levels as `[price, qty]` strings, integer ms timestamp. The replayed
/// market is top of book, so each side has at most one level.
async fn orderbook(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let result = (|| {
        let pairs = query(&uri)?;
        let symbol = listed_pair(&shared, param(&pairs, "pairSymbol"))?;
        let limit = match param(&pairs, "limit") {
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("limit must be a whole number"))?
                .min(100),
            None => 100,
        };
        let st = shared.lock();
        let top = st.market.top(&symbol);
        let level = |p, q| J::Arr(vec![J::dec(p), J::dec(q)]);
        let side = |lv: Option<J>| J::Arr(lv.into_iter().take(limit).collect());
        let data = J::Obj(vec![
            ("timestamp", J::int(top.map_or_else(now_ms, |t| t.wall_ms))),
            ("bids", side(top.map(|t| level(t.bid, t.bid_qty)))),
            ("asks", side(top.map(|t| level(t.ask, t.ask_qty)))),
        ]);
        Ok::<_, ApiError>(wire::ok_data_first(data, J::Null, J::str("SUCCESS")))
    })();
    match result {
        Ok(body) => json_response(200, &body),
        Err(e) => e.into_response(),
    }
}

/// §3.4: newest first; `tid` a string; `side` when the dataset knows it.
async fn trades(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let result = (|| {
        let pairs = query(&uri)?;
        let symbol = listed_pair(&shared, param(&pairs, "pairSymbol"))?;
        let last = match param(&pairs, "last") {
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("last must be a whole number"))?
                .clamp(1, TRADES_KEPT),
            None => 50,
        };
        let st = shared.lock();
        let spec = st.market.spec(&symbol).cloned();
        let (base, quote) = spec.map_or_else(Default::default, |s| (s.base, s.quote));
        let items = st
            .market
            .trades(&symbol, last)
            .into_iter()
            .map(|t| {
                let mut f = vec![
                    ("pair", J::str(symbol.as_str())),
                    (
                        "pairNormalized",
                        J::str(wire::normalized(&symbol, Some(&base))),
                    ),
                    ("numerator", J::str(base.clone())),
                    ("denominator", J::str(quote.clone())),
                    ("date", J::int(t.wall_ms)),
                    ("tid", J::str(t.tid.to_string())),
                    ("price", J::dec(t.price)),
                    ("amount", J::dec(t.qty)),
                ];
                if let Some(side) = t.side {
                    f.push(("side", J::str(side.as_str())));
                }
                J::Obj(f)
            })
            .collect();
        Ok::<_, ApiError>(wire::ok_data_first(J::Arr(items), J::Null, J::int(0)))
    })();
    match result {
        Ok(body) => json_response(200, &body),
        Err(e) => e.into_response(),
    }
}
