//! Every fault kind, observable from a plain HTTP client.

use super::support::*;
use btcbot::exchange::sim::SimOrderStatus;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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
