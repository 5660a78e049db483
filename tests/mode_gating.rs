//! Mode gating end to end: a replay whose market has a spread spike (→ reduce_only through the
//! degrade ladder) and then goes stale for over 60 s (→ observe_only), run through the real
//! binary with the default pack. The recorded modes and reasons are checked, and so is what
//! reached the (replay) exchange: nothing in observe_only, only sells and cancels in reduce_only.

mod common;

use btcbot::domain::{Mode, Side};
use btcbot::store::Store;
use common::Fixture;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const START_MS: i64 = 1_767_225_600_000;

/// The BTCTRY book at second `t`: (bid, ask), or `None` while the feed is silent.
fn book_at(t: i64) -> Option<(i64, i64)> {
    let around = |mid: i64| Some((mid - 10, mid + 10));
    match t {
        0..30 => around(3_500_000),
        30..35 => around(3_470_000), // a dip: the strategy buys
        35..70 => around(3_460_000), // the resting buy fills
        70..76 => Some((3_300_000, 3_520_000)), // spread spike, ~650 bps: SPREAD_SPIKE warns
        76..120 => around(3_560_000), // a rise: profitable sells, allowed in reduce_only
        120..150 => around(3_440_000), // a dip: buys, refused in reduce_only
        150..180 => around(3_470_000), // inside the band: no signal
        180..260 => None,            // silence: the book ages past 60 s → MARKET_DATA_AGE
        _ => around(3_380_000),      // a deep dip: buys, refused in observe_only
    }
}

fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("ts_ms,symbol,kind,bid,bid_qty,ask,ask_qty,price,qty,side\n");
    let end_s = 300;
    for half in 0..end_s * 2 {
        let t = half / 2;
        if let Some((bid, ask)) = book_at(t) {
            let ts = START_MS + half * 500;
            writeln!(csv, "{ts},BTCTRY,Q,{bid},1.5,{ask},1.5,,,").unwrap();
        }
    }
    std::fs::write(dir.join("events.csv"), csv).unwrap();
    let manifest = serde_json::json!({
        "format": "btcbot-replay/1",
        "source": "tests/mode_gating.rs",
        "symbols": ["BTCTRY"],
        "events": ["events.csv"],
        "start_ms": START_MS,
        "end_ms": START_MS + end_s * 1000,
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::copy(
        common::repo_root().join("data/replay/sample/exchangeinfo.json"),
        dir.join("exchangeinfo.json"),
    )
    .unwrap();
}

#[test]
fn a_spread_spike_reduces_and_a_stale_feed_stops_trading() {
    let f = Fixture::new();
    let dataset = f.tmp.path().join("dataset");
    write_dataset(&dataset);
    let bot = f.read_config("bot.yaml");
    let bot = bot
        .replace(
            &bot.lines()
                .find(|l| l.trim_start().starts_with("dataset:"))
                .unwrap()
                .to_string(),
            &format!("  dataset: '{}'", dataset.display()),
        )
        .replace(
            "symbols: [BTCTRY, ETHTRY, AVAXTRY, USDTTRY]",
            "symbols: [BTCTRY]",
        )
        // Short-lived orders, so resting ones do not mute the strategy for the whole run.
        .replace("ttl_ms: 120000", "ttl_ms: 20000");
    f.write_config("bot.yaml", &bot);
    let db = f.tmp.path().join("gating.db");
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["run", "--no-watch", "--speed", "max", "--config"])
        .arg(&f.config)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run failed: {stderr}");

    let store = Store::open_read_only(&db).unwrap();
    let cycles = store.cycles().unwrap();
    assert!(cycles.len() >= 290, "only {} cycles", cycles.len());
    let second = |ts: i64| (ts - START_MS) / 1000;
    let mode_of: BTreeMap<i64, Mode> = cycles.iter().map(|c| (c.cycle_id, c.mode)).collect();

    // The recorded modes: normal first, reduce_only from the third spiking cycle, observe_only
    // once the book is more than 60 s old, and it stays there (a 30 min cooldown).
    for c in &cycles {
        let t = second(c.market_ts_ms);
        let expected = match t {
            ..72 => Mode::Normal,
            72..240 => Mode::ReduceOnly, // the last quote is at 179.5 s
            _ => Mode::ObserveOnly,
        };
        assert_eq!(c.mode, expected, "cycle at t={t}s: {:?}", c.mode_reasons);
        match c.mode {
            Mode::ReduceOnly if t < 100 => {
                assert!(
                    c.mode_reasons.contains(&"SPREAD_SPIKE".to_string()),
                    "t={t}"
                );
            }
            Mode::ObserveOnly => {
                assert!(
                    c.mode_reasons.contains(&"MARKET_DATA_AGE".to_string()),
                    "t={t}: {:?}",
                    c.mode_reasons
                );
            }
            _ => {}
        }
    }

    // What reached the exchange, by the mode of the cycle that sent it.
    let orders = store.orders().unwrap();
    let mut sells_in_reduce_only = 0;
    for o in &orders {
        match mode_of[&o.cycle_id] {
            Mode::Normal => {}
            Mode::ReduceOnly => {
                assert_eq!(o.side, Side::Sell, "a buy placed in reduce_only: {o:?}");
                sells_in_reduce_only += 1;
            }
            other => panic!("an order placed in {other:?}: {o:?}"),
        }
    }
    assert!(
        orders
            .iter()
            .any(|o| mode_of[&o.cycle_id] == Mode::Normal && o.side == Side::Buy),
        "the dip before the spike should have bought: {orders:?}"
    );
    assert!(
        sells_in_reduce_only >= 1,
        "reduce_only should let a profitable sell through"
    );
    // No cancel was sent while observing: any order still live at the switch stays as it was.
    let observe_from = cycles
        .iter()
        .find(|c| c.mode == Mode::ObserveOnly)
        .map(|c| c.market_ts_ms)
        .unwrap();
    for o in &orders {
        if o.updated_ms > observe_from {
            assert!(
                !matches!(o.status.as_str(), "cancel_requested" | "canceled"),
                "an order canceled in observe_only: {o:?}"
            );
        }
    }

    // The strategy kept asking; risk refused by mode.
    let decisions = store.decisions(None).unwrap();
    let refused = |code: &str| decisions.iter().filter(|d| d.reason_code == code).count();
    assert!(
        refused("MODE_REDUCE_ONLY") >= 1,
        "no buy refused in reduce_only"
    );
    assert!(
        refused("MODE_OBSERVE_ONLY") >= 1,
        "no intent refused in observe_only"
    );
    for d in &decisions {
        if mode_of[&d.cycle_id] == Mode::ObserveOnly {
            assert_eq!(d.reason_code, "MODE_OBSERVE_ONLY", "{d:?}");
        }
    }
}
