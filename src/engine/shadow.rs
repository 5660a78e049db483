//! Shadow mode: a candidate rule set decides on the very inputs of every cycle, beside the active
//! one. Its verdicts and mode are recorded as "would have" rows and never reach the exchange.

use super::decide::{CycleInput, Decision, decide, decide_reusing};
use super::plan::{Action, Gates, plan};
use super::reuse::{ReusePlan, Trace};
use crate::domain::{Symbol, SymbolSpec};
use crate::rules::{RuleSet, Stage};
use crate::store::{DecisionRecord, ShadowRecord};
use rhai::Dynamic;
use std::collections::BTreeMap;

/// Prefix of the shadow scripts' names in `script_state`.
pub const STATE_PREFIX: &str = "shadow:";

/// The candidate rule set and its own script state.
pub struct Shadow {
    pub rules: RuleSet,
    pub states: [Dynamic; 4],
    /// Decide from the active set's script state every cycle instead of its own, so a
    /// difference is the rules' alone (`rules diff` uses this; shadow mode does not).
    pub mirror_state: bool,
    /// The last reuse plan and the (active, candidate) rule hashes it was made for.
    pub plan: Option<(String, String, ReusePlan)>,
}

/// The decision log rows of a cycle's judged intents and their planned actions.
pub fn decision_records(
    rules: &RuleSet,
    decision: &Decision,
    actions: &[Action],
    label: fn(&Action) -> String,
) -> Vec<DecisionRecord> {
    decision
        .judged
        .iter()
        .zip(actions)
        .map(|(j, a)| DecisionRecord {
            intent: j.intent.clone(),
            verdict: j.verdict.clone(),
            final_qty: match a {
                Action::Place(p) | Action::DryRun(p) => Some(p.qty),
                _ => None,
            },
            action: label(a),
            script: rules.script(Stage::Risk).source.clone(),
            function: Stage::Risk.entry().0.to_string(),
            rule_hash: rules.hash.clone(),
            operations: j.cost.operations,
            eval_us: j.cost.micros,
        })
        .collect()
}

fn would_have(a: &Action) -> String {
    match a {
        Action::Place(_) => "would_place".into(),
        Action::DryRun(_) => "would_dry_run".into(),
        other => other.label(),
    }
}

impl Shadow {
    /// Decides `input` with the candidate rules and its own state. Returns the record to store
    /// and the candidate's new script state (kept once the cycle commits).
    pub fn evaluate(
        &mut self,
        input: &CycleInput,
        specs: &BTreeMap<Symbol, SymbolSpec>,
        gates: Gates,
        active: Option<(&RuleSet, &Trace)>,
    ) -> (ShadowRecord, [Dynamic; 4]) {
        let decision = match active {
            // The active set's own state and calls: what the two share is copied.
            Some((active, trace)) if self.mirror_state => {
                let plan = match &self.plan {
                    Some((a, c, plan)) if *a == active.hash && *c == self.rules.hash => *plan,
                    _ => {
                        let plan = ReusePlan::between(active, &self.rules);
                        self.plan = Some((active.hash.clone(), self.rules.hash.clone(), plan));
                        plan
                    }
                };
                decide_reusing(&self.rules, input, trace, &plan).0
            }
            _ if self.mirror_state => decide(&self.rules, input),
            _ => {
                let mut shadow_input = input.clone();
                shadow_input.states = self.states.clone();
                decide(&self.rules, &shadow_input)
            }
        };
        let actions = plan(
            input.cycle_id,
            &decision.judged,
            decision.mode,
            specs,
            &input.open_orders,
            gates,
        );
        let would_place = actions
            .iter()
            .filter(|a| matches!(a, Action::Place(_) | Action::DryRun(_)))
            .count();
        let record = ShadowRecord {
            rule_hash: self.rules.hash.clone(),
            mode: decision.mode,
            mode_reasons: decision.mode_reasons.clone(),
            decisions: decision_records(&self.rules, &decision, &actions, would_have),
            would_place: u32::try_from(would_place).unwrap_or(u32::MAX),
        };
        (record, decision.states)
    }
}
