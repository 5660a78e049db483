//! Bad input gets a clear error and loses nothing.
//!
//! Every case runs on a temp copy of `configs/default` + `rules/` (see `common`):
//! 1. config errors, through `RuleSet::build` (the reload path) and through `btcbot rules check`;
//! 2. script errors caught when the rule set is built;
//! 3. script errors at run time, which fail closed inside `decide`;
//! 4. a running bot (`reload_now` against a published set) keeps its last good rules through all
//!    of the above.
//!
//! The last section holds regressions for holes found while writing this file (unbounded
//! sandbox limits, `()` and quoted numbers in guards, unchecked state growth, params errors
//! without their key).

mod common;

use arc_swap::ArcSwap;
use btcbot::config::ConfigError;
use btcbot::domain::{Mode, Side, Verdict};
use btcbot::engine::decide::{Decision, decide};
use btcbot::rules::sandbox::ScriptError;
use btcbot::rules::watcher::{ReloadOutcome, SharedRules, reload_now};
use btcbot::rules::{RuleSet, RuleSetError};
use common::{Fixture, btctry_input, intent, small_buy};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn build_error(f: &Fixture) -> RuleSetError {
    match RuleSet::build(&f.config) {
        Ok(set) => panic!("expected the build to fail, got rule set {}", set.hash),
        Err(e) => e,
    }
}

fn config_errors(f: &Fixture) -> Vec<ConfigError> {
    match build_error(f) {
        RuleSetError::Config(e) => e.0,
        other => panic!("expected config errors, got {other:?}"),
    }
}

fn script_errors(f: &Fixture) -> Vec<ScriptError> {
    match build_error(f) {
        RuleSetError::Script(e) => e,
        other => panic!("expected script errors, got {other:?}"),
    }
}

/// The one config error; fails if there are more or fewer.
fn only_config_error(f: &Fixture) -> ConfigError {
    let mut errors = config_errors(f);
    assert_eq!(errors.len(), 1, "expected exactly one error: {errors:#?}");
    errors.remove(0)
}

fn ends_with_file(e: &ConfigError, name: &str) {
    assert!(
        Path::new(&e.file).file_name().is_some_and(|n| n == name),
        "error should name {name}: {e}"
    );
}

struct CheckRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the real binary: `btcbot rules check --config DIR`.
fn rules_check(dir: &Path) -> CheckRun {
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["rules", "check", "--config"])
        .arg(dir)
        .env_remove("BTCBOT_LOG")
        .output()
        .expect("run btcbot");
    let run = CheckRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("overflowed its stack"),
        "btcbot crashed:\n{}",
        run.stderr
    );
    run
}

/// `rules check` must exit 1 and print exactly one `error: ` line per expected error, each line
/// holding every fragment of its entry (in any order of lines).
fn assert_check_fails(f: &Fixture, expected: &[&[&str]]) {
    let run = rules_check(&f.config);
    assert_eq!(
        run.code,
        Some(1),
        "rules check should exit 1\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stdout.contains("ok:"),
        "a failed check must not print ok: {}",
        run.stdout
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "expected {} error lines, got:\n{}",
        expected.len(),
        run.stderr
    );
    for fragments in expected {
        assert!(
            lines
                .iter()
                .any(|l| fragments.iter().all(|frag| l.contains(frag))),
            "no error line holds all of {fragments:?}:\n{}",
            run.stderr
        );
    }
}

fn decide_with(f: &Fixture, intents: Option<Vec<btcbot::domain::Intent>>) -> (Decision, Duration) {
    let set = RuleSet::build(&f.config).unwrap_or_else(|e| panic!("build failed:\n{e}"));
    let input = btctry_input("10000", intents);
    let started = Instant::now();
    let d = decide(&set, &input);
    (d, started.elapsed())
}

