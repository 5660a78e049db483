//! Marking the portfolio: equity, exposure, drawdown and period PnL from the ledger's figures
//! and this cycle's books. Pure; the rules' view and the stored per-cycle snapshot both come
//! from here, so what the rules judged is exactly what the snapshot records.

use super::decide::PortfolioInput;
use crate::domain::{MarketSnapshot, Symbol};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// One position marked to market.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MarkedPosition {
    pub symbol: Symbol,
    pub qty: Decimal,
    pub avg_cost: Decimal,
    /// This cycle's mid, or the average cost when the symbol has no book this cycle.
    pub mark: Decimal,
}

impl MarkedPosition {
    pub fn notional(&self) -> Decimal {
        self.qty * self.mark
    }
    pub fn unrealized(&self) -> Decimal {
        (self.mark - self.avg_cost) * self.qty
    }
}

/// The portfolio's value this cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Valuation {
    pub positions: Vec<MarkedPosition>,
    pub positions_value: Decimal,
    /// Σ |qty × mark|.
    pub gross_exposure: Decimal,
    pub unrealized_pnl: Decimal,
    /// Ledger cash (free + locked) + positions at their marks.
    pub equity: Decimal,
    /// max(earlier peak, equity).
    pub peak_equity: Decimal,
    /// peak − equity (never negative).
    pub drawdown: Decimal,
    /// Equity now minus equity when the UTC day / ISO week began: marked to market, fees included.
    pub pnl_today: Decimal,
    pub pnl_week: Decimal,
    /// The largest position's notional over equity (zero when equity is not positive).
    pub largest_position_pct: Decimal,
}

/// Values `portfolio` at the mids of `markets`.
pub fn value(portfolio: &PortfolioInput, markets: &[MarketSnapshot]) -> Valuation {
    let mids: BTreeMap<&Symbol, Decimal> = markets.iter().map(|m| (&m.symbol, m.mid())).collect();
    let positions: Vec<MarkedPosition> = portfolio
        .positions
        .iter()
        .map(|(s, h)| MarkedPosition {
            symbol: s.clone(),
            qty: h.qty,
            avg_cost: h.avg_cost,
            mark: mids.get(s).copied().unwrap_or(h.avg_cost),
        })
        .collect();
    let positions_value: Decimal = positions.iter().map(MarkedPosition::notional).sum();
    let gross_exposure: Decimal = positions.iter().map(|p| p.notional().abs()).sum();
    let unrealized_pnl: Decimal = positions.iter().map(MarkedPosition::unrealized).sum();
    let equity = portfolio.cash_total + positions_value;
    let peak_equity = portfolio.peak_equity.map_or(equity, |p| p.max(equity));
    let largest = positions
        .iter()
        .map(|p| p.notional().abs())
        .max()
        .unwrap_or(Decimal::ZERO);
    let largest_position_pct = if equity > Decimal::ZERO {
        (largest / equity).round_dp(12)
    } else {
        Decimal::ZERO
    };
    Valuation {
        positions,
        positions_value,
        gross_exposure,
        unrealized_pnl,
        equity,
        peak_equity,
        drawdown: peak_equity - equity,
        pnl_today: portfolio
            .day_start_equity
            .map_or(Decimal::ZERO, |s| equity - s),
        pnl_week: portfolio
            .week_start_equity
            .map_or(Decimal::ZERO, |s| equity - s),
        largest_position_pct,
    }
}

/// What carries from cycle to cycle to measure peak and period-start equity. Restored at start-up
/// from the last stored snapshot, so a restart neither forgets a drawdown nor restarts the day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EquityTracker {
    pub peak: Option<Decimal>,
    /// The last cycle's equity and market time.
    pub last: Option<(i64, Decimal)>,
    pub day_start: Option<Decimal>,
    pub week_start: Option<Decimal>,
}

