//! `btcbot rules diff`: two runs of the same data, one per rule set, compared — verdicts that
//! changed (with both reason codes), mode changes, orders and fills added or removed, and the
//! PnL, drawdown and exposure deltas.

use super::merge::merge_groups;
use super::run::RunReport;
use super::{VerdictDiff, write_verdict_changes};
use crate::domain::Mode;
use crate::store::{Store, StoreError, TradeKey, Trades};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The comparison of a base run (A) and a candidate run (B).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffReport {
    pub base_hash: String,
    pub candidate_hash: String,
    pub verdicts: VerdictDiff,
    /// Cycles whose mode differs, by (base mode, candidate mode).
    pub mode_changes: BTreeMap<(String, String), usize>,
    /// Orders only in one run, keyed by (cycle, symbol, side, price, qty).
    pub orders_removed: usize,
    pub orders_added: usize,
    /// Fills only in one run, keyed by (time, symbol, side, price, qty).
    pub fills_removed: usize,
    pub fills_added: usize,
    pub base: RunReport,
    pub candidate: RunReport,
    /// The candidate's verdicts on the base run's very inputs and script state (it ran as the
    /// base's shadow, mirroring its state; per quote, judging beside it on its quotes):
    /// differences are the rules' alone. Empty when `same_inputs_unavailable`.
    pub same_inputs: super::ShadowSummary,
    /// Both configs evaluate per quote (`cycle.evaluate: per_quote`): the two runs' verdicts
    /// are matched quote by quote (a run's cycle is its quote's index), and the candidate
    /// judges beside the base on its quotes and state unless `same_inputs_unavailable`.
    pub per_quote: bool,
    /// Why there is no comparison on the same inputs (a per-quote candidate that asks for
    /// other EMAs than the base): `same_inputs` is then empty.
    pub same_inputs_unavailable: Option<String>,
}

impl DiffReport {
    /// On identical inputs, the candidate accepted something the base rejected. Without a
    /// comparison on identical inputs (`same_inputs_unavailable`): at the same quote of the
    /// two runs, or an intent the candidate accepted where the base judged none. Once the
    /// runs' positions differ their intents no longer line up, so such an acceptance counts
    /// too (fail closed).
    pub fn loosens(&self) -> bool {
        if self.same_inputs_unavailable.is_some() {
            !self.verdicts.loosened.is_empty() || self.verdicts.only_b_accepted > 0
        } else {
            !self.same_inputs.loosened.is_empty()
        }
    }
    /// The base run's cycles in a mode other than normal, by mode. Their verdicts are the
    /// mode's, so a diff over data where the base is mostly degraded proves little about the
    /// candidate's limits; the text says so.
    pub fn base_restricted_modes(&self) -> BTreeMap<String, usize> {
        self.base
            .modes
            .iter()
            .filter(|(mode, n)| mode.as_str() != Mode::Normal.as_str() && **n > 0)
            .map(|(mode, n)| (mode.clone(), *n))
            .collect()
    }
    /// Anything at all differs.
    pub fn differs(&self) -> bool {
        self.verdicts
            != VerdictDiff {
                a_intents: self.verdicts.a_intents,
                b_intents: self.verdicts.b_intents,
                ..VerdictDiff::default()
            }
            || !self.mode_changes.is_empty()
            || self.orders_added + self.orders_removed + self.fills_added + self.fills_removed > 0
    }
}

