//! The BTCTurk REST adapter against the simulated exchange, over real HTTP on loopback: the
//! order lifecycle, rejections with BTCTurk's codes, bad signatures, and the transport policy
//! under injected faults (lost order responses, timeouts, 429, 5xx).

use btcbot::domain::{OrderStatus, Price, Qty, Side, Symbol};
use btcbot::exchange::btcturk::{BtcturkConfig, BtcturkExchange, Credentials, Endpoint};
use btcbot::exchange::sim::{FaultSpec, SimAccount, SimConfig, SimHandle, serve};
use btcbot::exchange::{Exchange, ExchangeError, OrderRequest, SubmitAck};
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

const T0: i64 = 1_767_225_600_000;
const KEY: &str = "test-public-key";
const SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn btctry() -> Symbol {
    Symbol::new("BTCTRY").unwrap()
}

async fn start(faults: &str) -> SimHandle {
    let dataset = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/btcturk/sim_market");
    let account = SimAccount {
        public_key: KEY.into(),
        secret_b64: SECRET.into(),
        balances: vec![("TRY".into(), d("100000")), ("BTC".into(), d("1"))],
    };
    let mut config = SimConfig::new(dataset, "127.0.0.1:0".parse().unwrap(), vec![account]);
    config.faults = FaultSpec::parse(faults).unwrap();
    serve(config).await.unwrap()
}

/// A client with short waits, so fault tests stay fast.
fn config_with(sim: &SimHandle, key: &str, secret: &str) -> BtcturkConfig {
    let creds = Credentials {
        public_key: key.into(),
        secret_b64: secret.into(),
    };
    let mut c = BtcturkConfig::new(&sim.base_url(), Some(creds), vec![btctry()]);
    c.simulated = true;
    c.rest.timeout = Duration::from_secs(2);
    c.rest.backoff_base = Duration::from_millis(10);
    c.rest.backoff_max = Duration::from_millis(100);
    c.rest.retry_after_cap = Duration::from_secs(5);
    c.submit_lookup_delay = Duration::from_millis(20);
    c
}

fn client(config: BtcturkConfig) -> BtcturkExchange {
    BtcturkExchange::new(config).unwrap()
}

/// An order: client id, side, price, quantity.
type O<'a> = (&'a str, Side, &'a str, &'a str);

async fn place(ex: &mut BtcturkExchange, o: O<'_>) -> Result<SubmitAck, ExchangeError> {
    let (price, qty) = (Price::new(d(o.2)).unwrap(), Qty::new(d(o.3)).unwrap());
    let (client_id, side, symbol) = (o.0.to_string(), o.1, btctry());
    let req = OrderRequest {
        client_id,
        symbol,
        side,
        price,
        qty,
    };
    ex.submit(&req).await
}

async fn placed(ex: &mut BtcturkExchange, o: O<'_>) -> SubmitAck {
    place(ex, o).await.unwrap()
}

async fn refused(ex: &mut BtcturkExchange, o: O<'_>) -> ExchangeError {
    place(ex, o).await.unwrap_err()
}

#[tokio::test]
async fn specs_market_and_clock_from_the_sim() {
    let sim = start("").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut ex = client(config_with(&sim, KEY, SECRET));
    assert!(ex.is_simulated());
    assert!(ex.advance_to(0).await.unwrap());
    let specs = ex.symbol_specs().await.unwrap();
    let spec = specs.iter().find(|s| s.symbol == btctry()).unwrap();
    assert_eq!((spec.tick_size, spec.min_notional), (d("10"), d("99.91")));

    let before = btcbot::exchange::btcturk::rest::local_ms();
    let m = ex
        .market(&[btctry(), Symbol::new("NOPETRY").unwrap()])
        .await
        .unwrap();
    assert_eq!(m.len(), 1, "the unknown pair is left out: {m:?}");
    let m = &m[0];
    let top = [
        m.bid.value(),
        m.bid_qty.value(),
        m.ask.value(),
        m.ask_qty.value(),
    ];
    assert_eq!(top, [d("3500000"), d("0.5"), d("3500010"), d("0.25")]);
    let last = m.last_trade.as_ref().unwrap();
    assert_eq!(
        (last.price.value(), last.qty.value(), last.side),
        (d("3500010"), d("0.01"), Some(Side::Buy))
    );
    assert!(m.received_ts_ms >= before && m.exchange_ts_ms > 0);

    let offset = ex.rest().sync_clock().await.unwrap();
    assert!(offset.abs() < 1_000, "same machine, offset {offset} ms");
    let s = ex.rest().stats().get(Endpoint::OrderBook);
    assert_eq!((s.requests, s.retries, s.errors), (2, 0, 1), "{s:?}");
}