/// The `error` detail of every RULE_ERROR anomaly raised by `stage`.
fn rule_errors(d: &Decision, stage: &str) -> Vec<String> {
    d.anomalies
        .iter()
        .filter(|a| a.code == "RULE_ERROR")
        .filter(|a| a.detail.iter().any(|(k, v)| k == "script" && v == stage))
        .map(|a| {
            a.detail
                .iter()
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// The one intent was rejected with RISK_RULE_ERROR and risk raised one RULE_ERROR holding
/// every fragment of `needles`.
fn assert_risk_rule_error(d: &Decision, needles: &[&str]) {
    assert_eq!(d.judged.len(), 1, "one intent judged: {:?}", d.judged);
    assert_eq!(
        d.judged[0].verdict,
        Verdict::Reject {
            reason: "RISK_RULE_ERROR".into()
        },
        "a failing risk rule must reject (anomalies: {:?})",
        d.anomalies
    );
    let errors = rule_errors(d, "risk");
    assert_eq!(errors.len(), 1, "one risk RULE_ERROR: {:?}", d.anomalies);
    for n in needles {
        assert!(
            errors[0].contains(n),
            "risk error should contain {n:?}: {}",
            errors[0]
        );
    }
}

/// A risk.rhai that is the given body.
fn risk_script(body: &str) -> String {
    format!("fn risk(intent, ctx) {{\n{body}\n}}\n")
}

/// Control: the unmodified rule pack accepts `small_buy` on `btctry_input("10000")`, so a test
/// that sees a rejection knows the modification caused it.
#[test]
fn control_default_pack_builds_checks_and_accepts_a_small_buy() {
    let f = Fixture::new();
    let run = rules_check(&f.config);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(run.stdout.starts_with("ok: rules "), "{}", run.stdout);
    let (d, _) = decide_with(&Fixture::without_rule_tests(), Some(vec![small_buy()]));
    assert_eq!(d.judged.len(), 1);
    assert_eq!(d.judged[0].verdict, Verdict::Accept);
    assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
    assert_eq!(d.mode, Mode::Normal);
}

// ---------------------------------------------------------------------------------------------
// 1. Config errors
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_yaml_names_the_file_and_the_line() {
    // An unbalanced `]` on the `symbols:` line of bot.yaml.
    let f = Fixture::new();
    let line = f.config_line("bot.yaml", "symbols:");
    f.edit_config(
        "bot.yaml",
        "symbols: [BTCTRY, ETHTRY, AVAXTRY, USDTTRY]",
        "symbols: [BTCTRY, ETHTRY]]",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "bot.yaml");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains("did not find expected key"), "{e}");
    let at = format!("bot.yaml:{line}: ");
    assert!(e.to_string().contains(&at), "{e}");
    assert_check_fails(&f, &[&[&at, "did not find expected key"]]);

    // An unterminated quote in risk.yaml: the parser runs to the end of the stream.
    let f = Fixture::new();
    f.edit_config(
        "risk.yaml",
        "  max_open_orders: 5\n",
        "  max_open_orders: \"5\n",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "risk.yaml");
    assert!(e.line.is_some(), "a YAML syntax error carries a line: {e}");
    assert!(e.message.contains("end of stream"), "{e}");
    assert_check_fails(&f, &[&["risk.yaml:", "end of stream"]]);
}

#[test]
fn unknown_key_names_the_file_and_the_key() {
    let f = Fixture::new();
    let line = f.config_line("bot.yaml", "quote_asset:") + 1;
    f.edit_config(
        "bot.yaml",
        "quote_asset: TRY\n",
        "quote_asset: TRY\ncolour: blue\n",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "bot.yaml");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains("unknown field `colour`"), "{e}");
    let at = format!("bot.yaml:{line}: ");
    assert_check_fails(&f, &[&[&at, "unknown field `colour`"]]);

    // A misspelt limit is not silently ignored (nor defaulted): it is an unknown key.
    let f = Fixture::new();
    let line = f.config_line("risk.yaml", "max_order_notional:");
    f.edit_config(
        "risk.yaml",
        "max_order_notional: 3000",
        "max_order_notionall: 3000",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "risk.yaml");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(
        e.message
            .contains("limits: unknown field `max_order_notionall`"),
        "{e}"
    );

    // A misspelt sandbox limit likewise.
    let f = Fixture::new();
    let line = f.config_line("rules.yaml", "max_map_size:") + 1;
    f.edit_config(
        "rules.yaml",
        "  max_map_size: 1000",
        "  max_map_size: 1000\n  max_operation: 5",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "rules.yaml");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(
        e.message.contains("sandbox: unknown field `max_operation`"),
        "{e}"
    );
    let at = format!("rules.yaml:{line}: ");
    assert_check_fails(&f, &[&[&at, "`max_operation`"]]);
}

#[test]
fn wrong_type_names_the_file_line_and_key() {
    let f = Fixture::new();
    let line = f.config_line("risk.yaml", "max_open_orders:");
    f.edit_config(
        "risk.yaml",
        "  max_open_orders: 5\n",
        "  max_open_orders: lots\n",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "risk.yaml");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(
        e.message
            .contains("limits.max_open_orders: invalid value: string \"lots\""),
        "{e}"
    );
    let at = format!("risk.yaml:{line}: ");
    assert_check_fails(&f, &[&[&at, "limits.max_open_orders", "\"lots\""]]);

    // A negative number where an unsigned one is expected is a type error, not a wrap-around.
    let f = Fixture::new();
    let line = f.config_line("rules.yaml", "timeout_ms:");
    f.edit_config("rules.yaml", "  timeout_ms: 100 ", "  timeout_ms: -5 ");
    let e = only_config_error(&f);
    ends_with_file(&e, "rules.yaml");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains("sandbox.timeout_ms"), "{e}");
    assert!(e.message.contains("-5"), "{e}");

    // A null script parameter is refused (its key and line: `bad_param_value_names_its_key_and_line`).
    let f = Fixture::new();
    f.edit_config(
        "risk.yaml",
        "  min_profit_bps: 30\n",
        "  min_profit_bps: 30\n  spare: ~\n",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "risk.yaml");
    assert!(e.line.is_some(), "{e}");
    assert!(e.message.contains("null is not a parameter value"), "{e}");
}

