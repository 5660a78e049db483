//! The types scripts read and the verdict constructors they call. Inputs are registered types
//! with getters, so a misspelt field is an error ("unknown property"), never a silent `()`.
//! docs/RULES.md is the operator's reference for everything registered here.

use crate::domain::{Side, Verdict};
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, ImmutableString, Map, Position};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) type Fallible<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn runtime_error(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE))
}

/// One symbol's market as a script sees it.
#[derive(Debug, Clone)]
pub struct MarketView {
    pub symbol: ImmutableString,
    pub bid: Decimal,
    pub ask: Decimal,
    pub bid_qty: Decimal,
    pub ask_qty: Decimal,
    pub mid: Decimal,
    pub spread_bps: Decimal,
    pub last: Option<Decimal>,
    pub ts_ms: INT,
    pub age_ms: INT,
}

/// What a script holds for a market: a shared handle, so passing it around copies a pointer.
#[derive(Debug, Clone)]
pub struct Market(pub Arc<MarketView>);

impl std::ops::Deref for Market {
    type Target = MarketView;
    fn deref(&self) -> &MarketView {
        &self.0
    }
}

/// What a script holds for the portfolio (a shared handle, like [`Market`]).
#[derive(Debug, Clone, Default)]
pub struct Portfolio(pub Arc<PortfolioView>);

impl std::ops::Deref for Portfolio {
    type Target = PortfolioView;
    fn deref(&self) -> &PortfolioView {
        &self.0
    }
}

/// One quote as `on_quote(q)` sees it: the book, the bot's position and whether an order is
/// pending, and the EMAs of the mid the engine keeps for the periods in `ema_periods`.
#[derive(Debug, Clone)]
pub struct QuoteView {
    pub symbol: ImmutableString,
    pub ts_ms: INT,
    pub bid: Decimal,
    pub ask: Decimal,
    pub bid_qty: Decimal,
    pub ask_qty: Decimal,
    pub mid: Decimal,
    pub held: Decimal,
    pub pending: bool,
    /// `(period, ema after this quote, ema before it, quotes seen)`.
    pub emas: Arc<Vec<(INT, Decimal, Decimal, INT)>>,
    pub params: ParamsView,
}

impl QuoteView {
    fn ema(&self, period: INT) -> Fallible<&(INT, Decimal, Decimal, INT)> {
        self.emas.iter().find(|e| e.0 == period).ok_or_else(|| {
            runtime_error(format!(
                "no EMA({period}) kept: list it in strategy.yaml params.ema_periods"
            ))
        })
    }
}

fn register_quote(engine: &mut Engine) {
    engine
        .register_type_with_name::<QuoteView>("Quote")
        .register_get("symbol", |q: &mut QuoteView| q.symbol.clone())
        .register_get("ts_ms", |q: &mut QuoteView| q.ts_ms)
        .register_get("bid", |q: &mut QuoteView| q.bid)
        .register_get("ask", |q: &mut QuoteView| q.ask)
        .register_get("bid_qty", |q: &mut QuoteView| q.bid_qty)
        .register_get("ask_qty", |q: &mut QuoteView| q.ask_qty)
        .register_get("mid", |q: &mut QuoteView| q.mid)
        .register_get("held", |q: &mut QuoteView| q.held)
        .register_get("pending", |q: &mut QuoteView| q.pending)
        .register_get("params", |q: &mut QuoteView| q.params.clone())
        .register_fn("ema", |q: &mut QuoteView, n: INT| q.ema(n).map(|e| e.1))
        .register_fn("prev_ema", |q: &mut QuoteView, n: INT| {
            q.ema(n).map(|e| e.2)
        })
        .register_fn("seen", |q: &mut QuoteView, n: INT| q.ema(n).map(|e| e.3))
        .register_fn(
            "cross",
            |q: &mut QuoteView, fast: INT, slow: INT| -> Fallible<INT> {
                // 1: the fast EMA crossed above the slow one on this quote, -1: below, 0: no
                // cross, or the slow one has seen fewer than `slow` quotes.
                let (f, s) = (q.ema(fast)?, q.ema(slow)?);
                if s.3 < slow {
                    return Ok(0);
                }
                Ok(if f.2 <= s.2 && f.1 > s.1 {
                    1
                } else if f.2 >= s.2 && f.1 < s.1 {
                    -1
                } else {
                    0
                })
            },
        );
}

/// A pair's exchange rules.
#[derive(Debug, Clone)]
pub struct SpecView {
    pub tick_size: Decimal,
    pub min_notional: Decimal,
    pub qty_scale: INT,
    pub price_scale: INT,
    pub trading: bool,
}

