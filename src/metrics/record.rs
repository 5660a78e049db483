//! What one committed cycle adds to the metrics.

use super::{metrics, status, wall_ms};
use crate::engine::decide::Decision;
use crate::engine::valuation::Valuation;
use crate::rules::Stage;
use crate::store::CycleRecord;
use rust_decimal::Decimal;
use std::time::Duration;

/// Records a committed cycle: its duration, the scripts' costs, verdicts, anomalies, order
/// changes, fills, mode, rule hash and the portfolio figures.
pub fn cycle(
    record: &CycleRecord,
    decision: &Decision,
    valuation: &Valuation,
    elapsed: Duration,
    open_orders: usize,
    ledger_cash: Decimal,
) {
    let m = metrics();
    m.cycles.inc();
    m.cycle_seconds.observe(elapsed.as_secs_f64());
    for stage in Stage::ALL {
        let cost = decision.costs[stage as usize];
        let seconds = Duration::from_micros(cost.micros).as_secs_f64();
        m.rule_eval_seconds
            .with_label_values(&[stage.name()])
            .observe(seconds);
        m.rule_operations
            .with_label_values(&[stage.name()])
            .inc_by(cost.operations);
    }
    for j in &decision.judged {
        m.verdicts
            .with_label_values(&[j.verdict.reason_code()])
            .inc();
    }
    for a in &decision.anomalies {
        m.anomalies
            .with_label_values(&[a.code.as_str(), a.severity.as_str()])
            .inc();
    }
    for o in &record.orders {
        m.orders.with_label_values(&[o.status.as_str()]).inc();
    }
    m.fills.inc_by(record.fills.len() as u64);
    m.open_orders
        .set(i64::try_from(open_orders).unwrap_or(i64::MAX));
    m.set_mode(decision.mode.as_str());
    m.set_rule_hash(&record.rule_hash);
    m.set_money("equity", valuation.equity);
    m.set_money("cash", ledger_cash);
    m.set_money("realized_pnl", record.realized_pnl);
    m.set_money("unrealized_pnl", valuation.unrealized_pnl);
    m.set_money("pnl_today", valuation.pnl_today);
    m.set_money("pnl_week", valuation.pnl_week);
    m.set_money("drawdown", valuation.drawdown);
    m.set_money("peak_equity", valuation.peak_equity);
    m.set_money("fees", record.fees);
    m.set_money("gross_exposure", valuation.gross_exposure);
    let now = wall_ms();
    #[allow(clippy::cast_precision_loss)]
    m.last_cycle_timestamp.set(now as f64 / 1000.0);
    m.last_cycle_id.set(record.cycle_id);
    status().mark_cycle(record.cycle_id, now);
}