#[test]
fn negative_or_zero_limit_is_refused_with_file_and_key() {
    let f = Fixture::new();
    f.edit_config(
        "risk.yaml",
        "max_order_notional: 3000",
        "max_order_notional: -5",
    );
    let e = only_config_error(&f);
    ends_with_file(&e, "risk.yaml");
    assert_eq!(e.key.as_deref(), Some("limits.max_order_notional"));
    let shown = e.to_string();
    assert!(
        shown.contains("risk.yaml: limits.max_order_notional: must be > 0, got -5"),
        "{shown}"
    );
    assert_check_fails(
        &f,
        &[&["risk.yaml", "limits.max_order_notional", "must be > 0"]],
    );

    // Zero is not "disabled": every limit must be > 0.
    let f = Fixture::new();
    f.edit_config("risk.yaml", "cash_target: 300", "cash_target: 0");
    let e = only_config_error(&f);
    assert_eq!(e.key.as_deref(), Some("limits.cash_target"));
    assert!(e.message.contains("must be > 0, got 0"), "{e}");

    // Nor is a zero sandbox limit.
    let f = Fixture::new();
    f.set_sandbox("max_operations", "0");
    let e = only_config_error(&f);
    ends_with_file(&e, "rules.yaml");
    assert_eq!(e.key.as_deref(), Some("sandbox.max_operations"));
    assert!(e.message.contains("must be > 0"), "{e}");
}

#[test]
fn several_errors_are_all_reported_each_on_its_own_line() {
    let f = Fixture::new();
    f.edit_config(
        "risk.yaml",
        "max_order_notional: 3000",
        "max_order_notional: -5",
    );
    f.edit_config("risk.yaml", "max_daily_loss: 1000", "max_daily_loss: -1");
    f.edit_config(
        "rules.yaml",
        "degrade_on_error: observe_only",
        "degrade_on_error: sometimes",
    );
    let errors = config_errors(&f);
    let keys: Vec<Option<&str>> = errors.iter().map(|e| e.key.as_deref()).collect();
    assert_eq!(
        keys,
        vec![
            Some("limits.max_order_notional"),
            Some("limits.max_daily_loss"),
            Some("degrade_on_error"),
        ],
        "{errors:#?}"
    );
    assert_check_fails(
        &f,
        &[
            &[
                "risk.yaml",
                "limits.max_order_notional",
                "must be > 0, got -5",
            ],
            &["risk.yaml", "limits.max_daily_loss", "must be > 0, got -1"],
            &["rules.yaml", "degrade_on_error", "\"sometimes\""],
        ],
    );

    // A parse error in one file does not hide a validation error in another.
    let f = Fixture::new();
    let at = format!(
        "bot.yaml:{}: ",
        f.config_line("bot.yaml", "quote_asset:") + 1
    );
    f.edit_config(
        "bot.yaml",
        "quote_asset: TRY\n",
        "quote_asset: TRY\ncolour: blue\n",
    );
    f.edit_config("risk.yaml", "cooldown_s: 60", "cooldown_s: -60");
    f.edit_config(
        "rules.yaml",
        "degrade_on_error: observe_only",
        "degrade_on_error: normal",
    );
    assert_eq!(config_errors(&f).len(), 3);
    assert_check_fails(
        &f,
        &[
            &[&at, "`colour`"],
            &["risk.yaml", "limits.cooldown_s", "must be > 0"],
            &["rules.yaml", "degrade_on_error", "more careful than normal"],
        ],
    );
}

