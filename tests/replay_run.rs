//! The main job end to end through the real binary: a dry run of the default config over the
//! sample dataset, its summary, and determinism (the same data and rules decide the same).

use btcbot::store::{Durability, Store};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_default(db: &Path, cycles: u32) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .current_dir(repo())
        .args(["run", "--speed", "max", "--no-watch", "--max-cycles"])
        .arg(cycles.to_string())
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "run failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stdout
}

#[test]
fn the_default_dry_run_summarizes_and_two_runs_decide_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.db"), tmp.path().join("b.db"));
    let summary = run_default(&a, 2000);
    run_default(&b, 2000);
    for field in [
        "cycles:      2000",
        "intents:",
        "verdicts:",
        "orders:",
        "fills:",
        "pnl:",
        "hash=",
        "database:",
    ] {
        assert!(
            summary.contains(field),
            "summary lacks {field:?}:\n{summary}"
        );
    }
    assert!(summary.contains("DRY RUN"), "{summary}");

    let (sa, sb) = (
        Store::open(&a, Durability::Normal).unwrap(),
        Store::open(&b, Durability::Normal).unwrap(),
    );
    let (ca, cb) = (sa.cycles().unwrap(), sb.cycles().unwrap());
    assert_eq!(ca.len(), 2000);
    let prints =
        |c: &[btcbot::store::CycleRow]| c.iter().map(|r| r.fingerprint.clone()).collect::<Vec<_>>();
    assert_eq!(
        prints(&ca),
        prints(&cb),
        "fingerprints differ between identical runs"
    );
    let (da, db) = (sa.decisions(None).unwrap(), sb.decisions(None).unwrap());
    assert!(!da.is_empty(), "the sample should produce decisions");
    let strip = |d: &[btcbot::store::DecisionRow]| {
        d.iter()
            .map(|r| {
                (
                    r.cycle_id,
                    r.seq,
                    r.symbol.clone(),
                    r.price,
                    r.qty,
                    r.reason_code.clone(),
                    r.final_qty,
                    r.action.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&da), strip(&db));
    assert!(
        da.iter().any(|r| r.action == "placed"),
        "some orders should be placed"
    );
    assert_eq!(sa.fills().unwrap(), sb.fills().unwrap());
    assert!(!sa.fills().unwrap().is_empty(), "some orders should fill");
}

#[test]
fn a_config_error_exits_non_zero_with_one_line_per_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["run", "--once", "--config"])
        .arg(tmp.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config directory not found"), "{stderr}");
}

#[test]
fn a_per_quote_config_is_refused_by_the_cycle_loop_rather_than_run_without_a_strategy() {
    // Its per-cycle strategy() returns no intent: run as a cycle loop it would trade nothing.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .current_dir(repo())
        .args([
            "run",
            "--once",
            "--no-watch",
            "--config",
            "configs/examples/ema-cross",
            "--db",
        ])
        .arg(tmp.path().join("ema.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bot.yaml: cycle.evaluate: per_quote runs only in `btcbot backtest`"),
        "{stderr}"
    );
    assert!(!tmp.path().join("ema.db").exists(), "nothing was written");
}

#[test]
fn sigterm_finishes_the_cycle_in_flight_commits_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("term.db");
    let child = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .current_dir(repo())
        .args(["run", "--no-watch", "--speed", "50", "--db"])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.contains("finishing the cycle in flight"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("run summary"));
    let store = Store::open(&db, Durability::Normal).unwrap();
    let cycles = store.cycles().unwrap();
    assert!(
        !cycles.is_empty() && cycles.len() < 5000,
        "{} cycles",
        cycles.len()
    );
}