/// One position, marked at the mid.
#[derive(Debug, Clone)]
pub struct PositionView {
    pub symbol: ImmutableString,
    pub qty: Decimal,
    pub avg_cost: Decimal,
    pub mark: Decimal,
}

/// The account and ledger figures.
#[derive(Debug, Clone, Default)]
pub struct PortfolioView {
    pub quote_asset: ImmutableString,
    pub cash: Decimal,
    pub cash_total: Decimal,
    pub equity: Decimal,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub fees: Decimal,
    /// The venue's quote balance minus the ledger's (zero when the venue was not read).
    pub cash_mismatch: Decimal,
    /// Symbol → the venue's base balance (less its start-up holding) minus the ledger's position;
    /// only symbols that differ.
    pub qty_mismatch: Map,
    pub peak_equity: Decimal,
    pub drawdown: Decimal,
    pub pnl_today: Decimal,
    pub pnl_week: Decimal,
    pub realized_today: Decimal,
    pub fees_today: Decimal,
    pub realized_week: Decimal,
    pub loss_streak: INT,
    pub gross_exposure: Decimal,
    pub largest_position_pct: Decimal,
    pub positions: Arc<BTreeMap<String, PositionView>>,
}

/// Everything shared by the scripts of one cycle; built once per cycle.
#[derive(Debug, Clone, Default)]
pub struct CycleView {
    pub now_ms: INT,
    pub cycle_id: INT,
    pub symbols: Array,
    pub markets: BTreeMap<String, Market>,
    /// The books of the universe's symbols that have one, in universe order.
    pub market_list: Array,
    /// Universe symbols without a book this cycle.
    pub missing_markets: Array,
    pub specs: BTreeMap<String, SpecView>,
    pub portfolio: Portfolio,
    pub open_orders: BTreeMap<String, INT>,
    pub open_orders_total: INT,
    pub stats: ParamsView,
    pub limits: ParamsView,
}

pub use super::params_view::{ParamsView, register_param_keys};

/// `ctx` as passed to every entry function.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub view: Arc<CycleView>,
    pub params: ParamsView,
    pub mode: ImmutableString,
    /// Risk only: what this cycle has accepted before the intent being judged.
    pub accepted_count: INT,
    pub accepted_notional: Decimal,
}

/// The intent a risk script judges.
#[derive(Debug, Clone)]
pub struct IntentView {
    pub symbol: ImmutableString,
    pub side: ImmutableString,
    pub price: Decimal,
    pub qty: Decimal,
    pub tag: ImmutableString,
}

/// What `accept()`, `resize(q)` and `reject(code)` return.
#[derive(Debug, Clone)]
pub struct VerdictOut(pub Verdict);

fn valid_reason_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn register(engine: &mut Engine) {
    register_quote(engine);
    register_market(engine);
    register_portfolio(engine);
    register_ctx(engine);
    register_verdicts(engine);
    super::indicators::register(engine);
}

fn register_market(engine: &mut Engine) {
    engine
        .register_type_with_name::<Market>("Market")
        .register_get("symbol", |m: &mut Market| m.symbol.clone())
        .register_get("bid", |m: &mut Market| m.bid)
        .register_get("ask", |m: &mut Market| m.ask)
        .register_get("bid_qty", |m: &mut Market| m.bid_qty)
        .register_get("ask_qty", |m: &mut Market| m.ask_qty)
        .register_get("mid", |m: &mut Market| m.mid)
        .register_get("spread_bps", |m: &mut Market| m.spread_bps)
        .register_get("depth", |m: &mut Market| {
            m.bid * m.bid_qty + m.ask * m.ask_qty
        })
        .register_get("has_last", |m: &mut Market| m.last.is_some())
        .register_get("last", |m: &mut Market| -> Fallible<Decimal> {
            // Never `()`: `price > ()` is silently false in Rhai.
            m.last.ok_or_else(|| {
                runtime_error(format!("{}: no trade seen yet (check has_last)", m.symbol))
            })
        })
        .register_get("ts_ms", |m: &mut Market| m.ts_ms)
        .register_get("age_ms", |m: &mut Market| m.age_ms);
    engine
        .register_type_with_name::<SpecView>("Spec")
        .register_get("tick_size", |s: &mut SpecView| s.tick_size)
        .register_get("min_notional", |s: &mut SpecView| s.min_notional)
        .register_get("qty_scale", |s: &mut SpecView| s.qty_scale)
        .register_get("price_scale", |s: &mut SpecView| s.price_scale)
        .register_get("trading", |s: &mut SpecView| s.trading);
}

/// Held, and marked at or under avg_cost × (1 − fraction): the stop-loss test, multiplied out so
/// that the boundary is exact.
fn below_cost_by(p: &PositionView, fraction: Decimal) -> Fallible<bool> {
    let floor = p
        .avg_cost
        .checked_mul(fraction)
        .and_then(|d| p.avg_cost.checked_sub(d))
        .ok_or_else(|| runtime_error("below_cost_by: overflow".into()))?;
    Ok(p.qty > Decimal::ZERO && p.mark <= floor)
}

