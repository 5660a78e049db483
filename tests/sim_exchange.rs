//! `sim-exchange` over real HTTP on loopback: BTCTurk's shapes (compared with the reference
//! payloads in `fixtures/sim/payloads/`), matching and balances, rejections with BTCTurk's
//! codes, the HMAC check, and every fault kind.

#[path = "sim_exchange/faults.rs"]
mod faults;
#[path = "sim_exchange/feed.rs"]
mod feed;
#[path = "sim_exchange/support.rs"]
mod support;
#[path = "sim_exchange/trading.rs"]
mod trading;

use btcbot::exchange::btcturk::auth::sign;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

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
