//! The ledger: fills → cash, positions (weighted average cost), realized PnL and fees.
//!
//! Fills are the only input; everything here can be rebuilt from them and a rebuild equals the
//! incremental state to the last digit. Fees are in the quote currency (BTCTurk charges TRY pairs
//! in TRY). Realized PnL is gross of fees; net = realized − fees.

use crate::domain::{Fill, Side, Symbol};
use crate::engine::decide::{Holding, PortfolioInput};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

pub mod windows;
pub use windows::{PnlWindows, WindowFigures, day_of, week_of};

/// One position: the quantity held and what it cost (its cost basis), kept as a total rather
/// than an average price so no division ever rounds the books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub qty: Decimal,
    pub cost: Decimal,
}

impl Position {
    /// Average cost per unit (zero when flat).
    pub fn avg_cost(&self) -> Decimal {
        if self.qty.is_zero() {
            Decimal::ZERO
        } else {
            self.cost / self.qty
        }
    }
}

/// Decimal places of a cost basis released by a partial sell.
const COST_SCALE: u32 = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub quote_asset: String,
    /// Total quote balance (free + locked), as the fills imply.
    pub cash: Decimal,
    pub positions: BTreeMap<Symbol, Position>,
    pub realized_pnl: Decimal,
    /// Fees charged in the quote currency (BTCTurk charges TRY pairs in TRY).
    pub fees: Decimal,
    /// Fees charged in any other currency, by currency: kept in their own unit, never converted.
    pub other_fees: BTreeMap<String, Decimal>,
    pub windows: PnlWindows,
    pub fill_count: u64,
    seen: BTreeSet<String>,
}

/// A fill the ledger refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("fill {trade_id}: sells {qty} {symbol} but holds only {held}")]
    Oversold {
        trade_id: String,
        symbol: Symbol,
        qty: Decimal,
        held: Decimal,
    },
}

impl Ledger {
    pub fn new(quote_asset: &str, starting_cash: Decimal) -> Self {
        Self {
            quote_asset: quote_asset.to_string(),
            cash: starting_cash,
            positions: BTreeMap::new(),
            realized_pnl: Decimal::ZERO,
            fees: Decimal::ZERO,
            other_fees: BTreeMap::new(),
            windows: PnlWindows::default(),
            fill_count: 0,
            seen: BTreeSet::new(),
        }
    }

