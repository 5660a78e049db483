//! Paper trading end to end: the real binary runs cycles against the simulated BTCTurk
//! exchange over HTTP on loopback while the market moves; orders are placed, filled and
//! canceled; a restart against the same database carries on; and the ledger rebuilt from the
//! stored fills equals the exchange's balances to the last digit. Books come from the sim's
//! websocket feed (REST while the feed is not yet synced).

mod common;

use btcbot::exchange::sim::serve;
use btcbot::store::Store;
use common::{SIM_KEY, assert_ledger_matches_sim, drive_market, paper_config, sim_config};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn run_bot(cfg: &Path, db: &Path, cycles: u32, log: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["run", "--no-watch", "--speed", "20", "--max-cycles"])
        .arg(cycles.to_string())
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .status()
        .unwrap();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "bot failed:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!text.contains("websocket feed off"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_cycles_against_the_sim_keep_the_ledger_equal_to_the_exchange() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = sim_config(20_000);
    config.ws_listen = Some("127.0.0.1:0".parse().unwrap());
    let sim = Arc::new(serve(config).await.unwrap());
    let ws_url = format!("ws://{}", sim.ws_addr().unwrap());
    // A short TTL and a deeper limit offset, so some orders rest past their TTL and are canceled.
    let cfg = paper_config(
        tmp.path(),
        &sim.base_url(),
        &[
            ("ttl_ms: 120000", "ttl_ms: 300"),
            ("offset_bps: 5 ", "offset_bps: 20 "),
            // A 60 s cooldown would idle a run of a few seconds; the default pack's rule tests
            // pin 60 s, so they are not run against this edited copy.
            ("cooldown_s: 60", "cooldown_s: 1"),
            ("tests: tests", "tests: not-run-here"),
            ("ws://127.0.0.1:8081", &ws_url),
        ],
    );
    let db = tmp.path().join("paper.db");

    // Two runs against one database: the second is a restart that must carry on.
    let stop = Arc::new(AtomicBool::new(false));
    let driver = drive_market(
        Arc::clone(&sim),
        Arc::clone(&stop),
        Duration::from_millis(10),
    );
    for (i, cycles) in [150, 150].into_iter().enumerate() {
        let (c, d, l) = (
            cfg.clone(),
            db.clone(),
            tmp.path().join(format!("run{i}.log")),
        );
        tokio::task::spawn_blocking(move || run_bot(&c, &d, cycles, &l))
            .await
            .unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let moved = driver.join().unwrap();
    assert!(moved > 500, "the market barely moved ({moved} events)");

    // With the market frozen, one more cycle collects whatever filled last.
    let (c, d, l) = (cfg.clone(), db.clone(), tmp.path().join("last.log"));
    tokio::task::spawn_blocking(move || run_bot(&c, &d, 1, &l))
        .await
        .unwrap();

    let store = Store::open_read_only(&db).unwrap();
    let orders = store.orders().unwrap();
    let count = |s: &str| orders.iter().filter(|o| o.status.as_str() == s).count();
    if orders.len() < 3 {
        let mut why: std::collections::BTreeMap<String, usize> = Default::default();
        for d in store.decisions(None).unwrap() {
            *why.entry(d.reason_code).or_default() += 1;
        }
        for c in store.cycles().unwrap() {
            *why.entry(format!("mode {} {:?}", c.mode.as_str(), c.mode_reasons))
                .or_default() += 1;
        }
        panic!(
            "too few orders: {}; verdicts and modes: {why:?}",
            orders.len()
        );
    }
    assert!(
        count("filled") + count("partially_filled") >= 1,
        "nothing filled: {orders:?}"
    );
    assert!(count("canceled") >= 1, "nothing canceled: {orders:?}");
    for o in &orders {
        assert_eq!(
            sim.placed_count(SIM_KEY, &o.client_id),
            1,
            "{} placed twice or never",
            o.client_id
        );
    }
    assert_ledger_matches_sim(&db, &sim, SIM_KEY);
    assert_eq!(
        store.cycles().unwrap().len(),
        301,
        "cycles across the three runs"
    );
}