fn register_portfolio(engine: &mut Engine) {
    engine
        .register_type_with_name::<PositionView>("Position")
        .register_get("symbol", |p: &mut PositionView| p.symbol.clone())
        .register_get("qty", |p: &mut PositionView| p.qty)
        .register_get("avg_cost", |p: &mut PositionView| p.avg_cost)
        .register_get("mark", |p: &mut PositionView| p.mark)
        .register_get("notional", |p: &mut PositionView| p.qty * p.mark)
        .register_get("unrealized_pnl", |p: &mut PositionView| {
            (p.mark - p.avg_cost) * p.qty
        })
        .register_fn(
            "below_cost_by",
            |p: &mut PositionView, fraction: Decimal| below_cost_by(p, fraction),
        )
        .register_fn("below_cost_by", |p: &mut PositionView, fraction: INT| {
            below_cost_by(p, Decimal::from(fraction))
        });
    engine
        .register_type_with_name::<Portfolio>("Portfolio")
        .register_get("quote_asset", |p: &mut Portfolio| p.quote_asset.clone())
        .register_get("cash", |p: &mut Portfolio| p.cash)
        .register_get("cash_total", |p: &mut Portfolio| p.cash_total)
        .register_get("equity", |p: &mut Portfolio| p.equity)
        .register_get("realized_pnl", |p: &mut Portfolio| p.realized_pnl)
        .register_get("fees", |p: &mut Portfolio| p.fees)
        .register_get("cash_mismatch", |p: &mut Portfolio| p.cash_mismatch)
        .register_get("qty_mismatch", |p: &mut Portfolio| p.qty_mismatch.clone())
        .register_get("unrealized_pnl", |p: &mut Portfolio| p.unrealized_pnl)
        .register_get("peak_equity", |p: &mut Portfolio| p.peak_equity)
        .register_get("drawdown", |p: &mut Portfolio| p.drawdown)
        .register_get("pnl_today", |p: &mut Portfolio| p.pnl_today)
        .register_get("pnl_week", |p: &mut Portfolio| p.pnl_week)
        .register_get("realized_today", |p: &mut Portfolio| p.realized_today)
        .register_get("fees_today", |p: &mut Portfolio| p.fees_today)
        .register_get("realized_week", |p: &mut Portfolio| p.realized_week)
        .register_get("loss_streak", |p: &mut Portfolio| p.loss_streak)
        .register_get("gross_exposure", |p: &mut Portfolio| p.gross_exposure)
        .register_get("largest_position_pct", |p: &mut Portfolio| {
            p.largest_position_pct
        })
        .register_get("positions", |p: &mut Portfolio| -> Array {
            p.positions.values().cloned().map(Dynamic::from).collect()
        })
        .register_fn("qty", |p: &mut Portfolio, symbol: &str| {
            p.positions.get(symbol).map_or(Decimal::ZERO, |x| x.qty)
        })
        .register_fn("position", |p: &mut Portfolio, symbol: &str| {
            p.positions
                .get(symbol)
                .cloned()
                .unwrap_or_else(|| PositionView {
                    symbol: symbol.into(),
                    qty: Decimal::ZERO,
                    avg_cost: Decimal::ZERO,
                    mark: Decimal::ZERO,
                })
        });
}

