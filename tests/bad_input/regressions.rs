//! Regressions for holes found while writing these tests (unbounded sandbox limits, `()` and
//! quoted numbers in guards, unchecked state growth, params errors without their key).

use crate::helpers::*;

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
