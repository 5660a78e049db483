//! Reading a run's database back for people: the shadow comparison (`btcbot report --shadow`)
//! and one cycle's decision path (`btcbot explain --cycle ID`). Read-only.

use crate::store::{DecisionRow, Store, StoreError};
use run::counts;
use std::collections::BTreeMap;
use std::fmt::Write as _;

mod diff;
mod explain;
mod html;
mod merge;
mod parity;
mod run;
pub use diff::{DiffReport, compare_runs, diff_text, write_diff_json};
pub use explain::explain;
pub use html::html_report;
pub use parity::{Parity, parity};
pub use run::{RunReport, run_report, run_text};

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (UTC, proleptic Gregorian).
pub fn utc(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

fn accepted(d: &DecisionRow) -> bool {
    d.verdict == "accept" || d.verdict == "resize"
}

/// Intents keyed by (cycle, symbol, side, n-th such intent of the cycle), so the active and the
/// candidate sets can be compared even when their strategies emit different lists.
fn keyed(rows: Vec<DecisionRow>) -> BTreeMap<(i64, String, String, u32), DecisionRow> {
    let mut seen: BTreeMap<(i64, String, String), u32> = BTreeMap::new();
    rows.into_iter()
        .map(|d| {
            let base = (
                d.cycle_id,
                d.symbol.as_str().to_string(),
                d.side.as_str().to_string(),
            );
            let n = seen.entry(base.clone()).or_default();
            let key = (base.0, base.1, base.2, *n);
            *n += 1;
            (key, d)
        })
        .collect()
}

/// Two lists of verdicts matched intent by intent (see [`keyed`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerdictDiff {
    pub a_intents: usize,
    pub b_intents: usize,
    /// Accepted by A, rejected by B: B's reason → count.
    pub tightened: BTreeMap<String, usize>,
    /// Rejected by A, accepted by B: A's reason → count.
    pub loosened: BTreeMap<String, usize>,
    pub other_reason: usize,
    pub only_a: usize,
    pub only_b: usize,
    /// Of `only_b`, the intents B accepted (or resized).
    pub only_b_accepted: usize,
    /// Every tightened / loosened intent: (cycle, symbol, side, A's reason, B's reason).
    pub changed: Vec<(i64, String, String, String, String)>,
    /// The first differences, as lines.
    pub examples: Vec<String>,
}

/// The first differences a report shows as lines.
const EXAMPLES: usize = 10;

impl VerdictDiff {
    /// Adds the comparison of `a` and `b`, whose cycles come after every cycle added before
    /// (so that the changes stay sorted): a diff adds the runs one cycle at a time.
    pub fn add(&mut self, a: Vec<DecisionRow>, b: Vec<DecisionRow>, a_name: &str, b_name: &str) {
        let (a, b) = (keyed(a), keyed(b));
        self.a_intents += a.len();
        self.b_intents += b.len();
        for (key, x) in &a {
            let Some(y) = b.get(key) else {
                self.only_a += 1;
                continue;
            };
            let example = |v: &mut VerdictDiff| {
                if v.examples.len() < EXAMPLES {
                    v.examples.push(format!(
                        "cycle {} {} {}: {a_name} {} ({}) | {b_name} {} ({})",
                        key.0, key.1, key.2, x.reason_code, x.action, y.reason_code, y.action
                    ));
                }
            };
            let record = |v: &mut VerdictDiff| {
                v.changed.push((
                    key.0,
                    key.1.clone(),
                    key.2.clone(),
                    x.reason_code.clone(),
                    y.reason_code.clone(),
                ));
                example(v);
            };
            match (accepted(x), accepted(y)) {
                (true, false) => {
                    *self.tightened.entry(y.reason_code.clone()).or_default() += 1;
                    record(self);
                }
                (false, true) => {
                    *self.loosened.entry(x.reason_code.clone()).or_default() += 1;
                    record(self);
                }
                (false, false) if x.reason_code != y.reason_code => {
                    self.other_reason += 1;
                    example(self);
                }
                _ => {}
            }
        }
        for (key, y) in &b {
            if !a.contains_key(key) {
                self.only_b += 1;
                self.only_b_accepted += usize::from(accepted(y));
            }
        }
    }
}