fn register_ctx(engine: &mut Engine) {
    engine
        .register_type_with_name::<Ctx>("Ctx")
        .register_get("now_ms", |c: &mut Ctx| c.view.now_ms)
        .register_get("cycle_id", |c: &mut Ctx| c.view.cycle_id)
        .register_get("mode", |c: &mut Ctx| c.mode.clone())
        .register_get("symbols", |c: &mut Ctx| c.view.symbols.clone())
        .register_get("markets", |c: &mut Ctx| c.view.market_list.clone())
        .register_get("missing_markets", |c: &mut Ctx| {
            c.view.missing_markets.clone()
        })
        .register_get("params", |c: &mut Ctx| c.params.clone())
        .register_get("limits", |c: &mut Ctx| c.view.limits.clone())
        .register_get("stats", |c: &mut Ctx| c.view.stats.clone())
        .register_get("portfolio", |c: &mut Ctx| c.view.portfolio.clone())
        .register_get("open_orders_total", |c: &mut Ctx| c.view.open_orders_total)
        .register_get("accepted_count", |c: &mut Ctx| c.accepted_count)
        .register_get("accepted_notional", |c: &mut Ctx| c.accepted_notional)
        .register_fn("has_market", |c: &mut Ctx, symbol: &str| {
            c.view.markets.contains_key(symbol)
        })
        .register_fn("market", |c: &mut Ctx, symbol: &str| -> Fallible<Market> {
            c.view
                .markets
                .get(symbol)
                .cloned()
                .ok_or_else(|| runtime_error(format!("no market for {symbol}")))
        })
        .register_fn("has_spec", |c: &mut Ctx, symbol: &str| {
            c.view.specs.contains_key(symbol)
        })
        .register_fn("spec", |c: &mut Ctx, symbol: &str| -> Fallible<SpecView> {
            c.view
                .specs
                .get(symbol)
                .cloned()
                .ok_or_else(|| runtime_error(format!("no exchange info for {symbol}")))
        })
        .register_fn("min_notional", |c: &mut Ctx, symbol: &str| {
            c.view
                .specs
                .get(symbol)
                .map_or(Decimal::ZERO, |s| s.min_notional)
        })
        .register_fn("open_orders", |c: &mut Ctx, symbol: &str| {
            c.view.open_orders.get(symbol).copied().unwrap_or(0)
        });
    engine
        .register_type_with_name::<IntentView>("Intent")
        .register_get("symbol", |i: &mut IntentView| i.symbol.clone())
        .register_get("side", |i: &mut IntentView| i.side.clone())
        .register_get("price", |i: &mut IntentView| i.price)
        .register_get("qty", |i: &mut IntentView| i.qty)
        .register_get("notional", |i: &mut IntentView| i.price * i.qty)
        .register_get("tag", |i: &mut IntentView| i.tag.clone())
        .register_get("is_buy", |i: &mut IntentView| i.side == Side::Buy.as_str())
        .register_get("is_sell", |i: &mut IntentView| {
            i.side == Side::Sell.as_str()
        });
}

fn register_verdicts(engine: &mut Engine) {
    engine
        .register_type_with_name::<VerdictOut>("Verdict")
        .register_fn("accept", || VerdictOut(Verdict::Accept))
        .register_fn("reject", |code: &str| -> Fallible<VerdictOut> {
            if valid_reason_code(code) {
                Ok(VerdictOut(Verdict::Reject {
                    reason: code.to_string(),
                }))
            } else {
                Err(runtime_error(format!(
                    "reject(): reason code must be UPPER_SNAKE_CASE, got {code:?}"
                )))
            }
        })
        .register_fn("resize", |qty: Decimal| -> Fallible<VerdictOut> {
            resize(qty)
        })
        .register_fn("resize", |qty: INT| -> Fallible<VerdictOut> {
            resize(Decimal::from(qty))
        })
        .register_fn("bps", |value: Decimal, bps: Decimal| {
            crate::domain::bps_of(value, bps)
        })
        .register_fn("bps", |value: Decimal, bps: INT| {
            crate::domain::bps_of(value, Decimal::from(bps))
        })
        .register_fn("bps", |value: INT, bps: Decimal| {
            crate::domain::bps_of(Decimal::from(value), bps)
        })
        .register_fn("bps", |value: INT, bps: INT| {
            crate::domain::bps_of(Decimal::from(value), Decimal::from(bps))
        });
}

fn resize(qty: Decimal) -> Fallible<VerdictOut> {
    let q = crate::domain::Qty::new(qty).map_err(|e| runtime_error(format!("resize(): {e}")))?;
    Ok(VerdictOut(Verdict::Resize { qty: q }))
}

/// The keys of `ctx.stats`, in the order the engine fills them.
pub const STAT_KEYS: [&str; 6] = [
    "rejects_last_cycle",
    "exchange_errors_last_cycle",
    "rule_errors_last_cycle",
    "observe_latency_ms",
    "cursor_stall_cycles",
    "clock_skew_ms",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        crate::rules::sandbox::build_engine(&crate::config::SandboxLimits::default())
    }

    #[test]
    fn below_cost_by_is_exact_at_the_stop_boundary() {
        let position = |qty: i64, mark: &str| PositionView {
            symbol: "BTCTRY".into(),
            qty: Decimal::from(qty),
            avg_cost: Decimal::from(100),
            mark: mark.parse().unwrap_or_else(|e| panic!("{e}")),
        };
        let mut engine = engine();
        engine.register_fn("pos", move |qty: INT, mark: &str| position(qty, mark));
        let check = |script: &str| {
            engine
                .eval::<bool>(script)
                .unwrap_or_else(|e| panic!("{script}: {e}"))
        };
        assert!(
            check("pos(1, \"95\").below_cost_by(0.05)"),
            "exactly 5% under"
        );
        assert!(!check("pos(1, \"95.01\").below_cost_by(0.05)"));
        assert!(!check("pos(0, \"50\").below_cost_by(0.05)"), "nothing held");
    }
}
