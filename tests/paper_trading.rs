//! Paper trading end to end: the real binary runs cycles against the simulated BTCTurk
//! exchange over HTTP on loopback while the market moves; orders are placed, filled and
//! canceled; a restart against the same database carries on; and the ledger rebuilt from the
//! stored fills equals the exchange's balances to the last digit.

use btcbot::exchange::sim::{SimAccount, SimConfig, SimHandle, serve};
use btcbot::ledger::Ledger;
use btcbot::store::Store;
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const KEY: &str = "test-public-key";
const SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// configs/paper pointed at `base_url`, with a short order TTL so cancels happen.
fn paper_config(dir: &Path, base_url: &str) -> PathBuf {
    let cfg = dir.join("paper");
    std::fs::create_dir_all(&cfg).unwrap();
    for name in [
        "risk.yaml",
        "strategy.yaml",
        "rules.yaml",
        "credentials.yaml",
        "bot.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join("configs/paper").join(name)).unwrap();
        let text = text
            .replace(
                "dir: ../../rules",
                &format!("dir: {}", repo().join("rules").display()),
            )
            .replace("http://127.0.0.1:8080", base_url)
            .replace("ttl_ms: 120000", "ttl_ms: 300")
            .replace("offset_bps: 5 ", "offset_bps: 20 ");
        std::fs::write(cfg.join(name), text).unwrap();
    }
    cfg
}

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
}

/// Moves the simulated market one event every few ms until `stop`.
fn drive_market(sim: Arc<SimHandle>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut moved = 0;
        while !stop.load(Ordering::SeqCst) {
            moved += sim.advance_events(1).unwrap_or(0);
            std::thread::sleep(Duration::from_millis(10));
        }
        moved
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_cycles_against_the_sim_keep_the_ledger_equal_to_the_exchange() {
    let tmp = tempfile::tempdir().unwrap();
    let account = SimAccount {
        public_key: KEY.into(),
        secret_b64: SECRET.into(),
        balances: vec![("TRY".into(), Decimal::from(20_000))],
    };
    let config = SimConfig::new(
        repo().join("data/replay/sample"),
        "127.0.0.1:0".parse().unwrap(),
        vec![account],
    );
    let sim = Arc::new(serve(config).await.unwrap());
    let cfg = paper_config(tmp.path(), &sim.base_url());
    let db = tmp.path().join("paper.db");

    // Two runs against one database: the second is a restart that must carry on.
    let stop = Arc::new(AtomicBool::new(false));
    let driver = drive_market(Arc::clone(&sim), Arc::clone(&stop));
    let (c, d, l) = (cfg.clone(), db.clone(), tmp.path().join("run1.log"));
    tokio::task::spawn_blocking(move || run_bot(&c, &d, 150, &l))
        .await
        .unwrap();
    let (c, d, l) = (cfg.clone(), db.clone(), tmp.path().join("run2.log"));
    tokio::task::spawn_blocking(move || run_bot(&c, &d, 150, &l))
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let moved = driver.join().unwrap();
    assert!(moved > 500, "the market barely moved ({moved} events)");

    // With the market frozen, one more cycle collects whatever filled last.
    let (c, d, l) = (cfg.clone(), db.clone(), tmp.path().join("run3.log"));
    tokio::task::spawn_blocking(move || run_bot(&c, &d, 1, &l))
        .await
        .unwrap();

    let store = Store::open_read_only(&db).unwrap();
    let orders = store.orders().unwrap();
    let count = |s: &str| orders.iter().filter(|o| o.status.as_str() == s).count();
    assert!(orders.len() >= 3, "too few orders: {}", orders.len());
    assert!(
        count("filled") + count("partially_filled") >= 1,
        "nothing filled: {orders:?}"
    );
    assert!(count("canceled") >= 1, "nothing canceled: {orders:?}");
    for o in &orders {
        assert_eq!(
            sim.placed_count(KEY, &o.client_id),
            1,
            "{} placed twice or never",
            o.client_id
        );
    }

    let fills = store.fills().unwrap();
    assert_eq!(
        fills.len(),
        sim.trades(KEY).len(),
        "every exchange trade in the ledger once"
    );
    let baseline = store
        .meta_value("ledger_starting_cash_TRY")
        .unwrap()
        .and_then(|t| Decimal::from_str(&t).ok())
        .unwrap();
    assert_eq!(baseline, Decimal::from(20_000));
    let ledger = Ledger::rebuild("TRY", baseline, &fills).unwrap();
    let balances = sim.balances(KEY).unwrap();
    let at_sim = |asset: &str| {
        balances
            .iter()
            .find(|b| b.asset == asset)
            .map_or(Decimal::ZERO, |b| b.free + b.locked)
    };
    assert_eq!(ledger.cash, at_sim("TRY"), "TRY: ledger vs exchange");
    for (symbol, holding) in &ledger.positions {
        let base = symbol.as_str().trim_end_matches("TRY");
        assert_eq!(holding.qty, at_sim(base), "{base}: ledger vs exchange");
    }
    let last = store.cycles().unwrap();
    assert_eq!(last.len(), 301, "cycles across the three runs");
}