/// What the shadow comparison found, for tests and the text report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowSummary {
    pub cycles_compared: usize,
    pub mode_differs: usize,
    /// (active mode, candidate mode) → cycles.
    pub mode_pairs: BTreeMap<(String, String), usize>,
    pub active_intents: usize,
    pub candidate_intents: usize,
    /// Accepted by the active set, rejected by the candidate: candidate reason → count.
    pub tightened: BTreeMap<String, usize>,
    /// Rejected by the active set, accepted by the candidate: active reason → count.
    pub loosened: BTreeMap<String, usize>,
    /// Both rejected, for different reasons.
    pub other_reason: usize,
    pub only_active: usize,
    pub only_candidate: usize,
    pub active_placed: u32,
    pub candidate_would_place: u32,
    /// The first differing verdicts, as lines.
    pub examples: Vec<String>,
}

/// Compares the active decisions with the shadow's "would have" rows.
///
/// # Errors
/// A database that cannot be read.
pub fn shadow_summary(store: &Store) -> Result<ShadowSummary, StoreError> {
    let mut s = ShadowSummary::default();
    store.each_shadow_comparison(|c| {
        s.cycles_compared += 1;
        s.active_placed += c.active_placed;
        s.candidate_would_place += c.would_place;
        if c.active_mode != c.shadow_mode {
            s.mode_differs += 1;
            *s.mode_pairs
                .entry((c.active_mode.as_str().into(), c.shadow_mode.as_str().into()))
                .or_default() += 1;
        }
    })?;
    // The active run and its shadow walked side by side, a cycle at a time.
    let mut v = VerdictDiff::default();
    store.with_decisions_of_shadowed_cycles(|active| {
        store.with_shadow_decisions(|shadow| {
            merge::merge_groups(
                active,
                shadow,
                |d| d.cycle_id,
                |_, a, b| {
                    v.add(a, b, "active", "candidate");
                },
            )
        })
    })???;
    s.active_intents = v.a_intents;
    s.candidate_intents = v.b_intents;
    s.tightened = v.tightened;
    s.loosened = v.loosened;
    s.other_reason = v.other_reason;
    s.only_active = v.only_a;
    s.only_candidate = v.only_b;
    s.examples = v.examples;
    s.examples.truncate(10);
    Ok(s)
}

/// The tightened and loosened lines of a verdict comparison of `a`'s verdicts with the
/// candidate's, their labels padded to `width`.
fn write_verdict_changes(
    out: &mut String,
    width: usize,
    a: &str,
    tightened: &BTreeMap<String, usize>,
    loosened: &BTreeMap<String, usize>,
) {
    let _ = writeln!(
        out,
        "  {:<width$}{} accepted by {a}, rejected by candidate: {}",
        "tightened:",
        tightened.values().sum::<usize>(),
        counts(tightened)
    );
    let _ = writeln!(
        out,
        "  {:<width$}{} rejected by {a}, accepted by candidate: {}",
        "loosened:",
        loosened.values().sum::<usize>(),
        counts(loosened)
    );
}

