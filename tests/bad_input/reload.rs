//! 4. A running bot (`reload_now` against a published set) keeps its last good rules.

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 4. A running bot keeps its last good rules
// ---------------------------------------------------------------------------------------------

/// Every file of the fixture, to restore after a broken edit.
struct Snapshot(Vec<(std::path::PathBuf, Vec<u8>)>);

fn snapshot(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            snapshot(&p, out);
        } else {
            out.push((p.clone(), std::fs::read(&p).expect("read")));
        }
    }
}

impl Snapshot {
    fn take(f: &Fixture) -> Snapshot {
        let mut files = Vec::new();
        snapshot(&f.config, &mut files);
        snapshot(&f.rules, &mut files);
        Snapshot(files)
    }
    /// Writes every saved file back and deletes files that were not there.
    fn restore(&self, f: &Fixture) {
        let now = Snapshot::take(f);
        for (p, _) in &now.0 {
            if !self.0.iter().any(|(q, _)| q == p) {
                std::fs::remove_file(p).expect("remove extra file");
            }
        }
        for (p, bytes) in &self.0 {
            std::fs::write(p, bytes).expect("restore");
        }
    }
}

/// A named way to break the pack: it edits the fixture and returns fragments the reload error
/// must hold (lines are computed from the files, so edits to the default pack do not break it).
type Breakage = (&'static str, fn(&Fixture) -> Vec<String>);

const IMPOSSIBLE_CASE: &str = "\
cases:
  - name: a buy with no cash is accepted
    input:
      markets: [{symbol: BTCTRY, bid: 3500000, ask: 3500100}]
      portfolio: {cash: 0}
      intents: [{symbol: BTCTRY, side: buy, price: 3500000, qty: 0.0002}]
    expect:
      verdicts: [ACCEPT]
";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn breakages() -> Vec<Breakage> {
    vec![
        ("risk.rhai syntax error", |f| {
            let line = f.rule_line("risk.rhai", "    let p = ctx.params;");
            f.edit_rule("risk.rhai", "    let p = ctx.params;\n", "    let p = ;\n");
            vec![format!("risk.rhai:{line}: "), "Unexpected ';'".into()]
        }),
        ("malformed bot.yaml", |f| {
            let line = f.config_line("bot.yaml", "symbols:");
            f.edit_config(
                "bot.yaml",
                "symbols: [BTCTRY, ETHTRY, AVAXTRY, USDTTRY]",
                "symbols: [BTCTRY, ETHTRY]]",
            );
            vec![format!("bot.yaml:{line}: ")]
        }),
        ("unknown key", |f| {
            let line = f.config_line("bot.yaml", "quote_asset:") + 1;
            f.edit_config(
                "bot.yaml",
                "quote_asset: TRY\n",
                "quote_asset: TRY\ncolour: blue\n",
            );
            vec![format!("bot.yaml:{line}: "), "`colour`".into()]
        }),
        ("wrong type", |f| {
            let line = f.config_line("risk.yaml", "max_open_orders:");
            f.edit_config(
                "risk.yaml",
                "  max_open_orders: 5\n",
                "  max_open_orders: lots\n",
            );
            vec![
                format!("risk.yaml:{line}: "),
                "limits.max_open_orders".into(),
            ]
        }),
        ("negative limit", |f| {
            f.edit_config(
                "risk.yaml",
                "max_order_notional: 3000",
                "max_order_notional: -5",
            );
            strings(&["risk.yaml", "limits.max_order_notional", "must be > 0"])
        }),
        ("import", |f| {
            let text = f.read_rule("risk.rhai");
            f.write_rule("risk.rhai", &format!("import \"x\";\n{text}"));
            strings(&["risk.rhai:1: ", "import"])
        }),
        ("missing entry function", |f| {
            f.edit_rule("strategy.rhai", "fn strategy(", "fn strategi(");
            strings(&["strategy.rhai", "`fn strategy(ctx)`"])
        }),
        ("a rule test that cannot pass", |f| {
            f.write_rule("tests/zz_impossible.yaml", IMPOSSIBLE_CASE);
            strings(&[
                "rule tests failed",
                "zz_impossible.yaml [a buy with no cash is accepted]",
                "CASH_TARGET",
            ])
        }),
        ("a malformed rule test file", |f| {
            f.write_rule(
                "tests/zz_bad.yaml",
                "cases:\n  - name: x\n    input: {markets: [}\n",
            );
            strings(&["zz_bad.yaml:3: "])
        }),
        ("risk.rhai that loops forever", |f| {
            f.edit_rule(
                "risk.rhai",
                "    let mode = ctx.mode;\n",
                "    let mode = ctx.mode;\n    loop {}\n",
            );
            f.set_sandbox("max_operations", "20000");
            strings(&["rule tests failed", "RISK_RULE_ERROR"])
        }),
        ("a misspelt guard", |f| {
            f.edit_rule(
                "risk.rhai",
                "min(l.max_order_notional, remaining_cap)",
                "min(l.max_order_notionall, remaining_cap)",
            );
            strings(&["rule tests failed", "max_order_notionall"])
        }),
        ("degrade returning a string", |f| {
            f.write_rule(
                "degrade.rhai",
                "fn degrade(anomalies, ctx) { \"normal\" }\n",
            );
            strings(&[
                "rule tests failed",
                "mode: expected normal, got observe_only",
            ])
        }),
    ]
}

