//! 1. Config errors, through `RuleSet::build` (the reload path) and `btcbot rules check`.

use crate::helpers::*;

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
