//! `sim-exchange` over real HTTP on loopback: BTCTurk's shapes (compared with the reference
//! payloads in `fixtures/sim/payloads/`), matching and balances, rejections with BTCTurk's
//! codes, the HMAC check, and every fault kind.

use btcbot::exchange::btcturk::auth::sign;
use btcbot::exchange::sim::{
    FaultSpec, SimAccount, SimConfig, SimHandle, SimOrderStatus, SimSpeed, serve,
};
use reqwest::{Client, Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const T0: i64 = 1_767_225_600_000;
const KEY: &str = "test-public-key";
const SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";
const POOR: &str = "second-public-key";
const POOR_SECRET: &str = "c2Vjb25kLXNlY3JldC1rZXk=";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sim")
        .join(rel)
}

fn payload(rel: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("payloads/{rel}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn accounts() -> Vec<SimAccount> {
    vec![
        SimAccount {
            public_key: KEY.into(),
            secret_b64: SECRET.into(),
            balances: vec![("TRY".into(), d("100000")), ("BTC".into(), d("1"))],
        },
        SimAccount {
            public_key: POOR.into(),
            secret_b64: POOR_SECRET.into(),
            balances: vec![("TRY".into(), d("1000"))],
        },
    ]
}

async fn start(faults: &str) -> SimHandle {
    let mut config = SimConfig::new(
        fixture("market"),
        "127.0.0.1:0".parse().unwrap(),
        accounts(),
    );
    config.faults = FaultSpec::parse(faults).unwrap();
    config.maker_fee_bps = d("10");
    config.taker_fee_bps = d("15");
    serve(config).await.unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A client of the sim: plain reqwest, requests signed like BTCTurk's.
struct Api {
    http: Client,
    base: String,
    key: &'static str,
    secret: &'static str,
}

impl Api {
    fn new(sim: &SimHandle) -> Self {
        Self::with(sim, KEY, SECRET)
    }
    fn with(sim: &SimHandle, key: &'static str, secret: &'static str) -> Self {
        Self {
            http: Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            base: sim.base_url(),
            key,
            secret,
        }
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
    fn signed(&self, method: Method, path: &str, stamp: i64) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-PCK", self.key)
            .header("X-Stamp", stamp.to_string())
            .header("X-Signature", sign(self.key, self.secret, stamp).unwrap())
    }
    async fn private(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.signed(method, path, now_ms());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
    async fn order(&self, body: Value) -> (StatusCode, Value) {
        self.private(Method::POST, "/api/v1/order", Some(body))
            .await
    }
    async fn limit(&self, side: &str, price: &str, qty: &str, cid: &str) -> (StatusCode, Value) {
        self.order(
            json!({"quantity": qty, "price": price, "orderMethod": "limit",
            "orderType": side, "pairSymbol": "BTCTRY", "newOrderClientId": cid}),
        )
        .await
    }
    async fn balance(&self, asset: &str) -> (Decimal, Decimal) {
        let (_, body) = self
            .private(Method::GET, "/api/v1/users/balances", None)
            .await;
        let b = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == asset)
            .unwrap()
            .clone();
        (
            d(b["free"].as_str().unwrap()),
            d(b["locked"].as_str().unwrap()),
        )
    }
}

/// `ours` has the reference's shape: the same keys (`exact`) or at least them, the same JSON
/// types; a `null` in the reference matches anything; arrays compare each element with the
/// reference's first.
fn same_shape(ours: &Value, reference: &Value, path: &str, exact: bool) -> Result<(), String> {
    match (ours, reference) {
        (_, Value::Null) => Ok(()),
        (Value::Object(o), Value::Object(r)) => {
            let missing: Vec<_> = r.keys().filter(|k| !o.contains_key(*k)).collect();
            let extra: Vec<_> = o.keys().filter(|k| !r.contains_key(*k)).collect();
            if !missing.is_empty() || (exact && !extra.is_empty()) {
                return Err(format!("{path}: missing {missing:?}, extra {extra:?}"));
            }
            r.iter()
                .try_for_each(|(k, rv)| same_shape(&o[k], rv, &format!("{path}.{k}"), exact))
        }
        (Value::Array(o), Value::Array(r)) => match r.first() {
            None => Ok(()),
            Some(_) if o.is_empty() => Err(format!("{path}: empty, the reference is not")),
            Some(r0) => o
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| same_shape(v, r0, &format!("{path}[{i}]"), exact)),
        },
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        _ => Err(format!(
            "{path}: {ours} is not the same JSON type as {reference}"
        )),
    }
}

fn assert_shape(ours: &Value, reference: &Value, exact: bool) {
    if let Err(e) = same_shape(ours, reference, "$", exact) {
        panic!("{e}\nours: {ours}\nreference: {reference}");
    }
}

#[tokio::test]
async fn public_endpoints_match_the_reference_payloads() {
    let sim = start("").await;
    sim.advance_to(T0 + 200).unwrap();
    let api = Api::new(&sim);

    let (status, info) = api.get("/api/v2/server/exchangeinfo").await;
    assert_eq!(status, 200);
    assert_shape(&info, &payload("trcrypto/exchangeinfo.json"), true);
    assert_eq!((&info["message"], &info["code"]), (&json!(""), &json!(0)));
    let (_, camel) = api.get("/api/v2/server/exchangeInfo").await;
    assert_eq!(camel["data"]["symbols"], info["data"]["symbols"]);

    let (_, ticker) = api.get("/api/v2/ticker?pairSymbol=BTC_TRY").await;
    assert_shape(&ticker, &payload("trcrypto/ticker.json"), true);
    assert_eq!(ticker["data"][0]["last"], json!(3_500_010));
    assert_eq!(ticker["data"][0]["volume"], json!(0.01));
    let (_, all) = api.get("/api/v2/ticker").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let (status, none) = api.get("/api/v2/ticker?pairSymbol=NOPETRY").await;
    assert_eq!((status, &none["data"]), (StatusCode::OK, &json!([])));

    let (_, book) = api
        .get("/api/v2/orderbook?pairSymbol=btctry&limit=25")
        .await;
    assert_shape(&book, &payload("trcrypto/orderbook.json"), true);
    assert_eq!(book["code"], "SUCCESS");
    assert_eq!(book["data"]["asks"], json!([["3500010", "0.25"]]));
    assert!(book["data"]["timestamp"].is_i64());
    let (status, bad) = api.get("/api/v2/orderbook?pairSymbol=NOPEUSDT").await;
    assert_eq!(status, 400);
    assert_eq!(
        bad,
        json!({"success": false, "message": "Pair NOPEUSDT does not exists.",
        "code": 1037, "data": null})
    );
    let (status, bad) = api.get("/api/v2/orderBook").await;
    assert_eq!(
        (status.as_u16(), &bad["message"]),
        (400, &json!("INVALID_REQUEST_ERROR"))
    );

    let (_, trades) = api.get("/api/v2/trades?pairSymbol=BTCTRY&last=10").await;
    let reference = payload("trcrypto/trades.json");
    let top: Vec<_> = trades.as_object().unwrap().keys().collect();
    assert_eq!(
        top,
        reference.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_shape(&trades["data"], &payload("mss1451/trades.json"), true);
    assert_eq!(trades["data"][0]["tid"], "100163842129199001");

    let (_, time) = api.get("/api/v2/server/time").await;
    let keys: Vec<_> = time.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["serverTime", "serverTime2"]);
    assert!((time["serverTime"].as_i64().unwrap() - now_ms()).abs() < 5_000);
}

#[tokio::test]
async fn private_endpoints_match_the_reference_payloads() {
    let sim = start("").await;
    sim.advance_to(T0).unwrap();
    let api = Api::new(&sim);
    let (_, balances) = api
        .private(Method::GET, "/api/v1/users/balances", None)
        .await;
    assert_shape(&balances, &payload("trcrypto/balances.json"), true);

    let (status, submitted) = api.limit("buy", "3500010", "0.01", "fill-1").await;
    assert_eq!(status, 200, "{submitted}");
    assert_shape(&submitted, &payload("trcrypto/submit-order.json"), true);
    assert_eq!(submitted["message"], "OK");
    let (_, resting) = api.limit("sell", "3600000", "0.01", "rest-1").await;
    let (_, bid) = api.limit("buy", "3400000", "0.01", "rest-2").await;
    let id = resting["data"]["id"].as_u64().unwrap();
    assert!(
        id > u64::from(u32::MAX),
        "order ids are above 2^32 like BTCTurk's"
    );

    let (_, open) = api
        .private(Method::GET, "/api/v1/openOrders?pairSymbol=BTCTRY", None)
        .await;
    let reference = payload("mss1451/open_orders.json");
    assert_shape(&open["data"], &reference, true);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&open), keys(&payload("trcrypto/open-orders.json")));
    assert_eq!(open["data"]["asks"][0]["orderClientId"], "rest-1");
    assert_eq!(open["data"]["bids"][0]["id"], bid["data"]["id"]);

    let (_, all) = api
        .private(Method::GET, "/api/v1/allOrders?pairSymbol=BTCTRY", None)
        .await;
    assert_shape(&all["data"], &payload("mss1451/all_orders.json"), false);
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    assert_eq!(all["data"][2]["status"], "Closed");

    let (_, one) = api
        .private(Method::GET, &format!("/api/v1/order/{id}"), None)
        .await;
    assert_shape(&one, &payload("trcrypto/single-order.json"), true);

    let (_, trades) = api
        .private(Method::GET, "/api/v1/users/transactions/trade", None)
        .await;
    assert_shape(&trades, &payload("trcrypto/user-trades.json"), true);
    assert!(trades["data"][0]["id"].as_u64().unwrap() > 1 << 53);
    assert_eq!(trades["data"][0]["orderClientId"], "fill-1");

    let (status, canceled) = api
        .private(Method::DELETE, &format!("/api/v1/order?id={id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_shape(&canceled, &payload("trcrypto/cancel-order.json"), true);
    assert_eq!(canceled["code"], "");
}

#[tokio::test]
async fn a_marketable_order_fills_with_exact_balances_and_fees() {
    let sim = start("").await;
    sim.advance_to(T0).unwrap();
    let api = Api::new(&sim);
    // Buy 0.01 at the ask 3500010 as taker: 35000.10 TRY + 15 bps = 52.50015 TRY.
    let (status, body) = api.limit("buy", "3500010", "0.01", "take-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.balance("TRY").await, (d("64947.39985"), d("0")));
    assert_eq!(api.balance("BTC").await, (d("1.01"), d("0")));
    // Sell it back into the bid 3500000: 35000 - 52.5.
    let (status, _) = api.limit("sell", "3490000", "0.01", "take-2").await;
    assert_eq!(status, 200);
    assert_eq!(api.balance("TRY").await, (d("99894.89985"), d("0")));
    assert_eq!(api.balance("BTC").await, (d("1"), d("0")));
    let trades = sim.trades(KEY);
    assert_eq!(trades.len(), 2);
    assert_eq!(
        (trades[1].price, trades[1].fee, trades[1].maker),
        (d("3500000"), d("52.5"), false)
    );
    let (_, ut) = api
        .private(
            Method::GET,
            "/api/v1/users/transactions/trade?type=sell",
            None,
        )
        .await;
    assert_eq!(ut["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&ut["data"][0]["amount"], &ut["data"][0]["fee"]),
        (&json!("-0.01"), &json!("-52.5"))
    );
    assert_eq!(ut["data"][0]["preciseAmount"], json!(-0.01));
    assert_eq!(
        sim.balances(KEY)
            .unwrap()
            .iter()
            .find(|b| b.asset == "TRY")
            .unwrap()
            .free,
        d("99894.89985")
    );

    // Market orders: a buy spends a quote amount at the ask, a sell sells base at the bid.
    let (status, body) = api
        .order(json!({"quantity": "1000", "orderMethod": "market",
        "orderType": "buy", "pairSymbol": "BTCTRY", "newOrderClientId": "mkt-1"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let o = &sim.orders_by_client_id(KEY, "mkt-1")[0];
    assert_eq!(
        (o.qty, o.filled, o.status),
        (d("0.00028571"), d("0.00028571"), SimOrderStatus::Closed)
    );
    let (status, _) = api
        .order(json!({"quantity": 0.001, "orderMethod": "MARKET",
        "orderType": "sell", "pairSymbol": "BTC_TRY"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(sim.trades(KEY).last().unwrap().price, d("3500000"));
}

#[tokio::test]
async fn a_resting_order_fills_partially_as_the_market_moves() {
    let sim = start("").await;
    sim.advance_to(T0 + 200).unwrap();
    let api = Api::new(&sim);
    let (status, body) = api.limit("buy", "3490000", "0.004", "ladder").await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["id"].as_u64().unwrap();
    // 13960 + the 15 bps fee reserve.
    assert_eq!(api.balance("TRY").await, (d("86019.06"), d("13980.94")));
    let left = |b: &Value| (b["data"]["status"].clone(), b["data"]["leftAmount"].clone());
    let path = format!("/api/v1/order/{id}");
    assert_eq!(
        left(&api.private(Method::GET, &path, None).await.1),
        (json!("Untouched"), json!("0.004"))
    );

    sim.advance_to(T0 + 1000).unwrap(); // ask 3490000 x 0.001
    assert_eq!(
        left(&api.private(Method::GET, &path, None).await.1),
        (json!("Partial"), json!("0.003"))
    );
    let (_, open) = api.private(Method::GET, "/api/v1/openOrders", None).await;
    assert_eq!(open["data"]["bids"][0]["status"], "Partial");
    sim.advance_to(T0 + 2000).unwrap(); // ask 3489000 x 0.002: fills at our limit
    assert_eq!(
        left(&api.private(Method::GET, &path, None).await.1),
        (json!("Partial"), json!("0.001"))
    );
    sim.advance_to(T0 + 3000).unwrap(); // size unknown: fills the rest
    assert_eq!(
        left(&api.private(Method::GET, &path, None).await.1),
        (json!("Closed"), json!("0"))
    );

    // 3 maker fills at 3490000 (10 bps): 13960 + 13.96.
    assert_eq!(api.balance("TRY").await, (d("86026.04"), d("0")));
    assert_eq!(api.balance("BTC").await, (d("1.004"), d("0")));
    let (_, trades) = api
        .private(
            Method::GET,
            &format!("/api/v1/users/transactions/trade?orderId={id}"),
            None,
        )
        .await;
    let fills: Vec<(&str, &str, &str)> = trades["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["amount"].as_str().unwrap(),
                t["fee"].as_str().unwrap(),
                t["price"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fills,
        [
            ("0.001", "-3.49", "3490000"),
            ("0.002", "-6.98", "3490000"),
            ("0.001", "-3.49", "3490000")
        ]
    );
    assert!(
        trades["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["orderClientId"] == "ladder" && t["orderId"] == id)
    );
    let (_, open) = api
        .private(Method::GET, "/api/v1/openOrders?pairSymbol=BTCTRY", None)
        .await;
    assert_eq!(open["data"], json!({"asks": [], "bids": []}));
}

#[tokio::test]
async fn cancel_unlocks_the_funds_and_is_refused_twice() {
    let sim = start("").await;
    sim.advance_to(T0).unwrap();
    let api = Api::new(&sim);
    let (_, body) = api.limit("buy", "3400000", "0.01", "to-cancel").await;
    let id = body["data"]["id"].as_u64().unwrap();
    assert_eq!(api.balance("TRY").await, (d("65949"), d("34051")));
    let (status, _) = api
        .private(Method::DELETE, &format!("/api/v1/order?id={id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.balance("TRY").await, (d("100000"), d("0")));
    let (_, one) = api
        .private(Method::GET, &format!("/api/v1/order/{id}"), None)
        .await;
    assert_eq!(one["data"]["status"], "Canceled");
    let (status, again) = api
        .private(Method::DELETE, &format!("/api/v1/order?id={id}"), None)
        .await;
    assert_eq!(
        (status.as_u16(), again["message"].as_str()),
        (400, Some("ORDER_COULD_NOT_BE_CANCELED"))
    );
    let (_, unknown) = api
        .private(Method::DELETE, "/api/v1/order?id=42", None)
        .await;
    assert_eq!(unknown["message"], "NO_ORDER_MATCHES_YOUR_REQUEST");
    assert_eq!(sim.orders(KEY)[0].status, SimOrderStatus::Canceled);
}

#[tokio::test]
async fn rejections_use_btcturk_messages_and_codes() {
    let sim = start("").await;
    sim.advance_to(T0).unwrap();
    let api = Api::new(&sim);
    let reject = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["success"], false);
        (
            body["message"].as_str().unwrap_or("").to_string(),
            body["code"].as_i64().unwrap_or(0),
        )
    };
    let r = reject(api.limit("buy", "3400000", "0.00001", "small").await);
    assert_eq!(r, ("FAILED_MIN_TOTAL_AMOUNT".into(), 1123));
    let r = reject(api.limit("buy", "3400005", "0.01", "tick").await);
    assert_eq!(r, ("FAILED_INVALID_PRICE_SCALE".into(), 1126));
    let r = reject(api.limit("buy", "3400000", "0.000000001", "scale").await);
    assert_eq!(r, ("FAILED_INVALID_QUANTITY_SCALE".into(), 1127));
    let poor = Api::with(&sim, POOR, POOR_SECRET);
    let r = reject(poor.limit("buy", "3400000", "0.01", "poor").await);
    assert_eq!(r, ("BALANCE_NOT_ENOUGH".into(), 1122));
    assert_eq!(api.limit("buy", "3400000", "0.02", "big").await.0, 200);
    let r = reject(api.limit("buy", "3400000", "0.01", "bigger").await);
    assert_eq!(r, ("FAILED_ORDER_WITH_OPEN_ORDERS".into(), 1122));
    let r = reject(
        api.order(
            json!({"quantity": "1", "price": "1", "orderMethod": "limit",
        "orderType": "buy", "pairSymbol": "NOPETRY"}),
        )
        .await,
    );
    assert_eq!(r, ("Pair NOPETRY does not exists.".into(), 1037));
    let r = reject(
        api.order(json!({"quantity": "1", "price": "1", "stopPrice": "1",
        "orderMethod": "stoplimit", "orderType": "buy", "pairSymbol": "BTCTRY"}))
            .await,
    );
    assert_eq!(r.1, 1134);
    let r = reject(
        api.order(
            json!({"quantity": "1", "price": "1", "orderMethod": "limit",
        "orderType": "hold", "pairSymbol": "BTCTRY"}),
        )
        .await,
    );
    assert_eq!(r.1, 1193);
    let r = reject(
        api.order(
            json!({"price": "1", "orderMethod": "limit", "orderType": "buy",
        "pairSymbol": "BTCTRY"}),
        )
        .await,
    );
    assert_eq!(r, ("INVALID_REQUEST_ERROR".into(), 1037));
    let r = reject(api.private(Method::GET, "/api/v1/order/12345", None).await);
    assert_eq!(r, ("Order not found".into(), 1152));
    // Only the accepted order was placed.
    assert_eq!(sim.orders(KEY).len(), 1);
    assert_eq!(sim.placed_count(KEY, "big"), 1);
}

#[tokio::test]
async fn bad_credentials_get_btcturk_401_messages() {
    let sim = start("").await;
    let api = Api::new(&sim);
    let url = format!("{}/api/v1/users/balances", sim.base_url());
    let message = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 401);
        resp.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let resp = api.http.get(&url).send().await.unwrap();
    assert_eq!(message(resp).await, "Unauthorized - Headers are missing");
    let stale = api.signed(Method::GET, "/api/v1/users/balances", now_ms() - 6_000);
    assert_eq!(
        message(stale.send().await.unwrap()).await,
        "Unauthorized - Invalid Nonce"
    );
    let ahead = api.signed(Method::GET, "/api/v1/users/balances", now_ms() + 6_000);
    assert_eq!(
        message(ahead.send().await.unwrap()).await,
        "Unauthorized - Invalid Nonce"
    );
    let stamp = now_ms();
    let forged = api
        .http
        .get(&url)
        .header("X-PCK", KEY)
        .header("X-Stamp", stamp.to_string())
        .header("X-Signature", sign(KEY, POOR_SECRET, stamp).unwrap());
    assert_eq!(
        message(forged.send().await.unwrap()).await,
        "Unauthorized - Invalid Signature"
    );
    let stranger = api
        .http
        .get(&url)
        .header("X-PCK", "nobody")
        .header("X-Stamp", stamp.to_string())
        .header("X-Signature", sign("nobody", SECRET, stamp).unwrap());
    assert_eq!(
        message(stranger.send().await.unwrap()).await,
        "Unauthorized - Invalid Public/Private key"
    );
    // Within the ±5 s window is fine.
    let ok = api.signed(Method::GET, "/api/v1/users/balances", now_ms() - 4_000);
    assert_eq!(ok.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn fault_latency_is_added() {
    let sim = start("latency=150ms").await;
    let api = Api::new(&sim);
    let t = Instant::now();
    assert_eq!(api.get("/api/v2/server/time").await.0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(sim.fault_stats().delayed, 1);
}

#[tokio::test]
async fn fault_5xx_comes_as_json_html_or_empty() {
    let sim = start("5xx=1,seed=3").await;
    let api = Api::new(&sim);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let resp = api
            .http
            .get(format!("{}/api/v2/ticker", api.base))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_server_error());
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        seen.insert((
            resp.status().as_u16(),
            ct.unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or("")
                .to_string(),
        ));
    }
    assert_eq!(sim.fault_stats().errors_5xx, 12);
    assert!(seen.contains(&(502, "text/html".to_string())), "{seen:?}");
    assert!(
        seen.contains(&(503, "application/json".to_string())),
        "{seen:?}"
    );
    assert!(seen.contains(&(500, String::new())), "{seen:?}");
}

#[tokio::test]
async fn fault_429_bursts_carry_retry_after() {
    let sim = start("429=1/burst:2/retry-after:1").await;
    let api = Api::new(&sim);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = api
            .http
            .get(format!("{}/api/v2/server/time", api.base))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert_eq!(resp.headers()["retry-after"], "1");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                (&body["message"], &body["code"]),
                (&json!("TOO_MANY_REQUESTS"), &json!(429))
            );
        }
    }
    assert_eq!(statuses, [429, 429, 200]);
    assert_eq!(sim.fault_stats().errors_429, 2);
}

#[tokio::test]
async fn fault_timeout_holds_the_request_and_places_nothing() {
    let sim = start("timeout=1/hold:2s").await;
    sim.advance_to(T0).unwrap();
    let mut api = Api::new(&sim);
    api.http = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let t = Instant::now();
    let err = api
        .signed(Method::POST, "/api/v1/order", now_ms())
        .json(
            &json!({"quantity": "0.01", "price": "3400000", "orderMethod": "limit",
            "orderType": "buy", "pairSymbol": "BTCTRY", "newOrderClientId": "held"}),
        )
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(sim.fault_stats().timeouts, 1);
    assert_eq!(sim.placed_count(KEY, "held"), 0);
}

#[tokio::test]
async fn fault_lost_order_response_places_the_order_once() {
    let sim = start("lost_order_response=1,seed=5").await;
    sim.advance_to(T0).unwrap();
    let api = Api::new(&sim);
    let mut outcomes = std::collections::BTreeSet::new();
    for i in 0..6 {
        let cid = format!("lost-{i}");
        let resp = api
            .signed(Method::POST, "/api/v1/order", now_ms())
            .json(
                &json!({"quantity": "0.001", "price": "3400000", "orderMethod": "limit",
                "orderType": "buy", "pairSymbol": "BTCTRY", "newOrderClientId": cid}),
            )
            .send()
            .await;
        let outcome = match resp {
            Err(_) => "transport error".to_string(),
            Ok(r) if r.status().is_server_error() => {
                assert!(r.text().await.unwrap().is_empty());
                "empty 5xx".to_string()
            }
            Ok(r) => match r.text().await {
                Err(_) => "transport error".to_string(),
                Ok(body) => panic!("a lost response arrived: {body}"),
            },
        };
        outcomes.insert(outcome);
        assert_eq!(sim.placed_count(KEY, &cid), 1);
        // The client can find it by its client id.
        let (_, open) = api
            .private(Method::GET, "/api/v1/openOrders?pairSymbol=BTCTRY", None)
            .await;
        assert!(
            open["data"]["bids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["orderClientId"] == cid.as_str())
        );
    }
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(sim.fault_stats().lost_order_responses, 6);
}

#[tokio::test]
async fn fault_cancel_delay_makes_cancels_asynchronous() {
    let sim = start("cancel_delay=300ms,comma_decimals=on").await;
    sim.advance_to(T0).unwrap();
    let api = Api::new(&sim);
    let (_, body) = api.limit("buy", "3400000", "0.0105", "slow").await;
    let id = body["data"]["id"].as_u64().unwrap();
    let (_, balances) = api
        .private(Method::GET, "/api/v1/users/balances", None)
        .await;
    let try_ = balances["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "TRY")
        .unwrap()
        .clone();
    assert_eq!(
        (&try_["free"], &try_["locked"]),
        (&json!("64246,45"), &json!("35753,55"))
    );
    assert_eq!(
        api.private(Method::DELETE, &format!("/api/v1/order?id={id}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        sim.orders(KEY)[0].status,
        SimOrderStatus::Untouched,
        "accepted, not yet done"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sim.orders(KEY)[0].status, SimOrderStatus::Canceled);
}

#[tokio::test]
async fn a_paced_market_moves_by_itself() {
    let mut config = SimConfig::new(
        fixture("market"),
        "127.0.0.1:0".parse().unwrap(),
        accounts(),
    );
    config.speed = SimSpeed::Factor(100.0);
    let sim = serve(config).await.unwrap();
    // 9 s of market at 100x: under 0.1 s.
    let t = Instant::now();
    while sim.next_event_ms().is_some() && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.events_applied(), 59);
    assert_eq!(sim.market_time_ms(), Some(T0 + 8_900));
    sim.shutdown().await;
    assert_eq!(SimSpeed::parse("10x"), Ok(SimSpeed::Factor(10.0)));
    assert!(SimSpeed::parse("0").is_err());
}