fn assert_still_decides(shared: &SharedRules, good_hash: &str) {
    let set = shared.load();
    assert_eq!(set.hash, good_hash, "the published set changed");
    let d = decide(&set, &btctry_input("10000", Some(vec![small_buy()])));
    assert_eq!(d.rule_hash, good_hash);
    assert_eq!(d.judged[0].verdict, Verdict::Accept, "{:?}", d.anomalies);
}

#[test]
fn reload_keeps_the_last_good_rules_through_every_breakage() {
    let f = Fixture::new();
    let good = RuleSet::build(&f.config).expect("the default pack builds");
    let good_hash = good.hash.clone();
    let shared: SharedRules = Arc::new(ArcSwap::from_pointee(good));
    let saved = Snapshot::take(&f);

    for (name, break_it) in breakages() {
        let needles = break_it(&f);
        match reload_now(&f.config, &shared) {
            ReloadOutcome::Failed { error } => {
                for n in &needles {
                    assert!(error.contains(n), "{name}: expected {n:?} in:\n{error}");
                }
            }
            other => panic!("{name}: a broken pack must not load, got {other:?}"),
        }
        assert_still_decides(&shared, &good_hash);

        saved.restore(&f);
        match reload_now(&f.config, &shared) {
            ReloadOutcome::Unchanged { hash } | ReloadOutcome::Applied { hash } => {
                assert_eq!(hash, good_hash, "{name}: restored files, different hash")
            }
            ReloadOutcome::Failed { error } => panic!("{name}: restored pack failed:\n{error}"),
        }
        assert_still_decides(&shared, &good_hash);
    }
}

#[test]
fn reload_applies_a_good_change_and_then_keeps_it_through_a_bad_one() {
    // Control for the test above: the reload path does publish valid changes.
    let f = Fixture::new();
    let good = RuleSet::build(&f.config).expect("build");
    let first_hash = good.hash.clone();
    let shared: SharedRules = Arc::new(ArcSwap::from_pointee(good));

    // A change no rule test pins (they pin every risk threshold, as they should).
    f.edit_config(
        "rules.yaml",
        "max_string_size: 16384",
        "max_string_size: 16385",
    );
    let second_hash = match reload_now(&f.config, &shared) {
        ReloadOutcome::Applied { hash } => hash,
        other => panic!("a valid change must apply, got {other:?}"),
    };
    assert_ne!(second_hash, first_hash);
    assert_eq!(shared.load().hash, second_hash);
    assert_eq!(shared.load().config.rules.sandbox.max_string_size, 16385);

    f.edit_config("risk.yaml", "cooldown_s: 60", "cooldown_s: -61");
    assert!(matches!(
        reload_now(&f.config, &shared),
        ReloadOutcome::Failed { .. }
    ));
    assert_eq!(shared.load().hash, second_hash, "kept the newer good set");
    assert_eq!(shared.load().config.rules.sandbox.max_string_size, 16385);
}
