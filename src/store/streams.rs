//! Rows as sorted streams, for comparing two runs (`rules diff`, `report --shadow`) by walking
//! both databases side by side: the comparison holds one cycle's rows at a time, however long
//! the runs.

use super::codec::query_with;
use super::decisions::decode_row;
use super::{DecisionRow, Store, StoreError};
use crate::domain::Mode;
use rust_decimal::Decimal;

/// A stream of rows handed to a closure; an `Err` item ends it.
pub type Rows<'a, T> = &'a mut dyn Iterator<Item = Result<T, StoreError>>;

/// An order or a fill as two runs' trades are matched: (cycle for an order, market time for a
/// fill; symbol; side; price; quantity).
pub type TradeKey = (i64, String, String, Decimal, Decimal);

/// Which trades [`Store::with_trade_keys`] streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trades {
    /// Orders, by cycle.
    Orders,
    /// Fills, by market time.
    Fills,
}

#[derive(Debug, Clone, Copy)]
enum DecisionStream {
    All,
    OfShadowedCycles,
    Shadow,
}

impl Store {
    /// Every decision, by cycle then position in the cycle.
    ///
    /// # Errors
    /// The query cannot start; a row that does not decode arrives as an `Err` item.
    pub fn with_decisions<R>(
        &self,
        body: impl FnOnce(Rows<'_, DecisionRow>) -> R,
    ) -> Result<R, StoreError> {
        self.decision_stream(DecisionStream::All, body)
    }

    /// The active decisions of the cycles that have a shadow row, by cycle then position.
    ///
    /// # Errors
    /// As [`Store::with_decisions`].
    pub fn with_decisions_of_shadowed_cycles<R>(
        &self,
        body: impl FnOnce(Rows<'_, DecisionRow>) -> R,
    ) -> Result<R, StoreError> {
        self.decision_stream(DecisionStream::OfShadowedCycles, body)
    }

    /// The shadow rule set's "would have" verdicts, by cycle then position.
    ///
    /// # Errors
    /// As [`Store::with_decisions`].
    pub fn with_shadow_decisions<R>(
        &self,
        body: impl FnOnce(Rows<'_, DecisionRow>) -> R,
    ) -> Result<R, StoreError> {
        self.decision_stream(DecisionStream::Shadow, body)
    }

    fn decision_stream<R>(
        &self,
        which: DecisionStream,
        body: impl FnOnce(Rows<'_, DecisionRow>) -> R,
    ) -> Result<R, StoreError> {
        let (table, sql) = match which {
            DecisionStream::All => (
                "decisions",
                "SELECT * FROM decisions ORDER BY cycle_id, seq",
            ),
            DecisionStream::OfShadowedCycles => (
                "decisions",
                "SELECT * FROM decisions WHERE cycle_id IN (SELECT cycle_id FROM shadow_cycles) \
                 ORDER BY cycle_id, seq",
            ),
            DecisionStream::Shadow => (
                "shadow_decisions",
                "SELECT * FROM shadow_decisions ORDER BY cycle_id, seq",
            ),
        };
        query_with(&self.conn, table, sql, [], decode_row, body)
    }

    /// Every committed cycle's (id, mode), by id.
    ///
    /// # Errors
    /// As [`Store::with_decisions`].
    pub fn with_cycle_modes<R>(
        &self,
        body: impl FnOnce(Rows<'_, (i64, Mode)>) -> R,
    ) -> Result<R, StoreError> {
        query_with(
            &self.conn,
            "cycles",
            "SELECT cycle_id, mode FROM cycles ORDER BY cycle_id",
            [],
            |c| Ok((c.i64("cycle_id")?, c.mode("mode")?)),
            body,
        )
    }

    /// Every order by cycle, or every fill by market time, as the key two runs match them by.
    ///
    /// # Errors
    /// As [`Store::with_decisions`].
    pub fn with_trade_keys<R>(
        &self,
        trades: Trades,
        body: impl FnOnce(Rows<'_, TradeKey>) -> R,
    ) -> Result<R, StoreError> {
        let (table, sql) = match trades {
            Trades::Orders => (
                "orders",
                "SELECT cycle_id AS k, symbol, side, price, qty FROM orders ORDER BY cycle_id",
            ),
            Trades::Fills => (
                "fills",
                "SELECT ts_ms AS k, symbol, side, price, qty FROM fills ORDER BY ts_ms",
            ),
        };
        query_with(
            &self.conn,
            table,
            sql,
            [],
            |c| {
                Ok((
                    c.i64("k")?,
                    c.text("symbol")?,
                    c.text("side")?,
                    c.decimal("price")?,
                    c.decimal("qty")?,
                ))
            },
            body,
        )
    }
}
