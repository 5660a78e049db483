//! The cycle view: what every script of a cycle reads (`ctx`), built once per cycle from the
//! engine's input, and the anomaly list as degrade.rhai receives it.

use super::decide::CycleInput;
use crate::domain::Anomaly;
use crate::rules::RuleSet;
use crate::rules::api::{
    CycleView, Market, MarketView, ParamsView, Portfolio, PortfolioView, PositionView, STAT_KEYS,
    SpecView,
};
use rhai::{Dynamic, INT, Map};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) fn build_view(rules: &RuleSet, input: &CycleInput) -> CycleView {
    let markets: BTreeMap<String, Market> = input
        .markets
        .iter()
        .map(|m| {
            let view = MarketView {
                symbol: m.symbol.as_str().into(),
                bid: m.bid.value(),
                ask: m.ask.value(),
                bid_qty: m.bid_qty.value(),
                ask_qty: m.ask_qty.value(),
                mid: m.mid(),
                spread_bps: m.spread_bps(),
                last: m.last_trade.as_ref().map(|t| t.price.value()),
                ts_ms: m.exchange_ts_ms,
                age_ms: input.now_ms.saturating_sub(m.exchange_ts_ms),
            };
            (m.symbol.as_str().to_string(), Market(Arc::new(view)))
        })
        .collect();
    let specs = input
        .specs
        .iter()
        .map(|(s, spec)| {
            (
                s.as_str().to_string(),
                SpecView {
                    tick_size: spec.tick_size,
                    min_notional: spec.min_notional,
                    qty_scale: INT::from(spec.qty_scale),
                    price_scale: INT::from(spec.price_scale),
                    trading: spec.trading,
                },
            )
        })
        .collect();
    let p = &input.portfolio;
    let valuation = super::valuation::value(p, &input.markets);
    let positions: BTreeMap<String, PositionView> = valuation
        .positions
        .iter()
        .map(|m| {
            (
                m.symbol.as_str().to_string(),
                PositionView {
                    symbol: m.symbol.as_str().into(),
                    qty: m.qty,
                    avg_cost: m.avg_cost,
                    mark: m.mark,
                },
            )
        })
        .collect();
    let mut open_orders: BTreeMap<String, INT> = BTreeMap::new();
    for o in &input.open_orders {
        *open_orders
            .entry(o.symbol.as_str().to_string())
            .or_default() += 1;
    }
    let s = &input.stats;
    let values = [
        s.rejects_last_cycle,
        s.exchange_errors_last_cycle,
        s.rule_errors_last_cycle,
        s.observe_latency_ms,
        s.cursor_stall_cycles,
        s.clock_skew_ms,
    ];
    let stats: Map = STAT_KEYS
        .iter()
        .zip(values)
        .map(|(k, v)| ((*k).into(), Dynamic::from_int(v)))
        .collect();
    let mut market_list = rhai::Array::new();
    let mut missing_markets = rhai::Array::new();
    for s in &input.symbols {
        match markets.get(s.as_str()) {
            Some(m) => market_list.push(Dynamic::from(m.clone())),
            None => missing_markets.push(Dynamic::from(s.as_str().to_string())),
        }
    }
    let mut view = CycleView {
        market_list,
        missing_markets,
        now_ms: input.now_ms,
        cycle_id: input.cycle_id,
        symbols: input
            .symbols
            .iter()
            .map(|s| Dynamic::from(s.as_str().to_string()))
            .collect(),
        markets,
        specs,
        portfolio: Portfolio(Arc::new(PortfolioView {
            quote_asset: p.quote_asset.as_str().into(),
            cash: p.cash,
            cash_total: p.cash_total,
            equity: valuation.equity,
            realized_pnl: p.realized_pnl,
            unrealized_pnl: valuation.unrealized_pnl,
            fees: p.fees,
            cash_mismatch: p
                .venue_cash_total
                .map_or(Decimal::ZERO, |v| v - p.cash_total),
            qty_mismatch: p
                .qty_mismatch
                .iter()
                .map(|(s, q)| (s.as_str().into(), Dynamic::from_decimal(*q)))
                .collect(),
            peak_equity: valuation.peak_equity,
            drawdown: valuation.drawdown,
            pnl_today: valuation.pnl_today,
            pnl_week: valuation.pnl_week,
            realized_today: p.realized_today,
            fees_today: p.fees_today,
            realized_week: p.realized_week,
            loss_streak: p.loss_streak,
            gross_exposure: valuation.gross_exposure,
            largest_position_pct: valuation.largest_position_pct,
            positions: Arc::new(positions),
        })),
        open_orders_total: INT::try_from(input.open_orders.len()).unwrap_or(INT::MAX),
        open_orders,
        stats: ParamsView::new(stats),
        limits: ParamsView::default(),
    };
    rules.decorate(&mut view);
    view
}

pub(crate) fn anomalies_to_dynamic(anomalies: &[Anomaly]) -> Dynamic {
    Dynamic::from_array(
        anomalies
            .iter()
            .map(|a| {
                let mut m = Map::new();
                m.insert("code".into(), Dynamic::from(a.code.clone()));
                m.insert(
                    "severity".into(),
                    Dynamic::from(a.severity.as_str().to_string()),
                );
                m.insert(
                    "symbol".into(),
                    a.symbol
                        .as_ref()
                        .map_or(Dynamic::UNIT, |s| Dynamic::from(s.as_str().to_string())),
                );
                let detail: Map = a
                    .detail
                    .iter()
                    .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
                    .collect();
                m.insert("detail".into(), Dynamic::from_map(detail));
                Dynamic::from_map(m)
            })
            .collect(),
    )
}
