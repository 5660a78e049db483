//! The websocket feed, the command line, and a loopback throughput measurement.

use super::support::*;
use btcbot::exchange::btcturk::auth::sign;
use btcbot::exchange::sim::{FaultSpec, SimAccount, SimConfig, SimHandle, serve};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn start_with_feed(faults: &str) -> SimHandle {
    let mut config = SimConfig::new(
        fixture("market"),
        "127.0.0.1:0".parse().unwrap(),
        accounts(),
    );
    config.ws_listen = Some("127.0.0.1:0".parse().unwrap());
    config.faults = FaultSpec::parse(faults).unwrap();
    serve(config).await.unwrap()
}

async fn connect(sim: &SimHandle) -> Ws {
    let url = format!("ws://{}/", sim.ws_addr().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

/// The next JSON frame within `wait`, pings skipped.
async fn next_frame(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

async fn join(ws: &mut Ws, channel: &str, event: &str) -> Value {
    let msg = json!([151, {"type": 151, "channel": channel, "event": event, "join": true}]);
    ws.send(Message::text(msg.to_string())).await.unwrap();
    next_frame(ws, Duration::from_secs(2)).await.unwrap()
}

fn same_keys(ours: &Value, reference: &Value) {
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let (mut a, mut b) = (keys(ours), keys(reference));
    a.sort();
    b.sort();
    assert_eq!(a, b, "ours: {ours}");
}

type Book = BTreeMap<Decimal, Decimal>;

fn apply_levels(book: &mut Book, rows: &Value) {
    for row in rows.as_array().unwrap() {
        let p = d(row["P"].as_str().unwrap());
        let a = d(row["A"].as_str().unwrap());
        match row.get("CP").and_then(Value::as_u64) {
            Some(3) => {
                assert!(
                    book.remove(&p).is_some(),
                    "delete of an unknown level {row}"
                );
            }
            _ => {
                book.insert(p, a);
            }
        }
    }
}

#[tokio::test]
async fn the_websocket_feed_mirrors_the_rest_market() {
    let sim = start_with_feed("").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut ws = connect(&sim).await;
    let hello = next_frame(&mut ws, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        hello,
        json!([991, {"type": 991, "current": "6.0.0", "min": "2.3.0"}])
    );

    let ack = join(&mut ws, "obdiff", "BTCTRY").await;
    assert_eq!(
        ack,
        json!([100, {"type": 100, "ok": true, "message": "join|obdiff:BTCTRY"}])
    );
    let snapshot = next_frame(&mut ws, Duration::from_secs(2)).await.unwrap();
    assert_eq!(snapshot[0], 431);
    same_keys(&snapshot[1], &payload("trcrypto/socket-orderbook.json")[1]);
    let (mut asks, mut bids) = (Book::new(), Book::new());
    apply_levels(&mut asks, &snapshot[1]["AO"]);
    apply_levels(&mut bids, &snapshot[1]["BO"]);
    let mut cs = snapshot[1]["CS"].as_u64().unwrap();

    assert_eq!(join(&mut ws, "trade", "BTCTRY").await[1]["ok"], true);
    let list = next_frame(&mut ws, Duration::from_secs(2)).await.unwrap();
    same_keys(&list[1], &payload("trcrypto/socket-trades.json")[1]);
    same_keys(
        &list[1]["items"][0],
        &payload("trcrypto/socket-trades.json")[1]["items"][0],
    );
    assert_eq!(list[1]["items"][0]["S"], 1, "a buy");
    assert_eq!(join(&mut ws, "ticker", "BTCTRY").await[1]["ok"], true);
    let ticker = next_frame(&mut ws, Duration::from_secs(2)).await.unwrap();
    same_keys(&ticker[1], &payload("trcrypto/socket-ticker.json")[1]);
    assert_eq!(
        join(&mut ws, "obdiff", "BTCTRY").await[1]["ok"],
        false,
        "a duplicate join"
    );
    // Unknown and lower-case pairs are acked and stay silent, as on BTCTurk.
    assert_eq!(join(&mut ws, "obdiff", "btctry").await[1]["ok"], true);

    sim.advance_to(T0 + 10_000).unwrap();
    let (mut diffs, mut trades) = (0, 0);
    while let Some(f) = next_frame(&mut ws, Duration::from_millis(400)).await {
        match f[0].as_u64() {
            Some(432) => {
                cs += 1;
                assert_eq!(f[1]["CS"].as_u64(), Some(cs), "CS steps by exactly 1");
                apply_levels(&mut asks, &f[1]["AO"]);
                apply_levels(&mut bids, &f[1]["BO"]);
                diffs += 1;
            }
            Some(422) => trades += 1,
            Some(402) => {}
            other => panic!("unexpected frame {other:?}: {f}"),
        }
    }
    assert_eq!((diffs, trades), (44, 11));
    let api = Api::new(&sim);
    let (_, rest) = api.get("/api/v2/orderbook?pairSymbol=BTCTRY").await;
    let level = |b: &Book| {
        b.iter()
            .map(|(p, a)| json!([p.normalize().to_string(), a.normalize().to_string()]))
            .collect::<Vec<_>>()
    };
    assert_eq!(json!(level(&asks)), rest["data"]["asks"]);
    assert_eq!(json!(level(&bids)), rest["data"]["bids"]);
}

#[tokio::test]
async fn the_feed_can_skip_a_cs_and_verifies_logins() {
    let sim = start_with_feed("ws_cs_gap=1").await;
    sim.advance_to(T0).unwrap();
    let mut ws = connect(&sim).await;
    next_frame(&mut ws, Duration::from_secs(2)).await.unwrap();
    join(&mut ws, "obdiff", "BTCTRY").await;
    let base = next_frame(&mut ws, Duration::from_secs(2)).await.unwrap()[1]["CS"]
        .as_u64()
        .unwrap();
    sim.advance_to(T0 + 1000).unwrap();
    let diff = next_frame(&mut ws, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        (diff[0].as_u64(), diff[1]["CS"].as_u64()),
        (Some(432), Some(base + 2))
    );
    assert_eq!(sim.fault_stats().ws_cs_gaps, 1);

    for (signature, ok) in [
        (sign(KEY, SECRET, 3000).unwrap(), true),
        ("bad".to_string(), false),
    ] {
        let login = json!([114, {"type": 114, "publicKey": KEY, "timestamp": now_ms(),
            "nonce": 3000, "signature": signature}]);
        ws.send(Message::text(login.to_string())).await.unwrap();
        let answer = next_frame(&mut ws, Duration::from_secs(2)).await.unwrap();
        assert_eq!(
            (answer[0].as_u64(), &answer[1]["ok"]),
            (Some(114), &json!(ok))
        );
    }
}

#[tokio::test]
async fn the_command_line_serves_and_reports_bad_specs_in_one_line() {
    let bin = env!("CARGO_BIN_EXE_btcbot");
    let mut child = std::process::Command::new(bin)
        .args([
            "sim-exchange",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "manual",
        ])
        .arg("--dataset")
        .arg(fixture("market"))
        .arg("--accounts")
        .arg(fixture("accounts.yaml"))
        .args(["--faults", "latency=1ms,seed=3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let resp = reqwest::get(format!("{url}/api/v2/server/time")).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(resp.unwrap().status(), 200);

    let out = std::process::Command::new(bin)
        .args(["sim-exchange", "--accounts", "x.yaml", "--dataset", "x"])
        .args(["--faults", "5xx=2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.contains("faults: \"5xx=2\": \"2\" is not a probability in [0, 1]"),
        "{err}"
    );
}

/// `cargo test --release --test sim_exchange -- --ignored --nocapture loopback_throughput`
/// (`SIM_BENCH_N` requests per kind, default 2000).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, not a check"]
async fn loopback_throughput() {
    let n: usize = std::env::var("SIM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rich = SimAccount {
        public_key: KEY.into(),
        secret_b64: SECRET.into(),
        balances: vec![("TRY".into(), d("1000000000000"))],
    };
    let config = SimConfig::new(
        fixture("market"),
        "127.0.0.1:0".parse().unwrap(),
        vec![rich],
    );
    let sim = serve(config).await.unwrap();
    sim.advance_to(T0 + 200).unwrap();
    let api = std::sync::Arc::new(Api::new(&sim));
    for concurrency in [1usize, 8] {
        let per = n / concurrency;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let api = std::sync::Arc::clone(&api);
            tasks.push(tokio::spawn(async move {
                for _ in 0..per {
                    assert_eq!(api.get("/api/v2/orderbook?pairSymbol=BTCTRY").await.0, 200);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let gets = (per * concurrency) as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            let api = std::sync::Arc::clone(&api);
            tasks.push(tokio::spawn(async move {
                for i in 0..per {
                    let body = json!({"quantity": "0.0001", "price": "3000000",
                        "orderMethod": "limit", "orderType": "buy", "pairSymbol": "BTCTRY",
                        "newOrderClientId": format!("bench-{concurrency}-{c}-{i}")});
                    let (status, _) = api.private(Method::POST, "/api/v1/order", Some(body)).await;
                    assert_eq!(status, 200);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let posts = (per * concurrency) as f64 / t.elapsed().as_secs_f64();
        println!(
            "concurrency {concurrency}: {gets:.0} orderbook GET/s, {posts:.0} order POST/s ({} each)",
            per * concurrency
        );
    }
}
