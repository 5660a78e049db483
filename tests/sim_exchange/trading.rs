//! Matching, balances, fees, cancels, rejections and pacing.

use super::support::*;
use btcbot::exchange::sim::{SimConfig, SimOrderStatus, SimSpeed, serve};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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
