//! Matching, replay venue and synthetic generator tests.

use super::*;
use crate::domain::{OrderStatus, Price, Qty, Side, Symbol};
use crate::exchange::exchange_info::{bundled_exchange_info, parse_exchange_info};
use std::path::Path;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}
fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}
fn px(s: &str) -> Price {
    Price::new(d(s)).unwrap()
}
fn qty(s: &str) -> Qty {
    Qty::new(d(s)).unwrap()
}
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/replay")
        .join(name)
}

/// BTCTRY engine: 2,000,000 TRY and 1 BTC, maker 10 bps, taker 20 bps.
fn engine() -> MatchingEngine {
    let specs = parse_exchange_info(bundled_exchange_info()).unwrap();
    MatchingEngine::new(
        specs,
        &[("TRY".into(), d("2000000")), ("BTC".into(), d("1"))],
        d("10"),
        d("20"),
    )
    .unwrap()
}

fn quote(e: &mut MatchingEngine, ts: i64, bid: &str, bid_q: &str, ask: &str, ask_q: &str) {
    e.on_quote(&sym("BTCTRY"), px(bid), qty(bid_q), px(ask), qty(ask_q), ts);
}

fn order(id: &str, side: Side, price: &str, q: &str) -> OrderRequest {
    OrderRequest {
        client_id: id.into(),
        symbol: sym("BTCTRY"),
        side,
        price: px(price),
        qty: qty(q),
    }
}

fn bal(e: &MatchingEngine, asset: &str) -> (Decimal, Decimal) {
    let a = e.account();
    let b = a.balance(asset).unwrap();
    (b.free, b.locked)
}

fn reject_code(r: Result<SubmitAck, Reject>) -> String {
    r.unwrap_err().code
}

#[test]
fn marketable_buy_fills_as_taker_at_the_ask() {
    let mut e = engine();
    quote(&mut e, 1_000, "3500000", "0.5", "3500010", "0.25");
    let ack = e
        .submit(&order("c1", Side::Buy, "3500100", "0.1"), 1_500)
        .unwrap();
    assert_eq!(ack.exchange_id, "1");
    let fills = e.fills_since(0);
    assert_eq!(fills.len(), 1);
    let (seq, f) = &fills[0];
    assert_eq!(*seq, 1);
    assert_eq!(f.trade_id, "replay-1");
    assert_eq!(f.client_order_id, "c1");
    assert_eq!(f.price, px("3500010"));
    assert_eq!(f.qty, qty("0.1"));
    assert!(!f.maker);
    assert_eq!(f.fee, d("700.002"));
    assert_eq!(f.fee_asset, "TRY");
    assert_eq!(f.ts_ms, 1_500);
    assert_eq!(bal(&e, "TRY"), (d("1649298.998"), Decimal::ZERO));
    assert_eq!(bal(&e, "BTC"), (d("1.1"), Decimal::ZERO));
    assert!(e.open_orders().is_empty());
}

#[test]
fn resting_sell_fills_as_maker_when_the_bid_crosses() {
    let mut e = engine();
    quote(&mut e, 1_000, "3500000", "0.5", "3500010", "0.25");
    e.submit(&order("s1", Side::Sell, "3500100", "0.2"), 1_000)
        .unwrap();
    assert!(e.fills_since(0).is_empty());
    assert_eq!(bal(&e, "BTC"), (d("0.8"), d("0.2")));
    let open = e.open_orders();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].status, OrderStatus::Open);
    assert_eq!(open[0].exchange_id.as_deref(), Some("1"));
    assert_eq!(open[0].cycle_id, 0);

    quote(&mut e, 2_000, "3500090", "0.5", "3500110", "0.5"); // below the limit: no fill
    assert!(e.fills_since(0).is_empty());
    quote(&mut e, 3_000, "3500200", "0.5", "3500210", "0.5");
    let fills = e.fills_since(0);
    assert_eq!(fills.len(), 1);
    let f = &fills[0].1;
    assert!(f.maker);
    assert_eq!(f.price, px("3500100"));
    assert_eq!(f.ts_ms, 3_000);
    assert_eq!(f.fee, d("700.02"));
    assert_eq!(bal(&e, "BTC"), (d("0.8"), Decimal::ZERO));
    assert_eq!(
        bal(&e, "TRY"),
        (d("2000000") + d("700020") - d("700.02"), Decimal::ZERO)
    );
}

