//! `btcbot backtest`, `parity`, `export` and `db count` through the real binary over the sample
//! dataset: two backtests of the same data and rules are identical cycle by cycle; a tightened
//! limit is a divergence that names its cycle and the verdict that changed.

mod common;

use common::Fixture;
use std::path::Path;
use std::process::{Command, Output};

fn btcbot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn backtest(config: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "backtest",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = btcbot(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    text(&o)
}

#[test]
fn backtests_are_reproducible_and_a_changed_rule_is_a_named_divergence() {
    let base = Fixture::new();
    let dir = base.tmp.path();
    let (a, b) = (dir.join("a.db"), dir.join("b.db"));
    let summary = backtest(&base.config, &a, &[]);
    for field in [
        "cycles:     5475",
        "modes:",
        "verdicts:",
        "trades:",
        "win rate",
        "pnl:",
        "max drawdown",
        "exposure:",
    ] {
        assert!(
            summary.contains(field),
            "summary lacks {field:?}:\n{summary}"
        );
    }
    // The second run is `btcbot run`, which commits every cycle on its own: a backtest's grouped
    // commits (256 cycles per transaction) store exactly the same cycles.
    let run = btcbot(&[
        "run",
        "--no-watch",
        "--config",
        base.config.to_str().unwrap(),
        "--db",
        b.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let same = btcbot(&["parity", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(same.status.success(), "{}", text(&same));
    assert!(
        text(&same).contains("5475 cycles, identical"),
        "{}",
        text(&same)
    );
    // The backtest stores the script state only at each group's end and the run's; it ends
    // with the state `run` stored after its last cycle.
    let states = |db: &std::path::Path| {
        btcbot::store::Store::open_read_only(db)
            .unwrap()
            .script_states()
            .unwrap()
    };
    let (grouped, per_cycle) = (states(&a), states(&b));
    assert_eq!(grouped.len(), 4, "{grouped:?}");
    assert!(
        grouped
            .iter()
            .any(|(name, json)| name == "strategy" && json.contains("anchor")),
        "{grouped:?}"
    );
    assert_eq!(grouped, per_cycle);

    // A tighter position limit: the runs part where the first buy is refused.
    let tight = Fixture::new();
    tight.edit_config(
        "risk.yaml",
        "max_position_notional: 5000",
        "max_position_notional: 2000",
    );
    tight.edit_config("rules.yaml", "tests: tests", "tests: none-for-this-copy");
    let c = dir.join("c.db");
    backtest(&tight.config, &c, &[]);
    let diff = btcbot(&["parity", a.to_str().unwrap(), c.to_str().unwrap()]);
    assert_eq!(diff.status.code(), Some(1));
    let out = text(&diff);
    assert!(out.contains("the rule sets differ"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("first divergence at cycle "))
        .unwrap_or_else(|| panic!("no divergence named:\n{out}"));
    let cycle: i64 = line
        .trim_start_matches("first divergence at cycle ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(out.contains("≠ A") && out.contains("ACCEPT"), "{out}");
    assert!(
        out.contains("≠ B") && out.contains("MAX_POSITION_NOTIONAL"),
        "{out}"
    );
    // It is the first cycle where the verdicts differ.
    let (sa, sc) = (
        btcbot::store::Store::open_read_only(&a).unwrap(),
        btcbot::store::Store::open_read_only(&c).unwrap(),
    );
    let codes = |s: &btcbot::store::Store, upto: i64| -> Vec<(i64, String)> {
        s.decisions(None)
            .unwrap()
            .into_iter()
            .filter(|d| d.cycle_id < upto)
            .map(|d| (d.cycle_id, d.reason_code))
            .collect()
    };
    assert_eq!(
        codes(&sa, cycle),
        codes(&sc, cycle),
        "an earlier cycle differs"
    );
    let summary_only = btcbot(&[
        "parity",
        "--summary",
        a.to_str().unwrap(),
        c.to_str().unwrap(),
    ]);
    assert_eq!(summary_only.status.code(), Some(1));
    assert!(
        text(&summary_only).contains(&format!("(first at {cycle})")),
        "{}",
        text(&summary_only)
    );

    // A window of market time.
    let w = dir.join("w.db");
    let windowed = backtest(
        &base.config,
        &w,
        &["--from", "2026-01-01T00:30:00Z", "--to", "1767228000000"],
    );
    assert!(
        windowed.contains("cycles:     601 (2026-01-01T00:30:00.000Z → 2026-01-01T00:40:00.000Z"),
        "{windowed}"
    );

    // The HTML report: one self-contained page whose charts have data.
    let page_path = dir.join("report.html");
    let r = btcbot(&[
        "report",
        "--db",
        a.to_str().unwrap(),
        "--html",
        page_path.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.trim_end().ends_with("</html>"));
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
    for class in ["equity", "drawdown", "exposure"] {
        let at = page
            .find(&format!(r#"<svg class="{class}""#))
            .unwrap_or_else(|| panic!("no {class} chart"));
        let svg = &page[at..at + page[at..].find("</svg>").unwrap()];
        let points = svg
            .split(r#"points=""#)
            .nth(1)
            .and_then(|p| p.split('"').next())
            .unwrap_or("");
        assert!(
            points.split(' ').count() > 100,
            "{class} chart has {} points",
            points.split(' ').count()
        );
    }
    assert!(page.contains(r#"class="mode-normal""#), "mode chart empty");
    assert!(page.contains("Verdicts by reason code") && page.contains("SYMBOL_COOLDOWN"));

    // Export and counts read the same rows.
    let counts = text(&btcbot(&["db", "count", "--db", a.to_str().unwrap()]));
    let count_of = |table: &str| -> usize {
        counts
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {table} in:\n{counts}"))
    };
    assert_eq!(count_of("cycles"), 5475);
    let fills_csv = text(&btcbot(&[
        "export",
        "--db",
        a.to_str().unwrap(),
        "--what",
        "fills",
    ]));
    assert_eq!(
        fills_csv.lines().count(),
        count_of("fills") + 1,
        "header + one line per fill"
    );
    assert!(fills_csv.starts_with("trade_id,client_order_id,symbol,side,price,qty,fee"));
    let equity = text(&btcbot(&[
        "export",
        "--db",
        a.to_str().unwrap(),
        "--what",
        "equity",
        "--format",
        "jsonl",
    ]));
    assert_eq!(equity.lines().count(), 5475);
    let first: serde_json::Value = serde_json::from_str(equity.lines().next().unwrap()).unwrap();
    assert_eq!(first["equity"], "20000", "money exported as its exact text");
    let bad = btcbot(&["export", "--db", a.to_str().unwrap(), "--what", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown table \"nope\""));
}

#[test]
fn a_quotes_csv_imports_into_a_dataset_that_backtests() {
    let f = Fixture::new();
    let dir = f.tmp.path();
    // Two symbols, a random-ish walk on the tick grid, one quote every 250 ms for 10 minutes.
    let mut csv = String::from("ts_ms,symbol,bid,bid_qty,ask,ask_qty\n");
    let mut btc: i64 = 3_500_000;
    let mut eth: i64 = 125_000;
    for i in 0..2400i64 {
        let ts = 1_767_225_600_000 + i * 250;
        if i % 2 == 0 {
            btc += [-30, 10, 20, -10][usize::try_from(i % 4).unwrap()];
            csv.push_str(&format!("{ts},BTCTRY,{btc},0.5,{},0.5\n", btc + 10));
        } else {
            eth += [-3, 1, 2, -1][usize::try_from(i % 4).unwrap()];
            csv.push_str(&format!("{ts},ETHTRY,{eth},2,{},2\n", eth + 1));
        }
    }
    let quotes = dir.join("quotes.csv");
    std::fs::write(&quotes, &csv).unwrap();
    let dataset = dir.join("imported");
    let o = btcbot(&[
        "replay",
        "import",
        "--quotes",
        quotes.to_str().unwrap(),
        "--out",
        dataset.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text(&o).contains("2400 quotes, symbols BTCTRY,ETHTRY"),
        "{}",
        text(&o)
    );
    let db = dir.join("imported.db");
    let summary = backtest(&f.config, &db, &["--dataset", dataset.to_str().unwrap()]);
    assert!(summary.contains("cycles:     600 "), "{summary}");

    // The import wrote the compact copy the backtest read; the same dataset read from its CSV
    // (the copy deleted) replays to the very same fingerprints.
    assert!(dataset.join("events.bin").is_file());
    let csv_only = dir.join("imported-csv");
    std::fs::create_dir_all(&csv_only).unwrap();
    for name in ["manifest.json", "exchangeinfo.json", "events.csv.gz"] {
        std::fs::copy(dataset.join(name), csv_only.join(name)).unwrap();
    }
    let csv_db = dir.join("imported-csv.db");
    backtest(
        &f.config,
        &csv_db,
        &["--dataset", csv_only.to_str().unwrap()],
    );
    let parity = btcbot(&["parity", db.to_str().unwrap(), csv_db.to_str().unwrap()]);
    assert!(parity.status.success(), "{}", text(&parity));
    let o = btcbot(&["replay", "compact", csv_only.to_str().unwrap()]);
    assert!(
        text(&o).contains("2400 events"),
        "{}{}",
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );

    // Bad input: one line naming the file and line, non-zero, nothing half-written.
    for (body, needle) in [
        ("ts,symbol,bid,bid_qty,ask,ask_qty\n", ":1: header must be"),
        (
            "ts_ms,symbol,bid,bid_qty,ask,ask_qty\n1,BTCTRY,3500000,1,3500010,1\n0,BTCTRY,3500000,1,3500010,1\n",
            ":3: ts_ms 0 is before",
        ),
        (
            "ts_ms,symbol,bid,bid_qty,ask,ask_qty\n1,BTCTRY,abc,1,3500010,1\n",
            ":2: bid:",
        ),
        (
            "ts_ms,symbol,bid,bid_qty,ask,ask_qty\n1,BTCTRY,3500010,1,3500000,1\n",
            ":2: crossed book",
        ),
        (
            "ts_ms,symbol,bid,bid_qty,ask,ask_qty\n1,DOGETRY,1,1,2,1\n",
            ":2: symbol DOGETRY is not in the exchange info",
        ),
    ] {
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, body).unwrap();
        let out = dir.join("bad-dataset");
        let o = btcbot(&[
            "replay",
            "import",
            "--quotes",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{body}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!out.join("manifest.json").exists());
    }
}

#[test]
fn rules_diff_lists_exactly_the_intents_a_tighter_limit_rejects() {
    use rust_decimal::Decimal;
    use std::str::FromStr;
    let base = Fixture::new();
    let tight = Fixture::new();
    tight.edit_config(
        "risk.yaml",
        "max_position_notional: 5000",
        "max_position_notional: 2000",
    );
    tight.edit_config("rules.yaml", "tests: tests", "tests: none-for-this-copy");
    let keep = base.tmp.path().join("diff");
    let diff = |config: &std::path::Path, candidate: &std::path::Path, more: &[&str]| {
        let mut args = vec![
            "rules",
            "diff",
            "--config",
            config.to_str().unwrap(),
            "--candidate",
            candidate.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        btcbot(&args)
    };
    let o = diff(
        &base.config,
        &tight.config,
        &[
            "--format",
            "json",
            "--fail-on",
            "loosen",
            "--keep",
            keep.to_str().unwrap(),
        ],
    );
    assert!(
        o.status.success(),
        "a tighter limit loosens nothing: {}",
        text(&o)
    );
    let report: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
    let tightened = &report["same_inputs"]["tightened"];
    assert_eq!(report["same_inputs"]["loosened"], serde_json::json!({}));
    // Without --keep the runs skip what only explain, parity and a restart read; the report
    // is the same. What --keep kept is whole.
    let thrown = diff(&base.config, &tight.config, &["--format", "json"]);
    assert!(thrown.status.success(), "{}", text(&thrown));
    let thrown: serde_json::Value = serde_json::from_str(&text(&thrown)).unwrap();
    assert_eq!(thrown, report, "the same report with and without --keep");
    // A window of the data: both replays run only its cycles (one a second, 30 minutes).
    let windowed = diff(
        &base.config,
        &tight.config,
        &[
            "--format",
            "json",
            "--from",
            "2026-01-01T00:30:00Z",
            "--to",
            "2026-01-01T00:59:59Z",
        ],
    );
    assert!(windowed.status.success(), "{}", text(&windowed));
    let windowed: serde_json::Value = serde_json::from_str(&text(&windowed)).unwrap();
    assert_eq!(windowed["same_inputs"]["cycles"], 1800, "{windowed}");
    assert!(
        windowed["intents"]["base"].as_u64() < report["intents"]["base"].as_u64(),
        "{windowed}"
    );
    // A candidate copied elsewhere, its relative dataset path no longer resolving: given
    // --dataset, the diff never reads that path; without it, one line names the key.
    let sample = common::repo_root().join("data/replay/sample");
    let bot_yaml = tight.read_config("bot.yaml");
    let moved: String = bot_yaml
        .lines()
        .map(|line| match line.trim_start().starts_with("dataset:") {
            true => "  dataset: ../no/such/dataset\n".to_string(),
            false => format!("{line}\n"),
        })
        .collect();
    assert!(moved.contains("../no/such/dataset"), "{moved}");
    tight.write_config("bot.yaml", &moved);
    let given = diff(
        &base.config,
        &tight.config,
        &["--format", "json", "--dataset", sample.to_str().unwrap()],
    );
    assert!(
        given.status.success(),
        "{}",
        String::from_utf8_lossy(&given.stderr)
    );
    let given: serde_json::Value = serde_json::from_str(&text(&given)).unwrap();
    assert_eq!(given["same_inputs"], report["same_inputs"]);
    let bt = backtest(
        &tight.config,
        &tight.tmp.path().join("moved.db"),
        &["--dataset", sample.to_str().unwrap()],
    );
    assert!(bt.contains("cycles"), "{bt}");
    let missing = diff(&tight.config, &base.config, &[]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("bot.yaml: exchange.dataset: dataset directory")
            && err.contains("no/such/dataset"),
        "{err}"
    );
    tight.write_config("bot.yaml", &bot_yaml);
    for db in ["base.db", "candidate.db"] {
        let kept = btcbot::store::Store::open_read_only(&keep.join(db)).unwrap();
        let cycles = kept.cycles().unwrap();
        assert!(!cycles.is_empty());
        assert!(cycles.iter().all(|c| c.fingerprint.len() == 32), "{db}");
        let explain = btcbot(&[
            "explain",
            "--db",
            keep.join(db).to_str().unwrap(),
            "--cycle",
            &cycles[cycles.len() / 2].cycle_id.to_string(),
        ]);
        assert!(explain.status.success(), "{db}: {}", text(&explain));
        let shown = text(&explain);
        assert!(shown.contains("inputs:"), "{db}: {shown}");
        assert!(!shown.contains("not recorded"), "{db}: {shown}");
    }

    // Independently: the base run's accepted buys that a 2,000 TRY position limit refuses,
    // i.e. position notional (qty × the cycle's mark) + the intent's notional > 2,000.
    let store = btcbot::store::Store::open_read_only(&keep.join("base.db")).unwrap();
    let snapshots: std::collections::BTreeMap<i64, Vec<serde_json::Value>> = store
        .equity_snapshots()
        .unwrap()
        .into_iter()
        .map(|s| (s.cycle_id, serde_json::from_str(&s.positions_json).unwrap()))
        .collect();
    let d = |v: &serde_json::Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    let expected = store
        .decisions(None)
        .unwrap()
        .into_iter()
        .filter(|r| r.side.as_str() == "buy" && (r.verdict == "accept" || r.verdict == "resize"))
        .filter(|r| {
            let held: Decimal = snapshots[&r.cycle_id]
                .iter()
                .filter(|p| p["symbol"] == r.symbol.as_str())
                .map(|p| d(&p["qty"]) * d(&p["mark"]))
                .sum();
            held + r.price * r.qty > Decimal::from(2000)
        })
        .count();
    assert!(
        expected > 0,
        "the sample never comes near the tighter limit"
    );
    assert_eq!(
        tightened,
        &serde_json::json!({ "MAX_POSITION_NOTIONAL": expected }),
        "the candidate's extra rejections on the same inputs"
    );
    // The reverse change loosens, and the gate says so.
    let loosen = diff(&tight.config, &base.config, &["--fail-on", "loosen"]);
    assert_eq!(loosen.status.code(), Some(1), "{}", text(&loosen));
    // Even with the kill switch on where the gate runs: a replay places no order, so it does
    // not read the switch (which would make both runs observe_only and hide the loosening).
    let killed = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["rules", "diff", "--fail-on", "loosen", "--config"])
        .arg(&tight.config)
        .arg("--candidate")
        .arg(&base.config)
        .env("BTCBOT_KILL_SWITCH", "1")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), Some(1), "{}", text(&killed));
    assert_eq!(text(&killed), text(&loosen));
    assert!(text(&loosen).contains("loosened:   "), "{}", text(&loosen));
    assert!(
        text(&loosen).contains("MAX_POSITION_NOTIONAL="),
        "{}",
        text(&loosen)
    );
}

#[test]
fn the_bench_command_runs_end_to_end_on_a_small_size() {
    let f = Fixture::new();
    let dir = f.tmp.path().join("bench");
    let o = btcbot(&[
        "bench",
        "--quotes",
        "4000",
        "--config",
        f.config.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = text(&o);
    assert_eq!(out.matches("events/s").count(), 2, "{out}");
    assert!(out.contains("4000 quotes,      20 cycles"), "{out}");
    assert!(out.contains("peak RSS") && out.contains(" MB"), "{out}");
    assert!(out.contains("per-cycle rate at 10x the run"), "{out}");
    // The rules' own time per replayed cycle, read back from each cycle-level run's database.
    let rules_lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("rules per cycle in this replay: median "))
        .collect();
    assert_eq!(rules_lines.len(), 2, "{out}");
    for line in rules_lines {
        let median: u64 = line
            .split("median ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no median in {line:?}"));
        assert!(median > 0, "{line}");
        assert!(line.contains("% of the backtest"), "{line}");
    }
    assert!(
        out.contains("rules diff (candidate: max_position_notional 5000 -> 2000):")
            && out.contains("x the backtest over 3 interleaved pairs"),
        "{out}"
    );
    let pairs = out.lines().filter(|l| l.contains("  pair ")).count();
    assert_eq!(pairs, 3, "{out}");
    assert_eq!(out.matches("; import ").count(), 2, "{out}");

    // Run again in the same directory: the datasets are reused only for the same recipe.
    let again = |seed: &str| {
        let o = btcbot(&[
            "bench",
            "--quotes",
            "4000",
            "--diff-pairs",
            "1",
            "--seed",
            seed,
            "--config",
            f.config.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        text(&o)
    };
    let same = again("7");
    assert_eq!(
        same.matches("dataset of an earlier run reused").count(),
        2,
        "{same}"
    );
    let other = again("8");
    assert_eq!(
        other.matches("; import ").count(),
        2,
        "another seed is new data: {other}"
    );
}

#[test]
fn a_backtest_stopped_by_sigterm_exits_cleanly_with_every_cycle_it_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = tmp.path().join("long");
    let synth = btcbot(&[
        "replay",
        "synth",
        "--events",
        "400000",
        "--out",
        dataset.to_str().unwrap(),
    ]);
    assert!(synth.status.success(), "{}", text(&synth));
    let db = tmp.path().join("stopped.db");
    let child = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["backtest", "--dataset"])
        .arg(&dataset)
        .arg("--out")
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Cycles are committed 256 at a time: wait until the first group is visible, then stop it.
    let committed = |db: &Path| {
        btcbot::store::Store::open_read_only(db)
            .ok()
            .and_then(|s| s.last_cycle_id().ok().flatten())
            .unwrap_or(0)
    };
    let started = std::time::Instant::now();
    while committed(&db) < 256 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no cycle group committed within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "SIGTERM must end the backtest cleanly: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary counts the cycles it ran; every one of them is stored, the last group included.
    let summary = text(&out);
    let cycles: i64 = summary
        .lines()
        .find_map(|l| l.strip_prefix("cycles:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cycle count in:\n{summary}"));
    assert!(cycles >= 256, "{summary}");
    assert_eq!(committed(&db), cycles, "{summary}");
    let all = btcbot(&["parity", db.to_str().unwrap(), db.to_str().unwrap()]);
    assert!(all.status.success(), "{}", text(&all));
}

#[test]
fn a_paper_config_replays_over_a_recorded_dataset_from_given_balances() {
    // The runbook's way to prove a change: the config that trades (a BTCTurk venue) and an
    // edited copy, both replayed over recorded data.
    let tmp = tempfile::tempdir().unwrap();
    let root = common::repo_root();
    let sample = root.join("data/replay/sample");
    let paper = |name: &str| {
        let dir = tmp.path().join(name);
        common::copy_dir(&root.join("configs/paper"), &dir);
        let rules_yaml = std::fs::read_to_string(dir.join("rules.yaml")).unwrap();
        let rules_dir = format!("dir: '{}'", root.join("rules").display());
        std::fs::write(
            dir.join("rules.yaml"),
            rules_yaml.replace("dir: ../../rules", &rules_dir),
        )
        .unwrap();
        dir
    };
    let base = paper("base");
    let candidate = paper("candidate");
    let edit = |file: &str, from: &str, to: &str| {
        let path = candidate.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit(
        "risk.yaml",
        "max_position_notional: 5000",
        "max_position_notional: 2000",
    );
    edit("rules.yaml", "tests: tests", "tests: none-for-this-copy");
    let (base_s, sample_s) = (base.to_str().unwrap(), sample.to_str().unwrap());
    let db = tmp.path().join("paper.db");

    let without = btcbot(&[
        "backtest",
        "--config",
        base_s,
        "--dataset",
        sample_s,
        "--out",
        db.to_str().unwrap(),
    ]);
    assert_eq!(without.status.code(), Some(2));
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(
        err.contains("base/bot.yaml: exchange.kind is btcturk")
            && err.contains("--balance ASSET=AMOUNT"),
        "{err}"
    );
    let bad = btcbot(&[
        "backtest",
        "--config",
        base_s,
        "--balance",
        "TRY=-5",
        "--out",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("a balance cannot be negative"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // The live bot's kill switch file does not stop a study of recorded data.
    std::fs::write(base.join("KILL"), "").unwrap();
    let summary = backtest(
        &base,
        &db,
        &["--dataset", sample_s, "--balance", "TRY=10000"],
    );
    assert!(summary.contains("modes:      normal="), "{summary}");
    assert!(summary.contains("equity:     10000 → "), "{summary}");
    assert!(summary.contains("filled="), "the replay traded: {summary}");

    let diff = btcbot(&[
        "rules",
        "diff",
        "--config",
        base_s,
        "--candidate",
        candidate.to_str().unwrap(),
        "--dataset",
        sample_s,
        "--balance",
        "TRY=10000",
        "--format",
        "json",
        "--fail-on",
        "loosen",
    ]);
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text(&diff)).unwrap();
    let tightened = report["same_inputs"]["tightened"].as_object().unwrap();
    assert_eq!(
        tightened.keys().collect::<Vec<_>>(),
        ["MAX_POSITION_NOTIONAL"]
    );
    assert!(tightened["MAX_POSITION_NOTIONAL"].as_u64() > Some(0));
    assert_eq!(report["same_inputs"]["loosened"], serde_json::json!({}));
}