impl EquityTracker {
    /// Sets the peak and period starts `portfolio` carries into the cycle at `now_ms`.
    pub fn prepare(&mut self, now_ms: i64, portfolio: &mut PortfolioInput) {
        use crate::ledger::{day_of, week_of};
        if let Some((last_ts, last_equity)) = self.last {
            if day_of(now_ms) > day_of(last_ts) {
                self.day_start = Some(last_equity);
            }
            if week_of(now_ms) > week_of(last_ts) {
                self.week_start = Some(last_equity);
            }
        }
        portfolio.peak_equity = self.peak;
        portfolio.day_start_equity = self.day_start;
        portfolio.week_start_equity = self.week_start;
    }

    /// Takes in the cycle's valuation once it is committed.
    pub fn update(&mut self, now_ms: i64, v: &Valuation) {
        self.peak = Some(v.peak_equity);
        self.last = Some((now_ms, v.equity));
        // The first cycle ever starts its day and week.
        self.day_start.get_or_insert(v.equity);
        self.week_start.get_or_insert(v.equity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty};
    use crate::engine::decide::Holding;

    fn d(v: i64) -> Decimal {
        Decimal::from(v)
    }

    fn market(symbol: &str, bid: i64, ask: i64) -> MarketSnapshot {
        MarketSnapshot {
            symbol: Symbol::new(symbol).unwrap(),
            bid: Price::new(d(bid)).unwrap(),
            ask: Price::new(d(ask)).unwrap(),
            bid_qty: Qty::new(d(1)).unwrap(),
            ask_qty: Qty::new(d(1)).unwrap(),
            exchange_ts_ms: 0,
            received_ts_ms: 0,
            last_trade: None,
        }
    }

    fn portfolio() -> PortfolioInput {
        let mut p = PortfolioInput {
            cash_total: d(1000),
            ..PortfolioInput::default()
        };
        for (s, qty, cost) in [("BTCTRY", 2, 100), ("ETHTRY", 10, 5)] {
            p.positions.insert(
                Symbol::new(s).unwrap(),
                Holding {
                    qty: d(qty),
                    avg_cost: d(cost),
                },
            );
        }
        p
    }

    #[test]
    fn marks_at_the_mid_and_falls_back_to_cost_without_a_book() {
        let v = value(&portfolio(), &[market("BTCTRY", 119, 121)]);
        assert_eq!(v.positions_value, d(240) + d(50));
        assert_eq!(v.unrealized_pnl, d(40));
        assert_eq!(v.equity, d(1290));
        assert_eq!(v.gross_exposure, d(290));
        assert_eq!(v.peak_equity, d(1290));
        assert_eq!(v.drawdown, Decimal::ZERO);
        assert_eq!(v.largest_position_pct, (d(240) / d(1290)).round_dp(12));
    }

    #[test]
    fn drawdown_is_from_the_stored_peak_and_pnl_from_the_period_start() {
        let mut p = portfolio();
        p.peak_equity = Some(d(2000));
        p.day_start_equity = Some(d(1500));
        let v = value(&p, &[market("BTCTRY", 99, 101), market("ETHTRY", 5, 5)]);
        assert_eq!(v.equity, d(1250));
        assert_eq!(v.drawdown, d(750));
        assert_eq!(v.pnl_today, d(-250));
        assert_eq!(v.pnl_week, Decimal::ZERO);
    }

    #[test]
    fn the_tracker_rolls_the_day_start_at_midnight_utc() {
        let day = 86_400_000;
        let mut t = EquityTracker::default();
        let mut p = portfolio();
        t.prepare(day + 10, &mut p);
        assert_eq!(p.day_start_equity, None);
        let v1 = value(&p, &[]);
        t.update(day + 10, &v1);
        t.prepare(day + 20, &mut p);
        assert_eq!(p.day_start_equity, Some(v1.equity));
        let later = Valuation {
            equity: d(900),
            peak_equity: v1.equity,
            ..Valuation::default()
        };
        t.update(day + 20, &later);
        t.prepare(2 * day + 1, &mut p);
        assert_eq!(p.day_start_equity, Some(d(900)));
        assert_eq!(p.peak_equity, Some(v1.equity));
    }
}
