//! The summary of a run's database: what `btcbot backtest` prints at the end and `btcbot report`
//! prints for any database.

use super::utc;
use crate::domain::Side;
use crate::ledger::Ledger;
use crate::store::{Store, StoreError};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A run, summarized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub cycles: usize,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Mode → cycles.
    pub modes: BTreeMap<String, usize>,
    /// Reason code → decisions.
    pub verdicts: BTreeMap<String, usize>,
    /// Order status → orders.
    pub orders: BTreeMap<String, usize>,
    pub fills: usize,
    /// Sell orders that realized a profit net of their fees / all sell orders with fills.
    pub winning_sells: usize,
    pub sells: usize,
    pub equity_start: Decimal,
    pub equity_end: Decimal,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub fees: Decimal,
    pub max_drawdown: Decimal,
    pub max_exposure: Decimal,
    /// Mean gross exposure over the cycles, rounded to 2 decimals.
    pub mean_exposure: Decimal,
}

/// Reads the whole database back.
///
/// # Errors
/// A database that cannot be read.
pub fn run_report(store: &Store) -> Result<RunReport, StoreError> {
    // Aggregated in SQLite or streamed row by row: the report's memory does not grow with the run.
    let (cycles, first_ms, last_ms) = store.cycle_span()?;
    let mut r = RunReport {
        cycles,
        first_ms,
        last_ms,
        modes: store.count_by("cycles", "mode")?.into_iter().collect(),
        verdicts: store
            .count_by("decisions", "reason_code")?
            .into_iter()
            .collect(),
        orders: store.count_by("orders", "status")?.into_iter().collect(),
        ..RunReport::default()
    };
    let mut sum = Decimal::ZERO;
    let mut n = 0usize;
    let mut first: Option<Decimal> = None;
    store.for_each_equity_snapshot(|s| {
        first.get_or_insert(s.equity);
        r.equity_end = s.equity;
        r.realized_pnl = s.realized_pnl;
        r.unrealized_pnl = s.unrealized_pnl;
        r.fees = s.fees;
        r.max_drawdown = r.max_drawdown.max(s.drawdown);
        r.max_exposure = r.max_exposure.max(s.gross_exposure);
        sum += s.gross_exposure;
        n += 1;
    })?;
    if let Some(f) = first {
        r.equity_start = f;
        r.mean_exposure = (sum / Decimal::from(n)).round_dp(2);
    }
    // Win rate: replay the fills through a ledger and net each sell order's realized PnL (one
    // small entry per sell order is all that is kept).
    let mut ledger = Ledger::new("TRY", Decimal::ZERO);
    let mut per_sell: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut fills = 0usize;
    store.for_each_fill(|f| {
        fills += 1;
        let before = ledger.realized_pnl;
        // A fill that does not apply (a sell of more than held, as after a start with holdings)
        // does not count towards the win rate.
        if ledger.apply(&f).unwrap_or(false) && f.side == Side::Sell {
            *per_sell.entry(f.client_order_id).or_default() += ledger.realized_pnl - before - f.fee;
        }
    })?;
    r.sells = per_sell.len();
    r.winning_sells = per_sell.values().filter(|v| **v > Decimal::ZERO).count();
    r.fills = fills;
    Ok(r)
}

/// `key=count` pairs in key order, or `none`.
pub(super) fn counts<K: std::fmt::Display>(m: &BTreeMap<K, usize>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text form.
pub fn run_text(r: &RunReport) -> String {
    let mut out = String::new();
    if r.cycles == 0 {
        return "no cycles in this database\n".into();
    }
    let span_s = (r.last_ms - r.first_ms) / 1000;
    let _ = writeln!(
        out,
        "cycles:     {} ({} → {}, {span_s} s of market time)",
        r.cycles,
        utc(r.first_ms),
        utc(r.last_ms)
    );
    let modes: Vec<String> = r
        .modes
        .iter()
        .map(|(k, v)| {
            let pct = Decimal::from(*v) * Decimal::from(100) / Decimal::from(r.cycles);
            format!("{k}={v} ({}%)", pct.round_dp(1))
        })
        .collect();
    let _ = writeln!(out, "modes:      {}", modes.join(" "));
    let _ = writeln!(out, "verdicts:   {}", counts(&r.verdicts));
    let _ = writeln!(out, "orders:     {}", counts(&r.orders));
    let win_rate = if r.sells == 0 {
        "n/a".to_string()
    } else {
        let pct = Decimal::from(r.winning_sells) * Decimal::from(100) / Decimal::from(r.sells);
        format!("{}%", pct.round_dp(1))
    };
    let _ = writeln!(
        out,
        "trades:     {} fills; {} sell orders, {} won (win rate {win_rate})",
        r.fills, r.sells, r.winning_sells
    );
    let net = r.realized_pnl - r.fees;
    let _ = writeln!(
        out,
        "pnl:        realized {} unrealized {} fees {} net realized {}",
        r.realized_pnl.round_dp(2),
        r.unrealized_pnl.round_dp(2),
        r.fees.round_dp(2),
        net.round_dp(2)
    );
    let _ = writeln!(
        out,
        "equity:     {} → {} ({:+}); max drawdown {}",
        r.equity_start.round_dp(2),
        r.equity_end.round_dp(2),
        (r.equity_end - r.equity_start).round_dp(2),
        r.max_drawdown.round_dp(2)
    );
    let _ = writeln!(
        out,
        "exposure:   max {} mean {}",
        r.max_exposure.round_dp(2),
        r.mean_exposure
    );
    out
}
