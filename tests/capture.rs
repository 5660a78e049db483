//! `btcbot replay init` and `replay capture` through the real binary against the simulated
//! exchange on loopback, while the market moves: a capture from the websocket feed, a resumed
//! capture over REST with the feed down (stopped by SIGTERM), one killed outright and one
//! resumed after it. The dataset stays valid throughout, each capture only adds to it, what it
//! holds is what the exchange served (every quote one of the sim's quotes, the trades in the
//! exchange's order, none twice), and `btcbot backtest` replays it to the end.

mod common;

use btcbot::exchange::replay::{EventKind, ReplayEvent, open_dataset};
use btcbot::exchange::sim::{SimConfig, serve};
use btcbot::store::Store;
use common::{Fixture, drive_market, paper_config, repo_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn btcbot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Every event, through the replay reader (which checks every row and the time order).
fn events(dataset: &Path) -> Vec<ReplayEvent> {
    let ds = open_dataset(dataset).unwrap_or_else(|e| panic!("{e}"));
    ds.events()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A capture in the background, stopped by a signal.
fn spawn_capture(config: &Path, dataset: &Path, log: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args([
            "replay",
            "capture",
            "--config",
            s(config),
            "--out",
            s(dataset),
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Asserts `after` starts with `before` and adds at least one event.
fn grew(before: &[ReplayEvent], after: &[ReplayEvent], what: &str) -> usize {
    assert!(
        after.len() > before.len(),
        "{what}: nothing added ({} events)",
        after.len()
    );
    assert_eq!(
        &after[..before.len()],
        before,
        "{what}: earlier events changed"
    );
    after.len() - before.len()
}

/// Every captured quote is one of the sim's (the sample dataset's) quotes; per symbol the
/// captured trades are the sample's trades in order, none twice (gaps allowed: between
/// captures nothing is recorded).
fn assert_faithful(captured: &[ReplayEvent], sample: &[ReplayEvent]) {
    let mut quotes = std::collections::HashSet::new();
    let mut trades: std::collections::HashMap<_, Vec<&EventKind>> = Default::default();
    for e in sample {
        match &e.kind {
            EventKind::Quote { .. } => {
                quotes.insert((e.symbol.clone(), format!("{:?}", e.kind)));
            }
            EventKind::Trade { .. } => trades.entry(e.symbol.clone()).or_default().push(&e.kind),
        }
    }
    let mut next: std::collections::HashMap<_, usize> = Default::default();
    let (mut q, mut t) = (0, 0);
    for e in captured {
        match &e.kind {
            EventKind::Quote { .. } => {
                q += 1;
                assert!(
                    quotes.contains(&(e.symbol.clone(), format!("{:?}", e.kind))),
                    "a quote the exchange never showed: {e:?}"
                );
            }
            EventKind::Trade { .. } => {
                t += 1;
                let list = &trades[&e.symbol];
                let from = next.entry(e.symbol.clone()).or_default();
                let at = list[*from..]
                    .iter()
                    .position(|k| *k == &e.kind)
                    .unwrap_or_else(|| panic!("trade twice, out of order or unknown: {e:?}"));
                *from += at + 1;
            }
        }
    }
    assert!(q > 20 && t > 3, "{q} quotes, {t} trades");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_from_the_sim_resume_and_replay_in_a_backtest() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = repo_root().join("data/replay/sample");
    let mut config = SimConfig::new(sample.clone(), "127.0.0.1:0".parse().unwrap(), vec![]);
    config.ws_listen = Some("127.0.0.1:0".parse().unwrap());
    let sim = Arc::new(serve(config).await.unwrap());
    let ws_url = format!("ws://{}", sim.ws_addr().unwrap());
    let with_feed = paper_config(
        &tmp.path().join("feed"),
        &sim.base_url(),
        &[("ws://127.0.0.1:8081", &ws_url)],
    );
    // Nothing listens on port 1: the feed never connects and capture reads REST.
    let feed_down = paper_config(
        &tmp.path().join("down"),
        &sim.base_url(),
        &[("ws://127.0.0.1:8081", "ws://127.0.0.1:1")],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let driver = drive_market(
        Arc::clone(&sim),
        Arc::clone(&stop),
        Duration::from_millis(10),
    );
    let dataset = tmp.path().join("captured");
    let ds = dataset.clone();
    let (feed_cfg, down_cfg) = (with_feed.clone(), feed_down.clone());
    let logs = tmp.path().to_path_buf();

    tokio::task::spawn_blocking(move || {
        let init = btcbot(&["replay", "init", s(&ds)]);
        assert!(init.status.success(), "{}", stderr(&init));
        let again = btcbot(&["replay", "init", s(&ds)]);
        assert!(!again.status.success());
        let err = stderr(&again);
        assert!(
            err.contains("not empty") && err.trim().lines().count() == 1,
            "{err}"
        );

        // 1. From the websocket feed, for a fixed time.
        let first = btcbot(&[
            "replay",
            "capture",
            "--config",
            s(&feed_cfg),
            "--out",
            s(&ds),
            "--duration",
            "3s",
        ]);
        assert!(first.status.success(), "{}", stderr(&first));
        let out = stdout(&first);
        assert!(!out.contains(" 0 from the feed"), "{out}");
        let one = events(&ds);
        assert!(!one.is_empty());

        // 2. Resumed with the feed down: REST only, until SIGTERM.
        let child = spawn_capture(&down_cfg, &ds, &logs.join("down.log"));
        std::thread::sleep(Duration::from_millis(2500));
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let second = child.wait_with_output().unwrap();
        let log = std::fs::read_to_string(logs.join("down.log")).unwrap();
        assert!(second.status.success(), "{log}");
        assert!(log.contains("resuming after"), "{log}");
        let out = stdout(&second);
        assert!(
            out.contains(" 0 from the feed") && !out.contains(" 0 over REST"),
            "{out}"
        );
        let two = events(&ds);
        grew(&one, &two, "the REST capture");

        // 3. Killed outright (no chance to finish), then 4. resumed.
        let mut child = spawn_capture(&feed_cfg, &ds, &logs.join("killed.log"));
        std::thread::sleep(Duration::from_millis(2200));
        child.kill().unwrap();
        child.wait().unwrap();
        let fourth = btcbot(&[
            "replay",
            "capture",
            "--config",
            s(&feed_cfg),
            "--out",
            s(&ds),
            "--duration",
            "2s",
        ]);
        assert!(fourth.status.success(), "{}", stderr(&fourth));
        let four = events(&ds);
        grew(&two, &four, "the captures after the kill");
        four
    })
    .await
    .map(|all| {
        stop.store(true, Ordering::SeqCst);
        let moved = driver.join().unwrap();
        assert!(moved > 500, "the market barely moved ({moved} events)");
        assert_faithful(&all, &events(&sample));
        let ds = open_dataset(&dataset).unwrap();
        let m = ds.manifest();
        assert_eq!(m.start_ms, all.first().map(|e| e.ts_ms));
        assert_eq!(m.end_ms, all.last().map(|e| e.ts_ms));
        assert_eq!(ds.symbols().len(), 4);
        assert!(dataset.join("exchangeinfo.json").is_file());
    })
    .unwrap();

    // The captured dataset replays to its end in a backtest.
    let fx = Fixture::new();
    let db: PathBuf = fx.tmp.path().join("bt.db");
    let bt = btcbot(&[
        "backtest",
        "--config",
        s(&fx.config),
        "--dataset",
        s(&dataset),
        "--out",
        s(&db),
    ]);
    assert!(bt.status.success(), "{}", stderr(&bt));
    let cycles = Store::open_read_only(&db).unwrap().cycles().unwrap();
    let ds = open_dataset(&dataset).unwrap();
    let (start, end) = (
        ds.manifest().start_ms.unwrap(),
        ds.manifest().end_ms.unwrap(),
    );
    assert!(
        cycles.len() >= 5,
        "{} cycles:\n{}",
        cycles.len(),
        stdout(&bt)
    );
    let last = cycles.last().unwrap().market_ts_ms;
    assert!(
        cycles[0].market_ts_ms >= start && last + 1000 >= end,
        "cycles {}..{last} do not cover the dataset {start}..{end}",
        cycles[0].market_ts_ms
    );
}
