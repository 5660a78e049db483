//! Crash safety against the simulated exchange over HTTP: the bot is killed at random moments
//! and at the dangerous points (after the outbox write, after the send, before the commit),
//! restarted, and killed again, round after round. After each round: no client order id placed
//! twice at the exchange; at the end, every exchange fill in the ledger exactly once and the
//! ledger's balances equal the exchange's.
//!
//! Rounds: 30 by default; `BTCBOT_CRASH_ROUNDS=N` for more.

mod common;

use btcbot::exchange::sim::{SimHandle, serve};
use common::{SIM_KEY, assert_ledger_matches_sim, drive_market, paper_config, sim_config};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a round ends.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// `BTCBOT_CRASH_AT=<point>`: the process aborts there on its first order.
    At(&'static str),
    /// SIGKILL after this many ms.
    After(u64),
}

fn bot(cfg: &Path, db: &Path, cycles: u32, crash_at: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_btcbot"));
    cmd.args(["run", "--no-watch", "--speed", "50", "--max-cycles"])
        .arg(cycles.to_string())
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match crash_at {
        Some(point) => cmd.env("BTCBOT_CRASH_AT", point),
        None => cmd.env_remove("BTCBOT_CRASH_AT"),
    };
    cmd
}

fn round(cfg: &Path, db: &Path, kill: Kill) -> String {
    let crash_at = match kill {
        Kill::At(p) => Some(p),
        Kill::After(_) => None,
    };
    let mut child = bot(cfg, db, 40, crash_at).spawn().unwrap();
    if let Kill::After(ms) = kill {
        let deadline = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill(); // SIGKILL
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("error:") || stderr.contains("aborting"),
        "the bot refused to start or run after a crash:\n{stderr}"
    );
    stderr
}

fn no_client_id_twice(sim: &SimHandle) {
    for o in sim.orders(SIM_KEY) {
        let placed = sim.placed_count(SIM_KEY, &o.client_id);
        assert!(
            placed <= 1,
            "client order id {} placed {placed} times",
            o.client_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_bot_at_any_moment_never_duplicates_an_order_or_loses_a_fill() {
    let rounds: u64 = std::env::var("BTCBOT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let tmp = tempfile::tempdir().unwrap();
    let config = sim_config(50_000);
    let sim = Arc::new(serve(config).await.unwrap());
    // The rule tests pin the default pack's numbers; this run loosens the cooldown so orders
    // come every round, and shortens the TTL so cancels happen too.
    let cfg = paper_config(
        tmp.path(),
        &sim.base_url(),
        &[
            ("ttl_ms: 120000", "ttl_ms: 400"),
            ("cooldown_s: 60", "cooldown_s: 1"),
            ("tests: tests", "tests: not-run-here"),
            ("url: ws://127.0.0.1:8081", "enabled: false"),
            ("offset_bps: 5 ", "offset_bps: 10 "),
        ],
    );
    let db = tmp.path().join("crash.db");
    let stop = Arc::new(AtomicBool::new(false));
    let driver = drive_market(
        Arc::clone(&sim),
        Arc::clone(&stop),
        Duration::from_millis(5),
    );

    let points = ["after_outbox", "after_send", "before_commit"];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut aborted = 0;
    for i in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill = if i % 2 == 0 {
            Kill::At(points[usize::try_from((i / 2) % 3).unwrap()])
        } else {
            Kill::After(150 + seed % 1200)
        };
        let (c, d) = (cfg.clone(), db.clone());
        let stderr = tokio::task::spawn_blocking(move || round(&c, &d, kill))
            .await
            .unwrap();
        if stderr.contains("aborting") {
            aborted += 1;
        }
        no_client_id_twice(&sim);
    }
    stop.store(true, Ordering::SeqCst);
    driver.join().unwrap();
    assert!(
        aborted >= rounds / 4,
        "only {aborted} rounds reached a crash point"
    );

    // A clean run with the market frozen settles what the crashes left behind.
    let (c, d) = (cfg.clone(), db.clone());
    let status = tokio::task::spawn_blocking(move || bot(&c, &d, 3, None).status().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    no_client_id_twice(&sim);
    assert!(
        sim.orders(SIM_KEY).len() >= 5,
        "too few orders to prove anything"
    );
    assert_ledger_matches_sim(&db, &sim, SIM_KEY);

    // The crashes left orders in the outbox or unanswered, and start-up recovery resolved them.
    let store = btcbot::store::Store::open_read_only(&db).unwrap();
    let recoveries = store.recoveries().unwrap();
    let found: u32 = recoveries.iter().map(|r| r.found).sum();
    let resolved: u32 = recoveries.iter().map(|r| r.resolved).sum();
    assert!(
        found >= 2,
        "recovery found only {found} unresolved orders: {recoveries:?}"
    );
    assert!(resolved >= 1, "recovery resolved nothing: {recoveries:?}");
    eprintln!(
        "{rounds} rounds, {aborted} at crash points; recovery found {found}, resolved {resolved}"
    );
}
