//! The bot runs in a loop on replayed data while its rules are edited on disk: a tightened limit
//! shows in verdicts and the rule hash within a few cycles; a syntax error keeps the old rules
//! deciding and records a failed reload; fixing it recovers.

mod common;

use common::Fixture;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Bot(Child);
impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Polls `query` (returning one optional value) until `accept` holds or `limit` passes.
fn wait_for<T>(
    db: &Path,
    limit: Duration,
    what: &str,
    mut probe: impl FnMut(&Connection) -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if db.exists()
            && let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            && let Some(v) = probe(&conn)
        {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn max_cycle(conn: &Connection) -> i64 {
    conn.query_row("SELECT COALESCE(MAX(cycle_id), 0) FROM cycles", [], |r| {
        r.get(0)
    })
    .unwrap_or(0)
}

#[test]
fn rules_edited_on_disk_are_picked_up_between_cycles_and_bad_edits_keep_the_old_rules() {
    // The rule tests are left out: the edits below change verdicts those tests pin, and a reload
    // whose rule tests fail is (rightly) refused.
    let fixture = Fixture::without_rule_tests();
    let (cfg, rules) = (&fixture.config, &fixture.rules);
    let db = fixture.tmp.path().join("bot.db");
    let child = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["run", "--speed", "100", "--config"])
        .arg(cfg)
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(fixture.tmp.path().join("bot.log")).unwrap())
        .spawn()
        .unwrap();
    let _bot = Bot(child);
    let limit = Duration::from_secs(60);

    // The original rules decide some intents.
    let original_hash: String = wait_for(&db, limit, "first decisions", |c| {
        c.query_row("SELECT rule_hash FROM decisions LIMIT 1", [], |r| r.get(0))
            .optional()
            .ok()
            .flatten()
    });

    // Tighten a limit: every intent above 1 TRY is now rejected with a new reason code.
    let risk = rules.join("risk.rhai");
    let good = std::fs::read_to_string(&risk).unwrap();
    let tightened = good.replacen(
        "fn risk(intent, ctx) {",
        "fn risk(intent, ctx) {\n    if intent.notional > 1 { return reject(\"TEST_TIGHT_NOTIONAL\"); }",
        1,
    );
    assert_ne!(tightened, good);
    let edited_at = wait_for(&db, limit, "a cycle", |c| Some(max_cycle(c)));
    std::fs::write(&risk, &tightened).unwrap();
    let (tight_hash, first_tight_cycle): (String, i64) = wait_for(
        &db,
        limit,
        "the tightened rules deciding",
        |c| {
            c.query_row(
            "SELECT rule_hash, cycle_id FROM decisions WHERE reason_code = 'TEST_TIGHT_NOTIONAL' ORDER BY cycle_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .ok()
        .flatten()
        },
    );
    assert_ne!(tight_hash, original_hash);
    assert!(first_tight_cycle > edited_at);
    let loose_after: i64 = read_only(&db)
        .query_row(
            "SELECT COUNT(*) FROM decisions WHERE rule_hash = ?1 AND verdict != 'reject'",
            [&tight_hash],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(loose_after, 0, "the tightened rules accepted an intent");

    // A syntax error: the reload fails, is recorded, and the tightened rules keep deciding.
    std::fs::write(&risk, format!("{tightened}\nfn broken( {{")).unwrap();
    let error: String = wait_for(&db, limit, "a failed reload row", |c| {
        c.query_row(
            "SELECT error FROM rule_reloads WHERE ok = 0 LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .ok()
        .flatten()
    });
    assert!(
        error.contains("risk.rhai:"),
        "error should name file:line, got {error}"
    );
    let failed_at = max_cycle(&read_only(&db));
    wait_for(&db, limit, "more cycles after the failed reload", |c| {
        (max_cycle(c) > failed_at + 20).then_some(())
    });
    let hashes_after_failure: Vec<String> = {
        let conn = read_only(&db);
        let mut stmt = conn
            .prepare("SELECT DISTINCT rule_hash FROM cycles WHERE cycle_id > ?1")
            .unwrap();
        stmt.query_map([failed_at], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(hashes_after_failure, vec![tight_hash.clone()]);

    // Fixing the file recovers: the original rules (and hash) decide again.
    std::fs::write(&risk, &good).unwrap();
    wait_for(&db, limit, "recovery to the original rules", |c| {
        c.query_row(
            "SELECT cycle_id FROM cycles WHERE rule_hash = ?1 AND cycle_id > ?2 LIMIT 1",
            rusqlite::params![original_hash, failed_at],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .ok()
        .flatten()
    });
    let ok_reloads: i64 = read_only(&db)
        .query_row("SELECT COUNT(*) FROM rule_reloads WHERE ok = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        ok_reloads >= 2,
        "expected the tighten and the fix as good reloads"
    );
}

#[test]
fn a_reload_cannot_switch_the_loop_to_per_quote_and_a_per_quote_shadow_is_refused() {
    use arc_swap::ArcSwap;
    use btcbot::rules::watcher::{ReloadOutcome, SharedRules, reload_now};
    use std::sync::Arc;
    let f = Fixture::new();
    let shared: SharedRules = Arc::new(ArcSwap::from_pointee(
        btcbot::rules::RuleSet::build(&f.config).unwrap(),
    ));
    let before = shared.load().hash.clone();
    // The loop was chosen at start: switching it on disk keeps the running rules.
    f.edit_config(
        "bot.yaml",
        "  jitter_ms: 0",
        "  jitter_ms: 0\n  evaluate: per_quote",
    );
    match reload_now(&f.config, &shared) {
        ReloadOutcome::Failed { error } => assert!(
            error.ends_with("bot.yaml: cycle.evaluate changed; restart the bot to apply it"),
            "{error}"
        ),
        other => panic!("expected a refused reload, got {other:?}"),
    }
    assert_eq!(shared.load().hash, before);
    f.edit_config(
        "bot.yaml",
        "  jitter_ms: 0\n  evaluate: per_quote",
        "  jitter_ms: 0",
    );
    // Neither are the venue and the trading mode: a bot edited to dry_run must not go on
    // trading live as if the edit had taken, nor a dry run seem armed.
    let bot_yaml = f.read_config("bot.yaml");
    for (from, to, key) in [
        ("mode: dry_run", "mode: live", "mode"),
        ("TRY: \"20000\"", "TRY: \"30000\"", "exchange"),
    ] {
        assert!(bot_yaml.contains(from), "bot.yaml has no {from:?}");
        f.write_config("bot.yaml", &bot_yaml.replacen(from, to, 1));
        match reload_now(&f.config, &shared) {
            ReloadOutcome::Failed { error } => assert!(
                error.ends_with(&format!(
                    "bot.yaml: {key} changed; restart the bot to apply it"
                )),
                "{error}"
            ),
            other => panic!("{key}: expected a refused reload, got {other:?}"),
        }
        assert_eq!(shared.load().hash, before);
    }
    f.write_config("bot.yaml", &bot_yaml);
    assert!(matches!(
        reload_now(&f.config, &shared),
        ReloadOutcome::Unchanged { .. }
    ));

    // A per-quote pack as the shadow of a cycle would only ever look stricter: refused.
    let example = common::repo_root().join("configs/examples/ema-cross");
    let rules_yaml = format!(
        "{}shadow: {}\n",
        f.read_config("rules.yaml"),
        example.display()
    );
    f.write_config("rules.yaml", &rules_yaml);
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["run", "--once", "--no-watch", "--config"])
        .arg(&f.config)
        .arg("--db")
        .arg(f.tmp.path().join("shadow.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "its bot.yaml says cycle.evaluate: per_quote; a shadow is evaluated once per cycle"
        ),
        "{err}"
    );
}
