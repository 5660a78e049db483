//! 2. Script errors caught when the rule set is built.

use crate::helpers::*;

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
