//! Work a shadow shares with the active rule set when it decides from the very same inputs and
//! script state (`rules diff`, where the candidate is the base run's shadow).
//!
//! A script call is a deterministic function of its script, its params, the sandbox, its
//! arguments, its `this` state and what it reads of the cycle view. So when the candidate's call
//! has the active call's script text, params and sandbox, the same arguments and state, and the
//! active call read no limit the candidate sets to another value, it returns what the active
//! call returned: the result and the new state are copied from the active call's trace instead
//! of being computed again. Anything not provably the same is run.

use crate::domain::{Anomaly, Intent, Mode, Verdict};
use crate::rules::sandbox::CallCost;
use crate::rules::{RuleSet, Stage};
use rhai::Dynamic;

/// One script call of the active set, as a shadow may reuse it.
#[derive(Debug, Clone)]
pub struct TracedCall {
    /// `None` when the call failed: a failure is never copied (its message names the script's
    /// file, which may differ), the shadow runs the call itself.
    pub result: Option<Dynamic>,
    pub state_after: Dynamic,
    pub cost: CallCost,
    /// The limits the call read (bits of `KeyReads`).
    pub limits_read: u64,
}

/// The active set's calls of one cycle and the values passed between them.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub anomaly: Option<TracedCall>,
    /// The anomaly list degrade.rhai received.
    pub degrade_anomalies: Vec<Anomaly>,
    pub degrade: Option<TracedCall>,
    pub mode_after_degrade: Option<Mode>,
    pub budget: Option<TracedCall>,
    pub mode_after_budget: Option<Mode>,
    pub strategy: Option<TracedCall>,
    pub intents: Vec<Intent>,
    pub risk: Vec<TracedCall>,
    pub verdicts: Vec<Verdict>,
}

/// Equal as a script sees them: decimals equal in value and in written scale (`0.10` is not
/// `0.1` to `to_string()` or to the scale of what is computed from it).
pub fn same_intent(a: &Intent, b: &Intent) -> bool {
    a == b
        && a.price.value().scale() == b.price.value().scale()
        && a.qty.value().scale() == b.qty.value().scale()
}

/// [`same_intent`] for verdicts: a resize's quantity in value and scale.
pub fn same_verdict(a: &Verdict, b: &Verdict) -> bool {
    match (a, b) {
        (Verdict::Resize { qty: x }, Verdict::Resize { qty: y }) => {
            x == y && x.value().scale() == y.value().scale()
        }
        _ => a == b,
    }
}

/// Whether `value` holds anything but plain data (maps, arrays, strings, numbers, booleans):
/// a registered engine value such as `ctx` or `ctx.limits` kept in a script's state.
pub fn holds_engine_value(value: &Dynamic) -> bool {
    if let Some(map) = value.read_lock::<rhai::Map>() {
        return map.values().any(holds_engine_value);
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return array.iter().any(holds_engine_value);
    }
    !(value.is_unit()
        || value.is_bool()
        || value.is_int()
        || value.is_decimal()
        || value.is_string()
        || value.is_char())
}

/// Which of the candidate's stages are the active set's, and which limits differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePlan {
    pub same_stage: [bool; 4],
    /// Bits of the limits whose values differ (value or written scale).
    pub differing_limits: u64,
}

impl ReusePlan {
    /// Compares the two rule sets. A stage is shared when its script text and params are the
    /// same, and the whole sets agree on the sandbox, the registered keys, the degrade fallback
    /// and whether risk.rhai has a budget. A script that catches errors must also come from
    /// the same file, since a caught error's text names it.
    pub fn between(active: &RuleSet, candidate: &RuleSet) -> ReusePlan {
        let sets_agree = active.config.rules.sandbox == candidate.config.rules.sandbox
            && active.registered_keys == candidate.registered_keys
            && active.degrade_on_error == candidate.degrade_on_error
            && active.has_budget == candidate.has_budget;
        let same_stage = Stage::ALL.map(|stage| {
            let (a, c) = (active.script(stage), candidate.script(stage));
            sets_agree
                && a.text_sha256 == c.text_sha256
                && (!a.catches_errors || a.source == c.source)
                && active.stage_params(stage) == candidate.stage_params(stage)
        });
        let differing_limits = active
            .limits
            .entries()
            .iter()
            .zip(candidate.limits.entries())
            .enumerate()
            .filter(|(_, ((ka, va), (kc, vc)))| {
                ka != kc
                    || match (va.as_decimal(), vc.as_decimal()) {
                        (Ok(a), Ok(c)) => a != c || a.scale() != c.scale(),
                        _ => true,
                    }
            })
            .fold(0, |bits, (i, _)| {
                bits | crate::rules::params_view::key_bit(i)
            });
        let differing_limits = if active.limits.entries().len() == candidate.limits.entries().len()
        {
            differing_limits
        } else {
            crate::rules::params_view::ALL_KEYS | differing_limits
        };
        ReusePlan {
            same_stage,
            differing_limits,
        }
    }

