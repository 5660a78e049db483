//! Shadow mode end to end: the sample replay with a tighter candidate beside the default pack.
//! The candidate's extra rejections are recorded as "would have" rows, `report --shadow` and
//! `explain` show them, and the active run is identical to one without a shadow: the candidate
//! never places anything.

mod common;

use btcbot::report::shadow_summary;
use btcbot::store::Store;
use common::Fixture;
use std::path::Path;
use std::process::Command;

fn run(config: &Path, db: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["run", "--no-watch", "--speed", "max", "--config"])
        .arg(config)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cli(args: &[&str], db: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_tighter_shadow_records_its_extra_rejections_and_places_nothing() {
    let active = Fixture::new();
    let candidate = Fixture::new();
    candidate.edit_config(
        "risk.yaml",
        "max_position_notional: 5000",
        "max_position_notional: 2000",
    );
    // The pack's rule tests pin the default limits; the candidate is tighter on purpose.
    candidate.edit_config(
        "rules.yaml",
        "tests: tests",
        "tests: none-for-this-candidate",
    );

    let plain_db = active.tmp.path().join("plain.db");
    run(&active.config, &plain_db);
    let text = active.read_config("rules.yaml");
    active.write_config(
        "rules.yaml",
        &format!("{text}shadow: '{}'\n", candidate.config.display()),
    );
    let shadow_db = active.tmp.path().join("shadow.db");
    run(&active.config, &shadow_db);

    let (plain, shadowed) = (
        Store::open_read_only(&plain_db).unwrap(),
        Store::open_read_only(&shadow_db).unwrap(),
    );
    // The shadow changes nothing the bot does. (Fingerprints include the rule hash, which covers
    // rules.yaml and so its `shadow:` line; the decisions themselves are compared.)
    let decided = |s: &Store| -> Vec<String> {
        let cycles = s.cycles().unwrap().into_iter().map(|c| {
            format!(
                "{} {} {} {}",
                c.cycle_id,
                c.mode.as_str(),
                c.intents,
                c.orders_placed
            )
        });
        let decisions = s.decisions(None).unwrap().into_iter().map(|d| {
            format!(
                "{}#{} {} {} {} {} {} {}",
                d.cycle_id,
                d.seq,
                d.symbol.as_str(),
                d.side.as_str(),
                d.price,
                d.qty,
                d.reason_code,
                d.action
            )
        });
        cycles.chain(decisions).collect()
    };
    let (a, b) = (decided(&plain), decided(&shadowed));
    assert_eq!(a.len(), b.len(), "the shadow changed how much was decided");
    if let Some((x, y)) = a.iter().zip(&b).find(|(x, y)| x != y) {
        panic!("the shadow changed a decision: {x} vs {y}");
    }
    assert!(
        plain.orders().unwrap() == shadowed.orders().unwrap(),
        "orders differ"
    );
    assert!(
        plain.fills().unwrap() == shadowed.fills().unwrap(),
        "fills differ"
    );

    // Its own verdicts are recorded, every cycle.
    let cycles = shadowed.cycles().unwrap().len();
    assert_eq!(shadowed.shadow_cycles().unwrap().len(), cycles);
    let count = |rows: Vec<btcbot::store::DecisionRow>| {
        rows.iter()
            .filter(|d| d.reason_code == "MAX_POSITION_NOTIONAL")
            .count()
    };
    let active_rejections = count(shadowed.decisions(None).unwrap());
    let shadow_rejections = count(shadowed.shadow_decisions(None).unwrap());
    assert!(
        shadow_rejections > active_rejections,
        "the tighter limit should reject more: {shadow_rejections} vs {active_rejections}"
    );
    let summary = shadow_summary(&shadowed).unwrap();
    assert_eq!(summary.cycles_compared, cycles);
    assert!(
        summary
            .tightened
            .get("MAX_POSITION_NOTIONAL")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert!(summary.candidate_would_place < summary.active_placed);
    assert!(
        shadowed
            .shadow_decisions(None)
            .unwrap()
            .iter()
            .all(|d| d.action != "placed"),
        "a shadow row claims it placed an order"
    );

    // What an operator reads.
    let report = cli(&["report", "--shadow"], &shadow_db);
    assert!(report.contains("tightened:"), "{report}");
    assert!(report.contains("MAX_POSITION_NOTIONAL"), "{report}");
    let first = summary
        .examples
        .iter()
        .find(|e| e.contains("MAX_POSITION_NOTIONAL"))
        .and_then(|e| e.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    let explained = cli(&["explain", "--cycle", &first], &shadow_db);
    for needle in [
        "inputs:",
        "portfolio:",
        "intents:",
        "risk: ",
        "shadow (rules",
        "MAX_POSITION_NOTIONAL",
    ] {
        assert!(
            explained.contains(needle),
            "explain lacks {needle:?}:\n{explained}"
        );
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["explain", "--cycle", "999999", "--db"])
        .arg(&shadow_db)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cycle 999999 is not in this database")
    );
}