#[test]
fn missing_file_or_directory_is_an_error_not_a_panic() {
    let f = Fixture::new();
    std::fs::remove_file(f.config_path("risk.yaml")).expect("remove risk.yaml");
    let e = only_config_error(&f);
    ends_with_file(&e, "risk.yaml");
    assert!(e.message.contains("cannot read"), "{e}");
    assert_check_fails(&f, &[&["risk.yaml", "cannot read"]]);

    let f = Fixture::new();
    f.write_config("risk.yaml", "");
    let e = only_config_error(&f);
    assert!(e.message.contains("missing field `limits`"), "{e}");

    let f = Fixture::new();
    let nowhere = f.tmp.path().join("no-such-dir");
    let run = rules_check(&nowhere);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("config directory not found"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Script errors when the rule set is built
// ---------------------------------------------------------------------------------------------

#[test]
fn syntax_error_names_the_script_and_the_line() {
    let f = Fixture::new();
    let at = format!(
        "risk.rhai:{}",
        f.rule_line("risk.rhai", "    let p = ctx.params;")
    );
    f.edit_rule("risk.rhai", "    let p = ctx.params;\n", "    let p = ;\n");
    let errors = script_errors(&f);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].location.ends_with(&at), "{}", errors[0]);
    assert!(
        errors[0].message.contains("Unexpected ';'"),
        "{}",
        errors[0]
    );
    assert_check_fails(&f, &[&[&format!("{at}: "), "Unexpected ';'"]]);

    // Two broken scripts: both reported, each at its own line.
    let f = Fixture::new();
    f.write_rule(
        "strategy.rhai",
        "fn strategy(ctx) {\n  let x = 1;\n  x +\n}\n",
    );
    f.write_rule("risk.rhai", "fn risk(intent, ctx) {\n  accept(\n}\n");
    let errors = script_errors(&f);
    let locations: Vec<&str> = errors
        .iter()
        .map(|e| e.location.rsplit('/').next().unwrap_or(""))
        .collect();
    assert_eq!(
        locations,
        vec!["strategy.rhai:4", "risk.rhai:3"],
        "{errors:?}"
    );
    assert_check_fails(&f, &[&["strategy.rhai:4: "], &["risk.rhai:3: "]]);
}

#[test]
fn undefined_variable_is_a_build_error() {
    // strict variables: a misspelt local is caught before the script ever runs.
    let f = Fixture::new();
    let at = format!(
        "risk.rhai:{}",
        f.rule_line(
            "risk.rhai",
            "if spendable <= 0 { return reject(\"CASH_TARGET\"); }"
        )
    );
    f.edit_rule(
        "risk.rhai",
        "if spendable <= 0 { return reject(\"CASH_TARGET\"); }",
        "if spendable <= lim.cash_target { return reject(\"CASH_TARGET\"); }",
    );
    let errors = script_errors(&f);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].location.ends_with(&at), "{}", errors[0]);
    assert!(
        errors[0].message.contains("Undefined variable: lim"),
        "{}",
        errors[0]
    );
}

#[test]
fn missing_entry_function_is_named() {
    let f = Fixture::new();
    f.edit_rule("risk.rhai", "fn risk(", "fn risky(");
    let errors = script_errors(&f);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].location.ends_with("risk.rhai"), "{}", errors[0]);
    assert_eq!(
        errors[0].message,
        "missing entry function `fn risk(intent, ctx)`"
    );
    assert_check_fails(&f, &[&["risk.rhai: ", "`fn risk(intent, ctx)`"]]);

    let f = Fixture::new();
    f.write_rule(
        "degrade.rhai",
        "fn degrade(anomalies) { #{mode: \"normal\"} }\n",
    );
    let errors = script_errors(&f);
    assert_eq!(
        errors[0].message,
        "missing entry function `fn degrade(anomalies, ctx)`"
    );
}

#[test]
fn import_is_refused_at_build_time() {
    let f = Fixture::new();
    let text = f.read_rule("risk.rhai");
    f.write_rule("risk.rhai", &format!("import \"x\";\n{text}"));
    let errors = script_errors(&f);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].location.ends_with("risk.rhai:1"), "{}", errors[0]);
    assert!(errors[0].message.contains("'import'"), "{}", errors[0]);
    assert_check_fails(&f, &[&["risk.rhai:1: ", "import"]]);

    // Also inside a function body.
    let f = Fixture::new();
    f.write_rule(
        "strategy.rhai",
        "fn strategy(ctx) {\n    import \"x\" as x;\n    []\n}\n",
    );
    let errors = script_errors(&f);
    assert!(
        errors[0].location.ends_with("strategy.rhai:2"),
        "{}",
        errors[0]
    );
}

