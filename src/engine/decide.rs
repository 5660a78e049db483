//! The pure decision core: `decide(&RuleSet, &CycleInput) -> Decision`. No clock, network or
//! database: time arrives in `CycleInput::now_ms`. Scripts run here, inside the sandbox, and every
//! script failure fails closed (see docs/RULES.md, "Failure").

use super::reuse::{ReusePlan, Trace, TracedCall, holds_engine_value, same_intent, same_verdict};
use super::view::{anomalies_to_dynamic, build_view};
use crate::domain::{
    Anomaly, Intent, MarketSnapshot, Mode, Order, Severity, Symbol, SymbolSpec, Verdict,
};
use crate::rules::api::{Ctx, CycleView, IntentView};
use crate::rules::outputs::{parse_anomalies, parse_intents, parse_mode, parse_verdict};
use crate::rules::sandbox::{CallCost, ScriptError, call};
use crate::rules::{RuleSet, Stage};
use rhai::{Dynamic, INT, Map};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A position as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holding {
    pub qty: Decimal,
    pub avg_cost: Decimal,
}

/// The ledger's figures the rules see.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortfolioInput {
    pub quote_asset: String,
    /// Free quote balance.
    pub cash: Decimal,
    /// Free + locked quote balance.
    pub cash_total: Decimal,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub positions: BTreeMap<Symbol, Holding>,
    /// The venue's total quote balance this cycle, when it could be read: the ledger's
    /// `cash_total` should equal it.
    pub venue_cash_total: Option<Decimal>,
    /// Realized PnL and quote fees of fills in the current UTC day / ISO week (market time).
    pub realized_today: Decimal,
    pub fees_today: Decimal,
    pub realized_week: Decimal,
    /// Consecutive sell orders that lost money net of their fee.
    pub loss_streak: i64,
    /// The highest equity of any earlier cycle (`None` on a fresh database).
    pub peak_equity: Option<Decimal>,
    /// Equity at the end of the last cycle before the current UTC day / ISO week began
    /// (`None` when the database has no earlier cycle: the period starts now).
    pub day_start_equity: Option<Decimal>,
    pub week_start_equity: Option<Decimal>,
    /// Per symbol: the venue's base balance, less what it held when this database started,
    /// minus the ledger's position. Only symbols whose balance was read and differs.
    pub qty_mismatch: BTreeMap<Symbol, Decimal>,
}

/// Engine-side counters from the previous cycle, for the anomaly rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CycleStats {
    pub rejects_last_cycle: i64,
    pub exchange_errors_last_cycle: i64,
    pub rule_errors_last_cycle: i64,
    /// Wall time the shell spent observing the exchange this cycle.
    pub observe_latency_ms: i64,
    /// Consecutive cycles, while orders were working at a real venue, in which the fill cursor
    /// did not move although an order's filled quantity did, or the fills could not be read.
    pub cursor_stall_cycles: i64,
    /// |our clock − the exchange's| as seen on this cycle's freshest book (0 in a replay).
    pub clock_skew_ms: i64,
}

/// Everything one cycle decides on.
#[derive(Debug, Clone, Default)]
pub struct CycleInput {
    pub cycle_id: i64,
    pub now_ms: i64,
    /// The configured universe.
    pub symbols: Vec<Symbol>,
    pub markets: Vec<MarketSnapshot>,
    pub specs: BTreeMap<Symbol, SymbolSpec>,
    pub portfolio: PortfolioInput,
    pub open_orders: Vec<Order>,
    pub stats: CycleStats,
    /// The floor the engine sets (kill switch, halt); scripts can only tighten it.
    pub engine_mode: Mode,
    /// Anomalies the shell observed (exchange errors); merged before degrade.
    pub engine_anomalies: Vec<Anomaly>,
    /// Persisted script state, indexed by `Stage as usize`; `()` means empty.
    pub states: [Dynamic; 4],
    /// Rule tests only: judge these instead of calling strategy.rhai.
    pub intents_override: Option<Vec<Intent>>,
}

/// One intent and risk's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub intent: Intent,
    pub verdict: Verdict,
    pub cost: CallCost,
}

/// What the cycle decided.
#[derive(Debug, Clone)]
pub struct Decision {
    pub anomalies: Vec<Anomaly>,
    pub mode: Mode,
    pub mode_reasons: Vec<String>,
    pub judged: Vec<Judged>,
    /// New script state, indexed by `Stage as usize`.
    pub states: [Dynamic; 4],
    pub costs: [CallCost; 4],
    pub rule_hash: String,
}

fn rule_error(stage: Stage, message: String) -> Anomaly {
    Anomaly {
        code: "RULE_ERROR".into(),
        severity: Severity::Error,
        symbol: None,
        detail: vec![
            ("script".into(), stage.name().into()),
            ("error".into(), message),
        ],
    }
}

