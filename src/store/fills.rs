//! Fills: immutable, unique by trade id. Inserting a fill whose trade id is already stored is a
//! no-op (exchanges resend fills around a cursor), never an error and never an overwrite.

use super::codec::dec;
use super::{Store, StoreError};
use crate::domain::Fill;
use rusqlite::{Connection, params};

impl Store {
    /// Every stored fill, in insertion order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn fills(&self) -> Result<Vec<Fill>, StoreError> {
        let mut out = Vec::new();
        self.for_each_fill(|f| out.push(f))?;
        Ok(out)
    }

    /// Every fill in arrival order, one at a time (memory stays flat).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn for_each_fill(&self, each: impl FnMut(Fill)) -> Result<(), StoreError> {
        super::codec::query_each(
            &self.conn,
            "fills",
            "SELECT * FROM fills ORDER BY rowid",
            [],
            |c| {
                Ok(Fill {
                    trade_id: c.text("trade_id")?,
                    client_order_id: c.text("client_order_id")?,
                    symbol: c.symbol("symbol")?,
                    side: c.side("side")?,
                    price: c.price("price")?,
                    qty: c.qty("qty")?,
                    fee: c.decimal("fee")?,
                    fee_asset: c.text("fee_asset")?,
                    maker: c.bool("maker")?,
                    ts_ms: c.i64("ts_ms")?,
                })
            },
            each,
        )
    }
}

/// Inserts the fills of `cycle_id`; returns how many were skipped as already stored.
pub(crate) fn insert_all(
    conn: &Connection,
    cycle_id: i64,
    fills: &[Fill],
) -> Result<usize, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO fills (trade_id, client_order_id, symbol, side, price, qty, fee, \
             fee_asset, maker, ts_ms, cycle_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (trade_id) DO NOTHING",
        )
        .map_err(StoreError::sql("prepare fill insert"))?;
    let mut skipped = 0;
    for f in fills {
        let inserted = stmt
            .execute(params![
                f.trade_id,
                f.client_order_id,
                f.symbol.as_str(),
                f.side.as_str(),
                dec(f.price.value()),
                dec(f.qty.value()),
                dec(f.fee),
                f.fee_asset,
                f.maker,
                f.ts_ms,
                cycle_id,
            ])
            .map_err(StoreError::sql("insert fill"))?;
        if inserted == 0 {
            skipped += 1;
        }
    }
    Ok(skipped)
}