#[test]
fn deeply_nested_source_is_a_build_error_not_a_crash() {
    let f = Fixture::new();
    let at = format!(
        "risk.rhai:{}",
        f.rule_line("risk.rhai", "    let p = ctx.params;") + 1
    );
    let nested = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    f.edit_rule(
        "risk.rhai",
        "    let p = ctx.params;\n",
        &format!("    let p = ctx.params;\n    let z = {nested};\n"),
    );
    let errors = script_errors(&f);
    assert!(errors[0].location.ends_with(&at), "{}", errors[0]);
    assert!(
        errors[0].message.contains("maximum complexity"),
        "{}",
        errors[0]
    );
    assert_check_fails(&f, &[&[&format!("{at}: "), "maximum complexity"]]);
}

// ---------------------------------------------------------------------------------------------
// 3. Script errors at run time fail closed
// ---------------------------------------------------------------------------------------------

#[test]
fn risk_that_loops_forever_hits_the_operation_limit_and_rejects() {
    let f = Fixture::without_rule_tests();
    f.write_rule("risk.rhai", &risk_script("    loop {}"));
    f.set_sandbox("max_operations", "20000");
    let (d, took) = decide_with(&f, Some(vec![small_buy()]));
    assert_risk_rule_error(&d, &["operation limit", "sandbox.max_operations"]);
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn risk_that_loops_forever_is_stopped_by_the_wall_clock() {
    // The operation limit is out of reach: only the deadline can stop it.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        &risk_script("    let n = 0;\n    while true { n += 1; }\n    accept()"),
    );
    f.set_sandbox("max_operations", "100000000");
    f.set_sandbox("timeout_ms", "50");
    let (d, took) = decide_with(&f, Some(vec![small_buy()]));
    assert_risk_rule_error(&d, &["timed out", "sandbox.timeout_ms"]);
    assert!(
        took >= Duration::from_millis(50),
        "stopped before the deadline ({took:?}): was it the operation limit?"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_runaway_loop_in_any_stage_fails_closed() {
    // anomaly: its RULE_ERROR is an error anomaly, so degrade.rhai moves to observe_only and
    // risk rejects the buy on the mode.
    let f = Fixture::without_rule_tests();
    f.write_rule("anomaly.rhai", "fn anomalies(ctx) { loop {} }\n");
    f.set_sandbox("max_operations", "20000");
    let (d, took) = decide_with(&f, Some(vec![small_buy()]));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(rule_errors(&d, "anomaly").len(), 1, "{:?}", d.anomalies);
    assert!(rule_errors(&d, "anomaly")[0].contains("operation limit"));
    assert_eq!(d.mode, Mode::ObserveOnly);
    assert_eq!(d.judged[0].verdict.reason_code(), "MODE_OBSERVE_ONLY");

    // degrade: the configured degrade_on_error.
    let f = Fixture::without_rule_tests();
    f.write_rule("degrade.rhai", "fn degrade(anomalies, ctx) { loop {} }\n");
    f.set_sandbox("max_operations", "20000");
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_eq!(d.mode, Mode::ObserveOnly);
    assert_eq!(d.mode_reasons, vec!["DEGRADE_RULE_ERROR".to_string()]);
    assert!(rule_errors(&d, "degrade")[0].contains("operation limit"));
    assert_eq!(d.judged[0].verdict.reason_code(), "MODE_OBSERVE_ONLY");

    // strategy: no intents.
    let f = Fixture::without_rule_tests();
    f.write_rule("strategy.rhai", "fn strategy(ctx) { loop {} }\n");
    f.set_sandbox("max_operations", "20000");
    let (d, _) = decide_with(&f, None);
    assert!(d.judged.is_empty(), "{:?}", d.judged);
    assert!(rule_errors(&d, "strategy")[0].contains("operation limit"));
}

#[test]
fn deep_recursion_rejects_with_a_call_level_error() {
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        "fn f(n) { f(n + 1) }\n\nfn risk(intent, ctx) {\n    f(0);\n    accept()\n}\n",
    );
    let (d, took) = decide_with(&f, Some(vec![small_buy()]));
    assert_risk_rule_error(&d, &["recursed too deeply", "sandbox.max_call_levels"]);
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // Mutual recursion too.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        "fn a(n) { b(n) }\nfn b(n) { a(n) }\nfn risk(intent, ctx) { a(1) }\n",
    );
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_risk_rule_error(&d, &["recursed too deeply"]);
}

