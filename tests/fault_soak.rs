//! The bot against the simulated exchange with faults on (10% 5xx, 5% timeouts, 429 bursts, 10%
//! lost order responses: five times the 2%, so a short run surely hits some) for many cycles: it keeps cycling, the rules see the error anomalies, no client
//! order id is placed twice, no fill is lost, and the ledger equals the exchange.
//!
//! Cycles: 2,000 by default (about 75 s here: the timeouts dominate, so the client's timeout is
//! 15 ms against a 30 ms hold); `BTCBOT_FAULT_CYCLES=N` for more, `BTCBOT_FAULT_SPEC` to change
//! the faults (the sim's `--faults` syntax).

mod common;

use btcbot::exchange::sim::{FaultSpec, serve};
use btcbot::store::Store;
use common::{SIM_KEY, assert_ledger_matches_sim, drive_market, paper_config, sim_config};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_keeps_cycling_through_exchange_faults_without_duplicates_or_lost_fills() {
    let cycles: u32 = std::env::var("BTCBOT_FAULT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let tmp = tempfile::tempdir().unwrap();
    let mut config = sim_config(50_000);
    let spec = std::env::var("BTCBOT_FAULT_SPEC").unwrap_or_else(|_| {
        "5xx=0.1,timeout=0.05/hold:30ms,429=0.01/burst:2/retry-after:0,lost_order_response=0.1,seed=11"
            .into()
    });
    config.faults = FaultSpec::parse(&spec).unwrap();
    let sim = Arc::new(serve(config).await.unwrap());
    let cfg = paper_config(
        tmp.path(),
        &sim.base_url(),
        &[
            ("ttl_ms: 120000", "ttl_ms: 400"),
            ("cooldown_s: 60", "cooldown_s: 1"),
            ("tests: tests", "tests: not-run-here"),
            ("url: ws://127.0.0.1:8081", "enabled: false"),
            (
                "request_timeout_ms: 5000",
                "request_timeout_ms: 15\n  retry: {max_retries: 3, backoff_base_ms: 1, backoff_max_ms: 5, retry_after_cap_ms: 1000}",
            ),
        ],
    );
    let db = tmp.path().join("faults.db");
    let stop = Arc::new(AtomicBool::new(false));
    let driver = drive_market(
        Arc::clone(&sim),
        Arc::clone(&stop),
        Duration::from_millis(3),
    );

    let (c, d) = (cfg.clone(), db.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_btcbot"))
            .args(["run", "--no-watch", "--speed", "max", "--max-cycles"])
            .arg(cycles.to_string())
            .arg("--config")
            .arg(&c)
            .arg("--db")
            .arg(&d)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the bot stopped: {}",
        stderr.lines().last().unwrap_or("")
    );
    assert!(!stderr.contains("panicked"));
    stop.store(true, Ordering::SeqCst);
    driver.join().unwrap();

    let faults = sim.fault_stats();
    assert!(
        faults.errors_5xx > 20 && faults.timeouts > 5,
        "faults barely fired: {faults:?}"
    );
    assert!(
        faults.lost_order_responses >= 1,
        "no order response was lost: {faults:?}"
    );

    // Settle with the faults still on but the market frozen: a few clean-ish cycles.
    let (c, d) = (cfg.clone(), db.clone());
    let status = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_btcbot"))
            .args(["run", "--no-watch", "--speed", "max", "--max-cycles", "20"])
            .arg("--config")
            .arg(&c)
            .arg("--db")
            .arg(&d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());

    let store = Store::open_read_only(&db).unwrap();
    assert_eq!(
        store.cycles().unwrap().len(),
        cycles as usize + 20,
        "every cycle committed"
    );
    let anomalies = store.anomalies(None).unwrap();
    let seen = |code: &str| anomalies.iter().filter(|a| a.anomaly.code == code).count();
    assert!(
        seen("EXCHANGE_ERROR") >= 1,
        "the rules never saw exchange errors"
    );
    assert!(
        store.orders().unwrap().len() >= 10,
        "too few orders to prove anything"
    );
    assert_ledger_matches_sim(&db, &sim, SIM_KEY);
    eprintln!(
        "{cycles} cycles; faults {faults:?}; EXCHANGE_ERROR in {} cycles",
        seen("EXCHANGE_ERROR")
    );
}
