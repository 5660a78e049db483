//! What every bad-input test uses: building, checking and deciding on a fixture.

pub(crate) use crate::common::{Fixture, btctry_input, intent, small_buy};
pub(crate) use arc_swap::ArcSwap;
pub(crate) use btcbot::config::ConfigError;
pub(crate) use btcbot::domain::{Mode, Side, Verdict};
pub(crate) use btcbot::engine::decide::{Decision, decide};
pub(crate) use btcbot::rules::sandbox::ScriptError;
pub(crate) use btcbot::rules::watcher::{ReloadOutcome, SharedRules, reload_now};
pub(crate) use btcbot::rules::{RuleSet, RuleSetError};
pub(crate) use std::path::Path;
pub(crate) use std::process::Command;
pub(crate) use std::sync::Arc;
pub(crate) use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

pub(crate) fn build_error(f: &Fixture) -> RuleSetError {
    match RuleSet::build(&f.config) {
        Ok(set) => panic!("expected the build to fail, got rule set {}", set.hash),
        Err(e) => e,
    }
}

pub(crate) fn config_errors(f: &Fixture) -> Vec<ConfigError> {
    match build_error(f) {
        RuleSetError::Config(e) => e.0,
        other => panic!("expected config errors, got {other:?}"),
    }
}

pub(crate) fn script_errors(f: &Fixture) -> Vec<ScriptError> {
    match build_error(f) {
        RuleSetError::Script(e) => e,
        other => panic!("expected script errors, got {other:?}"),
    }
}

/// The one config error; fails if there are more or fewer.
pub(crate) fn only_config_error(f: &Fixture) -> ConfigError {
    let mut errors = config_errors(f);
    assert_eq!(errors.len(), 1, "expected exactly one error: {errors:#?}");
    errors.remove(0)
}

pub(crate) fn ends_with_file(e: &ConfigError, name: &str) {
    assert!(
        Path::new(&e.file).file_name().is_some_and(|n| n == name),
        "error should name {name}: {e}"
    );
}

pub(crate) struct CheckRun {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the real binary: `btcbot rules check --config DIR`.
pub(crate) fn rules_check(dir: &Path) -> CheckRun {
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
pub(crate) fn assert_check_fails(f: &Fixture, expected: &[&[&str]]) {
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

pub(crate) fn decide_with(
    f: &Fixture,
    intents: Option<Vec<btcbot::domain::Intent>>,
) -> (Decision, Duration) {
    let set = RuleSet::build(&f.config).unwrap_or_else(|e| panic!("build failed:\n{e}"));
    let input = btctry_input("10000", intents);
    let started = Instant::now();
    let d = decide(&set, &input);
    (d, started.elapsed())
}

/// The `error` detail of every RULE_ERROR anomaly raised by `stage`.
pub(crate) fn rule_errors(d: &Decision, stage: &str) -> Vec<String> {
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
pub(crate) fn assert_risk_rule_error(d: &Decision, needles: &[&str]) {
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
pub(crate) fn risk_script(body: &str) -> String {
    format!("fn risk(intent, ctx) {{\n{body}\n}}\n")
}
