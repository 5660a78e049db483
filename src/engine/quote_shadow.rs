//! The candidate of a per-quote `rules diff`, judged on the base run's very quotes, positions and
//! script state, as a cycle's shadow is: its `on_quote` sees the base's strategy state as it was
//! before the base's own call, its risk the base's portfolio and open orders. What it decides is
//! recorded as "would have" rows and never acted on, so a difference is the rules' alone.

use super::decide::CycleInput;
use super::per_quote::{ema_periods, on_quote_intents};
use super::plan::Gates;
use super::shadow::Shadow;
use crate::domain::{Intent, Symbol, SymbolSpec};
use crate::rules::api::QuoteView;
use crate::rules::ruleset::ON_QUOTE_ENTRY;
use crate::rules::sandbox::call;
use crate::rules::{RuleSet, Stage};
use crate::store::ShadowRecord;
use rhai::Dynamic;
use std::collections::BTreeMap;

/// A candidate rule set judging beside a per-quote run.
pub struct QuoteShadow {
    shadow: Shadow,
    /// Candidate `on_quote` calls that failed: each gave no intent (fail closed: its intents
    /// show as missing, never as accepted).
    pub rule_errors: u64,
    /// The candidate's strategy script, params and sandbox are the base's: its `on_quote`, a
    /// deterministic function of them, the quote and the state, returns what the base's did
    /// (`engine/reuse.rs` holds the rule), so it is not called again.
    pub shares_strategy: bool,
}

impl QuoteShadow {
    /// The candidate beside `base`.
    ///
    /// # Errors
    /// Why it cannot judge on the base's quotes: it has no `on_quote`, or it asks for other
    /// EMAs than the base (`params.ema_periods`), which the base's quotes do not carry.
    pub fn new(candidate: RuleSet, base: &RuleSet) -> Result<Self, String> {
        let strategy = candidate.script(Stage::Strategy);
        if !candidate.has_on_quote {
            return Err(format!("{}: no `fn on_quote(q)`", strategy.source));
        }
        let (theirs, ours) = (
            ema_periods(&strategy.params),
            ema_periods(&base.script(Stage::Strategy).params),
        );
        if theirs != ours {
            return Err(format!(
                "{}: params.ema_periods {theirs:?} differ from the base's {ours:?}",
                candidate.config.dir.join("strategy.yaml").display()
            ));
        }
        let shares_strategy =
            super::reuse::ReusePlan::between(base, &candidate).same_stage[Stage::Strategy as usize];
        Ok(Self {
            shares_strategy,
            shadow: Shadow {
                rules: candidate,
                states: Default::default(),
                mirror_state: true,
                plan: None,
            },
            rule_errors: 0,
        })
    }

    /// The candidate's intents on the base's quote `view`, from `state`: a copy of the base's
    /// strategy state before the base's call, whatever the candidate does to it discarded.
    pub fn intents(&mut self, view: &QuoteView, mut state: Dynamic) -> Vec<Intent> {
        let rules = &self.shadow.rules;
        let strategy = rules.script(Stage::Strategy);
        let view = QuoteView {
            params: strategy.params.clone(),
            ..view.clone()
        };
        let (result, _cost) = call(
            &rules.engine,
            &strategy.ast,
            &strategy.source,
            ON_QUOTE_ENTRY,
            &mut state,
            (view,),
            rules.timeout,
        );
        on_quote_intents(result).unwrap_or_else(|e| {
            self.rule_errors += 1;
            tracing::warn!("candidate on_quote failed: {e}");
            Vec::new()
        })
    }

    /// The candidate's verdicts on its `intents`, with the base's `input` (its portfolio, open
    /// orders and script state: `input.states`).
    pub fn judge(
        &mut self,
        input: &CycleInput,
        intents: Vec<Intent>,
        specs: &BTreeMap<Symbol, SymbolSpec>,
        gates: Gates,
    ) -> ShadowRecord {
        let input = CycleInput {
            intents_override: Some(intents),
            ..input.clone()
        };
        self.shadow.evaluate(&input, specs, gates, None).0
    }
}
