//! The websocket market feed over real websockets on loopback: against the simulated exchange
//! (its books equal the REST books after every diff, a skipped `CS` resubscribes, the server
//! going away and coming back) and against a scripted server (garbage frames, pings, malformed
//! and early diffs, the silence watchdog).

use btcbot::domain::Symbol;
use btcbot::exchange::btcturk::feed::{FeedConfig, MarketFeed, wall_ms};
use btcbot::exchange::sim::{FaultSpec, SimAccount, SimConfig, SimHandle, serve};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const T0: i64 = 1_767_225_600_000;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn sim_on(ws: SocketAddr, faults: &str) -> Result<SimHandle, String> {
    let account = SimAccount {
        public_key: "feed-test-key".into(),
        secret_b64: "ZmVlZC10ZXN0LXNlY3JldA==".into(),
        balances: vec![("TRY".into(), d("1000"))],
    };
    let dataset = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sim/market");
    let mut config = SimConfig::new(dataset, "127.0.0.1:0".parse().unwrap(), vec![account]);
    config.ws_listen = Some(ws);
    config.faults = FaultSpec::parse(faults)?;
    serve(config).await
}

async fn sim(faults: &str) -> SimHandle {
    sim_on("127.0.0.1:0".parse().unwrap(), faults)
        .await
        .unwrap()
}

fn feed_config(url: String, symbols: &[&str]) -> FeedConfig {
    let mut c = FeedConfig::new(url, symbols.iter().map(|s| sym(s)).collect());
    c.reconnect_min = Duration::from_millis(100);
    c.reconnect_max = Duration::from_millis(400);
    c.max_age = Duration::from_secs(3);
    c
}

fn start_feed(sim: &SimHandle, symbols: &[&str]) -> MarketFeed {
    let url = format!("ws://{}/", sim.ws_addr().unwrap());
    MarketFeed::start(feed_config(url, symbols)).unwrap()
}

/// Polls `check` every 5 ms until it holds; panics with `what` after `limit`.
async fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(5)).await;
    }
}

type Top = (Option<(Decimal, Decimal)>, Option<(Decimal, Decimal)>);

/// Best bid and ask (price, qty) of the sim's REST orderbook. The test market has a quote with
/// a zero ask size, which the sim serves as a `[price, "0"]` level; a zero amount is no level
/// (the feed removes it), so it reads as an empty side here.
async fn rest_top(sim: &SimHandle, symbol: &str) -> Top {
    let url = format!("{}/api/v2/orderbook?pairSymbol={symbol}", sim.base_url());
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let level = |side: &str| {
        body["data"][side]
            .get(0)
            .map(|l| {
                let text = |i: usize| d(l[i].as_str().unwrap());
                (text(0), text(1))
            })
            .filter(|(_, qty)| !qty.is_zero())
    };
    (level("bids"), level("asks"))
}

fn feed_top(feed: &MarketFeed, symbol: &str) -> Option<Top> {
    let v = feed.book(&sym(symbol))?;
    if !v.synced {
        return None;
    }
    let pair = |l: Option<btcbot::exchange::btcturk::feed::Level>| l.map(|l| (l.price, l.qty));
    Some((pair(v.best_bid), pair(v.best_ask)))
}