/// Keeps one anomaly per (code, severity): the first. When the duplicates named other symbols,
/// the kept one lists them all in a `symbols` detail so nothing seen is lost.
fn dedupe(anomalies: &mut Vec<Anomaly>) {
    let mut kept: Vec<Anomaly> = Vec::with_capacity(anomalies.len());
    let mut symbols: Vec<Vec<String>> = Vec::new();
    for a in anomalies.drain(..) {
        let symbol = a.symbol.as_ref().map(|s| s.as_str().to_string());
        if let Some(i) = kept
            .iter()
            .position(|k| k.code == a.code && k.severity == a.severity)
        {
            if let Some(s) = symbol
                && !symbols[i].contains(&s)
            {
                symbols[i].push(s);
            }
        } else {
            symbols.push(symbol.into_iter().collect());
            kept.push(a);
        }
    }
    for (a, syms) in kept.iter_mut().zip(symbols) {
        if syms.len() > 1 {
            a.detail.push(("symbols".into(), syms.join(",")));
        }
    }
    *anomalies = kept;
}

/// Checks every map and array in a script's state against the sandbox size limits.
fn check_state_size(state: &Dynamic, max_map: usize, max_array: usize) -> Result<(), String> {
    if let Some(map) = state.read_lock::<Map>() {
        if map.len() > max_map {
            return Err(format!(
                "script state too large: a map holds {} keys (sandbox.max_map_size {max_map})",
                map.len()
            ));
        }
        for v in map.values() {
            check_state_size(v, max_map, max_array)?;
        }
    } else if let Some(array) = state.read_lock::<rhai::Array>() {
        if array.len() > max_array {
            return Err(format!(
                "script state too large: an array holds {} items (sandbox.max_array_size {max_array})",
                array.len()
            ));
        }
        for v in array.iter() {
            check_state_size(v, max_map, max_array)?;
        }
    }
    Ok(())
}

/// Runs the four scripts over one cycle's input.
pub fn decide(rules: &RuleSet, input: &CycleInput) -> Decision {
    decide_with(rules, input, None, None)
}

/// [`decide`], also recording each call in `trace` for a shadow that decides from the same
/// inputs and state (see [`super::reuse`]).
pub fn decide_traced(rules: &RuleSet, input: &CycleInput) -> (Decision, Trace) {
    let mut trace = Trace::default();
    let decision = decide_with(rules, input, Some(&mut trace), None);
    (decision, trace)
}

/// [`decide`] for a shadow whose input and script state are the active set's: a call `plan`
/// proves would return what the active call in `trace` returned is copied from it. Also
/// returns how many calls were copied.
pub fn decide_reusing(
    rules: &RuleSet,
    input: &CycleInput,
    trace: &Trace,
    plan: &ReusePlan,
) -> (Decision, u32) {
    let mut copied = 0;
    let decision = decide_with(rules, input, None, Some((trace, plan, &mut copied)));
    (decision, copied)
}