/// Compares the base run's database with the candidate's: everything but each run's own
/// report (`base`, `candidate`: `run_report` of each, which the caller reads beside it). The
/// two databases are walked side by side, one cycle (or fill time) at a time, so memory does
/// not grow with the runs' length, only with how many verdicts changed.
///
/// # Errors
/// A database that cannot be read.
pub fn compare_runs(base: &Store, candidate: &Store) -> Result<DiffReport, StoreError> {
    let mut d = DiffReport {
        base_hash: base.first_rule_hash()?.unwrap_or_default(),
        candidate_hash: candidate.first_rule_hash()?.unwrap_or_default(),
        ..DiffReport::default()
    };
    let verdicts = &mut d.verdicts;
    base.with_decisions(|a| {
        candidate.with_decisions(|b| {
            merge_groups(
                a,
                b,
                |row| row.cycle_id,
                |_, a, b| {
                    verdicts.add(a, b, "base", "candidate");
                },
            )
        })
    })???;
    let mode_changes = &mut d.mode_changes;
    base.with_cycle_modes(|a| {
        candidate.with_cycle_modes(|b| {
            merge_groups(
                a,
                b,
                |row| row.0,
                |_, a, b| {
                    if let (Some((_, mode_a)), Some((_, mode_b))) = (a.first(), b.first())
                        && mode_a != mode_b
                    {
                        *mode_changes
                            .entry((mode_a.as_str().to_string(), mode_b.as_str().to_string()))
                            .or_default() += 1;
                    }
                },
            )
        })
    })???;
    (d.orders_removed, d.orders_added) = trades_only_in_each(base, candidate, Trades::Orders)?;
    (d.fills_removed, d.fills_added) = trades_only_in_each(base, candidate, Trades::Fills)?;
    Ok(d)
}

/// How many distinct trades only `a` has, and only `b`, matched by [`TradeKey`].
fn trades_only_in_each(a: &Store, b: &Store, trades: Trades) -> Result<(usize, usize), StoreError> {
    let (mut only_a, mut only_b) = (0, 0);
    a.with_trade_keys(trades, |rows_a| {
        b.with_trade_keys(trades, |rows_b| {
            merge_groups(
                rows_a,
                rows_b,
                |key| key.0,
                |_, ga, gb| {
                    let (ga, gb): (BTreeSet<TradeKey>, BTreeSet<TradeKey>) =
                        (ga.into_iter().collect(), gb.into_iter().collect());
                    only_a += ga.difference(&gb).count();
                    only_b += gb.difference(&ga).count();
                },
            )
        })
    })???;
    Ok((only_a, only_b))
}

fn delta(a: Decimal, b: Decimal) -> String {
    format!(
        "{} → {} ({:+})",
        a.round_dp(2),
        b.round_dp(2),
        (b - a).round_dp(2)
    )
}

/// The text form.
pub fn diff_text(d: &DiffReport) -> String {
    let mut out = String::new();
    let v = &d.verdicts;
    let _ = writeln!(
        out,
        "rules diff: base {} vs candidate {}",
        d.base_hash, d.candidate_hash
    );
    let restricted = d.base_restricted_modes();
    if !restricted.is_empty() {
        let _ = writeln!(
            out,
            "note: {} of the base's {} cycles were not in normal mode ({}): a mode rejects the \
             intents it forbids before any limit is checked, so those test no other limit",
            restricted.values().sum::<usize>(),
            d.base.cycles,
            super::run::counts(&restricted)
        );
    }
    let s = &d.same_inputs;
    if let Some(why) = &d.same_inputs_unavailable {
        let _ = writeln!(
            out,
            "no comparison on the same inputs ({why}); a loosening is judged on the two \
             replays below: at the same quote, or an intent only the candidate accepted ({} here)",
            v.only_b_accepted
        );
    } else {
        if d.per_quote {
            let _ = writeln!(
                out,
                "on the same quotes, positions and script state (the candidate judging beside \
                 the base run, {} quotes with an intent or a fill):",
                s.cycles_compared
            );
        } else {
            let _ = writeln!(
                out,
                "on the same inputs and script state (the candidate as the base run's shadow, {} cycles):",
                s.cycles_compared
            );
        }
        write_verdict_changes(&mut out, 12, "base", &s.tightened, &s.loosened);
        let _ = writeln!(out, "  modes:      {} cycles differ", s.mode_differs);
    }
    let _ = writeln!(out, "each rule set trading on its own (two replays):");
    let _ = writeln!(
        out,
        "  intents:    base {} candidate {} (only base {}, only candidate {})",
        v.a_intents, v.b_intents, v.only_a, v.only_b
    );
    write_verdict_changes(&mut out, 12, "base", &v.tightened, &v.loosened);
    let _ = writeln!(
        out,
        "  other:      {} rejected by both for different reasons",
        v.other_reason
    );
    if d.mode_changes.is_empty() {
        let _ = writeln!(out, "  modes:      no cycle changed mode");
    }
    for ((a, b), n) in &d.mode_changes {
        let _ = writeln!(out, "  modes:      {n} cycles {a} → {b}");
    }
    let _ = writeln!(
        out,
        "  orders:     {} removed, {} added; fills: {} removed, {} added",
        d.orders_removed, d.orders_added, d.fills_removed, d.fills_added
    );
    let _ = writeln!(
        out,
        "  pnl:        realized {}; fees {}",
        delta(d.base.realized_pnl, d.candidate.realized_pnl),
        delta(d.base.fees, d.candidate.fees)
    );
    let _ = writeln!(
        out,
        "  equity:     {}; max drawdown {}",
        delta(d.base.equity_end, d.candidate.equity_end),
        delta(d.base.max_drawdown, d.candidate.max_drawdown)
    );
    let _ = writeln!(
        out,
        "  exposure:   max {}; mean {}",
        delta(d.base.max_exposure, d.candidate.max_exposure),
        delta(d.base.mean_exposure, d.candidate.mean_exposure)
    );
    if !v.changed.is_empty() {
        let _ = writeln!(out, "  changed verdicts:");
        for (cycle, sym, side, a, b) in v.changed.iter().take(CHANGED_VERDICT_LINES) {
            let _ = writeln!(out, "    cycle {cycle} {sym} {side}: {a} → {b}");
        }
        if v.changed.len() > CHANGED_VERDICT_LINES {
            let _ = writeln!(
                out,
                "    … and {} more (the first {CHANGED_VERDICT_LINES} of {} are shown; \
                 --format json lists every one)",
                v.changed.len() - CHANGED_VERDICT_LINES,
                v.changed.len()
            );
        }
    }
    out
}