#[tokio::test]
async fn submit_partial_fill_fill_cancel_and_user_trades() {
    let sim = start("").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut ex = client(config_with(&sim, KEY, SECRET));

    let ack = placed(&mut ex, ("ladder", Side::Buy, "3490000", "0.004")).await;
    let on_sim = sim.orders_by_client_id(KEY, "ladder");
    assert_eq!(on_sim.len(), 1);
    assert_eq!(ack.exchange_id, on_sim[0].id.to_string());
    let open = ex.open_orders().await.unwrap();
    assert_eq!(open.len(), 1);
    let o = &open[0];
    assert_eq!(
        (o.client_id.as_str(), o.side, o.status),
        ("ladder", Side::Buy, OrderStatus::Open)
    );
    assert_eq!((o.price.value(), o.qty.value()), (d("3490000"), d("0.004")));
    assert_eq!(o.exchange_id.as_deref(), Some(ack.exchange_id.as_str()));
    assert!(ex.fills_since(0).await.unwrap().is_empty());

    // ask 3490000 x 0.001: a partial fill.
    sim.advance_to(T0 + 1000).unwrap();
    let open = ex.open_orders().await.unwrap();
    assert_eq!(
        (open[0].status, open[0].filled_qty.value()),
        (OrderStatus::PartiallyFilled, d("0.001"))
    );
    let fills = ex.fills_since(0).await.unwrap();
    assert_eq!(fills.len(), 1);
    let (seq1, f) = &fills[0];
    let sim_trades = sim.trades(KEY);
    assert_eq!(f.trade_id, sim_trades[0].id.to_string());
    assert_eq!(
        (f.client_order_id.as_str(), f.side, f.symbol.clone()),
        ("ladder", Side::Buy, btctry())
    );
    assert_eq!((f.price.value(), f.qty.value()), (d("3490000"), d("0.001")));
    assert_eq!((f.fee, f.fee_asset.as_str()), (sim_trades[0].fee, "TRY"));
    assert_eq!(f.ts_ms, sim_trades[0].ts_ms);
    assert!(
        ex.fills_since(*seq1).await.unwrap().is_empty(),
        "nothing new after the cursor"
    );

    // ask 3489000 x 0.002, then a quote that fills the rest.
    sim.advance_to(T0 + 2000).unwrap();
    let fills = ex.fills_since(*seq1).await.unwrap();
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].1.qty.value(), d("0.002"));
    let seq2 = fills[0].0;
    assert!(seq2 > *seq1);
    sim.advance_to(T0 + 3000).unwrap();
    let fills = ex.fills_since(seq2).await.unwrap();
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].1.qty.value(), d("0.001"));
    assert!(
        ex.open_orders().await.unwrap().is_empty(),
        "filled orders are not open"
    );
    let all = ex.fills_since(0).await.unwrap();
    let total: Decimal = all.iter().map(|(_, f)| f.qty.value()).sum();
    assert_eq!((all.len(), total), (3, d("0.004")));
    assert!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "oldest first, increasing seq"
    );

    // A resting sell, listed, then canceled.
    sim.advance_to(T0 + 4000).unwrap();
    let ack = placed(&mut ex, ("rest-1", Side::Sell, "3600000", "0.01")).await;
    let open = ex.open_orders().await.unwrap();
    assert_eq!((open.len(), open[0].client_id.as_str()), (1, "rest-1"));
    ex.cancel(&ack.exchange_id).await.unwrap();
    assert!(ex.open_orders().await.unwrap().is_empty());
    let e = ex.cancel(&ack.exchange_id).await.unwrap_err();
    assert!(
        matches!(&e, ExchangeError::Rejected { code, .. } if code == "1152"),
        "{e}"
    );

    // Finished orders are found by client id with their final state.
    let found = ex.lookup_order("ladder").await.unwrap().unwrap();
    let status = (found.status, found.filled_qty.value());
    assert_eq!(status, (OrderStatus::Filled, d("0.004")));
    let found = ex.lookup_order("rest-1").await.unwrap().unwrap();
    assert_eq!(found.status, OrderStatus::Canceled);
    assert_eq!(ex.lookup_order("never-sent").await.unwrap(), None);

    // The account equals the sim's books.
    let account = ex.account().await.unwrap();
    for b in sim.balances(KEY).unwrap() {
        let ours = account.balance(&b.asset).unwrap();
        assert_eq!((ours.free, ours.locked), (b.free, b.locked), "{}", b.asset);
    }
    assert_eq!(account.free("BTC"), d("1.004"));
}