    /// The traced call's result and state, when the candidate's call with the same arguments
    /// (`inputs_same`) and state (`state_same`) must return them.
    pub fn reusable<'t>(
        &self,
        stage: Stage,
        traced: Option<&'t TracedCall>,
        inputs_same: bool,
        state_same: bool,
    ) -> Option<&'t TracedCall> {
        let traced = traced?;
        (inputs_same
            && state_same
            && self.same_stage[stage as usize]
            && traced.result.is_some()
            && traced.limits_read & self.differing_limits == 0)
            .then_some(traced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::decide::{Decision, decide, decide_reusing, decide_traced};
    use crate::rules::convert::dynamic_to_json;
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// The default config with its relative paths made absolute and `edit` applied to
    /// (file name, text), in a temp dir; `rules_dir` replaces the rules directory.
    fn variant(tmp: &Path, rules_dir: &Path, edit: &dyn Fn(&str, String) -> String) -> RuleSet {
        let defaults = root().join("configs/default");
        for name in ["bot.yaml", "risk.yaml", "strategy.yaml", "rules.yaml"] {
            let text = std::fs::read_to_string(defaults.join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .replace("dir: ../../rules", &format!("dir: {}", rules_dir.display()))
                .replace(
                    "../../data/replay/sample",
                    &root().join("data/replay/sample").display().to_string(),
                );
            std::fs::write(tmp.join(name), edit(name, text))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        RuleSet::compile(tmp).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Everything a decision says, states as JSON (script states hold no comparable type).
    fn outcome(d: &Decision) -> String {
        let states: Vec<String> = d
            .states
            .iter()
            .map(|s| dynamic_to_json(s, "state").map_or_else(|e| e, |j| j.to_string()))
            .collect();
        format!(
            "{:?} {:?} {:?} {:?} {:?}",
            d.anomalies,
            d.mode,
            d.mode_reasons,
            d.judged
                .iter()
                .map(|j| (&j.intent, &j.verdict))
                .collect::<Vec<_>>(),
            states
        )
    }

    fn copy_rules(to: &Path) {
        std::fs::create_dir_all(to.join("tests")).unwrap_or_else(|e| panic!("{e}"));
        for entry in std::fs::read_dir(root().join("rules")).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_file() {
                let name = path.file_name().unwrap_or_default();
                std::fs::copy(&path, to.join(name)).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    /// Over every rule-test input of the default pack (every rule at and around its
    /// thresholds), a candidate deciding with the active set's calls copied where the plan
    /// allows decides exactly as the candidate deciding alone, for candidates that differ in
    /// a limit, in risk.rhai's text, in a strategy param and in nothing at all.
    #[test]
    fn a_shadow_copying_the_active_calls_decides_exactly_as_it_would_alone() {
        let base_tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let rules = root().join("rules");
        let base = variant(base_tmp.path(), &rules, &|_, t| t);
        let inputs = crate::rules::ruletests::case_inputs(&base).unwrap_or_else(|e| panic!("{e}"));
        assert!(inputs.len() > 100, "{} cases", inputs.len());

        let copied_rules = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        copy_rules(copied_rules.path());
        let risk = copied_rules.path().join("risk.rhai");
        let text = std::fs::read_to_string(&risk).unwrap_or_else(|e| panic!("{e}"));
        let edited = text.replace("l.cooldown_s * 1000", "l.cooldown_s * 2000");
        assert_ne!(edited, text);
        std::fs::write(&risk, edited).unwrap_or_else(|e| panic!("{e}"));

        type Edit = Box<dyn Fn(&str, String) -> String>;
        let cases: Vec<(&str, PathBuf, Edit, [bool; 4], bool)> = vec![
            (
                "tighter limits",
                rules.clone(),
                Box::new(|name: &str, t: String| {
                    if name == "risk.yaml" {
                        t.replace("max_position_notional: 5000", "max_position_notional: 2000")
                            .replace("max_order_notional: 3000", "max_order_notional: 400")
                    } else {
                        t
                    }
                }),
                [true; 4],
                true,
            ),
            (
                "risk.rhai edited",
                copied_rules.path().to_path_buf(),
                Box::new(|_: &str, t: String| t),
                [true, true, true, false],
                false,
            ),
            (
                "strategy param",
                rules.clone(),
                Box::new(|name: &str, t: String| {
                    if name == "strategy.yaml" {
                        t.replace("band_bps: 50", "band_bps: 20")
                    } else {
                        t
                    }
                }),
                [true, true, false, true],
                false,
            ),
            (
                "identical",
                rules.clone(),
                Box::new(|_: &str, t: String| t),
                [true; 4],
                false,
            ),
        ];
        for (label, rules_dir, edit, same_stage, limits_differ) in cases {
            let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let candidate = variant(tmp.path(), &rules_dir, &*edit);
            let plan = ReusePlan::between(&base, &candidate);
            assert_eq!(plan.same_stage, same_stage, "{label}");
            assert_eq!(plan.differing_limits != 0, limits_differ, "{label}");
            let (mut copied, mut calls, mut differs) = (0, 0, 0);
            for (name, input) in &inputs {
                let (active, trace) = decide_traced(&base, input);
                assert_eq!(outcome(&active), outcome(&decide(&base, input)), "{name}");
                let (shared, n) = decide_reusing(&candidate, input, &trace, &plan);
                let alone = decide(&candidate, input);
                assert_eq!(outcome(&shared), outcome(&alone), "{label}: {name}");
                if outcome(&alone) != outcome(&active) {
                    differs += 1;
                }
                copied += n;
                calls += 3
                    + u32::from(input.intents_override.is_none())
                    + u32::try_from(alone.judged.len()).unwrap_or(0);
            }
            assert!(copied > 0, "{label}: no call was copied");
            if label == "identical" {
                assert_eq!(copied, calls, "an identical candidate copies every call");
            } else {
                assert!(
                    differs > 0,
                    "{label}: the candidate never decides otherwise"
                );
            }
        }
    }

    /// A script may keep `ctx.limits` in its state and read it in a later call: a copied
    /// state must not hand the candidate the base's limits.
    #[test]
    fn a_state_that_keeps_the_limits_is_never_copied_into_a_candidate_with_other_limits() {
        let kept = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        copy_rules(kept.path());
        let risk = kept.path().join("risk.rhai");
        let text = std::fs::read_to_string(&risk).unwrap_or_else(|e| panic!("{e}"));
        let edited = text
            .replace(
                "fn budget(ctx) {\n",
                "fn budget(ctx) {\n    this.l = ctx.limits;\n",
            )
            .replace(
                "min(l.max_order_notional, remaining_cap)",
                "min(this.l.max_order_notional, remaining_cap)",
            );
        assert!(
            edited.contains("this.l = ctx.limits;"),
            "budget keeps the limits"
        );
        assert!(
            edited.contains("this.l.max_order_notional"),
            "risk reads them back"
        );
        std::fs::write(&risk, edited).unwrap_or_else(|e| panic!("{e}"));
        let (base_dir, cand_dir) = (
            tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        );
        let base = variant(base_dir.path(), kept.path(), &|_, t| t);
        let candidate = variant(cand_dir.path(), kept.path(), &|name: &str, t: String| {
            if name == "risk.yaml" {
                t.replace("max_order_notional: 3000", "max_order_notional: 400")
            } else {
                t
            }
        });
        let plan = ReusePlan::between(&base, &candidate);
        assert_eq!(plan.same_stage, [true; 4]);
        let inputs = crate::rules::ruletests::case_inputs(
            &crate::rules::RuleSet::compile(&root().join("configs/default"))
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut differs = 0;
        for (name, input) in &inputs {
            let (active, trace) = decide_traced(&base, input);
            let (shared, _) = decide_reusing(&candidate, input, &trace, &plan);
            let alone = decide(&candidate, input);
            assert_eq!(outcome(&shared), outcome(&alone), "{name}");
            differs += usize::from(outcome(&alone) != outcome(&active));
        }
        assert!(differs > 0, "the kept limit never mattered");
    }

    #[test]
    fn plain_data_holds_no_engine_value_and_a_kept_view_does() {
        let mut map = rhai::Map::new();
        map.insert(
            "x".into(),
            Dynamic::from_decimal(rust_decimal::Decimal::ONE),
        );
        map.insert("s".into(), Dynamic::from("text".to_string()));
        map.insert(
            "a".into(),
            Dynamic::from_array(vec![Dynamic::from_int(1), Dynamic::UNIT]),
        );
        let plain = Dynamic::from_map(map.clone());
        assert!(!holds_engine_value(&plain));
        map.insert(
            "l".into(),
            Dynamic::from(crate::rules::api::ParamsView::default()),
        );
        assert!(holds_engine_value(&Dynamic::from_map(map)));
    }

    #[test]
    fn intents_and_resizes_are_the_same_only_at_the_same_scale() {
        use crate::domain::{Intent, Price, Qty, Side, Symbol};
        use rust_decimal::Decimal;
        let intent = |qty: Decimal| Intent {
            symbol: Symbol::new("BTCTRY").unwrap_or_else(|e| panic!("{e}")),
            side: Side::Buy,
            price: Price::new(Decimal::new(100, 0)).unwrap_or_else(|e| panic!("{e}")),
            qty: Qty::new(qty).unwrap_or_else(|e| panic!("{e}")),
            tag: "t".into(),
        };
        let (tenth, tenth2) = (Decimal::new(1, 1), Decimal::new(10, 2));
        assert_eq!(intent(tenth), intent(tenth2), "equal in value");
        assert!(same_intent(&intent(tenth), &intent(tenth)));
        assert!(!same_intent(&intent(tenth), &intent(tenth2)));
        let resize = |q| Verdict::Resize {
            qty: Qty::new(q).unwrap_or_else(|e| panic!("{e}")),
        };
        assert!(same_verdict(&resize(tenth), &resize(tenth)));
        assert!(!same_verdict(&resize(tenth), &resize(tenth2)));
        assert!(same_verdict(&Verdict::Accept, &Verdict::Accept));
    }
}