#[test]
fn strategy_output_of_the_wrong_shape_yields_no_intents() {
    let good = r#"#{symbol: "BTCTRY", side: "buy", price: 3500000, qty: 0.0002}"#;
    let mixed = format!(r#"[{good}, #{{symbol: "BTCTRY", side: "buy", price: 0, qty: 1}}]"#);
    let cases: &[(&str, &str)] = &[
        (
            r#"#{symbol: "BTCTRY", side: "buy", price: 3500000, qty: 0.0002}"#,
            "strategy() result must be an array, got map",
        ),
        (
            r#"[#{symbol: "BTCTRY", side: "buy", price: 3500000, quantity: 0.0002}]"#,
            "strategy()[0]: unknown key `quantity`",
        ),
        (
            r#"[#{symbol: "BTCTRY", side: "buy", price: 3500000}]"#,
            "strategy()[0]: missing key `qty`",
        ),
        (
            r#"[#{symbol: "BTCTRY", side: "buy", price: "3500000", qty: 0.0002}]"#,
            "strategy()[0].price must be a number, got string",
        ),
        (
            r#"[#{symbol: "BTCTRY", side: "buy", price: 3500000, qty: -1}]"#,
            "strategy()[0].qty must be > 0",
        ),
        (
            r#"[#{symbol: "BTCTRY", side: "hold", price: 3500000, qty: 0.0002}]"#,
            "strategy()[0].side",
        ),
        ("[42]", "strategy()[0] must be a map"),
        ("()", "strategy() result must be an array"),
        // One good intent next to a bad one: the whole output is refused.
        (&mixed, "strategy()[1].price"),
    ];
    for (output, needle) in cases {
        let f = Fixture::without_rule_tests();
        f.write_rule(
            "strategy.rhai",
            &format!("fn strategy(ctx) {{\n    {output}\n}}\n"),
        );
        let (d, _) = decide_with(&f, None);
        assert!(
            d.judged.is_empty(),
            "{output}: no intent may survive: {:?}",
            d.judged
        );
        let errors = rule_errors(&d, "strategy");
        assert_eq!(errors.len(), 1, "{output}: {:?}", d.anomalies);
        assert!(
            errors[0].contains(needle),
            "{output}: expected {needle:?} in {:?}",
            errors[0]
        );
    }

    // Control: the good intent alone is judged and accepted.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "strategy.rhai",
        &format!("fn strategy(ctx) {{ [{good}] }}\n"),
    );
    let (d, _) = decide_with(&f, None);
    assert_eq!(d.judged.len(), 1, "{:?}", d.anomalies);
    assert_eq!(d.judged[0].verdict, Verdict::Accept);
}

#[test]
fn degrade_output_of_the_wrong_shape_moves_to_the_configured_careful_mode() {
    let cases: &[(&str, &str)] = &[
        (r#""normal""#, "degrade() result must be a map, got string"),
        (r#"#{mode: "norml"}"#, "degrade() result.mode"),
        (
            r#"#{mode: "normal", why: "x"}"#,
            "degrade() result: unknown key `why`",
        ),
        (r#"#{reasons: []}"#, "missing key `mode`"),
    ];
    for (output, needle) in cases {
        let f = Fixture::without_rule_tests();
        f.write_rule(
            "degrade.rhai",
            &format!("fn degrade(anomalies, ctx) {{ {output} }}\n"),
        );
        let (d, _) = decide_with(&f, Some(vec![small_buy()]));
        assert_eq!(d.mode, Mode::ObserveOnly, "{output}");
        assert_eq!(d.mode_reasons, vec!["DEGRADE_RULE_ERROR".to_string()]);
        let errors = rule_errors(&d, "degrade");
        assert_eq!(errors.len(), 1, "{output}: {:?}", d.anomalies);
        assert!(errors[0].contains(needle), "{output}: {:?}", errors[0]);
        assert_eq!(d.judged[0].verdict.reason_code(), "MODE_OBSERVE_ONLY");
    }

    // degrade_on_error is honoured: halt when configured.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "degrade.rhai",
        "fn degrade(anomalies, ctx) { \"normal\" }\n",
    );
    f.edit_config(
        "rules.yaml",
        "degrade_on_error: observe_only",
        "degrade_on_error: halt",
    );
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_eq!(d.mode, Mode::Halt);
}

#[test]
fn misspelt_property_in_a_guard_is_an_error_never_an_allow() {
    // The real risk.rhai with one typo each; the control test shows the same input is accepted
    // when the script is intact.
    let typos: &[(&str, &str, &[&str])] = &[
        (
            "min(l.max_order_notional, remaining_cap)",
            "min(l.max_order_notionall, remaining_cap)",
            &["max_order_notionall"],
        ),
        (
            "pos.notional + intent.notional",
            "pos.notional + intent.notionl",
            &["notionl"],
        ),
        (
            "let accepted = ctx.accepted_count;",
            "let accepted = ctx.acepted_count;",
            &["acepted_count"],
        ),
        (
            "let spendable = pf.cash - l.cash_target - accepted_notional;",
            "let spendable = pf.cashh - l.cash_target - accepted_notional;",
            &["cashh"],
        ),
        (
            "let floor = l.min_order_notional;",
            "let floor = l[\"min_order_notionl\"];",
            &["min_order_notionl"],
        ),
    ];
    for (from, to, needles) in typos {
        let f = Fixture::without_rule_tests();
        let at = format!("risk.rhai:{}: ", f.rule_line("risk.rhai", from));
        f.edit_rule("risk.rhai", from, to);
        let (d, _) = decide_with(&f, Some(vec![small_buy()]));
        assert_risk_rule_error(&d, needles);
        assert_risk_rule_error(&d, &[&at]);
    }

    // A typo on the script's own map.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        &risk_script(
            "    let m = #{a: 1};\n    if m.b > 0 { return reject(\"B_POSITIVE\"); }\n    accept()",
        ),
    );
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_risk_rule_error(&d, &["risk.rhai:3: ", "Property not found: b"]);

    // A typo on a YAML param map.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        &risk_script(
            "    if intent.notional > ctx.params.max_notionl { return reject(\"BIG\"); }\n    accept()",
        ),
    );
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_risk_rule_error(&d, &["max_notionl"]);
}