#[test]
fn partial_fills_follow_the_displayed_size() {
    let mut e = engine();
    quote(&mut e, 1_000, "3500000", "0.5", "3500010", "0.25");
    e.submit(&order("b1", Side::Buy, "3500010", "0.1"), 1_000)
        .unwrap();
    // The first order used 0.1 of the 0.25 displayed; the second gets the 0.15 left.
    e.submit(&order("b2", Side::Buy, "3500010", "0.2"), 1_000)
        .unwrap();
    let fills = e.fills_since(0);
    assert_eq!(fills.len(), 2);
    assert_eq!(fills[1].1.qty, qty("0.15"));
    let open = e.open_orders();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].status, OrderStatus::PartiallyFilled);
    assert_eq!(open[0].filled_qty, qty("0.15"));

    quote(&mut e, 2_000, "3499990", "1", "3500000", "0.02");
    let f = e.fills_since(2);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].0, f[0].1.qty, f[0].1.price),
        (3, qty("0.02"), px("3500010"))
    );
    assert!(f[0].1.maker);

    // A zero displayed size means unknown: unlimited liquidity.
    quote(&mut e, 3_000, "3499990", "1", "3500000", "0");
    let f = e.fills_since(3);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].1.qty, qty("0.03"));
    assert!(e.open_orders().is_empty());
    assert_eq!(bal(&e, "TRY").1, Decimal::ZERO);
    assert_eq!(bal(&e, "BTC"), (d("1.3"), Decimal::ZERO));
}

#[test]
fn cancel_unlocks_the_remainder() {
    let mut e = engine();
    quote(&mut e, 1_000, "3500000", "0.5", "3500010", "0.1");
    e.submit(&order("b1", Side::Buy, "3500010", "0.3"), 1_000)
        .unwrap();
    let (_, locked) = bal(&e, "TRY");
    // 0.2 left at 3,500,010 plus the 20 bps fee reserve.
    assert_eq!(locked, d("700002") + d("1400.004"));
    assert_eq!(e.open_orders()[0].filled_qty, qty("0.1"));
    e.cancel("1", 2_000).unwrap();
    assert_eq!(bal(&e, "TRY").1, Decimal::ZERO);
    let spent = d("350001") + d("700.002");
    assert_eq!(bal(&e, "TRY").0, d("2000000") - spent);
    let err = e.cancel("1", 2_000).unwrap_err();
    assert_eq!(err.code, "ORDER_NOT_FOUND");
    assert_eq!(e.cancel("nope", 2_000).unwrap_err().code, "ORDER_NOT_FOUND");

    e.submit(&order("s1", Side::Sell, "3600000", "0.5"), 3_000)
        .unwrap();
    assert_eq!(bal(&e, "BTC"), (d("0.6"), d("0.5")));
    e.cancel("2", 3_000).unwrap();
    assert_eq!(bal(&e, "BTC"), (d("1.1"), Decimal::ZERO));
}

#[test]
fn submit_validation_codes() {
    let mut e = engine();
    let code = |e: &mut MatchingEngine, o: OrderRequest| reject_code(e.submit(&o, 0));
    assert_eq!(
        code(&mut e, order("a", Side::Buy, "3500000", "0.00002")),
        "1123"
    );
    assert_eq!(
        code(&mut e, order("b", Side::Buy, "3500005", "0.01")),
        "1126"
    );
    assert_eq!(
        code(&mut e, order("c", Side::Buy, "3500000", "0.123456789")),
        "1127"
    );
    assert_eq!(
        code(&mut e, order("d", Side::Buy, "3500000", "1")),
        "INSUFFICIENT_BALANCE"
    );
    assert_eq!(
        code(&mut e, order("e", Side::Sell, "3500000", "1.5")),
        "INSUFFICIENT_BALANCE"
    );
    let mut unknown = order("f", Side::Buy, "1", "1000");
    unknown.symbol = sym("DOGETRY");
    assert_eq!(code(&mut e, unknown), "1037");
    e.submit(&order("g", Side::Buy, "3000000", "0.01"), 0)
        .unwrap();
    assert_eq!(
        code(&mut e, order("g", Side::Buy, "3000000", "0.01")),
        "DUPLICATE_CLIENT_ORDER_ID"
    );
    // Absurd amounts are refused, never a panic.
    let huge = order("big", Side::Buy, "10000000000000000000000000", "1000000000");
    assert_eq!(code(&mut e, huge), "FAILED_ORDER_PARAMETER");
    assert_eq!(
        code(&mut e, order("z", Side::Buy, "3500000", "0")),
        "FAILED_ORDER_PARAMETER"
    );
    // A rejected client id may be used again once fixed.
    e.submit(&order("a", Side::Buy, "3500000", "0.0001"), 0)
        .unwrap();
    // Exactly the minimum notional is accepted (AVAXTRY: 999.1 × 0.1 = 99.91).
    let mut avax = order("h", Side::Buy, "999.1", "0.1");
    avax.symbol = sym("AVAXTRY");
    e.submit(&avax, 0).unwrap();
}

