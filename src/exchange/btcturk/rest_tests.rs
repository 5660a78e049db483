//! The transport policy over real HTTP against a scripted loopback server: each connection gets
//! the next canned response, byte for byte, so cases the simulated exchange does not produce
//! (skewed server time, a body cut mid-stream, a 401 for the stamp) are covered too.

use super::endpoint::Endpoint;
use super::rest::{Request, RestClient, RestConfig, local_ms};
use super::wire;
use crate::exchange::ExchangeError;
use crate::exchange::btcturk::auth::Credentials;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Script {
    responses: Mutex<VecDeque<String>>,
    /// Request heads received, in order.
    seen: Mutex<Vec<String>>,
}

fn response(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

const BOOK: &str = r#"{"success":true,"message":null,"code":"SUCCESS","data":{"timestamp":1,"bids":[["10","1"]],"asks":[["11","2"]]}}"#;

async fn serve(responses: Vec<String>) -> (String, Arc<Script>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(Script {
        responses: Mutex::new(responses.into()),
        seen: Mutex::new(Vec::new()),
    });
    let s = Arc::clone(&script);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let mut got = 0;
            while !String::from_utf8_lossy(&buf[..got]).contains("\r\n\r\n") {
                match sock.read(&mut buf[got..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            s.seen
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..got]).into_owned());
            let next = s.responses.lock().unwrap().pop_front();
            let reply = next.unwrap_or_else(|| response("500 Internal Server Error", "", ""));
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (format!("http://{addr}"), script)
}

fn rest(base: &str) -> RestClient {
    let mut c = RestConfig::with_base_url(base);
    c.backoff_base = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(20);
    c.retry_after_cap = Duration::from_secs(2);
    c.timeout = Duration::from_secs(2);
    let creds = Credentials {
        public_key: "test-public-key".into(),
        secret_b64: "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz".into(),
    };
    RestClient::new(c, Some(creds)).unwrap()
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[tokio::test]
async fn gets_retry_5xx_and_cut_bodies_but_posts_do_not() {
    let cut =
        "HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n{\"succ".to_string();
    let (base, script) = serve(vec![
        response("503 Service Unavailable", "", "<html>maintenance</html>"),
        cut,
        response("502 Bad Gateway", "", ""),
        response("200 OK", "", BOOK),
    ])
    .await;
    let rest = rest(&base);
    let book = rest
        .call(
            &Request::new(Endpoint::OrderBook).query("pairSymbol", "BTCTRY"),
            wire::parse_orderbook,
        )
        .await
        .unwrap();
    assert_eq!(book.asks.len(), 1);
    let s = rest.stats().get(Endpoint::OrderBook);
    assert_eq!(
        (s.requests, s.retries, s.server_errors, s.transport_errors),
        (4, 3, 2, 1)
    );
    assert!(script.seen.lock().unwrap()[0].starts_with("GET /api/v2/orderbook?pairSymbol=BTCTRY "));

    // The script now answers 500: a POST gets one attempt and says it may have been processed.
    let req = Request::new(Endpoint::SubmitOrder).json(&serde_json::json!({"x": 1}));
    let rest2 = self::rest(&base);
    let e = rest2.call(&req, wire::parse_submit).await.unwrap_err();
    assert!(e.maybe_processed);
    assert!(
        matches!(e.error, ExchangeError::Transient { .. }),
        "{:?}",
        e.error
    );
    assert_eq!(rest2.stats().get(Endpoint::SubmitOrder).requests, 1);
}

#[tokio::test]
async fn an_html_page_with_200_is_final_and_names_the_endpoint() {
    let (base, _) = serve(vec![response(
        "200 OK",
        "",
        "<!DOCTYPE html><title>Just a moment</title>",
    )])
    .await;
    let rest = rest(&base);
    let e = rest
        .call(&Request::new(Endpoint::Ticker), wire::parse_ticker)
        .await
        .unwrap_err();
    let text = e.error.to_string();
    assert!(
        text.starts_with("GET /api/v2/ticker: response is not JSON (an HTML or XML page)"),
        "{text}"
    );
    assert_eq!(rest.stats().get(Endpoint::Ticker).requests, 1);
}

#[tokio::test]
async fn the_clock_offset_signs_private_requests_and_a_bad_nonce_resyncs() {
    let skewed = |ms: i64| {
        response(
            "200 OK",
            "",
            &format!(r#"{{"serverTime":{ms},"serverTime2":"x"}}"#),
        )
    };
    let balances =
        r#"{"success":true,"code":0,"data":[{"asset":"TRY","free":"1,5","locked":"0"}]}"#;
    let (base, script) = serve(vec![
        skewed(local_ms() + 5_000),
        response(
            "401 Unauthorized",
            "",
            r#"{"success":false,"message":"Unauthorized - Invalid Nonce","code":401}"#,
        ),
        skewed(local_ms() + 5_000),
        response("200 OK", "", balances),
    ])
    .await;
    let rest = rest(&base);
    let rows = rest
        .call(&Request::new(Endpoint::Balances), wire::parse_balances)
        .await
        .unwrap();
    assert_eq!(rows[0].free.to_string(), "1.5");
    let offset = rest.clock_offset_ms();
    assert!((4_900..=5_100).contains(&offset), "{offset}");
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert!(seen[0].starts_with("GET /api/v2/server/time"));
    assert!(
        seen[2].starts_with("GET /api/v2/server/time"),
        "resynced after the 401"
    );
    let stamp: i64 = header(&seen[3], "x-stamp").unwrap().parse().unwrap();
    assert!(
        (stamp - local_ms() - 5_000).abs() < 1_000,
        "stamp carries the offset"
    );
    assert_eq!(
        header(&seen[3], "x-pck").as_deref(),
        Some("test-public-key")
    );
    let sig = header(&seen[3], "x-signature").unwrap();
    assert!(crate::exchange::btcturk::auth::verify(
        "test-public-key",
        "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz",
        stamp,
        &sig
    ));
}

#[tokio::test]
async fn a_429_without_retry_after_waits_the_default_and_is_capped() {
    let (base, _) = serve(vec![
        response("429 Too Many Requests", "Retry-After: 0\r\n", ""),
        response("200 OK", "", BOOK),
        response(
            "429 Too Many Requests",
            "",
            r#"{"message":"TOO_MANY_REQUESTS","success":false,"code":429}"#,
        ),
    ])
    .await;
    let rest = rest(&base);
    let req = Request::new(Endpoint::OrderBook);
    rest.call(&req, wire::parse_orderbook).await.unwrap();
    // No Retry-After: BTCTurk's 60 s, above the 2 s cap of this client: fail fast.
    let e = rest.call(&req, wire::parse_orderbook).await.unwrap_err();
    assert!(
        e.error.to_string().contains("TOO_MANY_REQUESTS"),
        "{:?}",
        e.error
    );
    assert!(
        e.error.to_string().contains("retry after 60 s"),
        "{:?}",
        e.error
    );
    assert!(!e.maybe_processed);
}
