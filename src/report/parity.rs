//! `btcbot parity A.db B.db`: two runs compared cycle by cycle through their fingerprints (a
//! hash of the cycle's inputs, anomalies, mode, verdicts, actions and the rule-set hash).

use super::utc;
use crate::store::{CycleRow, DecisionRow, Store, StoreError};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parity {
    /// Cycles present in both.
    pub compared: usize,
    /// Cycles present in both whose fingerprints differ.
    pub differing: Vec<i64>,
    pub only_a: usize,
    pub only_b: usize,
    /// The first divergence, described with both sides: the first cycle whose decisions
    /// differ when there is one, else the first whose fingerprint does.
    pub first: Option<String>,
    /// Both runs' rule-set hashes differ (then every fingerprint does).
    pub rules_differ: bool,
    /// Cycles whose mode, anomalies or verdicts differ (a subset of `differing`).
    pub decisions_differ: Vec<i64>,
}

impl Parity {
    pub fn identical(&self) -> bool {
        self.differing.is_empty() && self.only_a == 0 && self.only_b == 0
    }
}

fn decision_text(d: &DecisionRow) -> String {
    format!(
        "#{} {} {} {} @ {} → {} ({})",
        d.seq,
        d.symbol.as_str(),
        d.side.as_str(),
        d.qty,
        d.price,
        d.reason_code,
        d.action
    )
}

fn side(out: &mut String, name: &str, c: &CycleRow) {
    let _ = writeln!(
        out,
        "  {name}: rules {} mode {}{} fingerprint {}",
        c.rule_hash,
        c.mode.as_str(),
        if c.mode_reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.mode_reasons.join(", "))
        },
        c.fingerprint
    );
}

fn describe(a: &Store, b: &Store, ca: &CycleRow, cb: &CycleRow) -> Result<String, StoreError> {
    let mut out = String::new();
    if ca.rule_hash != cb.rule_hash {
        let _ = writeln!(
            out,
            "the rule sets differ (A {}, B {}), so every fingerprint does",
            ca.rule_hash, cb.rule_hash
        );
    }
    let _ = writeln!(
        out,
        "first divergence at cycle {} ({})",
        ca.cycle_id,
        utc(ca.market_ts_ms)
    );
    if ca.market_ts_ms != cb.market_ts_ms {
        let _ = writeln!(
            out,
            "  market time differs: A {} B {}",
            ca.market_ts_ms, cb.market_ts_ms
        );
    }
    side(&mut out, "A", ca);
    side(&mut out, "B", cb);
    let (da, db) = (
        a.decisions(Some(ca.cycle_id))?,
        b.decisions(Some(cb.cycle_id))?,
    );
    let n = da.len().max(db.len());
    if n == 0 {
        let _ = writeln!(out, "  no intents on either side");
    }
    for i in 0..n {
        let (x, y) = (da.get(i).map(decision_text), db.get(i).map(decision_text));
        let mark = if x == y { " " } else { "≠" };
        let _ = writeln!(
            out,
            "  {mark} A {}",
            x.unwrap_or_else(|| "(no intent)".into())
        );
        let _ = writeln!(
            out,
            "  {mark} B {}",
            y.unwrap_or_else(|| "(no intent)".into())
        );
    }
    let codes = |s: &Store, id| -> Result<Vec<String>, StoreError> {
        Ok(s.anomalies(Some(id))?
            .into_iter()
            .map(|r| format!("{}({})", r.anomaly.code, r.anomaly.severity.as_str()))
            .collect())
    };
    let (aa, ab) = (codes(a, ca.cycle_id)?, codes(b, cb.cycle_id)?);
    if aa != ab {
        let _ = writeln!(
            out,
            "  anomalies: A [{}] B [{}]",
            aa.join(" "),
            ab.join(" ")
        );
    }
    Ok(out)
}

/// Per cycle, what was decided, without the rule hash: mode, reasons, anomaly codes, and each
/// intent with its verdict and action.
fn decided(s: &Store) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for c in s.cycles()? {
        out.entry(c.cycle_id).or_default().push(format!(
            "{} {:?}",
            c.mode.as_str(),
            c.mode_reasons
        ));
    }
    for a in s.anomalies(None)? {
        out.entry(a.cycle_id).or_default().push(format!(
            "{}({})",
            a.anomaly.code,
            a.anomaly.severity.as_str()
        ));
    }
    for d in s.decisions(None)? {
        out.entry(d.cycle_id).or_default().push(decision_text(&d));
    }
    Ok(out)
}

/// Compares two databases.
///
/// # Errors
/// A database that cannot be read.
pub fn parity(a: &Store, b: &Store) -> Result<Parity, StoreError> {
    let ca: BTreeMap<i64, CycleRow> = a.cycles()?.into_iter().map(|c| (c.cycle_id, c)).collect();
    let cb: BTreeMap<i64, CycleRow> = b.cycles()?.into_iter().map(|c| (c.cycle_id, c)).collect();
    let mut p = Parity::default();
    let mut first_any = None;
    let (mut da, mut db) = (None, None);
    for (id, x) in &ca {
        let Some(y) = cb.get(id) else {
            p.only_a += 1;
            continue;
        };
        p.compared += 1;
        if x.fingerprint == y.fingerprint && x.market_ts_ms == y.market_ts_ms {
            continue;
        }
        p.differing.push(*id);
        if x.rule_hash != y.rule_hash {
            p.rules_differ = true;
        }
        if first_any.is_none() {
            first_any = Some((x, y));
        }
        // Read the decisions only once something differs.
        let (ra, rb) = (
            match &da {
                Some(d) => d,
                None => da.insert(decided(a)?),
            },
            match &db {
                Some(d) => d,
                None => db.insert(decided(b)?),
            },
        );
        if ra.get(id) != rb.get(id) || x.market_ts_ms != y.market_ts_ms {
            if p.decisions_differ.is_empty() {
                p.first = Some(describe(a, b, x, y)?);
            }
            p.decisions_differ.push(*id);
        }
    }
    if p.first.is_none()
        && let Some((x, y)) = first_any
    {
        p.first = Some(describe(a, b, x, y)?);
    }
    p.only_b = cb.keys().filter(|id| !ca.contains_key(id)).count();
    if p.first.is_none() && (p.only_a > 0 || p.only_b > 0) {
        p.first = Some(format!(
            "the runs have different cycles: {} only in A, {} only in B\n",
            p.only_a, p.only_b
        ));
    }
    Ok(p)
}