#[test]
fn balances_conserve_exactly() {
    let specs = parse_exchange_info(bundled_exchange_info()).unwrap();
    let mut e = MatchingEngine::new(
        specs,
        &[("TRY".into(), d("500000")), ("BTC".into(), d("0.5"))],
        d("7.5"),
        d("12.5"),
    )
    .unwrap();
    let mut t = 0;
    let mut next = || {
        t += 100;
        t
    };
    for i in 0..40i64 {
        let mid = 3_500_000 + (i % 7 - 3) * 1_000;
        let (bid, ask) = (mid.to_string(), (mid + 20).to_string());
        let ts = next();
        quote(&mut e, ts, &bid, "0.013", &ask, "0.017");
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let p = (mid
            + if i % 3 == 0 { 20 } else { -2_000 } * if side == Side::Buy { 1 } else { -1 })
        .to_string();
        let _ = e.submit(&order(&format!("o{i}"), side, &p, "0.01234567"), ts);
        if i % 5 == 4 {
            let oldest = e.open_orders().first().and_then(|o| o.exchange_id.clone());
            if let Some(id) = oldest {
                e.cancel(&id, ts).unwrap();
            }
        }
    }
    let fills = e.fills_since(0);
    assert!(fills.len() > 10, "only {} fills", fills.len());
    assert!(fills.iter().any(|f| f.1.maker) && fills.iter().any(|f| !f.1.maker));
    let (mut try_delta, mut btc_delta) = (Decimal::ZERO, Decimal::ZERO);
    for (_, f) in &fills {
        let notional = f.price.value() * f.qty.value();
        match f.side {
            Side::Buy => {
                try_delta -= notional + f.fee;
                btc_delta += f.qty.value();
            }
            Side::Sell => {
                try_delta += notional - f.fee;
                btc_delta -= f.qty.value();
            }
        }
    }
    let acct = e.account();
    let try_b = acct.balance("TRY").unwrap();
    let btc_b = acct.balance("BTC").unwrap();
    assert_eq!(try_b.total(), d("500000") + try_delta);
    assert_eq!(btc_b.total(), d("0.5") + btc_delta);
    // What is locked is exactly what the open orders hold.
    let (mut try_locked, mut btc_locked) = (Decimal::ZERO, Decimal::ZERO);
    for o in e.open_orders() {
        match o.side {
            Side::Buy => {
                let n = o.price.value() * o.remaining();
                try_locked += n + n * d("12.5") / d("10000");
            }
            Side::Sell => btc_locked += o.remaining(),
        }
    }
    assert_eq!(try_b.locked, try_locked);
    assert_eq!(btc_b.locked, btc_locked);
    assert!(try_b.free >= Decimal::ZERO && btc_b.free >= Decimal::ZERO);
}

fn config(dir: &Path) -> ReplayConfig {
    ReplayConfig {
        dataset: dir.to_path_buf(),
        starting_balances: vec![("TRY".into(), d("100000"))],
        maker_fee_bps: d("10"),
        taker_fee_bps: d("20"),
    }
}