/// Waits until the feed's top of book for `symbol` equals the sim's REST top.
async fn wait_equal(feed: &MarketFeed, sim: &SimHandle, symbol: &str) {
    let rest = rest_top(sim, symbol).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let ours = feed_top(feed, symbol);
        if ours.as_ref() == Some(&rest) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{symbol}: feed {ours:?} != REST {rest:?}; {:?}",
            feed.counters()
        );
        sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_feed_book_equals_the_rest_book_after_every_diff() {
    let sim = sim("").await;
    sim.advance_to(T0 + 200).unwrap();
    let feed = start_feed(&sim, &["BTCTRY", "USDTTRY"]);
    for s in ["BTCTRY", "USDTTRY"] {
        wait_equal(&feed, &sim, s).await;
    }
    let mut steps = 0;
    while sim.advance_events(1).unwrap() > 0 {
        steps += 1;
        for s in ["BTCTRY", "USDTTRY"] {
            wait_equal(&feed, &sim, s).await;
        }
    }
    assert!(steps > 40, "{steps} events");
    let c = feed.counters();
    assert!(c.diffs >= 40, "{c:?}");
    assert_eq!(
        (c.cs_gaps, c.resubscribes, c.bad_frames),
        (0, 0, 0),
        "{c:?}"
    );
    assert_eq!((c.snapshots, c.connects, c.connected), (2, 1, 1), "{c:?}");

    let symbols = [sym("BTCTRY"), sym("USDTTRY")];
    let snaps = feed.snapshot(&symbols, wall_ms());
    assert_eq!(snaps.len(), 2);
    let rest = rest_top(&sim, "BTCTRY").await;
    let m = &snaps[0];
    assert_eq!(m.symbol, symbols[0]);
    assert_eq!(
        (
            Some((m.bid.value(), m.bid_qty.value())),
            Some((m.ask.value(), m.ask_qty.value()))
        ),
        rest
    );
    assert!((wall_ms() - m.exchange_ts_ms).abs() < 3_000);
    // The last trade comes from the trade channel and equals the REST one.
    let url = format!("{}/api/v2/trades?pairSymbol=BTCTRY&last=1", sim.base_url());
    let trades: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let last = m.last_trade.as_ref().expect("a last trade");
    let rest_price = &trades["data"][0]["price"];
    let rest_price = rest_price
        .as_str()
        .map_or_else(|| rest_price.to_string(), str::to_string);
    assert_eq!(last.price.value(), d(&rest_price));
    let view = feed.book(&symbols[0]).unwrap();
    assert!(view.ticker.is_some() && view.cs.is_some() && !view.stale);
    // A far `now` makes every book too old: the caller falls back to REST.
    assert!(feed.snapshot(&symbols, wall_ms() + 60_000).is_empty());
    feed.shutdown().await;
}

#[tokio::test]
async fn a_skipped_cs_resubscribes_and_the_book_recovers() {
    let sim = sim("ws_cs_gap=1").await;
    sim.advance_to(T0 + 200).unwrap();
    let feed = start_feed(&sim, &["BTCTRY"]);
    wait_equal(&feed, &sim, "BTCTRY").await;
    assert_eq!(feed.counters().snapshots, 1);
    let mut at = T0 + 200;
    for round in 1..=3u64 {
        // Move until BTCTRY's top changes, so the sim sends a 432 (with a skipped CS).
        let before = rest_top(&sim, "BTCTRY").await;
        while rest_top(&sim, "BTCTRY").await == before {
            at += 100;
            sim.advance_to(at).unwrap();
        }
        wait_for(Duration::from_secs(3), "a resubscribe", || {
            let c = feed.counters();
            c.cs_gaps >= round && c.resubscribes >= round && c.snapshots > round
        })
        .await;
        wait_equal(&feed, &sim, "BTCTRY").await;
    }
    let c = feed.counters();
    assert_eq!((c.diffs, c.connects), (0, 1), "{c:?}");
    assert!(sim.fault_stats().ws_cs_gaps >= 3);
    feed.shutdown().await;
}

#[tokio::test]
async fn the_feed_goes_stale_without_a_server_and_recovers_when_it_is_back() {
    let first = sim("").await;
    let addr = first.ws_addr().unwrap();
    first.advance_to(T0 + 200).unwrap();
    let feed = start_feed(&first, &["BTCTRY"]);
    wait_equal(&feed, &first, "BTCTRY").await;
    let before = feed.counters();
    first.shutdown().await;

    let s = sym("BTCTRY");
    wait_for(Duration::from_secs(2), "a stale book", || {
        feed.book(&s).is_some_and(|v| v.stale && !v.synced)
    })
    .await;
    assert!(
        feed.snapshot(std::slice::from_ref(&s), wall_ms())
            .is_empty()
    );
    assert!(!feed.is_connected());
    let view = feed.book(&s).unwrap();
    assert!(view.best_bid.is_some(), "the last levels stay visible");

    // Nobody listens: attempts are paced (100, 200, 400, 400 ms ...).
    sleep(Duration::from_millis(1500)).await;
    let retries = feed.counters().connects - before.connects;
    assert!((2..=7).contains(&retries), "{retries} attempts in 1.5 s");

    // A new server on the same port, in another market state.
    let mut second = None;
    for _ in 0..40 {
        match sim_on(addr, "").await {
            Ok(s) => {
                second = Some(s);
                break;
            }
            Err(_) => sleep(Duration::from_millis(50)).await,
        }
    }
    let second = second.expect("the port can be bound again");
    second.advance_to(T0 + 5_000).unwrap();
    assert_ne!(
        rest_top(&second, "BTCTRY").await,
        (
            view.best_bid.map(|l| (l.price, l.qty)),
            view.best_ask.map(|l| (l.price, l.qty))
        )
    );
    wait_equal(&feed, &second, "BTCTRY").await;
    let c = feed.counters();
    assert_eq!((c.connected, c.snapshots), (2, 2), "{c:?}");
    assert!(feed.is_connected());
    assert_eq!(feed.snapshot(&[s], wall_ms()).len(), 1);
    feed.shutdown().await;
}