/// The text `btcbot report --shadow` prints.
pub fn shadow_text(s: &ShadowSummary) -> String {
    let mut out = String::new();
    if s.cycles_compared == 0 {
        return "shadow: no shadow rows in this database (set `shadow:` in rules.yaml)\n".into();
    }
    let _ = writeln!(out, "shadow comparison over {} cycles", s.cycles_compared);
    let _ = writeln!(out, "  mode:        differs in {} cycles", s.mode_differs);
    for ((a, c), n) in &s.mode_pairs {
        let _ = writeln!(out, "               active {a} → candidate {c}: {n}");
    }
    let _ = writeln!(
        out,
        "  intents:     active {} candidate {} (only active {}, only candidate {})",
        s.active_intents, s.candidate_intents, s.only_active, s.only_candidate
    );
    write_verdict_changes(&mut out, 13, "active", &s.tightened, &s.loosened);
    let _ = writeln!(
        out,
        "  other:       {} rejected by both for different reasons",
        s.other_reason
    );
    let _ = writeln!(
        out,
        "  orders:      active placed {}, candidate would have placed {}",
        s.active_placed, s.candidate_would_place
    );
    if !s.examples.is_empty() {
        let _ = writeln!(out, "  first differences:");
        for e in &s.examples {
            let _ = writeln!(out, "    {e}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Intent, Mode, Price, Qty, Side, Symbol, Verdict};
    use crate::store::{CycleRecord, DecisionRecord, Durability, ShadowRecord};
    use rust_decimal::Decimal;

    fn decision(verdict: Verdict) -> DecisionRecord {
        DecisionRecord {
            intent: Intent {
                symbol: Symbol::new("BTCTRY").unwrap(),
                side: Side::Buy,
                price: Price::new(Decimal::from(100)).unwrap(),
                qty: Qty::new(Decimal::ONE).unwrap(),
                tag: "t".into(),
            },
            verdict,
            final_qty: None,
            action: "dry_run".into(),
            script: "risk.rhai".into(),
            function: "risk".into(),
            rule_hash: "h".into(),
            operations: 1,
            eval_us: 1,
        }
    }

    fn reject(reason: &str) -> Verdict {
        Verdict::Reject {
            reason: reason.into(),
        }
    }

    /// A store with the given cycles: (id, mode, the shadow's mode when the cycle has a shadow
    /// row). Every cycle decides one accepted intent; every shadow rejects it.
    fn store_with(
        dir: &std::path::Path,
        name: &str,
        hash: &str,
        cycles: &[(i64, Mode, Option<Mode>)],
    ) -> Store {
        let mut store = Store::open(&dir.join(name), Durability::Normal).unwrap();
        for &(cycle_id, mode, shadow) in cycles {
            let rec = CycleRecord {
                cycle_id,
                market_ts_ms: 1_767_225_600_000 + cycle_id * 1000,
                rule_hash: hash.into(),
                mode,
                decisions: vec![decision(Verdict::Accept)],
                orders_placed: 1,
                shadow: shadow.map(|m| ShadowRecord {
                    rule_hash: "cand".into(),
                    mode: m,
                    decisions: vec![decision(reject("MAX_POSITION_NOTIONAL"))],
                    would_place: 0,
                    ..ShadowRecord::default()
                }),
                ..CycleRecord::default()
            };
            store.commit_cycle(&rec).unwrap();
        }
        store
    }

    #[test]
    fn a_diff_and_a_shadow_summary_count_the_cycles_whose_modes_differ() {
        use Mode::{Normal, ObserveOnly, ReduceOnly};
        let dir = tempfile::tempdir().unwrap();
        // Gaps in both runs' ids, as per-quote runs have: only the ids both runs have (1, 4, 5
        // and 7) are compared; 2 and 9 are the base's alone, 3, 6 and 8 the candidate's.
        let base = store_with(
            dir.path(),
            "base.db",
            "base-hash",
            &[
                (1, Normal, Some(Normal)),
                (2, Normal, None),
                (4, ReduceOnly, Some(ObserveOnly)),
                (5, ObserveOnly, Some(ObserveOnly)),
                (7, Normal, None),
                (9, ReduceOnly, None),
            ],
        );
        let candidate = store_with(
            dir.path(),
            "cand.db",
            "cand-hash",
            &[
                (1, Normal, None),
                (3, ObserveOnly, None),
                (4, ReduceOnly, None),
                (5, Normal, None),
                (6, ReduceOnly, None),
                (7, ObserveOnly, None),
                (8, Normal, None),
            ],
        );
        let d = compare_runs(&base, &candidate).unwrap();
        assert_eq!(
            (d.base_hash.as_str(), d.candidate_hash.as_str()),
            ("base-hash", "cand-hash")
        );
        let pairs = |v: &[(&str, &str, usize)]| -> BTreeMap<(String, String), usize> {
            v.iter()
                .map(|(a, b, n)| (((*a).into(), (*b).into()), *n))
                .collect()
        };
        assert_eq!(
            d.mode_changes,
            pairs(&[("normal", "observe_only", 1), ("observe_only", "normal", 1)])
        );

        let s = shadow_summary(&base).unwrap();
        assert_eq!(s.cycles_compared, 3);
        assert_eq!(s.mode_differs, 1);
        assert_eq!(s.mode_pairs, pairs(&[("reduce_only", "observe_only", 1)]));
        assert_eq!((s.active_placed, s.candidate_would_place), (3, 0));
        // Only the decisions of the three shadowed cycles are compared.
        assert_eq!((s.active_intents, s.candidate_intents), (3, 3));
        assert_eq!(s.tightened.get("MAX_POSITION_NOTIONAL"), Some(&3));
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59.999Z");
    }
}