fn decide_with(
    rules: &RuleSet,
    input: &CycleInput,
    mut tracing: Option<&mut Trace>,
    reuse: Option<(&Trace, &ReusePlan, &mut u32)>,
) -> Decision {
    let (reuse, mut copied) = match reuse {
        Some((trace, plan, copied)) => (Some((trace, plan)), Some(copied)),
        None => (None, None),
    };
    // Built when a script first runs: a shadow that copies every call never needs it.
    let view: std::cell::OnceCell<Arc<CycleView>> = std::cell::OnceCell::new();
    let mut states = input.states.clone();
    let mut costs = [CallCost::default(); 4];
    // Per stage: is its state still the active set's (a shadow's call that ran itself may have
    // changed it)?
    let mut state_same = [true; 4];
    let tracing_on = tracing.is_some();
    let ctx = |stage: Stage, mode: Mode| Ctx {
        view: Arc::clone(view.get_or_init(|| Arc::new(build_view(rules, input)))),
        params: rules.script(stage).params.clone(),
        mode: mode.as_str().into(),
        accepted_count: 0,
        accepted_notional: Decimal::ZERO,
    };
    // One script call: copied from the trace when the plan allows, else run (and traced).
    let mut run_entry = |stage: Stage,
                         entry: &str,
                         state: &mut Dynamic,
                         args: &dyn Fn() -> Vec<Dynamic>,
                         reusable: Option<(&ReusePlan, Option<&TracedCall>, bool)>|
     -> ((Result<Dynamic, ScriptError>, CallCost), Option<TracedCall>) {
        if let Some((plan, traced, inputs_same)) = reusable
            && let Some(t) = plan.reusable(stage, traced, inputs_same, state_same[stage as usize])
            && let Some(result) = &t.result
        {
            *state = t.state_after.clone();
            if let Some(n) = copied.as_deref_mut() {
                *n += 1;
            }
            return ((Ok(result.clone()), t.cost), None);
        }
        state_same[stage as usize] = false;
        let script = rules.script(stage);
        if state.is_unit() {
            *state = Dynamic::from_map(Map::new());
        }
        rules.limit_reads.take();
        let (mut result, cost) = call(
            &rules.engine,
            &script.ast,
            &script.source,
            entry,
            state,
            args(),
            rules.timeout,
        );
        // Rhai does not enforce max_map_size on `m[k] = v`, so the state that persists is
        // checked here; an oversized one is dropped for the start-of-cycle state (fail closed).
        let sandbox = &rules.config.rules.sandbox;
        if let Err(e) = check_state_size(state, sandbox.max_map_size, sandbox.max_array_size) {
            *state = input.states[stage as usize].clone();
            if result.is_ok() {
                result = Err(ScriptError {
                    location: script.source.clone(),
                    message: e,
                });
            }
        }
        // A state holding an engine value (`this.l = ctx.limits`) lets a later call read these
        // limits unlogged: such a call counts as having read every limit.
        let limits_read = rules.limit_reads.take();
        let traced = tracing_on.then(|| TracedCall {
            result: result.as_ref().ok().cloned(),
            state_after: state.clone(),
            cost,
            limits_read: if holds_engine_value(state) {
                crate::rules::params_view::ALL_KEYS
            } else {
                limits_read
            },
        });
        ((result, cost), traced)
    };
    let traced_of = |pick: fn(&Trace) -> Option<&TracedCall>, inputs_same: bool| {
        reuse.map(|(trace, plan)| (plan, pick(trace), inputs_same))
    };

    // anomaly.rhai
    let mut anomalies = input.engine_anomalies.clone();
    let ((result, cost), traced) = run_entry(
        Stage::Anomaly,
        Stage::Anomaly.entry().0,
        &mut states[Stage::Anomaly as usize],
        &|| vec![Dynamic::from(ctx(Stage::Anomaly, input.engine_mode))],
        traced_of(|t| t.anomaly.as_ref(), true),
    );
    if let Some(t) = tracing.as_deref_mut() {
        t.anomaly = traced;
    }
    costs[Stage::Anomaly as usize] = cost;
    match result.map_err(|e| e.to_string()).and_then(parse_anomalies) {
        Ok(found) => anomalies.extend(found),
        Err(e) => anomalies.push(rule_error(Stage::Anomaly, e)),
    }
    dedupe(&mut anomalies);

    // degrade.rhai: the engine's mode is a floor the script can only tighten.
    let same = reuse.is_some_and(|(t, _)| t.degrade_anomalies == anomalies);
    let ((result, cost), traced) = run_entry(
        Stage::Degrade,
        Stage::Degrade.entry().0,
        &mut states[Stage::Degrade as usize],
        &|| {
            vec![
                anomalies_to_dynamic(&anomalies),
                Dynamic::from(ctx(Stage::Degrade, input.engine_mode)),
            ]
        },
        traced_of(|t| t.degrade.as_ref(), same),
    );
    if let Some(t) = tracing.as_deref_mut() {
        t.degrade = traced;
        t.degrade_anomalies = anomalies.clone();
    }
    costs[Stage::Degrade as usize] = cost;
    let (mode, mode_reasons) = match result.map_err(|e| e.to_string()).and_then(parse_mode) {
        Ok((script_mode, reasons)) => (input.engine_mode.tighten(script_mode), reasons),
        Err(e) => {
            anomalies.push(rule_error(Stage::Degrade, e));
            (
                input.engine_mode.tighten(rules.degrade_on_error),
                vec!["DEGRADE_RULE_ERROR".to_string()],
            )
        }
    };
    if let Some(t) = tracing.as_deref_mut() {
        t.mode_after_degrade = Some(mode);
    }

    // risk.rhai's budget: the same monotonic rule, it can only tighten the mode.
    let (mode, mode_reasons) = if rules.has_budget {
        let same = reuse.is_some_and(|(t, _)| t.mode_after_degrade == Some(mode));
        let ((result, cost), traced) = run_entry(
            Stage::Risk,
            crate::rules::ruleset::BUDGET_ENTRY,
            &mut states[Stage::Risk as usize],
            &|| vec![Dynamic::from(ctx(Stage::Risk, mode))],
            traced_of(|t| t.budget.as_ref(), same),
        );
        if let Some(t) = tracing.as_deref_mut() {
            t.budget = traced;
        }
        costs[Stage::Risk as usize] = cost;
        match result.map_err(|e| e.to_string()).and_then(parse_mode) {
            Ok((budget_mode, reasons)) => {
                let tightened = mode.tighten(budget_mode);
                let mut all = mode_reasons;
                if budget_mode != Mode::Normal {
                    all.extend(reasons);
                }
                (tightened, all)
            }
            Err(e) => {
                anomalies.push(rule_error(Stage::Risk, e));
                let mut all = mode_reasons;
                all.push("BUDGET_RULE_ERROR".to_string());
                (mode.tighten(rules.degrade_on_error), all)
            }
        }
    } else {
        (mode, mode_reasons)
    };
    let mode_same = reuse.is_some_and(|(t, _)| t.mode_after_budget == Some(mode));
    if let Some(t) = tracing.as_deref_mut() {
        t.mode_after_budget = Some(mode);
    }

    // strategy.rhai
    let intents = if let Some(given) = &input.intents_override {
        given.clone()
    } else {
        let ((result, cost), traced) = run_entry(
            Stage::Strategy,
            Stage::Strategy.entry().0,
            &mut states[Stage::Strategy as usize],
            &|| vec![Dynamic::from(ctx(Stage::Strategy, mode))],
            traced_of(|t| t.strategy.as_ref(), mode_same),
        );
        if let Some(t) = tracing.as_deref_mut() {
            t.strategy = traced;
        }
        costs[Stage::Strategy as usize] = cost;
        match result.map_err(|e| e.to_string()).and_then(parse_intents) {
            Ok(intents) => intents,
            Err(e) => {
                anomalies.push(rule_error(Stage::Strategy, e));
                Vec::new()
            }
        }
    };
    if let Some(t) = tracing.as_deref_mut() {
        t.intents = intents.clone();
    }

    // risk.rhai, one call per intent, in order; earlier acceptances count against later ones.
    let mut judged = Vec::with_capacity(intents.len());
    let mut accepted_count: INT = 0;
    let mut accepted_notional = Decimal::ZERO;
    let mut risk_cost = costs[Stage::Risk as usize];
    // The arguments match the active call's while the intents and every earlier verdict do.
    let mut verdicts_same = mode_same;
    for (i, intent) in intents.into_iter().enumerate() {
        let args = || {
            let mut risk_ctx = ctx(Stage::Risk, mode);
            risk_ctx.accepted_count = accepted_count;
            risk_ctx.accepted_notional = accepted_notional;
            let intent_view = IntentView {
                symbol: intent.symbol.as_str().into(),
                side: intent.side.as_str().into(),
                price: intent.price.value(),
                qty: intent.qty.value(),
                tag: intent.tag.as_str().into(),
            };
            vec![Dynamic::from(intent_view), Dynamic::from(risk_ctx)]
        };
        let same = verdicts_same
            && reuse
                .is_some_and(|(t, _)| t.intents.get(i).is_some_and(|a| same_intent(a, &intent)));
        let ((result, cost), traced) = run_entry(
            Stage::Risk,
            Stage::Risk.entry().0,
            &mut states[Stage::Risk as usize],
            &args,
            reuse.map(|(t, plan)| (plan, t.risk.get(i), same)),
        );
        if let (Some(t), Some(traced)) = (tracing.as_deref_mut(), traced) {
            t.risk.push(traced);
        }
        risk_cost.operations += cost.operations;
        risk_cost.micros += cost.micros;
        let verdict = match result
            .map_err(|e| e.to_string())
            .and_then(|v| parse_verdict(v, &intent))
        {
            Ok(v) => v,
            Err(e) => {
                anomalies.push(rule_error(Stage::Risk, e));
                Verdict::Reject {
                    reason: "RISK_RULE_ERROR".into(),
                }
            }
        };
        verdicts_same = same
            && reuse
                .is_some_and(|(t, _)| t.verdicts.get(i).is_some_and(|v| same_verdict(v, &verdict)));
        if let Some(t) = tracing.as_deref_mut() {
            t.verdicts.push(verdict.clone());
        }
        match &verdict {
            Verdict::Accept => {
                accepted_count += 1;
                accepted_notional += intent.notional();
            }
            Verdict::Resize { qty } => {
                accepted_count += 1;
                accepted_notional += intent.price.value() * qty.value();
            }
            Verdict::Reject { .. } => {}
        }
        judged.push(Judged {
            intent,
            verdict,
            cost,
        });
    }
    costs[Stage::Risk as usize] = risk_cost;
    dedupe(&mut anomalies);

    Decision {
        anomalies,
        mode,
        mode_reasons,
        judged,
        states,
        costs,
        rule_hash: rules.hash.clone(),
    }
}