/// Changed verdicts the text lists one by one: a months-long replay can change thousands, which
/// a person reads as counts (above) and a few examples; the JSON keeps them all.
const CHANGED_VERDICT_LINES: usize = 50;

/// The JSON form (`--format json`), for CI: [`diff_summary_json`] and `"changed"`, every
/// changed verdict as `{cycle, symbol, side, base, candidate}`, written as it is serialized
/// (a long run can change hundreds of thousands; a JSON tree of them would cost ~1 KB each).
///
/// # Errors
/// Writing to `out` fails.
pub fn write_diff_json(d: &DiffReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    #[derive(serde::Serialize)]
    struct Changed<'a> {
        cycle: i64,
        symbol: &'a str,
        side: &'a str,
        base: &'a str,
        candidate: &'a str,
    }
    struct AllChanged<'a>(&'a [(i64, String, String, String, String)]);
    impl serde::Serialize for AllChanged<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(
                self.0
                    .iter()
                    .map(|(cycle, symbol, side, base, candidate)| Changed {
                        cycle: *cycle,
                        symbol,
                        side,
                        base,
                        candidate,
                    }),
            )
        }
    }
    #[derive(serde::Serialize)]
    struct Whole<'a> {
        #[serde(flatten)]
        summary: serde_json::Value,
        changed: AllChanged<'a>,
    }
    let whole = Whole {
        summary: diff_summary_json(d),
        changed: AllChanged(&d.verdicts.changed),
    };
    serde_json::to_writer(&mut *out, &whole).map_err(std::io::Error::other)?;
    writeln!(out)
}

