//! The seed bot's known measurement bugs, shown fixed: its exchange latency was always 0, its
//! consecutive-loss streak was always 0 and its "fees today" were all-time fees. Here each is
//! measured from real inputs (a slow exchange over HTTP, real fills through the ledger) and the
//! default pack acts on the measured value.

mod common;

use btcbot::domain::{Fill, Mode, Price, Qty, Side};
use btcbot::engine::decide::{CycleInput, decide};
use btcbot::exchange::sim::{FaultSpec, serve};
use btcbot::ledger::Ledger;
use btcbot::rules::RuleSet;
use btcbot::store::Store;
use common::{NOW_MS, bundled_specs, dec, market, paper_config, repo_root, sim_config, sym};
use std::process::Command;

const DAY_MS: i64 = 86_400_000;
/// Midday UTC, so "today" has a past.
const NOON: i64 = NOW_MS + DAY_MS / 2;

fn fill(id: &str, order: &str, side: Side, price: &str, qty: &str, fee: &str, ts: i64) -> Fill {
    Fill {
        trade_id: id.into(),
        client_order_id: order.into(),
        symbol: sym("BTCTRY"),
        side,
        price: Price::new(dec(price)).unwrap(),
        qty: Qty::new(dec(qty)).unwrap(),
        fee: dec(fee),
        fee_asset: "TRY".into(),
        maker: true,
        ts_ms: ts,
    }
}

/// One cycle at NOON over BTCTRY with the ledger's portfolio, judged by the default pack.
fn decide_on(ledger: &Ledger) -> (Mode, Vec<String>) {
    let rules = RuleSet::build(&repo_root().join("configs/default")).unwrap();
    let mut portfolio = ledger.portfolio(NOON, ledger.cash, Some(ledger.cash));
    portfolio.peak_equity = Some(ledger.cash);
    let mut book = market("BTCTRY", "3500000", "3500100");
    book.exchange_ts_ms = NOON - 1000;
    book.received_ts_ms = NOON;
    let input = CycleInput {
        cycle_id: 1,
        now_ms: NOON,
        symbols: vec![sym("BTCTRY")],
        markets: vec![book],
        specs: bundled_specs(),
        portfolio,
        intents_override: Some(Vec::new()),
        ..CycleInput::default()
    };
    let d = decide(&rules, &input);
    (d.mode, d.mode_reasons)
}

#[test]
fn the_loss_streak_is_counted_from_real_fills_and_reduces_risk() {
    let mut ledger = Ledger::new("TRY", dec("100000"));
    let t = NOON - 3_600_000;
    // Three round trips, each sold under its cost; the last one in two partial fills.
    let trips = [("a", "b1"), ("c", "b2"), ("d", "b3")];
    for (i, (buy, sell)) in trips.iter().enumerate() {
        let ts = t + i64::try_from(i).unwrap() * 1000;
        ledger
            .apply(&fill(
                &format!("{buy}-t"),
                buy,
                Side::Buy,
                "3500000",
                "0.001",
                "0",
                ts,
            ))
            .unwrap();
        if *sell == "b3" {
            ledger
                .apply(&fill(
                    "s3a",
                    sell,
                    Side::Sell,
                    "3400000",
                    "0.0005",
                    "0",
                    ts + 1,
                ))
                .unwrap();
            ledger
                .apply(&fill(
                    "s3b",
                    sell,
                    Side::Sell,
                    "3400000",
                    "0.0005",
                    "0",
                    ts + 2,
                ))
                .unwrap();
        } else {
            ledger
                .apply(&fill(
                    &format!("{sell}-t"),
                    sell,
                    Side::Sell,
                    "3400000",
                    "0.001",
                    "0",
                    ts + 1,
                ))
                .unwrap();
        }
    }
    let p = ledger.portfolio(NOON, ledger.cash, None);
    assert_eq!(
        p.loss_streak, 3,
        "three losing sell orders (one in two fills)"
    );
    let (mode, reasons) = decide_on(&ledger);
    assert_eq!(mode, Mode::ReduceOnly, "{reasons:?}");
    assert!(reasons.contains(&"LOSS_STREAK".to_string()), "{reasons:?}");

    // A winning sell resets it.
    ledger
        .apply(&fill(
            "w-b",
            "w",
            Side::Buy,
            "3400000",
            "0.001",
            "0",
            t + 10_000,
        ))
        .unwrap();
    ledger
        .apply(&fill(
            "w-s",
            "ws",
            Side::Sell,
            "3500000",
            "0.001",
            "0",
            t + 11_000,
        ))
        .unwrap();
    assert_eq!(ledger.portfolio(NOON, ledger.cash, None).loss_streak, 0);
    assert_eq!(decide_on(&ledger).0, Mode::Normal);
}