    /// Rebuilds from every fill, in order.
    ///
    /// # Errors
    /// The first fill that cannot apply.
    pub fn rebuild<'a>(
        quote_asset: &str,
        starting_cash: Decimal,
        fills: impl IntoIterator<Item = &'a Fill>,
    ) -> Result<Self, LedgerError> {
        let mut l = Self::new(quote_asset, starting_cash);
        for f in fills {
            l.apply(f)?;
        }
        Ok(l)
    }

    /// Applies one fill. Returns `false` (and changes nothing) for a trade id already applied.
    ///
    /// # Errors
    /// A sell of more than is held.
    pub fn apply(&mut self, f: &Fill) -> Result<bool, LedgerError> {
        if self.seen.contains(&f.trade_id) {
            return Ok(false);
        }
        let price = f.price.value();
        let qty = f.qty.value();
        let notional = price * qty;
        let mut realized = Decimal::ZERO;
        let held = self
            .positions
            .get(&f.symbol)
            .map_or(Decimal::ZERO, |h| h.qty);
        match f.side {
            Side::Buy => {
                let pos = self.positions.entry(f.symbol.clone()).or_insert(Position {
                    qty: Decimal::ZERO,
                    cost: Decimal::ZERO,
                });
                pos.qty += qty;
                pos.cost += notional;
                self.cash -= notional;
            }
            Side::Sell => {
                if qty > held {
                    return Err(LedgerError::Oversold {
                        trade_id: f.trade_id.clone(),
                        symbol: f.symbol.clone(),
                        qty,
                        held,
                    });
                }
                if let Some(pos) = self.positions.get_mut(&f.symbol) {
                    // The share of the cost basis that leaves with the sold quantity, rounded to
                    // a fixed scale so later sums stay far inside Decimal's 28 digits; whatever
                    // it rounds to, cash + cost basis stays exactly start − fees + realized.
                    let released = if qty == pos.qty {
                        pos.cost
                    } else {
                        (pos.cost * qty / pos.qty).round_dp(COST_SCALE)
                    };
                    realized = notional - released;
                    self.realized_pnl += realized;
                    pos.cost -= released;
                    pos.qty -= qty;
                }
                self.cash += notional;
            }
        }
        let quote_fee = if f.fee_asset == self.quote_asset {
            self.cash -= f.fee;
            self.fees += f.fee;
            f.fee
        } else {
            *self.other_fees.entry(f.fee_asset.clone()).or_default() += f.fee;
            Decimal::ZERO
        };
        let sell_of_order = (f.side == Side::Sell).then_some(f.client_order_id.as_str());
        self.windows
            .record(f.ts_ms, realized, quote_fee, sell_of_order);
        self.fill_count += 1;
        self.seen.insert(f.trade_id.clone());
        Ok(true)
    }

    /// Equity at the given marks (a position without a mark is valued at its cost).
    pub fn equity(&self, marks: &BTreeMap<Symbol, Decimal>) -> Decimal {
        self.cash
            + self
                .positions
                .iter()
                .map(|(s, p)| marks.get(s).map_or(p.cost, |m| p.qty * m))
                .sum::<Decimal>()
    }

    /// The figures the rules see at market time `now_ms`; `free_cash` is the exchange's free
    /// quote balance. Peak and period-start equity and venue mismatches are the shell's to add.
    pub fn portfolio(
        &self,
        now_ms: i64,
        free_cash: Decimal,
        venue_cash_total: Option<Decimal>,
    ) -> PortfolioInput {
        let w = self.windows.at(now_ms);
        PortfolioInput {
            venue_cash_total,
            quote_asset: self.quote_asset.clone(),
            cash: free_cash,
            cash_total: self.cash,
            realized_pnl: self.realized_pnl,
            fees: self.fees,
            realized_today: w.realized_today,
            fees_today: w.fees_today,
            realized_week: w.realized_week,
            loss_streak: w.loss_streak,
            positions: self
                .positions
                .iter()
                .filter(|(_, p)| !p.qty.is_zero())
                .map(|(s, p)| {
                    (
                        s.clone(),
                        Holding {
                            qty: p.qty,
                            avg_cost: p.avg_cost(),
                        },
                    )
                })
                .collect(),
            ..PortfolioInput::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty};
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn fill(id: u32, side: Side, price: Decimal, qty: Decimal) -> Fill {
        Fill {
            trade_id: format!("t{id}"),
            client_order_id: format!("c{id}"),
            symbol: Symbol::new("BTCTRY").unwrap(),
            side,
            price: Price::new(price).unwrap(),
            qty: Qty::new(qty).unwrap(),
            fee: price * qty * d("0.001"),
            fee_asset: "TRY".into(),
            maker: true,
            ts_ms: i64::from(id),
        }
    }

    #[test]
    fn buy_then_sell_realizes_the_difference() {
        let mut l = Ledger::new("TRY", d("10000"));
        l.apply(&fill(1, Side::Buy, d("100"), d("10"))).unwrap();
        l.apply(&fill(2, Side::Buy, d("110"), d("10"))).unwrap();
        assert_eq!(
            l.positions[&Symbol::new("BTCTRY").unwrap()].avg_cost(),
            d("105")
        );
        l.apply(&fill(3, Side::Sell, d("120"), d("5"))).unwrap();
        assert_eq!(l.realized_pnl, d("75"));
        assert_eq!(l.fees, d("1") + d("1.1") + d("0.6"));
        assert_eq!(
            l.cash,
            d("10000") - d("1000") - d("1100") + d("600") - l.fees
        );
    }

    #[test]
    fn duplicate_trade_ids_apply_once() {
        let mut l = Ledger::new("TRY", d("1000"));
        let f = fill(1, Side::Buy, d("10"), d("1"));
        assert!(l.apply(&f).unwrap());
        assert!(!l.apply(&f).unwrap());
        assert_eq!(l.fill_count, 1);
    }

    #[test]
    fn overselling_is_an_error_not_a_negative_position() {
        let mut l = Ledger::new("TRY", d("1000"));
        assert!(l.apply(&fill(1, Side::Sell, d("10"), d("1"))).is_err());
    }

    proptest! {
        #[test]
        fn rebuild_equals_incremental_and_cash_is_conserved(
            trades in proptest::collection::vec((any::<bool>(), 1u32..5000, 1u32..1000), 1..60)
        ) {
            let mut l = Ledger::new("TRY", d("1000000"));
            let mut fills = Vec::new();
            for (i, (buy, price, qty)) in trades.into_iter().enumerate() {
                let held = l.positions.values().map(|h| h.qty).sum::<Decimal>();
                let qty = Decimal::new(i64::from(qty), 3);
                let side = if buy || held < qty { Side::Buy } else { Side::Sell };
                let f = fill(u32::try_from(i).unwrap(), side, Decimal::new(i64::from(price), 1), qty);
                l.apply(&f).unwrap();
                fills.push(f);
            }
            let rebuilt = Ledger::rebuild("TRY", d("1000000"), &fills).unwrap();
            prop_assert_eq!(&rebuilt, &l);
            // Marked at cost, equity = start − fees + realized.
            let marks = BTreeMap::new();
            prop_assert_eq!(l.equity(&marks), d("1000000") - l.fees + l.realized_pnl);
        }
    }
}