#[tokio::test]
async fn replay_exchange_walks_the_dataset() {
    let mut x = ReplayExchange::open(config(&fixture("native_plain"))).unwrap();
    assert!(x.is_simulated());
    assert_eq!(x.name(), "replay");
    assert_eq!(x.first_ts_ms(), Some(1_767_225_600_000));
    assert_eq!(x.last_ts_ms(), Some(1_767_225_600_400));
    let syms = [sym("BTCTRY"), sym("ETHTRY"), sym("AVAXTRY")];
    assert!(x.market(&syms).await.unwrap().is_empty());
    assert!(x.advance_to(1_767_225_600_150).await.unwrap());
    let m = x.market(&syms).await.unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].symbol, sym("BTCTRY"));
    assert_eq!(m[0].exchange_ts_ms, 1_767_225_600_000);
    assert_eq!(m[0].received_ts_ms, 1_767_225_600_150);
    assert_eq!(
        m[0].last_trade.as_ref().map(|t| t.price),
        Some(px("3500010"))
    );
    assert_eq!(x.symbol_specs().await.unwrap().len(), 2);

    let ack = x
        .submit(&order("c1", Side::Buy, "3499000", "0.01"))
        .await
        .unwrap();
    assert_eq!(x.open_orders().await.unwrap().len(), 1);
    // The 00:00:00.300 quote has ask 3,500,000: above our bid, so nothing fills.
    assert!(!x.advance_to(1_767_225_601_000).await.unwrap());
    assert!(x.fills_since(0).await.unwrap().is_empty());
    x.cancel(&ack.exchange_id).await.unwrap();
    assert_eq!(x.account().await.unwrap().free("TRY"), d("100000"));
    assert!(!x.advance_to(1_767_225_602_000).await.unwrap());
    assert_eq!(x.events_applied(), 6);
}

#[tokio::test]
async fn a_bad_row_becomes_a_permanent_error() {
    let mut x = ReplayExchange::open(config(&fixture("bad_number"))).unwrap();
    // Rows are read one ahead: the bad line 4 is met while applying line 3 and reported on
    // the next call.
    assert!(x.advance_to(1_767_225_600_100).await.unwrap());
    let err = x.advance_to(1_767_225_600_150).await.unwrap_err();
    match &err {
        ExchangeError::Permanent { endpoint, message } => {
            assert_eq!(endpoint, "replay");
            assert!(
                message.ends_with("events.csv:4: bid: not a decimal number: \"abc\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The failure sticks.
    assert_eq!(x.advance_to(1_767_225_600_400).await.unwrap_err(), err);
}

#[test]
fn replay_over_the_seed_layout() {
    let mut x = ReplayExchange::open(config(&fixture("seed_basic"))).unwrap();
    assert_eq!(x.first_ts_ms(), Some(1_767_225_600_000));
    assert_eq!(x.last_ts_ms(), None);
    assert!(!x.advance(i64::MAX).unwrap());
    assert_eq!(x.events_applied(), 10);
}

fn synth_opts(events: u64, seed: u64) -> SynthOptions {
    SynthOptions {
        symbols: ["USDTTRY", "BTCTRY", "ETHTRY", "AVAXTRY"].map(sym).to_vec(),
        events,
        seed,
        start_ms: 1_767_225_600_000,
    }
}

fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

const RSS_CHILD_ENV: &str = "BTCBOT_REPLAY_RSS_CHILD";

/// 200k events stream through `advance` with flat memory. The measurement runs in a child
/// process running only this test, so other tests' allocations cannot disturb it.
#[test]
fn large_synth_dataset_streams_without_memory_growth() {
    if std::env::var_os(RSS_CHILD_ENV).is_none() && rss_kb().is_some() {
        let name = format!(
            "{}::large_synth_dataset_streams_without_memory_growth",
            module_path!().split_once("::").map_or("", |(_, rest)| rest)
        );
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--exact", &name, "--test-threads", "1"])
            .env(RSS_CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "child ran no test:\n{stdout}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let summary = write_synth_dataset(&synth_opts(200_000, 9), tmp.path()).unwrap();
    let mut x = ReplayExchange::open(config(tmp.path())).unwrap();
    let start = x.first_ts_ms().unwrap();
    let step = (summary.end_ms - start) / 100 + 1;
    let mut t = start;
    let (mut after_warmup, mut peak) = (None, 0);
    let mut i = 0;
    while x.advance(t).unwrap() {
        i += 1;
        let rss = rss_kb().unwrap_or(0);
        if i == 10 {
            after_warmup = Some(rss);
        }
        peak = peak.max(rss);
        t += step;
    }
    assert_eq!(x.events_applied(), 200_000);
    if let Some(before) = after_warmup {
        // Holding the remaining ~180k events in memory would take well over 20 MB.
        assert!(
            peak < before + 8_000,
            "RSS grew from {before} kB to a peak of {peak} kB"
        );
    }
}