#[test]
fn huge_allocations_are_errors_and_the_process_survives() {
    let bodies: &[(&str, &str)] = &[
        (
            "    let a = [];\n    a.pad(2000000000, 0);\n    accept()",
            "array",
        ),
        (
            "    let s = \"x\";\n    s.pad(2000000000, 'y');\n    accept()",
            "string",
        ),
        (
            "    let a = [1];\n    loop { a += a; }\n    accept()",
            "array",
        ),
        (
            "    let s = \"x\";\n    loop { s += s; }\n    accept()",
            "string",
        ),
    ];
    for (body, what) in bodies {
        let f = Fixture::without_rule_tests();
        f.write_rule("risk.rhai", &risk_script(body));
        let (d, took) = decide_with(&f, Some(vec![small_buy()]));
        assert_risk_rule_error(&d, &["too large"]);
        let e = &rule_errors(&d, "risk")[0];
        assert!(e.to_lowercase().contains(what), "{what}: {e}");
        assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
    }
}

#[test]
fn risk_output_that_is_not_a_verdict_or_enlarges_the_order_is_rejected() {
    let cases: &[(&str, &str)] = &[
        ("    resize(intent.qty * 2)", "may only shrink an order"),
        ("    resize(-1)", "resize()"),
        ("    reject(\"too big\")", "UPPER_SNAKE_CASE"),
        (
            "    true",
            "must return accept(), resize(qty) or reject(\"CODE\")",
        ),
        ("    #{verdict: \"accept\"}", "must return accept()"),
        ("    \"ACCEPT\"", "must return accept()"),
        ("    throw \"no\";", "no"),
    ];
    for (body, needle) in cases {
        let f = Fixture::without_rule_tests();
        f.write_rule("risk.rhai", &risk_script(body));
        let (d, _) = decide_with(&f, Some(vec![small_buy()]));
        assert_risk_rule_error(&d, &[needle]);
    }

    // Resizing to exactly the intent's qty or less is fine (control for the first case).
    let f = Fixture::without_rule_tests();
    f.write_rule("risk.rhai", &risk_script("    resize(intent.qty / 2)"));
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_eq!(d.judged[0].verdict.kind(), "resize");
}

#[test]
fn one_failing_intent_does_not_affect_the_others() {
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        &risk_script("    if intent.symbol == \"ETHTRY\" { loop {} }\n    accept()"),
    );
    f.set_sandbox("max_operations", "20000");
    let set = RuleSet::build(&f.config).expect("build");
    let mut input = btctry_input(
        "10000",
        Some(vec![
            small_buy(),
            intent("ETHTRY", Side::Buy, "125000", "0.001"),
            intent("BTCTRY", Side::Sell, "3600000", "0.0001"),
        ]),
    );
    input
        .markets
        .push(common::market("ETHTRY", "125000", "125010"));
    input.symbols.push(common::sym("ETHTRY"));
    let d = decide(&set, &input);
    let codes: Vec<&str> = d.judged.iter().map(|j| j.verdict.reason_code()).collect();
    assert_eq!(codes, vec!["ACCEPT", "RISK_RULE_ERROR", "ACCEPT"]);
    assert_eq!(rule_errors(&d, "risk").len(), 1);
}

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