#[test]
fn fees_today_are_today_s_not_all_time() {
    let mut ledger = Ledger::new("TRY", dec("100000"));
    // 500 TRY of fees yesterday, 20 today: all-time is far over the 100 TRY daily cap.
    ledger
        .apply(&fill(
            "y1",
            "y",
            Side::Buy,
            "3500000",
            "0.01",
            "500",
            NOON - DAY_MS,
        ))
        .unwrap();
    ledger
        .apply(&fill(
            "t1",
            "t",
            Side::Sell,
            "3600000",
            "0.005",
            "20",
            NOON - 1000,
        ))
        .unwrap();
    let p = ledger.portfolio(NOON, ledger.cash, None);
    assert_eq!(p.fees, dec("520"));
    assert_eq!(p.fees_today, dec("20"));
    let (mode, reasons) = decide_on(&ledger);
    assert!(
        !reasons.contains(&"DAILY_FEE_BUDGET".to_string()),
        "{mode:?} {reasons:?}"
    );

    // 81 TRY more today crosses it.
    ledger
        .apply(&fill(
            "t2",
            "t2",
            Side::Sell,
            "3600000",
            "0.001",
            "81",
            NOON - 500,
        ))
        .unwrap();
    let (mode, reasons) = decide_on(&ledger);
    assert_eq!(mode, Mode::ReduceOnly);
    assert!(
        reasons.contains(&"DAILY_FEE_BUDGET".to_string()),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_latency_is_measured_on_a_slow_exchange() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = sim_config(20_000);
    // Every request takes 40 ms: a cycle's reads (books, balances, fills, open orders) add up
    // to well over the 150 ms threshold this test sets.
    config.faults = FaultSpec::parse("latency=40ms").unwrap();
    let sim = serve(config).await.unwrap();
    let cfg = paper_config(
        tmp.path(),
        &sim.base_url(),
        &[
            ("url: ws://127.0.0.1:8081", "enabled: false"),
            ("latency_spike_ms: 2000", "latency_spike_ms: 150"),
            ("tests: tests", "tests: not-run-here"),
        ],
    );
    let db = tmp.path().join("slow.db");
    let (c, d) = (cfg.clone(), db.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_btcbot"))
            .args([
                "run",
                "--no-watch",
                "--speed",
                "max",
                "--max-cycles",
                "3",
                "--config",
            ])
            .arg(&c)
            .arg("--db")
            .arg(&d)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::open_read_only(&db).unwrap();
    for cycle in 1..=3 {
        let inputs = store.cycle_inputs(cycle).unwrap().unwrap();
        let stats: serde_json::Value = serde_json::from_str(&inputs.stats_json).unwrap();
        let latency = stats["observe_latency_ms"].as_i64().unwrap();
        assert!(latency >= 150, "cycle {cycle}: measured {latency} ms");
    }
    let spikes = store
        .anomalies(None)
        .unwrap()
        .into_iter()
        .filter(|a| a.anomaly.code == "EXCHANGE_LATENCY_SPIKE")
        .count();
    assert_eq!(spikes, 3, "a latency spike in every cycle");
}