/// The JSON form without the list of changed verdicts.
fn diff_summary_json(d: &DiffReport) -> serde_json::Value {
    let v = &d.verdicts;
    let money = |x: Decimal| x.to_string();
    let evaluate = if d.per_quote {
        crate::config::Evaluate::PerQuote
    } else {
        crate::config::Evaluate::PerCycle
    }
    .as_str();
    let same_inputs = if d.same_inputs_unavailable.is_some() {
        serde_json::Value::Null
    } else {
        json!({"cycles": d.same_inputs.cycles_compared,
               "tightened": d.same_inputs.tightened,
               "loosened": d.same_inputs.loosened,
               "mode_differs": d.same_inputs.mode_differs})
    };
    json!({
        "base_rules": d.base_hash,
        "candidate_rules": d.candidate_hash,
        "intents": {"base": v.a_intents, "candidate": v.b_intents,
                    "only_base": v.only_a, "only_candidate": v.only_b,
                    "only_candidate_accepted": v.only_b_accepted},
        "tightened": v.tightened,
        "loosened": v.loosened,
        "other_reason": v.other_reason,
        "mode_changes": d.mode_changes.iter().map(|((a, b), n)| json!({
            "base": a, "candidate": b, "cycles": n
        })).collect::<Vec<_>>(),
        "orders": {"removed": d.orders_removed, "added": d.orders_added},
        "fills": {"removed": d.fills_removed, "added": d.fills_added},
        "base": {"realized_pnl": money(d.base.realized_pnl), "fees": money(d.base.fees),
                 "equity_end": money(d.base.equity_end), "max_drawdown": money(d.base.max_drawdown),
                 "max_exposure": money(d.base.max_exposure)},
        "candidate": {"realized_pnl": money(d.candidate.realized_pnl), "fees": money(d.candidate.fees),
                 "equity_end": money(d.candidate.equity_end),
                 "max_drawdown": money(d.candidate.max_drawdown),
                 "max_exposure": money(d.candidate.max_exposure)},
        "evaluate": evaluate,
        "base_cycles_not_normal": d.base_restricted_modes().values().sum::<usize>(),
        "same_inputs": same_inputs,
        "same_inputs_unavailable": d.same_inputs_unavailable,
        "loosens": d.loosens(),
        "differs": d.differs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_changes(n: usize) -> DiffReport {
        let mut d = DiffReport::default();
        d.verdicts.changed = (0..n)
            .map(|i| {
                let cycle = i64::try_from(i).unwrap_or(i64::MAX);
                let reasons = ("ACCEPT".to_string(), "MAX_ORDER_NOTIONAL".to_string());
                (cycle, "BTCTRY".into(), "buy".into(), reasons.0, reasons.1)
            })
            .collect();
        d
    }

    #[test]
    fn cycles_the_base_spent_degraded_are_called_out() {
        let mut d = with_changes(0);
        d.base.cycles = 10;
        d.base.modes = [("normal".to_string(), 10)].into();
        assert!(!diff_text(&d).contains("note:"));
        d.base.modes = [
            ("normal".to_string(), 4),
            ("observe_only".to_string(), 5),
            ("reduce_only".to_string(), 1),
        ]
        .into();
        let text = diff_text(&d);
        assert!(
            text.contains(
                "note: 6 of the base's 10 cycles were not in normal mode (observe_only=5 \
                 reduce_only=1)"
            ),
            "{text}"
        );
        let mut bytes = Vec::new();
        write_diff_json(&d, &mut bytes).unwrap_or_else(|e| panic!("{e}"));
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["base_cycles_not_normal"], json!(6));
    }

    #[test]
    fn the_text_lists_the_first_changed_verdicts_and_counts_the_rest() {
        let listed = |text: &str| text.lines().filter(|l| l.starts_with("    cycle ")).count();
        let few = diff_text(&with_changes(CHANGED_VERDICT_LINES));
        assert_eq!(listed(&few), CHANGED_VERDICT_LINES);
        assert!(!few.contains("more"), "{few}");
        let many = diff_text(&with_changes(CHANGED_VERDICT_LINES + 7));
        assert_eq!(listed(&many), CHANGED_VERDICT_LINES);
        assert!(
            many.contains("… and 7 more (the first 50 of 57 are shown"),
            "{many}"
        );
        assert!(many.contains("    cycle 49 BTCTRY buy: ACCEPT → MAX_ORDER_NOTIONAL"));
        assert!(!many.contains("    cycle 50 "), "{many}");
        let mut bytes = Vec::new();
        write_diff_json(&with_changes(CHANGED_VERDICT_LINES + 7), &mut bytes)
            .unwrap_or_else(|e| panic!("{e}"));
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["changed"].as_array().map(Vec::len), Some(57));
        assert_eq!(
            json["changed"][56],
            json!({"cycle": 56, "symbol": "BTCTRY", "side": "buy", "base": "ACCEPT",
                   "candidate": "MAX_ORDER_NOTIONAL"})
        );
        assert_eq!(json["loosens"], json!(false));
    }
}
