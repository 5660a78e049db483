//! `btcbot explain --cycle ID`: one cycle's inputs, anomalies, mode and each intent's path
//! through risk to what the engine did.

use super::utc;
use crate::store::{DecisionRow, Store};
use std::fmt::Write as _;

fn decision_line(out: &mut String, d: &DecisionRow, indent: &str) {
    let _ = writeln!(
        out,
        "{indent}#{} {} {} {} @ {} [{}]",
        d.seq,
        d.symbol.as_str(),
        d.side.as_str(),
        d.qty,
        d.price,
        d.tag
    );
    let verdict = match d.verdict.as_str() {
        "resize" => format!(
            "RESIZE to {}",
            d.final_qty.map_or("?".to_string(), |q| q.to_string())
        ),
        _ => d.reason_code.clone(),
    };
    let _ = writeln!(
        out,
        "{indent}   risk: {verdict} by {}:{} ({} ops, {} µs, rules {})",
        d.script, d.function, d.operations, d.eval_us, d.rule_hash
    );
    let outcome = match (d.action.as_str(), d.final_qty) {
        (action, Some(q)) => format!("{action} {q}"),
        (action, None) => action.to_string(),
    };
    let _ = writeln!(out, "{indent}   engine: {outcome}");
}

/// The text `btcbot explain --cycle ID` prints.
///
/// # Errors
/// An unknown cycle or a database that cannot be read.
pub fn explain(store: &Store, cycle_id: i64) -> Result<String, String> {
    let cycle = store
        .cycle(cycle_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("cycle {cycle_id} is not in this database"))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cycle {} at {} (market time {} ms), rules {}",
        cycle.cycle_id,
        utc(cycle.market_ts_ms),
        cycle.market_ts_ms,
        cycle.rule_hash
    );
    let reasons = if cycle.mode_reasons.is_empty() {
        String::new()
    } else {
        format!(" because {}", cycle.mode_reasons.join(", "))
    };
    let _ = writeln!(out, "mode: {}{reasons}", cycle.mode.as_str());

    let _ = writeln!(out, "inputs:");
    match store.cycle_inputs(cycle_id).map_err(|e| e.to_string())? {
        Some(inputs) => {
            let markets: Vec<serde_json::Value> =
                serde_json::from_str(&inputs.markets_json).unwrap_or_default();
            if markets.is_empty() {
                let _ = writeln!(out, "  markets: none this cycle");
            }
            for m in &markets {
                let field = |k: &str| match &m[k] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = writeln!(
                    out,
                    "  {:<8} bid {} × {}  ask {} × {}  age {} ms",
                    field("symbol"),
                    field("bid"),
                    field("bid_qty"),
                    field("ask"),
                    field("ask_qty"),
                    field("age_ms")
                );
            }
            let _ = writeln!(
                out,
                "  open orders: {}  stats: {}",
                inputs.open_orders, inputs.stats_json
            );
        }
        None => {
            let _ = writeln!(out, "  (not recorded for this cycle)");
        }
    }
    if let Some(s) = store.equity_snapshot(cycle_id).map_err(|e| e.to_string())? {
        let _ = writeln!(
            out,
            "  portfolio: cash {}  equity {}  peak {}  drawdown {}  realized {}  unrealized {}  fees {}",
            s.cash, s.equity, s.peak_equity, s.drawdown, s.realized_pnl, s.unrealized_pnl, s.fees
        );
        let _ = writeln!(
            out,
            "  today: {} since {}; week: {} since {}; positions {}",
            s.equity - s.day_start_equity,
            s.day_start_equity,
            s.equity - s.week_start_equity,
            s.week_start_equity,
            s.positions_json
        );
    }

    let anomalies = store.anomalies(Some(cycle_id)).map_err(|e| e.to_string())?;
    if anomalies.is_empty() {
        let _ = writeln!(out, "anomalies: none");
    } else {
        let _ = writeln!(out, "anomalies:");
        for a in &anomalies {
            let detail: Vec<String> = a
                .anomaly
                .detail
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                out,
                "  {} ({}){} {}",
                a.anomaly.code,
                a.anomaly.severity.as_str(),
                a.anomaly
                    .symbol
                    .as_ref()
                    .map_or(String::new(), |s| format!(" {}", s.as_str())),
                detail.join(" ")
            );
        }
    }

    let decisions = store.decisions(Some(cycle_id)).map_err(|e| e.to_string())?;
    if decisions.is_empty() {
        let _ = writeln!(out, "intents: none");
    } else {
        let _ = writeln!(out, "intents:");
        for d in &decisions {
            decision_line(&mut out, d, "  ");
        }
    }
    let orders: Vec<_> = store
        .orders()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|o| o.cycle_id == cycle_id)
        .collect();
    for o in &orders {
        let _ = writeln!(
            out,
            "  order {} {} {} {} @ {}: now {}",
            o.client_id,
            o.symbol.as_str(),
            o.side.as_str(),
            o.qty.value(),
            o.price.value(),
            o.status.as_str()
        );
    }

    let shadow = store.shadow_cycles().map_err(|e| e.to_string())?;
    if let Some(sc) = shadow.iter().find(|c| c.cycle_id == cycle_id) {
        let _ = writeln!(
            out,
            "shadow (rules {}, never acted on): mode {}{}",
            sc.rule_hash,
            sc.mode.as_str(),
            if sc.mode_reasons.is_empty() {
                String::new()
            } else {
                format!(" because {}", sc.mode_reasons.join(", "))
            }
        );
        for d in store
            .shadow_decisions(Some(cycle_id))
            .map_err(|e| e.to_string())?
        {
            decision_line(&mut out, &d, "  ");
        }
    }
    Ok(out)
}
