//! 3. Script errors at run time, which fail closed inside `decide`.

use crate::helpers::*;

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
            "max(l.min_order_notional, ctx.min_notional(sym))",
            "max(l[\"min_order_notionl\"], ctx.min_notional(sym))",
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
        .push(crate::common::market("ETHTRY", "125000", "125010"));
    input.symbols.push(crate::common::sym("ETHTRY"));
    let d = decide(&set, &input);
    let codes: Vec<&str> = d.judged.iter().map(|j| j.verdict.reason_code()).collect();
    assert_eq!(codes, vec!["ACCEPT", "RISK_RULE_ERROR", "ACCEPT"]);
    assert_eq!(rule_errors(&d, "risk").len(), 1);
}