// ---------------------------------------------------------------------------------------------
// Regressions for holes found while writing this file
// ---------------------------------------------------------------------------------------------

#[test]
fn huge_max_call_levels_with_recursion_does_not_crash() {
    let f = Fixture::new();
    f.set_sandbox("max_call_levels", "1000000");
    f.edit_rule(
        "risk.rhai",
        "    let mode = ctx.mode;\n",
        "    let mode = ctx.mode;\n    f(0);\n",
    );
    let text = f.read_rule("risk.rhai");
    f.write_rule("risk.rhai", &format!("{text}\nfn f(n) {{ f(n + 1) }}\n"));
    // rules_check asserts there is no stack overflow / panic; the exit must be a clean 1.
    let run = rules_check(&f.config);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("max_call_levels"), "{}", run.stderr);
}

#[test]
fn huge_max_expr_depth_with_nested_source_does_not_crash() {
    let f = Fixture::new();
    f.set_sandbox("max_expr_depth", "100000000");
    let nested = format!("{}1{}", "(".repeat(200_000), ")".repeat(200_000));
    f.edit_rule(
        "risk.rhai",
        "    let p = ctx.params;\n",
        &format!("    let p = ctx.params;\n    let z = {nested};\n"),
    );
    let run = rules_check(&f.config);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
}

#[test]
fn misspelt_key_through_map_get_is_an_error() {
    // ctx.limits is a registered read-only type: it has no `get`, so the map idiom that would
    // return `()` for a typo is itself an error.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        &risk_script(
            "    if intent.notional > ctx.limits.get(\"max_order_notionall\") { return reject(\"BIG\"); }\n    accept()",
        ),
    );
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_ne!(d.judged[0].verdict, Verdict::Accept, "silent allow");
    assert_risk_rule_error(&d, &["get"]);
}

#[test]
fn comparing_money_with_unit_or_text_is_an_error() {
    // Rhai orders a number against `()` or a string as `false`; the engine never hands a
    // script either where a number is expected. Market.last without a trade is an error.
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        &risk_script(
            "    if intent.price > ctx.market(intent.symbol).last { return reject(\"ABOVE_LAST\"); }\n    accept()",
        ),
    );
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    assert_ne!(
        d.judged[0].verdict,
        Verdict::Accept,
        "() guard: silent allow"
    );

    assert_risk_rule_error(&d, &["no trade seen yet"]);

    // A number quoted in YAML would be a string: the config is refused, naming key and line.
    let f = Fixture::without_rule_tests();
    let line = f.config_line("risk.yaml", "min_profit_bps:") + 1;
    f.edit_config(
        "risk.yaml",
        "  min_profit_bps: 30\n",
        "  min_profit_bps: 30\n  max_price: \"1000\"\n",
    );
    let e = only_config_error(&f);
    assert!(e.message.contains("number in quotes"), "{e}");
    assert!(e.to_string().contains("max_price"), "{e}");
    assert_eq!(e.line, Some(line), "{e}");
}

#[test]
fn map_growth_past_max_map_size_is_an_error() {
    let f = Fixture::without_rule_tests();
    f.write_rule(
        "risk.rhai",
        &risk_script("    for i in 0..5000 { this[`k${i}`] = i; }\n    accept()"),
    );
    let (d, _) = decide_with(&f, Some(vec![small_buy()]));
    let state_keys = d.states[btcbot::rules::Stage::Risk as usize]
        .clone()
        .try_cast::<rhai::Map>()
        .map_or(0, |m| m.len());
    assert!(
        state_keys <= 1000,
        "risk state holds {state_keys} keys (max_map_size 1000)"
    );
    assert_risk_rule_error(&d, &["too large"]);
}

#[test]
fn bad_param_value_names_its_key_and_line() {
    let f = Fixture::new();
    let line = f.config_line("risk.yaml", "min_profit_bps:");
    f.edit_config(
        "risk.yaml",
        "  min_profit_bps: 30\n",
        "  min_profit_bps: ~\n",
    );
    let e = only_config_error(&f);
    assert!(e.message.contains("null is not a parameter value"), "{e}");
    assert!(
        e.to_string().contains("min_profit_bps"),
        "key not named: {e}"
    );
    assert_eq!(e.line, Some(line), "wrong line: {e}");
}