#[tokio::test]
async fn business_rejections_carry_btcturk_codes() {
    let sim = start("").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut ex = client(config_with(&sim, KEY, SECRET));
    // 0.00001 x 3490000 = 34.9 TRY < minExchangeValue 99.91.
    let e = refused(&mut ex, ("tiny", Side::Buy, "3490000", "0.00001")).await;
    match &e {
        ExchangeError::Rejected {
            endpoint,
            code,
            message,
        } => {
            assert_eq!(
                (endpoint.as_str(), code.as_str()),
                ("POST /api/v1/order", "1123")
            );
            assert!(message.contains("FAILED_MIN_TOTAL_AMOUNT"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let e = refused(&mut ex, ("fine", Side::Buy, "3490000", "0.000123456789")).await;
    assert!(
        matches!(&e, ExchangeError::Rejected { code, .. } if code == "1127"),
        "{e}"
    );
    let e = refused(&mut ex, ("broke", Side::Buy, "3490000", "100")).await;
    assert!(
        matches!(&e, ExchangeError::Rejected { code, .. } if code == "1122"),
        "{e}"
    );
    assert_eq!(sim.orders(KEY).len(), 0, "nothing placed");
}

#[tokio::test]
async fn bad_credentials_are_permanent_with_the_401_message() {
    let sim = start("").await;
    let wrong_secret = "d3Jvbmctc2VjcmV0";
    let mut ex = client(config_with(&sim, KEY, wrong_secret));
    let e = ex.account().await.unwrap_err();
    assert_eq!(
        e,
        ExchangeError::Permanent {
            endpoint: "GET /api/v1/users/balances".into(),
            message: "HTTP 401: Unauthorized - Invalid Signature".into(),
        }
    );
    let e = refused(&mut ex, ("x", Side::Buy, "3490000", "0.01")).await;
    assert!(e.to_string().contains("Invalid Signature"), "{e}");
    let mut ex = client(config_with(&sim, "nobody", SECRET));
    let e = ex.open_orders().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("Unauthorized - Invalid Public/Private key"),
        "{e}"
    );
    let mut cfg = config_with(&sim, KEY, SECRET);
    cfg.credentials = None;
    let e = client(cfg).account().await.unwrap_err();
    assert!(e.to_string().contains("no API credentials"), "{e}");
    assert_eq!(sim.orders(KEY).len(), 0);
    // 401s are not retried.
    assert_eq!(ex.rest().stats().get(Endpoint::OpenOrders).retries, 0);
}

#[tokio::test]
async fn a_lost_order_response_is_resolved_without_a_duplicate() {
    let sim = start("lost_order_response=1").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut ex = client(config_with(&sim, KEY, SECRET));
    for (i, cid) in ["lost-1", "lost-2", "lost-3"].into_iter().enumerate() {
        let price = 3_400_000 - 10 * i64::try_from(i).unwrap();
        let ack = placed(&mut ex, (cid, Side::Buy, &price.to_string(), "0.005")).await;
        assert_eq!(sim.placed_count(KEY, cid), 1, "{cid} placed exactly once");
        let on_sim = sim.orders_by_client_id(KEY, cid);
        assert_eq!(ack.exchange_id, on_sim[0].id.to_string());
    }
    assert_eq!(sim.fault_stats().lost_order_responses, 3);
    let s = ex.rest().stats().get(Endpoint::SubmitOrder);
    assert_eq!(
        (s.requests, s.retries, s.errors),
        (3, 0, 3),
        "never re-sent: {s:?}"
    );
    // A lost answer to an order that filled at once is found in allOrders.
    let ack = placed(&mut ex, ("lost-fill", Side::Buy, "3500010", "0.01")).await;
    assert_eq!(sim.placed_count(KEY, "lost-fill"), 1);
    assert_eq!(
        ack.exchange_id,
        sim.orders_by_client_id(KEY, "lost-fill")[0].id.to_string()
    );
    assert!(ex.rest().stats().get(Endpoint::AllOrders).requests >= 1);
}

#[tokio::test]
async fn an_unprocessed_submit_that_times_out_is_reported_not_placed() {
    // Seeded faults draw in request order: with this seed the submit (after the clock sync) is
    // held past the client timeout and dropped unprocessed, and the two lookups pass.
    let sim = start("timeout=0.3/hold:400ms,seed=3").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut cfg = config_with(&sim, KEY, SECRET);
    cfg.rest.timeout = Duration::from_millis(300);
    cfg.submit_lookup_rounds = 1;
    let mut ex = client(cfg);
    let mut outcome = None;
    for i in 0..20 {
        let cid = format!("maybe-{i}");
        let before = sim.fault_stats().timeouts;
        let r = place(&mut ex, (&cid, Side::Buy, "3400000", "0.01")).await;
        let timeouts = sim.fault_stats().timeouts - before;
        assert!(sim.placed_count(KEY, &cid) <= 1, "never twice");
        if timeouts == 1 && r.is_err() {
            outcome = Some((cid, r));
            break;
        }
    }
    let (cid, r) = outcome.expect("a submit timed out with its lookup answered");
    let e = r.unwrap_err();
    assert!(matches!(e, ExchangeError::Transient { .. }), "{e}");
    assert!(e.to_string().contains("not placed"), "{e}");
    assert_eq!(sim.placed_count(KEY, &cid), 0);
}

#[tokio::test]
async fn a_refused_connection_is_not_looked_up() {
    let sim = start("").await;
    let mut cfg = config_with(&sim, KEY, SECRET);
    sim.shutdown().await;
    cfg.rest.max_retries = 1;
    cfg.rest.clock_sync_interval = Duration::ZERO;
    let mut ex = client(cfg);
    let e = refused(&mut ex, ("dead", Side::Buy, "3400000", "0.01")).await;
    assert!(matches!(e, ExchangeError::Transient { .. }), "{e}");
    assert!(e.to_string().contains("connection failed"), "{e}");
    assert_eq!(ex.rest().stats().get(Endpoint::OpenOrders).requests, 0);
}

#[tokio::test]
async fn a_429_is_waited_out_for_gets_and_not_retried_for_posts() {
    // Every request starts a burst of two 429s with Retry-After: 1; the next one passes.
    let sim = start("429=1/burst:2/retry-after:1").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut cfg = config_with(&sim, KEY, SECRET);
    cfg.last_trade = false;
    cfg.rest.clock_sync_interval = Duration::ZERO;
    let mut ex = client(cfg);
    let started = Instant::now();
    let m = ex.market(&[btctry()]).await.unwrap();
    assert_eq!(m[0].bid.value(), d("3500000"));
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    let s = ex.rest().stats().get(Endpoint::OrderBook);
    assert_eq!(
        (s.requests, s.rate_limited, s.retries, s.errors),
        (3, 2, 2, 0),
        "{s:?}"
    );

    // The next request opens a new burst: a POST reports it and is not re-sent.
    let e = refused(&mut ex, ("limited", Side::Buy, "3400000", "0.01")).await;
    assert!(matches!(e, ExchangeError::Transient { .. }), "{e}");
    assert!(e.to_string().contains("429"), "{e}");
    assert_eq!(ex.rest().stats().get(Endpoint::SubmitOrder).requests, 1);
    assert_eq!(sim.placed_count(KEY, "limited"), 0);
}

#[tokio::test]
async fn a_429_longer_than_the_cap_fails_fast() {
    let sim = start("429=1/burst:1/retry-after:30").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut cfg = config_with(&sim, KEY, SECRET);
    cfg.last_trade = false;
    cfg.rest.retry_after_cap = Duration::from_millis(500);
    let mut ex = client(cfg);
    let started = Instant::now();
    let e = ex.market(&[btctry()]).await.unwrap_err();
    assert!(e.to_string().contains("retry after 30 s"), "{e}");
    // The endpoint stays blocked: the next call fails without a request.
    let e = ex.market(&[btctry()]).await.unwrap_err();
    assert!(e.to_string().contains("blocked"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(ex.rest().stats().get(Endpoint::OrderBook).requests, 1);
}

#[tokio::test]
async fn server_errors_on_gets_are_retried() {
    let sim = start("5xx=0.4,seed=11").await;
    sim.advance_to(T0 + 200).unwrap();
    let mut cfg = config_with(&sim, KEY, SECRET);
    cfg.rest.max_retries = 6;
    let mut ex = client(cfg);
    for _ in 0..10 {
        let m = ex.market(&[btctry()]).await.unwrap();
        assert_eq!(m.len(), 1);
        ex.account().await.unwrap();
    }
    let book = ex.rest().stats().get(Endpoint::OrderBook);
    let bal = ex.rest().stats().get(Endpoint::Balances);
    assert!(sim.fault_stats().errors_5xx > 0);
    assert!(book.retries + bal.retries > 0, "{book:?} {bal:?}");
    assert_eq!(
        book.server_errors + bal.server_errors,
        book.retries + bal.retries
    );
    assert_eq!((book.errors, bal.errors), (0, 0));
}

/// Median µs of `n` calls of `f` after 50 warm-up calls.
async fn median_us(n: usize, mut f: impl AsyncFnMut()) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let t = Instant::now();
        f().await;
        if i >= 50 {
            samples.push(t.elapsed());
        }
    }
    samples.sort();
    samples[n / 2].as_secs_f64() * 1e6
}

/// Adapter overhead per request: 1,000 orderbook GETs (and 1,000 signed balance GETs) through
/// plain reqwest and through the adapter, same connection reuse, no rate limiter. Run with
/// `cargo test --release --test btcturk_client -- --ignored --nocapture overhead`.
#[tokio::test]
#[ignore = "measurement; run explicitly"]
async fn overhead_of_the_adapter_per_request() {
    const N: usize = 1000;
    let sim = start("").await;
    sim.advance_to(T0 + 200).unwrap();
    let http = reqwest::Client::new();
    let book = format!(
        "{}/api/v2/orderbook?pairSymbol=BTCTRY&limit=5",
        sim.base_url()
    );
    let balances = format!("{}/api/v1/users/balances", sim.base_url());
    let raw = median_us(N, async || {
        let body = http.get(&book).send().await.unwrap().text().await.unwrap();
        assert!(body.contains("SUCCESS"));
    })
    .await;
    let raw_signed = median_us(N, async || {
        let stamp = btcbot::exchange::btcturk::rest::local_ms();
        let sig = btcbot::exchange::btcturk::auth::sign(KEY, SECRET, stamp).unwrap();
        let req = http.get(&balances).header("X-PCK", KEY);
        let req = req
            .header("X-Stamp", stamp.to_string())
            .header("X-Signature", sig);
        assert!(
            req.send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("TRY")
        );
    })
    .await;
    let mut cfg = config_with(&sim, KEY, SECRET);
    cfg.rest.rate_limits = false;
    cfg.last_trade = false;
    let mut ex = client(cfg);
    let adapter = median_us(N, async || {
        assert_eq!(ex.market(&[btctry()]).await.unwrap().len(), 1);
    })
    .await;
    let adapter_signed = median_us(N, async || {
        ex.account().await.unwrap();
    })
    .await;
    println!(
        "orderbook GET median: reqwest {raw:.0} µs, adapter {adapter:.0} µs, overhead {:.0} µs",
        adapter - raw
    );
    println!(
        "balances GET median: reqwest+sign {raw_signed:.0} µs, adapter {adapter_signed:.0} µs, \
         overhead {:.0} µs",
        adapter_signed - raw_signed
    );
}