type ServerWs = WebSocketStream<TcpStream>;

async fn send(ws: &mut ServerWs, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next text frame from the feed as JSON (pongs are returned as `["pong", payload]`).
async fn recv(ws: &mut ServerWs) -> Value {
    loop {
        match timeout(Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(Message::Pong(p)))) => {
                return json!(["pong", String::from_utf8_lossy(&p)]);
            }
            Ok(Some(Ok(Message::Close(_)))) => return json!(["close"]),
            Ok(Some(Ok(_))) => {}
            other => panic!("no frame from the feed: {other:?}"),
        }
    }
}

fn sub(channel: &str, join: bool) -> Value {
    json!([151, {"type": 151, "channel": channel, "event": "BTCTRY", "join": join}])
}

fn book(kind: u16, cs: u64, asks: Value, bids: Value) -> Value {
    json!([kind, {"CS": cs, "PS": "BTCTRY", "AO": asks, "BO": bids, "channel": "obdiff",
        "event": "BTCTRY", "type": kind}])
}

/// Accepts a connection, says hello, and checks the three joins.
async fn accept(listener: &TcpListener) -> ServerWs {
    let (stream, _) = timeout(Duration::from_secs(3), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
    send(
        &mut ws,
        json!([991, {"type": 991, "current": "6.0.0", "min": "2.3.0"}]),
    )
    .await;
    for channel in ["obdiff", "ticker", "trade"] {
        assert_eq!(recv(&mut ws).await, sub(channel, true));
    }
    send(
        &mut ws,
        json!([100, {"type": 100, "ok": true, "message": "join|obdiff:BTCTRY"}]),
    )
    .await;
    ws
}

#[tokio::test]
async fn garbage_pings_bad_diffs_and_silence_against_a_scripted_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut config = feed_config(url, &["BTCTRY"]);
    config.silence_timeout = Duration::from_millis(900);
    config.snapshot_timeout = Duration::from_millis(500);
    let feed = MarketFeed::start(config).unwrap();
    let s = sym("BTCTRY");
    let top = |feed: &MarketFeed| feed_top(feed, "BTCTRY");

    let mut ws = accept(&listener).await;
    send(
        &mut ws,
        book(
            431,
            10,
            json!([{"A": "2", "P": "101"}]),
            json!([{"A": "1", "P": "100"}]),
        ),
    )
    .await;
    wait_for(Duration::from_secs(2), "the snapshot", || {
        top(&feed).is_some()
    })
    .await;
    assert_eq!(
        top(&feed),
        Some((Some((d("100"), d("1"))), Some((d("101"), d("2")))))
    );

    // Garbage is counted, an unknown model is ignored, a ping is answered.
    for text in ["hello", "[432", "{\"type\":432}", "[999,{\"type\":999}]"] {
        ws.send(Message::text(text)).await.unwrap();
    }
    ws.send(Message::binary(vec![0xff, 0xfe])).await.unwrap();
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await, json!(["pong", "are you there"]));
    // A malformed 432 for the pair invalidates its book and resubscribes it.
    let bad = json!([432, {"CS": 11, "PS": "BTCTRY", "AO": [{"CP": 0, "P": "x", "A": "1"}],
        "BO": [], "type": 432}]);
    send(&mut ws, bad).await;
    assert_eq!(recv(&mut ws).await, sub("obdiff", false));
    assert_eq!(recv(&mut ws).await, sub("obdiff", true));
    let c = feed.counters();
    assert_eq!(
        (c.bad_frames, c.ignored_frames, c.pings),
        (5, 1, 1),
        "{c:?}"
    );
    assert_eq!(c.resubscribes, 1);
    assert!(feed.book(&s).unwrap().stale);

    // A diff still in flight from the left subscription is ignored; then a fresh snapshot and
    // diffs by price: a new best bid, the best ask deleted (CP 3), a new ask.
    send(
        &mut ws,
        book(
            432,
            12,
            json!([]),
            json!([{"CP": 1, "P": "100.5", "A": "7"}]),
        ),
    )
    .await;
    send(
        &mut ws,
        json!([100, {"type": 100, "ok": true, "message": "leave|obdiff:BTCTRY"}]),
    )
    .await;
    send(
        &mut ws,
        json!([100, {"type": 100, "ok": true, "message": "join|obdiff:BTCTRY"}]),
    )
    .await;
    send(
        &mut ws,
        book(
            431,
            20,
            json!([{"A": "4", "P": "102"}]),
            json!([{"A": "3", "P": "99"}]),
        ),
    )
    .await;
    let rows_a = json!([{"CP": 3, "P": "102", "A": "4"}, {"CP": 1, "P": "103", "A": "5"}]);
    send(
        &mut ws,
        book(432, 21, rows_a, json!([{"CP": 1, "P": "99.5", "A": "1"}])),
    )
    .await;
    let want = Some((Some((d("99.5"), d("1"))), Some((d("103"), d("5")))));
    wait_for(Duration::from_secs(2), "the diff", || top(&feed) == want).await;
    assert_eq!(feed.book(&s).unwrap().cs, Some(21));
    assert_eq!(feed.counters().ignored_frames, 2);

    // A skipped CS resubscribes.
    send(
        &mut ws,
        book(
            432,
            23,
            json!([]),
            json!([{"CP": 0, "P": "99.5", "A": "2"}]),
        ),
    )
    .await;
    assert_eq!(recv(&mut ws).await, sub("obdiff", false));
    assert_eq!(recv(&mut ws).await, sub("obdiff", true));
    assert_eq!(
        (feed.counters().cs_gaps, feed.counters().resubscribes),
        (1, 2)
    );
    assert_eq!(
        feed.book(&s).unwrap().best_bid.unwrap().qty,
        d("1"),
        "not applied"
    );

    // No snapshot follows: after `snapshot_timeout` the join is repeated.
    let asked = Instant::now();
    assert_eq!(recv(&mut ws).await, sub("obdiff", false));
    assert_eq!(recv(&mut ws).await, sub("obdiff", true));
    assert!(
        asked.elapsed() >= Duration::from_millis(400),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(feed.counters().resubscribes, 3);

    // Silence: the feed gives up on this connection and comes back.
    let mut second = accept(&listener).await;
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(800), "{waited:?}");
    assert_eq!(feed.counters().silence_timeouts, 1);
    assert_eq!(feed.counters().connects, 2);
    drop(ws);

    // After the join ack, a 432 before any 431 resubscribes.
    send(&mut second, book(432, 5, json!([]), json!([]))).await;
    assert_eq!(recv(&mut second).await, sub("obdiff", false));
    assert_eq!(recv(&mut second).await, sub("obdiff", true));
    assert_eq!(feed.counters().resubscribes, 4);

    // Stopping closes the connection politely.
    feed.shutdown().await;
    assert_eq!(recv(&mut second).await, json!(["close"]));
}

#[tokio::test]
async fn start_refuses_bad_configs() {
    let err = |c: FeedConfig| MarketFeed::start(c).err().unwrap();
    assert!(err(FeedConfig::new("http://x", vec![sym("BTCTRY")])).contains("ws://"));
    assert!(err(FeedConfig::new("ws://127.0.0.1:1/", vec![])).contains("no symbols"));
}
