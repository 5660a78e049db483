//! Per-cycle equity snapshots (written with the cycle, in its transaction).

use super::codec::{Cols, dec, query_all};
use super::{Store, StoreError};
use rusqlite::{Connection, params};
use rust_decimal::Decimal;

/// One cycle's portfolio, marked to market.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EquitySnapshot {
    pub cycle_id: i64,
    pub ts_ms: i64,
    pub cash: Decimal,
    pub positions_value: Decimal,
    pub equity: Decimal,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub fees: Decimal,
    pub peak_equity: Decimal,
    pub drawdown: Decimal,
    pub day_start_equity: Decimal,
    pub week_start_equity: Decimal,
    pub gross_exposure: Decimal,
    /// JSON array of the marked positions.
    pub positions_json: String,
}

pub(super) fn insert(tx: &Connection, s: &EquitySnapshot) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO equity_snapshots (cycle_id, ts_ms, cash, positions_value, equity, \
         realized_pnl, unrealized_pnl, fees, peak_equity, drawdown, day_start_equity, \
         week_start_equity, gross_exposure, positions) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            s.cycle_id,
            s.ts_ms,
            dec(s.cash),
            dec(s.positions_value),
            dec(s.equity),
            dec(s.realized_pnl),
            dec(s.unrealized_pnl),
            dec(s.fees),
            dec(s.peak_equity),
            dec(s.drawdown),
            dec(s.day_start_equity),
            dec(s.week_start_equity),
            dec(s.gross_exposure),
            s.positions_json,
        ])
    })
    .map_err(StoreError::sql("insert equity snapshot"))?;
    Ok(())
}

fn decode(c: &Cols<'_, '_>) -> Result<EquitySnapshot, StoreError> {
    Ok(EquitySnapshot {
        cycle_id: c.i64("cycle_id")?,
        ts_ms: c.i64("ts_ms")?,
        cash: c.decimal("cash")?,
        positions_value: c.decimal("positions_value")?,
        equity: c.decimal("equity")?,
        realized_pnl: c.decimal("realized_pnl")?,
        unrealized_pnl: c.decimal("unrealized_pnl")?,
        fees: c.decimal("fees")?,
        peak_equity: c.decimal("peak_equity")?,
        drawdown: c.decimal("drawdown")?,
        day_start_equity: c.decimal("day_start_equity")?,
        week_start_equity: c.decimal("week_start_equity")?,
        gross_exposure: c.decimal("gross_exposure")?,
        positions_json: c.text("positions")?,
    })
}

impl Store {
    /// The newest snapshot; `None` on a fresh database.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn last_equity_snapshot(&self) -> Result<Option<EquitySnapshot>, StoreError> {
        Ok(query_all(
            &self.conn,
            "equity_snapshots",
            "SELECT * FROM equity_snapshots ORDER BY cycle_id DESC LIMIT 1",
            [],
            decode,
        )?
        .pop())
    }

    /// The snapshot of one cycle.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn equity_snapshot(&self, cycle_id: i64) -> Result<Option<EquitySnapshot>, StoreError> {
        Ok(query_all(
            &self.conn,
            "equity_snapshots",
            "SELECT * FROM equity_snapshots WHERE cycle_id = ?1",
            rusqlite::params![cycle_id],
            decode,
        )?
        .pop())
    }

    /// Every snapshot by cycle id, one at a time (memory stays flat).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn for_each_equity_snapshot(
        &self,
        each: impl FnMut(EquitySnapshot),
    ) -> Result<(), StoreError> {
        super::codec::query_each(
            &self.conn,
            "equity_snapshots",
            "SELECT * FROM equity_snapshots ORDER BY cycle_id",
            [],
            decode,
            each,
        )
    }

    /// Every snapshot, by cycle id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn equity_snapshots(&self) -> Result<Vec<EquitySnapshot>, StoreError> {
        query_all(
            &self.conn,
            "equity_snapshots",
            "SELECT * FROM equity_snapshots ORDER BY cycle_id",
            [],
            decode,
        )
    }
}
